"""Benchmark results on the host: one JSON file per device and run, and a readable table."""
from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.core.artifacts import write_json
from pipeline.core.marks import MISMATCH
from pipeline.core.safe_text import one_line, table_cell
from pipeline.devices.group import GroupResult, failure_reason

BENCH_DIR = "bench"
MISSING = "-"  # a value the agent did not measure (e.g. energy without a meter)


def result_path(build_dir: Path, run: str, device: str, when: datetime) -> Path:
    """`build/<run>/bench/<device>-<UTC timestamp>.json` (microseconds keep quick reruns apart)."""
    stamp = when.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return build_dir / run / BENCH_DIR / f"{device}-{stamp}.json"


def save_result(document: dict[str, Any], build_dir: Path, device: str) -> Path:
    """Write one device's document atomically; returns where."""
    path = result_path(build_dir, document["run"], device, datetime.now(UTC))
    write_json(path, document)
    return path


def save_or_keep(document: dict[str, Any], build_dir: Path, device: str) -> tuple[Path | None, str | None]:
    """`save_result`, and when that fails (read-only or full folder) a copy in the temporary folder:
    (where it is, None) or (the copy or None, the one-line reason the save failed)."""
    try:
        return save_result(document, build_dir, device), None
    except OSError as error:
        reason = f"device {device}: could not save the result under {build_dir}: {error.strerror or error}"
    try:
        with tempfile.NamedTemporaryFile("w", prefix=f"edge-bench-{device}-", suffix=".json", delete=False) as copy:
            kept = Path(copy.name)
        write_json(kept, document)
    except OSError:
        return None, f"{reason}; no copy could be written either (the result is printed above)"
    return kept, f"{reason}; kept it at {kept}"


def _field(document: dict[str, Any], *keys: str) -> Any:
    value: Any = document
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _number(digits: int) -> Callable[[Any], str]:
    return lambda value: f"{value:.{digits}f}"


# header -> (path in the document, formatter of a present value)
COLUMNS: dict[str, tuple[tuple[str, ...], Callable[[Any], str]]] = {
    "device": (("device",), table_cell),
    "runtime": (("runtime", "name"), table_cell),
    "delegate": (("delegate",), table_cell),
    "threads": (("threads",), table_cell),
    "median ms": (("latency_ms", "median"), _number(3)),
    "p90 ms": (("latency_ms", "p90"), _number(3)),
    "inf/s": (("throughput_ips",), _number(1)),
    "accuracy": (("accuracy", "value"), _number(4)),
    "out diff": (("output_max_diff",), "{:g}".format),
    "mJ/inf": (("energy", "mj_per_inference"), _number(3)),
    "peak RSS MB": (("peak_rss_mb",), _number(1)),
    "bytes sent": (("bytes_sent",), "{:,}".format),
    "throttled": (("state", "throttled"), lambda value: "yes" if value else "no"),
    "check": (("mismatch",), lambda value: MISMATCH),
}
NO_MISMATCH = "ok"  # the check cell of a result that agrees with the host
LEFT_ALIGNED = 3  # the first columns hold names, the rest numbers


def _cell(document: dict[str, Any], path: tuple[str, ...], formatter: Callable[[Any], str]) -> str:
    value = _field(document, *path)
    if value is None:
        return NO_MISMATCH if path == ("mismatch",) else MISSING
    return formatter(value)


def _class_lines(documents: list[dict[str, Any]]) -> list[str]:
    """One `classes:` line per distinct list of class names (the model's labels, from its samples file)."""
    names = {tuple(document["class_names"]) for document in documents if document.get("class_names")}
    return [f"classes: {', '.join(f'{index}={name}' for index, name in enumerate(group))}" for group in sorted(names)]


def format_table(documents: list[dict[str, Any]]) -> str:
    """Aligned text table, one row per device document, then the class names when the model has them."""
    rows = [list(COLUMNS)] + [[_cell(document, *column) for column in COLUMNS.values()] for document in documents]
    widths = [max(len(row[index]) for row in rows) for index in range(len(COLUMNS))]
    return "\n".join([
        "  ".join(cell.ljust(width) if index < LEFT_ALIGNED else cell.rjust(width)
                  for index, (cell, width) in enumerate(zip(row, widths, strict=True))).rstrip()
        for row in rows] + _class_lines(documents))


def print_failures(results: GroupResult) -> int:
    """One stderr line per failed device; the exit code (1 if any failed)."""
    sys.stdout.flush()  # the table first, then the failures, also when both go to one terminal
    for name, error in results.failed.items():
        print(f"error: {one_line(failure_reason(name, error))}", file=sys.stderr)
    return 1 if results.failed else 0


def print_mismatches(documents: dict[str, dict[str, Any]]) -> int:
    """One stderr line per result that contradicts the host; the exit code (1 if any did)."""
    mismatched = {name: document["mismatch"] for name, document in documents.items() if document.get("mismatch")}
    for name, reason in mismatched.items():
        print(f"error: device {name}: {reason}", file=sys.stderr)
    return 1 if mismatched else 0
