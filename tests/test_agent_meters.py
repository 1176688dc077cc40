"""Meters one at a time: choosing the hwmon device, parsing the Pi 5 PMIC output, and a clear
error for every meter that cannot be read (never a silent null).
"""
from __future__ import annotations

import sys

import pytest

from device_agents.edge_agent.errors import AgentError, UsageError
from device_agents.edge_agent.meters import open_meter, pmic_power_w
from tests.agent_fixtures import PMIC_RAILS, make_fake_vcgencmd, pmic_text, write_atomic


def _hwmon(root, number: int, name: str, **files: int) -> None:
    for file_name, value in {"name": name, **files}.items():
        write_atomic(root / f"sys/class/hwmon/hwmon{number}/{file_name}", f"{value}\n")


def test_pmic_output_sums_v_times_i_over_paired_rails_only():
    text = "header line that is not a rail\n" + pmic_text(4.5)
    watts, rails = pmic_power_w(text)
    assert rails == len(PMIC_RAILS) and watts == pytest.approx(4.5, abs=1e-6)  # EXT5V_V/BATT_V have no current


def test_pmic_line_format_from_the_firmware():
    watts, rails = pmic_power_w("   VDD_CORE_A current(7)=2.34567000A\n   VDD_CORE_V volt(15)=0.84000000V\n")
    assert rails == 1 and watts == pytest.approx(2.34567 * 0.84)


def test_hwmon_default_is_the_first_power_sensor_in_natural_order(tmp_path):
    _hwmon(tmp_path, 0, "cpu_thermal", temp1_input=50000)
    _hwmon(tmp_path, 10, "ina226", power1_input=9_000_000)
    _hwmon(tmp_path, 2, "ina219", power1_input=1_500_000)
    meter = open_meter("hwmon", {}, tmp_path)
    assert meter.read() == pytest.approx(1.5) and "ina219 (hwmon2)" in meter.note
    assert open_meter("hwmon", {"name": "ina226"}, tmp_path).read() == pytest.approx(9.0)


def test_hwmon_without_power_file_multiplies_bus_volts_and_current(tmp_path):
    _hwmon(tmp_path, 0, "ina219", in0_input=12, in1_input=5000, curr1_input=600)  # in0 is the shunt voltage
    assert open_meter("hwmon", {"hwmon": "hwmon0"}, tmp_path).read() == pytest.approx(3.0)


@pytest.mark.parametrize(
    ("meter", "options", "error", "message"),
    [
        ("hwmon", {"hwmon": "hwmon7"}, AgentError, "hwmon7 does not exist"),
        ("hwmon", {"name": "ina3221"}, AgentError, "no device named ina3221"),
        ("hwmon", {"channels": "one"}, UsageError, "channels=1,2"),
        ("hwmon", {"channels": "\u0661,\u0662"}, UsageError, "channels=1,2"),  # int('\u0661') == 1
        ("rapl", {}, AgentError, "RAPL needs an Intel/AMD x86 CPU"),
        ("pi5-pmic", {"vcgencmd": "/nonexistent/vcgencmd"}, AgentError, "/nonexistent/vcgencmd not found"),
        ("command", {}, UsageError, "needs --meter-option command="),
        ("command", {"command": "/nonexistent/meter --watts"}, AgentError, "not found"),
        ("command", {"command": f"{sys.executable} -c 'print(\"n/a\")'"}, AgentError, "not watts"),
        ("command", {"command": f"{sys.executable} -c 'raise SystemExit(3)'"}, AgentError, "failed"),
        ("none", {"name": "x"}, UsageError, "--energy-meter none"),
    ],
)
def test_unreadable_meters_fail_with_one_line(tmp_path, meter, options, error, message):
    _hwmon(tmp_path, 0, "ina219", power1_input=1_000_000)
    with pytest.raises(error) as caught:
        open_meter(meter, options, tmp_path)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_pi5_pmic_on_a_board_without_rails_is_an_error(tmp_path):
    vcgencmd = make_fake_vcgencmd(tmp_path)
    write_atomic(tmp_path / "pmic_read_adc.txt", "error=1 error_msg=\"Command not registered\"\n")
    with pytest.raises(AgentError, match="needs a Raspberry Pi 5"):
        open_meter("pi5-pmic", {"vcgencmd": str(vcgencmd)}, tmp_path)


def test_command_meter_reads_watts(tmp_path):
    meter = open_meter("command", {"command": f"{sys.executable} -c 'print(2.75)'"}, tmp_path)
    assert meter.read() == pytest.approx(2.75) and meter.counter_modulus is None
