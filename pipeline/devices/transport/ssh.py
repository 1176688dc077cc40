"""SSH devices with paramiko: ~/.ssh/config aliases, key auth only, verified host keys, bounded
retries for transient network errors, and command timeouts.
"""
from __future__ import annotations

import getpass
import logging
import select
import shlex
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import paramiko

from pipeline.core.artifacts import atomic_path
from pipeline.devices.inventory import DeviceProfile
from pipeline.devices.transport.connection import CommandResult, Connection, DeviceError
from pipeline.devices.transport.hostkeys import KnownHostsPolicy, changed_key_message

LOG = logging.getLogger(__name__)
DEFAULT_PORT = 22
DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"
BACKOFF_FIRST_S = 0.5  # wait before the first retry; doubles each time
BACKOFF_MAX_S = 8.0
READ_CHUNK = 1 << 16
SEND_CHUNK = 1 << 20
# Connection refused/reset/timed out, or dropped before the SSH banner (sshd under load drops
# new connections beyond MaxStartups): worth another try. Auth and host-key failures are not.
TRANSIENT_ERRORS = (paramiko.ssh_exception.NoValidConnectionsError, ConnectionRefusedError,
                    ConnectionResetError, TimeoutError, EOFError)


@dataclass(frozen=True)
class SshTarget:
    """Where and as whom to connect, after ~/.ssh/config is applied."""

    hostname: str
    port: int
    user: str
    key_files: tuple[str, ...]
    known_hosts: Path


def resolve_target(profile: DeviceProfile) -> SshTarget:
    """Merge the profile with its ~/.ssh/config Host entry; explicit profile values win."""
    alias = profile.host or profile.name
    config_path = Path(profile.ssh_config).expanduser()
    entry = paramiko.SSHConfig.from_path(str(config_path)).lookup(alias) if config_path.is_file() else {}
    key_files = [profile.key_file] if profile.key_file else entry.get("identityfile", [])
    known_hosts = profile.known_hosts or entry.get("userknownhostsfile", DEFAULT_KNOWN_HOSTS).split()[0]
    return SshTarget(
        hostname=entry.get("hostname", alias),
        port=profile.port or int(entry.get("port", DEFAULT_PORT)),
        user=profile.user or entry.get("user") or getpass.getuser(),
        key_files=tuple(str(Path(key).expanduser()) for key in key_files),
        known_hosts=Path(known_hosts).expanduser(),
    )


def _is_transient(error: Exception) -> bool:
    if isinstance(error, TRANSIENT_ERRORS):
        return True
    return isinstance(error, paramiko.SSHException) and "protocol banner" in str(error)


class SshConnection(Connection):
    """One SSH session per device; commands and file transfers each use a channel of it."""

    def __init__(self, profile: DeviceProfile):
        super().__init__(profile)
        self.target = resolve_target(profile)
        self._client: paramiko.SSHClient | None = None
        self._open_lock = threading.Lock()

    @property
    def workdir(self) -> str:
        # Commands start in the login's home, so a relative path is relative to it.
        workdir = self.profile.workdir
        return workdir[2:] if workdir.startswith("~/") else workdir

    def _where(self) -> str:
        return f"device {self.name} ({self.target.user}@{self.target.hostname}:{self.target.port})"

    def _connect_once(self) -> paramiko.SSHClient:
        target = self.target
        client = paramiko.SSHClient()
        if target.known_hosts.is_file():
            client.load_host_keys(str(target.known_hosts))
        client.set_missing_host_key_policy(KnownHostsPolicy(
            self.name, target.hostname, target.port, target.known_hosts, self.profile.trust_on_first_use))
        timeout = self.profile.connect_timeout_s
        try:
            client.connect(target.hostname, port=target.port, username=target.user,
                           key_filename=list(target.key_files) or None, look_for_keys=not target.key_files,
                           allow_agent=self.profile.use_agent, timeout=timeout, banner_timeout=timeout,
                           auth_timeout=timeout)
        except BaseException:
            client.close()
            raise
        return client

    def _final_error(self, error: Exception) -> DeviceError | None:
        """The one-line error for a failure not worth retrying; None for a transient one."""
        target = self.target
        if isinstance(error, paramiko.BadHostKeyException):
            return DeviceError(changed_key_message(self.name, target.hostname, target.port, error.key,
                                                   target.known_hosts))
        if isinstance(error, paramiko.AuthenticationException):
            return DeviceError(f"{self._where()}: key authentication failed ({error}); set key_file in the "
                               f"inventory or load the key into ssh-agent, and install its public key in the "
                               f"device's ~/.ssh/authorized_keys (ssh-copy-id)")
        if isinstance(error, socket.gaierror):
            return DeviceError(f"{self._where()}: cannot resolve host name ({error.strerror}); set host in the "
                               f"inventory or add a 'Host {self.profile.host or self.name}' entry to "
                               f"{self.profile.ssh_config}")
        if isinstance(error, DeviceError):
            return error
        if not _is_transient(error):
            return DeviceError(f"{self._where()}: SSH connection failed: {type(error).__name__}: {error}")
        return None

    def _connect(self) -> paramiko.SSHClient:
        """Connect, retrying transient network errors with exponential backoff."""
        attempts = self.profile.connect_retries + 1
        attempt = 1
        while True:
            try:
                return self._connect_once()
            except Exception as error:  # noqa: BLE001 - sorted into final or transient
                final = self._final_error(error)
                if final is not None:
                    raise final from None
                if attempt == attempts:
                    raise DeviceError(f"{self._where()}: unreachable after {attempts} attempt(s) "
                                      f"({type(error).__name__}: {error}); check that it is powered, on the "
                                      f"network and running sshd") from None
                delay = min(BACKOFF_FIRST_S * 2 ** (attempt - 1), BACKOFF_MAX_S)
                LOG.info("%s: %s, retrying in %.1f s", self._where(), error, delay)
                time.sleep(delay)
                attempt += 1

    def client(self) -> paramiko.SSHClient:
        with self._open_lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _execute(self, command: str, timeout: float, stdin: Path | None = None) -> tuple[int, bytes, bytes]:
        """Run `command` in its own channel, streaming `stdin` into it; exit code, stdout, stderr."""
        channel = self.client().get_transport().open_session(timeout=self.profile.connect_timeout_s)
        try:
            channel.settimeout(timeout)  # bounds each blocked send while streaming stdin
            channel.exec_command(command)
            if stdin is not None:
                _stream(channel, stdin)
            output = _read_until_exit(channel, timeout)
            if output is None:
                raise DeviceError(f"{self._where()}: `{command}` did not finish within {timeout:g} s")
            return channel.recv_exit_status(), *output
        except TimeoutError:
            raise DeviceError(f"{self._where()}: `{command}` stalled for {timeout:g} s") from None
        finally:
            channel.close()

    def run(self, command: str, timeout: float | None = None) -> CommandResult:
        exit_code, stdout, stderr = self._execute(command, self.time_limit(timeout))
        return CommandResult(command, exit_code, stdout.decode(errors="replace"), stderr.decode(errors="replace"))

    def _transfer(self, command: str, stdin: Path | None = None) -> bytes:
        exit_code, stdout, stderr = self._execute(command, self.profile.command_timeout_s, stdin)
        if exit_code != 0:
            tail = CommandResult(command, exit_code, "", stderr.decode(errors="replace")).stderr_tail()
            raise DeviceError(f"{self._where()}: `{command}` failed (exit {exit_code}): {tail}")
        return stdout

    def put(self, local: Path, remote: str) -> None:
        # A plain `cat` over an exec channel: faster than paramiko's SFTP, and needs no sftp-server.
        self._transfer(f"cat > {shlex.quote(remote)}", stdin=local)

    def get(self, remote: str, local: Path) -> None:
        content = self._transfer(f"cat -- {shlex.quote(remote)}")
        with atomic_path(local) as tmp:
            tmp.write_bytes(content)

    def close(self) -> None:
        with self._open_lock:
            if self._client is not None:
                self._client.close()
            self._client = None


def _stream(channel: paramiko.Channel, source: Path) -> None:
    """Send a file as the command's stdin. If the command stops reading (say, its folder is
    missing) the send fails; its exit status and stderr then tell why."""
    try:
        with open(source, "rb") as handle:
            for block in iter(lambda: handle.read(SEND_CHUNK), b""):
                channel.sendall(block)
        channel.shutdown_write()
    except TimeoutError:
        raise
    except OSError:
        LOG.debug("the command stopped reading its input early", exc_info=True)


def _read_until_exit(channel: paramiko.Channel, timeout: float) -> tuple[bytes, bytes] | None:
    """Drain stdout and stderr together (so neither fills the window) until EOF and exit status;
    None when `timeout` passed first."""
    deadline = time.monotonic() + timeout
    stdout, stderr = bytearray(), bytearray()
    while True:
        while channel.recv_ready():
            stdout += channel.recv(READ_CHUNK)
        while channel.recv_stderr_ready():
            stderr += channel.recv_stderr(READ_CHUNK)
        remaining = deadline - time.monotonic()
        if channel.eof_received and not channel.recv_ready() and not channel.recv_stderr_ready():
            break
        if remaining <= 0:
            return None
        select.select([channel], [], [], remaining)  # the channel's pipe wakes on data and on EOF
    if not channel.status_event.wait(remaining):
        return None
    return bytes(stdout), bytes(stderr)
