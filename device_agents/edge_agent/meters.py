"""Energy meters, each reading one real source: hwmon power sensors, the Pi 5 PMIC, RAPL, a command.

A meter's read() returns watts, or for a cumulative counter (RAPL) joules on that counter
(then counter_modulus says where it wraps). Opening a meter reads it once, so a meter that
cannot be read fails the run with one clear line instead of silently reporting nothing.
"""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from .errors import AgentError, UsageError, one_line
from .sysfs import natural_sorted, read_number, read_optional

METER_CHOICES = ("none", "hwmon", "pi5-pmic", "rapl", "command")
HWMON_DIR = "sys/class/hwmon"
POWERCAP_DIR = "sys/class/powercap"
DEFAULT_RAPL_ZONE = "intel-rapl:0"
COMMAND_TIMEOUT_S = 5.0
MICRO = 1e-6
MAX_CHANNELS = 16
# `   VDD_CORE_A current(7)=2.34567000A` / `   VDD_CORE_V volt(15)=0.84000000V`
PMIC_LINE = re.compile(r"^\s*(?P<rail>\S+)_(?P<kind>[AV])\s+(?:current|volt)\(\d+\)=(?P<value>[-+0-9.eE]+)[AV]\s*$")
HWMON_FIX = "check the sensor's driver is loaded, or pick the device with --meter-option hwmon=hwmonN"


class Meter:
    """One power source; subclasses set name and note and implement read()."""

    name = ""
    note = ""
    counter_modulus: float | None = None

    def read(self) -> float:
        raise NotImplementedError


def run_reader(argv: list[str], what: str) -> str:
    """stdout of a meter program run without a shell; any failure names the program and the fix."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=True)
    except FileNotFoundError as exc:
        raise AgentError(f"{what}: {argv[0]} not found ({one_line(exc)}): install it or give its path") from exc
    except subprocess.TimeoutExpired as exc:
        raise AgentError(f"{what}: {argv[0]} took over {COMMAND_TIMEOUT_S:g} s: check it runs by hand") from exc
    except (subprocess.CalledProcessError, OSError) as exc:
        stderr = one_line(Exception(getattr(exc, "stderr", "") or exc))
        raise AgentError(f"{what}: {argv[0]} failed ({stderr}): check it runs by hand as this user") from exc
    return done.stdout


def _has_channel(device: Path, channel: int) -> bool:
    return (device / f"curr{channel}_input").exists() and (device / f"in{channel}_input").exists()


class HwmonMeter(Meter):
    """INA219/INA226 power1_input (uW), else the sum of in{N}_input (mV) x curr{N}_input (mA)."""

    name = "hwmon"

    def __init__(self, device: Path, channels: list[int] | None):
        power_file = device / "power1_input"
        self._power_file = power_file if channels is None and power_file.exists() else None
        if channels is None:
            channels = [n for n in range(1, MAX_CHANNELS + 1) if _has_channel(device, n)]
        self._channels = [(device / f"in{n}_input", device / f"curr{n}_input") for n in channels]
        if self._power_file is None and not self._channels:
            raise AgentError(f"--energy-meter hwmon: {device} has no power1_input nor in/curr pairs: {HWMON_FIX}")
        sensor = read_optional(device / "name") or "unknown"
        if self._power_file is not None:
            source = "power1_input"
        else:
            source = "in{N}_input x curr{N}_input of channels " + ",".join(map(str, channels))
        self.note = (
            f"{sensor} ({device.name}) {source}: power of the rail(s) the sensor is wired into; "
            "wall power only if it sits on the board's supply input"
        )

    def read(self) -> float:
        if self._power_file is not None:
            return read_number(self._power_file, HWMON_FIX) * MICRO
        watts = sum(read_number(volts, HWMON_FIX) * read_number(amps, HWMON_FIX) for volts, amps in self._channels)
        return watts * MICRO  # mV x mA = uW


def _parse_channels(text: str | None) -> list[int] | None:
    if text is None:
        return None
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not all(part.isascii() and part.isdigit() for part in parts):  # int() reads '١' as 1 too
        raise UsageError(f"--meter-option channels={text}: expected channel numbers like channels=1,2")
    return [int(part) for part in parts]


def _find_hwmon(root: Path, options: dict[str, str]) -> Path:
    base = root / HWMON_DIR
    if "hwmon" in options:
        if not (base / options["hwmon"]).is_dir():
            raise AgentError(f"--energy-meter hwmon: {base / options['hwmon']} does not exist: {HWMON_FIX}")
        return base / options["hwmon"]
    devices = natural_sorted(list(base.glob("hwmon*")))
    if "name" in options:
        named = [device for device in devices if read_optional(device / "name") == options["name"]]
        if not named:
            raise AgentError(f"--energy-meter hwmon: no device named {options['name']} under {base}: {HWMON_FIX}")
        return named[0]
    for device in devices:
        if (device / "power1_input").exists() or (device / "curr1_input").exists():
            return device
    raise AgentError(f"--energy-meter hwmon: no power sensor (power1_input or curr1_input) under {base}: {HWMON_FIX}")


def open_hwmon(root: Path, options: dict[str, str]) -> Meter:
    return HwmonMeter(_find_hwmon(root, options), _parse_channels(options.get("channels")))


def pmic_power_w(text: str) -> tuple[float, int]:
    """Sum of V x I over the rails that print both a _V and an _A line; and how many rails that is."""
    readings: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        match = PMIC_LINE.match(line)
        if match:
            readings[(match["rail"], match["kind"])] = float(match["value"])
    rails = [rail for rail, kind in readings if kind == "A" and (rail, "V") in readings]
    return sum(readings[(rail, "A")] * readings[(rail, "V")] for rail in rails), len(rails)


class Pi5PmicMeter(Meter):
    """`vcgencmd pmic_read_adc`: the Raspberry Pi 5 PMIC's per-rail voltage and current ADCs."""

    name = "pi5-pmic"

    def __init__(self, vcgencmd: str):
        self._argv = [vcgencmd, "pmic_read_adc"]
        self.note = "sum of V x I over the Pi 5 PMIC rails: the board's internal rails, NOT wall power"

    def read(self) -> float:
        watts, rails = pmic_power_w(run_reader(self._argv, "--energy-meter pi5-pmic"))
        if rails == 0:
            raise AgentError(
                "--energy-meter pi5-pmic: `vcgencmd pmic_read_adc` printed no rail with both _A and _V readings: "
                "this meter needs a Raspberry Pi 5 with current firmware"
            )
        return watts


def open_pi5_pmic(root: Path, options: dict[str, str]) -> Meter:
    return Pi5PmicMeter(options.get("vcgencmd") or shutil.which("vcgencmd") or "vcgencmd")


class RaplMeter(Meter):
    """Intel RAPL powercap zone: cumulative energy_uj that wraps at max_energy_range_uj."""

    name = "rapl"

    def __init__(self, zone: Path):
        fix = "RAPL needs an Intel/AMD x86 CPU with the intel_rapl driver, and root to read energy_uj"
        self._energy_file = zone / "energy_uj"
        self._fix = fix
        self.counter_modulus = read_number(zone / "max_energy_range_uj", fix) * MICRO
        domain = read_optional(zone / "name") or zone.name
        self.note = f"RAPL {zone.name} ({domain}) energy counter: CPU package energy only, NOT wall power"

    def read(self) -> float:
        return read_number(self._energy_file, self._fix) * MICRO


def open_rapl(root: Path, options: dict[str, str]) -> Meter:
    return RaplMeter(root / POWERCAP_DIR / options.get("zone", DEFAULT_RAPL_ZONE))


class CommandMeter(Meter):
    """Any program that prints the current power in watts (first number on stdout)."""

    name = "command"

    def __init__(self, command: str):
        self._argv = shlex.split(command)
        if not self._argv:
            raise UsageError("--energy-meter command needs --meter-option command='PROGRAM ARGS' printing watts")
        self.note = f"watts printed by {Path(self._argv[0]).name}: what it measures is up to that program"

    def read(self) -> float:
        output = run_reader(self._argv, "--energy-meter command")
        try:
            return float(output.split()[0])
        except (ValueError, IndexError) as exc:
            raise AgentError(
                f"--energy-meter command: {self._argv[0]} printed {output.strip()[:40]!r}, not watts: "
                "make it print one number (watts)"
            ) from exc


def open_command(root: Path, options: dict[str, str]) -> Meter:
    return CommandMeter(options.get("command", ""))


# meter name -> (factory, meter-option keys it accepts)
METERS: dict[str, tuple[Callable[[Path, dict[str, str]], Meter], tuple[str, ...]]] = {
    "hwmon": (open_hwmon, ("hwmon", "name", "channels")),
    "pi5-pmic": (open_pi5_pmic, ("vcgencmd",)),
    "rapl": (open_rapl, ("zone",)),
    "command": (open_command, ("command",)),
}


def open_meter(name: str, options: dict[str, str], sysfs_root: Path) -> Meter | None:
    """The chosen meter, checked by one read; None for `none` (energy is then null)."""
    if name == "none":
        if options:
            raise UsageError("--meter-option given with --energy-meter none: pick a meter or drop the options")
        return None
    factory, known = METERS[name]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise UsageError(f"--meter-option {unknown[0]} is not known for {name} (known: {', '.join(known)})")
    meter = factory(sysfs_root, options)
    meter.read()
    return meter
