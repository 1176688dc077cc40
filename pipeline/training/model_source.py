"""Where a run's classifier comes from: a built-in architecture (`model.name`), a user's builder
function (`model.builder`) or a user's trained model file (`model.path`).

Every source is checked the moment it is built or loaded: a flat graph, the data's input
shape and class count, and layers the configured pruning and QAT can handle. The last check
is only there to fail early (the prune and quantize settings are not part of the pretrain and
finetune cache keys); the prune and quantize stages check again before they rewrite the model.
"""
from __future__ import annotations

from pathlib import Path

from models import build_classifier, encoder_of
from models.user import build_with, check_fits, check_graph_model, custom_layers, load_model_file
from pipeline.core.tf_env import keras
from pipeline.training.config import PipelineConfig
from pipeline.training.tfmot_support import check_compressible


def _check(model: keras.Model, origin: str, config: PipelineConfig, input_shape: tuple[int, ...],
           num_classes: int) -> keras.Model:
    check_graph_model(model, origin)
    check_fits(model, origin, input_shape, num_classes)
    check_compressible(model, config.prune.target_sparsity, config.quantize.method)
    return model


def new_classifier(config: PipelineConfig, input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """An untrained classifier: the user's builder's, else the named built-in architecture."""
    if config.model.builder:
        model = build_with(config.model.builder, input_shape, num_classes)
        return _check(model, f"model.builder {config.model.builder!r}", config, input_shape, num_classes)
    model = build_classifier(config.model.name, input_shape, num_classes, config.model.width)
    return _check(model, f"model.name {config.model.name!r}", config, input_shape, num_classes)


def new_encoder(config: PipelineConfig, classifier: keras.Model) -> keras.Model:
    """The classifier's layers up to its head (model.encoder_layer, else the last Dense layer's input)."""
    return encoder_of(classifier, config.model.encoder_layer)


def trained_classifier(config: PipelineConfig, input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """The user's trained classifier from model.path."""
    path = Path(config.model.path)
    return _check(load_model_file(path), f"model.path {path}", config, input_shape, num_classes)


def skip_reason(config: PipelineConfig) -> str:
    """Why pretraining and fine-tuning do not train (said in the log and the manifest)."""
    return f"model.path {config.model.path} is a trained classifier: it enters at pruning"


def load_stage_model(path: Path, config: PipelineConfig) -> keras.Model:
    """A classifier an earlier stage saved, with the builder module's custom layers in scope."""
    with keras.utils.custom_object_scope(custom_layers(config.model.builder)):
        return keras.models.load_model(path, compile=False)
