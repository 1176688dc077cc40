"""Energy: each meter reads a sysfs-shaped fixture (or a stand-in vcgencmd / command) whose power
changes during the run on a known schedule, and the agent's integrated energy must match the
schedule's truth within 5% for both the idle and the timed window.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from device_agents.edge_agent.energy import Reading, integrate_joules
from tests.agent_fixtures import (  # noqa: F401
    RaplCounter,
    ScheduledPower,
    agent_models,
    agent_pyz,
    make_fake_vcgencmd,
    model_args,
    run_agent,
    triangle_watts,
    write_atomic,
    write_pmic,
)

TOLERANCE = 0.05
# A slow triangle: trapezoid integration is exact on its straight parts, and a slow slope keeps the
# error small when a loaded machine delays a meter read (a stalled process spawn for vcgencmd/command).
LOW_W, HIGH_W, PERIOD_S = 2.0, 6.0, 3.6
MIN_SWING_W = 0.5  # a 1 s window centred on a peak still sees power fall by 1.1 W
WINDOW_ARGS = ["--idle-s", "1.0", "--min-s", "1.2", "--runs", "20", "--sample-hz", "50"]
INA3221_MILLIVOLTS = {1: 5000, 2: 3300, 3: 12000}
INA3221_SHARE = {1: 0.6, 2: 0.4}  # of the scheduled power; channel 3 is excluded with channels=1,2
RAPL_RANGE_UJ = 6_000_000  # wraps every ~1.5 s at 4 W: at least once in the two windows (~9 J)


def _ina219(root: Path) -> tuple[Callable[[float], None], list[str], None]:
    device = root / "sys/class/hwmon/hwmon3"
    write_atomic(device / "name", "ina219\n")
    write_atomic(root / "sys/class/hwmon/hwmon0/name", "cpu_thermal\n")  # a non-power device first

    def write(watts: float) -> None:
        write_atomic(device / "power1_input", f"{round(watts * 1e6)}\n")

    return write, ["--energy-meter", "hwmon", "--meter-option", "name=ina219"], None


def _ina3221(root: Path) -> tuple[Callable[[float], None], list[str], None]:
    device = root / "sys/class/hwmon/hwmon1"
    write_atomic(device / "name", "ina3221\n")
    for channel, millivolts in INA3221_MILLIVOLTS.items():
        write_atomic(device / f"in{channel}_input", f"{millivolts}\n")
    write_atomic(device / "curr3_input", "500\n")  # 6 W on a channel the meter must leave out

    def write(watts: float) -> None:
        for channel, share in INA3221_SHARE.items():
            milliamps = share * watts / (INA3221_MILLIVOLTS[channel] / 1000) * 1000
            write_atomic(device / f"curr{channel}_input", f"{round(milliamps)}\n")

    args = ["--energy-meter", "hwmon", "--meter-option", "hwmon=hwmon1", "--meter-option", "channels=1,2"]
    return write, args, None


def _pi5_pmic(root: Path) -> tuple[Callable[[float], None], list[str], None]:
    vcgencmd = make_fake_vcgencmd(root / "bin")
    args = ["--energy-meter", "pi5-pmic", "--meter-option", f"vcgencmd={vcgencmd}", "--sample-hz", "20"]
    return lambda watts: write_pmic(vcgencmd.parent, watts), args, None


def _command(root: Path) -> tuple[Callable[[float], None], list[str], None]:
    watts_file = root / "watts.txt"
    write_atomic(watts_file, "0\n")
    return (
        lambda watts: write_atomic(watts_file, f"{watts:.6f}\n"),
        ["--energy-meter", "command", "--meter-option", f"command=cat {watts_file}", "--sample-hz", "20"],
        None,
    )


def _rapl(root: Path) -> tuple[Callable[[float], None], list[str], RaplCounter]:
    counter = RaplCounter(root / "sys/class/powercap/intel-rapl:0", RAPL_RANGE_UJ, start_uj=RAPL_RANGE_UJ - 300_000)
    return counter, ["--energy-meter", "rapl"], counter


METER_SETUPS = {"ina219": _ina219, "ina3221": _ina3221, "pi5-pmic": _pi5_pmic, "command": _command, "rapl": _rapl}


@pytest.mark.parametrize("setup_name", sorted(METER_SETUPS))
def test_integrated_energy_matches_the_schedule(setup_name, agent_models, agent_pyz, tmp_path):
    write, meter_args, rapl = METER_SETUPS[setup_name](tmp_path)
    args = model_args(agent_models.int8, "--sysfs-root", str(tmp_path), *WINDOW_ARGS, *meter_args)
    with ScheduledPower(write, triangle_watts(LOW_W, HIGH_W, PERIOD_S)) as power:
        run = run_agent(agent_pyz, args)
    assert run.code == 0, run.document
    energy = run.document["energy"]
    for name in ("idle", "timed"):
        window = energy["windows"][name]
        start, end = window["start_unix_s"], window["end_unix_s"]
        watts_seen = power.watts_between(start, end)
        assert max(watts_seen) - min(watts_seen) > MIN_SWING_W, "power must change during the window"
        truth = (rapl or power).energy_j(start, end)  # RAPL: what the counter showed, even if the writer stalled
        assert window["joules"] == pytest.approx(truth, rel=TOLERANCE), name
        assert window["samples"] >= 5  # readings between the two boundary ones (fewer when reads stall)
    timed = energy["windows"]["timed"]
    assert energy["window_s"] == timed["seconds"]
    assert energy["avg_w"] == pytest.approx(timed["joules"] / timed["seconds"])
    assert energy["mj_per_inference"] == pytest.approx(timed["joules"] * 1000 / run.document["runs"])
    assert LOW_W < energy["idle_w"] < HIGH_W and LOW_W < energy["avg_w"] < HIGH_W
    if rapl is not None:
        windows = [energy["windows"][name] for name in ("idle", "timed")]
        wraps = sum(rapl.wraps_between(window["start_unix_s"], window["end_unix_s"]) for window in windows)
        assert wraps >= 1, "the counter must wrap inside a window"


def test_pi5_pmic_note_says_it_is_not_wall_power(agent_models, agent_pyz, tmp_path):
    vcgencmd = make_fake_vcgencmd(tmp_path / "bin")
    args = model_args(agent_models.int8, "--energy-meter", "pi5-pmic", "--meter-option", f"vcgencmd={vcgencmd}")
    run = run_agent(agent_pyz, args)
    assert run.code == 0, run.document
    assert "NOT wall power" in run.document["energy"]["note"]
    assert run.document["energy"]["idle_w"] is None  # --idle-s 0: no idle window, nothing guessed
    assert run.document["energy"]["mj_per_inference_above_idle"] is None


def test_no_meter_means_null_energy(agent_models, agent_pyz):
    run = run_agent(agent_pyz, model_args(agent_models.int8, "--energy-meter", "none"))
    assert run.code == 0 and run.document["energy"] is None


def test_unreadable_meter_is_a_one_line_error(agent_models, agent_pyz, tmp_path):
    run = run_agent(agent_pyz, model_args(agent_models.int8, "--energy-meter", "hwmon", "--sysfs-root", str(tmp_path)))
    assert run.code == 1
    assert set(run.document) == {"schema_version", "error"}
    assert "no power sensor" in run.document["error"] and "hwmon=hwmonN" in run.document["error"]


def test_trapezoid_and_wrapping_counter_integration():
    ramp = [Reading(time_s=t, value=2.0 + t) for t in (0.0, 0.5, 1.0)]  # 2 W rising to 3 W over 1 s
    assert integrate_joules(ramp) == pytest.approx(2.5)
    counter = [Reading(0.0, 9.0), Reading(0.1, 1.0), Reading(0.2, 4.0)]  # wraps at 10 J between the first two
    assert integrate_joules(counter, counter_modulus=10.0) == pytest.approx(5.0)
