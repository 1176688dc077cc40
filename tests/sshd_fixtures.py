"""Fixtures for the device tests: a real OpenSSH server on loopback as the "device", and
inventory profiles pointing at it. (Tiny models and the agent zipapp come from
tests/agent_fixtures.py, shared with the agent's own tests.)

Import what a test module uses, e.g. `from tests.sshd_fixtures import ssh_host  # noqa: F401`.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from pipeline.devices.inventory import DeviceProfile
from pipeline.testing.loopback_sshd import LoopbackSshd, free_port, start_sshd

# Quick agent settings: a handful of invokes, no minimum durations, no idle window.
QUICK_BENCH = {"runs": 5, "min_s": 0.0, "warmup_runs": 1, "warmup_min_s": 0.0, "idle_s": 0.0}


@pytest.fixture(scope="session")
def ssh_host(tmp_path_factory: pytest.TempPathFactory) -> LoopbackSshd:
    """sshd on 127.0.0.1 with its own host key; only the generated client key may log in."""
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


@pytest.fixture
def known_hosts(tmp_path: Path, ssh_host: LoopbackSshd) -> Path:
    """A known_hosts file that holds the test host's real key."""
    path = tmp_path / "known_hosts"
    path.write_text(ssh_host.known_hosts_line())
    return path


def ssh_profile(server: LoopbackSshd, known_hosts: Path, workdir: Path, name: str = "testhost",
                **overrides: object) -> DeviceProfile:
    """An SSH device profile for the loopback sshd; the device's python is this venv's."""
    values = dict(name=name, transport="ssh", host=server.address, port=server.port, user=server.user,
                  key_file=str(server.client_key), use_agent=False, ssh_config=str(workdir / "no-ssh-config"),
                  known_hosts=str(known_hosts), workdir=str(workdir), python=sys.executable,
                  connect_retries=0, connect_timeout_s=5.0, **QUICK_BENCH)
    values.update(overrides)
    return DeviceProfile(**values)


def closed_port_profile(profile: DeviceProfile) -> DeviceProfile:
    """The same device on a loopback port where nothing listens (an unreachable board)."""
    return dataclasses.replace(profile, name="unreachable", port=free_port())


def inventory_toml(profiles: list[DeviceProfile]) -> str:
    """An inventory file holding these profiles (every field written out)."""
    lines = []
    for profile in profiles:
        lines.append(f"[devices.{profile.name}]")
        for key, value in dataclasses.asdict(profile).items():
            if key == "name" or isinstance(value, dict):
                continue
            lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)
