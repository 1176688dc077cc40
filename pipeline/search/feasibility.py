"""What a trial's numbers mean to the study: its objective values, its constraint values, and which trial is
best under the constraints. Plain functions on a trial's recorded numbers, shared by the objective (which
records them), the samplers (through `constraints`) and the report.

Constraint values follow Optuna's convention: a trial is feasible when every value is <= 0. The objective
stores them with the trial (`Trial.set_constraint`), where TPE and NSGA-II read them while sampling, so
every worker's sampler sees the same ones; a trial pruned before it was timed has none.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from pipeline.search.settings import SearchConfig


def objective_names(config: SearchConfig) -> list[str]:
    """One name per Optuna objective, in order: validation top-1, the speed-up on each device, then bytes."""
    names = ["accuracy", *(f"speedup@{device}" for device in config.study.devices)]
    return names + (["bytes"] if "bytes" in config.study.objectives else [])


def directions(config: SearchConfig) -> list[optuna.study.StudyDirection]:
    maximize, minimize = optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE
    return [minimize if name == "bytes" else maximize for name in objective_names(config)]


def objective_values(config: SearchConfig, measured: dict[str, Any]) -> tuple[float, ...]:
    values = [measured["val_accuracy"], *(measured["speedup"][d] for d in config.study.devices)]
    return tuple(values + ([float(measured["bytes"])] if "bytes" in config.study.objectives else []))


def constraint_values(config: SearchConfig, measured: dict[str, Any]) -> dict[str, float]:
    """One value per limit that is set (<= 0: met), by name: latency ratio and latency per device, bytes,
    accuracy."""
    limits = config.constraints
    values = {}
    for device in config.study.devices:
        if limits.max_latency_ratio:
            values[f"latency_ratio@{device}"] = 1 / measured["speedup"][device] - limits.max_latency_ratio
        if limits.max_latency_ms:
            values[f"latency_ms@{device}"] = measured["latency_ms"][device] - limits.max_latency_ms
    if limits.max_bytes:
        values["bytes"] = float(measured["bytes"] - limits.max_bytes)
    if limits.min_accuracy:
        values["accuracy"] = limits.min_accuracy - measured["val_accuracy"]
    return values


def feasible(trial: FrozenTrial) -> bool:
    """A complete trial whose every constraint value is <= 0."""
    return trial.state == TrialState.COMPLETE and all(v <= 0 for v in trial.constraints.values())


def best_trial(trials: Sequence[FrozenTrial], devices: Sequence[str]) -> FrozenTrial | None:
    """The feasible trial most accurate on the validation split; ties go to the fastest on the first device."""
    candidates = [t for t in trials if feasible(t)]
    if not candidates:
        return None
    return max(candidates, key=lambda t: (t.user_attrs["val_accuracy"], t.user_attrs["speedup"][devices[0]]))
