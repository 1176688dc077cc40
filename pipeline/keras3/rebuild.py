"""A Keras 3 functional (or Sequential) model rebuilt as the tf_keras model that computes the same:
the same graph, layer names and weights, one tf_keras layer per Keras 3 layer or recorded op.

The graph is walked the way Keras 3 itself runs it (its nodes from the inputs up, by depth), each
node's operation translated by pipeline.keras3.layers and applied to the tf_keras tensors of its
inputs. Weights are then copied layer by layer through get_weights/set_weights, which both Keras
order the same way (BatchNormalization: gamma, beta, moving mean, moving variance); a shape that
does not match is refused rather than guessed.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.core.tf_env import keras
from pipeline.errors import UserError
from pipeline.keras3 import keras3
from pipeline.keras3.layers import FIX, NoEquivalent, describe, translate


def _graph(model: Any, origin: str) -> Any:
    """The functional graph of a Keras 3 Functional or Sequential model."""
    k3 = keras3()
    if isinstance(model, k3.Sequential):
        graph = getattr(model, "_functional", None)
        if graph is None:
            raise UserError(f"{origin}: the Keras 3 Sequential model has no input shape yet; start it with "
                            f"keras.Input(shape=...) so that it is a graph of layers")
        return graph
    if not hasattr(model, "_nodes_by_depth"):
        raise UserError(f"{origin}: the model is a subclassed keras.Model ({type(model).__name__}); TF-MOT prunes "
                        f"and quantizes only functional or Sequential models: build it as keras.Model(inputs, outputs)")
    return model


def _refuse_nested(operation: Any, origin: str) -> None:
    if isinstance(operation, keras3().Model):
        raise UserError(f"{origin}: {describe(operation)} is a model inside the model, which TF-MOT refuses; "
                        f"build one flat model from the inner model's output tensor")


def _walk(graph: Any, origin: str) -> tuple[list, list]:
    """Apply every node's tf_keras equivalent; return the tf_keras inputs and outputs."""
    tensors: dict[int, Any] = {}
    inputs = []
    for tensor in graph.inputs:
        rebuilt = keras.Input(batch_shape=tuple(tensor.shape), dtype=tensor.dtype,
                              name=tensor._keras_history.operation.name)
        tensors[id(tensor)] = rebuilt
        inputs.append(rebuilt)
    applied: dict[int, Any] = {}
    for depth in sorted(graph._nodes_by_depth, reverse=True):
        for node in graph._nodes_by_depth[depth]:
            if node.is_input:
                continue
            operation = node.operation
            _refuse_nested(operation, origin)
            if id(operation) not in applied:  # a shared layer is translated once and applied at every node
                try:
                    applied[id(operation)] = translate(operation, node)
                except NoEquivalent as error:
                    raise UserError(f"{origin}: {error}") from None
            args, kwargs = node.arguments.fill_in(tensors)
            outputs = applied[id(operation)](args, {key: value for key, value in kwargs.items() if value is not None})
            for produced, rebuilt in zip(node.outputs, keras3().tree.flatten(outputs), strict=True):
                tensors[id(produced)] = rebuilt
    return inputs, [tensors[id(tensor)] for tensor in graph.outputs]


def _weights(layer: Any) -> list[np.ndarray]:
    """The weights a Keras 3 layer computes with. A Normalization computes with the mean and variance
    it derived from its adapted ones when it was last adapted or loaded, not with those weights."""
    weights = layer.get_weights()
    if type(layer).__name__ == "Normalization" and len(weights) == 3:
        mean, variance, count = weights
        return [np.reshape(layer.mean, mean.shape), np.reshape(layer.variance, variance.shape), count]
    return weights


def _copy_weights(graph: Any, rebuilt: keras.Model, origin: str) -> None:
    for layer in graph.layers:
        weights = _weights(layer)
        if not weights:
            continue
        target = rebuilt.get_layer(layer.name)
        have = [tuple(w.shape) for w in target.get_weights()]
        given = [tuple(w.shape) for w in weights]
        if have != given:
            raise UserError(f"{origin}: {describe(layer)} has weights of shapes {given}, its tf_keras rebuild "
                            f"{have}; {FIX}")
        target.set_weights(weights)


def rebuild(model: Any, origin: str) -> keras.Model:
    """The tf_keras model equivalent to the Keras 3 `model`; `origin` names it in refusals."""
    graph = _graph(model, origin)
    inputs, outputs = _walk(graph, origin)
    rebuilt = keras.Model(inputs[0] if len(inputs) == 1 else inputs, outputs[0] if len(outputs) == 1 else outputs,
                          name=model.name)
    _copy_weights(graph, rebuilt, origin)
    return rebuilt
