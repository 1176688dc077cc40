"""What a nightly report says, read back from the results store: the one model every publisher renders.

Built from the store (not from the job's memory), so a report shows exactly what was recorded;
the findings come from `check_run`, the only place that judges a change.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.core.variants import VARIANT_NAMES
from pipeline.errors import UserError
from pipeline.results import Finding, ResultsStore, Series
from pipeline.results.ab_test import DEVICE_SLOWER, MODEL_REGRESSION, UNCONFIRMED
from pipeline.results.changepoints import change_points
from pipeline.results.regression import IMPROVEMENT, NO_BASELINE, NOT_ENOUGH_HISTORY
from pipeline.results.store import COMPLETE, FAILED, RUNNING

REPORT_SCHEMA_VERSION = 2  # 2: findings carry verdict, A/B and evidence; trends carry change points
TREND_RUNS = 30  # latency points per trend plot: this run and the ones before it
VERDICT_REGRESSION, VERDICT_DEVICE, VERDICT_OK, VERDICT_FAILED = "regression", "device-drift", "ok", "failed"
RUN_FIELDS = ("id", "name", "kind", "status", "started_at", "finished_at", "git_commit", "config_path", "host")
VARIANT_FIELDS = ("name", "sha256", "bytes", "gzip_bytes", "sparsity", "float_accuracy", "int8_accuracy")
RESULT_FIELDS = ("device", "variant", "runtime", "runtime_version", "threads", "invokes",
                 "latency_median_ms", "latency_p90_ms", "latency_p99_ms", "throughput_ips", "accuracy",
                 "energy_meter", "energy_mj_per_inference", "peak_rss_mb", "throttled", "mismatch")


@dataclass(frozen=True)
class Failure:
    """A device that could not benchmark a variant (unreachable, agent error, result refused)."""

    device: str
    variant: str
    reason: str


@dataclass(frozen=True)
class TrendPoint:
    run_id: int
    value: float
    throttled: bool
    nightly: bool


@dataclass(frozen=True)
class Trend:
    """Median latency of one series over recent runs, oldest first, with the finding that judged this run."""

    series: Series
    points: list[TrendPoint]
    finding: Finding | None
    change_points: list[int] = field(default_factory=list)  # run ids where the series reached a new level


@dataclass(frozen=True)
class NightlyReport:
    run: dict[str, Any]
    error: str | None  # why the run failed, if it did
    devices: list[str]
    variants: list[dict[str, Any]]  # what the pipeline made: sizes and host accuracies
    results: list[dict[str, Any]]  # one per device x variant benchmarked
    findings: list[Finding]
    failures: list[Failure] = field(default_factory=list)
    trends: list[Trend] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if self.run["status"] != COMPLETE:
            return VERDICT_FAILED
        return VERDICT_REGRESSION if self.regressions else VERDICT_DEVICE if self.device_drifts else VERDICT_OK

    def _with(self, *verdicts: str) -> list[Finding]:
        return [finding for finding in self.findings if finding.verdict in verdicts]

    @property
    def regressions(self) -> list[Finding]:
        """Model regressions: confirmed back to back (latency, energy) or deterministic (size, accuracy)."""
        return self._with(MODEL_REGRESSION)

    @property
    def device_drifts(self) -> list[Finding]:
        """The baseline model itself ran slower tonight: the device changed, not the model."""
        return self._with(DEVICE_SLOWER)

    @property
    def unconfirmed(self) -> list[Finding]:
        """Worse on history alone, and no A/B could confirm or clear it."""
        return self._with(UNCONFIRMED)

    @property
    def improvements(self) -> list[Finding]:
        return self._with(IMPROVEMENT)

    @property
    def without_baseline(self) -> list[Finding]:
        return self._with(NO_BASELINE, NOT_ENOUGH_HISTORY)

    def result(self, device: str, variant: str) -> dict[str, Any] | None:
        return next((r for r in self.results if r["device"] == device and r["variant"] == variant), None)

    def finding(self, variant: str, device: str | None, metric: str) -> Finding | None:
        return next((f for f in self.findings if f.series.variant == variant and f.series.device == device
                     and f.comparison.metric == metric), None)

    def to_json(self) -> dict[str, Any]:
        """Everything in the report, JSON-ready (findings as `dataclasses.asdict`)."""
        return {"schema_version": REPORT_SCHEMA_VERSION, "verdict": self.verdict, **dataclasses.asdict(self)}


def variant_accuracy(variant: dict[str, Any]) -> float | None:
    """A variant's own top-1 on the host's test split: int8 accuracy for int8 models, else the float one."""
    own = variant.get("int8_accuracy")
    return own if own is not None else variant.get("float_accuracy")


def _trend(store: ResultsStore, series: Series, run_id: int, finding: Finding | None) -> Trend:
    earlier = store.history(series, "latency_ms", before_run=run_id, limit=TREND_RUNS - 1)
    observations = earlier + store.history(series, "latency_ms", only_run=run_id)
    points = [TrendPoint(o.run_id, o.value, o.throttled, o.nightly) for o in observations if o.value is not None]
    steps = change_points([p.value for p in points])
    return Trend(series, points, finding, [points[index].run_id for index in steps])


def _pick(row: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {key: row.get(key) for key in fields}


def _result_row(row: dict[str, Any]) -> dict[str, Any]:
    picked = _pick(row, RESULT_FIELDS)
    picked["throttled"] = None if row["throttled"] is None else bool(row["throttled"])
    return picked


def build_report(store: ResultsStore, run_id: int, *, devices: list[str], findings: list[Finding],
                 failures: Sequence[Failure] = (), error: str | None = None) -> NightlyReport:
    """The report of one run from what the store holds for it."""
    run = store.run(run_id)
    if run is None:
        raise UserError(f"run {run_id} does not exist in {store.db.url}")
    rows = store.results(run_id=run_id, statuses=(COMPLETE, RUNNING, FAILED))
    results = [_result_row(row) for row in rows]
    latency = {(f.series.variant, f.series.device, f.series.runtime): f for f in findings
               if f.comparison.metric == "latency_ms"}
    series = list(dict.fromkeys(Series(r["variant"], r["device"], r["runtime"]) for r in results))
    trends = [_trend(store, s, run_id, latency.get((s.variant, s.device, s.runtime))) for s in series]
    order = list(VARIANT_NAMES)  # registry order: float first, then int8 by how much was done to it
    variants = sorted(store.variants(run_id),
                      key=lambda v: order.index(v["name"]) if v["name"] in order else len(order))
    return NightlyReport(run=_pick(run, RUN_FIELDS), error=error, devices=list(devices),
                         variants=[_pick(v, VARIANT_FIELDS) for v in variants], results=results,
                         findings=list(findings), failures=list(failures), trends=trends)
