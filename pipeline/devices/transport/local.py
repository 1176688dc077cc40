"""This machine as a device: the same interface as SSH devices, over a subprocess."""
from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import threading
import time
from contextlib import nullcontext, suppress
from pathlib import Path

from pipeline.devices.inventory import DeviceProfile
from pipeline.devices.transport.connection import BoundedOutput, CommandResult, Connection, DeviceError

READ_CHUNK = 1 << 16


def process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, session id) of every process, from /proc/<pid>/stat."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()  # after "pid (comm)"
                table[int(entry.name)] = (int(fields[1]), int(fields[3]))
            except (OSError, IndexError, ValueError):
                continue  # it exited meanwhile
    return table


def _kill_session(process: subprocess.Popen) -> None:
    """Kill every process the command started. The agent runs under sh -> flock -> timeout -> python,
    and `timeout` moves itself into a process group of its own, so killing sh's group is not enough:
    the command was started as a new session, and its whole session goes."""
    members = [pid for pid, (_, session) in process_table().items() if session == process.pid]
    for pid in {process.pid, *members}:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _drain(process: subprocess.Popen, output: BoundedOutput, deadline: float) -> bool:
    """Read stdout and stderr into `output` until both close; False when `deadline` passed first."""
    assert process.stdout is not None and process.stderr is not None  # started with PIPE for both
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ, output.add_stdout)
        selector.register(process.stderr, selectors.EVENT_READ, output.add_stderr)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            for key, _ in selector.select(remaining):
                chunk = os.read(key.fd, READ_CHUNK)
                if chunk:
                    key.data(chunk)
                else:
                    selector.unregister(key.fileobj)
    try:
        process.wait(max(deadline - time.monotonic(), 0))
    except subprocess.TimeoutExpired:
        return False
    return True


class LocalConnection(Connection):
    """This machine as a device: commands run under /bin/sh in their own process group."""

    def __init__(self, profile: DeviceProfile):
        super().__init__(profile)
        self._running: set[subprocess.Popen] = set()
        self._running_lock = threading.Lock()

    @property
    def workdir(self) -> str:
        return str(Path(self.profile.workdir).expanduser().absolute())

    def run(self, command: str, timeout: float | None = None, stdin: Path | None = None) -> CommandResult:
        timeout = self.time_limit(timeout)
        self.raise_if_cancelled()
        # Without a file, stdin is a pipe kept open until the command ends (how it notices the host leaving).
        with open(stdin, "rb") if stdin is not None else nullcontext(subprocess.PIPE) as source:
            process = subprocess.Popen(["/bin/sh", "-c", command], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       stdin=source, start_new_session=True)
        with self._running_lock:
            self._running.add(process)
        output = BoundedOutput(self.name, command)
        try:
            finished = _drain(process, output, time.monotonic() + timeout)
        except BaseException:
            _kill_session(process)
            process.wait()
            raise
        finally:
            for pipe in (process.stdin, process.stdout, process.stderr):
                if pipe is not None:
                    pipe.close()
            with self._running_lock:
                self._running.discard(process)
        if not finished:
            _kill_session(process)
            process.wait()
            raise DeviceError(f"device {self.name}: `{command}` did not finish within {timeout:g} s")
        self.raise_if_cancelled()
        return CommandResult(command, process.returncode, output.stdout.decode(errors="replace"),
                             output.stderr.decode(errors="replace"))

    def put(self, local: Path, remote: str) -> None:
        shutil.copyfile(local, remote)

    def get(self, remote: str, local: Path) -> None:
        shutil.copyfile(remote, local)

    def close(self) -> None:
        """Kill the commands still running (how Ctrl-C stops the local device's work)."""
        with self._running_lock:
            running = list(self._running)
        for process in running:
            _kill_session(process)
