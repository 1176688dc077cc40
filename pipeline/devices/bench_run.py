"""One benchmark on one device: cached upload of agent, model and samples, then the agent run
under the device's lock, and its JSON document back.

The lock is `flock` on `<workdir>/bench.lock`: the kernel drops it when the holder exits or
dies, so a crashed run never leaves a lock that blocks the next one, and a second benchmark
on the same board waits (up to lock_timeout_s) instead of skewing both measurements.
"""
from __future__ import annotations

import json
import shlex
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.devices.group import Group, GroupResult
from pipeline.devices.inventory import DeviceProfile
from pipeline.devices.transport.connection import CommandResult, Connection, DeviceError
from pipeline.devices.uploads import Upload, upload_files

LOCK_FILE = "bench.lock"
BUSY_EXIT = 75  # flock -E: the lock wait timed out (EX_TEMPFAIL)
TIMED_OUT_EXITS = (124, 137)  # coreutils timeout: stopped with TERM, or KILL after the grace period
KILL_GRACE_S = 10  # between timeout's TERM and KILL
CHANNEL_MARGIN_S = 60  # the host waits this much longer than the device-side limits


@dataclass(frozen=True)
class BenchJob:
    """What to send and run: the same for every device of one `bench` call."""

    agent: Path  # the agent zipapp (pipeline/devices/bundle.py)
    model: Path
    samples: Path
    run: str


def deploy(connection: Connection, job: BenchJob) -> list[Upload]:
    """Agent, model and samples into the device's cache (only what it lacks is sent)."""
    return upload_files(connection, [job.agent, job.model, job.samples])


def _options(flag: str, options: dict) -> list[str]:
    return [part for key, value in sorted(options.items()) for part in (flag, f"{key}={value}")]


def agent_arguments(profile: DeviceProfile, agent: str, model: str, samples: str) -> list[str]:
    """The agent's command line (see the contract in docs/devices.md)."""
    arguments = [
        profile.python_path(), agent, "--model", model, "--samples", samples, "--device", profile.name,
        "--runtime", profile.runtime, "--delegate", profile.delegate, "--threads", str(profile.threads),
        "--runs", str(profile.runs), "--min-s", f"{profile.min_s:g}", "--warmup-runs", str(profile.warmup_runs),
        "--warmup-min-s", f"{profile.warmup_min_s:g}", "--idle-s", f"{profile.idle_s:g}",
        "--energy-meter", profile.energy_meter,
    ]
    arguments += _options("--delegate-option", profile.delegate_options)
    arguments += _options("--meter-option", profile.meter_options)
    if profile.sysfs_root:
        arguments += ["--sysfs-root", profile.sysfs_root]
    return arguments


def locked_command(connection: Connection, arguments: list[str]) -> str:
    """Wait for the device lock, then run `arguments` with a hard time limit; every part quoted."""
    profile = connection.profile
    wrapper = ["flock", "-w", f"{profile.lock_timeout_s:g}", "-E", str(BUSY_EXIT),
               f"{connection.workdir}/{LOCK_FILE}", "timeout", "-k", str(KILL_GRACE_S),
               f"{profile.command_timeout_s:g}"]
    return shlex.join(wrapper + arguments)


def parse_agent_output(connection: Connection, result: CommandResult) -> dict[str, Any]:
    """The agent's JSON document, or a DeviceError with its one-line reason."""
    name, profile = connection.name, connection.profile
    if result.exit_code == BUSY_EXIT:
        raise DeviceError(f"device {name}: busy: another benchmark held {connection.workdir}/{LOCK_FILE} for "
                          f"more than lock_timeout_s = {profile.lock_timeout_s:g} s; retry later or raise it")
    if result.exit_code in TIMED_OUT_EXITS:
        raise DeviceError(f"device {name}: the agent did not finish within command_timeout_s = "
                          f"{profile.command_timeout_s:g} s and was stopped; raise it or lower runs/min_s")
    try:
        document = json.loads(result.stdout)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise DeviceError(f"device {name}: the agent printed no JSON document (exit {result.exit_code}): "
                          f"{result.stderr_tail()}")
    if result.exit_code != 0 or "error" in document:
        reason = document.get("error") or result.stderr_tail()
        raise DeviceError(f"device {name}: the agent failed (exit {result.exit_code}): {reason}")
    return document


def benchmark(connection: Connection, job: BenchJob) -> dict[str, Any]:
    """Deploy, run the agent under the lock, and add the host's fields to its document."""
    profile = connection.profile
    agent, model, samples = uploads = deploy(connection, job)
    command = locked_command(connection, agent_arguments(profile, agent.remote, model.remote, samples.remote))
    result = connection.run(command, timeout=profile.lock_timeout_s + profile.command_timeout_s + CHANNEL_MARGIN_S)
    document = parse_agent_output(connection, result)
    return {**document, "bytes_sent": sum(upload.bytes_sent for upload in uploads),
            "model_path": str(job.model), "run": job.run}


@dataclass(frozen=True)
class Baseline:
    """The baseline night's model and samples, run as B against the job's model (A) in a back-to-back A/B."""

    model: Path
    samples: Path
    rounds: int


def benchmark_ab(baseline: Baseline) -> Callable[[Connection, BenchJob], dict[str, Any]]:
    """An action for `run_on_devices`: the agent's A/B mode, the job's model against `baseline`, interleaved."""
    def run_ab(connection: Connection, job: BenchJob) -> dict[str, Any]:
        profile = connection.profile
        uploads = upload_files(connection, [job.agent, job.model, job.samples, baseline.model, baseline.samples])
        agent, model, samples, baseline_model, baseline_samples = (upload.remote for upload in uploads)
        arguments = agent_arguments(profile, agent, model, samples) + [
            "--baseline-model", baseline_model, "--baseline-samples", baseline_samples,
            "--rounds", str(baseline.rounds)]
        result = connection.run(locked_command(connection, arguments),
                                timeout=profile.lock_timeout_s + profile.command_timeout_s + CHANNEL_MARGIN_S)
        return {**parse_agent_output(connection, result), "bytes_sent": sum(u.bytes_sent for u in uploads),
                "run": job.run}

    return run_ab


def run_on_devices(profiles: list[DeviceProfile], model: Path, samples: Path, run: str,
                   action: Callable[[Connection, BenchJob], Any]) -> GroupResult:
    """Pack the agent once, then `action(connection, job)` on every device in parallel."""
    from pipeline.devices.bundle import build_agent_zipapp  # the agent package is only needed here

    with tempfile.TemporaryDirectory(prefix="edge-agent-") as folder:
        job = BenchJob(build_agent_zipapp(Path(folder) / "agent.pyz"), model, samples, run)
        with Group.from_profiles(profiles) as group:
            return group.map(lambda connection: action(connection, job))
