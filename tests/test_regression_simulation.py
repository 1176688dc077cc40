"""Seeded simulation of the nightly's whole latency decision (run-level history, then back-to-back A/B for
suspicious series): false model regressions on pure noise, and real 10 % slowdowns caught, at several levels
of run-to-run drift with 5 % per-invoke jitter (noise model: pipeline/testing/night_simulation.py)."""
from __future__ import annotations

import pytest

from pipeline.testing.night_simulation import HISTORIES, Noise, tally


@pytest.mark.parametrize("drift", [0.03, 0.05, 0.10])
def test_pure_noise_is_a_model_regression_in_at_most_one_percent_of_histories(drift: float) -> None:
    result = tally(seed=20250101, noise=Noise(drift), step=0.0)
    assert result.flagged <= 0.01 * HISTORIES, f"{result.flagged}/{HISTORIES} noise-only histories flagged"


@pytest.mark.parametrize("drift", [0.03, 0.05])
def test_a_real_ten_percent_slowdown_is_caught_in_at_least_95_percent_of_histories(drift: float) -> None:
    result = tally(seed=20250102, noise=Noise(drift), step=0.10)
    assert result.flagged >= 0.95 * HISTORIES, f"only {result.flagged}/{HISTORIES} 10 % slowdowns caught"


def test_the_back_to_back_test_runs_only_for_suspicious_series() -> None:
    calm = tally(seed=20250103, noise=Noise(0.01), step=0.0)
    assert calm.ab_runs < 0.5 * HISTORIES, f"A/B ran on {calm.ab_runs}/{HISTORIES} calm histories"
