"""SSH connections against a real sshd on loopback: host keys, ~/.ssh/config, retries, timeouts,
file transfer and fan-out."""
from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest

from pipeline.devices.transport.connection import DeviceError
from pipeline.devices.transport.ssh import SshConnection, resolve_target
from pipeline.testing.loopback_sshd import generate_key
from tests.sshd_fixtures import closed_port_profile, known_hosts, ssh_host, ssh_profile  # noqa: F401


def test_run_put_get_round_trip(ssh_host, known_hosts, tmp_path):
    local = tmp_path / "payload.bin"
    local.write_bytes(bytes(range(256)) * 100)
    with SshConnection(ssh_profile(ssh_host, known_hosts, tmp_path)) as connection:
        result = connection.run("echo out; echo err >&2; exit 3")
        connection.put(local, str(tmp_path / "on-device.bin"))
        connection.get(str(tmp_path / "on-device.bin"), tmp_path / "back.bin")
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert (tmp_path / "back.bin").read_bytes() == local.read_bytes()


def test_put_into_a_missing_folder_names_the_cause(ssh_host, known_hosts, tmp_path):
    local = tmp_path / "payload.bin"
    local.write_bytes(b"x" * (4 << 20))  # larger than the channel window: the send itself must not hang
    with SshConnection(ssh_profile(ssh_host, known_hosts, tmp_path)) as connection:
        with pytest.raises(DeviceError, match=r"`cat > .*/absent/copy.bin` failed \(exit \d+\): .*No such file"):
            connection.put(local, str(tmp_path / "absent" / "copy.bin"))


def test_unknown_host_key_is_refused_with_keyscan_hint(ssh_host, tmp_path):
    empty = tmp_path / "known_hosts"
    connection = SshConnection(ssh_profile(ssh_host, empty, tmp_path))
    with pytest.raises(DeviceError) as refused:
        connection.run("true")
    message = str(refused.value)
    assert "not in" in message and f"ssh-keyscan -p {ssh_host.port} {ssh_host.address} >> {empty}" in message
    assert "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub" in message and "\n" not in message
    assert not empty.exists()  # nothing was recorded


def _other_host_key_line(ssh_host, tmp_path: Path) -> str:
    other = generate_key(tmp_path / "other_host_key")
    key_type, key_data = other.with_suffix(".pub").read_text().split()[:2]
    return f"[{ssh_host.address}]:{ssh_host.port} {key_type} {key_data}\n"


@pytest.mark.parametrize("trust_on_first_use", [False, True])
def test_changed_host_key_is_always_refused(ssh_host, tmp_path, trust_on_first_use):
    stale = tmp_path / "known_hosts"
    recorded = _other_host_key_line(ssh_host, tmp_path)
    stale.write_text(recorded)
    profile = ssh_profile(ssh_host, stale, tmp_path, trust_on_first_use=trust_on_first_use)
    with pytest.raises(DeviceError, match="CHANGED") as refused:
        SshConnection(profile).run("true")
    assert "ssh-keygen -f" in str(refused.value) and "ssh-keyscan" in str(refused.value)
    assert stale.read_text() == recorded  # the old key is left for the user to judge


def test_trust_on_first_use_records_the_key_and_keeps_it(ssh_host, tmp_path):
    fresh = tmp_path / "ssh" / "known_hosts"
    profile = ssh_profile(ssh_host, fresh, tmp_path, trust_on_first_use=True)
    with SshConnection(profile) as connection:
        assert connection.run("echo first").stdout == "first\n"
    assert fresh.read_text().split() == ssh_host.known_hosts_line().split()
    with SshConnection(dataclasses.replace(profile, trust_on_first_use=False)) as connection:
        assert connection.run("echo again").stdout == "again\n"  # now known: accepted without trust


def test_known_hosts_line_matches_ssh_keyscan(ssh_host):
    scanned = subprocess.run(["ssh-keyscan", "-t", "ed25519", "-p", str(ssh_host.port), ssh_host.address],
                             capture_output=True, text=True, timeout=10).stdout
    assert scanned.split() == ssh_host.known_hosts_line().split()


def test_ssh_config_alias_supplies_host_port_user_key_and_known_hosts(ssh_host, known_hosts, tmp_path):
    config = tmp_path / "ssh_config"
    config.write_text(f"Host board\n  HostName {ssh_host.address}\n  Port {ssh_host.port}\n  User {ssh_host.user}\n"
                      f"  IdentityFile {ssh_host.client_key}\n  UserKnownHostsFile {known_hosts}\n")
    profile = dataclasses.replace(ssh_profile(ssh_host, known_hosts, tmp_path), host="board", port=0, user="",
                                  key_file="", known_hosts="", ssh_config=str(config))
    target = resolve_target(profile)
    assert (target.hostname, target.port, target.known_hosts) == (ssh_host.address, ssh_host.port, known_hosts)
    with SshConnection(profile) as connection:
        assert connection.run("echo via-alias").stdout == "via-alias\n"


def test_wrong_key_fails_at_once_without_retries(ssh_host, known_hosts, tmp_path, caplog):
    stranger = generate_key(tmp_path / "stranger_key")
    profile = ssh_profile(ssh_host, known_hosts, tmp_path, key_file=str(stranger), connect_retries=3)
    caplog.set_level("INFO", logger="pipeline.devices.transport.ssh")
    with pytest.raises(DeviceError, match="key authentication failed"):
        SshConnection(profile).run("true")
    assert not any("retrying" in record.message for record in caplog.records)


def test_unreachable_device_is_retried_then_reported(ssh_host, known_hosts, tmp_path, caplog):
    profile = closed_port_profile(ssh_profile(ssh_host, known_hosts, tmp_path, connect_retries=2))
    caplog.set_level("INFO", logger="pipeline.devices.transport.ssh")
    with pytest.raises(DeviceError, match="unreachable after 3 attempt") as unreachable:
        SshConnection(profile).run("true")
    assert "running sshd" in str(unreachable.value)
    assert sum("retrying" in record.message for record in caplog.records) == 2


def test_command_timeout(ssh_host, known_hosts, tmp_path):
    with SshConnection(ssh_profile(ssh_host, known_hosts, tmp_path)) as connection:
        with pytest.raises(DeviceError, match="did not finish within 0.5 s"):
            connection.run("sleep 5", timeout=0.5)
        assert connection.run("echo still-usable").stdout == "still-usable\n"


