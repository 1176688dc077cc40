"""`configs/search.toml`: the study, the search space, the constraints and the pruner of a model search.

Checked like the sweep config: an unknown key, a wrong type, an empty list, a range whose low end is above
its high end, or a space in which a quantization method can never be built (PQAT with no sparsity but 0,
PCQAT with no clusters but 0) stops the search with one line naming the file and the key, before any study
is created or anything trained.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.names import check_name
from pipeline.core.toml_config import check_finite, check_strings, choice, in_range, read_toml, section_from_dict
from pipeline.errors import UserError
from pipeline.results.ab_test import MIN_ROUNDS
from pipeline.training.config import MODEL_NAMES, PipelineConfig, load_config

DEFAULT_CONFIG = "configs/search.toml"
SEARCH_METHODS = ("ptq", "qat", "pqat", "pcqat")  # cqat needs clusters without sparsity: reach it by hand
SAMPLERS = ("tpe", "nsga2")
PRUNERS = ("median", "none")
OBJECTIVES = ("accuracy", "speedup", "bytes")  # accuracy and speedup always; bytes optional
NO_STUDENT = ""  # in space.student: no distillation, the fine-tuned model itself is compressed


@dataclass(frozen=True)
class StudyConfig:
    """Where the study lives and what each trial measures. `base` is relative to the search file."""

    name: str = "search"  # the Optuna study; trials are runs named <name>-t<number> in one build folder
    base: str = "search/base.toml"  # the pipeline config every trial starts from
    trials: int = 24  # trials of the study in total (a re-run tops it up to this many)
    workers: int = 1  # processes on this machine; more machines: start the same command there
    devices: list = field(default_factory=lambda: ["local"])
    devices_file: str = ""  # empty: $DEVICES, else ./devices.toml (local needs none)
    ab_rounds: int = 10  # interleaved rounds of each candidate against the PTQ int8 baseline per device
    objectives: list = field(default_factory=lambda: ["accuracy", "speedup"])
    sampler: str = "tpe"
    seed: int = 0  # the sampler's seed (each worker adds its index)
    startup_trials: int = 8  # random trials before TPE models the space
    heartbeat_s: int = 30  # a running trial's heartbeat; one silent for grace_s is marked failed
    grace_s: int = 120
    results_db: str = ""  # empty: $RESULTS_DB, else results/results.db
    reports_dir: str = "reports"
    found_dir: str = "configs/found"
    source: str = "<defaults>"

    def base_path(self) -> Path:
        return Path(self.source).parent / self.base


@dataclass(frozen=True)
class SpaceConfig:
    """The knobs a trial draws. Lists are choices; two-number lists marked [low, high] are ranges."""

    student: list = field(default_factory=lambda: [NO_STUDENT, "resnet8"])
    student_width: list = field(default_factory=lambda: [0.25, 0.5])
    temperature: list = field(default_factory=lambda: [1.0, 4.0])  # [low, high]
    alpha: list = field(default_factory=lambda: [0.1, 0.9])  # [low, high]
    distill_epochs: list = field(default_factory=lambda: [10, 40])  # [low, high]
    channel_ratio: list = field(default_factory=lambda: [0.0, 0.25, 0.5])
    lowrank_energy: list = field(default_factory=lambda: [0.0, 0.75, 0.9])
    sparsity: list = field(default_factory=lambda: [0.0, 0.5, 0.65, 0.8])
    clusters: list = field(default_factory=lambda: [0, 8, 16])
    quantize: list = field(default_factory=lambda: list(SEARCH_METHODS))
    epochs: list = field(default_factory=lambda: [1, 5])  # [low, high] recovery epochs of slim/prune/cluster/QAT


@dataclass(frozen=True)
class ConstraintsConfig:
    """Limits a trial must meet to be feasible (0 = no limit); Optuna's samplers see them as constraints."""

    max_latency_ratio: float = 0.0  # candidate median latency / PTQ int8's, interleaved, on every device
    max_latency_ms: float = 0.0  # candidate median latency on every device
    max_bytes: int = 0  # the .tflite file
    min_accuracy: float = 0.0  # int8 top-1 on the validation split, 0..1


@dataclass(frozen=True)
class PrunerConfig:
    """The median rule on validation accuracy after each training stage (see pipeline/search/early_stopping.py)."""

    kind: str = "median"
    startup_trials: int = 4  # finished trials needed before any trial is pruned
    min_step: int = 4  # stages before this one never prune (data, pretraining, fine-tuning are shared)


@dataclass(frozen=True)
class SearchConfig:
    study: StudyConfig
    space: SpaceConfig
    constraints: ConstraintsConfig
    pruner: PrunerConfig

    @property
    def source(self) -> str:
        return self.study.source


SECTIONS = {"study": StudyConfig, "space": SpaceConfig, "constraints": ConstraintsConfig, "pruner": PrunerConfig}
RANGES = ("temperature", "alpha", "distill_epochs", "epochs")


def _validate_study(study: StudyConfig) -> None:
    where = f"{study.source}: study"
    check_name(study.name, f"{where}.name")
    check_strings(study.devices, f"{where}.devices")
    for index, device in enumerate(study.devices):
        check_name(device, f"{where}.devices[{index}]")
    check_strings(study.objectives, f"{where}.objectives")
    for objective in study.objectives:
        choice(objective, OBJECTIVES, f"{where}.objectives")
    if not {"accuracy", "speedup"} <= set(study.objectives):
        raise UserError(f"{where}.objectives = {study.objectives} must include \"accuracy\" and \"speedup\"")
    choice(study.sampler, SAMPLERS, f"{where}.sampler")
    for key in ("trials", "workers", "heartbeat_s"):
        if getattr(study, key) < 1:
            raise UserError(f"{where}.{key} = {getattr(study, key)} must be at least 1")
    if study.grace_s <= study.heartbeat_s:
        raise UserError(f"{where}.grace_s = {study.grace_s} must be longer than heartbeat_s = {study.heartbeat_s}")
    if study.ab_rounds < MIN_ROUNDS:
        raise UserError(f"{where}.ab_rounds = {study.ab_rounds} must be at least {MIN_ROUNDS}")
    if not study.base_path().is_file():
        raise UserError(f"{where}.base = {study.base!r}: {study.base_path()} does not exist (relative to the "
                        f"search file)")


def _validate_space(space: SpaceConfig, source: str) -> None:
    """Non-empty lists, ordered ranges, values a pipeline config accepts, and every method buildable."""
    where = f"{source}: space"
    for item in dataclasses.fields(SpaceConfig):
        values = getattr(space, item.name)
        if not values:
            raise UserError(f"{where}.{item.name} is empty; list at least one value (see docs/search.md)")
        if item.name not in RANGES and len(set(values)) != len(values):
            raise UserError(f"{where}.{item.name} lists a value twice: {values}")
        expected = (str,) if item.name in ("student", "quantize") else (int, float)
        if not all(isinstance(v, expected) and not isinstance(v, bool) for v in values):
            raise UserError(f"{where}.{item.name} = {values} must list {'strings' if str in expected else 'numbers'}")
    for name in RANGES:
        values = getattr(space, name)
        if len(values) != 2 or values[0] > values[1]:
            raise UserError(f"{where}.{name} = {values} must be a range [low, high] with low <= high")
    for student in space.student:
        if student != NO_STUDENT:
            choice(student, MODEL_NAMES, f"{where}.student")
    for method in space.quantize:
        choice(method, SEARCH_METHODS, f"{where}.quantize")
    _check_values(space, where)
    if {"pqat", "pcqat"} & set(space.quantize) and not any(s > 0 for s in space.sparsity):
        raise UserError(f"{where}.quantize lists pqat/pcqat, which preserve pruned zeros, but space.sparsity = "
                        f"{space.sparsity} never prunes; add a sparsity above 0 or drop those methods")
    if "pcqat" in space.quantize and not any(c > 0 for c in space.clusters):
        raise UserError(f"{where}.quantize lists pcqat, which preserves clusters, but space.clusters = "
                        f"{space.clusters} never clusters; add a cluster count of at least 2 or drop pcqat")
    if "pqat" in space.quantize and 0 not in space.clusters:
        raise UserError(f"{where}.quantize lists pqat, which keeps no weight clusters, but space.clusters = "
                        f"{space.clusters} has no 0; add 0 to space.clusters or use pcqat")


def _check_values(space: SpaceConfig, where: str) -> None:
    """Each value within what the pipeline config accepts, so no trial fails on its own settings."""
    for name, low, high, high_open in (("student_width", 0.0, 64.0, False), ("alpha", 0.0, 1.0, False),
                                       ("channel_ratio", 0.0, 1.0, True), ("lowrank_energy", 0.0, 1.0, True),
                                       ("sparsity", 0.0, 1.0, True), ("temperature", 0.0, 100.0, False)):
        for value in getattr(space, name):
            in_range(value, low, high, f"{where}.{name}", low_open=name in ("student_width", "temperature"),
                     high_open=high_open)
    for value in space.clusters:
        if not isinstance(value, int) or value == 1 or value < 0:
            raise UserError(f"{where}.clusters = {space.clusters}: each must be 0 (no clustering) or an integer >= 2")
    for name in ("epochs", "distill_epochs"):
        if not all(isinstance(v, int) for v in getattr(space, name)) or getattr(space, name)[0] < 1:
            raise UserError(f"{where}.{name} = {getattr(space, name)} must be whole epochs, at least 1")


def validate(config: SearchConfig) -> SearchConfig:
    _validate_study(config.study)
    _validate_space(config.space, config.source)
    constraints = config.constraints
    for item in dataclasses.fields(ConstraintsConfig):
        check_finite(getattr(constraints, item.name), f"{config.source}: constraints.{item.name}")
        if getattr(constraints, item.name) < 0:
            raise UserError(f"{config.source}: constraints.{item.name} must not be negative (0 = no limit)")
    in_range(constraints.min_accuracy, 0.0, 1.0, f"{config.source}: constraints.min_accuracy",
             low_open=False, high_open=False)
    choice(config.pruner.kind, PRUNERS, f"{config.source}: pruner.kind")
    return config


def base_config(config: SearchConfig) -> PipelineConfig:
    """The pipeline config trials are derived from."""
    return load_config(config.study.base_path())


def load_search_config(path: str | Path) -> SearchConfig:
    """Read and check a search TOML file: [study], [space], [constraints], [pruner]."""
    path = Path(path)
    raw = read_toml(path, "search config", DEFAULT_CONFIG)
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise UserError(f"{path}: unknown section [{unknown[0]}] (sections: {', '.join(SECTIONS)})")
    sections: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        table = raw.get(name, {})
        if not isinstance(table, dict):
            raise UserError(f"{path}: '{name}' must be a [{name}] table")
        if "source" in table:
            raise UserError(f"{path}: {name}: unknown key 'source'")
        sections[name] = section_from_dict(cls, table, f"{path}: {name}")
    sections["study"] = dataclasses.replace(sections["study"], source=str(path))
    return validate(SearchConfig(**sections))


def with_overrides(config: SearchConfig, **overrides: Any) -> SearchConfig:
    """The config with command-line values (those that are not None): study keys, then constraint keys."""
    study = {k: v for k, v in overrides.items() if v is not None and hasattr(config.study, k)}
    limits = {k: v for k, v in overrides.items() if v is not None and hasattr(config.constraints, k)}
    return validate(dataclasses.replace(config, study=dataclasses.replace(config.study, **study),
                                        constraints=dataclasses.replace(config.constraints, **limits)))
