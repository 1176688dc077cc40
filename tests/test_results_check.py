"""check_run: stored histories through the regression rules, rolling or pinned baseline, on both backends."""
from __future__ import annotations

import numpy as np

from pipeline.results.check import check_run
from pipeline.results.store import ResultsStore, VariantRecord
from pipeline.testing.synthetic import benchmark_document

pytest_plugins = ["tests.postgres_fixtures"]  # a real PostgreSQL server, once per session

SHA = "34" * 32


def _nightly(store: ResultsStore, day: int, latency_ms: float, *, size: int = 100_000, throttled: bool = False,
             device: str = "pi5") -> int:
    samples = latency_ms * np.exp(np.random.default_rng(day).normal(0, 0.03, 50))
    variant = VariantRecord("pqat_int8", SHA, size, gzip_bytes=size // 2, int8_accuracy=0.90, float_accuracy=0.91)
    with store.recording(f"n{day}", kind="nightly", variants=[variant],
                         started_at=f"2025-02-{day:02d}T02:00:00.000000Z") as run_id:
        store.record_benchmark(run_id, "pqat_int8", benchmark_document(
            device=device, model_sha256=SHA, samples=list(samples), accuracy=0.90, throttled=throttled), device=device)
    return run_id


def _verdicts(findings) -> dict[tuple[str | None, str], str]:
    return {(f.series.device, f.comparison.metric): f.comparison.direction for f in findings}


def test_a_slower_bigger_model_is_flagged_against_the_last_good_nightlies(results_url: str) -> None:
    with ResultsStore.open(results_url) as store:
        ids = [_nightly(store, day, 20.0, throttled=day == 6) for day in range(1, 8)]
        current = _nightly(store, 8, 23.0, size=102_000)
        findings = check_run(store, current)
        verdicts = _verdicts(findings)
        assert verdicts[("pi5", "latency_ms")] == "regression"
        assert verdicts[(None, "model_bytes")] == "regression" and verdicts[(None, "gzip_bytes")] == "regression"
        assert verdicts[("pi5", "accuracy")] == "unchanged" and verdicts[(None, "int8_accuracy")] == "unchanged"
        latency = next(f for f in findings if f.comparison.metric == "latency_ms")
        assert latency.comparison.baseline_runs == (ids[1], ids[2], ids[3], ids[4], ids[6])  # day 6 was throttled
        assert latency.baseline_source == "last 5 nightly runs" and latency.comparison.p_value < 0.002


def test_a_pinned_run_replaces_the_rolling_baseline(results_url: str) -> None:
    with ResultsStore.open(results_url) as store:
        slow = _nightly(store, 1, 23.0)
        for day in range(2, 6):
            _nightly(store, day, 20.0)
        current = _nightly(store, 6, 23.0)
        assert _verdicts(check_run(store, current))[("pi5", "latency_ms")] == "regression"
        store.pin_baseline(slow)
        [latency] = [f for f in check_run(store, current) if f.comparison.metric == "latency_ms"]
        assert latency.comparison.direction == "unchanged" and latency.comparison.baseline_runs == (slow,)
        assert latency.baseline_source == f"pinned run {slow}"


def test_a_new_device_has_no_baseline(results_url: str) -> None:
    with ResultsStore.open(results_url) as store:
        _nightly(store, 1, 20.0)
        current = _nightly(store, 2, 20.0, device="rpi4")
        assert _verdicts(check_run(store, current))[("rpi4", "latency_ms")] == "no-baseline"
