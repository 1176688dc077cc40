"""Where a series changed level: change-point detection over a metric's run values (pure, no I/O).

PELT from `ruptures` on the log values (so a step is relative), with a BIC-style penalty scaled by
the series' own noise: the robust sigma of successive differences. A change point also has to move
the level by at least `min_step`, so a statistically clear but tiny shift is not drawn on a plot.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipeline.results.regression import MAD_TO_SIGMA, MIN_RELATIVE_SIGMA

MIN_SEGMENT = 3  # runs: a level is what three nights agree on (its median); one odd night is an outlier
DEFAULT_MIN_STEP = 0.05


def _noise(logs: np.ndarray) -> float:
    """Sigma of one value from the MAD of successive differences (a difference has twice the variance)."""
    steps = np.diff(logs)
    return max(MAD_TO_SIGMA * float(np.median(np.abs(steps - np.median(steps)))) / np.sqrt(2), MIN_RELATIVE_SIGMA)


def change_points(values: Sequence[float], *, min_step: float = DEFAULT_MIN_STEP) -> list[int]:
    """Indices where a new level starts (`values[i]` is the first value of the new level), oldest first."""
    import ruptures  # here, not at the top: only reports need it

    logs = np.log(np.asarray([value for value in values], float))
    if len(logs) < 2 * MIN_SEGMENT or not np.all(np.isfinite(logs)):
        return []
    penalty = 2.0 * np.log(len(logs)) * _noise(logs) ** 2
    ends = ruptures.Pelt(model="l2", min_size=MIN_SEGMENT, jump=1).fit(logs.reshape(-1, 1)).predict(pen=penalty)
    starts = [0, *ends[:-1]]
    levels = [float(np.median(logs[start:end])) for start, end in zip(starts, ends, strict=True)]
    return [start for start, before, after in zip(starts[1:], levels, levels[1:], strict=False)
            if abs(after - before) > np.log1p(min_step)]
