"""A tf_keras model written back out as a Keras 3 `.keras` file, so that a Keras 3 user can keep
training or serving the compressed model without tf_keras.

The reverse of pipeline.keras3.rebuild: the tf_keras graph is walked node by node and each layer
made again as the Keras 3 class of the same name and config (activations by their Keras 3 name,
tf_keras's `swish` as `silu`), then given the same weights. Pruned zeros and clustered values are
weights like any other, so they survive.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.core.tf_env import keras, tf
from pipeline.keras3 import activations, keras3
from pipeline.keras3.layers import RENAMED, NoEquivalent, accepted, describe, droppable


def _keras3_config(layer: keras.layers.Layer, cls: type) -> dict[str, Any]:
    takes = accepted(cls)
    renamed = {tf_keras_name: name for name, tf_keras_name in RENAMED.get(cls.__name__, {}).items()}
    config: dict[str, Any] = {}
    for key, value in layer.get_config().items():
        key = renamed.get(key, key)
        if key == "activation":
            config[key] = activations.to_keras3(layer.activation)
        elif key == "axis" and not isinstance(value, int):  # tf_keras lists it after building; Keras 3 wants one
            config[key] = int(value[0]) if len(value) == 1 else list(value)
        elif key in takes:
            config[key] = value
        elif not droppable(type(layer), key, value):
            raise NoEquivalent(f"{describe(layer)} sets {key} = {value!r}, which Keras 3's {cls.__name__} "
                               f"does not have")
    return config


def _layer(layer: keras.layers.Layer) -> Any:
    cls = getattr(keras3().layers, type(layer).__name__, None)
    if cls is None or not type(layer).__module__.startswith("tf_keras."):
        raise NoEquivalent(f"{describe(layer)} has no Keras 3 layer of the same class")
    return cls.from_config(_keras3_config(layer, cls))


def _walk(model: keras.Model) -> tuple[list, list, dict[str, Any]]:
    """Keras 3 inputs, outputs and layers by name, made node by node from the tf_keras graph."""
    tensors: dict[int, Any] = {}
    made: dict[str, Any] = {}
    inputs = []
    for tensor in model.inputs:
        made_input = keras3().Input(batch_shape=tuple(tensor.shape), dtype=tensor.dtype.name,
                                    name=tensor._keras_history.layer.name)
        tensors[id(tensor)] = made_input
        inputs.append(made_input)
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            if node.is_input:
                continue
            if node.layer.name not in made:
                made[node.layer.name] = _layer(node.layer)
            args, kwargs = tf.nest.map_structure(lambda item: tensors.get(id(item), item),
                                                 (node.call_args, node.call_kwargs))
            outputs = made[node.layer.name](*args, **kwargs)
            for produced, output in zip(tf.nest.flatten(node.outputs), tf.nest.flatten(outputs), strict=True):
                tensors[id(produced)] = output
    return inputs, [tensors[id(tensor)] for tensor in model.outputs], made


def to_keras3(model: keras.Model) -> Any:
    """The Keras 3 functional model equivalent to the tf_keras `model`; NoEquivalent names what has none."""
    inputs, outputs, made = _walk(model)
    exported = keras3().Model(inputs[0] if len(inputs) == 1 else inputs,
                              outputs[0] if len(outputs) == 1 else outputs, name=model.name)
    for layer in model.layers:
        if layer.weights:
            made[layer.name].set_weights(layer.get_weights())
    return exported


def save_keras3(model: keras.Model, path: Path) -> None:
    """Write `model` as a Keras 3 `.keras` file (into a stage's temporary folder: renamed with it)."""
    to_keras3(model).save(path)
