"""Seeded simulation of nightly latency histories judged the way the nightly judges them: run-level history,
then a back-to-back A/B for suspicious series. Shared by tests/test_regression_simulation.py and the table in
docs/results.md (`python -m pipeline.testing.night_simulation` prints it).

Noise model, per history: a true latency between 5 and 80 ms; each night drifts from it by a lognormal
factor (run-to-run drift: thermal state, governor, background load), common to every model run that
night; each invoke adds lognormal jitter and 2 % of invokes are scheduler spikes of +0..+200 %. Within a
night, each A/B round adds a small drift common to its A and B halves. Every history has 8 earlier
nights; the default baseline (last 5) is compared with one new night, whose model is `step` slower.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.results.ab_test import MODEL_REGRESSION, night_verdict, paired_test
from pipeline.results.regression import DEFAULT_RULES, Observation, compare, select_baseline

HISTORIES = 200
EARLIER_RUNS = 8
SAMPLES_PER_RUN = 50
AB_ROUNDS = 10
ROUND_DRIFT_SIGMA = 0.01
SPIKE_PROBABILITY = 0.02
SPIKE_MEAN_EXTRA = 0.5
RULE = DEFAULT_RULES["latency_ms"]


@dataclass(frozen=True)
class Noise:
    run_drift: float  # lognormal sigma of a night's level
    invoke_jitter: float = 0.05  # lognormal sigma of one invoke


@dataclass(frozen=True)
class Tally:
    histories: int
    flagged: int  # judged a model regression
    ab_runs: int  # suspicious: a back-to-back A/B ran

    @property
    def rate(self) -> float:
        return self.flagged / self.histories


def _invokes(rng: np.random.Generator, level: float, count: int, noise: Noise) -> np.ndarray:
    samples = level * np.exp(rng.normal(0.0, noise.invoke_jitter, count))
    spikes = rng.random(count) < SPIKE_PROBABILITY
    samples[spikes] *= 1.0 + np.minimum(rng.exponential(SPIKE_MEAN_EXTRA, spikes.sum()), 2.0)
    return samples


def _night(rng: np.random.Generator, run_id: int, level: float, noise: Noise) -> Observation:
    samples = _invokes(rng, level, SAMPLES_PER_RUN, noise)
    return Observation(run_id, float(np.median(samples)), tuple(samples))


def _ab_rounds(rng: np.random.Generator, a_level: float, b_level: float,
               noise: Noise) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A and B interleaved: each round gets its share of one run's invokes and a drift common to both."""
    per_round = math.ceil(SAMPLES_PER_RUN / AB_ROUNDS)
    a_rounds, b_rounds = [], []
    for _ in range(AB_ROUNDS):
        drift = np.exp(rng.normal(0.0, ROUND_DRIFT_SIGMA))
        a_rounds.append(_invokes(rng, a_level * drift, per_round, noise))
        b_rounds.append(_invokes(rng, b_level * drift, per_round, noise))
    return a_rounds, b_rounds


def judge_history(rng: np.random.Generator, noise: Noise, step: float) -> tuple[str, bool]:
    """One simulated history: the nightly's final verdict on its newest night, and whether A/B ran."""
    true_ms = rng.uniform(5.0, 80.0)
    history = [_night(rng, run_id, true_ms * np.exp(rng.normal(0.0, noise.run_drift)), noise)
               for run_id in range(EARLIER_RUNS)]
    tonight = np.exp(rng.normal(0.0, noise.run_drift))  # common to every model run tonight
    current = _night(rng, EARLIER_RUNS, true_ms * tonight * (1.0 + step), noise)
    baseline = select_baseline(history, current_run=current.run_id)
    comparison = compare("latency_ms", baseline, current, RULE)
    if not comparison.suspicious:
        return night_verdict(comparison, None, None), False
    a_rounds, b_rounds = _ab_rounds(rng, true_ms * tonight * (1.0 + step), true_ms * tonight, noise)
    ab = paired_test(RULE, a_rounds, b_rounds)
    pooled_b = Observation(current.run_id, float(np.median(np.concatenate(b_rounds))))
    return night_verdict(comparison, ab, compare("latency_ms", baseline, pooled_b, RULE)), True


def tally(seed: int, noise: Noise, step: float, histories: int = HISTORIES) -> Tally:
    rng = np.random.default_rng(seed)
    outcomes = [judge_history(rng, noise, step) for _ in range(histories)]
    return Tally(histories, sum(verdict == MODEL_REGRESSION for verdict, _ in outcomes),
                 sum(ab for _, ab in outcomes))


def main() -> None:
    """The docs table: drift x false alarms x detection, over 10 seeds x HISTORIES histories."""
    print("| run-to-run drift | per-invoke jitter | noise flagged | A/B ran (noise) | 10 % slowdown caught |")
    print("| --- | --- | --- | --- | --- |")
    for drift in (0.01, 0.03, 0.05, 0.10):
        noise = Noise(drift)
        calm = [tally(seed, noise, 0.0) for seed in range(10)]
        slow = [tally(1000 + seed, noise, 0.10) for seed in range(10)]
        total = 10 * HISTORIES
        print(f"| {drift:.0%} | {noise.invoke_jitter:.0%} | {sum(t.flagged for t in calm) / total:.2%} | "
              f"{sum(t.ab_runs for t in calm) / total:.0%} | {sum(t.flagged for t in slow) / total:.2%} |")


if __name__ == "__main__":
    main()
