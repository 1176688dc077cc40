"""`python -m pipeline nightly` end to end on the shared micro pipeline run, the real agent on `local`,
and both store backends: a slower night is flagged, a killed night counts for nothing, failed devices
and a failed pipeline are recorded and reported.

The slower night: the micro model is too small for a second thread to speed it up reliably on a
2-core machine, so "fewer threads" is no dependable slowdown here (it is for the demo model; see the
README). The slower `local` profile therefore keeps its settings and runs the agent under an
interpreter on which every LiteRT invoke computes the model three times: a device three times
slower, measured by the real agent.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from pipeline.results import ResultsStore
from tests.conftest import REPO, micro_config, run_cli, write_toml

pytest_plugins = ["tests.postgres_fixtures"]  # a real PostgreSQL server, once per session

VARIANTS = ("float", "ptq_int8", "pqat_int8")
KILL_AFTER = "nightly: recorded float on local"  # stderr line: one result committed, more to come
PROCESS_TIMEOUT_S = 300
SLOWER_PYTHON = """#!{python}
# The agent's interpreter on a device three times slower: every LiteRT invoke computes the model three times.
import runpy
import sys

from ai_edge_litert import interpreter

_invoke = interpreter.Interpreter.invoke


def invoke_three_times(self):
    _invoke(self)
    _invoke(self)
    return _invoke(self)


interpreter.Interpreter.invoke = invoke_three_times
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""
LOCAL_DEVICE = """[devices.local]
workdir = "{workdir}"
runs = 30
min_s = 0.3
warmup_runs = 3
warmup_min_s = 0.1
idle_s = 0
"""
DEAD_DEVICE = """[devices.dead]
host = "127.0.0.1"
port = {port}
connect_retries = 0
connect_timeout_s = 2
ssh_config = "{folder}/no-ssh-config"
known_hosts = "{folder}/known_hosts"
"""


def _closed_port() -> int:
    """A port nothing listens on (bound, then released): connections to it are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def nightly(micro_run, results_url: str, tmp_path: Path) -> dict[str, Path | str]:
    """A nightly config on the micro run (every stage cached) with short agent settings, and device files:
    `devices` (local + an unreachable ssh device) and `slower` (local three times slower)."""
    pipeline_config = write_toml(micro_run[0], tmp_path / "micro.toml")
    local = LOCAL_DEVICE.format(workdir=tmp_path / "device")
    (tmp_path / "devices.toml").write_text(local + DEAD_DEVICE.format(port=_closed_port(), folder=tmp_path))
    slower_python = tmp_path / "slower-python"
    slower_python.write_text(SLOWER_PYTHON.format(python=sys.executable))
    slower_python.chmod(0o755)
    (tmp_path / "slower.toml").write_text(local + f'python = "{slower_python}"\n')
    config = tmp_path / "nightly.toml"
    config.write_text(f'[nightly]\npipeline = "{pipeline_config}"\ndevices_file = "{tmp_path / "devices.toml"}"\n'
                      f'results_db = "{results_url}"\nreports_dir = "{tmp_path / "reports"}"\n')
    return {"config": config, "slower": tmp_path / "slower.toml", "reports": tmp_path / "reports", "url": results_url}


def _night(setup: dict, *extra: str) -> subprocess.CompletedProcess:
    return run_cli("nightly", "--config", str(setup["config"]), *extra, timeout=PROCESS_TIMEOUT_S)


def _report(setup: dict, run_id: int) -> Path:
    [folder] = setup["reports"].glob(f"*-run{run_id}")
    return folder


def _junit_outcomes(folder: Path, tag: str) -> set[tuple[str, str]]:
    suite = ElementTree.parse(folder / "junit.xml").getroot()
    return {(case.get("classname"), case.get("name")) for case in suite.iter("testcase") if case.find(tag) is not None}


def _kill_while_benchmarking(setup: dict) -> str:
    """Start a nightly and SIGKILL it once its first result is committed; return what it had printed."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-m", "pipeline", "nightly", "--config", str(setup["config"])],
                             cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    printed = []
    for line in child.stderr:
        printed.append(line)
        if line.startswith(KILL_AFTER):
            child.send_signal(signal.SIGKILL)
            break
    child.wait(timeout=PROCESS_TIMEOUT_S)
    child.stderr.close()
    assert child.returncode == -signal.SIGKILL, "".join(printed)
    return "".join(printed)


def test_a_slower_night_is_flagged_and_a_killed_night_counts_for_nothing(nightly: dict) -> None:
    first = _night(nightly)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("OK: nightly run 1 (micro, ")
    assert sorted(p.name for p in _report(nightly, 1).iterdir()) == [
        "junit.xml", "report.html", "report.json", "summary.md"]

    _kill_while_benchmarking(nightly)
    with ResultsStore.open(nightly["url"]) as store:
        assert [run["id"] for run in store.runs()] == [1]  # only the first night is complete
        assert store.run(2)["status"] == "running"
        assert {row["run_id"] for row in store.results()} == {1} and len(store.results()) == 3
        assert len(store.results(run_id=2, statuses=("running",))) >= 1  # what it committed is kept
    assert not list(nightly["reports"].glob("*-run2")) and not list(nightly["reports"].glob(".tmp-*"))

    slower = _night(nightly, "--devices", str(nightly["slower"]))
    assert slower.returncode == 1, slower.stderr
    assert slower.stdout.startswith("REGRESSION: nightly run 3 (micro, ")
    folder = _report(nightly, 3)
    summary = (folder / "summary.md").read_text()
    assert summary.startswith("**REGRESSION: nightly run 3 (micro, ") and "3 regressions" in summary.splitlines()[0]
    regressions = summary.split("**Regressions**")[1].split("**Improvements**")[0]
    for variant in VARIANTS:
        assert f"- {variant} on local (ai_edge_litert+xnnpack): median latency " in regressions
    assert "noise: baseline IQR" in regressions and "baseline runs 1)" in regressions  # night 2 is no baseline
    assert _junit_outcomes(folder, "failure") == {(f"nightly.local.{v}", "latency_ms") for v in VARIANTS}
    with ResultsStore.open(nightly["url"]) as store:
        assert [(run["id"], run["status"]) for run in store.runs(statuses=("complete", "failed", "running"))] == [
            (1, "complete"), (2, "failed"), (3, "complete")]


def test_a_failed_device_is_reported_while_the_others_are_recorded(nightly: dict) -> None:
    mixed = _night(nightly, "--device", "local", "--device", "dead")
    assert mixed.returncode == 0, mixed.stderr  # first night: nothing to regress against
    folder = _report(nightly, 1)
    summary = (folder / "summary.md").read_text()
    assert summary.splitlines()[0].endswith(": 0 regressions, 0 improvements, 3 failed benchmarks**")
    for variant in VARIANTS:
        assert re.search(rf"^- {variant} on dead: device dead \(.*\): unreachable after 1 attempt", summary, re.M)
    assert _junit_outcomes(folder, "error") == {(f"nightly.dead.{v}", "benchmark") for v in VARIANTS}
    report = json.loads((folder / "report.json").read_text())
    assert {(r["device"], r["variant"]) for r in report["results"]} == {("local", v) for v in VARIANTS}
    assert report["run"]["status"] == "complete"

    dead = _night(nightly, "--device", "dead")
    assert dead.returncode == 2
    assert dead.stdout.startswith("FAILED: nightly run 2 (micro, ")
    assert "did not complete: no device produced a result (every device failed)" in dead.stdout
    with ResultsStore.open(nightly["url"]) as store:
        assert store.run(2)["status"] == "failed" and not store.results(run_id=2, statuses=("failed",))


def test_a_failed_pipeline_is_recorded_as_a_failed_run(nightly: dict, tmp_path: Path) -> None:
    broken = micro_config(tmp_path / "broken-build", "broken", data={"path": str(tmp_path / "no-dataset")})
    write_toml(broken, tmp_path / "micro.toml")  # the nightly config's pipeline, now without its data
    result = _night(nightly)
    assert result.returncode == 2
    assert result.stdout.startswith("FAILED: nightly run 1 (broken, ")
    assert "did not complete: the training pipeline failed: " in result.stdout
    folder = _report(nightly, 1)
    assert _junit_outcomes(folder, "error") == {("nightly", "run completed")}
    with ResultsStore.open(nightly["url"]) as store:
        assert store.run(1)["status"] == "failed" and store.run(1)["kind"] == "nightly"


def test_a_night_whose_report_cannot_be_written_is_not_complete(nightly: dict, monkeypatch) -> None:
    """The results are kept, but the run is failed (no baseline will use it) and the nightly gives no verdict."""
    from pipeline.nightly import publish as publish_module
    from pipeline.nightly.job import EXIT_FAILED, run_nightly
    from pipeline.nightly.nightly_config import load_nightly_config, with_overrides

    def broken(_report) -> str:
        raise ValueError("a renderer choked on a name")

    monkeypatch.setitem(publish_module.PUBLISHERS, "report.html", broken)
    config = with_overrides(load_nightly_config(nightly["config"]), variants=["float"], devices=["local"])
    outcome = run_nightly(config, log=lambda message: None)
    assert outcome.exit_code == EXIT_FAILED and outcome.report_dir is None
    assert "did not complete: the report could not be written: ValueError: a renderer choked" in outcome.verdict
    with ResultsStore.open(nightly["url"]) as store:
        assert store.run(outcome.run_id)["status"] == "failed" and store.runs() == []
        assert len(store.results(run_id=outcome.run_id, statuses=("failed",))) == 1  # the measurement is kept
    assert [path.name for path in nightly["reports"].iterdir()] == [".lock"]  # no report, no half-written folder
