"""Image augmentations as batched TensorFlow ops, used inside tf.data pipelines.

SimCLR needs two strongly and independently augmented views of every image; fine-tuning
uses a lighter version of the same ops. Every op works on a whole float batch in [0, 1]
at once, which keeps the input pipeline cheap on a 2-core machine.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


# One augmentation of one image is decided by these uniform draws (the noise aside): drawn by
# tf.random while training, or stored per image (teacher_training.view_draws) so that the same view can
# be rebuilt epoch after epoch, which lets a teacher's outputs on it be computed once.
DRAWS = ("area", "log_ratio", "top", "left", "flip", "contrast", "brightness")

# draw(name, shape, low, high): one of DRAWS scaled to [low, high), shaped for the batch.
Draw = Callable[[str, list, Any, Any], tf.Tensor]


def _transformed(images: tf.Tensor, strength: AugmentStrength, draw: Draw) -> tf.Tensor:
    """Crop and resize, flip, contrast and brightness as `draw` decides; neither noise nor clipping.
    (The ops are made in the order augmentation always made them, so a seeded run repeats its views.)"""
    batch = tf.shape(images)[0]
    area = draw("area", [batch], strength.min_crop_area, 1.0)
    log_ratio = draw("log_ratio", [batch], tf.math.log(3 / 4), tf.math.log(4 / 3))
    ratio = tf.exp(log_ratio)
    height = tf.minimum(tf.sqrt(area / ratio), 1.0)
    width = tf.minimum(tf.sqrt(area * ratio), 1.0)
    top = draw("top", [batch], 0.0, 1.0) * (1.0 - height)
    left = draw("left", [batch], 0.0, 1.0) * (1.0 - width)
    boxes = tf.stack([top, left, top + height, left + width], axis=1)
    size = tf.shape(images)[1:3]
    x = tf.image.crop_and_resize(images, boxes, tf.range(batch), size)
    per_image = [batch, 1, 1, 1]
    if strength.flip:
        flip = draw("flip", per_image, 0.0, 1.0) < 0.5
        x = tf.where(flip, tf.reverse(x, axis=[2]), x)
    if strength.contrast:
        mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
        x = (x - mean) * draw("contrast", per_image, 1 - strength.contrast, 1 + strength.contrast) + mean
    if strength.brightness:
        x = x + draw("brightness", per_image, -strength.brightness, strength.brightness)
    return x


def _random_draw(_name: str, shape: list, low: Any, high: Any) -> tf.Tensor:
    return tf.random.uniform(shape, low, high)


def augment_with(images: tf.Tensor, draws: tf.Tensor, strength: AugmentStrength) -> tf.Tensor:
    """The augmentation `draws` [B, len(DRAWS)] (uniform in [0, 1)) decide, of a float batch [B, H, W, C]
    in [0, 1]; no noise."""
    columns = dict(zip(DRAWS, tf.unstack(tf.cast(draws, tf.float32), axis=1), strict=True))

    def stored(name: str, shape: list, low: Any, high: Any) -> tf.Tensor:
        return tf.reshape(low + columns[name] * (high - low), shape)

    return tf.clip_by_value(_transformed(images, strength, stored), 0.0, 1.0)


def augment(images: tf.Tensor, strength: AugmentStrength) -> tf.Tensor:
    """Return an augmented copy of a float batch [B, H, W, C] in [0, 1]."""
    batch = tf.shape(images)[0]  # made first, as always: moving it shifts every seeded random op after it
    x = _transformed(images, strength, _random_draw)
    if strength.noise_std:
        noisy = tf.random.uniform([batch, 1, 1, 1], 0.0, 1.0) < 0.5
        x = tf.where(noisy, x + tf.random.normal(tf.shape(x), stddev=strength.noise_std), x)
    return tf.clip_by_value(x, 0.0, 1.0)
