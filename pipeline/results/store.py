"""The results store: one API over SQLite (default) and PostgreSQL (RESULTS_DB=postgresql://...).

A run is inserted as 'running' with its model variants in one transaction, each benchmark
result is one more transaction, and `finish_run` marks it 'complete' (or 'failed') at the
end. A crash between those steps keeps every committed result and leaves the run
'running', which no history or baseline query counts; the next recording on the same host
marks runs whose recording process has died as 'failed'.
"""
from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import UserError
from pipeline.results import queries
from pipeline.results.db import Database, Row, Transaction, connect
from pipeline.results.documents import benchmark_row, board_fields, unpack_samples
from pipeline.results.regression import Observation
from pipeline.results.schema import migrate
from pipeline.results.timeutil import utc_now

RUNNING, FAILED = "running", "failed"
COMPLETE = queries.COMPLETE
RUN_KINDS = ("nightly", "manual", "ci", "sweep")


@dataclass(frozen=True)
class VariantRecord:
    """One model variant a run produced; `metrics` keeps every metric the caller has for it, as given."""

    name: str
    sha256: str | None
    bytes: int | None
    gzip_bytes: int | None = None
    sparsity: float | None = None
    float_accuracy: float | None = None
    int8_accuracy: float | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)


def _process_alive(pid: int) -> bool:
    """Signal 0 only asks whether the process exists; nothing is sent to it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _insert(tx: Transaction, table: str, row: Mapping[str, Any]) -> int:
    columns = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    return tx.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks}) RETURNING id", list(row.values()))[0]["id"]


class ResultsStore:
    """Record runs, variants and benchmark results; query histories; pin a baseline."""

    def __init__(self, db: Database):
        self.db = db
        migrate(db)

    @classmethod
    def open(cls, url: str | None = None) -> ResultsStore:
        """Open (and migrate) the database named by `url`, else $RESULTS_DB, else results/results.db."""
        return cls(connect(url))

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing ---------------------------------------------------------------------------------------------------

    def begin_run(self, name: str, *, kind: str = "manual", git_commit: str | None = None,
                  config_path: str | None = None, config: Any = None, metrics: Mapping[str, Any] | None = None,
                  variants: Sequence[VariantRecord] = (), host: str | None = None,
                  started_at: str | None = None) -> int:
        """Insert a 'running' run and its variants in one transaction; return the run id."""
        if kind not in RUN_KINDS:
            raise UserError(f"run kind {kind!r} is unknown: use one of {', '.join(RUN_KINDS)}")
        self.reap_dead_runs()
        run = {"name": name, "kind": kind, "status": RUNNING, "started_at": started_at or utc_now(),
               "git_commit": git_commit, "config_path": config_path,
               "config_json": None if config is None else json.dumps(config, sort_keys=True, default=str),
               "metrics_json": None if metrics is None else json.dumps(metrics, sort_keys=True, default=str),
               "host": host or socket.gethostname(), "recorder_pid": os.getpid()}
        with self.db.transaction() as tx:
            run_id = _insert(tx, "runs", run)
            for variant in variants:
                self._insert_variant(tx, run_id, variant)
        return run_id

    def record_variant(self, run_id: int, variant: VariantRecord) -> int:
        with self.db.transaction() as tx:
            self._require_running(tx, run_id)
            return self._insert_variant(tx, run_id, variant)

    def _insert_variant(self, tx: Transaction, run_id: int, variant: VariantRecord) -> int:
        row = {"run_id": run_id, "name": variant.name, "sha256": variant.sha256, "bytes": variant.bytes,
               "gzip_bytes": variant.gzip_bytes, "sparsity": variant.sparsity,
               "float_accuracy": variant.float_accuracy, "int8_accuracy": variant.int8_accuracy,
               "metrics_json": json.dumps(dict(variant.metrics), sort_keys=True, default=str)}
        if tx.execute("SELECT id FROM variants WHERE run_id = ? AND name = ?", (run_id, variant.name)):
            raise UserError(f"run {run_id} already has a variant {variant.name!r}: record each variant once")
        return _insert(tx, "variants", row)

    def record_benchmark(self, run_id: int, variant: str, document: Mapping[str, Any], *, device: str,
                         source: str = "") -> int:
        """Store one device agent result (summary, raw samples, energy, state) in one transaction.

        `device` is the inventory name the host connected to: the result's identity. What the board
        says about itself (its `device` field) is kept as `reported_device`, never used as a key, so a
        misconfigured or hostile board cannot write into another device's history."""
        row = benchmark_row(document, source or f"for {variant}")
        hostname, arch = board_fields(document)
        now = utc_now()
        with self.db.transaction() as tx:
            run_started_at = self._require_running(tx, run_id)
            self._check_model(tx, run_id, variant, row["model_sha256"])
            device_id = tx.execute(
                "INSERT INTO devices (name, hostname, arch, first_seen, last_seen) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET hostname = COALESCE(excluded.hostname, devices.hostname), "
                "arch = COALESCE(excluded.arch, devices.arch), last_seen = excluded.last_seen RETURNING id",
                (device, hostname, arch, now, now))[0]["id"]
            return _insert(tx, "benchmarks", {"run_id": run_id, "run_started_at": run_started_at,
                                              "device_id": device_id, "variant": variant, "recorded_at": now, **row})

    @staticmethod
    def _require_running(tx: Transaction, run_id: int) -> str:
        """The run's start time, after checking that it exists and is still running."""
        rows = tx.execute("SELECT status, started_at FROM runs WHERE id = ?", (run_id,))
        if not rows:
            raise UserError(f"run {run_id} does not exist: call begin_run first")
        if rows[0]["status"] != RUNNING:
            raise UserError(f"run {run_id} is {rows[0]['status']}: results can only be added to a running run")
        return rows[0]["started_at"]

    @staticmethod
    def _check_model(tx: Transaction, run_id: int, variant: str, sha256: str) -> None:
        """A result claiming a recorded variant must have benchmarked that exact file."""
        rows = tx.execute("SELECT sha256 FROM variants WHERE run_id = ? AND name = ?", (run_id, variant))
        if rows and rows[0]["sha256"] and rows[0]["sha256"] != sha256:
            raise UserError(f"benchmark of variant {variant!r} used model sha256 {sha256[:12]}..., but run {run_id} "
                            f"recorded {rows[0]['sha256'][:12]}...: benchmark the run's own .tflite")

    def finish_run(self, run_id: int, status: str = COMPLETE) -> None:
        """Mark a running run complete (now it counts) or failed (it never will)."""
        if status not in (COMPLETE, FAILED):
            raise ValueError(f"status must be {COMPLETE!r} or {FAILED!r}")
        with self.db.transaction() as tx:
            updated = tx.execute("UPDATE runs SET status = ?, finished_at = ? WHERE id = ? AND status = ? RETURNING id",
                                 (status, utc_now(), run_id, RUNNING))
        if not updated:
            raise UserError(f"run {run_id} is not running (unknown or already finished): it cannot be marked {status}")

    @contextmanager
    def recording(self, name: str, **run_fields: Any) -> Iterator[int]:
        """`with store.recording("nightly-...") as run_id:` - complete on success, failed on any exception or Ctrl-C."""
        run_id = self.begin_run(name, **run_fields)
        try:
            yield run_id
        except BaseException:
            self.finish_run(run_id, FAILED)
            raise
        self.finish_run(run_id, COMPLETE)

    def reap_dead_runs(self) -> list[int]:
        """Mark 'failed' the running runs recorded on this host by processes that no longer exist."""
        rows = self.db.query("SELECT id, recorder_pid FROM runs WHERE status = ? AND host = ?",
                             (RUNNING, socket.gethostname()))
        dead = [row["id"] for row in rows if row["recorder_pid"] and not _process_alive(row["recorder_pid"])]
        for run_id in dead:
            with self.db.transaction() as tx:
                tx.execute("UPDATE runs SET status = ?, finished_at = ? WHERE id = ? AND status = ?",
                           (FAILED, utc_now(), run_id, RUNNING))
        return dead

    # --- runs and the pinned baseline ------------------------------------------------------------------------------

    def run(self, run_id: int) -> Row | None:
        rows = self.db.query("SELECT * FROM runs WHERE id = ?", (run_id,))
        return rows[0] if rows else None

    def runs(self, *, statuses: Sequence[str] = (COMPLETE,), kind: str | None = None) -> list[Row]:
        """Runs with these statuses, oldest first."""
        clauses = [f"status IN ({', '.join('?' for _ in statuses)})"] + (["kind = ?"] if kind else [])
        params = [*statuses] + ([kind] if kind else [])
        return self.db.query(f"SELECT * FROM runs WHERE {' AND '.join(clauses)} ORDER BY started_at, id", params)

    def find_run(self, reference: str | int) -> Row:
        """A complete run by id, or the newest complete run with that name."""
        text = str(reference)
        is_id = text.isascii() and text.isdigit() and len(text) <= 18  # fits a 64-bit id; '١٢' is a name
        rows = (self.db.query("SELECT * FROM runs WHERE id = ?", (int(text),)) if is_id else
                self.db.query("SELECT * FROM runs WHERE name = ? AND status = ? ORDER BY started_at DESC, id DESC",
                              (text, COMPLETE)))
        if not rows:
            raise UserError(f"no complete run {text!r} in {self.db.url}: list runs with `python -m pipeline results`")
        if rows[0]["status"] != COMPLETE:
            raise UserError(f"run {text} is {rows[0]['status']}, not complete: only complete runs can be a baseline")
        return rows[0]

    def pin_baseline(self, reference: str | int) -> Row:
        """Compare every later run against this one instead of the rolling nightly baseline."""
        run = self.find_run(reference)
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM baseline_pin WHERE id = 1")
            tx.execute("INSERT INTO baseline_pin (id, run_id, pinned_at) VALUES (1, ?, ?)", (run["id"], utc_now()))
        return run

    def unpin_baseline(self) -> bool:
        """Back to the rolling baseline; False when nothing was pinned."""
        with self.db.transaction() as tx:
            return bool(tx.execute("DELETE FROM baseline_pin WHERE id = 1 RETURNING run_id"))

    def pinned_baseline(self) -> Row | None:
        """The pinned run (with `pinned_at`), or None."""
        rows = self.db.query("SELECT r.*, p.pinned_at AS pinned_at FROM baseline_pin p JOIN runs r ON r.id = p.run_id")
        return rows[0] if rows else None

    # --- reading ---------------------------------------------------------------------------------------------------

    def results(self, **filters: Any) -> list[Row]:
        """Benchmark results of complete runs; see `queries.list_results` for the filters."""
        return queries.list_results(self.db, **filters)

    def variants(self, run_id: int) -> list[Row]:
        return self.db.query("SELECT * FROM variants WHERE run_id = ? ORDER BY name", (run_id,))

    def history(self, series: queries.Series, metric: str, **options: Any) -> list[Observation]:
        """A metric's observations for one series over complete runs; see `queries.history`."""
        return queries.history(self.db, series, metric, **options)

    def samples(self, benchmark_id: int) -> list[float]:
        """The raw per-invoke latencies of one result."""
        rows = self.db.query("SELECT latency_samples FROM benchmarks WHERE id = ?", (benchmark_id,))
        if not rows:
            raise UserError(f"no benchmark result {benchmark_id}")
        return unpack_samples(rows[0]["latency_samples"]) or []
