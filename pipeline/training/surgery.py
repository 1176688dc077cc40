"""Rebuild a flat functional Keras model layer by layer, changing some layers on the way.

Structured compression (channel pruning, low-rank factorization) changes the shapes of a few
layers and the weights of their neighbours; everything else is copied. The result is again a
flat functional model of fresh layers, so TF-MOT (pruning, QAT) and the converter take it like
any model the builders in models/ make.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pipeline.core.tf_env import keras
from pipeline.errors import UserError

# A layer's replacement: (original layer, its new input tensor(s)) -> new output tensor.
Replacement = Callable[[keras.layers.Layer, Any], Any]


def _tensors(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def copy_layer(layer: keras.layers.Layer, inputs: Any, *, config: dict[str, Any] | None = None,
               weights: list[np.ndarray] | None = None) -> Any:
    """Apply a fresh copy of `layer` (its config updated with `config`) to `inputs`, with `weights`
    (default: the layer's own)."""
    fresh = type(layer).from_config({**layer.get_config(), **(config or {})})
    output = fresh(inputs)
    fresh.set_weights(layer.get_weights() if weights is None else weights)
    return output


def rebuild(model: keras.Model, replacements: dict[str, Replacement]) -> keras.Model:
    """A copy of `model` in which each layer named in `replacements` is built by its function."""
    unknown = sorted(set(replacements) - {layer.name for layer in model.layers})
    if unknown:
        raise UserError(f"model {model.name} has no layer '{unknown[0]}'")
    built: dict[str, Any] = {}  # original tensor name -> new tensor
    inputs = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            tensor = keras.Input(batch_shape=layer.input.shape, dtype=layer.input.dtype, name=layer.name)
            built[layer.output.name] = tensor
            inputs.append(tensor)
            continue
        if len(layer.inbound_nodes) != 1:
            raise UserError(f"layer {layer.name} ({type(layer).__name__}) is used {len(layer.inbound_nodes)} times; "
                            "only flat functional models whose layers are each used once can be rebuilt")
        sources = [built[tensor.name] for tensor in _tensors(layer.input)]
        arguments = sources if isinstance(layer.input, (list, tuple)) else sources[0]
        replace = replacements.get(layer.name)
        built[layer.output.name] = replace(layer, arguments) if replace else copy_layer(layer, arguments)
    outputs = [built[tensor.name] for tensor in model.outputs]
    return keras.Model(inputs, outputs if len(outputs) > 1 else outputs[0], name=model.name)


def consumers(model: keras.Model) -> dict[str, list[keras.layers.Layer]]:
    """Layer name -> the layers that read its output."""
    readers: dict[str, list[keras.layers.Layer]] = {layer.name: [] for layer in model.layers}
    producer = {layer.output.name: layer.name for layer in model.layers}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        for tensor in _tensors(layer.input):
            readers[producer[tensor.name]].append(layer)
    return readers


def layer_macs(layer: keras.layers.Layer) -> int:
    """Multiply-accumulates of one Conv2D, DepthwiseConv2D or Dense layer for one image (0 for others)."""
    output_shape = layer.output.shape
    positions = int(np.prod(output_shape[1:-1])) if len(output_shape) > 2 else 1
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw, channels, multiplier = layer.depthwise_kernel.shape
        return positions * channels * multiplier * kh * kw
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
        kernel = layer.kernel.shape
        return positions * int(np.prod(kernel))
    return 0


def model_macs(model: keras.Model) -> int:
    return sum(layer_macs(layer) for layer in model.layers)
