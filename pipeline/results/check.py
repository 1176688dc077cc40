"""Check one run against its baselines: the store's histories fed to the pure rules in `regression`."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pipeline.errors import UserError
from pipeline.results.queries import Series, run_series
from pipeline.results.regression import (
    DEFAULT_BASELINE_RUNS,
    DEFAULT_RULES,
    Comparison,
    Rule,
    compare,
    select_baseline,
)
from pipeline.results.store import ResultsStore


@dataclass(frozen=True)
class Finding:
    """One metric of one series of the checked run, with its verdict."""

    series: Series
    comparison: Comparison
    baseline_source: str  # "pinned run 12" or "last 5 nightly runs"


def check_run(store: ResultsStore, run_id: int, *, rules: Mapping[str, Rule] = DEFAULT_RULES,
              baseline_runs: int = DEFAULT_BASELINE_RUNS, use_pin: bool = True) -> list[Finding]:
    """Compare every metric that has a rule, for every series the run measured, with its baseline."""
    if store.run(run_id) is None:
        raise UserError(f"run {run_id} does not exist in {store.db.url}")
    pinned = store.pinned_baseline() if use_pin else None
    pinned_id = pinned["id"] if pinned and pinned["id"] != run_id else None
    source = f"pinned run {pinned_id}" if pinned_id else f"last {baseline_runs} nightly runs"
    findings = []
    for series, metrics in run_series(store.db, run_id):
        for metric in metrics:
            if metric not in rules:
                continue
            current = store.history(series, metric, only_run=run_id)
            if not current:
                continue
            if pinned_id:
                history = store.history(series, metric, only_run=pinned_id)
            else:
                history = store.history(series, metric, before_run=run_id, good_only=True, limit=baseline_runs)
            baseline = select_baseline(history, count=baseline_runs, pinned_run=pinned_id, current_run=run_id)
            findings.append(Finding(series, compare(metric, baseline, current[-1], rules[metric]), source))
    return findings
