"""Summary statistics of the per-invoke latencies."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DECIMALS = 6  # latencies come from integer nanoseconds: 6 decimals of ms keep them exact


def summarize_latencies(samples_ms: Sequence[float]) -> dict[str, float]:
    """mean/median/p90/p99/min/max/std in ms; std is the sample standard deviation (ddof=1)."""
    values = np.asarray(samples_ms, dtype=np.float64)
    if values.size == 0:
        raise ValueError("no latency samples to summarize")
    summary = {
        "mean": values.mean(),
        "median": np.median(values),
        "p90": np.percentile(values, 90),
        "p99": np.percentile(values, 99),
        "min": values.min(),
        "max": values.max(),
        "std": values.std(ddof=1) if values.size > 1 else 0.0,
    }
    return {name: round(float(value), DECIMALS) for name, value in summary.items()}
