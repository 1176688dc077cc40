"""Image augmentations as batched TensorFlow ops, used inside tf.data pipelines.

SimCLR needs two strongly and independently augmented views of every image; fine-tuning
uses a lighter version of the same ops. Every op works on a whole float batch in [0, 1]
at once, which keeps the input pipeline cheap on a 2-core machine.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from pipeline.core.tf_env import tf


@dataclass(frozen=True)
class AugmentStrength:
    min_crop_area: float  # random crops keep at least this fraction of the image
    flip: bool
    brightness: float  # max additive change
    contrast: float  # max relative change around the image mean
    noise_std: float  # gaussian noise added with probability 0.5


SSL_STRENGTH = AugmentStrength(min_crop_area=0.3, flip=True, brightness=0.4, contrast=0.5, noise_std=0.05)
FINETUNE_STRENGTH = AugmentStrength(min_crop_area=0.75, flip=True, brightness=0.1, contrast=0.1, noise_std=0.0)


# One augmentation of one image is decided by these uniform [0, 1) draws (the noise aside): drawn by
# tf.random while training, or stored per image (teacher_training.view_draws) so that the same view can
# be rebuilt epoch after epoch, which lets a teacher's outputs on it be computed once.
DRAWS = ("area", "log_ratio", "top", "left", "flip", "contrast", "brightness")


def _crop_resize(images: tf.Tensor, area: tf.Tensor, log_ratio: tf.Tensor, top: tf.Tensor, left: tf.Tensor
                 ) -> tf.Tensor:
    """Crop one box per image (area and aspect ratio given) and resize it back."""
    ratio = tf.exp(log_ratio)
    height = tf.minimum(tf.sqrt(area / ratio), 1.0)
    width = tf.minimum(tf.sqrt(area * ratio), 1.0)
    top = top * (1.0 - height)
    left = left * (1.0 - width)
    boxes = tf.stack([top, left, top + height, left + width], axis=1)
    size = tf.shape(images)[1:3]
    return tf.image.crop_and_resize(images, boxes, tf.range(tf.shape(images)[0]), size)


def _scaled(draw: tf.Tensor, low: float, high: float) -> tf.Tensor:
    return low + draw * (high - low)


def _per_image(values: tf.Tensor) -> tf.Tensor:
    return tf.reshape(values, [-1, 1, 1, 1])


def augment_with(images: tf.Tensor, draws: tf.Tensor, strength: AugmentStrength) -> tf.Tensor:
    """The augmentation `draws` [B, len(DRAWS)] decide, of a float batch [B, H, W, C] in [0, 1]; no noise."""
    u = dict(zip(DRAWS, tf.unstack(tf.cast(draws, tf.float32), axis=1), strict=True))
    x = _crop_resize(images, _scaled(u["area"], strength.min_crop_area, 1.0),
                     _scaled(u["log_ratio"], math.log(3 / 4), math.log(4 / 3)), u["top"], u["left"])
    if strength.flip:
        x = tf.where(_per_image(u["flip"]) < 0.5, tf.reverse(x, axis=[2]), x)
    if strength.contrast:
        mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
        x = (x - mean) * _per_image(_scaled(u["contrast"], 1 - strength.contrast, 1 + strength.contrast)) + mean
    if strength.brightness:
        x = x + _per_image(_scaled(u["brightness"], -strength.brightness, strength.brightness))
    return tf.clip_by_value(x, 0.0, 1.0)


def augment(images: tf.Tensor, strength: AugmentStrength) -> tf.Tensor:
    """Return an augmented copy of a float batch [B, H, W, C] in [0, 1]."""
    batch = tf.shape(images)[0]
    x = augment_with(images, tf.random.uniform([batch, len(DRAWS)]), strength)
    if strength.noise_std:
        noisy = tf.random.uniform([batch, 1, 1, 1]) < 0.5
        x = tf.where(noisy, x + tf.random.normal(tf.shape(x), stddev=strength.noise_std), x)
    return tf.clip_by_value(x, 0.0, 1.0)
