"""The result document, described once: the agent writes it and the host checks every one it receives.

A board is untrusted: the host imports this module (it ships in the agent bundle, so both sides
read the same description) and refuses a document whose fields have the wrong type, whose numbers
are not finite or out of range, whose schema is newer than the host's, or whose summary disagrees
with its own raw samples. Stdlib + numpy only, Python 3.9 syntax.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from . import SCHEMA_VERSION
from .stats import DECIMALS, summarize_latencies

# Kinds of values: what each accepts, and how a refusal describes what was expected.
TEXT, COUNT, NON_NEGATIVE_INT, POSITIVE, NON_NEGATIVE, FINITE, FRACTION, FLAG = (
    "text", "count", "non_negative_int", "positive", "non_negative", "finite", "fraction", "flag")
EXPECTED = {
    TEXT: "a non-empty string without NUL characters",
    COUNT: "an integer >= 1",
    NON_NEGATIVE_INT: "an integer >= 0",
    POSITIVE: "a finite number > 0",
    NON_NEGATIVE: "a finite number >= 0",
    FINITE: "a finite number",
    FRACTION: "a finite number between 0 and 1",
    FLAG: "true, false or null",
}
LATENCY_FIELDS = ("mean", "median", "p90", "p99", "min", "max", "std")

# path -> (kind, required) of a benchmark document; a list field gives the kind of every entry.
BENCHMARK_FIELDS: dict[str, tuple[str, bool]] = {
    "device": (TEXT, False), "hostname": (TEXT, False), "arch": (TEXT, False), "python": (TEXT, False),
    "runtime.name": (TEXT, True), "runtime.version": (TEXT, False), "delegate": (TEXT, False),
    "threads": (COUNT, False), "model.sha256": (TEXT, True), "model.bytes": (COUNT, False),
    "warmup_runs": (NON_NEGATIVE_INT, False), "runs": (COUNT, True), "init_ms": (NON_NEGATIVE, False),
    "first_inference_ms": (POSITIVE, False),
    **{f"latency_ms.{name}": (NON_NEGATIVE if name == "std" else POSITIVE, True) for name in LATENCY_FIELDS},
    "latency_samples_ms": (POSITIVE, True), "timed_wall_s": (POSITIVE, True), "throughput_ips": (POSITIVE, True),
    "peak_rss_mb": (NON_NEGATIVE, False), "accuracy.value": (FRACTION, False),
    "accuracy.count": (NON_NEGATIVE_INT, False), "top1_agreement": (FRACTION, False),
    "output_max_diff": (NON_NEGATIVE, False), "energy.meter": (TEXT, False),
    "energy.idle_w": (NON_NEGATIVE, False), "energy.avg_w": (NON_NEGATIVE, False),
    "energy.mj_per_inference": (NON_NEGATIVE, False), "energy.mj_per_inference_above_idle": (FINITE, False),
    "energy.per_window_mj": (FINITE, False), "state.throttled": (FLAG, False),
    "started_at": (TEXT, False), "agent_version": (TEXT, False),
}
LIST_FIELDS = ("latency_samples_ms", "energy.per_window_mj")
OBJECT_FIELDS = ("runtime", "model", "latency_ms", "accuracy", "energy", "state")  # when present: objects
AB_FIELDS: dict[str, tuple[str, bool]] = {
    "runtime.name": (TEXT, True), "ab.rounds": (COUNT, True),
    "ab.a.model.sha256": (TEXT, True), "ab.b.model.sha256": (TEXT, True),
}
# Rounding allowed between a board's summary and the host's recomputation: the agent rounds to
# DECIMALS of a ms; anything beyond is not rounding.
SUMMARY_ABS_TOLERANCE = 10.0 ** -DECIMALS
SUMMARY_REL_TOLERANCE = 1e-9


class SchemaError(ValueError):
    """One field of a document breaks the schema: `field` is its dotted path."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"field '{field}' {problem}")
        self.field, self.problem = field, problem


def field_value(document: Any, path: str) -> Any:
    """The value at a dotted path, None when any step is missing or not an object."""
    value = document
    for key in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _accepts(kind: str, value: Any) -> bool:
    if kind == FLAG:
        return isinstance(value, bool)
    if kind == TEXT:
        return isinstance(value, str) and bool(value) and "\x00" not in value  # PostgreSQL text cannot hold NUL
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    if kind in (COUNT, NON_NEGATIVE_INT):
        return float(value).is_integer() and value >= (1 if kind == COUNT else 0)
    return {POSITIVE: value > 0, NON_NEGATIVE: value >= 0, FRACTION: 0 <= value <= 1}.get(kind, True)


def _check_field(document: Mapping[str, Any], path: str, kind: str, required: bool) -> None:
    value = field_value(document, path)
    expected = f"a non-empty list, each entry {EXPECTED[kind]}" if path in LIST_FIELDS else EXPECTED[kind]
    if value is None:
        if required:
            raise SchemaError(path, f"is missing: it must be {expected}")
        return
    if path in LIST_FIELDS:
        if not isinstance(value, list) or not value or not all(_accepts(kind, entry) for entry in value):
            raise SchemaError(path, f"must be {expected}")
    elif not _accepts(kind, value):
        raise SchemaError(path, f"must be {expected}, got {_shown(value)}")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_schema_version(document: Mapping[str, Any]) -> None:
    """A known schema_version: a newer one means this host cannot read the board's agent."""
    version: Any = document.get("schema_version")
    if not _accepts(COUNT, version):
        raise SchemaError("schema_version", f"must be {SCHEMA_VERSION}, got {_shown(version)}")
    if version > SCHEMA_VERSION:
        raise SchemaError("schema_version", f"is {version}, newer than this host's {SCHEMA_VERSION}: update the host")
    if version != SCHEMA_VERSION:
        raise SchemaError("schema_version", f"is {version}, older than this host's {SCHEMA_VERSION}: "
                                            "re-run the benchmark with the current device agent")


def _check_types(document: Any, fields: Mapping[str, tuple[str, bool]]) -> None:
    if not isinstance(document, Mapping):
        raise SchemaError("(document)", "must be a JSON object")
    check_schema_version(document)
    for name in OBJECT_FIELDS:
        if document.get(name) is not None and not isinstance(document[name], Mapping):
            raise SchemaError(name, f"must be an object, got {_shown(document[name])}")
    for path, (kind, required) in fields.items():
        _check_field(document, path, kind, required)


def _close(reported: float, computed: float) -> bool:
    return abs(reported - computed) <= SUMMARY_ABS_TOLERANCE + SUMMARY_REL_TOLERANCE * abs(computed)


def host_summary(document: Mapping[str, Any]) -> dict[str, Any]:
    """latency_ms and throughput_ips recomputed from the document's own samples and timed wall time."""
    samples = document["latency_samples_ms"]
    return {"latency_ms": summarize_latencies(samples), "throughput_ips": len(samples) / document["timed_wall_s"]}


def check_summary(document: Mapping[str, Any]) -> dict[str, Any]:
    """The host's own summary, after checking that the board's agrees with it beyond rounding."""
    samples = document["latency_samples_ms"]
    if document["runs"] != len(samples):
        raise SchemaError("runs", f"is {document['runs']} but latency_samples_ms holds {len(samples)} samples")
    if document["timed_wall_s"] * 1000.0 < sum(samples) - SUMMARY_ABS_TOLERANCE * len(samples):
        raise SchemaError("timed_wall_s", f"is {document['timed_wall_s']:g} s, shorter than its own samples add up to")
    summary = host_summary(document)
    for name, computed in summary["latency_ms"].items():
        reported = document["latency_ms"][name]
        if not _close(reported, computed):
            raise SchemaError(f"latency_ms.{name}", f"is {reported:g} but its own latency_samples_ms give "
                                                    f"{computed:g}: the summary does not match the samples")
    if not math.isclose(document["throughput_ips"], summary["throughput_ips"], rel_tol=1e-6):
        raise SchemaError("throughput_ips", f"is {document['throughput_ips']:g} but runs / timed_wall_s give "
                                            f"{summary['throughput_ips']:g}")
    return summary


def check_benchmark_document(document: Any) -> dict[str, Any]:
    """Check a benchmark document against the schema; returns the host's own latency summary and throughput."""
    _check_types(document, BENCHMARK_FIELDS)
    return check_summary(document)


def _check_rounds(document: Mapping[str, Any], side: str, rounds: int) -> None:
    path = f"ab.{side}.round_samples_ms"
    value = field_value(document, path)
    if not isinstance(value, list) or len(value) != rounds or not all(
            isinstance(samples, list) and samples and all(_accepts(POSITIVE, v) for v in samples) for samples in value):
        raise SchemaError(path, f"must hold ab.rounds = {rounds} non-empty lists of finite numbers > 0")
    energy = field_value(document, f"ab.{side}.round_energy_mj")
    if energy is not None and not (isinstance(energy, list) and len(energy) == rounds
                                   and all(_accepts(FINITE, v) for v in energy)):
        raise SchemaError(f"ab.{side}.round_energy_mj", f"must be null or ab.rounds = {rounds} finite numbers")


def check_ab_document(document: Any) -> None:
    """Check an A/B document (--baseline-model) against the schema."""
    _check_types(document, AB_FIELDS)
    for side in ("a", "b"):
        _check_rounds(document, side, document["ab"]["rounds"])

