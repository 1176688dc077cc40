"""Fault injection against real OpenSSH test hosts: each fault ends with a one-line reason, never
benchmarks a half-deployed model, loses no stored result, and the next run works.

Faults: sshd killed during an upload; the link cut during a benchmark (a veth in a network
namespace taken down); the workdir on a full filesystem (a small tmpfs); the agent killed mid-run;
a corrupted model in the device cache; the host key changed between two runs; Ctrl-C while device
work is pending; Ctrl-C during a results write (both store backends); the PostgreSQL server's disk full
during a results write.

Namespaces, interfaces, addresses and mounts get unique names and are removed by fixture
finalizers: other test runs may share this machine.
"""
from __future__ import annotations

import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.core.artifacts import TMP_PREFIX, sha256_file
from pipeline.devices.bench_run import BenchJob, benchmark
from pipeline.devices.transport.connection import DeviceError
from pipeline.devices.transport.ssh import SshConnection
from pipeline.devices.uploads import CACHE_DIR, upload_files
from pipeline.errors import UserError
from pipeline.results import ResultsStore
from pipeline.results.store import FAILED, VariantRecord
from pipeline.testing.loopback_sshd import LoopbackSshd, generate_key, start_sshd
from pipeline.testing.pg_server import SERVER_USER
from pipeline.testing.synthetic import benchmark_document
from tests.agent_fixtures import agent_models, agent_pyz  # noqa: F401
from tests.conftest import REPO
from tests.ctrl_c import ctrl_c, interruptible  # noqa: F401
from tests.sshd_fixtures import inventory_toml, known_hosts, ssh_host, ssh_profile  # noqa: F401

pytest_plugins = ["tests.postgres_fixtures"]

# Upper bound for a fault's effect to show (a loaded 2-core CI machine once took over 60 s); never a timing assertion.
WAIT_S = 300


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


def one_line(error: BaseException) -> str:
    text = str(error)
    assert text and "\n" not in text, text
    return text


def pid_python(folder: Path) -> tuple[Path, Path]:
    """A python for the device that writes its pid (the agent's, after exec) before running."""
    pid_file, wrapper = folder / "agent.pid", folder / "python-with-pid"
    wrapper.write_text(f"#!/bin/sh\necho $$ > {shlex.quote(str(pid_file))}\n"
                       f"exec {shlex.quote(sys.executable)} \"$@\"\n")
    wrapper.chmod(0o755)
    return wrapper, pid_file


def in_thread(work: Callable[[], object]) -> tuple[threading.Thread, list]:
    """Run `work` in a thread; the list receives its result or exception."""
    outcome: list = []

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as error:  # noqa: BLE001 - handed to the test
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def job(agent_pyz: Path, agent_models) -> BenchJob:
    return BenchJob(agent_pyz, agent_models.int8.model, agent_models.int8.samples, run="faults")


def bench_once(profile, agent_pyz, agent_models) -> dict:
    with SshConnection(profile) as connection:
        return benchmark(connection, job(agent_pyz, agent_models))


def assert_no_partial_files(workdir: Path) -> None:
    """The cache holds only complete files, each named by its own hash."""
    for path in (workdir / CACHE_DIR).iterdir():
        assert not path.name.startswith(TMP_PREFIX), path
        assert sha256_file(path) == path.name.split(".")[0], path


@pytest.fixture
def own_sshd(tmp_path: Path) -> Iterator[LoopbackSshd]:
    """An sshd this test may kill, restart and re-key."""
    server = start_sshd(tmp_path / "sshd")
    yield server
    server.stop()


# --- sshd killed during an upload -----------------------------------------------------------------------------------

def random_file(path: Path, mib: int) -> Path:
    with open(path, "wb") as handle:
        for _ in range(mib):
            handle.write(os.urandom(1 << 20))
    return path


def upload_temporaries(cache: Path) -> list[Path]:
    return [path for path in cache.iterdir() if path.name.startswith(TMP_PREFIX)] if cache.is_dir() else []


class FirstCommandWatch(SshConnection):
    """A real SSH connection that notes, after each command, whether `watched` still exists."""

    def __init__(self, profile, watched: Path):
        super().__init__(profile)
        self.watched, self.exists_after = watched, []

    def run(self, command: str, timeout: float | None = None, stdin: Path | None = None):
        result = super().run(command, timeout, stdin)
        self.exists_after.append(self.watched.exists())
        return result


def test_sshd_killed_during_an_upload(own_sshd, agent_models, agent_pyz, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text(own_sshd.known_hosts_line())
    workdir = tmp_path / "device"
    profile = ssh_profile(own_sshd, known, workdir, connect_retries=0)
    big = random_file(tmp_path / "big-model.tflite", 256)
    connection = SshConnection(profile)
    thread, outcome = in_thread(lambda: upload_files(connection, [big]))
    cache = workdir / CACHE_DIR
    wait_for(lambda: upload_temporaries(cache), "the upload")
    own_sshd.crash()
    thread.join(WAIT_S)
    [error] = outcome
    assert isinstance(error, DeviceError), repr(error)
    assert "connection lost" in one_line(error) or "unreachable" in one_line(error)
    [leftover] = upload_temporaries(cache)  # the dead link left it
    assert not (cache / f"{sha256_file(big)}.tflite").exists()  # nothing half-sent is ever named as the model

    own_sshd.restart()
    with FirstCommandWatch(profile, leftover) as again:  # the next connection, at once
        document = benchmark(again, job(agent_pyz, agent_models))
    assert again.exists_after[0] is False  # gone after its first command, before anything was benchmarked
    assert document["mismatch"] is None
    assert_no_partial_files(workdir)


def _processes_with_open(path: Path) -> list[int]:
    """Pids that hold `path` open (the uploading shell and its cat), from /proc/<pid>/fd."""
    holders = []
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            if any(os.readlink(fd) == str(path) for fd in fd_dir.iterdir()):
                holders.append(int(fd_dir.parent.name))
        except OSError:
            continue  # it exited meanwhile, or is not ours to read
    return holders


def test_an_upload_in_progress_is_never_removed_by_another_connection(ssh_host, known_hosts, tmp_path):
    """Two host processes on one board: the second one's cleanup removes a dead upload's temporary and
    leaves the first one's upload, paused mid-transfer (SIGSTOP), to finish intact."""
    workdir = tmp_path / "device"
    profile = ssh_profile(ssh_host, known_hosts, workdir)
    cache = workdir / CACHE_DIR
    big = random_file(tmp_path / "big-model.tflite", 256)
    small = random_file(tmp_path / "small.bin", 1)
    first = SshConnection(profile)
    thread, outcome = in_thread(lambda: upload_files(first, [big]))
    wait_for(lambda: upload_temporaries(cache), "the upload")
    [live] = upload_temporaries(cache)
    writers = _processes_with_open(live)
    assert writers, "the upload finished before it could be paused; use a bigger file"
    dead = cache / f"{TMP_PREFIX}dead-samples.npz"
    dead.write_bytes(b"left by an upload whose shell was killed")
    for pid in writers:
        os.kill(pid, signal.SIGSTOP)  # the upload stalls: no byte arrives while the second one cleans up
    try:
        with SshConnection(profile) as second:
            upload_files(second, [small])  # its first command removes the temporaries of dead uploads
        assert not dead.exists() and live.exists()
    finally:
        for pid in writers:
            os.kill(pid, signal.SIGCONT)
    thread.join(WAIT_S)
    first.close()
    [[upload]] = outcome
    assert upload.bytes_sent == big.stat().st_size and sha256_file(upload.remote) == sha256_file(big)
    assert sha256_file(cache / f"{sha256_file(small)}.bin") == sha256_file(small)
    assert_no_partial_files(workdir)


# --- the link cut during a benchmark --------------------------------------------------------------------------------

def _ip(*args: str, namespace: str | None = None) -> subprocess.CompletedProcess:
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    return subprocess.run([*prefix, "ip", *args], capture_output=True, text=True, timeout=30)


@pytest.fixture
def netns_link(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """A network namespace joined to this one by a veth pair: (namespace, host-side interface,
    device address). Skipped when namespaces cannot be made here."""
    token = secrets.token_hex(3)
    namespace, host_if, device_if = f"edgefault-{token}", f"ef{token}h", f"ef{token}d"
    used = _ip("-4", "addr").stdout
    subnet = next(f"10.{a}.{b}" for a, b in ((secrets.randbelow(50) + 200, secrets.randbelow(250))
                                             for _ in range(100)) if f"10.{a}.{b}." not in used)
    created = _ip("netns", "add", namespace)
    if created.returncode != 0:
        pytest.skip(f"cannot create a network namespace here (ip netns add: {created.stderr.strip()})")
    try:
        steps = [
            ((("link", "add", host_if, "type", "veth", "peer", "name", device_if)), None),
            (("link", "set", device_if, "netns", namespace), None),
            (("addr", "add", f"{subnet}.1/30", "dev", host_if), None),
            (("link", "set", host_if, "up"), None),
            (("addr", "add", f"{subnet}.2/30", "dev", device_if), namespace),
            (("link", "set", device_if, "up"), namespace),
            (("link", "set", "lo", "up"), namespace),
        ]
        for args, inside in steps:
            done = _ip(*args, namespace=inside)
            if done.returncode != 0:
                pytest.skip(f"cannot set up a veth pair here (ip {' '.join(args)}: {done.stderr.strip()})")
        yield namespace, host_if, f"{subnet}.2"
    finally:
        _ip("link", "del", host_if)  # removes its peer too
        _ip("netns", "del", namespace)


def test_link_cut_during_a_benchmark(netns_link, agent_models, agent_pyz, tmp_path):
    namespace, host_if, address = netns_link
    server = start_sshd(tmp_path / "sshd", address=address, port=2222, prefix=("ip", "netns", "exec", namespace))
    try:
        known = tmp_path / "known_hosts"
        known.write_text(server.known_hosts_line())
        python, pid_file = pid_python(tmp_path)
        workdir = tmp_path / "device"
        profile = ssh_profile(server, known, workdir, python=str(python), min_s=6.0, link_timeout_s=3.0)
        thread, outcome = in_thread(lambda: bench_once(profile, agent_pyz, agent_models))
        wait_for(pid_file.exists, "the agent to start")
        assert _ip("link", "set", host_if, "down").returncode == 0
        thread.join(WAIT_S)
        [error] = outcome
        assert isinstance(error, DeviceError), error
        assert "connection lost" in one_line(error)

        assert _ip("link", "set", host_if, "up").returncode == 0
        wait_for(lambda: _ip("-4", "addr", "show", host_if).stdout.count("inet ") == 1, "the link")
        document = bench_once(profile, agent_pyz, agent_models)  # waits for the orphaned agent's lock, then runs
        assert document["mismatch"] is None
        assert_no_partial_files(workdir)
    finally:
        server.stop()


# --- the workdir on a full filesystem -------------------------------------------------------------------------------

@contextmanager
def tmpfs(mount_point: Path, size: str) -> Iterator[Path]:
    """A real tmpfs of `size` mounted on `mount_point` (made here) for the block."""
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()})")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)
        mount_point.rmdir()


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "small-disk", "64k") as mount_point:
        yield mount_point


def test_workdir_on_a_full_filesystem(ssh_host, known_hosts, small_tmpfs, agent_models, agent_pyz):
    python, pid_file = pid_python(small_tmpfs.parent)
    profile = ssh_profile(ssh_host, known_hosts, small_tmpfs / "edge-bench", python=str(python))
    with pytest.raises(DeviceError, match="No space left on device") as full:
        bench_once(profile, agent_pyz, agent_models)
    one_line(full.value)
    assert not pid_file.exists()  # nothing was benchmarked
    assert_no_partial_files(small_tmpfs / "edge-bench")

    subprocess.run(["mount", "-o", "remount,size=16m", str(small_tmpfs)], check=True)  # the user frees space
    assert bench_once(profile, agent_pyz, agent_models)["mismatch"] is None


def _latencies(count: int) -> dict:
    return benchmark_document(device="local", model_sha256=SHA, samples=[1.0 + i / 1000 for i in range(count)])


def test_the_postgresql_servers_disk_full_during_a_results_write(postgres_server):
    """The store's database lives in a tablespace on a 16 MiB tmpfs (inside the server's own folder, which
    its user can reach), then filled; the SQLite twin of this test is
    tests/test_folders.py::test_a_full_results_disk_is_one_line_and_keeps_earlier_results."""
    import psycopg

    name = f"full_disk_{secrets.token_hex(3)}"
    with tmpfs(postgres_server.root / name, "16m") as disk, \
            psycopg.connect(postgres_server.url(), autocommit=True) as admin:
        space = disk / "tablespace"
        space.mkdir()
        if postgres_server.as_root:
            shutil.chown(space, SERVER_USER, SERVER_USER)
        admin.execute(f"CREATE TABLESPACE {name} LOCATION '{space}'")
        try:
            admin.execute(f"CREATE DATABASE {name} TABLESPACE {name}")
            _fill_the_store_of(postgres_server.url(name), disk)
        finally:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            admin.execute(f"DROP TABLESPACE {name}")


def _fill_the_store_of(url: str, disk: Path) -> None:
    with ResultsStore.open(url) as store:
        with store.recording("first") as run_id:
            store.record_benchmark(run_id, "int8", _latencies(100), device="local")
        subprocess.run(f"head -c 64M /dev/zero > {disk}/filler", shell=True, stderr=subprocess.DEVNULL)
        with pytest.raises(UserError) as full:
            with store.recording("second") as run_id:
                store.record_benchmark(run_id, "int8", _latencies(100_000), device="local")
        assert one_line(full.value).startswith(f"cannot write into the results database {store.db.url}: "
                                               f"its server's disk is full (could not extend file")
        assert "No space left on device" in str(full.value) and "--db at another database" in str(full.value)
        [kept] = store.results()
        assert kept["run"] == "first" and len(store.samples(kept["id"])) == 100  # intact


# --- the agent killed mid-run ---------------------------------------------------------------------------------------

def test_agent_killed_mid_run_is_reported_by_its_signal(ssh_host, known_hosts, agent_models, agent_pyz, tmp_path):
    python, pid_file = pid_python(tmp_path)
    profile = ssh_profile(ssh_host, known_hosts, tmp_path / "device", python=str(python), min_s=30.0)
    thread, outcome = in_thread(lambda: bench_once(profile, agent_pyz, agent_models))
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), "the agent to start")
    os.kill(int(pid_file.read_text()), signal.SIGKILL)  # what the out-of-memory killer does
    thread.join(WAIT_S)
    [error] = outcome
    assert isinstance(error, DeviceError), error
    assert "killed by signal 9 (SIGKILL)" in one_line(error) and "did not finish" not in str(error)

    quick = ssh_profile(ssh_host, known_hosts, tmp_path / "device", python=str(python))
    assert bench_once(quick, agent_pyz, agent_models)["mismatch"] is None


def test_agent_stopped_by_the_time_limit_is_a_timeout(ssh_host, known_hosts, agent_models, agent_pyz, tmp_path):
    profile = ssh_profile(ssh_host, known_hosts, tmp_path / "device", min_s=30.0, command_timeout_s=3.0)
    with pytest.raises(DeviceError, match="did not finish within command_timeout_s = 3 s") as stopped:
        bench_once(profile, agent_pyz, agent_models)
    one_line(stopped.value)


# --- a corrupted model in the device cache --------------------------------------------------------------------------

def test_corrupted_model_in_the_device_cache_is_replaced(ssh_host, known_hosts, agent_models, agent_pyz, tmp_path):
    workdir = tmp_path / "device"
    profile = ssh_profile(ssh_host, known_hosts, workdir)
    first = bench_once(profile, agent_pyz, agent_models)
    cached = workdir / CACHE_DIR / f"{sha256_file(agent_models.int8.model)}.tflite"
    damaged = bytearray(cached.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF  # one flipped byte, same size: a bad SD card
    cached.write_bytes(bytes(damaged))
    second = bench_once(profile, agent_pyz, agent_models)
    assert second["bytes_sent"] == agent_models.int8.model.stat().st_size  # the model was sent again
    assert second["model"]["sha256"] == first["model"]["sha256"] == sha256_file(agent_models.int8.model)
    assert second["mismatch"] is None
    assert_no_partial_files(workdir)


# --- the host key changed between two runs --------------------------------------------------------------------------

def _bench_cli(profile, agent_models, folder: Path, capsys) -> tuple[int, str]:
    inventory = folder / "devices.toml"
    inventory.write_text(inventory_toml([profile]))
    code = main(["bench", "--devices", str(inventory), "--device", profile.name, "--model",
                 str(agent_models.int8.model), "--samples", str(agent_models.int8.samples), "--run", "faults"])
    return code, capsys.readouterr().err


def test_host_key_changed_between_two_runs(own_sshd, agent_models, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    known = tmp_path / "known_hosts"
    known.write_text(own_sshd.known_hosts_line())
    profile = ssh_profile(own_sshd, known, tmp_path / "device")
    assert _bench_cli(profile, agent_models, tmp_path, capsys)[0] == 0

    own_sshd.stop()
    own_sshd.host_key.unlink()
    own_sshd.host_key.with_suffix(".pub").unlink()
    generate_key(own_sshd.host_key)  # the board was reinstalled, or someone is in the middle
    own_sshd.restart()
    code, err = _bench_cli(profile, agent_models, tmp_path, capsys)
    [line] = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 1 and "CHANGED" in line and "refusing to connect" in line
    saved = list((tmp_path / "build" / "faults" / "bench").glob("*.json"))
    assert len(saved) == 1  # the first run's result is untouched

    known.write_text(own_sshd.known_hosts_line())  # the user checked the new fingerprint
    assert _bench_cli(profile, agent_models, tmp_path, capsys)[0] == 0


# --- Ctrl-C while device work is pending ----------------------------------------------------------------------------

def _gone(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "zombie" in status.read_text()
    except FileNotFoundError:
        return True


def _kill_leftovers(*pid_files: Path) -> None:
    """Agents this test started that a failing run left behind (they would measure for 600 s)."""
    for pid_file in pid_files:
        if pid_file.exists() and pid_file.read_text().strip() and not _gone(int(pid_file.read_text())):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


def test_ctrl_c_cancels_pending_devices_and_keeps_finished_results(ssh_host, known_hosts, agent_models, tmp_path,
                                                                     request):
    """A fast local device finishes; a slow local one and a slow SSH one are still measuring when
    Ctrl-C comes: both are stopped on their devices at once, the finished result is printed and saved."""
    (tmp_path / "local").mkdir()
    (tmp_path / "remote").mkdir()
    slow_python, slow_pid = pid_python(tmp_path / "local")
    remote_python, remote_pid = pid_python(tmp_path / "remote")
    remote = ssh_profile(ssh_host, known_hosts, tmp_path / "remote-device", name="remote", python=str(remote_python),
                         min_s=600.0)
    inventory = tmp_path / "devices.toml"
    quick = 'runs = 5\nmin_s = 0\nwarmup_runs = 1\nwarmup_min_s = 0\nidle_s = 0\n'
    inventory.write_text(f'[devices.fast]\ntransport = "local"\nworkdir = "{tmp_path / "fast"}"\n{quick}\n'
                         f'[devices.slow]\ntransport = "local"\nworkdir = "{tmp_path / "slow"}"\n'
                         f'python = "{slow_python}"\nmin_s = 600\nidle_s = 0\n\n' + inventory_toml([remote]))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-m", "pipeline", "bench", "--devices", str(inventory), "--all",
                              "--model", str(agent_models.int8.model), "--samples", str(agent_models.int8.samples),
                              "--run", "faults"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, preexec_fn=interruptible)
    try:
        fast_lock = tmp_path / "fast" / "bench.lock"  # taken by the fast agent; free again once it ended
        wait_for(lambda: slow_pid.exists() and slow_pid.read_text().strip() and remote_pid.exists()
                 and remote_pid.read_text().strip() and fast_lock.exists()
                 and subprocess.run(["flock", "-n", str(fast_lock), "true"]).returncode == 0, "the fast device")
        time.sleep(1.0)  # the fast device's result reaches the host
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=WAIT_S)
    finally:
        if child.poll() is None:
            child.kill()
        request.addfinalizer(lambda: _kill_leftovers(slow_pid, remote_pid))
    assert child.returncode == 130, err
    assert "interrupted: kept 1 finished result(s); cancelled slow, remote" in err
    assert "fast" in out.splitlines()[1]  # the finished result was printed ...
    assert len(list((tmp_path / "build" / "faults" / "bench").glob("fast-*.json"))) == 1  # ... and saved
    assert _gone(int(slow_pid.read_text()))
    wait_for(lambda: _gone(int(remote_pid.read_text())), "the SSH device's agent to stop")  # not its 600 s


# --- Ctrl-C during a results write ----------------------------------------------------------------------------------

class _InterruptingTransaction:
    """A real transaction that receives SIGINT right before its benchmark row is inserted."""

    def __init__(self, tx):
        self.tx = tx

    def execute(self, sql: str, params=()):
        if sql.startswith("INSERT INTO benchmarks"):
            signal.raise_signal(signal.SIGINT)  # Python raises KeyboardInterrupt here, mid-transaction
        return self.tx.execute(sql, params)


class _CtrlCDuringWrites:
    """The store's real database, with Ctrl-C arriving inside each benchmark write."""

    def __init__(self, db):
        self.db = db

    def __getattr__(self, name: str):
        return getattr(self.db, name)

    @contextmanager
    def transaction(self):
        with self.db.transaction() as tx:
            yield _InterruptingTransaction(tx)


SHA = "ab" * 32


def _night(store: ResultsStore, name: str, *devices: str) -> int:
    with store.recording(name, kind="nightly", variants=[VariantRecord("pqat_int8", SHA, 1000)]) as run_id:
        for device in devices:
            store.record_benchmark(run_id, "pqat_int8", benchmark_document(device=device, model_sha256=SHA,
                                                                           samples=[1.0, 1.1]), device=device)
    return run_id


def test_ctrl_c_during_a_results_write(results_url, ctrl_c):
    with ResultsStore.open(results_url) as store:
        kept = _night(store, "n1", "pi5", "rpi4")
        before = store.results()
        run_id = store.begin_run("n2", kind="nightly", variants=[VariantRecord("pqat_int8", SHA, 1000)])
        store.record_benchmark(run_id, "pqat_int8", benchmark_document(device="pi5", model_sha256=SHA,
                                                                       samples=[2.0]), device="pi5")
        real_db, store.db = store.db, _CtrlCDuringWrites(store.db)
        with pytest.raises(KeyboardInterrupt):
            store.record_benchmark(run_id, "pqat_int8", benchmark_document(device="coral", model_sha256=SHA,
                                                                           samples=[3.0]), device="coral")
        store.db = real_db
        store.finish_run(run_id, FAILED)  # what `recording` does on Ctrl-C
        assert store.results() == before and {row["run_id"] for row in before} == {kept}
        partial = store.results(run_id=run_id, statuses=(FAILED,))
        assert [row["device"] for row in partial] == ["pi5"]  # the finished write is kept, the interrupted one is not
        assert not store.db.query("SELECT id FROM devices WHERE name = 'coral'")  # rolled back entirely
        assert [row["device"] for row in store.results(run_id=_night(store, "n3", "coral"))] == ["coral"]
