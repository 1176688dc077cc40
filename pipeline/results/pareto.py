"""The Pareto front of measured variants: pure functions on plain numbers, no I/O, so they are tested by hand.

A point is (accuracy, cost): higher accuracy and lower cost (latency, size) are better. A point is dominated
when another is at least as good in both and better in one; identical points do not dominate each other.
"""
from __future__ import annotations

from collections.abc import Mapping


def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether `a` = (accuracy, cost) is at least as good as `b` in both and strictly better in one."""
    return a[0] >= b[0] and a[1] <= b[1] and (a[0] > b[0] or a[1] < b[1])


def pareto_front(points: Mapping[str, tuple[float | None, float | None]]) -> list[str]:
    """The names of the non-dominated points, in the mapping's order; a point missing either number is never
    on the front (and dominates nothing)."""
    measured = {name: (accuracy, cost) for name, (accuracy, cost) in points.items()
                if accuracy is not None and cost is not None}
    return [name for name, point in measured.items()
            if not any(dominates(other, point) for other in measured.values())]
