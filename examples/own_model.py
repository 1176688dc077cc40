"""Your own model in the pipeline, two ways (README "Your own model").

- `small_cnn` is a builder: `[model] builder = "examples.own_model:small_cnn"` trains it through
  every stage, self-supervised pretraining included (configs/own-builder.toml).
- `python -m examples.own_model` trains a classifier yourself and saves build/my_classifier.keras;
  `[model] path = "build/my_classifier.keras"` enters it at pruning (configs/own-model.toml).
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # TF-MOT needs Keras 2 (tf_keras)

import tf_keras as keras  # noqa: E402


def small_cnn(input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """A flat functional classifier; its encoder is everything before the last Dense layer."""
    inputs = keras.Input(shape=input_shape)
    x = inputs
    for filters in (16, 32, 64):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization(momentum=0.9)(x)  # statistics that settle in a short run
        x = keras.layers.ReLU(6.0)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x))


def main() -> None:
    from pipeline.core.preprocessing import to_float
    from pipeline.training.config import DataConfig
    from pipeline.training.datasets import load_dataset

    data = load_dataset(DataConfig(train_limit=6000, test_limit=1000))
    model = small_cnn(data.input_shape, data.num_classes)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(to_float(data.train.pixels), data.train.labels, epochs=3, batch_size=64, verbose=2)
    _, accuracy = model.evaluate(to_float(data.test.pixels), data.test.labels, verbose=0)
    os.makedirs("build", exist_ok=True)
    model.save("build/my_classifier.keras")
    print(f"saved build/my_classifier.keras (test accuracy {accuracy:.3f})")


if __name__ == "__main__":
    main()
