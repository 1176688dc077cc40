"""Back-to-back A/B: tonight's model (A) against the baseline night's model (B) on the same device, same night.

Run-to-run drift (a warmer board, a busier CI machine) is common to A and B when they run interleaved,
so the ratio of their per-round medians cancels it. The unit of evidence is a round: each round gives one
ratio median(A) / median(B). The decision is a one-sided Wilcoxon signed-rank test on the log ratios,
exact for small round counts: rank-based, so one round disturbed by a burst of background load cannot
sink it the way it inflates a t-test's variance. With rounds independent and no change, a series is
confirmed as a model regression with probability at most `alpha`; the estimated ratio (the median of
the round ratios) must also pass the rule's threshold. Its interval is the distribution-free one for a
median from order statistics. An exact signed-rank p-value is at least 2^-rounds, so `alpha` needs
`rounds_for(alpha)` rounds.

`night_verdict` then keeps model regressions apart from device drift: when the A/B finds no model
change but the baseline model itself ran slower tonight than on the baseline nights (judged with the
same run-level rule), the device is slower. Pure functions on plain lists, no I/O.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.results.regression import DEFAULT_ALPHA, REGRESSION, UNCHANGED, Comparison, Rule, worse_by

MIN_ROUNDS = 3
MODEL_REGRESSION = "model-regression"
DEVICE_SLOWER = "device-slower"
UNCONFIRMED = "unconfirmed"  # slower on history alone, and the A/B could not run or did not confirm it


@dataclass(frozen=True)
class ABTest:
    """The paired rounds and what they say; ratios are A / B (tonight's model / the baseline model)."""

    rounds: int
    a_medians: tuple[float, ...]  # per-round median of tonight's model
    b_medians: tuple[float, ...]  # per-round median of the baseline model
    ratio: float  # median of the per-round ratios
    ratio_low: float  # distribution-free interval of that median, coverage >= 1 - 2 alpha
    ratio_high: float
    p_value: float  # one-sided signed-rank test: A worse than B
    confirmed: bool  # a model regression: past the threshold and significant


def rounds_for(alpha: float) -> int:
    """The fewest rounds whose exact one-sided signed-rank test can reach p < alpha (all rounds one way)."""
    return max(MIN_ROUNDS, math.floor(math.log2(1 / alpha)) + 1)


def _median_interval(values: np.ndarray, alpha: float) -> tuple[float, float]:
    """Order-statistic interval for the median with coverage >= 1 - 2 alpha (the whole range if n is too small)."""
    from scipy.stats import binom

    ordered, count = np.sort(values), len(values)
    depth = 0  # how many values to drop from each end
    while depth + 1 < count / 2 and binom.cdf(depth, count, 0.5) <= alpha:
        depth += 1
    return float(ordered[depth]), float(ordered[count - 1 - depth])


Rounds = Sequence[Sequence[float] | np.ndarray]  # one entry per round: that round's per-invoke values


def paired_test(rule: Rule, a_rounds: Rounds, b_rounds: Rounds) -> ABTest:
    """Judge interleaved rounds of A and B (each round a list of per-invoke values) with `rule`."""
    from scipy.stats import wilcoxon  # here, not at the top: importing scipy.stats takes ~1 s

    if len(a_rounds) != len(b_rounds) or len(a_rounds) < MIN_ROUNDS:
        raise ValueError(f"an A/B test needs the same number of rounds for A and B, at least {MIN_ROUNDS}; "
                         f"got {len(a_rounds)} and {len(b_rounds)}")
    a_medians = np.asarray([np.median(values) for values in a_rounds], float)
    b_medians = np.asarray([np.median(values) for values in b_rounds], float)
    worse = np.asarray([worse_by(rule, value) for value in np.log(a_medians / b_medians)])
    alpha = rule.alpha if rule.alpha is not None else DEFAULT_ALPHA
    if np.any(worse != 0):
        p_value = float(wilcoxon(worse, alternative="greater").pvalue)
    else:  # every round exactly equal: no evidence either way
        p_value = 1.0
    estimate = float(np.median(worse))
    sign = -1.0 if rule.higher_is_better else 1.0  # back from "worse" to the ratio A / B
    low, high = sorted(float(np.exp(sign * value)) for value in _median_interval(worse, alpha))
    confirmed = estimate > np.log1p(rule.threshold) and p_value < alpha
    return ABTest(len(worse), tuple(a_medians.tolist()), tuple(b_medians.tolist()), float(np.exp(sign * estimate)),
                  low, high, p_value, bool(confirmed))


def night_verdict(history: Comparison, ab: ABTest | None, baseline_model_tonight: Comparison | None) -> str:
    """The final word on one noisy metric of one series.

    `history` is tonight's value against the baseline nights; `ab` the back-to-back test, if one ran;
    `baseline_model_tonight` the baseline model's value in that test against the same baseline nights.
    A model regression needs the A/B's confirmation; a baseline model that is itself slower tonight
    (and no model change) means the device is slower. Deterministic metrics need no A/B.
    """
    if not history.rule.noisy:  # size and accuracy are deterministic: history is the whole story
        return MODEL_REGRESSION if history.direction == REGRESSION else history.direction
    if ab is not None and ab.confirmed:
        return MODEL_REGRESSION
    if ab is not None and baseline_model_tonight is not None and baseline_model_tonight.direction == REGRESSION:
        return DEVICE_SLOWER
    if history.direction == REGRESSION:  # an A/B that ran and cleared the model outweighs one night's history
        return UNCONFIRMED if ab is None else UNCHANGED
    return history.direction
