"""The nightly job's device side on both store backends, with the real agent on local devices: a
result that contradicts the host is stored as evidence but fails that device and stays out of
baselines, and Ctrl-C keeps the results that had finished."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from pipeline.core.artifacts import sha256_file
from pipeline.devices.group import GroupResult
from pipeline.devices.inventory import DeviceProfile
from pipeline.nightly.job import NightlyJob
from pipeline.nightly.nightly_config import NightlyConfig
from pipeline.results import ResultsStore, Series
from pipeline.results.queries import result_document
from pipeline.results.store import VariantRecord
from pipeline.testing.synthetic import benchmark_document
from tests.agent_fixtures import agent_models  # noqa: F401
from tests.ctrl_c import ctrl_c  # noqa: F401
from tests.sshd_fixtures import QUICK_BENCH
from tests.test_devices_consistency import altered_weights
from tests.test_faults import pid_python, wait_for

pytest_plugins = ["tests.postgres_fixtures"]
SHA = "ab" * 32


def _job(store: ResultsStore, profiles: list[DeviceProfile], sha: str = SHA) -> NightlyJob:
    job = NightlyJob(NightlyConfig(), store, profiles, log=lambda message: None)
    job.night.run_id = store.begin_run("night", kind="nightly", variants=[VariantRecord("int8", sha, 1)])
    return job


def test_a_mismatched_result_is_stored_but_fails_its_device(results_url):
    with ResultsStore.open(results_url) as store:
        job = _job(store, [])
        good = benchmark_document(device="pi5", model_sha256=SHA, samples=[1.0])
        bad = {**benchmark_document(device="rpi4", model_sha256=SHA, samples=[9.0]),
               "mismatch": "result contradicts the host: outputs differ from the host's reference by up to 255 units"}
        job._store_results("int8", GroupResult({"pi5": good, "rpi4": bad}))
        store.finish_run(job.night.run_id)
        assert [(f.device, f.reason) for f in job.night.failures] == [("rpi4", bad["mismatch"])]
        assert job.night.recorded == 1
        rows = {row["device"]: row for row in store.results()}
        assert rows["rpi4"]["mismatch"] == bad["mismatch"] and rows["pi5"]["mismatch"] is None


def test_a_mismatched_result_gets_no_ab_its_model_is_not_kept_and_it_is_no_evidence(results_url, tmp_path):
    """The gate's side of a mismatch: no A/B request, no kept model (it can never be a baseline's), and the
    device evidence of a night reads only results that agree with the host."""
    files = {}
    for variant in ("int8", "float"):
        files[variant] = tmp_path / f"{variant}.tflite", tmp_path / f"{variant}.samples.npz"
        for path in files[variant]:
            path.write_bytes(f"{path.name} of this night".encode())
    shas = {variant: sha256_file(model) for variant, (model, _) in files.items()}
    with ResultsStore.open(results_url) as store:
        job = NightlyJob(NightlyConfig(models_dir=str(tmp_path / "models")), store, [], log=lambda message: None)
        job.night.run_id = store.begin_run("night", kind="nightly",
                                           variants=[VariantRecord(v, sha, 1) for v, sha in shas.items()])
        job.night.files = files
        good = benchmark_document(device="pi5", model_sha256=shas["int8"], samples=[1.0])
        bad = {**benchmark_document(device="pi5", model_sha256=shas["float"], samples=[9.0]),
               "mismatch": "result contradicts the host: no on-device accuracy was reported"}
        job._store_results("int8", GroupResult({"pi5": good}))
        job._store_results("float", GroupResult({"pi5": bad}))
        job._keep_models()
        store.finish_run(job.night.run_id)
        assert job.night.benchmarked == {("pi5", "int8")}  # the only (device, variant) an A/B may re-run
        assert sorted(path.name for path in (tmp_path / "models").iterdir()) == sorted(
            [f"{shas['int8']}.tflite", f"{shas['int8']}.samples.npz"])
        runtime = store.results()[0]["runtime"]
        assert result_document(store.db, job.night.run_id, Series("int8", "pi5", runtime)) is not None
        assert result_document(store.db, job.night.run_id, Series("float", "pi5", runtime)) is None
        assert store.history(Series("float", "pi5", runtime), "latency_ms") == []


def _local(name: str, workdir: Path, **overrides: object) -> DeviceProfile:
    return DeviceProfile(name=name, transport="local", workdir=str(workdir),
                         **{"python": sys.executable, **QUICK_BENCH, **overrides})


def _stopped(status: Path) -> bool:
    """The process behind /proc/<pid>/status has exited (gone, or a zombie not yet reaped)."""
    try:
        return "zombie" in status.read_text()
    except FileNotFoundError:
        return True


def test_ctrl_c_during_the_benchmarks_keeps_what_finished(results_url, agent_models, tmp_path, ctrl_c):
    slow_python, slow_pid = pid_python(tmp_path)
    fast_lock = tmp_path / "fast" / "bench.lock"
    profiles = [_local("fast", tmp_path / "fast"), _local("slow", tmp_path / "slow", python=str(slow_python),
                                                          min_s=600.0)]

    def interrupt_when_fast_is_done() -> None:
        try:
            wait_for(lambda: slow_pid.exists() and fast_lock.exists()
                     and subprocess.run(["flock", "-n", str(fast_lock), "true"]).returncode == 0, "the fast device")
            threading.Event().wait(1.0)  # its document reaches the host
        finally:  # also when waiting gave up: then the asserts below fail instead of the test hanging for min_s
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: Python raises KeyboardInterrupt in the main thread

    with ResultsStore.open(results_url) as store:
        job = _job(store, profiles, sha256_file(agent_models.int8.model))
        threading.Thread(target=interrupt_when_fast_is_done, daemon=True).start()
        with pytest.raises(KeyboardInterrupt):
            job._benchmark("night", "int8", agent_models.int8.model, agent_models.int8.samples)
        store.finish_run(job.night.run_id, "failed")
        kept = store.results(run_id=job.night.run_id, statuses=("failed",))
        assert [row["device"] for row in kept] == ["fast"] and job.night.recorded == 1
    agent = Path(f"/proc/{int(slow_pid.read_text())}/status")
    # the slow agent (min_s = 600) was stopped, not waited for; on a loaded machine it may take a moment to exit
    wait_for(lambda: _stopped(agent), "the slow agent to stop")


def test_altered_model_fails_the_night_for_that_device(results_url, agent_models, tmp_path):
    bad = altered_weights(agent_models.int8.model, tmp_path / "altered.tflite")
    with ResultsStore.open(results_url) as store:
        job = _job(store, [_local("board", tmp_path / "board")], sha256_file(bad))
        job._benchmark("night", "int8", bad, agent_models.int8.samples)
        store.finish_run(job.night.run_id)
        [failure] = job.night.failures
        assert failure.device == "board" and failure.reason.startswith("result contradicts the host")
        [row] = store.results()
        assert row["mismatch"] == failure.reason
