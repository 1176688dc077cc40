"""Read side of the store: result listings and per-series metric histories.

Every query here sees complete runs only unless it is asked for other statuses, so a run
still recording, or one that crashed, never shows up in a baseline or a history.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.results.db import Database, Row
from pipeline.results.documents import unpack_samples
from pipeline.results.regression import Observation

COMPLETE = "complete"
NIGHTLY = "nightly"
# metric -> (column of the run's summary value, column of its raw samples or None)
BENCHMARK_METRICS: dict[str, tuple[str, str | None]] = {
    "latency_ms": ("latency_median_ms", "latency_samples"),
    "energy_mj": ("energy_mj_per_inference", "energy_windows_mj"),
    "accuracy": ("accuracy", None),
}
VARIANT_METRICS: dict[str, str] = {
    "model_bytes": "bytes",
    "gzip_bytes": "gzip_bytes",
    "float_accuracy": "float_accuracy",
    "int8_accuracy": "int8_accuracy",
}
LISTING_COLUMNS = (
    "b.id AS id, r.id AS run_id, r.name AS run, r.kind AS kind, r.status AS status, r.started_at AS run_started_at, "
    "r.git_commit AS git_commit, d.name AS device, d.hostname AS hostname, d.arch AS arch, b.variant AS variant, "
    "b.runtime AS runtime, b.runtime_name AS runtime_name, b.runtime_version AS runtime_version, "
    "b.delegate AS delegate, b.threads AS threads, b.model_sha256 AS model_sha256, b.model_bytes AS model_bytes, "
    "b.invokes AS invokes, b.init_ms AS init_ms, b.first_inference_ms AS first_inference_ms, "
    "b.latency_mean_ms AS latency_mean_ms, b.latency_median_ms AS latency_median_ms, "
    "b.latency_p90_ms AS latency_p90_ms, b.latency_p99_ms AS latency_p99_ms, b.latency_std_ms AS latency_std_ms, "
    "b.throughput_ips AS throughput_ips, b.peak_rss_mb AS peak_rss_mb, b.accuracy AS accuracy, "
    "b.energy_meter AS energy_meter, b.energy_mj_per_inference AS energy_mj_per_inference, "
    "b.throttled AS throttled, b.started_at AS started_at, b.recorded_at AS recorded_at, "
    "b.reported_device AS reported_device, b.mismatch AS mismatch"
)


@dataclass(frozen=True)
class Series:
    """What one history follows; device and runtime are None for per-variant metrics (size, accuracy on host)."""

    variant: str
    device: str | None = None
    runtime: str | None = None


def _where(clauses: list[str]) -> str:
    return " WHERE " + " AND ".join(clauses) if clauses else ""


def _placeholders(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)


def list_results(db: Database, *, device: str | None = None, variant: str | None = None,
                 since: str | None = None, until: str | None = None, run_id: int | None = None,
                 statuses: Sequence[str] = (COMPLETE,), limit: int | None = None) -> list[Row]:
    """Benchmark results with their run and device, oldest run first; times are normalised UTC text."""
    clauses = [f"r.status IN ({_placeholders(statuses)})"]
    params: list[Any] = list(statuses)
    for clause, value in (("d.name = ?", device), ("b.variant = ?", variant), ("r.started_at >= ?", since),
                          ("r.started_at <= ?", until), ("r.id = ?", run_id)):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    sql = (f"SELECT {LISTING_COLUMNS} FROM benchmarks b JOIN runs r ON r.id = b.run_id "
           f"JOIN devices d ON d.id = b.device_id{_where(clauses)} ORDER BY b.run_started_at, b.run_id, b.id")
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return db.query(sql, params)


@dataclass(frozen=True)
class _RunOrder:
    """The columns that order a history by run: its start time, then its id."""

    time: str
    id: str


BENCHMARK_ORDER = _RunOrder("b.run_started_at", "b.run_id")  # indexed with the series columns
VARIANT_ORDER = _RunOrder("r.started_at", "r.id")


def _before_run(db: Database, run_id: int | None, order: _RunOrder) -> tuple[list[str], list[Any]]:
    """SQL restricting to runs that started before `run_id` (ties broken by id), as one index range."""
    if run_id is None:
        return [], []
    rows = db.query("SELECT started_at FROM runs WHERE id = ?", (run_id,))
    if not rows:
        raise ValueError(f"run {run_id} does not exist")
    return [f"({order.time}, {order.id}) < (?, ?)"], [rows[0]["started_at"], run_id]


def history(db: Database, series: Series, metric: str, *, before_run: int | None = None, only_run: int | None = None,
            good_only: bool = False, limit: int | None = None) -> list[Observation]:
    """Observations of `metric` for `series` over complete runs, oldest first (the newest `limit` of them).

    `only_run` returns that one run's observations whatever its status (the run being checked);
    `good_only` keeps nightly, unthrottled results: what a default baseline may use.
    """
    if metric in BENCHMARK_METRICS:
        return _benchmark_history(db, series, metric, before_run, only_run, good_only, limit)
    if metric in VARIANT_METRICS:
        return _variant_history(db, series, metric, before_run, only_run, good_only, limit)
    raise ValueError(f"unknown metric {metric!r}; known: {sorted(BENCHMARK_METRICS) + sorted(VARIANT_METRICS)}")


def _run_filters(db: Database, before_run: int | None, only_run: int | None, good_only: bool,
                 order: _RunOrder) -> tuple[list[str], list[Any]]:
    """Complete runs (before one run, if given), or exactly `only_run` whatever its status."""
    clauses, params = _before_run(db, before_run, order)
    if only_run is not None:
        clauses.append("r.id = ?")
        params.append(only_run)
    else:
        clauses.append("r.status = ?")
        params.append(COMPLETE)
    if good_only:
        clauses.append("r.kind = ?")
        params.append(NIGHTLY)
    return clauses, params


def _newest(sql: str, limit: int | None, order: _RunOrder) -> str:
    return sql + f" ORDER BY {order.time} DESC, {order.id} DESC" + (f" LIMIT {int(limit)}" if limit is not None else "")


def _benchmark_history(db: Database, series: Series, metric: str, before_run: int | None, only_run: int | None,
                       good_only: bool, limit: int | None) -> list[Observation]:
    value_column, samples_column = BENCHMARK_METRICS[metric]
    clauses, params = _run_filters(db, before_run, only_run, good_only, BENCHMARK_ORDER)
    clauses += ["b.device_id = (SELECT id FROM devices WHERE name = ?)", "b.variant = ?", "b.runtime = ?",
                f"b.{value_column} IS NOT NULL", "b.mismatch IS NULL"]  # a contradicted result is no evidence
    params += [series.device, series.variant, series.runtime]
    if good_only:
        clauses.append("(b.throttled IS NULL OR b.throttled = 0)")
    samples = f"b.{samples_column}" if samples_column else "NULL"
    sql = (f"SELECT r.id AS run_id, r.kind AS kind, b.{value_column} AS value, {samples} AS samples, "
           f"b.throttled AS throttled FROM benchmarks b JOIN runs r ON r.id = b.run_id{_where(clauses)}")
    return [_observation(row) for row in reversed(db.query(_newest(sql, limit, BENCHMARK_ORDER), params))]


def _variant_history(db: Database, series: Series, metric: str, before_run: int | None, only_run: int | None,
                     good_only: bool, limit: int | None) -> list[Observation]:
    column = VARIANT_METRICS[metric]
    clauses, params = _run_filters(db, before_run, only_run, good_only, VARIANT_ORDER)
    clauses += ["v.name = ?", f"v.{column} IS NOT NULL"]
    params.append(series.variant)
    sql = (f"SELECT r.id AS run_id, r.kind AS kind, v.{column} AS value, NULL AS samples, NULL AS throttled "
           f"FROM variants v JOIN runs r ON r.id = v.run_id{_where(clauses)}")
    return [_observation(row) for row in reversed(db.query(_newest(sql, limit, VARIANT_ORDER), params))]


def _observation(row: Row) -> Observation:
    samples = unpack_samples(row["samples"])
    return Observation(run_id=row["run_id"], value=float(row["value"]),
                       samples=None if samples is None else tuple(samples),
                       throttled=bool(row["throttled"]), nightly=row["kind"] == NIGHTLY)


def run_series(db: Database, run_id: int) -> list[tuple[Series, list[str]]]:
    """Every series a run has results for, with the metrics it measured there."""
    found: list[tuple[Series, list[str]]] = []
    for row in db.query("SELECT DISTINCT d.name AS device, b.variant AS variant, b.runtime AS runtime "
                        "FROM benchmarks b JOIN devices d ON d.id = b.device_id "
                        "WHERE b.run_id = ? ORDER BY 1, 2, 3", (run_id,)):
        found.append((Series(row["variant"], row["device"], row["runtime"]), list(BENCHMARK_METRICS)))
    for row in db.query("SELECT name FROM variants WHERE run_id = ? ORDER BY name", (run_id,)):
        found.append((Series(row["name"]), list(VARIANT_METRICS)))
    return found
