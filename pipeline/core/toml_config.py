"""TOML config files: reading (with `extends`), typed sections and range checks.

Every config of the project (pipeline, nightly, device inventory) is read here, so a missing
file, bad TOML, an unknown key or a wrong type gets the same one-line error everywhere.
"""
from __future__ import annotations

import dataclasses
import math
import tomllib
import typing
from pathlib import Path
from typing import Any

from pipeline.errors import UserError


def check_type(value: Any, expected: type, where: str) -> Any:
    """`value` as `expected`; floats must be finite (TOML has nan and inf, and no setting means them)."""
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is int and isinstance(value, bool) or not isinstance(value, expected):
        name = getattr(expected, "__name__", None) or " or ".join(kind.__name__ for kind in typing.get_args(expected))
        raise UserError(f"{where} must be {name}, got {type(value).__name__} {value!r}")
    check_finite(value, where)
    return value


def check_finite(value: Any, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{where} = {value!r} must be a finite number")


def section_from_dict(cls: type, data: dict[str, Any], where: str) -> Any:
    """Build dataclass `cls` from a TOML table, refusing unknown keys and wrong types."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UserError(f"{where}: unknown key '{unknown[0]}' (valid keys: {', '.join(sorted(known))})")
    values = {key: check_type(value, hints[key], f"{where}.{key}") for key, value in data.items()}
    return cls(**values)


def check_strings(values: list, where: str) -> None:
    """A non-empty list of distinct, non-empty strings (names of devices or variants, file names)."""
    if not values:
        raise UserError(f"{where} must list at least one name")
    for index, value in enumerate(values):
        if not isinstance(value, str) or not value:
            raise UserError(f"{where}[{index}] must be a non-empty str, got {type(value).__name__} {value!r}")
    if len(set(values)) != len(values):
        raise UserError(f"{where} lists a name twice: {values}")


def choice(value: str, choices: tuple[str, ...], where: str) -> None:
    if value not in choices:
        raise UserError(f"{where} = {value!r} is not valid; choose one of: {', '.join(choices)}")


def in_range(value: float, low: float, high: float, where: str, *, low_open: bool, high_open: bool) -> None:
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise UserError(f"{where} = {value!r} is outside {interval}")


def parse_toml_file(path: Path, what: str, example: str) -> dict[str, Any]:
    """One TOML file as a table; a missing, unreadable, non-UTF-8 or malformed file is one line."""
    try:
        return tomllib.loads(path.read_bytes().decode("utf-8"))
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise UserError(f"{what} {path} does not exist (try {example})") from None
    except OSError as error:
        raise UserError(f"cannot read {what} {path}: {error.strerror}; check its permissions") from None
    except UnicodeDecodeError as error:
        raise UserError(f"{path}: not UTF-8 text (byte {error.start}); save it as UTF-8 TOML") from None
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"{path}: not valid TOML: {error}") from None


def read_toml(path: Path, what: str = "config file", example: str = "configs/demo.toml",
              seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A TOML table, with `extends = "other.toml"` merged underneath it section by section."""
    raw = parse_toml_file(path, what, example)
    base_name = raw.pop("extends", None)
    if base_name is None:
        return raw
    if not isinstance(base_name, str):
        raise UserError(f"{path}: extends must be a file name (str), got {base_name!r}")
    base_path = (path.parent / base_name).resolve()
    if base_path in seen:
        raise UserError(f"{path}: extends {base_name} makes a cycle")
    merged = read_toml(base_path, what, example, (*seen, path.resolve()))
    for name, table in raw.items():
        if isinstance(table, dict) != isinstance(merged.get(name, table), dict):
            raise UserError(f"{path}: '{name}' is a {_kind(table)} here but a {_kind(merged[name])} in {base_name}; "
                            f"make both [{name}] tables (or both plain values)")
        merged[name] = {**merged.get(name, {}), **table} if isinstance(table, dict) else table
    return merged


def _kind(value: Any) -> str:
    return "table" if isinstance(value, dict) else "value"
