"""What a sweep report says, read back from the results store: the one model every publisher renders.

Built from the store (not from the job's memory), so the report shows exactly what was recorded: the
variants with the numbers their runs' manifests gave (registry description, parameters, MACs, top-1 on
the whole test set, bytes), every device result, and the per-method stage evidence kept in the run's metrics.
Ratios and Pareto fronts are computed here from those measured numbers, never configured.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from pipeline.core.variants import VARIANT_NAMES, variant
from pipeline.errors import UserError
from pipeline.nightly.report import RUN_FIELDS, Failure
from pipeline.results import ResultsStore
from pipeline.results.pareto import pareto_front
from pipeline.results.store import COMPLETE, FAILED, RUNNING

SWEEP_SCHEMA_VERSION = 1
RUN_KIND = "sweep"


@dataclass(frozen=True)
class VariantRow:
    """One variant's own numbers, as its pipeline run's manifest recorded them."""

    name: str
    description: str  # how it was made (the variant registry's sentence)
    run: str  # the pipeline run that made it
    params: int | None
    macs: int | None
    accuracy: float | None  # top-1 on the whole test set (int8 through LiteRT for int8 variants)
    bytes: int | None
    gzip_bytes: int | None


@dataclass(frozen=True)
class Measurement:
    """One variant on one device through the agent."""

    device: str
    variant: str
    median_ms: float | None
    p99_ms: float | None
    energy_mj: float | None  # per inference; None: the device has no energy meter
    runtime: str | None
    threads: int | None
    mismatch: bool = False  # contradicts the host's reference: shown marked, never a speed-up or on a front


@dataclass(frozen=True)
class Interleaved:
    """A variant against the baseline in one agent process, alternating rounds: drift hits both alike, so the
    speed-up is the median of the per-round ratios (baseline median / variant median), with its interval."""

    device: str
    variant: str
    rounds: int
    speedup: float
    low: float  # distribution-free interval of the median ratio (ab_test), coverage >= 98 %
    high: float


@dataclass(frozen=True)
class RunEvidence:
    """The compression stages one pipeline run recorded: stage -> its metrics (see evidence.py)."""

    run: str
    variant: str
    stages: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class SweepReport:
    sweep: dict[str, Any]  # the store's run: id, name, status, started_at, git_commit, config_path, host
    baseline: str
    devices: list[str]
    variants: list[VariantRow]
    measurements: list[Measurement]
    evidence: list[RunEvidence] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    interleaved: list[Interleaved] = field(default_factory=list)

    def row(self, name: str) -> VariantRow | None:
        return next((v for v in self.variants if v.name == name), None)

    def measurement(self, device: str, name: str) -> Measurement | None:
        return next((m for m in self.measurements if m.device == device and m.variant == name), None)

    def interleaved_speedup(self, device: str, name: str) -> Interleaved | None:
        return next((i for i in self.interleaved if i.device == device and i.variant == name), None)

    def speedup(self, device: str, name: str) -> float | None:
        """Baseline median latency / this variant's, both measured in this sweep on `device` (> 1: faster)."""
        mine, base = self.measurement(device, name), self.measurement(device, self.baseline)
        if mine is None or base is None or mine.mismatch or base.mismatch or not mine.median_ms \
                or base.median_ms is None:
            return None
        return base.median_ms / mine.median_ms

    def size_ratio(self, name: str, key: str = "bytes") -> float | None:
        """This variant's file (or gzip, key="gzip_bytes") size / the baseline's (< 1: smaller)."""
        mine, base = self.row(name), self.row(self.baseline)
        if mine is None or base is None or getattr(mine, key) is None or not getattr(base, key):
            return None
        return getattr(mine, key) / getattr(base, key)

    def latency_front(self, device: str) -> list[str]:
        """Variants no other beats in both top-1 and median latency on `device`."""
        points = {}
        for v in self.variants:
            measured = self.measurement(device, v.name)
            points[v.name] = (v.accuracy, None if measured is None or measured.mismatch else measured.median_ms)
        return pareto_front(points)

    def size_front(self) -> list[str]:
        """Variants no other beats in both top-1 and gzip size."""
        return pareto_front({v.name: (v.accuracy, v.gzip_bytes) for v in self.variants})

    def fronts(self, name: str) -> list[str]:
        """Which Pareto fronts `name` is on: '<device> latency' per device, and 'gzip size'."""
        on = [f"{device} latency" for device in self.devices if name in self.latency_front(device)]
        return on + (["gzip size"] if name in self.size_front() else [])

    def to_json(self) -> dict[str, Any]:
        """Everything in the report with the derived numbers (ratios, fronts) beside the measured ones."""
        derived = {v.name: {"size_ratio": self.size_ratio(v.name),
                            "gzip_ratio": self.size_ratio(v.name, "gzip_bytes"),
                            "speedup": {d: self.speedup(d, v.name) for d in self.devices},
                            "pareto": self.fronts(v.name)} for v in self.variants}
        fronts = {"latency": {d: self.latency_front(d) for d in self.devices}, "gzip_size": self.size_front()}
        return {"schema_version": SWEEP_SCHEMA_VERSION, **dataclasses.asdict(self), "against_baseline": derived,
                "pareto_fronts": fronts}


def _measurement(row: dict[str, Any]) -> Measurement:
    return Measurement(row["device"], row["variant"], row["latency_median_ms"], row["latency_p99_ms"],
                       row["energy_mj_per_inference"], row["runtime"], row["threads"], row["mismatch"] is not None)


def _variant_row(row: dict[str, Any], runs: dict[str, str]) -> VariantRow:
    metrics = json.loads(row["metrics_json"] or "{}")
    return VariantRow(name=row["name"], description=variant(row["name"]).description, run=runs.get(row["name"], ""),
                      params=metrics.get("params"), macs=metrics.get("macs"), accuracy=metrics.get("accuracy"),
                      bytes=row["bytes"], gzip_bytes=row["gzip_bytes"])


def build_sweep_report(store: ResultsStore, run_id: int, *, devices: list[str], failures: list[Failure] | None = None,
                       interleaved: list[Interleaved] | None = None) -> SweepReport:
    """The report of one sweep from what the store holds for it."""
    run = store.run(run_id)
    if run is None:
        raise UserError(f"sweep run {run_id} does not exist in {store.db.url}")
    summary = json.loads(run["metrics_json"] or "{}")
    runs = summary.get("variant_runs", {})
    order = list(VARIANT_NAMES)  # registry order: float first, then int8 by how much was done to it
    variants = sorted(store.variants(run_id), key=lambda v: order.index(v["name"]))
    measurements = [_measurement(r) for r in store.results(run_id=run_id, statuses=(COMPLETE, RUNNING, FAILED))]
    evidence = [RunEvidence(e["run"], e["variant"], e["stages"]) for e in summary.get("evidence", [])]
    return SweepReport(sweep={key: run[key] for key in RUN_FIELDS}, baseline=summary.get("baseline", ""),
                       devices=list(devices), variants=[_variant_row(v, runs) for v in variants],
                       measurements=measurements, evidence=evidence, failures=list(failures or []),
                       interleaved=list(interleaved or []))
