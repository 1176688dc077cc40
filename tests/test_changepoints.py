"""Change points of run series: steps are found where they are; noise, single outliers and tiny shifts mostly not.

Each case runs over 50 seeded series and asserts a rate, since any detector misreads an unlucky draw."""
from __future__ import annotations

import numpy as np

from pipeline.results.changepoints import change_points

SEEDS = range(50)


def _series(levels: list[float], seed: int, noise: float = 0.02) -> list[float]:
    return list(np.asarray(levels) * np.exp(np.random.default_rng(seed).normal(0, noise, len(levels))))


def _found(levels: list[float], expected: list[int], noise: float = 0.02) -> int:
    return sum(change_points(_series(levels, seed, noise)) == expected for seed in SEEDS)


def test_a_step_up_and_back_down_are_found_where_they_happen() -> None:
    assert _found([1.0] * 10 + [1.3] * 8 + [1.0] * 6, [10, 18]) >= 45
    assert _found([1.0] * 10 + [1.1] * 10, [10], noise=0.03) >= 35  # a 10 % step in 3 % noise


def test_noise_one_outlier_and_a_tiny_shift_are_rarely_change_points() -> None:
    assert _found([1.0] * 30, []) >= 45
    assert _found([1.0] * 10 + [2.0] + [1.0] * 10, []) >= 45
    assert _found([1.0] * 12 + [1.02] * 12, [], noise=0.001) == 50  # clear, but below min_step


def test_short_series_have_no_change_points() -> None:
    assert change_points([1.0, 2.0, 2.0, 2.0, 2.0]) == []
