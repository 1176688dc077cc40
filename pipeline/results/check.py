"""Check one run against its baselines: the store's histories fed to the pure rules in `regression`.

`check_run` judges from history alone. Its findings carry a first `verdict`; a noisy metric that looks
worse is only `unconfirmed` until a back-to-back A/B (pipeline/nightly/confirm.py) replaces the verdict
with `model-regression`, `device-slower` or the history's own direction.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import UserError
from pipeline.results.ab_test import ABTest, night_verdict
from pipeline.results.queries import Series, run_series
from pipeline.results.regression import (
    DEFAULT_BASELINE_RUNS,
    DEFAULT_RULES,
    Comparison,
    Observation,
    Rule,
    compare,
    select_baseline,
)
from pipeline.results.store import ResultsStore


@dataclass(frozen=True)
class Finding:
    """One metric of one series of the checked run, with its verdict and, when one ran, the A/B behind it."""

    series: Series
    comparison: Comparison  # tonight against the baseline runs (history alone)
    baseline_source: str  # "pinned run 12" or "last 5 nightly runs"
    verdict: str = ""  # model-regression, device-slower, unconfirmed, improvement, unchanged, no-baseline, ...
    ab: ABTest | None = None  # the back-to-back test, when the series was suspicious and it could run
    baseline_model_tonight: Comparison | None = None  # the baseline model's A/B value against the baseline runs
    evidence: dict[str, Any] = field(default_factory=dict)  # device state before/after, why no A/B ran, timings


@dataclass(frozen=True)
class BaselineChoice:
    """Which runs a check compares with: a pinned run, or the last N good nightly runs."""

    pinned_run: int | None
    count: int

    @property
    def source(self) -> str:
        return f"pinned run {self.pinned_run}" if self.pinned_run else f"last {self.count} nightly runs"


def baseline_choice(store: ResultsStore, run_id: int, *, baseline_runs: int = DEFAULT_BASELINE_RUNS,
                    use_pin: bool = True) -> BaselineChoice:
    pinned = store.pinned_baseline() if use_pin else None
    return BaselineChoice(pinned["id"] if pinned and pinned["id"] != run_id else None, baseline_runs)


def baseline_of(store: ResultsStore, series: Series, metric: str, run_id: int,
                choice: BaselineChoice) -> list[Observation]:
    """The baseline observations of one series and metric for the run `run_id`."""
    if choice.pinned_run:
        history = store.history(series, metric, only_run=choice.pinned_run)
    else:
        history = store.history(series, metric, before_run=run_id, good_only=True, limit=choice.count)
    return select_baseline(history, count=choice.count, pinned_run=choice.pinned_run, current_run=run_id)


def check_run(store: ResultsStore, run_id: int, *, rules: Mapping[str, Rule] = DEFAULT_RULES,
              baseline_runs: int = DEFAULT_BASELINE_RUNS, use_pin: bool = True) -> list[Finding]:
    """Compare every metric that has a rule, for every series the run measured, with its baseline."""
    if store.run(run_id) is None:
        raise UserError(f"run {run_id} does not exist in {store.db.url}")
    choice = baseline_choice(store, run_id, baseline_runs=baseline_runs, use_pin=use_pin)
    findings = []
    for series, metrics in run_series(store.db, run_id):
        for metric in metrics:
            if metric not in rules:
                continue
            current = store.history(series, metric, only_run=run_id)
            if not current:
                continue
            baseline = baseline_of(store, series, metric, run_id, choice)
            comparison = compare(metric, baseline, current[-1], rules[metric])
            findings.append(Finding(series, comparison, choice.source, night_verdict(comparison, None, None)))
    return findings
