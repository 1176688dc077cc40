"""`python -m pipeline results` and `baseline` against a populated store on both backends."""
from __future__ import annotations

import json

import pytest

from pipeline.cli import main
from pipeline.results.store import ResultsStore
from pipeline.testing.synthetic import benchmark_document

pytest_plugins = ["tests.postgres_fixtures"]  # a real PostgreSQL server, once per session

SHA = "12" * 32


def _populate(url: str) -> dict[str, int]:
    """Two complete nightly runs on two devices, one throttled result, and one failed run."""
    ids = {}
    with ResultsStore.open(url) as store:
        for day, name in ((1, "n1"), (2, "n2")):
            with store.recording(name, kind="nightly", started_at=f"2025-03-0{day}T01:00:00.000000Z") as run_id:
                for device, level in (("pi5", 10.0 * day), ("coral", 2.0)):
                    store.record_benchmark(run_id, "pqat_int8", benchmark_document(
                        device=device, model_sha256=SHA, samples=[level, level * 1.1, level * 0.9],
                        accuracy=0.91, throttled=device == "coral" and day == 2), device=device)
            ids[name] = run_id
        ids["failed"] = store.begin_run("broken", kind="nightly", started_at="2025-03-03T01:00:00.000000Z")
        store.finish_run(ids["failed"], "failed")
    return ids


def _run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_table_lists_complete_runs_with_units_and_throttle_marks(results_url: str, capsys) -> None:
    _populate(results_url)
    code, out, _ = _run_cli(capsys, "results", "--db", results_url)
    lines = out.splitlines()
    assert code == 0 and "median ms" in lines[0] and "throttled" in lines[0]
    assert len(lines) == 5 and "broken" not in out
    assert lines[4].split()[1:3] == ["n2", "2025-03-02"] and lines[4].split()[-2:] == ["yes", "ok"]
    assert "20.000" in out and "0.9100" in out


def test_json_filters_by_device_and_dates_and_all_shows_failed_runs(results_url: str, capsys) -> None:
    ids = _populate(results_url)
    code, out, _ = _run_cli(capsys, "results", "--db", results_url, "--json",
                            "--device", "pi5", "--since", "2025-03-02")
    [row] = json.loads(out)
    assert code == 0 and row["run_id"] == ids["n2"] and row["latency_median_ms"] == 20.0 and row["throttled"] is False
    _, out, _ = _run_cli(capsys, "results", "--db", results_url, "--json", "--until", "2025-03-01")
    assert {r["device"] for r in json.loads(out)} == {"pi5", "coral"} and {r["run"] for r in json.loads(out)} == {"n1"}
    _, out, _ = _run_cli(capsys, "results", "--db", results_url, "--variant", "float")
    assert out.startswith("no matching results")


def test_bad_dates_are_one_line_errors(results_url: str, capsys) -> None:
    code, out, err = _run_cli(capsys, "results", "--db", results_url, "--since", "March")
    assert code == 1 and out == "" and err.count("\n") == 1 and "use YYYY-MM-DD" in err
    code, _, err = _run_cli(capsys, "results", "--db", results_url, "--since", "2025-03-05", "--until", "2025-03-01")
    assert code == 1 and "swap them" in err


def test_baseline_pin_show_unpin(results_url: str, capsys) -> None:
    ids = _populate(results_url)
    code, out, _ = _run_cli(capsys, "baseline", "pin", "n1", "--db", results_url)
    assert code == 0 and f"run {ids['n1']} 'n1'" in out
    _, out, _ = _run_cli(capsys, "baseline", "--db", results_url, "show")
    assert f"run {ids['n1']} 'n1'" in out and "pinned at" in out
    code, _, err = _run_cli(capsys, "baseline", "pin", str(ids["failed"]), "--db", results_url)
    assert code == 1 and "failed, not complete" in err
    _, out, _ = _run_cli(capsys, "baseline", "unpin", "--db", results_url)
    assert out.startswith("unpinned")
    _, out, _ = _run_cli(capsys, "baseline", "show", "--db", results_url)
    assert out.startswith("no pinned baseline")
