"""Does the tf_keras rebuild compute what the user's Keras 3 model computes? Measured on real
images (the run's validation split), in inference mode (BatchNormalization on its moving
statistics, Dropout off), before any stage trains or compresses it."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple, Protocol

import numpy as np

from pipeline.core.preprocessing import to_float
from pipeline.core.tf_env import keras
from pipeline.errors import UserError
from pipeline.keras3 import keras3

TOLERANCE = 1e-4  # max abs difference of the outputs (logits, or probabilities for a softmax head)
BATCH = 128


class Images(Protocol):
    """What the check reads: images in batches, and how many (the training package's ImageSet is one)."""

    def batches(self, batch_size: int) -> Iterable[np.ndarray]: ...

    def __len__(self) -> int: ...


class Comparison(NamedTuple):
    max_abs_diff: float  # the largest |Keras 3 output - tf_keras output|
    argmax_agreement: float  # the fraction of images both models give the same top class


def compare(keras3_model: Any, tf_keras_model: keras.Model, images: Images) -> Comparison:
    """The two models' outputs on `images`, compared batch by batch."""
    worst, agreeing = 0.0, 0
    for batch in images.batches(BATCH):
        x = to_float(batch)
        ours, theirs = np.asarray(keras3_model(x, training=False)), tf_keras_model(x, training=False).numpy()
        difference = np.abs(ours - theirs)
        worst = max(worst, float(np.max(difference)) if np.all(np.isfinite(difference)) else float("inf"))
        agreeing += int(np.sum(np.argmax(ours, axis=-1) == np.argmax(theirs, axis=-1)))
    return Comparison(worst, agreeing / max(len(images), 1))


def check_equivalent(original: Any, rebuilt: keras.Model, images: Images, origin: str) -> dict[str, Any]:
    """The check's record for the manifest; a rebuild that computes something else is refused."""
    difference = compare(original, rebuilt, images).max_abs_diff
    if not difference <= TOLERANCE:
        raise UserError(f"{origin}: its tf_keras rebuild's outputs differ from the Keras 3 model's by up to "
                        f"{difference:.3g} on the {len(images)} validation images (tolerance {TOLERANCE:g}); "
                        f"please report it with the model file, and meanwhile give the model as tf_keras")
    return {"keras_version": keras3().__version__, "layers": len(rebuilt.layers), "images": len(images),
            "max_abs_diff": difference, "tolerance": TOLERANCE}
