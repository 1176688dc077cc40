"""The sweep job: train every run (cached stages reused), benchmark every variant on every device, record, report.

All variants are benchmarked in one job with the same device settings, so speed-ups against the baseline
compare measurements of one machine state. The sweep is one run of kind "sweep" in the results store, with
every variant and every result; sweeps never enter a nightly baseline (those use nightly runs only).
"""
from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.artifacts import Manifest
from pipeline.core.safe_text import one_line
from pipeline.core.variants import RunVariants, VariantFiles, variant_files
from pipeline.devices import Baseline, DeviceProfile, benchmark, benchmark_ab, failure_reason, run_on_devices
from pipeline.devices.group import GroupResult
from pipeline.devices.inventory import inventory_path, load_inventory, select_devices
from pipeline.errors import UserError
from pipeline.nightly.confirm import ROUND_VALUES
from pipeline.nightly.report import Failure
from pipeline.results import DEFAULT_RULES, ResultsStore, variants_from_manifest
from pipeline.results.ab_test import paired_test
from pipeline.results.manifest import MANIFEST_HINT, git_commit
from pipeline.results.store import COMPLETE, FAILED
from pipeline.sweep.evidence import stage_evidence
from pipeline.sweep.sweep_config import PlannedRun, SweepConfig, plan_runs
from pipeline.sweep.sweep_publish import publish
from pipeline.sweep.sweep_report import RUN_KIND, Interleaved, SweepReport, build_sweep_report
from pipeline.training.runner import run_stages

STORE_RUN_NAME = "sweep"
Log = Callable[[str], None]


def _log(message: str) -> None:
    print(f"sweep: {one_line(message)}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class TrainedRun:
    plan: PlannedRun
    manifest: Manifest
    ran: list[str]  # stages computed in this sweep (not cached, not copied from another run)


@dataclass(frozen=True)
class SweepOutcome:
    report: SweepReport
    folder: Path
    exit_code: int  # 0 every benchmark recorded, 1 some failed


@dataclass
class _Recorder:
    """Benchmark results into one store run, then interleaved A/Bs against the baseline (kept in memory: the store
    holds plain benchmark results); a device that fails is kept as a Failure, the others go on."""

    store: ResultsStore
    run_id: int
    profiles: list[DeviceProfile]
    log: Log
    failures: list[Failure] = field(default_factory=list)
    measured: set[tuple[str, str]] = field(default_factory=set)  # (device, variant) with a recorded result
    interleaved: list[Interleaved] = field(default_factory=list)

    def benchmark(self, run_name: str, name: str, files: VariantFiles) -> None:
        self.log(f"benchmarking {name} on {', '.join(p.name for p in self.profiles)}")
        results: GroupResult = run_on_devices(self.profiles, files.model, files.samples, run_name, benchmark)
        for device, error in results.failed.items():
            self._fail(device, name, failure_reason(device, error))
        for device, document in results.succeeded.items():
            try:
                self.store.record_benchmark(self.run_id, name, document, device=device, source=f"{name} on {device}")
            except UserError as error:  # a document the store refuses: that benchmark failed, the others stand
                self._fail(device, name, str(error))
                continue
            if document.get("mismatch"):  # stored as evidence, but the result contradicts the host
                self._fail(device, name, document["mismatch"])
                continue
            self.measured.add((device, name))
            self.log(f"recorded {name} on {device}: median {document['latency_ms']['median']:.3f} ms")

    def interleave(self, run_name: str, name: str, files: VariantFiles, baseline: str, baseline_files: VariantFiles,
                   rounds: int) -> None:
        """`name` against `baseline` in alternating rounds on every device where both were recorded."""
        profiles = [p for p in self.profiles if {(p.name, name), (p.name, baseline)} <= self.measured]
        if not profiles:
            return
        self.log(f"interleaved A/B {name} vs {baseline} ({rounds} rounds) on {', '.join(p.name for p in profiles)}")
        results = run_on_devices(profiles, files.model, files.samples, run_name,
                                 benchmark_ab(Baseline(*baseline_files, rounds=rounds)))
        for device, error in results.failed.items():
            self._fail(device, name, f"interleaved A/B against {baseline}: {failure_reason(device, error)}")
        for device, document in results.succeeded.items():
            a_rounds, b_rounds = (ROUND_VALUES["latency_ms"](document["ab"][side]) for side in ("a", "b"))
            if not a_rounds or not b_rounds:
                self._fail(device, name, f"interleaved A/B against {baseline}: the agent returned no rounds")
                continue
            ab = paired_test(DEFAULT_RULES["latency_ms"], a_rounds, b_rounds)  # ratios are variant / baseline
            self.interleaved.append(Interleaved(device, name, ab.rounds, 1 / ab.ratio, 1 / ab.ratio_high,
                                                1 / ab.ratio_low))
            self.log(f"A/B {name} on {device}: {1 / ab.ratio:.2f}x the speed of {baseline}")

    def _fail(self, device: str, name: str, reason: str) -> None:
        self.failures.append(Failure(device, name, reason))
        self.log(f"FAILED {name} on {device}: {reason}")


def train_runs(plans: list[PlannedRun], log: Log = _log) -> list[TrainedRun]:
    """Run each pipeline config in turn; stages another run of the build folder computed are copied, not rerun."""
    trained = []
    for index, plan in enumerate(plans, start=1):
        name = plan.config.run.name
        log(f"[{index}/{len(plans)}] {name} ({plan.config.source}) -> {', '.join(plan.variants)}")
        ran: list[str] = []

        def stage_line(line: str, ran: list[str] = ran) -> None:
            if " done " in line:
                ran.append(line.split("]", 1)[1].split()[0])
            print(f"  {line}", file=sys.stderr, flush=True)

        started = time.monotonic()
        manifest = run_stages(plan.config, log=stage_line)
        log(f"[{index}/{len(plans)}] {name}: {len(ran)} stage(s) ran ({', '.join(ran) or 'none'}), the rest cached, "
            f"{time.monotonic() - started:.1f} s")
        trained.append(TrainedRun(plan, manifest, ran))
    return trained


def _summary(config: SweepConfig, trained: list[TrainedRun]) -> dict[str, Any]:
    """What the store keeps with the sweep run: the baseline, which run made each variant, the stage evidence."""
    return {
        "baseline": config.baseline,
        "variant_runs": {name: t.plan.config.run.name for t in trained for name in t.plan.variants},
        "evidence": [{"run": t.plan.config.run.name, "variant": t.plan.variants[-1], "stages": stages}
                     for t in trained if (stages := stage_evidence(t.manifest.data))],
        "stages_ran": {t.plan.config.run.name: t.ran for t in trained},
    }


def record_and_benchmark(config: SweepConfig, trained: list[TrainedRun], store: ResultsStore,
                         profiles: list[DeviceProfile], log: Log = _log) -> SweepReport:
    """One store run with every variant, every variant on every device, then the report read back from the store."""
    records = [record for t in trained
               for record in variants_from_manifest(RunVariants(t.manifest.run_dir, MANIFEST_HINT))
               if record.name in t.plan.variants]
    run_id = store.begin_run(STORE_RUN_NAME, kind=RUN_KIND, git_commit=git_commit(), config_path=config.source,
                             config=dataclasses.asdict(config), metrics=_summary(config, trained), variants=records)
    log(f"recording sweep run {run_id} in {store.db.url}")
    recorder = _Recorder(store, run_id, profiles, log)
    files = {name: (t.manifest.run_dir.name, variant_files(t.manifest.run_dir, name))
             for t in trained for name in t.plan.variants}
    try:
        for name, (run_name, variant) in files.items():
            recorder.benchmark(run_name, name, variant)
        for name, (run_name, variant) in files.items():
            if config.ab_rounds and name != config.baseline:
                recorder.interleave(run_name, name, variant, config.baseline, files[config.baseline][1],
                                    config.ab_rounds)
    except BaseException:
        store.finish_run(run_id, FAILED)
        raise
    store.finish_run(run_id, COMPLETE if recorder.measured else FAILED)
    return build_sweep_report(store, run_id, devices=[p.name for p in profiles], failures=recorder.failures,
                              interleaved=recorder.interleaved)


def run_sweep(config: SweepConfig, log: Log = _log) -> SweepOutcome:
    """Check every input, train, benchmark, record and publish; bad input raises UserError before any training."""
    plans = plan_runs(config)
    source = inventory_path(config.devices_file or None)
    profiles = select_devices(load_inventory(source), config.devices, False, source)
    with ResultsStore.open(config.results_db or None) as store:  # a damaged store is refused before any training
        trained = train_runs(plans, log)
        report = record_and_benchmark(config, trained, store, profiles, log)
    folder = publish(report, config.reports_dir)
    return SweepOutcome(report, folder, 1 if report.failures or not report.measurements else 0)
