"""The nightly report read back from a real store (both backends) and its four formats on disk.

The store is filled with agent-shaped documents built from chosen latencies (pipeline/testing/synthetic.py),
so every verdict in the report is known in advance: a regression, an improvement, a throttled result,
a size growth, a device that failed and a device with an energy meter next to one without.
"""
from __future__ import annotations

import base64
import itertools
import json
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import UserError
from pipeline.nightly import publish as publish_module
from pipeline.nightly.publish import PUBLISHERS, publish
from pipeline.nightly.report import Failure, build_report
from pipeline.results import ResultsStore, VariantRecord, check_run
from pipeline.results.store import FAILED
from pipeline.testing.synthetic import benchmark_document

pytest_plugins = ["tests.postgres_fixtures"]  # a real PostgreSQL server, once per session

SHAS = {"float": "aa" * 32, "ptq_int8": "bb" * 32, "pqat_int8": "cc" * 32}
LATENCY_MS = {"float": 2.0, "ptq_int8": 1.0, "pqat_int8": 0.8}
METERED, UNMETERED, DEAD = "pi5", "local", "rpi4"
DEVICES = [METERED, UNMETERED, DEAD]
FAILURE = Failure(DEAD, "float", "device rpi4: unreachable after 4 attempt(s): connection refused")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_databases = itertools.count()


def _variants(gzip_growth: float = 1.0) -> list[VariantRecord]:
    return [VariantRecord("float", SHAS["float"], 26_000, 21_000, None, float_accuracy=0.90),
            VariantRecord("ptq_int8", SHAS["ptq_int8"], 15_000, 8_400, 0.0, 0.90, 0.89),
            VariantRecord("pqat_int8", SHAS["pqat_int8"], 15_800, int(6_900 * gzip_growth), 0.5, 0.89, 0.88)]


def _night(store: ResultsStore, day: int, *, scale: dict | None = None, throttled: tuple = (),
           gzip_growth: float = 1.0) -> int:
    """One complete nightly run; `scale` multiplies a (device, variant)'s latency."""
    rng = np.random.default_rng(day)
    with store.recording(f"n{day}", kind="nightly", variants=_variants(gzip_growth),
                         started_at=f"2025-02-{day:02d}T02:00:00.000000Z") as run_id:
        for device, variant in itertools.product((METERED, UNMETERED), SHAS):
            factor = (scale or {}).get((device, variant), 1.0)
            samples = LATENCY_MS[variant] * factor * np.exp(rng.normal(0, 0.03, 60))
            energy = list(0.5 * np.exp(rng.normal(0, 0.02, 8))) if device == METERED else None
            store.record_benchmark(run_id, variant, benchmark_document(
                device=device, model_sha256=SHAS[variant], samples=list(samples), accuracy=0.875,
                energy_windows_mj=energy, throttled=(device, variant) in throttled), device=device)
    return run_id


@pytest.fixture(scope="module", params=("sqlite", "postgresql"))
def report_folder(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four earlier nights, then one with a slower pqat_int8 on pi5, a faster float on local, a throttled
    ptq_int8 on pi5 and a larger gzip size; rpi4 failed. Published once per backend."""
    folder = tmp_path_factory.mktemp("report")
    if request.param == "sqlite":
        url = str(folder / "results.db")
    else:
        url = request.getfixturevalue("postgres_server").create_database(f"nightly_report_{next(_databases)}")
    with ResultsStore.open(url) as store:
        for day in range(1, 5):
            _night(store, day)
        current = _night(store, 5, scale={(METERED, "pqat_int8"): 1.3, (UNMETERED, "float"): 0.7},
                         throttled=((METERED, "ptq_int8"),), gzip_growth=1.05)
        report = build_report(store, current, devices=DEVICES, findings=check_run(store, current), failures=[FAILURE])
    return publish(report, folder / "reports")


def test_the_folder_holds_the_four_files_named_after_the_night_and_run(report_folder: Path) -> None:
    assert report_folder.name == "2025-02-05-run5"
    assert sorted(p.name for p in report_folder.iterdir()) == sorted(PUBLISHERS)
    assert not list(report_folder.parent.glob(".tmp-*"))


def test_summary_gives_the_verdict_first_then_changes_with_numbers_and_noise(report_folder: Path) -> None:
    summary = (report_folder / "summary.md").read_text()
    lines = summary.splitlines()
    assert lines[0] == ("**REGRESSION: nightly run 5 (n5, 2025-02-05): "
                        "2 regressions, 1 improvement, 1 failed benchmark**")
    regressions = summary.split("**Regressions**")[1].split("**Improvements**")[0]
    latency = next(line for line in regressions.splitlines() if "pqat_int8 on pi5" in line)
    assert re.search(r"median latency 1\.\d\d\d ms vs 0\.[78]\d\d ms baseline: \+0\.2\d\d ms \(\+\d\d\.\d %, "
                     r"ratio 1\.\d\d\d, p [^)]+\); noise: baseline IQR 0\.0\d\d ms", latency), latency
    assert "pqat_int8: gzip size 7,245 B vs 6,900 B baseline: +345 B (+5.0 %" in regressions
    improvements = summary.split("**Improvements**")[1]
    assert "float on local (litert+xnnpack): median latency" in improvements.split("**Failed")[0]
    assert "- float on rpi4: device rpi4: unreachable" in summary
    assert "Ran with pi5: litert+xnnpack 2.3.0, 4 threads; local: " in summary  # settings beside the changes


def test_summary_table_compares_the_variants_per_device(report_folder: Path) -> None:
    table = [line for line in (report_folder / "summary.md").read_text().splitlines() if line.startswith("|")]
    assert table[0] == ("| variant | top-1 | size | gzip size | sparsity | pi5 median / p99 | local median / p99 | "
                        "rpi4 median / p99 | pi5 energy / inference | local energy / inference | "
                        "rpi4 energy / inference |")
    assert [row.split("|")[1].strip() for row in table[2:]] == ["float", "ptq_int8", "pqat_int8"]  # the brief's order
    float_row, ptq_row, pqat_row = (row.split("|")[1:-1] for row in table[2:])
    assert float_row[1].strip() == "90.00 %" and pqat_row[1].strip() == "88.00 %"
    assert "(regression: +5.0 %, noise IQR 0 B)" in pqat_row[3]
    assert "regression: +" in pqat_row[5] and "improvement: -" in float_row[6]
    assert "throttled" in ptq_row[5] and "throttled" not in pqat_row[5]
    assert float_row[7].strip() == "not run" and float_row[9].strip() == "no meter"
    assert re.fullmatch(r" 0\.\d\d\d mJ ", float_row[8])


def test_junit_has_a_testcase_per_device_variant_metric_and_fails_the_regressions(report_folder: Path) -> None:
    suite = ElementTree.parse(report_folder / "junit.xml").getroot()
    cases = suite.findall("testcase")
    # 2 devices x 3 variants x (latency, accuracy) + energy on pi5 + 4 model metrics per variant (the float
    # variant has no int8 accuracy) + the failed benchmark
    assert len(cases) == 2 * 3 * 2 + 3 + (3 * 4 - 1) + 1 == int(suite.get("tests"))
    failed = {(case.get("classname"), case.get("name")) for case in cases if case.find("failure") is not None}
    assert failed == {("nightly.pi5.pqat_int8", "latency_ms"), ("nightly.host.pqat_int8", "gzip_bytes")}
    assert suite.get("failures") == "2" and suite.get("errors") == "1" and suite.get("skipped") == "0"
    message = next(case for case in cases if case.get("name") == "latency_ms"
                   and case.get("classname") == "nightly.pi5.pqat_int8").find("failure").get("message")
    assert "ratio 1." in message and "noise: baseline IQR" in message and "p " in message
    error = next(case for case in cases if case.find("error") is not None)
    assert error.get("classname") == "nightly.rpi4.float" and "unreachable" in error.find("error").get("message")
    improved = next(case for case in cases if case.get("classname") == "nightly.local.float"
                    and case.get("name") == "latency_ms")
    assert improved.find("system-out").text.startswith("improvement: ")


def test_html_is_self_contained_and_shows_table_plots_and_marks(report_folder: Path) -> None:
    page = (report_folder / "report.html").read_text()
    references = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert references and all(reference.startswith("data:image/png;base64,") for reference in references)
    assert "url(" not in page and "@import" not in page
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)" alt="([^"]+)"', page)
    alts = [alt for _, alt in images]
    assert sum(alt.startswith("latency trend") for alt in alts) == 6  # 2 devices x 3 variants
    assert "accuracy vs latency and size on pi5" in alts and "energy per inference" in alts
    assert "accuracy vs latency and size on rpi4" not in alts  # nothing ran there
    assert all(base64.b64decode(png).startswith(PNG_SIGNATURE) for png, _ in images)
    assert page.count("&#9888; throttled") == 2  # latency and energy cells of ptq_int8 on pi5
    assert '<p class="verdict regression">REGRESSION: nightly run 5' in page


def test_json_holds_run_variants_results_findings_and_failures(report_folder: Path) -> None:
    document = json.loads((report_folder / "report.json").read_text())
    assert document["verdict"] == "regression"
    assert document["run"]["id"] == 5 and document["run"]["status"] == "complete"
    assert [v["name"] for v in document["variants"]] == ["float", "ptq_int8", "pqat_int8"]
    assert len(document["results"]) == 6 and document["failures"] == [
        {"device": DEAD, "variant": "float", "reason": FAILURE.reason}]
    latency = next(f for f in document["findings"] if f["series"] == {
        "variant": "pqat_int8", "device": METERED, "runtime": "litert+xnnpack"}
        and f["comparison"]["metric"] == "latency_ms")
    assert latency["comparison"]["direction"] == "regression" and latency["comparison"]["baseline_runs"] == [1, 2, 3, 4]
    trend = next(t for t in document["trends"] if t["series"]["variant"] == "pqat_int8"
                 and t["series"]["device"] == METERED)
    assert [p["run_id"] for p in trend["points"]] == [1, 2, 3, 4, 5]


def test_first_night_without_meter_has_no_baselines_and_says_no_energy_meter(tmp_path: Path) -> None:
    with ResultsStore.open(str(tmp_path / "results.db")) as store:
        with store.recording("first", kind="nightly", variants=_variants()) as run_id:
            store.record_benchmark(run_id, "float", benchmark_document(
                device=UNMETERED, model_sha256=SHAS["float"], samples=[2.0, 2.1, 1.9]), device=UNMETERED)
        report = build_report(store, run_id, devices=[UNMETERED], findings=check_run(store, run_id))
    folder = publish(report, tmp_path / "reports")
    assert (folder / "summary.md").read_text().startswith("**OK: nightly run 1 (first, ")
    assert "no energy meter: no device reported energy" in (folder / "report.html").read_text()
    suite = ElementTree.parse(folder / "junit.xml").getroot()
    assert suite.get("skipped") == suite.get("tests") != "0" and suite.get("failures") == "0"


def test_a_failed_run_is_reported_as_failed_with_its_reason(tmp_path: Path) -> None:
    with ResultsStore.open(str(tmp_path / "results.db")) as store:
        run_id = store.begin_run("broken", kind="nightly")
        store.finish_run(run_id, FAILED)
        report = build_report(store, run_id, devices=[UNMETERED], findings=[], error="the training pipeline failed: x")
    folder = publish(report, tmp_path / "reports")
    verdict = (folder / "summary.md").read_text().splitlines()[0]
    assert verdict.startswith("**FAILED: nightly run 1 (broken, ")
    assert verdict.endswith("did not complete: the training pipeline failed: x**")
    suite = ElementTree.parse(folder / "junit.xml").getroot()
    assert suite.get("errors") == "1" and suite.find("testcase").get("name") == "run completed"
    assert json.loads((folder / "report.json").read_text())["verdict"] == "failed"


def test_a_publisher_that_fails_leaves_the_previous_report_whole(tmp_path: Path, monkeypatch) -> None:
    with ResultsStore.open(str(tmp_path / "results.db")) as store:
        with store.recording("night", kind="nightly", variants=_variants()) as run_id:
            pass
        report = build_report(store, run_id, devices=[UNMETERED], findings=check_run(store, run_id))
    folder = publish(report, tmp_path / "reports")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def broken(_report) -> str:
        raise RuntimeError("renderer bug")

    monkeypatch.setitem(publish_module.PUBLISHERS, "junit.xml", broken)
    with pytest.raises(RuntimeError, match="renderer bug"):
        publish(report, tmp_path / "reports")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert [p.name for p in (tmp_path / "reports").iterdir()] == [folder.name]


def test_a_report_for_a_run_the_store_does_not_hold_is_a_clear_error(tmp_path: Path) -> None:
    with ResultsStore.open(str(tmp_path / "results.db")) as store:
        with pytest.raises(UserError, match="run 7 does not exist in"):
            build_report(store, 7, devices=[UNMETERED], findings=[])
