"""Plain-text table of stored results, for the terminal."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pipeline.core.marks import MISMATCH
from pipeline.core.safe_text import table_cell
from pipeline.results.db import Row


def _number(digits: int) -> Callable[[Any], str]:
    return lambda value: "-" if value is None else f"{value:.{digits}f}"


def _check(value: Any) -> str:
    """A result that contradicts the host's reference is marked: it is evidence, not a measurement."""
    return "ok" if value is None else MISMATCH


def _throttled(value: Any) -> str:
    return "?" if value is None else "yes" if value else "no"


# (header, row key, formatter, right-aligned)
COLUMNS: tuple[tuple[str, str, Callable[[Any], str], bool], ...] = (
    ("run", "run_id", str, True),
    ("name", "run", table_cell, False),
    ("started (UTC)", "run_started_at", lambda value: table_cell(value[:16].replace("T", " ")), False),
    ("status", "status", table_cell, False),
    ("device", "device", table_cell, False),
    ("variant", "variant", table_cell, False),
    ("runtime", "runtime", table_cell, False),
    ("median ms", "latency_median_ms", _number(3), True),
    ("p90 ms", "latency_p90_ms", _number(3), True),
    ("inf/s", "throughput_ips", _number(1), True),
    ("accuracy", "accuracy", _number(4), True),
    ("mJ/inf", "energy_mj_per_inference", _number(3), True),
    ("throttled", "throttled", _throttled, True),
    ("check", "mismatch", _check, False),
)


def format_results(rows: Sequence[Row]) -> str:
    """Aligned columns, numbers right-aligned, '-' for a value that was not measured."""
    cells = [[header for header, _, _, _ in COLUMNS]]
    cells += [[format_value(row[key]) for _, key, format_value, _ in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    numeric = [right for _, _, _, right in COLUMNS]
    lines = []
    for line in cells:
        lines.append("  ".join(cell.rjust(width) if right else cell.ljust(width)
                               for cell, width, right in zip(line, widths, numeric, strict=True)).rstrip())
    return "\n".join(lines)
