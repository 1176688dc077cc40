"""Pipeline configuration: TOML files checked against typed dataclasses.

Each stage has its own section, so a stage's cache key depends only on the settings it
reads. Unknown keys, wrong types and out-of-range values are refused with the file and
key named, before any work starts.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.names import check_name
from pipeline.core.runs import DEFAULT_BUILD_DIR, DEFAULT_RUN
from pipeline.core.toml_config import choice, in_range, read_toml, section_from_dict
from pipeline.errors import UserError

DEFAULT_DATASET = "/usr/share/datasets/fashion-mnist"
MODEL_NAMES = ("resnet8", "ds_cnn", "mobilenet_v2")
STRATEGIES = ("auto", "default", "mirrored", "multi_worker")
PRETRAIN_METHODS = ("simclr", "rotation", "none")
QUANTIZE_METHODS = ("pqat", "qat", "ptq")
DATA_FORMATS = ("idx", "cifar10", "npz", "folder")
COLORS = ("rgb", "grayscale")
# tf.image.resize methods; the one used is recorded in the manifest for devices to repeat.
RESIZE_METHODS = ("bilinear", "nearest", "bicubic", "area", "lanczos3")
# Far above any sensible setting, low enough that a typo fails at once instead of running for weeks.
UPPER_LIMITS = {"model.width": 64, "pretrain.learning_rate": 10, "pretrain.temperature": 100,
                "finetune.learning_rate": 10, "prune.learning_rate": 10, "quantize.learning_rate": 10,
                **{f"{stage}.epochs": 100_000 for stage in ("pretrain", "finetune", "prune", "quantize")},
                **{f"{stage}.batch_size": 1 << 20 for stage in ("pretrain", "finetune", "prune", "quantize")},
                "pretrain.projection_dim": 1 << 16, "convert.eval_samples": 1 << 24}


@dataclass(frozen=True)
class RunConfig:
    name: str = DEFAULT_RUN
    seed: int = 1234
    build_dir: str = DEFAULT_BUILD_DIR
    # tf.distribute for the training stages: auto = multi_worker when TF_CONFIG names several
    # workers, mirrored over the local GPUs when there are two or more, else the default strategy.
    strategy: str = "auto"


@dataclass(frozen=True)
class DataConfig:
    format: str = "idx"
    path: str = DEFAULT_DATASET
    validation_size: int = 5000  # images carved from the training split, never trained on
    train_limit: int = 0  # 0 = all; small values make tiny test runs
    test_limit: int = 0
    # format = "folder" only: every image is decoded, converted to `color` and resized to image_size.
    image_size: list = field(default_factory=list)  # [H, W]; required for folders
    color: str = "rgb"
    resize: str = "bilinear"
    strict: bool = False  # refuse (instead of skipping and counting) images that do not decode
    unlabeled_path: str = ""  # a folder of images without labels (any depth) added to pretraining


@dataclass(frozen=True)
class ModelConfig:
    name: str = "resnet8"
    width: float = 1.0  # filter multiplier (MobileNet's `alpha` for mobilenet_v2)
    path: str = ""  # a trained classifier (.keras, .h5, SavedModel folder) that enters at pruning
    builder: str = ""  # "package.module:function", (input_shape, num_classes) -> keras.Model
    encoder_layer: str = ""  # the encoder's last layer; default: the input of the last Dense layer


@dataclass(frozen=True)
class PretrainConfig:
    method: str = "simclr"
    epochs: int = 5
    batch_size: int = 256
    learning_rate: float = 2e-3
    temperature: float = 0.2  # NT-Xent temperature
    projection_dim: int = 64


@dataclass(frozen=True)
class FinetuneConfig:
    label_fraction: float = 0.1
    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 1e-3
    augment: bool = True
    scratch_baseline: bool = True  # also train the same recipe from random weights


@dataclass(frozen=True)
class PruneConfig:
    target_sparsity: float = 0.5
    epochs: int = 4
    batch_size: int = 64
    learning_rate: float = 3e-4
    frequency: int = 20  # prune every N steps; TF-MOT's default 100 is too coarse for short runs


@dataclass(frozen=True)
class QuantizeConfig:
    method: str = "pqat"
    epochs: int = 2
    batch_size: int = 64
    learning_rate: float = 1e-4


@dataclass(frozen=True)
class ConvertConfig:
    calibration: str = ""  # representative samples file; "" = drawn from the run's training split
    calibration_dir: str = "calibration_data"  # a drawn set is also published here as <run name>.npz + .json
    eval_samples: int = 200  # labelled test images shipped with the model for on-device checks


@dataclass(frozen=True)
class PipelineConfig:
    run: RunConfig = field(default_factory=RunConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    prune: PruneConfig = field(default_factory=PruneConfig)
    quantize: QuantizeConfig = field(default_factory=QuantizeConfig)
    convert: ConvertConfig = field(default_factory=ConvertConfig)
    source: str = "<defaults>"  # the file it was read from, for error messages

    def section(self, name: str) -> dict[str, Any]:
        """One section as a plain dict (what a stage's cache key hashes)."""
        return dataclasses.asdict(getattr(self, name))


def _setting(config: PipelineConfig, key: str) -> Any:
    section, name = key.split(".")
    return getattr(getattr(config, section), name)


def validate(config: PipelineConfig) -> PipelineConfig:
    """Range and choice checks that types alone cannot express."""
    src = config.source
    choice(config.data.format, DATA_FORMATS, f"{src}: data.format")
    _validate_images(config.data, src)
    choice(config.model.name, MODEL_NAMES, f"{src}: model.name")
    choice(config.run.strategy, STRATEGIES, f"{src}: run.strategy")
    if config.model.path and config.model.builder:
        raise UserError(f"{src}: model.path and model.builder are both set; keep one (path: a trained model, "
                        f"builder: an architecture to train)")
    choice(config.pretrain.method, PRETRAIN_METHODS, f"{src}: pretrain.method")
    choice(config.quantize.method, QUANTIZE_METHODS, f"{src}: quantize.method")
    in_range(config.finetune.label_fraction, 0.0, 1.0, f"{src}: finetune.label_fraction",
             low_open=True, high_open=False)
    in_range(config.prune.target_sparsity, 0.0, 1.0, f"{src}: prune.target_sparsity", low_open=False, high_open=True)
    if config.quantize.method == "pqat" and config.prune.target_sparsity == 0:  # see core/variants.compressed_name
        raise UserError(f"{src}: quantize.method = 'pqat' preserves pruned zeros, but prune.target_sparsity = 0 "
                        f"prunes nothing; use 'qat' for an unpruned model")
    positive = {
        "model.width": config.model.width,
        "pretrain.batch_size": config.pretrain.batch_size,
        "pretrain.learning_rate": config.pretrain.learning_rate,
        "pretrain.temperature": config.pretrain.temperature,
        "finetune.epochs": config.finetune.epochs,
        "finetune.batch_size": config.finetune.batch_size,
        "prune.batch_size": config.prune.batch_size,
        "prune.frequency": config.prune.frequency,
        "quantize.batch_size": config.quantize.batch_size,
        "convert.eval_samples": config.convert.eval_samples,  # on-device accuracy needs at least one image
    }
    for key, value in positive.items():
        if value <= 0:
            raise UserError(f"{src}: {key} = {value!r} must be greater than 0")
    for key in ("pretrain.epochs", "prune.epochs", "quantize.epochs", "data.validation_size",
                "data.train_limit", "data.test_limit"):
        if _setting(config, key) < 0:
            raise UserError(f"{src}: {key} must not be negative")
    for key, limit in UPPER_LIMITS.items():
        if _setting(config, key) > limit:
            raise UserError(f"{src}: {key} = {_setting(config, key)!r} must be at most {limit:g}")
    check_name(config.run.name, f"{src}: run.name")
    if not config.convert.calibration_dir:
        raise UserError(f"{src}: convert.calibration_dir is empty; name the folder a drawn calibration set is "
                        f"published in (default \"calibration_data\")")
    return config


def _validate_images(data: DataConfig, src: str) -> None:
    """The folder-only keys: a positive [H, W], a known color and resize method."""
    choice(data.color, COLORS, f"{src}: data.color")
    choice(data.resize, RESIZE_METHODS, f"{src}: data.resize")
    size = data.image_size
    if size and (len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)):
        raise UserError(f"{src}: data.image_size = {size!r} must be [height, width], two positive integers")
    if data.format == "folder" and not size:
        raise UserError(f"{src}: data.image_size = [height, width] is required with data.format = \"folder\" "
                        f"(images are resized to it)")
    if data.format == "folder" and (data.train_limit or data.test_limit):
        raise UserError(f"{src}: data.train_limit / test_limit do not apply to data.format = \"folder\"; "
                        f"point data.path at a smaller folder instead")
    if data.unlabeled_path and data.format != "folder":
        raise UserError(f"{src}: data.unlabeled_path needs data.format = \"folder\" "
                        f"(the npz format takes an x_unlabeled array instead)")


def load_config(path: str | Path) -> PipelineConfig:
    """Read and validate a pipeline TOML file."""
    path = Path(path)
    raw = read_toml(path)
    hints = typing.get_type_hints(PipelineConfig)
    sections = {f.name for f in dataclasses.fields(PipelineConfig)} - {"source"}
    unknown = sorted(set(raw) - sections)
    if unknown:
        raise UserError(f"{path}: unknown section [{unknown[0]}] (valid sections: {', '.join(sorted(sections))})")
    values: dict[str, Any] = {}
    for name, table in raw.items():
        if not isinstance(table, dict):
            raise UserError(f"{path}: '{name}' must be a [section] table")
        values[name] = section_from_dict(hints[name], table, f"{path}: {name}")
    return validate(PipelineConfig(**values, source=str(path)))
