"""Early stopping of unpromising trials: the median rule on validation accuracy after each training stage.

Optuna's pruners (MedianPruner, Hyperband) refuse multi-objective studies (`Trial.report` raises), so the
search applies Optuna's median rule itself: after stage k, a trial whose model scores below the median
of the finished trials' models after stage k is stopped. The stages are the natural intermediate points:
each records the validation accuracy of the model it hands on, and a stage a trial turns off hands on its
input unchanged, so that accuracy carries over. Values are kept per trial (user attribute
`intermediate`), so every worker on every machine judges against the same trials.
"""
from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any

from pipeline.search.settings import PrunerConfig
from pipeline.training.runner import STAGE_NAMES

# The metric of the model a stage hands on, measured on the validation split (first one present).
VALIDATION_METRICS = {
    "finetune": ("ssl_val_accuracy", "scratch_val_accuracy", "model_val_accuracy"),
    "distill": ("distilled_val_accuracy",),
    "slim": ("val_accuracy_after",),
    "prune": ("pruned_val_accuracy",),
    "cluster": ("clustered_val_accuracy",),
    "quantize": ("qat_val_accuracy",),
}
INTERMEDIATE = "intermediate"  # user attribute: {step: validation accuracy}


def step_of(stage: str) -> int:
    """A stage's step number: its position in the pipeline, 1-based."""
    return STAGE_NAMES.index(stage) + 1


def stage_validation_accuracy(stage: str, metrics: Mapping[str, Any]) -> float | None:
    """The validation accuracy a stage recorded for the model it hands on; None if it trained nothing."""
    return next((float(metrics[key]) for key in VALIDATION_METRICS.get(stage, ()) if key in metrics), None)


def should_prune(value: float, step: int, finished: list[Mapping[str, float]], rule: PrunerConfig) -> bool:
    """Whether a trial at `value` after `step` scores below the median of the finished trials at that step."""
    if rule.kind == "none" or step < rule.min_step:
        return False
    earlier = [values[str(step)] for values in finished if str(step) in values]
    return len(earlier) >= rule.startup_trials and value < statistics.median(earlier)
