"""Regression detection: pure functions on plain lists, no I/O, so reports and tests can call them directly.

A metric's history is a list of `Observation`s (one per run, oldest first). `select_baseline`
picks what to compare with: the last N good nightly runs, or a pinned run. `compare` applies
the metric's `Rule`:

- relative rules (latency, energy, size) flag when |current/baseline - 1| exceeds the
  threshold and, when both sides carry raw samples and the rule has an `alpha`, a two-sided
  Mann-Whitney U test on the samples also rejects equality (p < alpha). Without samples
  (energy with no per-window readings) the ratio alone decides;
- absolute rules (accuracy) flag when the value moves by more than the threshold.

The change's direction (regression / improvement / unchanged) depends on whether higher is
better. Throttled observations are never part of a baseline; a throttled current result is
compared but marked, so a report can say why it moved.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.errors import UserError

REGRESSION = "regression"
IMPROVEMENT = "improvement"
UNCHANGED = "unchanged"
NO_BASELINE = "no-baseline"
RELATIVE = "relative"
ABSOLUTE = "absolute"
DEFAULT_BASELINE_RUNS = 5
DEFAULT_ALPHA = 0.002


@dataclass(frozen=True)
class Rule:
    """How one metric is judged. `threshold` is a fraction for relative rules (0.05 = 5 %), metric units otherwise."""

    change: str
    threshold: float
    higher_is_better: bool = False
    alpha: float | None = None  # Mann-Whitney p-value to beat when both sides have samples; None: no test


ACCURACY_RULE = Rule(ABSOLUTE, 0.005, higher_is_better=True)  # 0.5 point, accuracies are fractions
SIZE_RULE = Rule(RELATIVE, 0.01)
DEFAULT_RULES: dict[str, Rule] = {
    "latency_ms": Rule(RELATIVE, 0.05, alpha=DEFAULT_ALPHA),
    "energy_mj": Rule(RELATIVE, 0.10, alpha=DEFAULT_ALPHA),
    "accuracy": ACCURACY_RULE,
    "float_accuracy": ACCURACY_RULE,
    "int8_accuracy": ACCURACY_RULE,
    "model_bytes": SIZE_RULE,
    "gzip_bytes": SIZE_RULE,
}


@dataclass(frozen=True)
class Observation:
    """One run's measurement of one metric: its summary value and, when there are any, the raw samples."""

    run_id: int
    value: float | None
    samples: tuple[float, ...] | None = None
    throttled: bool = False
    nightly: bool = True


@dataclass(frozen=True)
class Comparison:
    """The verdict on one metric plus everything a report shows next to it."""

    metric: str
    direction: str
    current: float | None  # median of the current samples, or the current value
    baseline: float | None  # median of the pooled baseline samples, or of the baseline runs' values
    change: float | None  # current - baseline
    ratio: float | None  # current / baseline
    p_value: float | None  # Mann-Whitney U, two-sided; None when not tested
    baseline_iqr: float | None  # p75 - p25 of the baseline samples (or values): its noise
    baseline_spread: float | None  # max - min of the baseline runs' values: run-to-run drift
    baseline_runs: tuple[int, ...]
    current_run: int | None
    current_throttled: bool
    test: str  # "mann-whitney", "ratio-only" or "absolute"
    rule: Rule


def rules_with_overrides(overrides: Mapping[str, Mapping[str, Any]],
                         base: Mapping[str, Rule] = DEFAULT_RULES) -> dict[str, Rule]:
    """Per-metric threshold changes, e.g. {"latency_ms": {"threshold": 0.03, "alpha": 0.001}}."""
    rules = dict(base)
    allowed = {field.name for field in dataclasses.fields(Rule)}
    for metric, changes in overrides.items():
        unknown = set(changes) - allowed
        if metric not in rules and not {"change", "threshold"} <= set(changes):
            raise UserError(f"regression rule for new metric {metric!r} needs 'change' and 'threshold'")
        if unknown:
            raise UserError(f"regression rule {metric!r}: unknown key(s) {sorted(unknown)}; use {sorted(allowed)}")
        rule = dataclasses.replace(rules[metric], **changes) if metric in rules else Rule(**changes)
        if rule.change not in (RELATIVE, ABSOLUTE) or not rule.threshold >= 0:
            raise UserError(f"regression rule {metric!r}: change must be 'relative' or 'absolute' and threshold >= 0")
        if rule.alpha is not None and not 0 < rule.alpha < 1:
            raise UserError(f"regression rule {metric!r}: alpha must be between 0 and 1")
        rules[metric] = rule
    return rules


def select_baseline(history: Sequence[Observation], *, count: int = DEFAULT_BASELINE_RUNS,
                    pinned_run: int | None = None, current_run: int | None = None) -> list[Observation]:
    """The pinned run's good observations, else the last `count` good nightly ones (history is oldest first)."""
    good = [o for o in history if not o.throttled and o.value is not None and o.run_id != current_run]
    if pinned_run is not None:
        return [o for o in good if o.run_id == pinned_run]
    return [o for o in good if o.nightly][-count:] if count > 0 else []


def _iqr(values: np.ndarray) -> float:
    low, high = np.percentile(values, [25, 75])
    return float(high - low)


def _verdict(worse: bool, better: bool) -> str:
    return REGRESSION if worse else IMPROVEMENT if better else UNCHANGED


def _sample_test(baseline: Sequence[Observation], current: Observation,
                 rule: Rule) -> tuple[np.ndarray, np.ndarray] | None:
    """Pooled baseline samples and current samples, when the rule tests and every side has samples."""
    if rule.alpha is None or current.samples is None or any(o.samples is None for o in baseline):
        return None
    return np.concatenate([np.asarray(o.samples, float) for o in baseline]), np.asarray(current.samples, float)


def compare(metric: str, baseline: Sequence[Observation], current: Observation, rule: Rule) -> Comparison:
    """Judge `current` against `baseline` with `rule` (see the module docstring)."""
    runs = tuple(o.run_id for o in baseline)
    fields: dict[str, Any] = dict(metric=metric, baseline_runs=runs, current_run=current.run_id,
                                  current_throttled=current.throttled, rule=rule)
    if not baseline or current.value is None:
        return Comparison(direction=NO_BASELINE, current=current.value, baseline=None, change=None, ratio=None,
                          p_value=None, baseline_iqr=None, baseline_spread=None, test="none", **fields)
    run_values = np.asarray([o.value for o in baseline], float)
    samples = _sample_test(baseline, current, rule)
    p_value = None
    if samples is not None:
        from scipy.stats import mannwhitneyu  # here, not at the top: importing scipy.stats takes ~1 s

        pooled, now = samples
        base_value, current_value, iqr = float(np.median(pooled)), float(np.median(now)), _iqr(pooled)
        p_value = float(mannwhitneyu(now, pooled, alternative="two-sided").pvalue)
        test = "mann-whitney"
    else:
        base_value, current_value, iqr = float(np.median(run_values)), float(current.value), _iqr(run_values)
        test = "ratio-only" if rule.change == RELATIVE else "absolute"
    change = current_value - base_value
    ratio = current_value / base_value if base_value else None
    direction = _judge(rule, change, ratio, p_value)
    return Comparison(direction=direction, current=current_value, baseline=base_value, change=change, ratio=ratio,
                      p_value=p_value, baseline_iqr=iqr, baseline_spread=float(np.ptp(run_values)), test=test,
                      **fields)


def _judge(rule: Rule, change: float, ratio: float | None, p_value: float | None) -> str:
    """Direction of a change under a rule: past the threshold, and significant when tested."""
    if rule.change == RELATIVE:
        if ratio is None:
            return UNCHANGED
        moved = ratio - 1.0
    else:
        moved = change
    if p_value is not None and rule.alpha is not None and p_value >= rule.alpha:
        return UNCHANGED
    up, down = moved > rule.threshold, moved < -rule.threshold
    return _verdict(worse=down if rule.higher_is_better else up, better=up if rule.higher_is_better else down)
