"""Image augmentations as batched TensorFlow ops, used inside tf.data pipelines.

SimCLR needs two strongly and independently augmented views of every image; fine-tuning
uses a lighter version of the same ops. Every op works on a whole float batch in [0, 1]
at once, which keeps the input pipeline cheap on a 2-core machine.
"""
from __future__ import annotations

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


def _random_crop_resize(images: tf.Tensor, min_area: float) -> tf.Tensor:
    """Crop a random box per image (area and aspect ratio jittered) and resize it back."""
    batch = tf.shape(images)[0]
    area = tf.random.uniform([batch], min_area, 1.0)
    log_ratio = tf.random.uniform([batch], tf.math.log(3 / 4), tf.math.log(4 / 3))
    ratio = tf.exp(log_ratio)
    height = tf.minimum(tf.sqrt(area / ratio), 1.0)
    width = tf.minimum(tf.sqrt(area * ratio), 1.0)
    top = tf.random.uniform([batch]) * (1.0 - height)
    left = tf.random.uniform([batch]) * (1.0 - width)
    boxes = tf.stack([top, left, top + height, left + width], axis=1)
    size = tf.shape(images)[1:3]
    return tf.image.crop_and_resize(images, boxes, tf.range(batch), size)


def _per_image(batch: tf.Tensor, low: float, high: float) -> tf.Tensor:
    return tf.random.uniform([batch, 1, 1, 1], low, high)


def augment(images: tf.Tensor, strength: AugmentStrength) -> tf.Tensor:
    """Return an augmented copy of a float batch [B, H, W, C] in [0, 1]."""
    batch = tf.shape(images)[0]
    x = _random_crop_resize(images, strength.min_crop_area)
    if strength.flip:
        flip = _per_image(batch, 0.0, 1.0) < 0.5
        x = tf.where(flip, tf.reverse(x, axis=[2]), x)
    if strength.contrast:
        mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
        x = (x - mean) * _per_image(batch, 1 - strength.contrast, 1 + strength.contrast) + mean
    if strength.brightness:
        x = x + _per_image(batch, -strength.brightness, strength.brightness)
    if strength.noise_std:
        noisy = _per_image(batch, 0.0, 1.0) < 0.5
        x = tf.where(noisy, x + tf.random.normal(tf.shape(x), stddev=strength.noise_std), x)
    return tf.clip_by_value(x, 0.0, 1.0)
