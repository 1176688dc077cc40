"""The model search end to end on tiny data, every trial a real pipeline run timed by the agent on a local
device: constraints, a pruned trial, resume, two workers against one PostgreSQL study (no trial twice, the
device timed by one trial at a time) and a worker killed with SIGKILL mid-trial. One build folder for the
module, so data and fine-tuning are computed once (by the first study) and copied by every later run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import psycopg
import pytest
from optuna.trial import TrialState

from pipeline.search.settings import load_search_config
from pipeline.search.study import QUEUED, open_study
from pipeline.training.config import load_config
from tests.conftest import REPO, run_cli
from tests.test_devices_benchmark import timestamping_python

pytest_plugins = ["tests.postgres_fixtures"]
pytestmark = pytest.mark.slow

# Enough steps that the from-scratch model learns (about 55% on validation): the pruner has something to judge.
BASE = """extends = "{repo}/configs/tiny.toml"
[run]
name = "base"
build_dir = "{build}"
[data]
train_limit = 1000
test_limit = 200
validation_size = 200
[model]
width = 0.25
[pretrain]
method = "none"
[finetune]
label_fraction = 1.0
epochs = 5
batch_size = 16
learning_rate = 3e-3
augment = false
scratch_baseline = false
[distill]
plain_baseline = false
[convert]
calibration = "{repo}/calibration_data/fashion_mnist_train_500.npz"
eval_samples = 20
"""
DEVICE = """[devices.timed]
transport = "local"
workdir = "{workdir}"
python = "{python}"
runs = 20
min_s = 0.1
warmup_runs = 2
warmup_min_s = 0.05
idle_s = 0.0
"""
STUDY = """[study]
name = "{name}"
base = "base.toml"
trials = {trials}
devices = ["timed"]
devices_file = "{folder}/devices.toml"
ab_rounds = 3
startup_trials = 2
heartbeat_s = 1
grace_s = 3
results_db = "{db}"
reports_dir = "{folder}/reports-{name}"
found_dir = "{folder}/found"
[space]
{space}
[pruner]
startup_trials = 2
"""
ONE_POINT = """student = [""]
channel_ratio = [0.0]
lowrank_energy = [0.0]
sparsity = [0.0]
clusters = [0]
quantize = ["ptq"]
epochs = [1, 1]"""
MIXED = """student = ["", "resnet8"]
student_width = [0.125]
distill_epochs = [1, 1]
channel_ratio = [0.0]
lowrank_energy = [0.0]
sparsity = [0.0, 0.97]
clusters = [0]
quantize = ["ptq", "qat"]
epochs = [1, 1]"""
TIMEOUT_S = 1200
FIXED = {"student": "", "channel_ratio": 0.0, "lowrank_energy": 0.0, "clusters": 0, "epochs": 1}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("search")
    (folder / "base.toml").write_text(BASE.format(repo=REPO, build=folder / "build"))
    python, _ = timestamping_python(folder)
    (folder / "devices.toml").write_text(DEVICE.format(workdir=folder / "device", python=python))
    return folder


def _config(lab: Path, name: str, trials: int, db: str, space: str = ONE_POINT) -> Path:
    path = lab / f"{name}.toml"
    path.write_text(STUDY.format(name=name, trials=trials, folder=lab, db=db, space=space))
    return path


def _trials(config: Path) -> list[optuna.trial.FrozenTrial]:
    return open_study(load_search_config(config)).get_trials()


def _lock_intervals(lab: Path) -> list[tuple[float, float]]:
    """(start, end) of every agent run, read from the device python's log; refuses interleaved runs."""
    events = [line.split() for line in (lab / "agent-runs.log").read_text().splitlines()]
    assert [kind for kind, _ in events] == ["start", "end"] * (len(events) // 2), "two agent runs overlapped"
    times = [float(t) for _, t in events]
    assert times == sorted(times)
    return list(zip(times[::2], times[1::2], strict=True))


def test_a_search_with_constraints_and_a_pruned_trial(lab: Path) -> None:
    """Queued settings make it deterministic: a small distilled model (within max_bytes), the fine-tuned model
    (more accurate, too big: infeasible), that model pruned to 97% (below the median after pruning: pruned)."""
    config = _config(lab, "mixed", 3, str(lab / "results.db"), MIXED)
    config.write_text(config.read_text().replace("[pruner]", "[constraints]\nmax_bytes = 12000\n[pruner]"))
    study = open_study(load_search_config(config))
    for params in ({**FIXED, "student": "resnet8", "student_width": 0.125, "temperature": 2.0, "alpha": 0.5,
                    "distill_epochs": 1, "quantize": "ptq", "sparsity": 0.0},
                   {**FIXED, "quantize": "ptq", "sparsity": 0.0}, {**FIXED, "quantize": "qat", "sparsity": 0.97}):
        study.enqueue_trial(params, user_attrs={QUEUED: True})
    first = run_cli("search", "--config", str(config), timeout=TIMEOUT_S)
    assert first.returncode == 0, first.stderr[-3000:]
    trials = _trials(config)
    small, big, pruned = trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.PRUNED]
    assert big.user_attrs["bytes"] > 12000 >= small.user_attrs["bytes"] and big.constraints["bytes"] > 0
    assert big.user_attrs["val_accuracy"] > small.user_attrs["val_accuracy"]  # the better model, but infeasible
    assert pruned.user_attrs["intermediate"]["6"] < big.user_attrs["intermediate"]["6"]
    assert "quantize" not in pruned.user_attrs["stages"]  # stopped after pruning
    assert "trial 3/3 #2 PRUNED" in first.stderr and "best so far #0" in first.stderr
    report = json.loads(next((lab / "reports-mixed").glob("search-*/trials.json")).read_text())
    assert report["best"] == 0 and report["found_config"] == str(lab / "found" / "mixed-t000.toml")
    assert all("test_accuracy" in t for t in report["front"]) and "test_accuracy" not in report["trials"][0]
    found = load_config(lab / "found" / "mixed-t000.toml")
    assert (found.run.name, found.distill.student, found.distill.width) == ("mixed-t000", "resnet8", 0.125)
    counts = report["stage_counts"]
    for stage in ("data", "pretrain", "finetune"):  # computed by the shared run at most, copied by every trial
        assert counts[stage].get("ran", 0) <= 1 and counts[stage]["reused"] == 3, counts[stage]


def test_two_workers_share_one_postgresql_study(lab: Path, postgres_server) -> None:
    url = postgres_server.create_database("search_two_workers")
    config = _config(lab, "pair", 6, url)
    result = run_cli("search", "--config", str(config), "--workers", "2", timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stderr[-3000:]
    trials = _trials(config)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 6
    assert len({t.user_attrs["run"] for t in trials}) == 6  # six runs, no trial twice
    assert len({t.user_attrs["worker"] for t in trials}) == 2  # both workers took trials
    assert len(_lock_intervals(lab)) >= 6  # one A/B per trial, never two at once
    with psycopg.connect(url) as connection:  # Optuna's tables in a schema of their own
        rows = connection.execute("SELECT table_schema FROM information_schema.tables WHERE table_name = 'trials'")
        assert [schema for (schema,) in rows] == ["optuna"]


def _wait_for_running(config: Path, pid: int, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(t.state == TrialState.RUNNING and t.user_attrs.get("worker", "").endswith(f":{pid}")
               for t in _trials(config)):
            return
        time.sleep(0.2)
    raise AssertionError(f"worker {pid} never started a trial")


def test_a_worker_killed_mid_trial_leaves_it_failed_and_a_rerun_completes_the_study(lab: Path) -> None:
    config = _config(lab, "killed", 4, str(lab / "killed.db"))
    command = [sys.executable, "-m", "pipeline", "search", "--config", str(config)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    victim = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_running(config, victim.pid)
        survivor = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        _, errors = survivor.communicate(timeout=TIMEOUT_S)
    finally:
        victim.kill()
    assert survivor.returncode == 0, errors[-3000:]
    killed = [t for t in _trials(config) if t.user_attrs.get("worker", "").endswith(f":{victim.pid}")]
    assert len(killed) == 1 and killed[0].state in (TrialState.RUNNING, TrialState.FAIL)
    time.sleep(4)  # past grace_s: the killed trial's heartbeat is stale
    before = {t.number: t.datetime_complete for t in _trials(config) if t.state == TrialState.COMPLETE}
    rerun = run_cli("search", "--config", str(config), timeout=TIMEOUT_S)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    after = _trials(config)
    assert after[killed[0].number].state == TrialState.FAIL
    assert sum(t.state == TrialState.COMPLETE for t in after) == 4
    assert {t.number: t.datetime_complete for t in after if t.number in before} == before  # none redone
