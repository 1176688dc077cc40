"""SSH devices with paramiko: ~/.ssh/config aliases (with ProxyJump and ProxyCommand), key auth only,
verified host keys, bounded retries for transient network errors, command timeouts, a cut link
noticed within link_timeout_s, and agent output read up to a size limit.
"""
from __future__ import annotations

import dataclasses
import errno
import getpass
import logging
import select
import shlex
import socket
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import paramiko

from pipeline.core.artifacts import atomic_path
from pipeline.devices.inventory import DeviceProfile
from pipeline.devices.transport.connection import BoundedOutput, CommandResult, Connection, DeviceError
from pipeline.devices.transport.hostkeys import (
    KnownHostsPolicy,
    changed_key_message,
    load_known_hosts,
    revoked_key_message,
)
from pipeline.errors import UserError

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
TRANSIENT_ERRNOS = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN}  # a board still booting
MAX_JUMPS = 8  # ProxyJump chains longer than this are refused (and a loop in ~/.ssh/config is caught)
KEEPALIVE_PROBES = 3  # TCP keepalive probes within link_timeout_s before the link counts as cut


@dataclass(frozen=True)
class SshTarget:
    """Where and as whom to connect, after ~/.ssh/config is applied."""

    hostname: str
    port: int
    user: str
    key_files: tuple[str, ...]
    known_hosts: Path
    alias: str = ""  # the name looked up in ~/.ssh/config
    jumps: tuple[SshTarget, ...] = ()  # ProxyJump hosts, first one reached directly
    proxy_command: str | None = None  # ProxyCommand with its %h/%p/%r expanded


def _config_entry(config_path: Path, alias: str) -> dict:
    return paramiko.SSHConfig.from_path(str(config_path)).lookup(alias) if config_path.is_file() else {}


def _tcp_port(text: str, where: str) -> int:
    """A port written in ASCII digits, 1-65535 (int() reads other scripts' digits too: '٢٢' is 22)."""
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 65536:
        raise UserError(f"{where}: port {text!r} is not a TCP port (1-65535)")
    return int(text)


def _jump_spec(spec: str) -> tuple[str, str, int]:
    """`[user@]host[:port]` or `ssh://[user@]host[:port]` -> (user, host, port); '' and 0 when absent."""
    spec = spec.removeprefix("ssh://")
    user, _, rest = spec.rpartition("@")
    host, port = rest, 0
    if rest.count(":") == 1:
        host, _, port_text = rest.partition(":")
        port = _tcp_port(port_text, f"ProxyJump {spec!r}")
    if not host:
        raise UserError(f"ProxyJump {spec!r} names no host; write it as [user@]host[:port]")
    return user, host, port


def _jumps(value: str | None, config_path: Path, depth: int, known_hosts: str) -> tuple[SshTarget, ...]:
    """The ProxyJump hosts in connection order (each resolved through the same config, its own
    ProxyJump first); `known_hosts` serves the hosts whose entry names none."""
    if not value or value.lower() == "none":
        return ()
    if depth >= MAX_JUMPS:
        raise UserError(f"ProxyJump in {config_path} chains more than {MAX_JUMPS} hosts (a loop?); shorten it")
    chain: list[SshTarget] = []
    for spec in value.split(","):
        user, host, port = _jump_spec(spec.strip())
        hop = _target(host, config_path, user=user, port=port, default_known_hosts=known_hosts, depth=depth + 1)
        chain += [*hop.jumps, dataclasses.replace(hop, jumps=())]
    return tuple(chain)


def _target(alias: str, config_path: Path, *, user: str = "", port: int = 0, key_file: str = "",
            known_hosts: str = "", default_known_hosts: str = DEFAULT_KNOWN_HOSTS, depth: int = 0) -> SshTarget:
    """One host after its ~/.ssh/config entry is applied; explicit arguments win."""
    entry = _config_entry(config_path, alias)
    key_files = [key_file] if key_file else entry.get("identityfile", [])
    known_hosts = known_hosts or entry.get("userknownhostsfile", default_known_hosts).split()[0]
    jumps = _jumps(entry.get("proxyjump"), config_path, depth, known_hosts)
    proxy_command = entry.get("proxycommand")
    if jumps and proxy_command:
        raise UserError(f"{config_path}: Host {alias} has both ProxyJump and ProxyCommand; keep only one "
                        f"(OpenSSH would use whichever comes first)")
    return SshTarget(
        hostname=entry.get("hostname", alias),
        port=port or _tcp_port(entry.get("port", str(DEFAULT_PORT)), f"{config_path}: Host {alias}"),
        user=user or entry.get("user") or getpass.getuser(),
        key_files=tuple(str(Path(key).expanduser()) for key in key_files),
        known_hosts=Path(known_hosts).expanduser(),
        alias=alias,
        jumps=jumps,
        proxy_command=proxy_command,
    )


def resolve_target(profile: DeviceProfile) -> SshTarget:
    """Merge the profile with its ~/.ssh/config Host entry; explicit profile values win."""
    return _target(profile.host or profile.name, Path(profile.ssh_config).expanduser(), user=profile.user,
                   port=profile.port, key_file=profile.key_file, known_hosts=profile.known_hosts)


def _where(target: SshTarget) -> str:
    return f"{target.user}@{target.hostname}:{target.port}"


def _tcp_socket(target: SshTarget, connect_timeout_s: float, link_timeout_s: float) -> socket.socket:
    """A TCP connection that notices a cut link: keepalive probes on an idle link, and a cap on how
    long sent data may stay unacknowledged (Linux TCP_USER_TIMEOUT), both about link_timeout_s."""
    sock = socket.create_connection((target.hostname, target.port), timeout=connect_timeout_s)
    interval = max(1, int(link_timeout_s / KEEPALIVE_PROBES))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (("TCP_KEEPIDLE", interval), ("TCP_KEEPINTVL", interval), ("TCP_KEEPCNT", KEEPALIVE_PROBES),
                          ("TCP_USER_TIMEOUT", int(link_timeout_s * 1000))):
        if hasattr(socket, option):  # Linux has them all; elsewhere the OS defaults apply
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
    return sock


def _is_transient(error: Exception) -> bool:
    if isinstance(error, TRANSIENT_ERRORS) or (isinstance(error, OSError) and error.errno in TRANSIENT_ERRNOS):
        return True
    return isinstance(error, paramiko.SSHException) and "protocol banner" in str(error)


class SshConnection(Connection):
    """One SSH session per device; commands and file transfers each use a channel of it."""

    def __init__(self, profile: DeviceProfile):
        super().__init__(profile)
        self.target = resolve_target(profile)
        self._client: paramiko.SSHClient | None = None
        self._jump_clients: list[paramiko.SSHClient] = []
        self._policy: KnownHostsPolicy | None = None  # of the host being logged in to
        self._open_lock = threading.Lock()

    @property
    def workdir(self) -> str:
        # Commands start in the login's home, so a relative path is relative to it.
        workdir = self.profile.workdir
        return workdir[2:] if workdir.startswith("~/") else workdir

    def _where(self) -> str:
        return f"device {self.name} ({_where(self.target)})"

    def _login(self, target: SshTarget, name: str, sock: object, key_files: tuple[str, ...]) -> paramiko.SSHClient:
        """Authenticate to one host over `sock`, checking its key against its known_hosts."""
        client = paramiko.SSHClient()
        revoked = set()
        if target.known_hosts.is_file():
            revoked = load_known_hosts(target.known_hosts, client.get_host_keys())
        self._policy = KnownHostsPolicy(name, target.hostname, target.port, target.known_hosts,
                                        self.profile.trust_on_first_use, revoked)
        client.set_missing_host_key_policy(self._policy)
        timeout = self.profile.connect_timeout_s
        try:
            client.connect(target.hostname, port=target.port, username=target.user, sock=sock,
                           key_filename=list(key_files) or None, look_for_keys=not key_files,
                           allow_agent=self.profile.use_agent, timeout=timeout, banner_timeout=timeout,
                           auth_timeout=timeout)
        except BaseException:
            client.close()
            raise
        return client

    def _first_socket(self, target: SshTarget) -> object:
        """The byte stream to the first host: a ProxyCommand's pipes or a TCP connection."""
        if target.proxy_command:
            return paramiko.ProxyCommand(target.proxy_command)
        return _tcp_socket(target, self.profile.connect_timeout_s, self.profile.link_timeout_s)

    def _connect_once(self) -> paramiko.SSHClient:
        """Log in to each ProxyJump host in turn, then to the device through a direct-tcpip channel
        of the last one; every hop's host key is checked on its own."""
        hops = [*self.target.jumps, self.target]
        sock = self._first_socket(hops[0])
        self._jump_clients = []
        try:
            for position, hop in enumerate(hops):
                if position:
                    sock = self._jump_clients[-1].get_transport().open_channel(
                        "direct-tcpip", (hop.hostname, hop.port), ("127.0.0.1", 0),
                        timeout=self.profile.connect_timeout_s)
                last = position == len(hops) - 1
                name = self.name if last else f"{self.name} via ProxyJump {hop.alias}"
                client = self._login(hop, name, sock, hop.key_files)
                if last:
                    return client
                self._jump_clients.append(client)
        except BaseException:
            self._close_jumps()
            if isinstance(sock, (socket.socket, paramiko.ProxyCommand)):
                sock.close()
            raise
        raise AssertionError("unreachable: the last hop returns")

    def _close_jumps(self) -> None:
        for client in reversed(self._jump_clients):
            client.close()
        self._jump_clients = []

    def _final_error(self, error: Exception) -> DeviceError | None:
        """The one-line error for a failure not worth retrying; None for a transient one."""
        policy = self._policy
        if isinstance(error, paramiko.BadHostKeyException) and policy is not None:
            message = revoked_key_message if policy.is_revoked(error.key) else changed_key_message
            return DeviceError(message(policy.device, policy.host, policy.port, error.key, policy.known_hosts))
        if isinstance(error, paramiko.AuthenticationException) and policy is not None:
            return DeviceError(f"device {policy.device} ({policy.host}:{policy.port}): key authentication failed "
                               f"({error}); set key_file in the inventory (IdentityFile for a ProxyJump host) or "
                               f"load the key into ssh-agent, and install its public key in the device's "
                               f"~/.ssh/authorized_keys (ssh-copy-id)")
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
                self.raise_if_cancelled()
                attempt += 1

    def client(self) -> paramiko.SSHClient:
        with self._open_lock:
            self.raise_if_cancelled()
            transport = self._client.get_transport() if self._client is not None else None
            if self._client is not None and (transport is None or not transport.is_active()):
                self._client.close()  # the link dropped (say, the device rebooted): connect afresh
                self._client = None
            if self._client is None:
                self._client = self._connect()
            if self.cancelled:  # cancelled while connecting: nobody else will close it
                self.close()
                self.raise_if_cancelled()
            return self._client

    def _execute(self, command: str, timeout: float, stdin: Path | None = None) -> tuple[int, bytes, bytes]:
        """Run `command` in its own channel, streaming `stdin` into it; exit code, stdout, stderr."""
        transport = self.client().get_transport()
        try:
            channel = transport.open_session(timeout=self.profile.connect_timeout_s)
        except (EOFError, paramiko.SSHException, ConnectionError):  # the session died since the last command
            raise self._connection_lost(command) from None
        output = BoundedOutput(self.name, command)
        try:
            channel.settimeout(timeout)  # bounds each blocked send while streaming stdin
            channel.exec_command(command)
            if stdin is not None:
                _stream(channel, stdin)
            if not _read_until_exit(channel, timeout, output):
                raise DeviceError(f"{self._where()}: `{command}` did not finish within {timeout:g} s")
            exit_code = channel.recv_exit_status()
        except TimeoutError:
            raise DeviceError(f"{self._where()}: `{command}` stalled for {timeout:g} s") from None
        except (EOFError, paramiko.SSHException, ConnectionError):
            raise self._connection_lost(command) from None
        finally:
            with suppress(EOFError, OSError, paramiko.SSHException):  # a dead session cannot be told; keep the reason
                channel.close()
        if exit_code == -1 and not transport.is_active():
            raise self._connection_lost(command)
        return exit_code, bytes(output.stdout), bytes(output.stderr)

    def _connection_lost(self, command: str) -> DeviceError:
        self.raise_if_cancelled()
        return DeviceError(f"{self._where()}: connection lost during `{command}` (link cut, sshd stopped or "
                           f"the device rebooted); it may not have finished, check the device and retry")

    def run(self, command: str, timeout: float | None = None, stdin: Path | None = None) -> CommandResult:
        exit_code, stdout, stderr = self._execute(command, self.time_limit(timeout), stdin)
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
        """Close the session and any ProxyJump hops; commands still running on it end at once with
        a 'connection lost' DeviceError (how Ctrl-C stops device work). Safe from another thread."""
        client, self._client = self._client, None
        if client is not None:
            client.close()
        self._close_jumps()


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


def _read_until_exit(channel: paramiko.Channel, timeout: float, output: BoundedOutput) -> bool:
    """Drain stdout and stderr together (so neither fills the window) into `output` until EOF and
    exit status, or until the channel closes (the connection dropped); False when `timeout` passed first."""
    deadline = time.monotonic() + timeout
    while True:
        while channel.recv_ready():
            output.add_stdout(channel.recv(READ_CHUNK))
        while channel.recv_stderr_ready():
            output.add_stderr(channel.recv_stderr(READ_CHUNK))
        remaining = deadline - time.monotonic()
        drained = not channel.recv_ready() and not channel.recv_stderr_ready()
        if (channel.eof_received or channel.closed) and drained:
            break
        if remaining <= 0:
            return False
        select.select([channel], [], [], remaining)  # the channel's pipe wakes on data, EOF and close
    return channel.status_event.wait(max(remaining, 0))
