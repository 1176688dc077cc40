"""This machine as a device: the same interface as SSH devices, over a subprocess."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

from pipeline.devices.transport.connection import CommandResult, Connection, DeviceError


class LocalConnection(Connection):
    """This machine as a device: commands run under /bin/sh in their own process group."""

    @property
    def workdir(self) -> str:
        return str(Path(self.profile.workdir).expanduser().absolute())

    def run(self, command: str, timeout: float | None = None) -> CommandResult:
        timeout = self.time_limit(timeout)
        process = subprocess.Popen(["/bin/sh", "-c", command], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, start_new_session=True)
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the agent is a grandchild: kill the whole group
            process.communicate()
            raise DeviceError(f"device {self.name}: `{command}` did not finish within {timeout:g} s") from None
        return CommandResult(command, process.returncode, stdout, stderr)

    def put(self, local: Path, remote: str) -> None:
        shutil.copyfile(local, remote)

    def get(self, remote: str, local: Path) -> None:
        shutil.copyfile(remote, local)
