"""A real OpenSSH server on 127.0.0.1 with its own host key, client key and config.

The tests use it as an SSH "device" and `bench-agent` uploads to it to compare against scp.
It accepts only the generated client key, listens only on loopback, and is stopped by `stop`.
"""
from __future__ import annotations

import getpass
import os
import signal
import socket
import subprocess
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from pipeline.devices.transport.local import process_table

SSHD = "/usr/sbin/sshd"
PRIVSEP_DIR = Path("/run/sshd")  # sshd refuses to start without it
LISTEN_ADDRESS = "127.0.0.1"
START_TIMEOUT_S = 10.0
SSHD_CONFIG = """\
ListenAddress {address}
Port {port}
HostKey {host_key}
PidFile {root}/sshd.pid
AuthorizedKeysFile {root}/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
MaxStartups 30
MaxSessions 30
Subsystem sftp internal-sftp
LogLevel VERBOSE
"""


def generate_key(path: Path) -> Path:
    """An ed25519 key pair without passphrase (path and path.pub)."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "edge-pipeline-test", "-f", str(path)],
                   check=True, stdin=subprocess.DEVNULL)
    return path


def free_port(address: str = LISTEN_ADDRESS) -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


def _wait_for_banner(address: str, port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited with {process.returncode}: {log.read_text().strip()[-500:]}")
        try:
            with socket.create_connection((address, port), timeout=1.0) as sock:
                if sock.recv(64).startswith(b"SSH-"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"sshd did not answer on {address}:{port} within {START_TIMEOUT_S:g} s")


@dataclass
class LoopbackSshd:
    """A running sshd and what a client needs to reach it."""

    root: Path
    address: str
    port: int
    host_key: Path
    client_key: Path
    user: str
    process: subprocess.Popen
    command: tuple[str, ...] = ()  # how it was started, for `restart`

    def known_hosts_line(self) -> str:
        key_type, key_data = self.host_key.with_suffix(".pub").read_text().split()[:2]
        return f"[{self.address}]:{self.port} {key_type} {key_data}\n"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def crash(self) -> None:
        """SIGKILL the listener and every session process under it, as a device crash would."""
        doomed = [self.process.pid, *_descendants(self.process.pid)]
        for pid in doomed:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()

    def restart(self) -> None:
        """Start again with the same keys, port and config (after `stop` or `crash`)."""
        log = self.root / "sshd.log"
        with open(log, "a") as log_handle:
            self.process = subprocess.Popen(list(self.command), stdout=log_handle, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)
        _wait_for_banner(self.address, self.port, self.process, log)

    def __enter__(self) -> LoopbackSshd:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _descendants(pid: int) -> list[int]:
    """Every process started under `pid` (sshd sessions call setsid: they are in no common group)."""
    children: dict[int, list[int]] = {}
    for child, (parent, _) in process_table().items():
        children.setdefault(parent, []).append(child)
    found, pending = [], [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def start_sshd(root: Path, address: str = LISTEN_ADDRESS, port: int = 0,
               prefix: tuple[str, ...] = ()) -> LoopbackSshd:
    """Generate keys and config under `root`, start sshd in the foreground and wait for its banner.
    `prefix` runs it under another command (e.g. `ip netns exec NAME`), then `port` must be given."""
    root.mkdir(parents=True, exist_ok=True)
    with suppress(PermissionError):  # not root: sshd's own error (in the log) says what it lacks
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
    host_key = generate_key(root / "ssh_host_ed25519_key")
    client_key = generate_key(root / "client_ed25519")
    (root / "authorized_keys").write_text(client_key.with_suffix(".pub").read_text())
    port = port or free_port(address)
    config = root / "sshd_config"
    config.write_text(SSHD_CONFIG.format(address=address, port=port, host_key=host_key, root=root))
    log = root / "sshd.log"
    command = (*prefix, SSHD, "-D", "-e", "-f", str(config))
    with open(log, "w") as log_handle:
        process = subprocess.Popen(list(command), stdout=log_handle, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    server = LoopbackSshd(root, address, port, host_key, client_key, getpass.getuser(), process, command)
    try:
        _wait_for_banner(address, port, process, log)
    except BaseException:
        server.stop()
        raise
    return server
