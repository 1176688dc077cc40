"""Regression rules on plain lists: directions, thresholds, tests, baselines and overrides."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import UserError
from pipeline.results.regression import (
    DEFAULT_RULES,
    IMPROVEMENT,
    NO_BASELINE,
    REGRESSION,
    UNCHANGED,
    Observation,
    compare,
    rules_with_overrides,
    select_baseline,
)

LATENCY = DEFAULT_RULES["latency_ms"]


def _run(run_id: int, level: float, *, seed: int | None = None, jitter: float = 0.03, count: int = 50,
         throttled: bool = False, nightly: bool = True) -> Observation:
    samples = level * np.exp(np.random.default_rng(run_id if seed is None else seed).normal(0, jitter, count))
    return Observation(run_id, float(np.median(samples)), tuple(samples), throttled=throttled, nightly=nightly)


def _value(run_id: int, value: float, **flags: bool) -> Observation:
    return Observation(run_id, value, None, **flags)


BASELINE = [_run(i, 20.0) for i in range(5)]


def test_a_ten_percent_slowdown_is_a_regression_with_its_numbers() -> None:
    result = compare("latency_ms", BASELINE, _run(9, 22.0), LATENCY)
    assert result.direction == REGRESSION and result.test == "mann-whitney"
    assert result.p_value < 1e-6 and result.ratio == pytest.approx(1.10, abs=0.02)
    assert result.baseline == pytest.approx(20.0, rel=0.01) and result.current == pytest.approx(22.0, rel=0.02)
    pooled = np.concatenate([run.samples for run in BASELINE])
    assert result.baseline_iqr == pytest.approx(np.percentile(pooled, 75) - np.percentile(pooled, 25))
    medians = [run.value for run in BASELINE]
    assert result.baseline_spread == pytest.approx(max(medians) - min(medians)) and result.baseline_spread > 0
    assert result.baseline_runs == (0, 1, 2, 3, 4) and result.current_run == 9


def test_a_speed_up_is_reported_as_an_improvement() -> None:
    assert compare("latency_ms", BASELINE, _run(9, 18.0), LATENCY).direction == IMPROVEMENT


def test_a_change_below_the_threshold_is_unchanged_even_when_significant() -> None:
    result = compare("latency_ms", BASELINE, _run(9, 20.6, count=2000), LATENCY)
    assert result.p_value < LATENCY.alpha and result.direction == UNCHANGED


def test_a_large_but_insignificant_change_is_unchanged() -> None:
    noisy = [_run(i, 20.0, jitter=0.6, count=6) for i in range(2)]
    result = compare("latency_ms", noisy, _run(9, 23.0, jitter=0.6, count=6), LATENCY)
    assert result.p_value >= LATENCY.alpha and result.direction == UNCHANGED


def test_energy_without_per_window_samples_uses_the_ratio_of_medians_alone() -> None:
    baseline = [_value(i, v) for i, v in enumerate([10.0, 10.4, 9.8, 30.0, 10.1])]
    result = compare("energy_mj", baseline, _value(9, 11.5), DEFAULT_RULES["energy_mj"])
    assert result.test == "ratio-only" and result.p_value is None
    assert result.baseline == 10.1 and result.direction == REGRESSION
    assert result.baseline_spread == pytest.approx(30.0 - 9.8)  # the slow night is drift, shown beside the change
    assert result.baseline_iqr == pytest.approx(10.4 - 10.0)  # p75 - p25 of the five values
    assert compare("energy_mj", baseline, _value(9, 11.0), DEFAULT_RULES["energy_mj"]).direction == UNCHANGED


def test_accuracy_is_judged_on_an_absolute_drop_of_half_a_point() -> None:
    baseline = [_value(i, 0.900) for i in range(3)]
    rule = DEFAULT_RULES["accuracy"]
    assert compare("accuracy", baseline, _value(9, 0.894), rule).direction == REGRESSION
    assert compare("accuracy", baseline, _value(9, 0.896), rule).direction == UNCHANGED
    assert compare("accuracy", baseline, _value(9, 0.910), rule).direction == IMPROVEMENT


def test_model_size_regresses_past_one_percent_growth() -> None:
    baseline = [_value(0, 100_000)]
    assert compare("model_bytes", baseline, _value(9, 101_100), DEFAULT_RULES["model_bytes"]).direction == REGRESSION
    assert compare("model_bytes", baseline, _value(9, 100_900), DEFAULT_RULES["model_bytes"]).direction == UNCHANGED


def test_baseline_is_the_last_good_nightly_runs_or_the_pinned_run() -> None:
    history = [_value(1, 1.0), _value(2, 1.0, throttled=True), _value(3, 1.0, nightly=False), _value(4, 1.0),
               _value(5, 1.0), _value(6, 1.0, throttled=True)]
    assert [o.run_id for o in select_baseline(history, count=2)] == [4, 5]
    assert [o.run_id for o in select_baseline(history, count=2, current_run=5)] == [1, 4]
    assert [o.run_id for o in select_baseline(history, pinned_run=3)] == [3]
    assert select_baseline(history, pinned_run=2) == []  # a throttled result never becomes a baseline


def test_no_baseline_is_said_rather_than_guessed_and_throttled_current_is_marked() -> None:
    result = compare("latency_ms", [], _run(9, 30.0, throttled=True), LATENCY)
    assert result.direction == NO_BASELINE and result.ratio is None and result.current_throttled


def test_rule_overrides_change_one_field_and_refuse_unknown_keys() -> None:
    rules = rules_with_overrides({"latency_ms": {"threshold": 0.2}, "p99_ms": {"change": "relative", "threshold": 0.1}})
    assert rules["latency_ms"].threshold == 0.2 and rules["latency_ms"].alpha == LATENCY.alpha
    assert rules["p99_ms"].change == "relative"
    assert compare("latency_ms", BASELINE, _run(9, 22.0), rules["latency_ms"]).direction == UNCHANGED
    with pytest.raises(UserError, match="unknown key"):
        rules_with_overrides({"latency_ms": {"treshold": 0.2}})
    with pytest.raises(UserError, match="alpha must be between 0 and 1"):
        rules_with_overrides({"latency_ms": {"alpha": 2}})
