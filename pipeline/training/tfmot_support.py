"""Can TF-MOT compress this model? Asked of its own registries before any training, so that a
layer it does not know costs the user one line, not a pretraining run.

Pruning wraps Conv2D and Dense layers (pipeline.training.pruning); TF-MOT knows only the
built-in classes, not subclasses of them. Quantization-aware training (QAT and PQAT) needs a
default int8 config for every layer (pipeline.training.qat_annotation adds one for the elementwise
layers a Keras 3 model brings); a Lambda, a custom layer or most preprocessing layers have none.
Post-training quantization needs neither: the converter quantizes whatever it can.
"""
from __future__ import annotations

import importlib

from pipeline.core.tf_env import keras, tfmot
from pipeline.errors import UserError
from pipeline.training.pruning import is_prunable
from pipeline.training.qat_annotation import output_only


def _describe(layer: keras.layers.Layer) -> str:
    return f"layer '{layer.name}' ({type(layer).__name__})"


def check_prunable(model: keras.Model) -> None:
    # TF-MOT's own test (PruneLowMagnitude's), which its public API does not export.
    registry = importlib.import_module("tensorflow_model_optimization.python.core.sparsity.keras.prune_registry")
    for layer in model.layers:
        known = registry.PruneRegistry.supports(layer) or isinstance(layer, tfmot.sparsity.keras.PrunableLayer)
        if is_prunable(layer) and not known:
            raise UserError(
                f"{_describe(layer)} subclasses a prunable layer type but TF-MOT can only prune the built-in "
                f"{type(layer).__mro__[1].__name__}; use the built-in layer, or set prune.target_sparsity = 0")


def _folded_batch_norm(layer: keras.layers.Layer) -> bool:
    """A BatchNormalization right after a Conv2D, DepthwiseConv2D or Dense: TF-MOT's default
    8-bit transforms fold it into that layer instead of quantizing it on its own."""
    if not isinstance(layer, keras.layers.BatchNormalization):
        return False
    producer = layer.inbound_nodes[0].inbound_layers
    return isinstance(producer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense))


def _activation_known(layer: keras.layers.Layer) -> bool:
    """TF-MOT quantizes an Activation layer only for the activations it names (relu, swish, sigmoid...)."""
    configs = importlib.import_module(
        "tensorflow_model_optimization.python.core.quantization.keras.default_8bit.default_8bit_quantize_registry")
    try:
        configs.Default8BitActivationQuantizeConfig().get_output_quantizers(layer)
    except ValueError:
        return False
    return True


def qat_unsupported(model: keras.Model) -> list[keras.layers.Layer]:
    """The layers TF-MOT's default 8-bit scheme has no quantize config for."""
    registry = tfmot.quantization.keras.default_8bit.Default8BitQuantizeScheme().get_quantize_registry()
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer) or _folded_batch_norm(layer):
            continue
        # TF-MOT itself leaves a Lambda float with only a warning, which full-int8 conversion cannot use.
        if output_only(layer):
            continue
        if (isinstance(layer, keras.layers.Lambda) or not registry.supports(layer)
                or (isinstance(layer, keras.layers.Activation) and not _activation_known(layer))):
            found.append(layer)
    return found


def check_quantizable(model: keras.Model) -> None:
    unsupported = qat_unsupported(model)
    if not unsupported:
        return
    named = _describe(unsupported[0])
    if len(unsupported) > 1:
        others = ", ".join(f"'{layer.name}' ({type(layer).__name__})" for layer in unsupported[1:4])
        more = f" and {len(unsupported) - 4} more" if len(unsupported) > 4 else ""
        named = f"layers '{unsupported[0].name}' ({type(unsupported[0]).__name__}), {others}{more}"
    raise UserError(
        f"{named} {'is' if len(unsupported) == 1 else 'are'} not supported by TF-MOT quantization-aware training "
        f"(no int8 quantize config for {'it' if len(unsupported) == 1 else 'them'}); set quantize.method = \"ptq\" "
        f"(the converter quantizes it after training) or replace it with built-in Keras layers")


def check_compressible(model: keras.Model, target_sparsity: float, quantize_method: str) -> None:
    """Refuse, in one line, a model the configured pruning or QAT cannot handle."""
    if target_sparsity > 0:
        check_prunable(model)
    if quantize_method != "ptq":
        check_quantizable(model)
