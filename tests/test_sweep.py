"""The sweep's pieces without training: the Pareto front on hand examples, the sweep config's one-line errors,
the comparison table and report files with hostile names, the report folder's naming."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.errors import UserError
from pipeline.nightly.report import Failure
from pipeline.results.pareto import dominates, pareto_front
from pipeline.sweep.sweep_config import load_sweep_config, plan_runs, with_overrides
from pipeline.sweep.sweep_publish import publish
from pipeline.sweep.sweep_report import Interleaved, Measurement, RunEvidence, SweepReport, VariantRow
from pipeline.sweep.sweep_table import format_table, headers, row_cells
from tests.conftest import REPO
from tests.test_hostile_strings import CONTROL, HOSTILE, _Tags

# ---- Pareto front -------------------------------------------------------------------------------------------------


def test_one_point_is_its_own_front() -> None:
    assert pareto_front({"a": (0.9, 1.0)}) == ["a"]


def test_a_point_worse_in_both_or_equal_in_one_and_worse_in_the_other_is_dominated() -> None:
    points = {"best": (0.90, 1.0), "slower": (0.90, 2.0), "worse": (0.80, 1.0), "both": (0.70, 3.0),
              "fast": (0.60, 0.5)}
    assert pareto_front(points) == ["best", "fast"]


def test_identical_points_do_not_dominate_each_other() -> None:
    assert pareto_front({"a": (0.9, 1.0), "b": (0.9, 1.0), "c": (0.8, 2.0)}) == ["a", "b"]
    assert not dominates((0.9, 1.0), (0.9, 1.0))


def test_a_trade_off_keeps_every_point_and_missing_numbers_are_never_on_the_front() -> None:
    points = {"small": (0.80, 1.0), "mid": (0.85, 2.0), "big": (0.90, 3.0), "unmeasured": (0.99, None),
              "no accuracy": (None, 0.1)}
    assert pareto_front(points) == ["small", "mid", "big"]
    assert pareto_front({}) == []


# ---- sweep config -------------------------------------------------------------------------------------------------

PIPELINE = 'extends = "{base}"\n[run]\nname = "{name}"\n'
DISTILLED = '[distill]\nstudent = "resnet8"\n[prune]\ntarget_sparsity = 0.0\n[quantize]\nmethod = "ptq"\n'


def _sweep(folder: Path, sweep: str, runs: dict[str, str] | None = None) -> Path:
    base = REPO / "configs" / "tiny.toml"
    for name, extra in (runs or {"a": "", "b": DISTILLED}).items():
        (folder / f"{name}.toml").write_text(PIPELINE.format(base=base, name=f"run-{name}") + extra)
    path = folder / "sweep.toml"
    path.write_text(sweep)
    return path


def test_the_shipped_sweep_makes_each_method_once_from_the_demo(tmp_path: Path) -> None:
    config = load_sweep_config(REPO / "configs" / "sweep.toml")
    plans = plan_runs(config)
    assert plans[0].config.source.endswith("configs/demo.toml") and config.devices == ["local"]
    assert [p.variants for p in plans] == [["float", "ptq_int8", "pqat_int8"], ["distilled_ptq_int8"],
                                           ["chpruned_qat_int8"], ["lowrank_ptq_int8"], ["pcqat_int8"],
                                           ["distilled_chpruned_pqat_int8"]]
    assert config.baseline == "ptq_int8" and config.reports_dir == "reports"
    assert {p.config.run.build_dir for p in plans} == {"build"}  # one build folder: shared stages are copied
    overridden = with_overrides(config, devices=["rpi5"], results_db="x.db", reports_dir=None, devices_file=None)
    assert overridden.devices == ["rpi5"] and overridden.results_db == "x.db" and overridden.reports_dir == "reports"


BAD_SWEEPS = [
    ('[sweep]\nruns = ["a.toml"]\ndevics = ["local"]\n',
     "sweep: unknown key 'devics' (valid keys: ab_rounds, baseline,"),
    ('[sweep]\nruns = ["a.toml"]\nsource = "x"\n', "sweep: unknown key 'source'"),
    ('[sweeps]\nruns = ["a.toml"]\n', "unknown section [sweeps]"),
    ('[sweep]\nruns = "a.toml"\n', "sweep.runs must be list, got str 'a.toml'"),
    ("[sweep]\nruns = []\n", "sweep.runs must list at least one name"),
    ('[sweep]\nruns = ["a.toml", 3]\n', "sweep.runs[1] must be a non-empty str, got int 3"),
    ('[sweep]\nruns = ["a.toml", "a.toml"]\n', "sweep.runs lists a name twice"),
    ('[sweep]\nruns = ["a.toml", "missing.toml"]\n', "sweep.runs[1] = 'missing.toml': "),
    ('[sweep]\nruns = ["a.toml"]\ndevices = []\n', "sweep.devices must list at least one name"),
    ('[sweep]\nruns = ["a.toml"]\nreports_dir = ""\n', "sweep.reports_dir must not be empty"),
    ('[sweep]\nruns = ["a.toml"]\nbaseline = 1\n', "sweep.baseline must be str, got int 1"),
    ('[sweep]\nruns = ["a.toml"]\nab_rounds = 2\n', "sweep.ab_rounds = 2 must be 0 (no interleaved A/B) or at least 3"),
    ("[sweep\n", "not valid TOML"),
]


@pytest.mark.parametrize(("text", "message"), BAD_SWEEPS)
def test_a_sweep_file_mistake_is_one_line_naming_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = _sweep(tmp_path, text)
    with pytest.raises(UserError) as raised:
        load_sweep_config(path)
    assert message in str(raised.value) and str(path) in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.parametrize(("runs", "baseline", "message"), [
    ({"a": "", "b": ""}, "ptq_int8", "sweep.runs[1] ({folder}/b.toml) makes variant 'pqat_int8', which sweep.runs[0]"),
    ({"a": "", "b": '[prune]\ntarget_sparsity = 0.0\n[quantize]\nmethod = "ptq"\n'}, "ptq_int8",
     "makes variant 'ptq_int8', which sweep.runs[0] already makes"),
    ({"a": "", "b": DISTILLED}, "lowrank_ptq_int8",
     "sweep.baseline = 'lowrank_ptq_int8' is not a variant of this sweep (it makes: float, ptq_int8, pqat_int8, "
     "distilled_ptq_int8)"),
])
def test_two_runs_making_one_variant_or_an_unmade_baseline_are_refused(tmp_path: Path, runs: dict[str, str],
                                                                       baseline: str, message: str) -> None:
    path = _sweep(tmp_path, f'[sweep]\nruns = ["a.toml", "b.toml"]\nbaseline = "{baseline}"\n', runs)
    with pytest.raises(UserError) as raised:
        plan_runs(load_sweep_config(path))
    assert str(raised.value).startswith(f"{path}: ") and message.format(folder=tmp_path) in str(raised.value)


def test_two_runs_with_one_run_name_are_refused(tmp_path: Path) -> None:
    path = _sweep(tmp_path, '[sweep]\nruns = ["a.toml", "b.toml"]\n')
    (tmp_path / "b.toml").write_text(PIPELINE.format(base=REPO / "configs" / "tiny.toml", name="run-a") + DISTILLED)
    with pytest.raises(UserError, match=r"sweep.runs\[1\] .* and sweep.runs\[0\] both have run.name = 'run-a'"):
        plan_runs(load_sweep_config(path))


# ---- table and report files with hostile names ----------------------------------------------------------------------

DEVICES = [f"d{index}-{text}" for index, text in enumerate(HOSTILE.values())]


def _report() -> SweepReport:
    """Two variants measured on devices named by the hostile strings; a failure and evidence with hostile text."""
    variants = [VariantRow("ptq_int8", "the fine-tuned model, PTQ " + HOSTILE["html"], "demo", 78_000, 9_000_000,
                           0.90, 100_000, 80_000),
                VariantRow("distilled_ptq_int8", HOSTILE["markdown"] + HOSTILE["newline"], "sweep-" + HOSTILE["long"],
                           20_000, 2_500_000, 0.88, 30_000, 24_000)]
    runtime = HOSTILE["xml_invalid"]
    measurements = [Measurement(device, v.name, median, median * 1.5, None if index else 0.25, runtime, 1)
                    for index, device in enumerate(DEVICES) for v, median in zip(variants, (0.40, 0.20), strict=True)]
    evidence = [RunEvidence(HOSTILE["html"], "distilled_ptq_int8", {"distill": {
        "student": HOSTILE["mathtext"], "student_width": 0.5, "teacher_params": 78_000, "student_params": 20_000,
        "teacher_accuracy": 0.9, "distilled_accuracy": 0.88, "plain_student_accuracy": 0.86,
        "distillation_gain": 0.02}})]
    sweep = {"id": 7, "name": "sweep", "kind": "sweep", "status": "complete", "started_at": "2026-11-28T21:00:00Z",
             "finished_at": None, "git_commit": None, "config_path": HOSTILE["newline"], "host": HOSTILE["html"]}
    return SweepReport(sweep, "ptq_int8", DEVICES, variants, measurements, evidence,
                       [Failure(DEVICES[0], "float", HOSTILE["html"] + HOSTILE["xml_invalid"])],
                       [Interleaved(DEVICES[0], "distilled_ptq_int8", 10, 1.9, 1.85, 1.96)])


def test_table_cells_compute_ratios_and_fronts_from_the_measured_numbers() -> None:
    report = _report()
    cells = dict(zip(headers(report), row_cells(report, report.variants[1]), strict=True))
    assert cells["parameters"] == "20,000" and cells["MACs"] == "2,500,000" and cells["top-1 (test set)"] == "88.00 %"
    assert cells[f"{DEVICES[0]} median / p99"] == "0.200 / 0.300 ms"
    assert cells[f"{DEVICES[0]} energy / inference"] == "0.250 mJ" and cells[f"{DEVICES[1]} energy / inference"] \
        == "no meter"
    assert cells[f"{DEVICES[0]} speed-up vs ptq_int8"] == "2.00x"
    assert cells[f"{DEVICES[0]} speed-up, interleaved A/B"] == "1.90x (1.85-1.96)"
    assert cells[f"{DEVICES[1]} speed-up, interleaved A/B"] == "-"
    assert cells["size vs ptq_int8"] == "0.30x" and cells["gzip vs ptq_int8"] == "0.30x"
    assert cells["Pareto front"].endswith("gzip size")  # faster and smaller but less accurate: on every front
    assert report.latency_front(DEVICES[0]) == ["ptq_int8", "distilled_ptq_int8"]


def test_terminal_table_is_one_line_per_variant_without_escape_sequences() -> None:
    table = format_table(_report())
    lines = table.split("\n")
    assert len(lines) == 1 + 2 + 1 + 2  # header, two variants, a blank line, how each was made
    assert not CONTROL & set(table) - {"\n"}
    assert len({len(line) for line in lines[:3]}) == 1  # aligned columns


@pytest.fixture
def published(tmp_path: Path) -> Path:
    return publish(_report(), tmp_path / "reports")


def test_report_html_has_no_injected_markup_and_every_plot(published: Path) -> None:
    parser = _Tags()
    page = (published / "report.html").read_text(encoding="utf-8")
    parser.feed(page)
    tags = {tag for tag, _ in parser.tags}
    assert "script" not in tags and "a" not in tags
    images = [attrs for tag, attrs in parser.tags if tag == "img"]
    assert len(images) == len(DEVICES) + 1 and all(a["src"].startswith("data:image/png;base64,") for a in images)
    text = "".join(parser.text)
    assert "<script>alert(1)</script>" in text and not CONTROL & set(text) - {"\n"}
    assert "distillation gain +2.00 points" in text


def test_summary_markdown_renders_no_link_image_or_extra_column(published: Path) -> None:
    markdown_it = pytest.importorskip("markdown_it")
    summary = (published / "summary.md").read_text(encoding="utf-8")
    assert not CONTROL & set(summary) - {"\n"}
    parser = _Tags()
    parser.feed(markdown_it.MarkdownIt("commonmark").enable("table").render(summary))
    assert not {tag for tag, _ in parser.tags} & {"a", "img", "script", "code", "h1", "em"}
    table = [line for line in summary.splitlines() if line.startswith("| ")]
    columns = len(headers(_report()))
    assert len(table) == 2 + 2  # header, rule, two variants
    assert all(line.count("|") - line.count("\\|") == columns + 1 for line in table)


def test_sweep_json_keeps_the_strings_and_the_derived_numbers(published: Path) -> None:
    document = json.loads((published / "sweep.json").read_text(encoding="utf-8"))
    assert document["devices"] == DEVICES and document["failures"][0]["reason"].startswith("<script>")
    assert document["against_baseline"]["distilled_ptq_int8"]["speedup"][DEVICES[0]] == pytest.approx(2.0)
    assert document["pareto_fronts"]["gzip_size"] == ["ptq_int8", "distilled_ptq_int8"]


def test_a_second_sweep_on_the_same_day_gets_its_own_folder(tmp_path: Path) -> None:
    first, second = publish(_report(), tmp_path), publish(_report(), tmp_path)
    assert (first.name, second.name) == ("sweep-2026-11-28", "sweep-2026-11-28-2")
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.name, second.name]  # no temporary folder left


@pytest.mark.parametrize("layers, most, which", [
    ([], 300, "8 clusters per kernel"),
    (["stack3_b_conv", "stack3_a_conv"], 9, "8 clusters in each of 2 kernels (stack3_b_conv, stack3_a_conv; "
                                           "the others unclustered)"),
])
def test_cluster_evidence_bounds_only_the_kernels_cluster_layers_named(layers, most, which) -> None:
    """The stem left unclustered keeps 300 values; the bound the report states is over the clustered kernels."""
    from pipeline.sweep.evidence import evidence_lines, stage_evidence

    manifest = {"stages": {"cluster": {
        "config": {"cluster": {"clusters": 8, "layers": layers}},
        "metrics": {"clusters": 8, "sparsity_preserved": True, "sparsity": 0.65, "clustered_val_accuracy": 0.88,
                    "distinct_kernel_values": {"stem_conv": 300, "stack3_a_conv": 9, "stack3_b_conv": 8}}}}}
    [line] = evidence_lines("cluster", stage_evidence(manifest)["cluster"])
    assert line.startswith(f"{which}, at most {most} distinct values in a clustered kernel; sparsity 65.00 % preserved")


@pytest.mark.parametrize("variants, teacher_line", [
    ({"ptq_int8": {"accuracy": 0.9031}, "distilled_ptq_int8": {"accuracy": 0.8955}},
     "teacher's full-int8 top-1 (this run's ptq_int8): 90.31 %"),
    ({"distilled_ptq_int8": {"accuracy": 0.8955}}, None),
])
def test_distill_evidence_holds_the_student_to_its_teachers_int8_accuracy(variants, teacher_line) -> None:
    """The run's ptq_int8 is its teacher converted; without one the report says nothing rather than guess."""
    from pipeline.sweep.evidence import evidence_lines, stage_evidence

    manifest = {"metrics": {"variants": variants}, "stages": {"distill": {"metrics": {
        "student": "resnet8", "student_width": 0.5, "teacher_accuracy": 0.9025, "distilled_accuracy": 0.8950}}}}
    lines = evidence_lines("distill", stage_evidence(manifest)["distill"])
    assert (teacher_line in lines) if teacher_line else not any("int8" in line for line in lines)
