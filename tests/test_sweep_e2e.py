"""`python -m pipeline sweep` end to end on tiny data: two runs sharing their stages, every variant benchmarked on
`local` through the agent, the store rows, the three report files, and a second sweep that trains nothing."""
from __future__ import annotations

import html.parser
import json
import re
from pathlib import Path

import pytest

from pipeline.results import ResultsStore
from tests.conftest import REPO, run_cli

pytestmark = pytest.mark.slow

BASE = """extends = "{tiny}"
[run]
name = "e2e-base"
build_dir = "{build}"
[data]
train_limit = 600
test_limit = 200
validation_size = 100
[model]
width = 0.25
[convert]
calibration = "{calibration}"
eval_samples = 20
"""
DISTILLED = """extends = "base.toml"
[run]
name = "e2e-distilled"
[distill]
student = "resnet8"
width = 0.125
epochs = 1
[prune]
target_sparsity = 0.0
[quantize]
method = "ptq"
"""
VARIANTS = ["float", "ptq_int8", "pqat_int8", "distilled_ptq_int8"]
VOID = {"meta", "img", "br", "hr", "link", "input"}
SWEEP_TIMEOUT_S = 3600  # two tiny runs and four benchmarks; minutes on an idle 2-core machine


class _WellFormed(html.parser.HTMLParser):
    """Every element closed in order (void elements excepted), nothing left open."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.problems: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open.pop() != tag:
            self.problems.append(f"</{tag}> closes nothing open")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("sweep")
    calibration = REPO / "calibration_data" / "fashion_mnist_train_500.npz"
    (folder / "base.toml").write_text(BASE.format(tiny=REPO / "configs" / "tiny.toml", build=folder / "build",
                                                  calibration=calibration))
    (folder / "distilled.toml").write_text(DISTILLED)
    (folder / "sweep.toml").write_text('[sweep]\nruns = ["base.toml", "distilled.toml"]\n')
    arguments = ("sweep", "--config", str(folder / "sweep.toml"), "--db", str(folder / "results.db"),
                 "--reports", str(folder / "reports"))
    first = run_cli(*arguments, timeout=SWEEP_TIMEOUT_S)
    second = run_cli(*arguments, timeout=SWEEP_TIMEOUT_S)
    return {"folder": folder, "first": first, "second": second}


def _report_folder(done) -> Path:
    lines = [line for line in done.stdout.splitlines() if line.startswith("report: ")]
    assert len(lines) == 1, done.stdout + done.stderr
    return Path(lines[0].removeprefix("report: "))


def test_the_sweep_prints_one_row_per_variant_and_writes_the_report(sweep: dict) -> None:
    done = sweep["first"]
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {line.split()[0]: line for line in done.stdout.splitlines() if line.split() and line.split()[0] in VARIANTS}
    assert list(rows) == VARIANTS
    assert re.search(r"ptq_int8 .* 1\.00x", rows["ptq_int8"])  # the baseline against itself
    assert "no meter" in rows["float"]  # local has no energy meter: said, not invented
    folder = _report_folder(done)
    assert folder.name.startswith("sweep-") and sorted(p.name for p in folder.iterdir()) == [
        "report.html", "summary.md", "sweep.json"]
    assert "[1/2] e2e-base" in done.stderr and "[2/2] e2e-distilled" in done.stderr


def test_sweep_json_has_every_variant_measured_and_the_distillation_evidence(sweep: dict) -> None:
    document = json.loads((_report_folder(sweep["first"]) / "sweep.json").read_text())
    assert [v["name"] for v in document["variants"]] == VARIANTS
    assert {(m["device"], m["variant"]) for m in document["measurements"]} == {("local", v) for v in VARIANTS}
    assert all(m["median_ms"] > 0 and m["p99_ms"] >= m["median_ms"] for m in document["measurements"])
    for v in document["variants"]:
        assert v["params"] > 0 and v["macs"] > 0 and v["bytes"] > v["gzip_bytes"] > 0 and 0 <= v["accuracy"] <= 1
    runs = {v["name"]: v["run"] for v in document["variants"]}
    assert runs == {"float": "e2e-base", "ptq_int8": "e2e-base", "pqat_int8": "e2e-base",
                    "distilled_ptq_int8": "e2e-distilled"}
    assert document["against_baseline"]["ptq_int8"]["speedup"]["local"] == pytest.approx(1.0)
    distilled = next(e for e in document["evidence"] if e["variant"] == "distilled_ptq_int8")["stages"]["distill"]
    assert distilled["student_params"] < distilled["teacher_params"]
    assert distilled["distillation_gain"] == pytest.approx(
        distilled["distilled_accuracy"] - distilled["plain_student_accuracy"])
    assert document["pareto_fronts"]["latency"]["local"] and document["pareto_fronts"]["gzip_size"]


def test_the_store_holds_one_complete_sweep_run_per_sweep_with_every_result(sweep: dict) -> None:
    with ResultsStore.open(str(sweep["folder"] / "results.db")) as store:
        runs = store.runs(kind="sweep")
        assert [run["status"] for run in runs] == ["complete", "complete"]
        for run in runs:
            assert sorted(v["name"] for v in store.variants(run["id"])) == sorted(VARIANTS)
            results = store.results(run_id=run["id"])
            assert sorted((r["device"], r["variant"]) for r in results) == sorted(("local", v) for v in VARIANTS)
        assert store.runs(kind="nightly") == []  # a sweep never becomes a nightly baseline


def test_a_second_sweep_trains_nothing_and_keeps_the_first_report(sweep: dict) -> None:
    done = sweep["second"]
    assert done.returncode == 0, done.stderr[-3000:]
    stage_lines = [line for line in done.stderr.splitlines()
                   if re.match(r"\s+\[\d/9\]", line) and " skipped " not in line]
    assert len(stage_lines) == 2 * 9 and all(" cached " in line for line in stage_lines)
    assert "e2e-base: 0 stage(s) ran" in done.stderr and "e2e-distilled: 0 stage(s) ran" in done.stderr
    first, second = _report_folder(sweep["first"]), _report_folder(done)
    assert second.name == f"{first.name}-2" and (first / "report.html").is_file()


def test_report_html_is_well_formed_and_self_contained(sweep: dict) -> None:
    page = (_report_folder(sweep["first"]) / "report.html").read_text()
    parser = _WellFormed()
    parser.feed(page)
    parser.close()
    assert parser.problems == [] and parser.open == []
    assert len(parser.images) == 2 and all(src.startswith("data:image/png;base64,") for src in parser.images)
    assert "http://" not in page and "https://" not in page
    assert page.index("<table>") < page.index("Pareto fronts") < page.index("Evidence per method")
