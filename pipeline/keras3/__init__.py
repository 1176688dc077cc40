"""Keras 3 models in a tf_keras pipeline: rebuilt as tf_keras to go in (TF-MOT works only with
tf_keras), checked to compute the same, and written back out as Keras 3."""
from __future__ import annotations

from types import ModuleType


def keras3() -> ModuleType:
    """Keras 3 itself: `import keras` is Keras 3 whatever TF_USE_LEGACY_KERAS says (that switches only
    what tf.keras means). Imported on first use: most runs never need it."""
    import keras

    return keras
