"""The confirmation step: when no A/B can run, a slower night stays `unconfirmed`, never a model regression,
and says why (the baseline night's model was not kept); energy is confirmed from per-round energy."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.nightly.confirm import Confirmation
from pipeline.nightly.text import finding_line
from pipeline.results import ResultsStore, VariantRecord, check_run
from pipeline.results.ab_test import UNCONFIRMED
from pipeline.results.check import baseline_choice
from pipeline.testing.synthetic import benchmark_document

SHA = "ab" * 32


def _night(store: ResultsStore, day: int, level: float, energy_mj: float = 0.5) -> int:
    rng = np.random.default_rng(day)
    samples = level * np.exp(rng.normal(0, 0.02, 40))
    windows = list(energy_mj * np.exp(rng.normal(0, 0.01, 5)))
    with store.recording(f"n{day}", kind="nightly", variants=[VariantRecord("pqat_int8", SHA, 1000)],
                         started_at=f"2025-03-{day:02d}T02:00:00.000000Z") as run_id:
        store.record_benchmark(run_id, "pqat_int8", benchmark_document(
            device="pi5", model_sha256=SHA, samples=list(samples), energy_windows_mj=windows), device="pi5")
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


def test_energy_is_confirmed_from_the_energy_of_each_round(tmp_path: Path) -> None:
    with ResultsStore.open(str(tmp_path / "results.db")) as store:
        for day in (1, 2, 3):
            _night(store, day, 2.0)
        tonight = _night(store, 4, 2.0, energy_mj=0.7)
        [energy] = [f for f in check_run(store, tonight) if f.comparison.metric == "energy_mj"]
        assert energy.comparison.suspicious
        side = {"round_samples_ms": [[2.0]] * 10}
        tonight_mj = [0.70, 0.71, 0.69, 0.72, 0.70, 0.68, 0.71, 0.70, 0.69, 0.70]
        baseline_mj = [0.50, 0.51, 0.49, 0.50, 0.52, 0.50, 0.49, 0.51, 0.50, 0.50]
        document = {"ab": {"a": {**side, "round_energy_mj": tonight_mj}, "b": {**side, "round_energy_mj": baseline_mj}}}
        judged = Confirmation(store, tonight, baseline_choice(store, tonight), str(tmp_path), lambda _: None).judge(
            energy, document, {})
    assert judged.verdict == "model-regression" and judged.ab.ratio == pytest.approx(1.4, abs=0.02)
    assert judged.baseline_model_tonight.direction == "unchanged"  # the baseline model's energy is as before
