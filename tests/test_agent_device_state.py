"""Device state: governor and clocks, thermal zones and Raspberry Pi throttling flags, read from a
sysfs-shaped fixture tree and a stand-in vcgencmd, before and after the run.
"""
from __future__ import annotations

import os

import pytest

from device_agents.edge_agent.device_state import decode_throttled, read_device_state, throttle_events
from tests.agent_fixtures import agent_models, agent_pyz, make_cpu_tree, make_fake_vcgencmd, model_args, run_agent  # noqa: F401,E501

NO_FLAGS = {"under_voltage": False, "freq_capped": False, "throttled": False, "soft_temp_limit": False}


def _path_with(folder) -> str:
    return f"{folder}{os.pathsep}{os.environ['PATH']}"


def test_cpus_and_thermal_zones_are_read_from_the_sysfs_root(tmp_path, monkeypatch):
    make_cpu_tree(tmp_path, ("ondemand", "ondemand", "performance", "ondemand"), cur_khz=1500000)
    monkeypatch.setenv("PATH", _path_with(make_fake_vcgencmd(tmp_path / "bin", ("0x0",)).parent))
    state = read_device_state(tmp_path)
    assert list(state["cpus"]) == ["cpu0", "cpu1", "cpu2", "cpu3"]
    assert state["cpus"]["cpu2"] == {"governor": "performance", "cur_mhz": 1500.0, "min_mhz": 600.0, "max_mhz": 2400.0}
    assert state["thermal"] == [
        {"zone": "thermal_zone0", "type": "cpu-thermal", "celsius": 51.234},
        {"zone": "thermal_zone1", "type": "rp1_adc", "celsius": 44.5},
    ]
    assert state["throttling"] == {"raw": "0x0", "now": NO_FLAGS, "since_boot": NO_FLAGS}


def test_missing_sources_are_empty_or_null_never_invented(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    state = read_device_state(tmp_path)
    assert state == {"cpus": {}, "thermal": [], "throttling": None}
    assert throttle_events(state, state) is None


def test_throttled_bits_are_decoded_now_and_since_boot():
    decoded = decode_throttled(0x50005)
    assert decoded["now"] == {**NO_FLAGS, "under_voltage": True, "throttled": True}
    assert decoded["since_boot"] == {**NO_FLAGS, "under_voltage": True, "throttled": True}
    assert decode_throttled(0x80008)["now"]["soft_temp_limit"]
    assert decode_throttled(0x20000)["since_boot"]["freq_capped"]


@pytest.mark.parametrize(
    ("before", "after", "events"),
    [
        (0x0, 0x0, []),
        (0x50000, 0x50000, []),  # happened before the run, not during it
        (0x0, 0x20000, ["freq_capped"]),  # capped and released during the run
        (0x0, 0x50005, ["throttled", "under_voltage"]),
        (0x8, 0x80000, ["soft_temp_limit"]),  # active when the run started
    ],
)
def test_throttle_events_during_the_run(before, after, events):
    wrap = lambda value: {"throttling": decode_throttled(value)}  # noqa: E731
    assert throttle_events(wrap(before), wrap(after)) == events


def test_a_run_that_was_throttled_says_so(agent_models, agent_pyz, tmp_path):
    make_cpu_tree(tmp_path, ("schedutil",) * 2, cur_khz=1800000)
    vcgencmd = make_fake_vcgencmd(tmp_path / "bin", ("0x0", "0x50005"))  # clean before, throttled after
    args = model_args(agent_models.int8, "--sysfs-root", str(tmp_path))
    run = run_agent(agent_pyz, args, extra_env={"PATH": _path_with(vcgencmd.parent)})
    state = run.document["state"]
    assert state["before"]["throttling"]["raw"] == "0x0" and state["after"]["throttling"]["raw"] == "0x50005"
    assert state["throttled"] is True and state["throttle_events"] == ["throttled", "under_voltage"]
    assert state["before"]["cpus"]["cpu1"]["governor"] == "schedutil"
    assert any("throttled during the run" in warning for warning in run.document["warnings"])


def test_a_clean_run_is_not_flagged(agent_models, agent_pyz, tmp_path):
    vcgencmd = make_fake_vcgencmd(tmp_path / "bin", ("0x50000",))
    run = run_agent(agent_pyz, model_args(agent_models.int8), extra_env={"PATH": _path_with(vcgencmd.parent)})
    assert run.document["state"]["throttled"] is False and run.document["warnings"] == []
