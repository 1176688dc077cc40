"""Reading sysfs-style files (one value per file) under a configurable root."""
from __future__ import annotations

import re
from pathlib import Path

from .errors import AgentError, one_line

DIGITS = re.compile(r"(\d+)")


def natural_sorted(paths: list[Path]) -> list[Path]:
    """hwmon2 before hwmon10, cpu9 before cpu10."""
    return sorted(paths, key=lambda path: [int(part) if part.isdigit() else part for part in DIGITS.split(path.name)])


def read_optional(path: Path) -> str | None:
    """The stripped file content, or None when it does not exist or cannot be read."""
    try:
        return path.read_text().strip()
    except OSError:
        return None


def read_number(path: Path, fix: str) -> float:
    """A numeric sysfs value; unreadable or non-numeric is an AgentError ending with `fix`."""
    try:
        return float(path.read_text().split()[0])
    except (OSError, ValueError, IndexError) as exc:
        raise AgentError(f"cannot read a number from {path} ({one_line(exc)}): {fix}") from exc
