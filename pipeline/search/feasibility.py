"""What a trial's numbers mean to the study: its objective values, its constraint values, and which trial is
best under the constraints. Plain functions on a trial's recorded numbers, shared by the objective (which
records them), the samplers (through `constraints`) and the report.

Constraint values follow Optuna's convention: a trial is feasible when every value is <= 0. They are
stored with the trial (user attribute `constraints`), so any worker's sampler reads the same ones.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from pipeline.search.config import SearchConfig

CONSTRAINTS = "constraints"


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


def constraint_values(config: SearchConfig, measured: dict[str, Any]) -> list[float]:
    """One value per limit that is set (<= 0: met): latency ratio and latency per device, bytes, accuracy."""
    limits = config.constraints
    values = []
    for device in config.study.devices:
        if limits.max_latency_ratio:
            values.append(1 / measured["speedup"][device] - limits.max_latency_ratio)
        if limits.max_latency_ms:
            values.append(measured["latency_ms"][device] - limits.max_latency_ms)
    if limits.max_bytes:
        values.append(float(measured["bytes"] - limits.max_bytes))
    if limits.min_accuracy:
        values.append(limits.min_accuracy - measured["val_accuracy"])
    return values


def constraint_count(config: SearchConfig) -> int:
    limits = config.constraints
    per_device = bool(limits.max_latency_ratio) + bool(limits.max_latency_ms)
    return per_device * len(config.study.devices) + bool(limits.max_bytes) + bool(limits.min_accuracy)


def constraints_function(config: SearchConfig) -> Callable[[FrozenTrial], Sequence[float]] | None:
    """The samplers' `constraints_func`: the values the trial recorded; a trial that recorded none (pruned
    or failed before it was timed) is infeasible in every one."""
    count = constraint_count(config)
    if not count:
        return None

    def constraints(trial: FrozenTrial) -> Sequence[float]:
        return trial.user_attrs.get(CONSTRAINTS) or [1.0] * count

    return constraints


def feasible(trial: FrozenTrial) -> bool:
    """A complete trial whose every constraint value is <= 0."""
    return trial.state == TrialState.COMPLETE and all(v <= 0 for v in trial.user_attrs.get(CONSTRAINTS, []))


def best_trial(trials: Sequence[FrozenTrial], devices: Sequence[str]) -> FrozenTrial | None:
    """The feasible trial most accurate on the validation split; ties go to the fastest on the first device."""
    candidates = [t for t in trials if feasible(t)]
    if not candidates:
        return None
    return max(candidates, key=lambda t: (t.user_attrs["val_accuracy"], t.user_attrs["speedup"][devices[0]]))
