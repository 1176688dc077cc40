"""What the board was doing around the benchmark: load, CPU governor and clocks, temperatures, throttling.

A latency taken while the board was throttled or on a power-saving governor is not comparable
with one taken at full clock, so the result records the state before and after the run.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from .errors import one_line
from .sysfs import natural_sorted, read_optional

CPU_DIR = "sys/devices/system/cpu"
LOADAVG = "proc/loadavg"
THERMAL_DIR = "sys/class/thermal"
VCGENCMD_TIMEOUT_S = 5.0
KHZ_PER_MHZ = 1000.0
MILLIDEGREES = 1000.0
# `vcgencmd get_throttled` bits: the low nibble is "now", the same flags shifted by 16 "since boot"
THROTTLE_FLAGS = {0: "under_voltage", 1: "freq_capped", 2: "throttled", 3: "soft_temp_limit"}
SINCE_BOOT_SHIFT = 16


def _mhz(path: Path) -> float | None:
    text = read_optional(path)
    try:
        return float(text) / KHZ_PER_MHZ if text else None
    except ValueError:
        return None


def read_cpus(root: Path) -> dict[str, dict[str, Any]]:
    """Per CPU: governor and current/min/max scaling frequency in MHz (None where unreadable)."""
    cpus: dict[str, dict[str, Any]] = {}
    for cpu in natural_sorted(list((root / CPU_DIR).glob("cpu[0-9]*"))):
        cpufreq = cpu / "cpufreq"
        if not cpufreq.is_dir():
            continue
        cpus[cpu.name] = {
            "governor": read_optional(cpufreq / "scaling_governor"),
            "cur_mhz": _mhz(cpufreq / "scaling_cur_freq"),
            "min_mhz": _mhz(cpufreq / "scaling_min_freq"),
            "max_mhz": _mhz(cpufreq / "scaling_max_freq"),
        }
    return cpus


def read_thermal(root: Path) -> list[dict[str, Any]]:
    """Every thermal zone's type and temperature in degrees C."""
    zones = []
    for zone in natural_sorted(list((root / THERMAL_DIR).glob("thermal_zone*"))):
        millidegrees = read_optional(zone / "temp")
        try:
            celsius = float(millidegrees) / MILLIDEGREES if millidegrees else None
        except ValueError:
            celsius = None
        zones.append({"zone": zone.name, "type": read_optional(zone / "type"), "celsius": celsius})
    return zones


def decode_throttled(value: int) -> dict[str, Any]:
    """Split the get_throttled bit mask into named flags, now and since boot."""
    return {
        "raw": hex(value),
        "now": {name: bool(value >> bit & 1) for bit, name in THROTTLE_FLAGS.items()},
        "since_boot": {name: bool(value >> (bit + SINCE_BOOT_SHIFT) & 1) for bit, name in THROTTLE_FLAGS.items()},
    }


def read_throttling(vcgencmd: str | None) -> dict[str, Any] | None:
    """Raspberry Pi firmware throttling flags; None without vcgencmd, {"error"} when it fails."""
    if vcgencmd is None:
        return None
    try:
        done = subprocess.run(
            [vcgencmd, "get_throttled"], capture_output=True, text=True, timeout=VCGENCMD_TIMEOUT_S, check=True
        )
        return decode_throttled(int(done.stdout.strip().split("=", 1)[1], 16))
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
        return {"error": f"vcgencmd get_throttled failed: {one_line(exc)}"}


def read_load(root: Path) -> list[float] | None:
    """1, 5 and 15 minute load averages (/proc/loadavg): other work competing for the CPU; None if unreadable."""
    text = read_optional(root / LOADAVG)
    try:
        return [float(value) for value in text.split()[:3]] if text else None
    except ValueError:
        return None


def read_device_state(root: Path) -> dict[str, Any]:
    return {
        "load": read_load(root),
        "cpus": read_cpus(root),
        "thermal": read_thermal(root),
        "throttling": read_throttling(shutil.which("vcgencmd")),
    }


def throttle_events(before: dict[str, Any], after: dict[str, Any]) -> list[str] | None:
    """Flags active at either end, or first raised (since boot) during the run; None if unknown."""
    start, end = before.get("throttling"), after.get("throttling")
    if not start or not end or "error" in start or "error" in end:
        return None
    events = {name for state in (start, end) for name, active in state["now"].items() if active}
    events.update(name for name, seen in end["since_boot"].items() if seen and not start["since_boot"][name])
    return sorted(events)
