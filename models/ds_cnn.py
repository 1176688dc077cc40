"""DS-CNN: a MobileNet-style stack of depthwise-separable blocks (the MLPerf Tiny KWS shape).

A strided stem conv, then blocks of 3x3 depthwise conv + 1x1 pointwise conv, each with
BatchNorm and ReLU6 (ReLU6 keeps activation ranges tight for int8).
"""
from __future__ import annotations

from pipeline.core.tf_env import keras

BASE_FILTERS = 64
BLOCK_STRIDES = (1, 2, 1, 1)


def _bn_relu6(x, name: str):
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{name}_relu")(x)


def build_ds_cnn(input_shape: tuple[int, int, int], num_classes: int, width: float = 1.0) -> keras.Model:
    filters = max(8, int(round(BASE_FILTERS * width)))
    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = _bn_relu6(x, "stem")
    for index, strides in enumerate(BLOCK_STRIDES, start=1):
        x = keras.layers.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False, name=f"block{index}_dw")(x)
        x = _bn_relu6(x, f"block{index}_dw")
        x = keras.layers.Conv2D(filters, 1, use_bias=False, name=f"block{index}_pw")(x)
        x = _bn_relu6(x, f"block{index}_pw")
    features = keras.layers.GlobalAveragePooling2D(name="features")(x)
    logits = keras.layers.Dense(num_classes, name="logits")(features)
    return keras.Model(inputs, logits, name="ds_cnn")
