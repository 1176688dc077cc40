"""Host key checking against known_hosts: unknown keys are refused unless the device trusts on
first use, and a changed key is always refused.

paramiko itself raises BadHostKeyException for a changed key of the same type; an unknown
key reaches `KnownHostsPolicy.missing_host_key`.
"""
from __future__ import annotations

import shlex
import threading
from pathlib import Path

import paramiko

from pipeline.devices.transport.connection import DeviceError

_APPEND_LOCK = threading.Lock()  # devices connect in parallel threads and may share one known_hosts


def keyscan_hint(host: str, port: int, known_hosts: Path) -> str:
    return f"ssh-keyscan -p {port} {shlex.quote(host)} >> {shlex.quote(str(known_hosts))}"


def known_hosts_name(host: str, port: int) -> str:
    """How OpenSSH (and paramiko) name a host in known_hosts."""
    return host if port == 22 else f"[{host}]:{port}"


def host_key_file(key: paramiko.PKey) -> str:
    """Where OpenSSH keeps this type of host key on the device, to compare fingerprints there."""
    kind = "ecdsa" if key.get_name().startswith("ecdsa") else key.get_name().removeprefix("ssh-")
    return f"/etc/ssh/ssh_host_{kind}_key.pub"


def unknown_key_message(device: str, host: str, port: int, key: paramiko.PKey, known_hosts: Path) -> str:
    return (f"device {device}: host key of {known_hosts_name(host, port)} ({key.get_name()} {key.fingerprint}) "
            f"is not in {known_hosts}; after checking the fingerprint on the device "
            f"(ssh-keygen -lf {host_key_file(key)}) add it with "
            f"`{keyscan_hint(host, port, known_hosts)}`, or set trust_on_first_use = true for {device}")


def changed_key_message(device: str, host: str, port: int, got: paramiko.PKey, known_hosts: Path) -> str:
    name = known_hosts_name(host, port)
    return (f"device {device}: host key of {name} CHANGED (now {got.get_name()} {got.fingerprint}) and does not "
            f"match {known_hosts}; refusing to connect. If the device was reinstalled, remove the old key with "
            f"`ssh-keygen -f {shlex.quote(str(known_hosts))} -R {shlex.quote(name)}` and add the new one with "
            f"`{keyscan_hint(host, port, known_hosts)}`")


def append_known_host(known_hosts: Path, name: str, key: paramiko.PKey) -> None:
    """Add one line, the way ssh does on a first connection (other lines are left as they are)."""
    line = paramiko.hostkeys.HostKeyEntry([name], key).to_line()
    with _APPEND_LOCK:
        known_hosts.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(known_hosts, "a") as handle:
            handle.write(line)


class KnownHostsPolicy(paramiko.MissingHostKeyPolicy):
    """Decide about a host key known_hosts does not hold."""

    def __init__(self, device: str, host: str, port: int, known_hosts: Path, trust_on_first_use: bool):
        self.device, self.host, self.port = device, host, port
        self.known_hosts = known_hosts
        self.trust_on_first_use = trust_on_first_use
        self.trusted_new_key: paramiko.PKey | None = None  # set when a key was recorded

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        if not self.trust_on_first_use:
            raise DeviceError(unknown_key_message(self.device, self.host, self.port, key, self.known_hosts))
        append_known_host(self.known_hosts, hostname, key)
        client.get_host_keys().add(hostname, key.get_name(), key)
        self.trusted_new_key = key
