"""How close a training stage runs to this machine's arithmetic ceiling.

The ceiling is measured here, not looked up: a large fp32 matrix product, what oneDNN runs fastest,
on the threads TensorFlow uses. A stage's arithmetic is counted from its model: one image's forward
pass costs 2 FLOPs per multiply-accumulate of its Conv2D, DepthwiseConv2D and Dense layers
(pipeline.training.surgery.model_macs) and the backward pass about twice that (the gradients of
the activations and of the weights), so training on one image costs 6 x MACs FLOPs; SimCLR trains
two views of each image. Element-wise work (BatchNorm, activations, augmentation, the optimizer,
QAT's fake quantization) is not counted, so the efficiency is a lower bound of what the machine did.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from pipeline.core.tf_env import keras, tf
from pipeline.training.surgery import model_macs

FLOPS_PER_MAC = 2
TRAINING_PASSES = 3  # forward + gradients of the activations + gradients of the weights
MATMUL_SIZE = 2048  # large enough for oneDNN's best fp32 kernel, small enough to time in seconds
MATMUL_REPEATS = 5  # the best of these timings is the ceiling: a slower one met other work on the machine


def training_flops_per_image(model: keras.Model, views: int = 1) -> int:
    """FLOPs one training image costs `model` (each view trained forward and backward)."""
    return FLOPS_PER_MAC * TRAINING_PASSES * views * model_macs(model)


def matmul_flops_per_s(size: int = MATMUL_SIZE, repeats: int = MATMUL_REPEATS) -> float:
    """This machine's fp32 matrix-product rate: the best of `repeats` timings of a size x size product."""
    a = tf.random.uniform((size, size), dtype=tf.float32)
    b = tf.random.uniform((size, size), dtype=tf.float32)
    product = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    product().numpy()  # trace and warm up
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        product().numpy()
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best


@dataclass(frozen=True)
class StageRoofline:
    """One training stage's achieved arithmetic rate against the measured ceiling."""

    stage: str
    images_per_s: float
    flops_per_image: int
    ceiling_flops_per_s: float

    @property
    def flops_per_s(self) -> float:
        return self.images_per_s * self.flops_per_image

    @property
    def efficiency(self) -> float:
        return self.flops_per_s / self.ceiling_flops_per_s
