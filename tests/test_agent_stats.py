"""Latency summary statistics."""
from __future__ import annotations

import pytest

from device_agents.edge_agent.stats import summarize_latencies


def test_summary_of_known_values():
    summary = summarize_latencies([float(value) for value in range(1, 101)])
    assert summary["mean"] == 50.5 and summary["median"] == 50.5
    assert summary["p90"] == pytest.approx(90.1) and summary["p99"] == pytest.approx(99.01)
    assert (summary["min"], summary["max"]) == (1.0, 100.0)
    assert summary["std"] == pytest.approx(29.011492, abs=1e-6)  # sample standard deviation


def test_a_single_sample_has_zero_spread_and_none_is_refused():
    assert summarize_latencies([2.5])["std"] == 0.0
    with pytest.raises(ValueError):
        summarize_latencies([])
