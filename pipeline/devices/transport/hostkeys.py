"""Host key checking against known_hosts: unknown keys are refused unless the device trusts on
first use, a changed key is always refused, and so is a key marked `@revoked`.

known_hosts is read as OpenSSH reads it (`load_known_hosts`): paramiko's own loader gives up on
the whole file at the first marker line, so one `@cert-authority` line would lock out every host.
paramiko raises BadHostKeyException for a changed key of the same type; an unknown (or revoked)
key reaches `KnownHostsPolicy.missing_host_key`.
"""
from __future__ import annotations

import binascii
import logging
import shlex
import sys
import threading
from pathlib import Path

import paramiko

from pipeline.devices.transport.connection import DeviceError

LOG = logging.getLogger(__name__)
REVOKED_MARKER = "@revoked"
CERT_AUTHORITY_MARKER = "@cert-authority"  # host certificates: paramiko cannot check them, the line is skipped
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


def key_id(key: paramiko.PKey) -> tuple[str, str]:
    """A key's type and base64 blob: what identifies it in known_hosts."""
    return key.get_name(), key.get_base64()


def _entry(line: str, path: Path, number: int) -> paramiko.hostkeys.HostKeyEntry | None:
    """One `names keytype base64` line, or None (with a debug note) for a line OpenSSH would skip too."""
    try:
        entry = paramiko.hostkeys.HostKeyEntry.from_line(line, number)
    except (paramiko.SSHException, paramiko.hostkeys.InvalidHostKey, binascii.Error, ValueError):
        entry = None
    if entry is None:
        LOG.debug("%s:%d: skipped a line that is not a host key paramiko can use", path, number)
    return entry


def load_known_hosts(path: Path, host_keys: paramiko.HostKeys) -> set[tuple[str, str]]:
    """Add the usable keys of an OpenSSH known_hosts file to `host_keys`; return the revoked keys.

    Hashed host names work as paramiko matches them. Revoked keys are kept out of `host_keys`,
    so they always reach the policy, which refuses them (for any host: a revoked key is compromised)."""
    revoked: set[tuple[str, str]] = set()
    entries = []
    for number, raw in enumerate(path.read_text(errors="replace").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        marker = ""
        if line.startswith("@"):
            marker, _, line = line.partition(" ")
            line = line.strip()
        entry = _entry(line, path, number)
        if entry is None or marker == CERT_AUTHORITY_MARKER:
            continue
        if marker == REVOKED_MARKER:
            revoked.add(key_id(entry.key))
        elif not marker:
            entries.append(entry)
        else:
            LOG.debug("%s:%d: skipped unknown marker %s", path, number, marker)
    for entry in entries:
        if key_id(entry.key) not in revoked:
            for name in entry.hostnames:
                host_keys.add(name, entry.key.get_name(), entry.key)
    return revoked


def revoked_key_message(device: str, host: str, port: int, key: paramiko.PKey, known_hosts: Path) -> str:
    return (f"device {device}: host key of {known_hosts_name(host, port)} ({key.get_name()} {key.fingerprint}) is "
            f"marked @revoked in {known_hosts}; refusing to connect. Give the device a new host key "
            f"(ssh-keygen -A on it after removing the old one) and record that one")


def append_known_host(known_hosts: Path, name: str, key: paramiko.PKey) -> None:
    """Add one line, the way ssh does on a first connection (other lines are left as they are)."""
    line = paramiko.hostkeys.HostKeyEntry([name], key).to_line()
    with _APPEND_LOCK:
        known_hosts.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(known_hosts, "a") as handle:
            handle.write(line)


class KnownHostsPolicy(paramiko.MissingHostKeyPolicy):
    """Decide about a host key known_hosts does not hold."""

    def __init__(self, device: str, host: str, port: int, known_hosts: Path, trust_on_first_use: bool,
                 revoked: set[tuple[str, str]] | None = None):
        self.device, self.host, self.port = device, host, port
        self.known_hosts = known_hosts
        self.trust_on_first_use = trust_on_first_use
        self.revoked = revoked or set()
        self.trusted_new_key: paramiko.PKey | None = None  # set when a key was recorded

    def is_revoked(self, key: paramiko.PKey) -> bool:
        return key_id(key) in self.revoked

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        if self.is_revoked(key):
            raise DeviceError(revoked_key_message(self.device, self.host, self.port, key, self.known_hosts))
        if not self.trust_on_first_use:
            raise DeviceError(unknown_key_message(self.device, self.host, self.port, key, self.known_hosts))
        append_known_host(self.known_hosts, hostname, key)
        client.get_host_keys().add(hostname, key.get_name(), key)
        self.trusted_new_key = key
        # Said where the user sees it: a key recorded silently is a key nobody checked.
        print(f"device {self.device}: trusted on first use: recorded {hostname} {key.get_name()} {key.fingerprint} "
              f"in {self.known_hosts}; compare it with `ssh-keygen -lf {host_key_file(key)}` on the device",
              file=sys.stderr, flush=True)
