"""Annotating a model for TF-MOT's quantization-aware training, the layers a Keras 3 model brings
that TF-MOT's default 8-bit registry has no config for included.

A Multiply (squeeze-excite), a Rescaling (a recorded `x + 3` or `x * (1 / 6)`, or input scaling), a
Normalization and an Activation with Keras 3's hard-swish, hard-sigmoid or relu6
(pipeline.keras3.activations) each convert to elementwise int8 ops (MUL, ADD, HARD_SWISH...). What
QAT must learn for them is the range of their output, as TF-MOT does for its own Add: they get TF-MOT's
output-only config. MobileNetV3 and EfficientNet then train with QAT and convert to full int8.
"""
from __future__ import annotations

import importlib

from pipeline.core.tf_env import keras, tfmot
from pipeline.keras3.activations import OWN

OUTPUT_ONLY_LAYERS = (keras.layers.Multiply, keras.layers.Rescaling, keras.layers.Normalization)


def output_only(layer: keras.layers.Layer) -> bool:
    """Does QAT quantize only this layer's output (the layer being one TF-MOT's registry lacks)?"""
    if type(layer) is keras.layers.Activation:
        return any(layer.activation is function for function in OWN.values())
    return type(layer) in OUTPUT_ONLY_LAYERS


def annotate_for_qat(model: keras.Model) -> keras.Model:
    """`quantize_annotate_model(model)`, with the output-only config on the layers `output_only` names."""
    annotate = tfmot.quantization.keras.quantize_annotate_layer
    if any(output_only(layer) for layer in model.layers):
        configs = importlib.import_module("tensorflow_model_optimization.python.core.quantization.keras."
                                          "default_8bit.default_8bit_quantize_configs")

        def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
            copy = type(layer).from_config(layer.get_config())
            return annotate(copy, configs.Default8BitOutputQuantizeConfig()) if output_only(layer) else copy

        annotated = keras.models.clone_model(model, clone_function=clone)
        annotated.set_weights(model.get_weights())
        model = annotated
    return tfmot.quantization.keras.quantize_annotate_model(model)
