"""A builder for tests that need a model to learn in a few dozen steps: no BatchNorm (its moving
statistics need hundreds of steps before evaluation means anything) and no global pooling."""
from pipeline.core.tf_env import keras


def plain_cnn(input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x))
