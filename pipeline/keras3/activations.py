"""Keras 3 activation names in tf_keras, and back.

Most names mean the same function in both. Keras 3's `silu` is tf_keras's `swish`; `hard_silu`
(MobileNetV3's hard-swish), `hard_sigmoid` (relu6(x + 3) / 6, where tf_keras's own is 0.2x + 0.5)
and `relu6` have no tf_keras function, so they are defined here and registered: a tf_keras model
saved as HDF5 by a stage loads them back by name. Registering happens on import, so every
module that loads stage models imports this one (pipeline.training.model_source does).
"""
from __future__ import annotations

from collections.abc import Callable

from pipeline.core.tf_env import keras, tf

PACKAGE = "keras3"


@keras.saving.register_keras_serializable(PACKAGE)
def relu6(x: tf.Tensor) -> tf.Tensor:
    return tf.nn.relu6(x)


@keras.saving.register_keras_serializable(PACKAGE)
def hard_sigmoid(x: tf.Tensor) -> tf.Tensor:
    """Keras 3's hard sigmoid, relu6(x + 3) / 6."""
    return tf.nn.relu6(x + 3.0) * (1.0 / 6.0)


@keras.saving.register_keras_serializable(PACKAGE)
def hard_silu(x: tf.Tensor) -> tf.Tensor:
    """Hard-swish, x * relu6(x + 3) / 6 (Keras 3's `hard_silu`, alias `hard_swish`)."""
    return x * hard_sigmoid(x)


SAME = ("linear", "relu", "sigmoid", "softmax", "tanh", "elu", "selu", "softplus", "softsign", "exponential",
        "gelu", "mish")
OWN: dict[str, Callable] = {"relu6": relu6, "hard_sigmoid": hard_sigmoid, "hard_silu": hard_silu,
                            "hard_swish": hard_silu}
# Keras 3 name -> what tf_keras's `activation` argument takes.
TO_TF_KERAS: dict[str, str | Callable] = {**{name: name for name in SAME}, "silu": "swish", "swish": "swish", **OWN}


def to_tf_keras(name: object) -> str | Callable | None:
    """tf_keras's equivalent of a Keras 3 activation setting; None when it has none."""
    return TO_TF_KERAS.get(name) if isinstance(name, str) else None


def to_keras3(activation: Callable) -> str:
    """The Keras 3 name of a tf_keras layer's activation function (tf_keras's `swish` is Keras 3's `silu`)."""
    name = activation.__name__
    return "silu" if name == "swish" else name
