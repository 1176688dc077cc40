"""The results store on SQLite and on a real PostgreSQL server: same API, same tests."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import UserError
from pipeline.results.queries import Series
from pipeline.results.schema import MIGRATIONS, applied_versions, migrate
from pipeline.results.store import ResultsStore, VariantRecord
from pipeline.testing.synthetic import benchmark_document

pytest_plugins = ["tests.postgres_fixtures"]  # a real PostgreSQL server, once per session

SHA = "ab" * 32
SERIES = Series("pqat_int8", "pi5", "litert+xnnpack")


def _samples(level: float, seed: int, count: int = 50) -> list[float]:
    return list(level * np.exp(np.random.default_rng(seed).normal(0, 0.03, count)))


def _record(store: ResultsStore, name: str, day: int, level: float, *, kind: str = "nightly",
            throttled: bool = False, finish: str | None = "complete", accuracy: float = 0.9) -> int:
    variant = VariantRecord("pqat_int8", SHA, 100_000, gzip_bytes=40_000, sparsity=0.5, float_accuracy=0.91,
                            int8_accuracy=accuracy, metrics={"tflite_bytes": 100_000})
    run_id = store.begin_run(name, kind=kind, git_commit="c0ffee", started_at=f"2025-01-{day:02d}T02:00:00.000000Z",
                             variants=[variant])
    store.record_benchmark(run_id, "pqat_int8", benchmark_document(
        device="pi5", model_sha256=SHA, samples=_samples(level, day), accuracy=accuracy, throttled=throttled),
        device="pi5")
    if finish:
        store.finish_run(run_id, finish)
    return run_id


@pytest.fixture
def store(results_url: str):
    with ResultsStore.open(results_url) as opened:
        yield opened


def test_a_run_counts_only_once_complete_and_keeps_raw_samples_exactly(store: ResultsStore) -> None:
    run_id = _record(store, "n1", 1, 20.0, finish=None)
    assert store.run(run_id)["status"] == "running"
    assert store.results() == [] and store.history(SERIES, "latency_ms") == []
    assert [r["status"] for r in store.results(statuses=("running",))] == ["running"]
    store.finish_run(run_id)
    [row] = store.results()
    assert (row["device"], row["variant"], row["runtime"], row["hostname"]) == ("pi5", "pqat_int8", SERIES.runtime,
                                                                                  "pi5.local")
    assert store.samples(row["id"]) == _samples(20.0, 1)
    [observation] = store.history(SERIES, "latency_ms")
    assert observation.samples == tuple(_samples(20.0, 1)) and observation.run_id == run_id
    assert store.variants(run_id)[0]["gzip_bytes"] == 40_000


def test_failed_runs_never_count_and_finished_runs_take_no_more_results(store: ResultsStore) -> None:
    run_id = _record(store, "n1", 1, 20.0, finish="failed")
    assert store.results() == [] and store.runs() == []
    with pytest.raises(UserError, match="failed: results can only be added to a running run"):
        store.record_benchmark(run_id, "pqat_int8", benchmark_document(device="pi5", model_sha256=SHA, samples=[1.0]),
                               device="pi5")
    with pytest.raises(UserError, match="not running"):
        store.finish_run(run_id)


def test_recording_context_marks_failed_on_interrupt_and_complete_on_success(store: ResultsStore) -> None:
    with pytest.raises(KeyboardInterrupt):
        with store.recording("interrupted", kind="nightly") as run_id:
            raise KeyboardInterrupt
    assert store.run(run_id)["status"] == "failed"
    with store.recording("ok", kind="nightly") as ok_id:
        pass
    assert store.run(ok_id)["status"] == "complete"


def test_bad_documents_are_refused_whole_with_the_field_named(store: ResultsStore) -> None:
    run_id = _record(store, "n1", 1, 20.0, finish=None)
    document = benchmark_document(device="pi5", model_sha256=SHA, samples=[1.0, 2.0])
    del document["latency_samples_ms"]
    with pytest.raises(UserError, match="'latency_samples_ms' is missing: it must be a non-empty list"):
        store.record_benchmark(run_id, "pqat_int8", document, device=document["device"])
    wrong_model = benchmark_document(device="pi9", model_sha256="cd" * 32, samples=[1.0])
    with pytest.raises(UserError, match="benchmark the run's own .tflite"):
        store.record_benchmark(run_id, "pqat_int8", wrong_model, device="pi9")
    store.finish_run(run_id)
    assert len(store.results()) == 1
    assert store.db.query("SELECT COUNT(*) AS n FROM devices WHERE name = 'pi9'")[0]["n"] == 0


def test_history_orders_by_run_time_and_good_only_drops_throttled_and_manual_runs(store: ResultsStore) -> None:
    ids = [_record(store, f"n{day}", day, 20.0 + day, throttled=day == 3, kind="manual" if day == 4 else "nightly")
           for day in range(1, 7)]
    everything = store.history(SERIES, "latency_ms")
    assert [o.run_id for o in everything] == ids
    assert [o.throttled for o in everything] == [False, False, True, False, False, False]
    good = store.history(SERIES, "latency_ms", before_run=ids[5], good_only=True, limit=2)
    assert [o.run_id for o in good] == [ids[1], ids[4]]
    assert [o.value for o in store.history(Series("pqat_int8"), "model_bytes")] == [100_000.0] * 6


def test_results_filters_by_device_variant_and_dates(store: ResultsStore) -> None:
    for day in (1, 10, 20):
        _record(store, f"n{day}", day, 20.0)
    assert [r["run"] for r in store.results(since="2025-01-05T00:00:00.000000Z")] == ["n10", "n20"]
    assert [r["run"] for r in store.results(until="2025-01-10T23:59:59.999999Z")] == ["n1", "n10"]
    assert store.results(device="other") == [] and store.results(variant="float") == []
    assert len(store.results(device="pi5", variant="pqat_int8")) == 3


def test_pin_resolves_names_to_the_newest_complete_run_and_refuses_unfinished(store: ResultsStore) -> None:
    first = _record(store, "release", 1, 20.0)
    second = _record(store, "release", 2, 20.0)
    running = _record(store, "wip", 3, 20.0, finish=None)
    assert store.pinned_baseline() is None
    assert store.pin_baseline("release")["id"] == second
    assert store.pin_baseline(str(first))["id"] == first and store.pinned_baseline()["id"] == first
    with pytest.raises(UserError, match="running, not complete"):
        store.pin_baseline(running)
    with pytest.raises(UserError, match="no complete run 'nope'"):
        store.pin_baseline("nope")
    assert store.unpin_baseline() is True and store.unpin_baseline() is False
    assert store.pinned_baseline() is None


def test_migrations_apply_once_in_order_and_a_newer_database_is_refused(store: ResultsStore) -> None:
    current = MIGRATIONS[-1][0]
    assert applied_versions(store.db) == list(range(1, current + 1))
    assert migrate(store.db) == current and applied_versions(store.db) == list(range(1, current + 1))
    extended = MIGRATIONS + ((current + 1, "test column", ("ALTER TABLE runs ADD COLUMN note TEXT",)),)
    assert migrate(store.db, extended) == current + 1 and applied_versions(store.db)[-1] == current + 1
    store.db.query("SELECT note FROM runs")
    with pytest.raises(UserError, match=f"schema version {current + 1}, newer than this pipeline's {current}"):
        migrate(store.db)


def test_variants_can_be_added_while_running_but_only_once(store: ResultsStore) -> None:
    run_id = _record(store, "n1", 1, 20.0, finish=None)
    store.record_variant(run_id, VariantRecord("float", "cd" * 32, 400_000, float_accuracy=0.91))
    with pytest.raises(UserError, match="already has a variant 'float'"):
        store.record_variant(run_id, VariantRecord("float", "cd" * 32, 1))
    store.finish_run(run_id)
    assert [(v["name"], v["bytes"]) for v in store.variants(run_id)] == [("float", 400_000), ("pqat_int8", 100_000)]
    assert [o.value for o in store.history(Series("float"), "float_accuracy")] == [0.91]
