"""Seeded simulation of nightly latency histories: false-alarm rate on pure noise, power on a real 10 % step.

Noise model, per history: a true latency between 5 and 80 ms; each run drifts from it by a
lognormal factor (sigma 1 %: thermal and background-load differences between nights); each
of the run's 50 invokes adds lognormal jitter (sigma 5 %) and 2 % of invokes are scheduler
spikes of +0..+200 %. Every history has 8 earlier nightly runs; the default baseline (last 5)
is compared with one new run, which in the step case is 10 % slower.
"""
from __future__ import annotations

import numpy as np

from pipeline.results.regression import DEFAULT_RULES, REGRESSION, UNCHANGED, Observation, compare, select_baseline

HISTORIES = 200
EARLIER_RUNS = 8
SAMPLES_PER_RUN = 50
RUN_DRIFT_SIGMA = 0.01
INVOKE_JITTER_SIGMA = 0.05
SPIKE_PROBABILITY = 0.02
SPIKE_MEAN_EXTRA = 0.5
STEP = 0.10


def simulated_run(rng: np.random.Generator, run_id: int, true_ms: float) -> Observation:
    level = true_ms * np.exp(rng.normal(0.0, RUN_DRIFT_SIGMA))
    samples = level * np.exp(rng.normal(0.0, INVOKE_JITTER_SIGMA, SAMPLES_PER_RUN))
    spikes = rng.random(SAMPLES_PER_RUN) < SPIKE_PROBABILITY
    samples[spikes] *= 1.0 + np.minimum(rng.exponential(SPIKE_MEAN_EXTRA, spikes.sum()), 2.0)
    return Observation(run_id, float(np.median(samples)), tuple(samples))


def verdicts(seed: int, step: float) -> list[str]:
    """The direction `compare` gives for the newest run of each of HISTORIES simulated histories."""
    rng = np.random.default_rng(seed)
    found = []
    for _ in range(HISTORIES):
        true_ms = rng.uniform(5.0, 80.0)
        history = [simulated_run(rng, run_id, true_ms) for run_id in range(EARLIER_RUNS)]
        current = simulated_run(rng, EARLIER_RUNS, true_ms * (1.0 + step))
        baseline = select_baseline(history, current_run=current.run_id)
        found.append(compare("latency_ms", baseline, current, DEFAULT_RULES["latency_ms"]).direction)
    return found


def test_pure_noise_is_flagged_in_at_most_one_percent_of_histories() -> None:
    flagged = sum(direction != UNCHANGED for direction in verdicts(seed=20250101, step=0.0))
    assert flagged <= 0.01 * HISTORIES, f"{flagged}/{HISTORIES} noise-only histories flagged"


def test_a_real_ten_percent_slowdown_is_flagged_in_at_least_95_percent_of_histories() -> None:
    found = verdicts(seed=20250102, step=STEP)
    regressions = sum(direction == REGRESSION for direction in found)
    assert regressions >= 0.95 * HISTORIES, f"only {regressions}/{HISTORIES} 10 % steps flagged"
