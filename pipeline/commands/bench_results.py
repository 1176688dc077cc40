"""`make bench-results`: insert and query throughput of the results store, SQLite vs PostgreSQL.

Inserts COUNT benchmark results (each with its raw per-invoke latencies) the way a nightly
does - one run at a time, one transaction per result - into a fresh SQLite file and a fresh
throw-away PostgreSQL server with its default (durable) settings, then times the queries
reports and regression checks make. A benchmark, not a test: it prints numbers and asserts none.
"""
from __future__ import annotations

import argparse
import calendar
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from pipeline.commands.arguments import ascii_int
from pipeline.core.variants import compressed_variant, produced_variants
from pipeline.results.documents import runtime_label
from pipeline.results.queries import Series
from pipeline.results.store import ResultsStore, VariantRecord
from pipeline.results.timeutil import format_time
from pipeline.testing.pg_server import TemporaryPostgres
from pipeline.testing.synthetic import benchmark_document
from pipeline.training.config import PipelineConfig

DEFAULT_COUNT = 100_000
DEFAULT_SAMPLES = 50
DEVICES = ("rpi4", "rpi5", "coral-usb", "coral-devboard")
VARIANT_NAMES = tuple(v.name for v in produced_variants(PipelineConfig()))  # what a default run makes
RUNTIMES = (("litert", "xnnpack"), ("tflite_runtime", None))
THREADS = 4
QUERY_REPEATS = 200
SEED = 7
FIRST_NIGHT = datetime(2000, 1, 1, 2, 0, tzinfo=UTC)


@dataclass
class Timings:
    backend: str
    results: int = 0
    insert_s: float = 0.0
    baseline_query_ms: float = 0.0
    series_rows: int = 0
    series_s: float = 0.0
    month_rows: int = 0
    month_ms: float = 0.0
    size_mb: float | None = None


def _run_documents(rng: np.random.Generator, run_index: int, samples: int) -> Iterator[tuple[str, dict]]:
    """One nightly run's results: every device x variant x runtime, with fresh lognormal samples."""
    for d, device in enumerate(DEVICES):
        for v, variant in enumerate(VARIANT_NAMES):
            for runtime, delegate in RUNTIMES:
                level = 5.0 + 7.0 * d + 3.0 * v
                yield variant, benchmark_document(
                    device=device, model_sha256=f"{v:02x}" * 32, runtime=runtime, delegate=delegate, threads=THREADS,
                    samples=(level * np.exp(rng.normal(0, 0.05, samples))).tolist(), accuracy=0.9, run=f"n{run_index}")


def insert_runs(store: ResultsStore, count: int, samples: int, timings: Timings) -> list[int]:
    """Record runs until `count` results are stored; only the store calls are timed."""
    rng = np.random.default_rng(SEED)
    per_run = len(DEVICES) * len(VARIANT_NAMES) * len(RUNTIMES)
    variants = [VariantRecord(name, f"{v:02x}" * 32, 100_000, 40_000) for v, name in enumerate(VARIANT_NAMES)]
    run_ids = []
    for run_index in range(-(-count // per_run)):
        documents = list(_run_documents(rng, run_index, samples))[:count - timings.results]
        start = time.perf_counter()
        run_id = store.begin_run(f"n{run_index}", kind="nightly", variants=variants,
                                 started_at=format_time(FIRST_NIGHT + timedelta(days=run_index)))
        for variant, document in documents:
            store.record_benchmark(run_id, variant, document, device=document["device"])
        store.finish_run(run_id)
        timings.insert_s += time.perf_counter() - start
        timings.results += len(documents)
        run_ids.append(run_id)
    return run_ids


def _timed(action: Callable[[], object], repeats: int) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        action()
    return (time.perf_counter() - start) / repeats


def query_runs(store: ResultsStore, run_ids: list[int], timings: Timings) -> None:
    """Baseline lookups at random runs, one whole series with samples, one month's listing."""
    rng = np.random.default_rng(SEED)
    series = Series(compressed_variant(PipelineConfig()).name, "rpi5", runtime_label(*RUNTIMES[0]))
    picks = iter(rng.choice(run_ids, QUERY_REPEATS).tolist())
    timings.baseline_query_ms = 1000 * _timed(
        lambda: store.history(series, "latency_ms", before_run=next(picks), good_only=True, limit=5), QUERY_REPEATS)
    start = time.perf_counter()
    timings.series_rows = len(store.history(series, "latency_ms"))
    timings.series_s = time.perf_counter() - start
    middle = FIRST_NIGHT + timedelta(days=len(run_ids) // 2)
    last_day = calendar.monthrange(middle.year, middle.month)[1]
    month = {"device": "rpi4", "since": format_time(middle.replace(day=1, hour=0)),
             "until": format_time(middle.replace(day=last_day, hour=23))}
    timings.month_rows = len(store.results(**month))
    timings.month_ms = 1000 * _timed(lambda: store.results(**month), 10)


def bench_backend(backend: str, url: str, count: int, samples: int, size: Callable[[], float | None]) -> Timings:
    timings = Timings(backend)
    with ResultsStore.open(url) as store:
        run_ids = insert_runs(store, count, samples, timings)
        query_runs(store, run_ids, timings)
        timings.size_mb = size()
    return timings


def _pg_size_mb(url: str) -> Callable[[], float | None]:
    def measure() -> float:
        with ResultsStore.open(url) as store:
            return store.db.query("SELECT pg_database_size(current_database()) AS n")[0]["n"] / 1e6
    return measure


def format_table(rows: list[Timings], samples: int) -> str:
    header = (f"{'backend':<11}{'results':>9}{'insert/s':>10}{'insert s':>10}{'baseline q ms':>15}"
              f"{'series rows/s':>15}{'month list ms':>15}{'db MB':>8}")
    lines = [f"results store, {samples} raw latencies per result, one transaction per result", header]
    for t in rows:
        size = "-" if t.size_mb is None else f"{t.size_mb:.0f}"
        lines.append(f"{t.backend:<11}{t.results:>9}{t.results / t.insert_s:>10.0f}{t.insert_s:>10.1f}"
                     f"{t.baseline_query_ms:>15.2f}{t.series_rows / t.series_s:>15.0f}{t.month_ms:>15.1f}{size:>8}")
    lines.append("baseline q: last 5 good nightly results of one series before a random run (with samples); "
                 f"series: one series' whole history ({rows[0].series_rows} results with samples); "
                 f"month list: one device, one month ({rows[0].month_rows} rows)")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("--count", type=ascii_int, default=DEFAULT_COUNT,
                        help="benchmark results to insert per backend")
    parser.add_argument("--samples", type=ascii_int, default=DEFAULT_SAMPLES, help="raw latencies per result")


def run(args: argparse.Namespace) -> int:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-results-") as folder:
        path = Path(folder) / "results.db"
        rows.append(bench_backend("sqlite", str(path), args.count, args.samples,
                                  lambda: sum(os.path.getsize(p) for p in Path(folder).iterdir()) / 1e6))
    with TemporaryPostgres() as server:
        url = server.create_database("bench")
        rows.append(bench_backend("postgresql", url, args.count, args.samples, _pg_size_mb(url)))
    print(format_table(rows, args.samples))
    return 0
