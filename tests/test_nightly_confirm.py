"""The confirmation step when no A/B can run: a slower night stays `unconfirmed`, never a model regression,
and says why (the baseline night's model was not kept)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.nightly.confirm import Confirmation
from pipeline.nightly.text import finding_line
from pipeline.results import ResultsStore, VariantRecord, check_run
from pipeline.results.ab_test import UNCONFIRMED
from pipeline.results.check import baseline_choice
from pipeline.testing.synthetic import benchmark_document

SHA = "ab" * 32


def _night(store: ResultsStore, day: int, level: float) -> int:
    samples = level * np.exp(np.random.default_rng(day).normal(0, 0.02, 40))
    with store.recording(f"n{day}", kind="nightly", variants=[VariantRecord("pqat_int8", SHA, 1000)],
                         started_at=f"2025-03-{day:02d}T02:00:00.000000Z") as run_id:
        store.record_benchmark(run_id, "pqat_int8", benchmark_document(device="pi5", model_sha256=SHA,
                                                                       samples=list(samples)))
    return run_id


def test_a_slower_night_without_a_kept_baseline_model_is_unconfirmed(tmp_path: Path) -> None:
    logged: list[str] = []
    with ResultsStore.open(str(tmp_path / "results.db")) as store:
        for day in (1, 2, 3):
            _night(store, day, 2.0)
        tonight = _night(store, 4, 3.0)
        findings = check_run(store, tonight)
        confirmation = Confirmation(store, tonight, baseline_choice(store, tonight), str(tmp_path / "models"),
                                    logged.append)
        judged = confirmation.confirm(findings, requests={}, benchmark_seconds={})
    [latency] = [f for f in judged if f.comparison.metric == "latency_ms"]
    assert latency.comparison.direction == "regression" and latency.verdict == UNCONFIRMED and latency.ab is None
    reason = f"the model of baseline run 3 was not kept in {tmp_path / 'models'}"
    assert latency.evidence["ab_not_run"] == reason and f"; no A/B: {reason}" in finding_line(latency)
    assert logged == [f"no A/B for pqat_int8 on pi5: {reason}"]
    assert all(f.verdict != "model-regression" for f in judged)
