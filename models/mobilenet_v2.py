"""MobileNetV2 from tf_keras applications, rebuilt as one flat classifier for any static input size.

`keras.applications.MobileNetV2(input_tensor=...)` builds its layers on our own input, and we
take its output tensor (not the application Model) into a new Model, so the result holds the
backbone's layers directly: TF-MOT refuses a Model nested in a Model. Its layers are the
ones int8 TFLite and PQAT handle: Conv2D, DepthwiseConv2D, BatchNorm (folded at conversion),
ReLU6, ZeroPadding2D and Add.
"""
from __future__ import annotations

from pipeline.core.tf_env import keras

# Keras applications use 0.999, made for ImageNet-length runs: the moving statistics would take
# thousands of steps to settle, and a model trained on a small dataset would evaluate at chance.
BATCHNORM_MOMENTUM = 0.9


def build_mobilenet_v2(input_shape: tuple[int, int, int], num_classes: int, width: float = 1.0) -> keras.Model:
    """`width` is MobileNet's `alpha` (0.35 is the MLPerf Tiny visual-wake-words size); no pretrained weights."""
    inputs = keras.Input(shape=input_shape, name="image")
    backbone = keras.applications.MobileNetV2(input_tensor=inputs, include_top=False, weights=None, alpha=width)
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = BATCHNORM_MOMENTUM
    features = keras.layers.GlobalAveragePooling2D(name="features")(backbone.output)
    logits = keras.layers.Dense(num_classes, name="logits")(features)
    return keras.Model(inputs, logits, name="mobilenet_v2")
