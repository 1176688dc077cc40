"""One benchmark on one device: cached upload of agent, model and samples, then the agent run
under the device's lock, and its JSON document back.

The lock is `flock` on `<workdir>/bench.lock`: the kernel drops it when the holder exits or
dies, so a crashed run never leaves a lock that blocks the next one, and a second benchmark
on the same board waits (up to lock_timeout_s) instead of skewing both measurements.
"""
from __future__ import annotations

import json
import shlex
import signal
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.devices.consistency import host_reference, mismatch_reason
from pipeline.devices.group import Group, GroupResult
from pipeline.devices.inventory import DeviceProfile
from pipeline.devices.result_check import checked_ab, checked_benchmark
from pipeline.devices.transport.connection import CommandResult, Connection, DeviceError
from pipeline.devices.uploads import Upload, upload_files

LOCK_FILE = "bench.lock"
BUSY_EXIT = 75  # flock -E: the lock wait timed out (EX_TEMPFAIL)
TIMED_OUT_EXIT = 124  # coreutils timeout stopped the agent with TERM
TIMEOUT_NOTICE = "timeout: sending signal"  # what `timeout --verbose` prints when it, not someone else, kills
SIGNAL_EXIT_BASE = 128  # a command killed by signal N exits 128 + N through flock and timeout
KILL_GRACE_S = 10  # between timeout's TERM and KILL
CHANNEL_MARGIN_S = 60  # the host waits this much longer than the device-side limits
# Runs "$@" in the background while a watcher reads the command's stdin, which the host never writes:
# when the host goes away (Ctrl-C closes the SSH channel, or the local pipe) the read ends and the
# agent is stopped at once instead of holding the board's lock. The signal goes to `timeout`'s whole
# process group: `timeout` itself may die of SIGPIPE (its stderr went with the host) before it passes
# the signal on. The exit status is the command's.
STOP_WHEN_HOST_LEAVES = (
    'exec 3<&0; "$@" & agent=$!; '
    '{ cat <&3 >/dev/null 2>&1; kill -TERM -"$agent" || kill -TERM "$agent"; } >/dev/null 2>&1 & watcher=$!; '
    'wait "$agent"; status=$?; kill "$watcher" 2>/dev/null; exit "$status"'
)


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
    """Wait for the device lock, then run `arguments` with a hard time limit, stopped as soon as the
    host goes away; every part quoted."""
    profile = connection.profile
    wrapper = ["flock", "-w", f"{profile.lock_timeout_s:g}", "-E", str(BUSY_EXIT),
               f"{connection.workdir}/{LOCK_FILE}", "sh", "-c", STOP_WHEN_HOST_LEAVES, "sh",
               "timeout", "--verbose", "-k", str(KILL_GRACE_S), f"{profile.command_timeout_s:g}"]
    return shlex.join(wrapper + arguments)


def _signal_name(number: int) -> str | None:
    try:
        return signal.Signals(number).name
    except ValueError:
        return None


def parse_agent_output(connection: Connection, result: CommandResult) -> dict[str, Any]:
    """The agent's JSON document, or a DeviceError with its one-line reason."""
    name, profile = connection.name, connection.profile
    if result.exit_code == BUSY_EXIT:
        raise DeviceError(f"device {name}: busy: another benchmark held {connection.workdir}/{LOCK_FILE} for "
                          f"more than lock_timeout_s = {profile.lock_timeout_s:g} s; retry later or raise it")
    if result.exit_code == TIMED_OUT_EXIT or (result.exit_code > SIGNAL_EXIT_BASE and TIMEOUT_NOTICE in result.stderr):
        raise DeviceError(f"device {name}: the agent did not finish within command_timeout_s = "
                          f"{profile.command_timeout_s:g} s and was stopped; raise it or lower runs/min_s")
    killed_by = _signal_name(result.exit_code - SIGNAL_EXIT_BASE)
    if killed_by:
        raise DeviceError(f"device {name}: the agent was killed by signal {result.exit_code - SIGNAL_EXIT_BASE} "
                          f"({killed_by}) before it finished; SIGKILL often means the out-of-memory killer "
                          f"(check `dmesg` on the device), or someone stopped it")
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
    """Deploy, run the agent under the lock, check its document (result_check.py), and add the host's fields.

    `device` is the inventory name (the identity); what the agent called itself is kept as
    `reported_device`. `mismatch` says why the result contradicts the host, or is None."""
    profile = connection.profile
    agent, model, samples = uploads = deploy(connection, job)
    command = locked_command(connection, agent_arguments(profile, agent.remote, model.remote, samples.remote))
    result = connection.run(command, timeout=profile.lock_timeout_s + profile.command_timeout_s + CHANNEL_MARGIN_S)
    document = checked_benchmark(profile, parse_agent_output(connection, result))
    reference = host_reference(job.samples)
    reported = document.get("device")
    return {**document, "device": profile.name, "reported_device": None if reported is None else str(reported),
            "host_accuracy": reference.accuracy, "mismatch": mismatch_reason(document, profile, reference),
            "bytes_sent": sum(upload.bytes_sent for upload in uploads), "model_path": str(job.model), "run": job.run}


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
        return {**checked_ab(profile, parse_agent_output(connection, result)),
                "bytes_sent": sum(u.bytes_sent for u in uploads),
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
