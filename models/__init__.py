"""Model architectures as flat functional tf_keras builders, selected by name.

Every builder returns a classifier whose global-pooling layer is named `features` (the
encoder's output) and whose last layer is the logits `Dense` named `logits`.
Only ops that full-int8 TFLite and the Edge TPU handle well are used.

The encoder of any classifier (built in or a user's) is its layers up to the classification
head: the output of a named layer when one is given, else the input of the last Dense layer.
"""
from __future__ import annotations

from collections.abc import Callable

from models.ds_cnn import build_ds_cnn
from models.mobilenet_v2 import build_mobilenet_v2
from models.resnet8 import build_resnet8
from pipeline.errors import UserError

BUILDERS: dict[str, Callable] = {"resnet8": build_resnet8, "ds_cnn": build_ds_cnn, "mobilenet_v2": build_mobilenet_v2}
FEATURES_LAYER = "features"
LOGITS_LAYER = "logits"


def build_classifier(name: str, input_shape: tuple[int, int, int], num_classes: int, width: float = 1.0):
    """Build the named architecture; unknown names list the valid ones."""
    if name not in BUILDERS:
        raise ValueError(f"unknown model '{name}'; choose one of: {', '.join(sorted(BUILDERS))}")
    return BUILDERS[name](input_shape=input_shape, num_classes=num_classes, width=width)


def encoder_output(classifier, layer_name: str = ""):
    """The encoder's output tensor: `layer_name`'s output, else the input of the last Dense layer."""
    from pipeline.core.tf_env import keras

    if layer_name:
        names = [layer.name for layer in classifier.layers]
        if layer_name not in names:
            raise UserError(f"model.encoder_layer = {layer_name!r} is not a layer of the model; "
                            f"its last layers are: {', '.join(names[-5:])}")
        return classifier.get_layer(layer_name).output
    dense = [layer for layer in classifier.layers if isinstance(layer, keras.layers.Dense)]
    if not dense:
        raise UserError("the model has no Dense classification head to find its encoder by; "
                        "name the encoder's last layer with [model] encoder_layer")
    return dense[-1].input


def encoder_of(classifier, layer_name: str = ""):
    """The classifier's layers up to its encoder output, as a model sharing the same layer objects."""
    from pipeline.core.tf_env import keras

    return keras.Model(classifier.inputs, encoder_output(classifier, layer_name), name="encoder")


def outputs_probabilities(classifier) -> bool:
    """True when the classifier ends in a softmax (a user's model often does), False for logits."""
    from pipeline.core.tf_env import keras

    last = classifier.layers[-1]
    last = getattr(last, "layer", last)  # inside TF-MOT's pruning or quantization wrapper
    activation = getattr(last, "activation", None)
    activation = getattr(activation, "activation", activation)  # inside QAT's QuantizeAwareActivation
    return isinstance(last, keras.layers.Softmax) or activation is keras.activations.softmax
