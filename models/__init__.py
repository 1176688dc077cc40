"""Model architectures as flat functional tf_keras builders, selected by name.

Every builder returns a classifier whose global-pooling layer is named `features` (the
encoder's output) and whose last layer is the logits `Dense` named `logits`. Layer names
are fixed so that pretrained encoder weights load by name into a fresh classifier.
Only ops that full-int8 TFLite and the Edge TPU handle well are used.
"""
from __future__ import annotations

from collections.abc import Callable

from models.ds_cnn import build_ds_cnn
from models.resnet8 import build_resnet8

BUILDERS: dict[str, Callable] = {"resnet8": build_resnet8, "ds_cnn": build_ds_cnn}
FEATURES_LAYER = "features"
LOGITS_LAYER = "logits"


def build_classifier(name: str, input_shape: tuple[int, int, int], num_classes: int, width: float = 1.0):
    """Build the named architecture; unknown names list the valid ones."""
    if name not in BUILDERS:
        raise ValueError(f"unknown model '{name}'; choose one of: {', '.join(sorted(BUILDERS))}")
    return BUILDERS[name](input_shape=input_shape, num_classes=num_classes, width=width)


def encoder_of(classifier):
    """The classifier's layers up to `features`, as a model sharing the same layer objects."""
    from pipeline.core.tf_env import keras

    return keras.Model(classifier.inputs, classifier.get_layer(FEATURES_LAYER).output, name="encoder")
