"""Turn a device agent's benchmark JSON into one database row, refusing documents that lack what we compare.

Raw samples are stored as packed little-endian float64 arrays: 50-1000 numbers per result
stay one small blob instead of thousands of rows, and they round-trip exactly.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pipeline.errors import UserError

SAMPLE_DTYPE = "<f8"
LATENCY_FIELDS = ("mean", "median", "p90", "p99", "min", "max", "std")
ENERGY_FIELDS = {"mj_per_inference": "energy_mj_per_inference", "mj_per_inference_above_idle": "energy_mj_above_idle",
                 "avg_w": "energy_avg_w", "idle_w": "energy_idle_w"}
FIX_HINT = "re-run the benchmark with the current device agent or fix the JSON"


def pack_samples(samples: Sequence[float] | None) -> bytes | None:
    return None if samples is None else np.asarray(samples, dtype=SAMPLE_DTYPE).tobytes()


def unpack_samples(blob: bytes | memoryview | None) -> list[float] | None:
    return None if blob is None else np.frombuffer(bytes(blob), dtype=SAMPLE_DTYPE).tolist()


def runtime_label(name: str, delegate: str | None) -> str:
    """One name for what ran the model, e.g. 'litert+xnnpack': results are only compared within one label.

    Thread count is a setting, not a runtime: a night run with fewer threads is compared with the
    nights before it (and flagged if slower); the threads of each result are stored beside it."""
    return name + (f"+{delegate}" if delegate else "")


def _field(document: Mapping[str, Any], path: str) -> Any:
    value: Any = document
    for key in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _bad(source: str, path: str, expected: str) -> UserError:
    return UserError(f"benchmark result {source}: field '{path}' must be {expected}; {FIX_HINT}")


def _number(document: Mapping[str, Any], path: str, source: str, required: bool = False) -> float | None:
    value = _field(document, path)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _bad(source, path, "a finite number")
    return float(value)


def _required_text(document: Mapping[str, Any], path: str, source: str) -> str:
    value = _field(document, path)
    if not isinstance(value, str) or not value or "\x00" in value:  # PostgreSQL text cannot hold NUL: refuse on both
        raise _bad(source, path, "a non-empty string without NUL characters")
    return value


def _text(document: Mapping[str, Any], path: str, source: str) -> str | None:
    return None if _field(document, path) is None else _required_text(document, path, source)


def _integer(document: Mapping[str, Any], path: str, source: str) -> int | None:
    value = _number(document, path, source)
    if value is not None and not value.is_integer():
        raise _bad(source, path, "an integer")
    return None if value is None else int(value)


def _samples(document: Mapping[str, Any], path: str, source: str, required: bool) -> list[float] | None:
    values = _field(document, path)
    if values is None and not required:
        return None
    ok = isinstance(values, list) and values and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)
    if not ok:
        raise _bad(source, path, "a non-empty list of finite numbers")
    return [float(v) for v in values]


def _throttled(document: Mapping[str, Any], source: str) -> int | None:
    """1/0 from state.throttled; None when the agent could not tell (never guessed)."""
    value = _field(document, "state.throttled")
    if value is None:
        return None
    if isinstance(value, bool) or value in (0, 1):
        return int(value)
    raise _bad(source, "state.throttled", "true, false or null")


def _without_samples(document: Mapping[str, Any]) -> str:
    """The whole document as JSON minus the arrays kept as blobs, so nothing else is lost."""
    rest = {k: v for k, v in document.items() if k != "latency_samples_ms"}
    if isinstance(rest.get("energy"), Mapping):
        rest["energy"] = {k: v for k, v in rest["energy"].items() if k != "per_window_mj"}
    return json.dumps(rest, sort_keys=True, default=str)


def benchmark_row(document: Mapping[str, Any], source: str = "") -> dict[str, Any]:
    """Columns of the `benchmarks` table (less ids and times) taken from one agent document."""
    if not isinstance(document, Mapping):
        raise UserError(f"benchmark result {source}: expected a JSON object; {FIX_HINT}")
    name = _required_text(document, "runtime.name", source)
    delegate = _text(document, "delegate", source)
    threads = _integer(document, "threads", source)
    row: dict[str, Any] = {
        "runtime": runtime_label(name, delegate),
        "runtime_name": name,
        "runtime_version": _text(document, "runtime.version", source),
        "delegate": delegate,
        "threads": threads,
        "model_sha256": _required_text(document, "model.sha256", source),
        "model_bytes": _integer(document, "model.bytes", source),
        "warmup_runs": _integer(document, "warmup_runs", source),
        "invokes": _integer(document, "runs", source),
        "init_ms": _number(document, "init_ms", source),
        "first_inference_ms": _number(document, "first_inference_ms", source),
        "throughput_ips": _number(document, "throughput_ips", source),
        "peak_rss_mb": _number(document, "peak_rss_mb", source),
        "accuracy": _number(document, "accuracy.value", source),
        "accuracy_count": _integer(document, "accuracy.count", source),
        "output_max_diff": _number(document, "output_max_diff", source),
        "energy_meter": _text(document, "energy.meter", source),
        "throttled": _throttled(document, source),
        "started_at": _text(document, "started_at", source),
        "agent_version": _text(document, "agent_version", source),
        "schema_version": _integer(document, "schema_version", source),
        "latency_samples": pack_samples(_samples(document, "latency_samples_ms", source, required=True)),
        "energy_windows_mj": pack_samples(_samples(document, "energy.per_window_mj", source, required=False)),
        "document_json": _without_samples(document),
        "reported_device": _text(document, "reported_device", source),
        "mismatch": _text(document, "mismatch", source),
    }
    for field in LATENCY_FIELDS:
        row[f"latency_{field}_ms"] = _number(document, f"latency_ms.{field}", source, required=field == "median")
    for field, column in ENERGY_FIELDS.items():
        row[column] = _number(document, f"energy.{field}", source)
    return row


def board_fields(document: Mapping[str, Any], source: str = "") -> tuple[str | None, str | None]:
    """(hostname, arch) the board reported: evidence stored beside the result. Its name for itself
    is never used as the device's identity (the inventory name is)."""
    return _text(document, "hostname", source), _text(document, "arch", source)
