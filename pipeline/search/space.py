"""A trial's draw from the search space, and the pipeline config it becomes.

Draws are conditional the way Optuna expects: a knob that only exists on one branch (distillation's T,
alpha, width and epochs) is drawn only there, and a knob whose valid values depend on the quantization
method gets a name of its own on that branch (`sparsity_preserved`, `clusters_preserved`: PQAT and
PCQAT keep pruned zeros and clusters, so they need a step that makes them). Every draw is therefore a
recipe the pipeline accepts, and a parameter name always has the same choices.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import optuna

from pipeline.search.settings import NO_STUDENT, SpaceConfig
from pipeline.training.config import PipelineConfig, validate

PRESERVES_ZEROS = ("pqat", "pcqat")
RECOVERY_EPOCHS = ("slim.epochs", "prune.epochs", "cluster.epochs", "quantize.epochs")
# A layer list with its step off is refused by the pipeline config, so a trial that turns a step off drops it.
LAYER_LISTS = {"slim.channel_ratio": "channel_layers", "slim.lowrank_energy": "lowrank_layers",
               "cluster.clusters": "layers"}


def draw(trial: optuna.Trial, space: SpaceConfig) -> dict[str, Any]:
    """The trial's settings, keyed `section.key` as in a pipeline config."""
    method = trial.suggest_categorical("quantize", space.quantize)
    student = trial.suggest_categorical("student", space.student)
    settings: dict[str, Any] = {"quantize.method": method, "distill.student": student}
    if student != NO_STUDENT:
        settings["distill.width"] = trial.suggest_categorical("student_width", space.student_width)
        settings["distill.temperature"] = trial.suggest_float("temperature", *space.temperature)
        settings["distill.alpha"] = trial.suggest_float("alpha", *space.alpha)
        settings["distill.epochs"] = trial.suggest_int("distill_epochs", *space.distill_epochs)
    settings["slim.channel_ratio"] = trial.suggest_categorical("channel_ratio", space.channel_ratio)
    settings["slim.lowrank_energy"] = trial.suggest_categorical("lowrank_energy", space.lowrank_energy)
    if method in PRESERVES_ZEROS:
        settings["prune.target_sparsity"] = trial.suggest_categorical(
            "sparsity_preserved", [s for s in space.sparsity if s > 0])
    else:
        settings["prune.target_sparsity"] = trial.suggest_categorical("sparsity", space.sparsity)
    if method == "pcqat":
        settings["cluster.clusters"] = trial.suggest_categorical("clusters_preserved",
                                                                 [c for c in space.clusters if c > 0])
    elif method == "pqat":
        settings["cluster.clusters"] = 0
    else:
        settings["cluster.clusters"] = trial.suggest_categorical("clusters", space.clusters)
    epochs = trial.suggest_int("epochs", *space.epochs)
    settings.update(dict.fromkeys(RECOVERY_EPOCHS, epochs))
    return settings


def trial_config(base: PipelineConfig, settings: dict[str, Any], run_name: str) -> PipelineConfig:
    """`base` with the trial's settings and its own run name (same build folder, so stages are shared)."""
    sections: dict[str, dict[str, Any]] = {"run": {"name": run_name}}
    for key, value in settings.items():
        section, name = key.split(".")
        sections.setdefault(section, {})[name] = value
        if key in LAYER_LISTS and not value:
            sections[section][LAYER_LISTS[key]] = []
    replaced = {name: dataclasses.replace(getattr(base, name), **values) for name, values in sections.items()}
    return validate(dataclasses.replace(base, **replaced))
