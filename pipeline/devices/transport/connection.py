"""One interface for every device: `run` a shell command, `put` and `get` files.

The local device and SSH devices share it, so uploads, locking and the agent run are
written once. Commands are shell strings; every variable part is quoted with shlex.quote
by the caller (pipeline/devices/uploads.py, pipeline/devices/bench_run.py).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from pipeline.devices.inventory import DeviceProfile
from pipeline.errors import UserError

STDERR_TAIL_LINES = 3  # how much of a failed command's stderr an error message shows
MAX_STDOUT_BYTES = 64 << 20  # far above an agent document (about 2 MB with 100,000 latency samples)
MAX_STDERR_BYTES = 1 << 20  # only its last lines are ever shown


class DeviceError(UserError):
    """A failure on one device (unreachable, refused key, agent error): reported for that device,
    while the other devices go on."""


class BoundedOutput:
    """A command's stdout up to MAX_STDOUT_BYTES (more is an error: a board cannot fill the host's
    memory) and the last MAX_STDERR_BYTES of its stderr."""

    def __init__(self, device: str, command: str):
        self.device, self.command = device, command
        self.stdout, self.stderr = bytearray(), bytearray()

    def add_stdout(self, chunk: bytes) -> None:
        self.stdout += chunk
        if len(self.stdout) > MAX_STDOUT_BYTES:
            raise DeviceError(f"device {self.device}: `{self.command}` printed more than {MAX_STDOUT_BYTES >> 20} MiB "
                              f"on stdout; stopped reading it (an agent document is far smaller: check the "
                              f"device's agent and python)")

    def add_stderr(self, chunk: bytes) -> None:
        self.stderr += chunk
        del self.stderr[:-MAX_STDERR_BYTES]


@dataclass(frozen=True)
class CommandResult:
    command: str
    exit_code: int
    stdout: str
    stderr: str

    def stderr_tail(self) -> str:
        lines = [line.strip() for line in self.stderr.strip().splitlines() if line.strip()]
        return " | ".join(lines[-STDERR_TAIL_LINES:]) or "no error output"


class Connection(ABC):
    """A device's shell and file transfer, opened on first use and closed by `close`."""

    def __init__(self, profile: DeviceProfile):
        self.profile = profile
        self.name = profile.name
        self.cancelled = False  # set by `cancel`: no new command starts

    @property
    @abstractmethod
    def workdir(self) -> str:
        """The device's work folder as the device's shell and file transfer see it."""

    @abstractmethod
    def run(self, command: str, timeout: float | None = None, stdin: Path | None = None) -> CommandResult:
        """Run a shell command on the device and wait for it: a DeviceError after `timeout` s
        (default: the profile's command_timeout_s). `stdin`: a local file the command reads as its input."""

    @abstractmethod
    def put(self, local: Path, remote: str) -> None:
        """Copy a local file to a path on the device."""

    @abstractmethod
    def get(self, remote: str, local: Path) -> None:
        """Copy a file from the device to a local path."""

    def close(self) -> None:  # noqa: B027 - optional hook, not abstract: most transports override it, some need not
        """Release the transport; the default has nothing to release."""

    def cancel(self) -> None:
        """Stop this device's work from another thread (Ctrl-C): running commands end with a
        DeviceError and no new one starts."""
        self.cancelled = True
        self.close()

    def raise_if_cancelled(self) -> None:
        if self.cancelled:
            raise DeviceError(f"device {self.name}: cancelled (interrupted)")

    def time_limit(self, timeout: float | None) -> float:
        return self.profile.command_timeout_s if timeout is None else timeout

    def check(self, command: str, timeout: float | None = None) -> CommandResult:
        """`run` that turns a non-zero exit into a DeviceError naming the device and the command."""
        result = self.run(command, timeout)
        if result.exit_code != 0:
            raise DeviceError(f"device {self.name}: `{command}` failed (exit {result.exit_code}): "
                              f"{result.stderr_tail()}")
        return result

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
