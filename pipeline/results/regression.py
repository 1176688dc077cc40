"""Regression detection: pure functions on plain lists, no I/O, so reports and tests can call them directly.

A metric's history is a list of `Observation`s (one per run, oldest first). `select_baseline`
picks what to compare with: the last N good nightly runs, or a pinned run. `compare` applies
the metric's `Rule`:

- noisy rules (latency, energy: `sigmas` set) judge at the level of runs, the independent unit:
  tonight's median against the baseline runs' medians, with a robust model of that series'
  run-to-run spread (median and MAD of the log medians). A change must exceed both the threshold
  and `sigmas` robust sigmas; with fewer than MIN_HISTORY_RUNS baseline runs the series has
  "not enough history". Per-invoke samples are not pooled into a test: thousands of invokes of
  one night are one night of evidence. A worse night that could hide a change past the
  threshold is marked `suspicious`, so the nightly can confirm it back to back (`ab_test`);
- deterministic relative rules (size) flag when |current/baseline - 1| exceeds the threshold;
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
NOT_ENOUGH_HISTORY = "not-enough-history"
RELATIVE = "relative"
ABSOLUTE = "absolute"
DEFAULT_BASELINE_RUNS = 5
DEFAULT_ALPHA = 0.01  # the A/B paired test's one-sided false-alarm rate for one suspicious series
DEFAULT_SIGMAS = 3.0
MIN_HISTORY_RUNS = 3  # a noisy metric's spread cannot be estimated from fewer baseline runs
SUSPICIOUS_SIGMAS = 2.5  # not this many sigmas clear of the threshold: worth a back-to-back check
MAD_TO_SIGMA = 1.4826  # MAD of a normal sample times this estimates its standard deviation
MIN_RELATIVE_SIGMA = 0.005  # spread floor: five identical medians do not make a series noise-free


@dataclass(frozen=True)
class Rule:
    """How one metric is judged. `threshold` is a fraction for relative rules (0.05 = 5 %), metric units otherwise."""

    change: str
    threshold: float
    higher_is_better: bool = False
    alpha: float | None = None  # one-sided significance of the back-to-back A/B test; None: no A/B (deterministic)
    sigmas: float | None = None  # noisy metric: the change must also exceed this many robust sigmas of the history

    @property
    def noisy(self) -> bool:
        return self.sigmas is not None


ACCURACY_RULE = Rule(ABSOLUTE, 0.005, higher_is_better=True)  # 0.5 point, accuracies are fractions
SIZE_RULE = Rule(RELATIVE, 0.01)
DEFAULT_RULES: dict[str, Rule] = {
    "latency_ms": Rule(RELATIVE, 0.05, alpha=DEFAULT_ALPHA, sigmas=DEFAULT_SIGMAS),
    "energy_mj": Rule(RELATIVE, 0.10, alpha=DEFAULT_ALPHA, sigmas=DEFAULT_SIGMAS),
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
    current: float | None  # the current run's value (its median for latency)
    baseline: float | None  # median of the baseline runs' values
    change: float | None  # current - baseline
    ratio: float | None  # current / baseline
    baseline_iqr: float | None  # p75 - p25 of the baseline runs' values
    baseline_spread: float | None  # max - min of the baseline runs' values: run-to-run drift
    baseline_runs: tuple[int, ...]
    current_run: int | None
    current_throttled: bool
    test: str  # "run-level", "ratio-only" or "absolute"
    rule: Rule
    run_sigma: float | None = None  # noisy rules: robust sigma of the baseline runs' log values (0.03 = 3 %)
    sigmas: float | None = None  # noisy rules: the change in units of run_sigma
    suspicious: bool = False  # worse, and possibly past the threshold: confirm back to back


def rules_with_overrides(overrides: Mapping[str, Mapping[str, Any]],
                         base: Mapping[str, Rule] = DEFAULT_RULES) -> dict[str, Rule]:
    """Per-metric threshold changes, e.g. {"latency_ms": {"threshold": 0.03, "sigmas": 4}}."""
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
        if rule.sigmas is not None and (rule.change != RELATIVE or not rule.sigmas > 0):
            raise UserError(f"regression rule {metric!r}: sigmas must be > 0, on a relative rule")
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


def worse_by(rule: Rule, log_ratio: float) -> float:
    """How much worse, in log units, a log ratio current/baseline is (negative: better)."""
    return -log_ratio if rule.higher_is_better else log_ratio


def run_sigma(values: Sequence[float] | np.ndarray) -> float:
    """Robust run-to-run spread of a series: MAD of the log values as a sigma, floored (see MIN_RELATIVE_SIGMA)."""
    logs = np.log(np.asarray(values, float))
    return max(MAD_TO_SIGMA * float(np.median(np.abs(logs - np.median(logs)))), MIN_RELATIVE_SIGMA)


def judge_runs(rule: Rule, baseline_values: Sequence[float] | np.ndarray,
               current: float) -> tuple[str, float | None, float | None, bool]:
    """A noisy metric's verdict from history alone: (direction, sigma, change in sigmas, suspicious).

    Suspicious means the history cannot rule out a change past the threshold: tonight is less than
    SUSPICIOUS_SIGMAS sigmas below it (on a board that drifts as much as the threshold, most nights
    are). With fewer than MIN_HISTORY_RUNS runs there is no spread to judge by: any worse night is
    suspicious, so a back-to-back test can still decide.
    """
    if rule.sigmas is None:
        raise ValueError("judge_runs needs a noisy rule (one with sigmas)")
    base = float(np.median(baseline_values))
    if base <= 0 or current <= 0:
        return UNCHANGED, None, None, False
    worse = worse_by(rule, float(np.log(current / base)))
    limit = float(np.log1p(rule.threshold))
    if len(baseline_values) < MIN_HISTORY_RUNS:
        return NOT_ENOUGH_HISTORY, None, None, worse > 0
    sigma = run_sigma(baseline_values)
    beyond = abs(worse) > limit and abs(worse) > rule.sigmas * sigma
    direction = _verdict(worse=beyond and worse > 0, better=beyond and worse < 0)
    return direction, sigma, worse / sigma, worse > limit - SUSPICIOUS_SIGMAS * sigma


def compare(metric: str, baseline: Sequence[Observation], current: Observation, rule: Rule) -> Comparison:
    """Judge `current` against `baseline` with `rule` (see the module docstring)."""
    runs = tuple(o.run_id for o in baseline)
    fields: dict[str, Any] = dict(metric=metric, baseline_runs=runs, current_run=current.run_id,
                                  current_throttled=current.throttled, rule=rule)
    if not baseline or current.value is None:
        return Comparison(direction=NO_BASELINE, current=current.value, baseline=None, change=None, ratio=None,
                          baseline_iqr=None, baseline_spread=None, test="none", **fields)
    run_values = np.asarray([o.value for o in baseline], float)
    base_value, current_value = float(np.median(run_values)), float(current.value)
    change = current_value - base_value
    ratio = current_value / base_value if base_value else None
    noise: dict[str, Any] = dict(baseline_iqr=_iqr(run_values), baseline_spread=float(np.ptp(run_values)))
    if rule.noisy:
        direction, sigma, sigmas, suspicious = judge_runs(rule, run_values, current_value)
        return Comparison(direction=direction, current=current_value, baseline=base_value, change=change, ratio=ratio,
                          test="run-level", run_sigma=sigma, sigmas=sigmas, suspicious=suspicious, **noise, **fields)
    test = "ratio-only" if rule.change == RELATIVE else "absolute"
    return Comparison(direction=_judge(rule, change, ratio), current=current_value, baseline=base_value,
                      change=change, ratio=ratio, test=test, **noise, **fields)


def _judge(rule: Rule, change: float, ratio: float | None) -> str:
    """Direction of a deterministic change under a rule: past the threshold."""
    if rule.change == RELATIVE:
        if ratio is None:
            return UNCHANGED
        moved = ratio - 1.0
    else:
        moved = change
    up, down = moved > rule.threshold, moved < -rule.threshold
    return _verdict(worse=down if rule.higher_is_better else up, better=up if rule.higher_is_better else down)
