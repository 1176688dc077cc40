"""Device inventory: `devices.toml`, one `[devices.<name>]` table per board.

It is checked the way pipeline configs are (unknown keys and wrong types are refused with
the file and key named) before any connection opens. The `local` device is always there:
it runs the same agent in a subprocess on this machine, so a laptop needs no inventory.
"""
from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.names import check_name
from pipeline.core.toml_config import check_finite, in_range, parse_toml_file, section_from_dict
from pipeline.errors import UserError

DEFAULT_INVENTORY = "devices.toml"  # read from the current folder when it exists
INVENTORY_ENV = "DEVICES"  # another inventory file, e.g. DEVICES=lab.toml make bench
LOCAL_DEVICE = "local"
CACHE_ENV = "XDG_CACHE_HOME"  # per-user cache root (default ~/.cache): where local devices work
TRANSPORTS = ("local", "ssh")
RUNTIMES = ("auto", "ai_edge_litert", "tflite_runtime", "tensorflow")
NAMED_DELEGATES = ("xnnpack", "none", "edgetpu")  # or an absolute path to a delegate .so
ENERGY_METERS = ("none", "hwmon", "pi5-pmic", "rapl", "command")


@dataclass(frozen=True)
class DeviceProfile:
    """How to reach one board and how to benchmark on it."""

    name: str = LOCAL_DEVICE  # the table name; not a key in the file
    transport: str = "ssh"
    host: str = ""  # address, DNS name or ~/.ssh/config alias; empty = the device name
    port: int = 0  # 0 = Port from ~/.ssh/config, else 22
    user: str = ""  # empty = User from ~/.ssh/config, else the local user name
    key_file: str = ""  # empty = IdentityFile from ~/.ssh/config, then ssh-agent and ~/.ssh/id_*
    use_agent: bool = True  # offer the keys of a running ssh-agent
    ssh_config: str = "~/.ssh/config"  # skipped when the file does not exist
    known_hosts: str = ""  # empty = UserKnownHostsFile from ~/.ssh/config, else ~/.ssh/known_hosts
    trust_on_first_use: bool = False  # record an unknown host key instead of refusing it
    workdir: str = "edge-bench"  # on ssh devices relative to the login's home
    python: str = ""  # empty = python3 on ssh devices, this interpreter for local
    runtime: str = "auto"
    delegate: str = "xnnpack"
    delegate_options: dict = field(default_factory=dict)
    threads: int = 1
    runs: int = 50  # timed invokes, at least
    min_s: float = 1.0  # timed seconds, at least
    warmup_runs: int = 5
    warmup_min_s: float = 0.5
    idle_s: float = 1.0  # idle window measured by the energy meter before the timed runs
    energy_meter: str = "none"
    meter_options: dict = field(default_factory=dict)
    sysfs_root: str = ""  # empty = the agent's default (/)
    connect_timeout_s: float = 10.0
    connect_retries: int = 3  # extra attempts after refused/reset/timed-out connections only
    link_timeout_s: float = 60.0  # an SSH link silent (unacknowledged) this long counts as cut
    command_timeout_s: float = 600.0  # one benchmark on the device, killed after this
    lock_timeout_s: float = 1800.0  # waiting for another benchmark on the same device
    # A result beyond these contradicts the host and is marked mismatched (pipeline/devices/consistency.py).
    output_tolerance: float = 0.1  # largest |device output - host reference|, as a fraction of the output's full
    # scale (255 steps for int8: 25.5 steps; an honest LiteRT/tflite-runtime rounding difference measured 16)
    min_top1_agreement: float = 0.9  # least fraction of samples whose top-1 class is the host reference's
    accuracy_sigmas: float = 3.0  # on-device accuracy may be this many binomial standard errors below the host's

    def python_path(self) -> str:
        if self.python:
            return self.python
        return sys.executable if self.transport == "local" else "python3"


# Upper bounds keep a typo (or `inf`) from hanging a device for days: an hour of timed runs is plenty.
HOUR_S, WEEK_S = 3600.0, 7 * 24 * 3600.0
POSITIVE_LIMITS = {"threads": (0, 1024), "runs": (0, 10_000_000), "connect_timeout_s": (0, HOUR_S),
                   "link_timeout_s": (0, HOUR_S), "command_timeout_s": (0, WEEK_S), "lock_timeout_s": (0, WEEK_S)}
NON_NEGATIVE_LIMITS = {"connect_retries": (0, 100), "warmup_runs": (0, 10_000_000), "min_s": (0, HOUR_S),
                       "warmup_min_s": (0, HOUR_S), "idle_s": (0, HOUR_S), "output_tolerance": (0, 1),
                       "min_top1_agreement": (0, 1), "accuracy_sigmas": (0, 100)}


def _check_options(options: dict, where: str) -> None:
    for key, value in options.items():
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise UserError(f"{where}.{key} must be a string or number, got {type(value).__name__}")
        check_finite(value, f"{where}.{key}")


def validate_profile(profile: DeviceProfile, where: str) -> DeviceProfile:
    """Choice and range checks that types alone cannot express."""
    choices = {"transport": TRANSPORTS, "runtime": RUNTIMES, "energy_meter": ENERGY_METERS}
    for key, allowed in choices.items():
        if getattr(profile, key) not in allowed:
            raise UserError(f"{where}.{key} = {getattr(profile, key)!r} is not valid; "
                            f"choose one of: {', '.join(allowed)}")
    if profile.delegate not in NAMED_DELEGATES and not profile.delegate.startswith("/"):
        raise UserError(f"{where}.delegate = {profile.delegate!r} is not valid; choose one of: "
                        f"{', '.join(NAMED_DELEGATES)} or an absolute path to a delegate library")
    if profile.output_tolerance > 1:
        raise UserError(f"{where}.output_tolerance = {profile.output_tolerance:g} is out of range: it is a fraction "
                        "of the output's full scale (0.1 = 25.5 int8 steps), not a count of int8 units")
    for key, (low, high) in POSITIVE_LIMITS.items():
        in_range(getattr(profile, key), low, high, f"{where}.{key}", low_open=True, high_open=False)
    for key, (low, high) in NON_NEGATIVE_LIMITS.items():
        in_range(getattr(profile, key), low, high, f"{where}.{key}", low_open=False, high_open=False)
    if not 0 <= profile.port <= 65535:
        raise UserError(f"{where}.port = {profile.port} is not a TCP port (1-65535)")
    _check_options(profile.meter_options, f"{where}.meter_options")
    _check_options(profile.delegate_options, f"{where}.delegate_options")
    if not profile.workdir:
        raise UserError(f"{where}.workdir must not be empty")
    return profile


def local_workdir(name: str) -> str:
    """A local device's default folder: the per-user cache, never the current folder (which under
    `make` is the repository)."""
    cache = os.environ.get(CACHE_ENV) or "~/.cache"
    return str(Path(cache) / "edge-pipeline" / name)


def _profile_from_table(name: str, table: Any, where: str) -> DeviceProfile:
    check_name(name, f"{where}: device name")  # it becomes part of result file names
    if not isinstance(table, dict):
        raise UserError(f"{where} must be a table ([devices.{name}])")
    if "name" in table:
        raise UserError(f"{where}: unknown key 'name' (the device's name is its table name)")
    defaults = {"transport": "local"} if name == LOCAL_DEVICE else {}
    merged = {**defaults, **table}
    if merged.get("transport") == "local" and "workdir" not in merged:
        merged["workdir"] = local_workdir(name)
    profile = section_from_dict(DeviceProfile, merged, where)
    return validate_profile(dataclasses.replace(profile, name=name), where)


def inventory_path(explicit: str | None = None) -> Path | None:
    """The inventory to read: --devices, else $DEVICES, else ./devices.toml if present."""
    chosen = explicit or os.environ.get(INVENTORY_ENV)
    if chosen:
        path = Path(chosen)
        if not path.is_file():
            source = "--devices" if explicit else f"${INVENTORY_ENV}"
            raise UserError(f"device inventory {path} (from {source}) does not exist; "
                            f"point it at a file like {DEFAULT_INVENTORY}")
        return path
    default = Path(DEFAULT_INVENTORY)
    return default if default.is_file() else None


def load_inventory(path: Path | None) -> dict[str, DeviceProfile]:
    """The devices an inventory file declares (none without a file)."""
    devices: dict[str, DeviceProfile] = {}
    if path is None:
        return devices
    raw = parse_toml_file(path, "device inventory", DEFAULT_INVENTORY)
    unknown = sorted(set(raw) - {"devices"})
    if unknown:
        raise UserError(f"{path}: unknown key '{unknown[0]}' at top level "
                        f"(put each device in a [devices.<name>] table)")
    tables = raw.get("devices", {})
    if not isinstance(tables, dict):
        raise UserError(f"{path}: 'devices' must hold [devices.<name>] tables")
    for name, table in tables.items():
        devices[name] = _profile_from_table(name, table, f"{path}: devices.{name}")
    return devices


def select_devices(declared: dict[str, DeviceProfile], names: list[str], every: bool,
                   source: Path | None) -> list[DeviceProfile]:
    """The profiles named on the command line; `local` (embedded unless declared) when none are,
    every declared device for --all."""
    devices = {LOCAL_DEVICE: _profile_from_table(LOCAL_DEVICE, {}, "<embedded>: devices.local"), **declared}
    if every:
        return list(declared.values()) or [devices[LOCAL_DEVICE]]
    chosen = names or [LOCAL_DEVICE]
    missing = [name for name in chosen if name not in devices]
    if missing:
        where = source or "the embedded inventory"
        raise UserError(f"unknown device '{missing[0]}' (known in {where}: {', '.join(devices)}); "
                        f"add a [devices.{missing[0]}] table to {source or DEFAULT_INVENTORY}")
    return [devices[name] for name in dict.fromkeys(chosen)]
