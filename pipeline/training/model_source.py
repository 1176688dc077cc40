"""Where a run's classifier comes from: a built-in architecture (`model.name`), a user's builder
function (`model.builder`) or a user's trained model file (`model.path`).

Every source is checked the moment it is built or loaded: a flat graph, the data's input
shape and class count, and layers the configured pruning and QAT can handle. The last check
is only there to fail early (the prune and quantize settings are not part of the pretrain and
finetune cache keys); the prune and quantize stages check again before they rewrite the model.

A Keras 3 model (a builder's, or a file Keras 3 wrote) is rebuilt as tf_keras first
(pipeline.keras3) and must compute the same outputs on the validation images; the check's
numbers travel with the model for the manifest.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from models import build_classifier, encoder_of
from models.user import build_with, check_fits, check_graph_model, custom_layers, load_model_file
from pipeline.core.tf_env import keras
from pipeline.keras3 import activations  # noqa: F401 - registers the activations rebuilt Keras 3 models use
from pipeline.keras3.equivalence import check_equivalent
from pipeline.keras3.files import is_keras3_file, load_keras3_file
from pipeline.keras3.rebuild import rebuild
from pipeline.training.config import PipelineConfig
from pipeline.training.image_set import ImageSet
from pipeline.training.tfmot_support import check_compressible


class Classifier(NamedTuple):
    model: keras.Model
    keras3_check: dict[str, Any] | None  # the rebuild's check, for a Keras 3 model; else None


def _check(model: keras.Model, origin: str, config: PipelineConfig, input_shape: tuple[int, ...],
           num_classes: int) -> keras.Model:
    check_graph_model(model, origin)
    check_fits(model, origin, input_shape, num_classes)
    check_compressible(model, config.prune.target_sparsity, config.quantize.method)
    return model


def _from_keras3(original: Any, origin: str, config: PipelineConfig, images: ImageSet,
                 num_classes: int) -> Classifier:
    """The tf_keras rebuild of a Keras 3 model, checked like any classifier and against the original."""
    model = _check(rebuild(original, origin), origin, config, images.image_shape, num_classes)
    return Classifier(model, check_equivalent(original, model, images, origin))


def new_classifier(config: PipelineConfig, images: ImageSet, num_classes: int) -> Classifier:
    """An untrained classifier for `images` (the validation split: a Keras 3 builder's model is checked
    on them): the user's builder's, else the named built-in architecture."""
    input_shape = images.image_shape
    if config.model.builder:
        origin = f"model.builder {config.model.builder!r}"
        model = build_with(config.model.builder, input_shape, num_classes)
        if not isinstance(model, keras.Model):
            return _from_keras3(model, origin, config, images, num_classes)
        return Classifier(_check(model, origin, config, input_shape, num_classes), None)
    model = build_classifier(config.model.name, input_shape, num_classes, config.model.width)
    return Classifier(_check(model, f"model.name {config.model.name!r}", config, input_shape, num_classes), None)


def new_encoder(config: PipelineConfig, classifier: keras.Model) -> keras.Model:
    """The classifier's layers up to its head (model.encoder_layer, else the last Dense layer's input)."""
    return encoder_of(classifier, config.model.encoder_layer)


def trained_classifier(config: PipelineConfig, images: ImageSet, num_classes: int) -> Classifier:
    """The user's trained classifier from model.path (checked against the data of `images`)."""
    path = Path(config.model.path)
    origin = f"model.path {path}"
    if is_keras3_file(path):
        return _from_keras3(load_keras3_file(path, origin), origin, config, images, num_classes)
    return Classifier(_check(load_model_file(path), origin, config, images.image_shape, num_classes), None)


def skip_reason(config: PipelineConfig) -> str:
    """Why pretraining and fine-tuning do not train (said in the log and the manifest)."""
    return f"model.path {config.model.path} is a trained classifier: it enters at pruning"


def load_stage_model(path: Path, config: PipelineConfig) -> keras.Model:
    """A classifier an earlier stage saved, with the builder module's custom layers in scope."""
    with keras.utils.custom_object_scope(custom_layers(config.model.builder)):
        return keras.models.load_model(path, compile=False)
