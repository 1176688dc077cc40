"""The local connection and fan-out over devices with a Group (one device unreachable)."""
from __future__ import annotations

import time

import pytest

from pipeline.devices.group import Group, failure_reason
from pipeline.devices.inventory import DeviceProfile
from pipeline.devices.transport import LocalConnection
from pipeline.devices.transport.connection import DeviceError
from tests.sshd_fixtures import closed_port_profile, known_hosts, ssh_host, ssh_profile  # noqa: F401


def local_profile(tmp_path) -> DeviceProfile:
    return DeviceProfile(name="local", transport="local", workdir=str(tmp_path / "local"))


def test_local_run_put_get(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"\x00payload\xff")
    with LocalConnection(local_profile(tmp_path)) as connection:
        result = connection.run("printf out; printf err >&2; exit 4")
        connection.put(source, str(tmp_path / "device-copy"))
        connection.get(str(tmp_path / "device-copy"), tmp_path / "back")
    assert (result.exit_code, result.stdout, result.stderr) == (4, "out", "err")
    assert (tmp_path / "back").read_bytes() == source.read_bytes()


def test_local_check_names_device_command_and_stderr(tmp_path):
    with pytest.raises(DeviceError, match=r"device local: `ls /nonexistent-x` failed \(exit 2\): .*nonexistent-x"):
        LocalConnection(local_profile(tmp_path)).check("ls /nonexistent-x")


def test_local_timeout_kills_the_whole_process_group(tmp_path):
    marker = tmp_path / "survived"
    with pytest.raises(DeviceError, match="did not finish within 0.3 s"):
        LocalConnection(local_profile(tmp_path)).run(f"sh -c 'sleep 1; touch {marker}'", timeout=0.3)
    time.sleep(1.5)
    assert not marker.exists()


def test_group_maps_results_and_failures_per_device(ssh_host, known_hosts, tmp_path):
    good = ssh_profile(ssh_host, known_hosts, tmp_path)
    with Group.from_profiles([good, closed_port_profile(good), local_profile(tmp_path)]) as group:
        results = group.run("echo $((6 * 7))")
    assert sorted(results.succeeded) == ["local", "testhost"]
    assert all(result.stdout == "42\n" for result in results.succeeded.values())
    assert list(results.failed) == ["unreachable"]
    assert "device unreachable" in failure_reason("unreachable", results.failed["unreachable"])


def test_failure_reason_of_an_unexpected_error_names_device_and_type():
    assert failure_reason("rpi4", OSError("Socket is closed")) == "device rpi4: OSError: Socket is closed"
