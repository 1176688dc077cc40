"""The real agent on a real SSH test host: bench and deploy end to end, the device lock, stale
locks, corrupted uploads and per-device failures."""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.devices.bench_run import LOCK_FILE, BenchJob, benchmark, deploy
from pipeline.devices.transport.connection import DeviceError
from pipeline.devices.transport.ssh import SshConnection
from pipeline.devices.uploads import CACHE_DIR, UploadCorrupted
from tests.agent_fixtures import AgentModels, agent_models, agent_pyz  # noqa: F401
from tests.sshd_fixtures import closed_port_profile, inventory_toml, known_hosts, ssh_host, ssh_profile  # noqa: F401
from tests.test_devices_uploads import DamagingLink

RESULT_FIELDS = ("latency_ms", "throughput_ips", "accuracy", "output_max_diff", "peak_rss_mb", "state", "energy")


def timestamping_python(folder: Path) -> tuple[Path, Path]:
    """A python for the device that logs when each agent run starts and ends (in the lock)."""
    log, wrapper = folder / "agent-runs.log", folder / "python-with-log"
    wrapper.write_text(f"#!/bin/sh\necho start $(date +%s.%N) >> {shlex.quote(str(log))}\n"
                       f"{shlex.quote(sys.executable)} \"$@\"\nstatus=$?\n"
                       f"echo end $(date +%s.%N) >> {shlex.quote(str(log))}\nexit $status\n")
    wrapper.chmod(0o755)
    return wrapper, log


def job_for(agent: Path, models: AgentModels) -> BenchJob:
    return BenchJob(agent, models.int8.model, models.int8.samples, run="demo")


@pytest.fixture(scope="module")
def warm_device(ssh_host, agent_models, agent_pyz, tmp_path_factory) -> Path:
    """A device folder whose cache already holds agent, model and samples: fewer uploads per test."""
    folder = tmp_path_factory.mktemp("warm-device")
    (folder / "known_hosts").write_text(ssh_host.known_hosts_line())
    with SshConnection(ssh_profile(ssh_host, folder / "known_hosts", folder / "device")) as connection:
        deploy(connection, job_for(agent_pyz, agent_models))
    return folder / "device"


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_bench_round_trip_then_nothing_resent(ssh_host, known_hosts, agent_models, tmp_path, monkeypatch, capsys):
    model, samples = agent_models.int8.model, agent_models.int8.samples
    inventory = tmp_path / "devices.toml"
    inventory.write_text(inventory_toml([ssh_profile(ssh_host, known_hosts, tmp_path / "device")]))
    monkeypatch.chdir(tmp_path)
    argv = ["bench", "--devices", str(inventory), "--device", "testhost", "--model", str(model),
            "--samples", str(samples), "--run", "trial"]
    first_code, first_out, _ = run_cli(argv, capsys)
    second_code, _, _ = run_cli(argv + ["--json"], capsys)
    saved = sorted((tmp_path / "build" / "trial" / "bench").glob("testhost-*.json"))
    assert (first_code, second_code, len(saved)) == (0, 0, 2)
    first, second = (json.loads(path.read_text()) for path in saved)
    cached = sorted(path.name for path in (tmp_path / "device" / CACHE_DIR).iterdir())
    assert first["bytes_sent"] == sum((tmp_path / "device" / CACHE_DIR / name).stat().st_size for name in cached)
    assert len(cached) == 3 and second["bytes_sent"] == 0  # agent, model and samples were not sent again
    assert (first["device"], first["run"], first["model_path"]) == ("testhost", "trial", str(model))
    assert all(field in first for field in RESULT_FIELDS) and first["accuracy"]["count"] == 48
    assert first["accuracy"]["value"] >= 0.9 and first["output_max_diff"] <= 2
    assert "testhost" in first_out.splitlines()[1] and "median ms" in first_out


def test_unreachable_device_is_reported_while_the_other_finishes(ssh_host, known_hosts, agent_models, warm_device,
                                                                tmp_path, monkeypatch, capsys):
    good = ssh_profile(ssh_host, known_hosts, warm_device)
    inventory = tmp_path / "devices.toml"
    inventory.write_text(inventory_toml([good, closed_port_profile(good)]))
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(["bench", "--devices", str(inventory), "--all", "--model", str(agent_models.int8.model),
                              "--samples", str(agent_models.int8.samples), "--json"], capsys)
    documents = {document["device"]: document for document in json.loads(out)}
    assert code == 1
    assert "latency_ms" in documents["testhost"] and "unreachable after 1 attempt" in documents["unreachable"]["error"]
    assert "error: device unreachable" in err
    assert [path.name.split("-")[0] for path in (tmp_path / "build" / "demo" / "bench").iterdir()] == ["testhost"]


def test_deploy_uploads_once(ssh_host, known_hosts, agent_models, tmp_path, monkeypatch, capsys):
    inventory = tmp_path / "devices.toml"
    inventory.write_text(inventory_toml([ssh_profile(ssh_host, known_hosts, tmp_path / "device")]))
    argv = ["deploy", "--devices", str(inventory), "--device", "testhost", "--model", str(agent_models.int8.model),
            "--samples", str(agent_models.int8.samples)]
    first_code, first_out, _ = run_cli(argv, capsys)
    second_code, second_out, _ = run_cli(argv, capsys)
    assert (first_code, second_code) == (0, 0)
    assert second_out.startswith("testhost: 0 bytes sent") and not first_out.startswith("testhost: 0 bytes")
    assert not (tmp_path / "build").exists()  # nothing was benchmarked


def test_corrupted_upload_is_never_benchmarked(ssh_host, known_hosts, agent_models, agent_pyz, tmp_path):
    python, runs_log = timestamping_python(tmp_path)
    profile = ssh_profile(ssh_host, known_hosts, tmp_path / "device", python=str(python))
    job = job_for(agent_pyz, agent_models)
    with DamagingLink(profile) as connection, pytest.raises(UploadCorrupted):
        benchmark(connection, job)
    assert not runs_log.exists()


def test_agent_error_is_reported_in_one_line(ssh_host, known_hosts, agent_models, agent_pyz, warm_device, tmp_path):
    not_samples = tmp_path / "broken.npz"
    not_samples.write_bytes(b"not an npz file")
    job = BenchJob(agent_pyz, agent_models.int8.model, not_samples, run="demo")
    with SshConnection(ssh_profile(ssh_host, known_hosts, warm_device)) as connection:
        with pytest.raises(DeviceError, match=r"device testhost: the agent failed \(exit 1\): .*samples") as failed:
            benchmark(connection, job)
    assert "\n" not in str(failed.value)


def _bench_in_thread(profile, job, outcomes: list) -> threading.Thread:
    def work() -> None:
        with SshConnection(profile) as connection:
            outcomes.append(benchmark(connection, job))

    thread = threading.Thread(target=work)
    thread.start()
    return thread


def test_two_runs_on_one_device_are_serialized_by_the_lock(ssh_host, known_hosts, agent_models, agent_pyz,
                                                            warm_device, tmp_path):
    python, runs_log = timestamping_python(tmp_path)
    profile = ssh_profile(ssh_host, known_hosts, warm_device, python=str(python), min_s=0.5)
    job = job_for(agent_pyz, agent_models)
    outcomes: list = []
    threads = [_bench_in_thread(profile, job, outcomes) for _ in range(2)]
    for thread in threads:
        thread.join(timeout=120)
    events = [line.split() for line in runs_log.read_text().splitlines()]
    assert len(outcomes) == 2
    assert [kind for kind, _ in events] == ["start", "end", "start", "end"]
    assert float(events[1][1]) <= float(events[2][1])  # the second run began after the first ended


def _hold_lock(lock: Path) -> subprocess.Popen:
    """Another benchmark holding the device lock (flock, as the host's command takes it)."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(["flock", str(lock), "sleep", "60"], start_new_session=True)
    deadline = time.monotonic() + 5
    while subprocess.run(["flock", "-n", str(lock), "true"]).returncode == 0:
        assert time.monotonic() < deadline, "the holder never took the lock"
        time.sleep(0.05)
    return holder


def test_busy_device_then_lock_of_a_killed_holder_is_recovered(ssh_host, known_hosts, agent_models, agent_pyz,
                                                               warm_device, tmp_path):
    profile = ssh_profile(ssh_host, known_hosts, warm_device, lock_timeout_s=0.5)
    job = job_for(agent_pyz, agent_models)
    holder = _hold_lock(warm_device / LOCK_FILE)
    with SshConnection(profile) as connection:
        with pytest.raises(DeviceError, match="busy: another benchmark held"):
            benchmark(connection, job)
        os.killpg(holder.pid, signal.SIGKILL)  # the holder crashes: its lock file stays behind
        holder.wait()
        assert (warm_device / LOCK_FILE).exists()
        document = benchmark(connection, job)
    assert document["device"] == "testhost"


def test_bench_prints_first_and_a_failed_save_keeps_the_result(agent_models, tmp_path, monkeypatch, capsys):
    inventory = tmp_path / "devices.toml"
    inventory.write_text(f'[devices.here]\ntransport = "local"\nworkdir = "{tmp_path / "device"}"\n'
                         f'runs = 5\nmin_s = 0\nwarmup_runs = 1\nwarmup_min_s = 0\nidle_s = 0\n')
    monkeypatch.chdir(tmp_path)
    (tmp_path / "build").write_text("a file where the build folder should be")  # every save under it fails
    code, out, err = run_cli(["bench", "--devices", str(inventory), "--device", "here", "--model",
                              str(agent_models.int8.model), "--samples", str(agent_models.int8.samples)], capsys)
    [error] = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 1 and "here" in out.splitlines()[1]  # the result was printed
    assert error.startswith("error: device here: could not save the result under build") and "kept it at" in error
    kept = Path(error.split("kept it at ")[1])
    try:
        assert json.loads(kept.read_text())["device"] == "here"  # nothing lost: the whole document is there
    finally:
        kept.unlink()
