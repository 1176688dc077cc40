"""A classifier written and trained with today's Keras (Keras 3), as in README "Your own model".

Plain Keras 3, no pipeline import and no TF_USE_LEGACY_KERAS:

    .venv/bin/python examples/keras3_model.py    # writes build/my_keras3_classifier.keras

then `[model] path = "build/my_keras3_classifier.keras"` enters it at pruning
(configs/own-keras3.toml). `residual_cnn` also works as `[model] builder =
"examples.keras3_model:residual_cnn"`. The pipeline feeds images as pixels / 255, so this script does too.
"""
from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import keras
import numpy as np

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def residual_cnn(input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """Conv + BatchNorm + ReLU6 stages, each with a depthwise-separable residual block, then dropout."""
    inputs = keras.Input(shape=input_shape)
    x = inputs
    for filters in (64, 128):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False)(x)
        x = keras.layers.ReLU(6.0)(keras.layers.BatchNormalization()(x))
        y = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
        y = keras.layers.ReLU(6.0)(keras.layers.BatchNormalization()(y))
        y = keras.layers.BatchNormalization()(keras.layers.Conv2D(filters, 1, use_bias=False)(y))
        x = keras.layers.Add()([x, y])
    x = keras.layers.Dropout(0.2)(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x))


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (the MNIST format): big-endian dimensions after a 4-byte magic number, then uint8."""
    data = gzip.decompress(path.read_bytes())
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(split: str) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(FASHION_MNIST / f"{split}-images-idx3-ubyte.gz")
    labels = read_idx(FASHION_MNIST / f"{split}-labels-idx1-ubyte.gz")
    return images[..., None].astype(np.float32) / 255.0, labels.astype(np.int64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--out", default="build/my_keras3_classifier.keras")
    args = parser.parse_args()
    keras.utils.set_random_seed(1)
    (x_train, y_train), (x_test, y_test) = load("train"), load("t10k")
    model = residual_cnn(x_train.shape[1:], 10)
    steps = args.epochs * -(-len(x_train) // 128)
    model.compile(keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(2e-3, steps)),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=128, verbose=2)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out)
    print(f"saved {args.out} (Keras {keras.__version__}, test accuracy {accuracy:.4f})")


if __name__ == "__main__":
    main()
