"""Turn a device agent's benchmark JSON into one database row, refusing documents that lack what we compare.

Raw samples are stored as packed little-endian float64 arrays: 50-1000 numbers per result
stay one small blob instead of thousands of rows, and they round-trip exactly.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from device_agents.edge_agent.document_schema import LATENCY_FIELDS, SchemaError, check_benchmark_document, field_value
from pipeline.errors import UserError

SAMPLE_DTYPE = "<f8"
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


def _bad(source: str, problem: str) -> UserError:
    return UserError(f"benchmark result {source}: {problem}; {FIX_HINT}")


def _number(document: Mapping[str, Any], path: str) -> float | None:
    value = field_value(document, path)
    return None if value is None else float(value)


def _integer(document: Mapping[str, Any], path: str) -> int | None:
    value = field_value(document, path)
    return None if value is None else int(value)


def _host_text(document: Mapping[str, Any], path: str, source: str) -> str | None:
    """A field the host adds (not in the agent's schema), still checked: the store API takes any mapping."""
    value = field_value(document, path)
    if value is not None and not (isinstance(value, str) and value and "\x00" not in value):
        raise _bad(source, f"field '{path}' must be a non-empty string without NUL characters")
    return value


def _throttled(document: Mapping[str, Any]) -> int | None:
    """1/0 from state.throttled; None when the agent could not tell (never guessed)."""
    value = field_value(document, "state.throttled")
    return None if value is None else int(value)


def _without_samples(document: Mapping[str, Any]) -> str:
    """The whole document as JSON minus the arrays kept as blobs, so nothing else is lost."""
    rest = {k: v for k, v in document.items() if k != "latency_samples_ms"}
    if isinstance(rest.get("energy"), Mapping):
        rest["energy"] = {k: v for k, v in rest["energy"].items() if k != "per_window_mj"}
    return json.dumps(rest, sort_keys=True, default=str)


def benchmark_row(document: Mapping[str, Any], source: str = "") -> dict[str, Any]:
    """Columns of the `benchmarks` table (less ids and times) taken from one agent document, after checking
    it against the agent's schema; the latency summary stored is the host's own, from the raw samples."""
    try:
        summary = check_benchmark_document(document)
    except SchemaError as error:
        raise _bad(source, str(error)) from None
    name = document["runtime"]["name"]
    delegate = field_value(document, "delegate")
    row: dict[str, Any] = {
        "runtime": runtime_label(name, delegate),
        "runtime_name": name,
        "runtime_version": field_value(document, "runtime.version"),
        "delegate": delegate,
        "threads": _integer(document, "threads"),
        "model_sha256": document["model"]["sha256"],
        "model_bytes": _integer(document, "model.bytes"),
        "warmup_runs": _integer(document, "warmup_runs"),
        "invokes": _integer(document, "runs"),
        "init_ms": _number(document, "init_ms"),
        "first_inference_ms": _number(document, "first_inference_ms"),
        "throughput_ips": summary["throughput_ips"],
        "peak_rss_mb": _number(document, "peak_rss_mb"),
        "accuracy": _number(document, "accuracy.value"),
        "accuracy_count": _integer(document, "accuracy.count"),
        "output_max_diff": _number(document, "output_max_diff"),
        "energy_meter": field_value(document, "energy.meter"),
        "throttled": _throttled(document),
        "started_at": field_value(document, "started_at"),
        "agent_version": field_value(document, "agent_version"),
        "schema_version": int(document["schema_version"]),
        "latency_samples": pack_samples(document["latency_samples_ms"]),
        "energy_windows_mj": pack_samples(field_value(document, "energy.per_window_mj")),
        "document_json": _without_samples(document),
        "reported_device": _host_text(document, "reported_device", source) or field_value(document, "device"),
        "mismatch": _host_text(document, "mismatch", source),
    }
    for field in LATENCY_FIELDS:
        row[f"latency_{field}_ms"] = summary["latency_ms"][field]
    for field, column in ENERGY_FIELDS.items():
        row[column] = _number(document, f"energy.{field}")
    return row


def board_fields(document: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(hostname, arch) the board reported: evidence stored beside the result. Its name for itself
    is never used as the device's identity (the inventory name is)."""
    return field_value(document, "hostname"), field_value(document, "arch")
