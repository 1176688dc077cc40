"""`python -m pipeline bench-agent`: the device agent and the SSH uploader against reference tools.

A benchmark, not a test: it prints measurements and asserts nothing.
1. Latency: the agent's median invoke time on the run's model (the `local` device, same threads)
   vs LiteRT's own ai_edge_litert/tools/benchmark_litert_model.py. The tools differ in method:
   the agent runs the Interpreter on real samples; the reference runs CompiledModel on random input.
2. Upload: this project's uploader (hash, send, verify on the device) vs scp, for a 50 MB file to
   a real sshd on loopback, each starting from a fresh connection.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipeline.commands.arguments import ascii_int
from pipeline.devices.bench_run import benchmark, run_on_devices
from pipeline.devices.group import failure_reason
from pipeline.devices.inventory import DeviceProfile
from pipeline.devices.targets import add_model_arguments, model_from_args
from pipeline.devices.transport.ssh import SshConnection
from pipeline.devices.uploads import upload_files
from pipeline.errors import UserError
from pipeline.testing.loopback_sshd import LoopbackSshd, start_sshd

REPEATS = 3  # each measurement, alternating the two tools; the median is reported
TIMED_RUNS = 200
WARMUP_RUNS = 20
UPLOAD_MB = 50
TOOL_TIMEOUT_S = 600


def add_arguments(parser: argparse.ArgumentParser, command_name: str) -> None:
    add_model_arguments(parser)
    parser.add_argument("--threads", type=ascii_int, default=1, help="interpreter threads for both tools")
    parser.add_argument("--upload-mb", type=ascii_int, default=UPLOAD_MB, help="size of the upload test file")
    parser.add_argument("--repeats", type=ascii_int, default=REPEATS, help="measurements per tool (median reported)")


def _agent_median_ms(model: Path, samples: Path, threads: int, workdir: Path) -> float:
    profile = DeviceProfile(name="local", transport="local", workdir=str(workdir), threads=threads,
                            runs=TIMED_RUNS, min_s=0.0, warmup_runs=WARMUP_RUNS, warmup_min_s=0.0, idle_s=0.0)
    results = run_on_devices([profile], model, samples, "bench-agent", benchmark)
    for name, error in results.failed.items():
        raise UserError(failure_reason(name, error))
    return results.succeeded["local"]["latency_ms"]["median"]


def _reference_median_ms(model: Path, threads: int, result_json: Path) -> float:
    from ai_edge_litert import __file__ as litert_init

    tool = Path(litert_init).parent / "tools" / "benchmark_litert_model.py"
    command = [sys.executable, str(tool), f"--model={model}", f"--num_threads={threads}",
               f"--num_runs={TIMED_RUNS}", f"--warmup_runs={WARMUP_RUNS}", f"--result_json={result_json}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)
    if done.returncode != 0:
        raise UserError(f"benchmark_litert_model.py failed (exit {done.returncode}): {done.stderr.strip()[-300:]}")
    return json.loads(result_json.read_text())["latency"]["median_ms"]


def _loopback_profile(server: LoopbackSshd, known_hosts: Path, workdir: Path) -> DeviceProfile:
    return DeviceProfile(name="loopback", host=server.address, port=server.port, user=server.user,
                         key_file=str(server.client_key), use_agent=False, known_hosts=str(known_hosts),
                         ssh_config=os.devnull, workdir=str(workdir))


def _upload_seconds(profile: DeviceProfile, payload: Path) -> tuple[float, float]:
    """Seconds for the whole uploader on a new connection, and for a bare `put` on an open one."""
    started = time.perf_counter()
    with SshConnection(profile) as connection:
        upload_files(connection, [payload])
        uploader_s = time.perf_counter() - started
        started = time.perf_counter()
        connection.put(payload, f"{profile.workdir}/bare-put.bin")
        return uploader_s, time.perf_counter() - started


def _scp_seconds(server: LoopbackSshd, known_hosts: Path, payload: Path, destination: Path) -> float:
    command = ["scp", "-q", "-P", str(server.port), "-i", str(server.client_key), "-o", "BatchMode=yes",
               "-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={known_hosts}",
               "-o", "StrictHostKeyChecking=yes", str(payload), f"{server.user}@{server.address}:{destination}"]
    started = time.perf_counter()
    subprocess.run(command, check=True, timeout=TOOL_TIMEOUT_S, stdin=subprocess.DEVNULL)
    return time.perf_counter() - started


def _shell_start_seconds(profile: DeviceProfile) -> float:
    """One command round trip on an open connection (mostly the login shell's start-up files)."""
    with SshConnection(profile) as connection:
        connection.run("true")
        started = time.perf_counter()
        connection.run("true")
        return time.perf_counter() - started


def compare_latency(model: Path, samples: Path, threads: int, repeats: int, folder: Path) -> None:
    agent, reference = [], []
    for repeat in range(repeats):
        agent.append(_agent_median_ms(model, samples, threads, folder / "local"))
        reference.append(_reference_median_ms(model, threads, folder / f"reference-{repeat}.json"))
    agent_ms, reference_ms = statistics.median(agent), statistics.median(reference)
    print(f"latency of {model} ({threads} thread(s), {TIMED_RUNS} timed runs, median of {repeats}):")
    print(f"  agent (Interpreter, real samples)             {agent_ms:9.4f} ms   runs: {agent}")
    print(f"  benchmark_litert_model.py (CompiledModel)      {reference_ms:9.4f} ms   runs: {reference}")
    print(f"  ratio agent / reference                        {agent_ms / reference_ms:9.3f}")


def _throughput_line(label: str, size_mb: int, seconds: list[float]) -> str:
    return f"  {label:<52}{size_mb / statistics.median(seconds):8.1f} MB/s   s: {[round(t, 3) for t in seconds]}"


def compare_upload(size_mb: int, repeats: int, folder: Path) -> None:
    payload = folder / "payload.bin"
    with open(payload, "wb") as handle:
        for _ in range(size_mb):
            handle.write(os.urandom(1 << 20))
    with start_sshd(folder / "sshd") as server:
        known_hosts = folder / "known_hosts"
        known_hosts.write_text(server.known_hosts_line())
        ours, bare, scp = [], [], []
        for repeat in range(repeats):
            uploader_s, put_s = _upload_seconds(_loopback_profile(server, known_hosts, folder / f"device-{repeat}"),
                                                payload)
            ours.append(uploader_s)
            bare.append(put_s)
            scp.append(_scp_seconds(server, known_hosts, payload, folder / f"scp-{repeat}.bin"))
        shell_s = _shell_start_seconds(_loopback_profile(server, known_hosts, folder))
    print(f"upload of {size_mb} MB to sshd on loopback (median of {repeats}):")
    print(_throughput_line("uploader, new connection (hash, send, verify, rename)", size_mb, ours))
    print(_throughput_line("its put alone, open connection (cat over a channel)", size_mb, bare))
    print(_throughput_line("scp, new connection", size_mb, scp))
    print(f"  ratio uploader / scp {statistics.median(scp) / statistics.median(ours):.3f}, "
          f"put alone / scp {statistics.median(scp) / statistics.median(bare):.3f}")
    print(f"  (one command round trip here takes {shell_s:.3f} s, mostly the login shell's start-up files; "
          f"the uploader runs 3 commands for a new file)")


def run(args: argparse.Namespace) -> int:
    if args.threads < 1 or args.upload_mb < 1 or args.repeats < 1:
        raise UserError("--threads, --upload-mb and --repeats must be at least 1")
    model, samples = model_from_args(args)
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as folder:
        compare_latency(model, samples, args.threads, args.repeats, Path(folder))
        compare_upload(args.upload_mb, args.repeats, Path(folder))
    return 0
