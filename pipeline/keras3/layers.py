"""The translation table: each Keras 3 layer, or tensor op a Keras 3 functional graph records, as
the tf_keras layer that computes the same thing.

A layer keeps its class and name; its config is rewritten where the two Keras differ (dtype
policies and initializers as serialized objects, `batch_shape`, activation names) and settings
tf_keras lacks are dropped only while they are at their defaults. An op on tensors becomes the
built-in layer TF-MOT knows (`x + y` an Add, `relu6(x)` an Activation); an op with a constant, such as
the `x + 3` and `* (1 / 6)` of MobileNetV3's hard sigmoid, a Rescaling. Anything else raises
NoEquivalent, whose message names the layer, its class and the fix.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from pipeline.core.tf_env import keras
from pipeline.keras3 import activations, keras3

# Keras 3 layer classes rebuilt as the tf_keras class of the same name.
LAYERS = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense", "BatchNormalization", "ReLU", "LeakyReLU",
          "Softmax", "Activation", "ZeroPadding2D", "Add", "Subtract", "Multiply", "Concatenate",
          "GlobalAveragePooling2D", "GlobalMaxPooling2D", "AveragePooling2D", "MaxPooling2D", "Dropout", "Flatten",
          "Reshape", "Rescaling", "Normalization")
# Keras 3 ops (keras.ops) on one tensor -> the tf_keras activation that computes them.
UNARY_OPS = {"Relu": "relu", "Relu6": "relu6", "Sigmoid": "sigmoid", "Silu": "silu", "HardSilu": "hard_silu",
             "HardSigmoid": "hard_sigmoid", "Tanh": "tanh"}
MERGE_OPS = {"Add": "Add", "Subtract": "Subtract", "Multiply": "Multiply"}  # op on two tensors -> merge layer
# Settings the two Keras name differently: Keras 3 name -> tf_keras name, by layer class.
RENAMED = {"LeakyReLU": {"negative_slope": "alpha"}}
SERIALIZED = {"initializer": keras.initializers, "regularizer": keras.regularizers, "constraint": keras.constraints}
FIX = ("build the model from Keras built-in layers, or write it with tf_keras (`import tf_keras`) and set "
       "quantize.method = \"ptq\" if TF-MOT cannot train it")

Apply = Callable[[tuple, dict], Any]  # (filled-in call args, kwargs) -> the tf_keras output tensor


class NoEquivalent(Exception):
    """A Keras 3 layer or op with no tf_keras equivalent; the message names it and the fix."""


def describe(operation: Any) -> str:
    return f"layer '{operation.name}' ({type(operation).__name__})"


def accepted(cls: type) -> set[str]:
    """The settings a layer class's constructor takes (the base Layer's own among them)."""
    return set(inspect.signature(cls).parameters) | {"name", "trainable", "dtype"}


def droppable(cls: type, key: str, value: Any) -> bool:
    """May a setting of a `cls` layer go where the other Keras has no such setting? When it is at its
    default (left off), and always for an initializer: the weights are copied, never initialized."""
    if key.endswith("_initializer"):
        return True
    for base in cls.__mro__:
        parameter = inspect.signature(vars(base)["__init__"]).parameters.get(key) if "__init__" in vars(base) else None
        if parameter is not None and parameter.default is not inspect.Parameter.empty:
            return bool(parameter.default == value)
    return value is None or value is False


def _dtype(value: Any) -> Any:
    """A Keras 3 dtype policy, serialized as an object, by its name (what tf_keras's `dtype` takes)."""
    return value["config"]["name"] if isinstance(value, dict) else value


def _serialized(value: Any, namespace: Any, where: str) -> Any:
    """A Keras 3 initializer, regularizer or constraint, as the tf_keras object of the same class."""
    if not isinstance(value, dict):
        return value
    cls = getattr(namespace, value["class_name"], None)
    if cls is None:
        raise NoEquivalent(f"{where} uses {value['class_name']}, which tf_keras does not have; {FIX}")
    config = value.get("config") or {}
    return cls(**{key: item for key, item in config.items() if key in accepted(cls)})


def _activation(value: Any, where: str) -> Any:
    activation = activations.to_tf_keras(value)
    if activation is None:
        raise NoEquivalent(f"{where} uses activation {value!r}, which this pipeline does not translate; {FIX}")
    return activation


def tf_keras_config(layer: Any, cls: type) -> dict[str, Any]:
    """The Keras 3 layer's config as tf_keras's `cls` takes it."""
    where, takes, config = describe(layer), accepted(cls), layer.get_config()
    renamed = RENAMED.get(cls.__name__, {})
    translated: dict[str, Any] = {}
    for key, value in config.items():
        key = renamed.get(key, key)
        kind = key.rpartition("_")[2]
        if key == "dtype":
            translated[key] = _dtype(value)
        elif kind in SERIALIZED and key in takes:
            translated[key] = _serialized(value, SERIALIZED[kind], where)
        elif key == "activation":
            translated[key] = _activation(value, where)
        elif key in takes:
            translated[key] = value
        elif not droppable(type(layer), key, value):
            raise NoEquivalent(f"{where} sets {key} = {value!r}, which tf_keras's {cls.__name__} does not have; "
                               f"leave it at its default")
    return translated


def not_shared(name: str, class_name: str) -> str:
    """The refusal of a Lambda or a custom layer class, which no tf_keras layer can stand for."""
    kind = "a Lambda (Python code)" if class_name == "Lambda" else "a layer class tf_keras does not share"
    return f"layer '{name}' ({class_name}) is {kind}; {FIX}"


def _layer(layer: Any) -> Apply:
    name = type(layer).__name__
    if name not in LAYERS or not type(layer).__module__.startswith("keras."):
        raise NoEquivalent(not_shared(layer.name, name))
    cls = getattr(keras.layers, name)
    rebuilt = cls.from_config(tf_keras_config(layer, cls))
    return lambda args, kwargs: rebuilt(*args, **kwargs)


def _is_tensor(value: Any) -> bool:
    return hasattr(value, "shape") and not isinstance(value, (np.ndarray, np.generic))


def _with_constant(kind: str, operation: Any, args: tuple) -> Apply | None:
    """`x + c`, `x - c`, `c - x`, `x * c`, `x / c` (c a scalar) as a Rescaling: x * scale + offset."""
    tensor_first = _is_tensor(args[0])
    constant = args[1] if tensor_first else args[0]
    if np.ndim(constant) != 0:
        return None
    c = float(constant)
    affine = {"Add": (1.0, c), "Multiply": (c, 0.0),
              "Subtract": (1.0, -c) if tensor_first else (-1.0, c),
              "Divide": (1.0 / c, 0.0) if tensor_first and c != 0 else None}
    affine["TrueDivide"] = affine["Divide"]
    if affine.get(kind) is None:
        return None
    scale, offset = affine[kind] or (1.0, 0.0)
    rescaling = keras.layers.Rescaling(scale, offset, name=operation.name)
    return lambda filled, kwargs: rescaling(filled[0] if tensor_first else filled[1])


def _op(operation: Any, node: Any) -> Apply | None:
    kind, args = type(operation).__name__, node.arguments.args
    if kind in UNARY_OPS and len(args) == 1:
        layer = keras.layers.Activation(activations.to_tf_keras(UNARY_OPS[kind]), name=operation.name)
        return lambda filled, kwargs: layer(filled[0])
    if kind == "Negative" and len(args) == 1:
        negate = keras.layers.Rescaling(-1.0, name=operation.name)
        return lambda filled, kwargs: negate(filled[0])
    if len(args) != 2 or node.arguments.kwargs:
        return None
    if all(_is_tensor(arg) for arg in args) and kind in MERGE_OPS:
        merge = getattr(keras.layers, MERGE_OPS[kind])(name=operation.name)
        return lambda filled, kwargs: merge([filled[0], filled[1]])
    if sum(_is_tensor(arg) for arg in args) == 1:
        return _with_constant(kind, operation, args)
    return None


def translate(operation: Any, node: Any) -> Apply:
    """How to apply the tf_keras equivalent of one Keras 3 layer or op, as a node of the graph records it."""
    if isinstance(operation, keras3().layers.Layer):
        return _layer(operation)
    apply = _op(operation, node)
    if apply is None:
        raise NoEquivalent(f"op '{operation.name}' ({type(operation).__name__}) on tensors has no tf_keras layer "
                           f"that computes it; {FIX}")
    return apply
