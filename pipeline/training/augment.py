"""Image augmentations as batched TensorFlow ops, used inside tf.data pipelines and training steps.

Every op works on a whole float batch in [0, 1] at once, which keeps the input pipeline cheap on a
2-core machine. What is applied is an AugmentPolicy (pipeline.training.augment_policy): SimCLR's two
views use a preset's strong policy, everything else its lighter one.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from pipeline.core.tf_env import tf
from pipeline.training.augment_policy import AugmentPolicy

# One augmentation of one image is decided by these uniform draws (the noise aside): drawn by
# tf.random while training, or stored per image (teacher_training.view_draws) so that the same view can
# be rebuilt epoch after epoch, which lets a teacher's outputs on it be computed once. Stored draws are
# drawn group by group: the first group, the knobs augmentation always had, keeps the values it had
# before the second group existed.
DRAW_GROUPS = (("area", "log_ratio", "top", "left", "flip", "contrast", "brightness"),
               ("vflip", "rotation", "shift_y", "shift_x"))
DRAWS = DRAW_GROUPS[0] + DRAW_GROUPS[1]

# draw(name, shape, low, high): one of DRAWS scaled to [low, high), shaped for the batch.
Draw = Callable[[str, list, Any, Any], tf.Tensor]


def _crop(images: tf.Tensor, batch: tf.Tensor, policy: AugmentPolicy, draw: Draw) -> tf.Tensor:
    """A random crop of each image (area and aspect ratio in the policy's ranges), resized back."""
    area = draw("area", [batch], policy.crop_area[0], policy.crop_area[1])
    log_ratio = draw("log_ratio", [batch], tf.math.log(policy.aspect[0]), tf.math.log(policy.aspect[1]))
    ratio = tf.exp(log_ratio)
    height = tf.minimum(tf.sqrt(area / ratio), 1.0)
    width = tf.minimum(tf.sqrt(area * ratio), 1.0)
    top = draw("top", [batch], 0.0, 1.0) * (1.0 - height)
    left = draw("left", [batch], 0.0, 1.0) * (1.0 - width)
    boxes = tf.stack([top, left, top + height, left + width], axis=1)
    size = tf.shape(images)[1:3]
    return tf.image.crop_and_resize(images, boxes, tf.range(batch), size)


def _rotate_and_shift(x: tf.Tensor, batch: tf.Tensor, policy: AugmentPolicy, draw: Draw) -> tf.Tensor:
    """Rotate each image about its centre and shift it, as one bilinear projective transform; pixels
    moved in from outside repeat the nearest border pixel."""
    zeros = tf.zeros([batch])
    angle = (draw("rotation", [batch], -policy.rotation, policy.rotation) * (math.pi / 180)
             if policy.rotation else zeros)
    height, width = tf.cast(tf.shape(x)[1], tf.float32), tf.cast(tf.shape(x)[2], tf.float32)
    shift = policy.translation
    dy = draw("shift_y", [batch], -shift, shift) * height if shift else zeros
    dx = draw("shift_x", [batch], -shift, shift) * width if shift else zeros
    cos, sin = tf.cos(angle), tf.sin(angle)
    # Output pixel (x, y) reads the input at (a0 x + a1 y + a2, b0 x + b1 y + b2): the inverse of
    # "rotate about the centre, then shift by (dx, dy)".
    x_offset = ((width - 1) - (cos * (width - 1) - sin * (height - 1))) / 2 - cos * dx + sin * dy
    y_offset = ((height - 1) - (sin * (width - 1) + cos * (height - 1))) / 2 - sin * dx - cos * dy
    transforms = tf.stack([cos, -sin, x_offset, sin, cos, y_offset, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(images=x, transforms=transforms, output_shape=tf.shape(x)[1:3],
                                                 fill_value=0.0, interpolation="BILINEAR", fill_mode="NEAREST")


def _transformed(images: tf.Tensor, policy: AugmentPolicy, draw: Draw) -> tf.Tensor:
    """Crop and resize, flips, rotation and shift, contrast and brightness as `draw` decides; neither
    noise nor clipping. A knob that is off makes no op: the ops of the knobs augmentation always had are
    made in the order it always made them, so a seeded run of the natural preset repeats its views."""
    batch = tf.shape(images)[0]
    x = _crop(images, batch, policy, draw) if policy.crops else images
    per_image = [batch, 1, 1, 1]
    if policy.flip in ("horizontal", "both"):
        flip = draw("flip", per_image, 0.0, 1.0) < 0.5
        x = tf.where(flip, tf.reverse(x, axis=[2]), x)
    if policy.flip in ("vertical", "both"):
        flip = draw("vflip", per_image, 0.0, 1.0) < 0.5
        x = tf.where(flip, tf.reverse(x, axis=[1]), x)
    if policy.rotation or policy.translation:
        x = _rotate_and_shift(x, batch, policy, draw)
    if policy.contrast:
        mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
        x = (x - mean) * draw("contrast", per_image, 1 - policy.contrast, 1 + policy.contrast) + mean
    if policy.brightness:
        x = x + draw("brightness", per_image, -policy.brightness, policy.brightness)
    return x


def _random_draw(_name: str, shape: list, low: Any, high: Any) -> tf.Tensor:
    return tf.random.uniform(shape, low, high)


def augment_with(images: tf.Tensor, draws: tf.Tensor, policy: AugmentPolicy) -> tf.Tensor:
    """The augmentation `draws` [B, len(DRAWS)] (uniform in [0, 1)) decide, of a float batch [B, H, W, C]
    in [0, 1]; no noise."""
    columns = dict(zip(DRAWS, tf.unstack(tf.cast(draws, tf.float32), axis=1), strict=True))

    def stored(name: str, shape: list, low: Any, high: Any) -> tf.Tensor:
        return tf.reshape(low + columns[name] * (high - low), shape)

    return tf.clip_by_value(_transformed(images, policy, stored), 0.0, 1.0)


def augment(images: tf.Tensor, policy: AugmentPolicy) -> tf.Tensor:
    """Return an augmented copy of a float batch [B, H, W, C] in [0, 1]."""
    batch = tf.shape(images)[0]  # made first, as always: moving it shifts every seeded random op after it
    x = _transformed(images, policy, _random_draw)
    if policy.noise:
        noisy = tf.random.uniform([batch, 1, 1, 1], 0.0, 1.0) < 0.5
        x = tf.where(noisy, x + tf.random.normal(tf.shape(x), stddev=policy.noise), x)
    return tf.clip_by_value(x, 0.0, 1.0)
