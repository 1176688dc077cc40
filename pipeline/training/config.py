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
from pipeline.core.variants import QUANTIZE_METHODS, recipe_of
from pipeline.errors import UserError
from pipeline.training.augment_policy import FOLLOW_FINETUNE, AugmentPolicy, AugmentSetting, policy_of, policy_record

DEFAULT_DATASET = "/usr/share/datasets/fashion-mnist"
MODEL_NAMES = ("resnet8", "ds_cnn", "mobilenet_v2")
STRATEGIES = ("auto", "default", "mirrored", "multi_worker")
PRETRAIN_METHODS = ("simclr", "rotation", "none")
DATA_FORMATS = ("idx", "cifar10", "npz", "folder")
COLORS = ("rgb", "grayscale")
# tf.image.resize methods; the one used is recorded in the manifest for devices to repeat.
RESIZE_METHODS = ("bilinear", "nearest", "bicubic", "area", "lanczos3")
CHANNEL_CRITERIA = ("l1", "bn_gamma")  # checked before TensorFlow loads; training/channel_pruning.py implements them
CENTROID_INITS = ("kmeans_plus_plus", "linear", "density_based")  # TF-MOT names (training/clustering.py)
RECOVERIES = ("labels", "teacher")  # how slim, prune and cluster fine-tune (training/teacher_training.py)
TRAINING_SECTIONS = ("pretrain", "finetune", "distill", "slim", "prune", "cluster", "quantize")
# `augment` (every training section): true (natural), false (none), a preset name, a table of knobs
# (pipeline/training/augment_policy.py) or, after fine-tuning, "finetune": [finetune]'s setting.
# Far above any sensible setting, low enough that a typo fails at once instead of running for weeks.
UPPER_LIMITS = {"model.width": 64, "distill.width": 64, "pretrain.temperature": 100, "distill.temperature": 100,
                "cluster.clusters": 1 << 16, "distill.view_epochs": 100_000,
                **{f"{stage}.learning_rate": 10 for stage in TRAINING_SECTIONS},
                **{f"{stage}.epochs": 100_000 for stage in TRAINING_SECTIONS},
                **{f"{stage}.batch_size": 1 << 20 for stage in TRAINING_SECTIONS},
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
    augment: AugmentSetting = True  # SimCLR's two views use the preset's strong policy


@dataclass(frozen=True)
class FinetuneConfig:
    label_fraction: float = 0.1
    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 1e-3
    augment: AugmentSetting = True
    scratch_baseline: bool = True  # also train the same recipe from random weights


@dataclass(frozen=True)
class DistillConfig:
    """Knowledge distillation: a smaller student learns from the fine-tuned model (the teacher)."""

    student: str = ""  # an architecture of models/ (resnet8, ds_cnn, mobilenet_v2); "" = no distillation
    width: float = 0.5  # the student's filter multiplier (the teacher's is model.width)
    temperature: float = 4.0  # T of the softened outputs
    alpha: float = 0.5  # weight of the hard-label term for labelled images; unlabeled ones get the soft term only
    unlabeled: bool = True  # also distill on the training images without labels (and data.unlabeled_path's)
    plain_baseline: bool = True  # also train the student on the labels alone: the evidence distillation pays
    # Every training against a teacher (here, and slim/prune/cluster's recovery = "teacher") shows the same
    # augmented view of the training images for this many epochs, so the teacher runs once per view, not
    # once per epoch (1 = a new view every epoch).
    view_epochs: int = 4
    epochs: int = 10
    batch_size: int = 128
    learning_rate: float = 2e-3
    augment: AugmentSetting = FOLLOW_FINETUNE


@dataclass(frozen=True)
class SlimConfig:
    """Structured compression that makes the model physically smaller, then fine-tuning on the labels."""

    channel_ratio: float = 0.0  # fraction of the filters of every prunable conv removed; 0 = none
    channel_criterion: str = "l1"  # l1 (kernel norm) or bn_gamma (|gamma| of the BatchNorm after the conv)
    channel_layers: list = field(default_factory=list)  # conv names; empty = every prunable conv
    lowrank_energy: float = 0.0  # kept fraction of each kernel's squared singular values; 0 = no factorization
    lowrank_layers: list = field(default_factory=list)  # layer names; empty = every layer where it saves MACs
    recovery: str = "labels"  # fine-tune on the labelled images, or "teacher": distil from the unslimmed model
    epochs: int = 4
    batch_size: int = 64
    learning_rate: float = 5e-4
    augment: AugmentSetting = FOLLOW_FINETUNE


@dataclass(frozen=True)
class PruneConfig:
    target_sparsity: float = 0.5
    epochs: int = 4
    batch_size: int = 64
    learning_rate: float = 3e-4
    frequency: int = 20  # prune every N steps; TF-MOT's default 100 is too coarse for short runs
    recovery: str = "labels"  # fine-tune on the labelled images, or "teacher": distil from the unpruned model
    augment: AugmentSetting = FOLLOW_FINETUNE


@dataclass(frozen=True)
class ClusterConfig:
    """Weight clustering (TF-MOT): every kernel keeps `clusters` distinct values; pruned zeros stay zero."""

    clusters: int = 0  # 0 = no clustering
    init: str = "kmeans_plus_plus"  # centroid initialization: kmeans_plus_plus, linear, density_based
    layers: list = field(default_factory=list)  # Conv2D/Dense names; empty = every kernel
    recovery: str = "labels"  # fine-tune on the labelled images, or "teacher": distil from the unclustered model
    epochs: int = 2
    batch_size: int = 64
    learning_rate: float = 1e-4
    augment: AugmentSetting = FOLLOW_FINETUNE


@dataclass(frozen=True)
class QuantizeConfig:
    method: str = "pqat"
    epochs: int = 2
    batch_size: int = 64
    learning_rate: float = 1e-4
    augment: AugmentSetting = FOLLOW_FINETUNE


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
    distill: DistillConfig = field(default_factory=DistillConfig)
    slim: SlimConfig = field(default_factory=SlimConfig)
    prune: PruneConfig = field(default_factory=PruneConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    quantize: QuantizeConfig = field(default_factory=QuantizeConfig)
    convert: ConvertConfig = field(default_factory=ConvertConfig)
    source: str = "<defaults>"  # the file it was read from, for error messages

    def section(self, name: str) -> dict[str, Any]:
        """One section as a plain dict (what a stage's cache key hashes and the manifest records), its
        `augment` setting as the policy it names."""
        values = dataclasses.asdict(getattr(self, name))
        if "augment" in values:
            values["augment"] = policy_record(*self._augment_setting(name))
        return values

    def augment_policy(self, section: str) -> AugmentPolicy:
        """The augmentation policy of a training section."""
        return policy_of(*self._augment_setting(section))

    def _augment_setting(self, section: str) -> tuple[AugmentSetting, bool, str]:
        """The section's `augment` setting (with "finetune" followed), whether it is for SimCLR's views,
        and its name for errors."""
        setting = getattr(self, section).augment
        if setting == FOLLOW_FINETUNE and section != "finetune":
            setting, where = self.finetune.augment, f"{self.source}: finetune.augment"
        else:
            where = f"{self.source}: {section}.augment"
        return setting, section == "pretrain" and self.pretrain.method == "simclr", where


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
    _validate_compression(config, src)
    _validate_augment(config, src)
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
        **{f"{name}.{key}": getattr(getattr(config, name), key) for name in ("distill", "slim", "cluster")
           for key in ("batch_size", "learning_rate")},
        "distill.width": config.distill.width,
        "distill.temperature": config.distill.temperature,
        "distill.view_epochs": config.distill.view_epochs,
        "convert.eval_samples": config.convert.eval_samples,  # on-device accuracy needs at least one image
    }
    for key, value in positive.items():
        if value <= 0:
            raise UserError(f"{src}: {key} = {value!r} must be greater than 0")
    for key in ("pretrain.epochs", "prune.epochs", "quantize.epochs", "distill.epochs", "slim.epochs",
                "cluster.epochs", "data.validation_size",
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


def _validate_compression(config: PipelineConfig, src: str) -> None:
    """The compression steps' own ranges, then the recipe they make (a QAT scheme must fit the steps)."""
    if config.distill.student:
        choice(config.distill.student, MODEL_NAMES, f"{src}: distill.student")
    in_range(config.distill.alpha, 0.0, 1.0, f"{src}: distill.alpha", low_open=False, high_open=False)
    in_range(config.slim.channel_ratio, 0.0, 1.0, f"{src}: slim.channel_ratio", low_open=False, high_open=True)
    in_range(config.slim.lowrank_energy, 0.0, 1.0, f"{src}: slim.lowrank_energy", low_open=False, high_open=True)
    choice(config.slim.channel_criterion, CHANNEL_CRITERIA, f"{src}: slim.channel_criterion")
    layer_lists = (("slim", "channel_layers", "channel_ratio"), ("slim", "lowrank_layers", "lowrank_energy"),
                   ("cluster", "layers", "clusters"))
    for section, key, switch in layer_lists:
        names = getattr(getattr(config, section), key)
        if not all(isinstance(name, str) and name for name in names):
            raise UserError(f"{src}: {section}.{key} must list layer names (non-empty strings)")
        if names and getattr(getattr(config, section), switch) == 0:
            raise UserError(f"{src}: {section}.{key} names layers but {section}.{switch} = 0 turns that step off; "
                            f"set {section}.{switch} or empty {section}.{key}")
    if config.cluster.clusters == 1 or config.cluster.clusters < 0:
        raise UserError(f"{src}: cluster.clusters = {config.cluster.clusters} must be 0 (no clustering) or at least 2")
    choice(config.cluster.init, CENTROID_INITS, f"{src}: cluster.init")
    for section in ("slim", "prune", "cluster"):
        choice(getattr(config, section).recovery, RECOVERIES, f"{src}: {section}.recovery")
    recipe_of(config)


def _validate_augment(config: PipelineConfig, src: str) -> None:
    """Every section's policy parses; SimCLR gets views that differ; no noise where a teacher's view is
    rebuilt from stored draws (they do not hold the noise)."""
    policies = {section: config.augment_policy(section) for section in TRAINING_SECTIONS}
    if config.pretrain.method == "simclr" and not config.model.path and not policies["pretrain"].changes_images:
        raise UserError(f"{src}: pretrain.augment changes nothing, so SimCLR's two views of an image are the same "
                        f"pixels and it learns nothing; choose a preset (natural, digits-text) or pretrain.method")
    recoveries = ("slim", "prune", "cluster")
    with_teacher = [section for section in recoveries if getattr(config, section).recovery == "teacher"]
    for section in with_teacher + (["distill"] if config.distill.student else []):
        if policies[section].noise:
            raise UserError(f"{src}: {section}.augment adds noise = {policies[section].noise:g}, which training "
                            f"against a teacher cannot repeat; set noise = 0 for [{section}]")


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
