"""A result that contradicts the host's reference is marked in every output that shows results (the bench
table, `results`, summary.md, report.html, the sweep's tables) and is never a speed-up or on a Pareto front."""
from __future__ import annotations

import dataclasses

from pipeline.cli import main
from pipeline.core.marks import MISMATCH
from pipeline.devices.result_table import format_table
from pipeline.nightly import html_report, markdown_report
from pipeline.nightly.report import build_report
from pipeline.results import ResultsStore, VariantRecord
from pipeline.sweep import sweep_markdown, sweep_table
from pipeline.sweep.sweep_report import Measurement, SweepReport, VariantRow
from pipeline.testing.synthetic import benchmark_document

SHA = "ef" * 32
REASON = "result contradicts the host: the top-1 class agrees with the host's on only 9.8% of the samples"


def _night(store: ResultsStore) -> int:
    with store.recording("night", kind="nightly", variants=[VariantRecord("int8", SHA, 100_000)]) as run_id:
        store.record_benchmark(run_id, "int8", benchmark_document(device="honest", model_sha256=SHA,
                                                                  samples=[1.0, 1.1]), device="honest")
        forged = {**benchmark_document(device="board", model_sha256=SHA, samples=[0.1, 0.2]), "mismatch": REASON}
        store.record_benchmark(run_id, "int8", forged, device="board")
    return run_id


def test_bench_table_marks_the_mismatch():
    good = benchmark_document(device="honest", model_sha256=SHA, samples=[1.0])
    lines = format_table([{**good, "mismatch": None}, {**good, "device": "board", "mismatch": REASON}]).splitlines()
    assert lines[1].split()[-1] == "ok" and lines[2].split()[-1] == MISMATCH


def test_results_listing_marks_the_mismatch(tmp_path, capsys):
    database = tmp_path / "results.db"
    with ResultsStore.open(str(database)) as store:
        _night(store)
    assert main(["results", "--db", str(database)]) == 0
    rows = {line.split()[5]: line for line in capsys.readouterr().out.splitlines()[1:]}  # the time has a space
    assert rows["board"].rstrip().endswith(MISMATCH) and rows["honest"].rstrip().endswith("ok")


def test_summary_and_html_mark_the_mismatched_cell(tmp_path):
    with ResultsStore.open(str(tmp_path / "results.db")) as store:
        run_id = _night(store)
        report = build_report(store, run_id, devices=["honest", "board"], findings=[])
    [row] = [line for line in markdown_report.render(report).splitlines() if line.startswith("| int8")]
    honest, board = row.split(" | ")[5:7]
    assert MISMATCH in board and MISMATCH not in honest
    page = html_report.render(report)
    assert page.count(f'<span class="mismatch">{MISMATCH}') == 2  # board's latency and energy cells
    assert [result["mismatch"] for result in report.to_json()["results"]].count(REASON) == 1


def test_a_mismatched_measurement_is_marked_and_never_on_a_front_or_a_speedup():
    variants = [VariantRow("ptq_int8", "baseline", "demo", 1, 1, 0.90, 100, 80),
                VariantRow("pruned", "forged", "demo", 1, 1, 0.90, 100, 80)]
    measured = [Measurement("pi", "ptq_int8", 2.0, 3.0, None, "litert", 1),
                Measurement("pi", "pruned", 0.5, 0.6, None, "litert", 1, mismatch=True)]
    sweep = {"id": 1, "name": "s", "kind": "sweep", "status": "complete", "started_at": "2026-01-01T00:00:00Z",
             "finished_at": None, "git_commit": None, "config_path": None, "host": "h"}
    report = SweepReport(sweep, "ptq_int8", ["pi"], variants, measured)
    assert report.latency_front("pi") == ["ptq_int8"] and report.speedup("pi", "pruned") is None
    cells = dict(zip(sweep_table.headers(report), sweep_table.row_cells(report, variants[1]), strict=True))
    assert cells["pi median / p99"].endswith(MISMATCH) and "pi latency" not in cells["Pareto front"]
    assert MISMATCH in sweep_markdown.render(report)
    honest = dataclasses.replace(report, measurements=[measured[0], dataclasses.replace(measured[1], mismatch=False)])
    assert honest.latency_front("pi") == ["pruned"]  # the same numbers, believed, would be the front
