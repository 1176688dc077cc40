"""`python -m pipeline nightly` end to end on the shared micro pipeline run, the real agent on `local`,
and both store backends: a slower device is reported as such (not as a model regression), a killed
night counts for nothing, failed devices and a failed pipeline are recorded and reported.

The slower device: the micro model is too small for a second thread to speed it up reliably on a
2-core machine, so "fewer threads" is no dependable slowdown here (it is for the demo model; see the
README). The slower `local` profile therefore keeps its settings and runs the agent under an
interpreter on which every LiteRT invoke computes the model SLOWER_REPEATS times: a device that much
slower, measured by the real agent. Tonight's model and the kept baseline model then run back to back
on it, both slower than on the baseline nights: the device is slower, the models are not.

tests/test_nightly_gate.py has the other half: busy loops competing for the CPU, and a wider model.
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
REPEATING_PYTHON = """#!{python}
# The agent's interpreter on a slower device: every LiteRT invoke computes the model {repeats} times.
import os
import runpy
import sys
{pin}
from ai_edge_litert import interpreter

_invoke = interpreter.Interpreter.invoke


def invoke_repeatedly(self):
    for _ in range({repeats} - 1):
        _invoke(self)
    return _invoke(self)


interpreter.Interpreter.invoke = invoke_repeatedly
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""
# The "slower device" computes each invoke this many times. Three times was not always enough on a 2-core
# machine that other jobs loaded (load average 10): one of three variants' baseline nights spread so widely
# that the slower night stayed inside three robust sigmas of them.
SLOWER_REPEATS = 10
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


def repeating_python(path: Path, repeats: int, cpu: int | None = None) -> Path:
    """An interpreter for the agent on which every LiteRT invoke computes the model `repeats` times
    (running on CPU `cpu` alone, when given)."""
    pin = "" if cpu is None else f"os.sched_setaffinity(0, {{{cpu}}})\n"
    path.write_text(REPEATING_PYTHON.format(python=sys.executable, repeats=repeats, pin=pin))
    path.chmod(0o755)
    return path


def _closed_port() -> int:
    """A port nothing listens on (bound, then released): connections to it are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def nightly(micro_run, results_url: str, tmp_path: Path) -> dict[str, Path | str]:
    """A nightly config on the micro run (every stage cached) with short agent settings, and device files:
    `devices` (local + an unreachable ssh device) and `slower` (local SLOWER_REPEATS times slower)."""
    pipeline_config = write_toml(micro_run[0], tmp_path / "micro.toml")
    local = LOCAL_DEVICE.format(workdir=tmp_path / "device")
    (tmp_path / "devices.toml").write_text(local + DEAD_DEVICE.format(port=_closed_port(), folder=tmp_path))
    slower_python = repeating_python(tmp_path / "slower-python", SLOWER_REPEATS)
    (tmp_path / "slower.toml").write_text(local + f'python = "{slower_python}"\n')
    config = tmp_path / "nightly.toml"
    settings = (f'[nightly]\npipeline = "{pipeline_config}"\ndevices_file = "{tmp_path / "devices.toml"}"\n'
                f'results_db = "{results_url}"\nreports_dir = "{tmp_path / "reports"}"\n'
                f'models_dir = "{tmp_path / "models"}"\n')
    config.write_text(settings)
    strict = tmp_path / "nightly-strict.toml"  # fails on device drift too
    strict.write_text(settings + 'fail_on = ["model", "device"]\n')
    return {"config": config, "strict": strict, "slower": tmp_path / "slower.toml", "reports": tmp_path / "reports",
            "url": results_url}


def _night(setup: dict, *extra: str, config: str = "config") -> subprocess.CompletedProcess:
    return run_cli("nightly", "--config", str(setup[config]), *extra, timeout=PROCESS_TIMEOUT_S)


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


def test_a_slower_device_is_not_a_model_regression_and_a_killed_night_counts_for_nothing(nightly: dict) -> None:
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
    for _ in range(2):  # nights 3 and 4: three good nights, enough history to judge the device by
        assert _night(nightly).returncode == 0

    slower = _night(nightly, "--devices", str(nightly["slower"]), config="strict")
    assert slower.returncode == 1, slower.stderr  # fail_on = ["model", "device"]; the default exits 0
    assert slower.stdout.startswith("DEVICE SLOWER: nightly run 5 (micro, ")
    assert "0 model regressions, 3 device drifts" in slower.stdout
    folder = _report(nightly, 5)
    summary = (folder / "summary.md").read_text()
    drifts = summary.split("**Device drift**")[1].split("**Improvements**")[0]
    for variant in VARIANTS:
        [line] = [line for line in drifts.splitlines() if line.startswith(f"- {variant} on local ")]
        assert "A/B over 10 rounds: tonight's model / baseline model" in line and "baseline model tonight" in line
        assert "(last 5 nightly runs; baseline runs 1, 3, 4)" in line  # night 2 is no baseline
    assert "**Model regressions**\n\n- none" in summary
    assert _junit_outcomes(folder, "failure") == set()
    suite = ElementTree.parse(folder / "junit.xml").getroot()
    warned = {(case.get("classname"), case.get("name")) for case in suite.iter("testcase")
              if (case.findtext("system-out") or "").startswith("warning: device slower")}
    assert warned == {(f"nightly.local.{v}", "latency_ms") for v in VARIANTS}
    with ResultsStore.open(nightly["url"]) as store:
        assert [(run["id"], run["status"]) for run in store.runs(statuses=("complete", "failed", "running"))] == [
            (1, "complete"), (2, "failed"), (3, "complete"), (4, "complete"), (5, "complete")]


def test_a_failed_device_is_reported_while_the_others_are_recorded(nightly: dict) -> None:
    mixed = _night(nightly, "--device", "local", "--device", "dead")
    assert mixed.returncode == 0, mixed.stderr  # first night: nothing to regress against
    folder = _report(nightly, 1)
    summary = (folder / "summary.md").read_text()
    verdict = summary.splitlines()[0]
    assert verdict.endswith(": 0 model regressions, 0 device drifts, 0 improvements, 3 failed benchmarks**")
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
