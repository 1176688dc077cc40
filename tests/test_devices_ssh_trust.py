"""Host trust on a real sshd: known_hosts read as OpenSSH reads it (marker lines, hashed names, revoked
keys), trust on first use says what it recorded, ProxyJump / ProxyCommand through a second real sshd,
and agent output read up to a limit."""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import os
import subprocess
from pathlib import Path

import pytest

from pipeline.devices.transport.connection import MAX_STDOUT_BYTES, DeviceError
from pipeline.devices.transport.local import LocalConnection
from pipeline.devices.transport.ssh import SshConnection
from pipeline.errors import UserError
from pipeline.testing.loopback_sshd import LoopbackSshd, generate_key, start_sshd
from tests.sshd_fixtures import known_hosts, ssh_host, ssh_profile  # noqa: F401


def _key_fields(public_key: Path) -> str:
    return " ".join(public_key.read_text().split()[:2])


def _hashed_name(name: str) -> str:
    """A `|1|salt|hash` host name, as `ssh-keygen -H` writes it."""
    salt = os.urandom(20)
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


@pytest.fixture(scope="module")
def jump_host(tmp_path_factory: pytest.TempPathFactory) -> LoopbackSshd:
    """A second sshd: the bastion in front of `ssh_host`."""
    server = start_sshd(tmp_path_factory.mktemp("jump-sshd"))
    yield server
    server.stop()


def test_marker_lines_and_hashed_names_do_not_break_other_hosts(ssh_host, tmp_path):
    ca = generate_key(tmp_path / "ca_key")
    name = f"[{ssh_host.address}]:{ssh_host.port}"
    lines = [
        "# a comment, then an OpenSSH host CA and a revoked key for other hosts",
        f"@cert-authority *.example.org {_key_fields(ca.with_suffix('.pub'))}",
        f"@revoked * {_key_fields(generate_key(tmp_path / 'old_key').with_suffix('.pub'))}",
        "garbage line that is no key",
        f"{_hashed_name(name)} {_key_fields(ssh_host.host_key.with_suffix('.pub'))}",
    ]
    known = tmp_path / "known_hosts"
    known.write_text("\n".join(lines) + "\n")
    with SshConnection(ssh_profile(ssh_host, known, tmp_path)) as connection:
        assert connection.run("echo trusted").stdout == "trusted\n"
    # OpenSSH itself accepts the same file for this host
    done = subprocess.run(["ssh", "-p", str(ssh_host.port), "-i", str(ssh_host.client_key), "-o", "BatchMode=yes",
                           "-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={known}",
                           "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
                           f"{ssh_host.user}@{ssh_host.address}", "echo openssh"],
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert done.stdout == "openssh\n", done.stderr


@pytest.mark.parametrize("also_listed", [False, True])
@pytest.mark.parametrize("trust_on_first_use", [False, True])
def test_a_revoked_host_key_is_refused(ssh_host, tmp_path, also_listed, trust_on_first_use):
    key = _key_fields(ssh_host.host_key.with_suffix(".pub"))
    known = tmp_path / "known_hosts"
    listed = ssh_host.known_hosts_line() if also_listed else ""
    known.write_text(f"@revoked * {key}\n{listed}")
    before = known.read_text()
    profile = ssh_profile(ssh_host, known, tmp_path, trust_on_first_use=trust_on_first_use)
    with pytest.raises(DeviceError, match="marked @revoked") as refused:
        SshConnection(profile).run("true")
    assert "\n" not in str(refused.value) and known.read_text() == before  # nothing recorded


def test_trust_on_first_use_prints_the_fingerprint_it_recorded_and_where(ssh_host, tmp_path, capfd):
    fresh = tmp_path / "known_hosts"
    with SshConnection(ssh_profile(ssh_host, fresh, tmp_path, trust_on_first_use=True)) as connection:
        connection.run("true")
    printed = capfd.readouterr().err
    openssh = subprocess.run(["ssh-keygen", "-lf", str(ssh_host.host_key.with_suffix(".pub"))],
                             capture_output=True, text=True, check=True).stdout.split()[1]  # "SHA256:..."
    assert openssh.startswith("SHA256:") and openssh in printed and str(fresh) in printed
    assert "trusted on first use" in printed and len(printed.strip().splitlines()) == 1


def _jump_config(tmp_path: Path, ssh_host: LoopbackSshd, jump_host: LoopbackSshd, route: str) -> Path:
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host bastion\n  HostName {jump_host.address}\n  Port {jump_host.port}\n  User {jump_host.user}\n"
        f"  IdentityFile {jump_host.client_key}\n\n"
        f"Host board\n  HostName {ssh_host.address}\n  Port {ssh_host.port}\n  User {ssh_host.user}\n"
        f"  IdentityFile {ssh_host.client_key}\n  {route}\n")
    return config


def _board_profile(ssh_host, known: Path, tmp_path: Path, config: Path):
    return dataclasses.replace(ssh_profile(ssh_host, known, tmp_path), host="board", port=0, user="", key_file="",
                               ssh_config=str(config))


def _accepted_logins(server: LoopbackSshd) -> int:
    return (server.root / "sshd.log").read_text().count("Accepted publickey")


def test_proxy_jump_goes_through_the_bastion_and_checks_both_host_keys(ssh_host, jump_host, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text(ssh_host.known_hosts_line() + jump_host.known_hosts_line())
    config = _jump_config(tmp_path, ssh_host, jump_host, "ProxyJump bastion")
    profile = _board_profile(ssh_host, known, tmp_path, config)
    logins = _accepted_logins(jump_host)
    with SshConnection(profile) as connection:
        assert connection.run("echo through-the-bastion").stdout == "through-the-bastion\n"
        assert connection._jump_clients  # the session runs over the bastion's direct-tcpip channel
    assert _accepted_logins(jump_host) == logins + 1
    known.write_text(ssh_host.known_hosts_line())  # the bastion's key is unknown now: refused, naming it
    with pytest.raises(DeviceError, match=r"device testhost via ProxyJump bastion: host key of .* is not in"):
        SshConnection(profile).run("true")


def test_proxy_jump_to_a_stopped_bastion_is_not_reached_another_way(ssh_host, tmp_path):
    bastion = start_sshd(tmp_path / "bastion")
    known = tmp_path / "known_hosts"
    known.write_text(ssh_host.known_hosts_line() + bastion.known_hosts_line())
    profile = _board_profile(ssh_host, known, tmp_path, _jump_config(tmp_path, ssh_host, bastion, "ProxyJump bastion"))
    bastion.stop()
    with pytest.raises(DeviceError, match="unreachable after 1 attempt"):
        SshConnection(dataclasses.replace(profile, connect_retries=0)).run("true")


def test_proxy_command_runs_openssh_as_the_transport(ssh_host, jump_host, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text(ssh_host.known_hosts_line() + jump_host.known_hosts_line())
    config = tmp_path / "ssh_config"
    route = (f"ProxyCommand ssh -F {config} -o BatchMode=yes -o UserKnownHostsFile={known} "
             f"-o GlobalKnownHostsFile=/dev/null -W %h:%p bastion")
    _jump_config(tmp_path, ssh_host, jump_host, route)
    logins = _accepted_logins(jump_host)
    with SshConnection(_board_profile(ssh_host, known, tmp_path, config)) as connection:
        assert connection.run("echo via-proxy-command").stdout == "via-proxy-command\n"
    assert _accepted_logins(jump_host) == logins + 1


def test_both_proxy_jump_and_proxy_command_are_refused(ssh_host, jump_host, tmp_path, known_hosts):
    config = _jump_config(tmp_path, ssh_host, jump_host, "ProxyJump bastion\n  ProxyCommand nc %h %p")
    with pytest.raises(UserError, match="has both ProxyJump and ProxyCommand"):
        SshConnection(_board_profile(ssh_host, known_hosts, tmp_path, config))


@pytest.mark.parametrize("transport", ["ssh", "local"])
def test_output_beyond_the_limit_is_refused_not_buffered(ssh_host, known_hosts, tmp_path, transport):
    profile = ssh_profile(ssh_host, known_hosts, tmp_path, transport=transport)
    connection = SshConnection(profile) if transport == "ssh" else LocalConnection(profile)
    with connection:
        with pytest.raises(DeviceError, match=r"printed more than 64 MiB on stdout; stopped reading it"):
            connection.run(f"head -c {MAX_STDOUT_BYTES + (1 << 20)} /dev/zero")
        assert connection.run("echo still-usable").stdout == "still-usable\n"
