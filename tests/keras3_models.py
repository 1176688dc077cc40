"""Keras 3 models for the tests, written as a Keras 3 user writes them (`import keras`)."""
from __future__ import annotations

import numpy as np
import pytest

# A builder module a user would write with Keras 3: a residual depthwise block, and one with a custom layer.
KERAS3_BUILDERS = '''
import keras


@keras.saving.register_keras_serializable("user")
class Scale(keras.layers.Layer):
    def call(self, inputs):
        return inputs * 0.5


def residual_cnn(input_shape, num_classes):
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization(momentum=0.9)(x)
    x = keras.layers.ReLU(6.0)(x)
    y = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
    y = keras.layers.BatchNormalization(momentum=0.9)(y)
    y = keras.layers.ReLU(6.0)(y)
    y = keras.layers.Conv2D(16, 1, use_bias=False)(y)
    y = keras.layers.BatchNormalization(momentum=0.9)(y)
    x = keras.layers.Add()([x, y])
    x = keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x))


def with_custom_layer(input_shape, num_classes):
    inputs = keras.Input(shape=input_shape)
    x = Scale(name="scale")(keras.layers.Conv2D(8, 3, strides=2)(inputs))
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x))


def with_lambda(input_shape, num_classes):
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Lambda(lambda t: t * 0.5, name="halve")(keras.layers.Conv2D(8, 3, strides=2)(inputs))
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x))
'''


def randomize(model, seed: int = 0) -> None:
    """Every vector weight (biases, BatchNorm and Normalization statistics) moved away from its initial
    value, so that a rebuild that drops or reorders one shows; kernels keep their initialization, so
    the outputs stay of the size a trained model's logits have."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:
            layer.set_weights([rng.uniform(0.8, 1.2, w.shape).astype(w.dtype) if w.ndim <= 1 else w
                               for w in weights])
        if hasattr(layer, "finalize_state"):  # as Keras 3 does after loading a Normalization's statistics
            layer.finalize_state()


def every_layer_model(input_shape=(16, 16, 3), num_classes=4):
    """Every layer class and recorded op the translation table names that the applications do not use."""
    import keras

    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Normalization(axis=-1)(inputs)
    x = keras.layers.SeparableConv2D(8, 3, padding="same")(x)
    x = keras.layers.LeakyReLU(negative_slope=0.1)(x)
    a = keras.layers.AveragePooling2D(2)(x)
    b = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Concatenate()([keras.layers.Subtract()([a, b]), (a - 1.0) / 4.0, 2.0 - b, -a])
    x = keras.layers.Conv2D(8, 1, activation="hard_silu")(x)
    x = keras.layers.Activation("relu6")(x)
    x = keras.ops.sigmoid(x) + keras.ops.relu(x) * keras.ops.silu(x)
    x = keras.layers.Activation("hard_sigmoid")(x)
    flat = keras.layers.Flatten()(keras.layers.Reshape((8, 8, 8))(x))
    pooled = keras.layers.GlobalMaxPooling2D()(x)
    x = keras.layers.Concatenate()([keras.layers.Dense(8, activation="silu")(flat), pooled])
    return keras.Model(inputs, keras.layers.Softmax()(keras.layers.Dense(num_classes)(x)))


@pytest.fixture()
def keras3_builders(tmp_path, monkeypatch):
    """A module `keras3_builders` on sys.path, as a Keras 3 user's own package would be."""
    (tmp_path / "keras3_builders.py").write_text(KERAS3_BUILDERS)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "keras3_builders"
