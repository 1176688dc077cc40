"""ResNet-8: the MLPerf Tiny image-classification topology (16/32/64 filters, ~78k parameters).

Three residual stacks, the second and third halving the resolution with a strided conv and
a 1x1 projection shortcut; global average pooling instead of a fixed 8x8 pool so any
input size works.
"""
from __future__ import annotations

from pipeline.core.tf_env import keras

L2 = 1e-4  # weight decay of the MLPerf Tiny reference
BASE_FILTERS = (16, 32, 64)


def _conv_bn(x, filters: int, kernel: int, strides: int, name: str, relu: bool = True):
    x = keras.layers.Conv2D(
        filters, kernel, strides=strides, padding="same", use_bias=False,
        kernel_initializer="he_normal", kernel_regularizer=keras.regularizers.l2(L2), name=f"{name}_conv",
    )(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x) if relu else x


def _residual_stack(x, filters: int, strides: int, name: str):
    y = _conv_bn(x, filters, 3, strides, f"{name}_a")
    y = _conv_bn(y, filters, 3, 1, f"{name}_b", relu=False)
    if strides != 1 or x.shape[-1] != filters:
        x = _conv_bn(x, filters, 1, strides, f"{name}_proj", relu=False)
    y = keras.layers.Add(name=f"{name}_add")([x, y])
    return keras.layers.ReLU(name=f"{name}_out")(y)


def build_resnet8(input_shape: tuple[int, int, int], num_classes: int, width: float = 1.0) -> keras.Model:
    filters = [max(4, int(round(f * width))) for f in BASE_FILTERS]
    inputs = keras.Input(shape=input_shape, name="image")
    x = _conv_bn(inputs, filters[0], 3, 1, "stem")
    for index, (stack_filters, strides) in enumerate(zip(filters, (1, 2, 2), strict=True), start=1):
        x = _residual_stack(x, stack_filters, strides, f"stack{index}")
    features = keras.layers.GlobalAveragePooling2D(name="features")(x)
    logits = keras.layers.Dense(num_classes, name="logits")(features)
    return keras.Model(inputs, logits, name="resnet8")
