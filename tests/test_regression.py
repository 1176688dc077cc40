"""Regression rules on plain lists: run-level directions, history, A/B confirmation, baselines and overrides."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import UserError
from pipeline.results.ab_test import (
    DEVICE_SLOWER,
    MODEL_REGRESSION,
    UNCONFIRMED,
    night_verdict,
    paired_test,
    rounds_for,
)
from pipeline.results.regression import (
    DEFAULT_RULES,
    IMPROVEMENT,
    NO_BASELINE,
    NOT_ENOUGH_HISTORY,
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


BASELINE = [_value(i, level) for i, level in enumerate([20.0, 20.3, 19.8, 20.1, 19.9])]  # about 1 % apart


def test_a_ten_percent_slower_night_is_a_regression_judged_on_run_medians() -> None:
    result = compare("latency_ms", BASELINE, _run(9, 22.0), LATENCY)
    assert result.direction == REGRESSION and result.test == "run-level" and result.suspicious
    assert result.ratio == pytest.approx(1.10, abs=0.02) and result.baseline == 20.0
    assert result.run_sigma == pytest.approx(1.4826 * np.log(20.1 / 20.0), rel=0.05)  # MAD of the log medians
    assert result.sigmas > LATENCY.sigmas and result.baseline_spread == pytest.approx(0.5)
    assert result.baseline_runs == (0, 1, 2, 3, 4) and result.current_run == 9


def test_a_speed_up_is_reported_as_an_improvement_and_is_not_suspicious() -> None:
    result = compare("latency_ms", BASELINE, _run(9, 18.0), LATENCY)
    assert result.direction == IMPROVEMENT and not result.suspicious


def test_a_change_below_the_threshold_is_unchanged_however_many_invokes_it_has() -> None:
    result = compare("latency_ms", BASELINE, _run(9, 20.8, count=5000), LATENCY)
    assert result.direction == UNCHANGED  # 4 %: thousands of invokes are still one night


def test_a_change_within_the_series_run_to_run_spread_is_unchanged_but_suspicious() -> None:
    drifting = [_value(i, level) for i, level in enumerate([20.0, 22.0, 18.5, 21.0, 19.0])]  # about 6 % apart
    result = compare("latency_ms", drifting, _value(9, 22.5), LATENCY)
    assert result.ratio > 1 + LATENCY.threshold and result.sigmas < LATENCY.sigmas
    assert result.direction == UNCHANGED and result.suspicious  # only a back-to-back test can tell


def test_fewer_than_three_baseline_nights_is_not_enough_history() -> None:
    result = compare("latency_ms", BASELINE[:2], _value(9, 40.0), LATENCY)
    assert result.direction == NOT_ENOUGH_HISTORY and result.ratio == pytest.approx(40.0 / 20.15)
    assert result.suspicious and not compare("latency_ms", BASELINE[:2], _value(9, 15.0), LATENCY).suspicious


def test_energy_is_judged_like_latency_on_run_values() -> None:
    baseline = [_value(i, v) for i, v in enumerate([10.0, 10.2, 9.9, 30.0, 10.1])]  # one wild night: robust
    result = compare("energy_mj", baseline, _value(9, 11.5), DEFAULT_RULES["energy_mj"])
    assert result.test == "run-level" and result.baseline == 10.1 and result.direction == REGRESSION
    assert result.baseline_spread == pytest.approx(30.0 - 9.9)  # the wild night is drift, shown beside the change
    assert result.baseline_iqr == pytest.approx(10.2 - 10.0)  # p75 - p25 of the five values
    assert compare("energy_mj", baseline, _value(9, 11.0), DEFAULT_RULES["energy_mj"]).direction == UNCHANGED


DRIFT = [1.0, 1.4, 0.8, 1.2, 1.0, 1.6, 0.9, 1.1, 1.3, 0.7]  # the device wanders by +-40 % between rounds


def _rounds(levels: list[float], seed: int, jitter: float = 0.03, count: int = 20) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [level * np.exp(rng.normal(0, jitter, count)) for level in levels]


def test_ab_confirms_a_slower_model_through_a_drift_common_to_both() -> None:
    ab = paired_test(LATENCY, _rounds([10 * 1.1 * d for d in DRIFT], 1), _rounds([10 * d for d in DRIFT], 2))
    assert ab.confirmed and ab.rounds == 10 and ab.ratio == pytest.approx(1.1, abs=0.03)
    assert ab.ratio_low < ab.ratio < ab.ratio_high and ab.p_value < LATENCY.alpha


def test_ab_does_not_confirm_equal_models_or_a_change_below_the_threshold() -> None:
    same = paired_test(LATENCY, _rounds([10 * d for d in DRIFT], 3), _rounds([10 * d for d in DRIFT], 4))
    small = paired_test(LATENCY, _rounds([10.3 * d for d in DRIFT], 5), _rounds([10 * d for d in DRIFT], 6))
    assert not same.confirmed and not small.confirmed and small.p_value < LATENCY.alpha  # 3 %: real, too small
    with pytest.raises(ValueError, match="at least 3"):
        paired_test(LATENCY, [[1.0]] * 2, [[1.0]] * 2)


def test_night_verdict_keeps_a_slower_device_apart_from_a_slower_model() -> None:
    history = compare("latency_ms", BASELINE, _value(9, 30.0), LATENCY)
    slower_model = paired_test(LATENCY, _rounds([15.0] * 10, 7), _rounds([10.0] * 10, 8))
    same_model = paired_test(LATENCY, _rounds([30.0] * 10, 9), _rounds([30.0] * 10, 10))
    baseline_model_tonight = compare("latency_ms", BASELINE, _value(9, 30.0), LATENCY)
    assert night_verdict(history, slower_model, baseline_model_tonight) == MODEL_REGRESSION
    assert night_verdict(history, same_model, baseline_model_tonight) == DEVICE_SLOWER
    assert night_verdict(history, None, None) == UNCONFIRMED  # slower on history alone is never a model regression
    calm_baseline_model = compare("latency_ms", BASELINE, _value(9, 20.1), LATENCY)
    assert night_verdict(history, same_model, calm_baseline_model) == UNCHANGED  # the A/B cleared the model
    calm = compare("latency_ms", BASELINE, _value(9, 20.5), LATENCY)
    assert night_verdict(calm, same_model, compare("latency_ms", BASELINE, _value(9, 20.2), LATENCY)) == UNCHANGED


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
    assert compare("latency_ms", BASELINE, _run(9, 22.0, seed=1), rules["latency_ms"]).direction == UNCHANGED
    with pytest.raises(UserError, match="unknown key"):
        rules_with_overrides({"latency_ms": {"treshold": 0.2}})
    with pytest.raises(UserError, match="alpha must be between 0 and 1"):
        rules_with_overrides({"latency_ms": {"alpha": 2}})
    with pytest.raises(UserError, match="sigmas must be > 0, on a relative rule"):
        rules_with_overrides({"accuracy": {"sigmas": 3.0}})


def test_one_disturbed_round_does_not_sink_a_clear_ab() -> None:
    a_rounds, b_rounds = _rounds([12.0] * 10, 11), _rounds([10.0] * 10, 12)
    a_rounds[3] = a_rounds[3] * 1.8  # a burst of background load during one of A's rounds
    ab = paired_test(LATENCY, a_rounds, b_rounds)
    assert ab.confirmed and ab.ratio == pytest.approx(1.2, abs=0.03) and ab.ratio_low > 1.1


def test_ab_rounds_needed_for_a_false_alarm_rate() -> None:
    assert rounds_for(0.01) == 7 and rounds_for(0.05) == 5 and rounds_for(0.5) == 3  # 2^-7 < 0.01 <= 2^-6
