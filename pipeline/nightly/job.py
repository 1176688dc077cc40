"""The nightly job: train, record, benchmark every variant on every device, check, report.

Order matters for what a crash leaves behind: the run is recorded as running before the first
benchmark, each result is committed as it arrives, and only when every device is done is the run
marked complete (then it counts for baselines) or failed. A process killed half-way leaves a
running run that no baseline uses; the next nightly's `begin_run` marks it failed.
"""
from __future__ import annotations

import dataclasses
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.artifacts import Manifest, remove_stale_temporaries
from pipeline.core.folders import folder_lock
from pipeline.core.safe_text import one_line
from pipeline.core.variants import variant_files
from pipeline.devices import DeviceProfile, benchmark, failure_reason, run_on_devices
from pipeline.devices.group import GroupResult, Interrupted
from pipeline.devices.inventory import inventory_path, load_inventory, select_devices
from pipeline.errors import UserError
from pipeline.nightly.nightly_config import NightlyConfig, variants_to_benchmark
from pipeline.nightly.publish import FIX as REPORTS_FIX
from pipeline.nightly.publish import publish, staged_report
from pipeline.nightly.report import VERDICT_FAILED, VERDICT_REGRESSION, Failure, NightlyReport, build_report
from pipeline.nightly.text import verdict_line
from pipeline.results import ResultsStore, begin_pipeline_run, check_run
from pipeline.results.manifest import git_commit
from pipeline.results.store import COMPLETE, FAILED
from pipeline.training.config import PipelineConfig, load_config
from pipeline.training.runner import run_stages

EXIT_OK, EXIT_REGRESSION, EXIT_FAILED = 0, 1, 2
RUN_KIND = "nightly"
Log = Callable[[str], None]


def _log(message: str) -> None:
    print(f"nightly: {one_line(message)}", file=sys.stderr, flush=True)  # board strings hold no escapes here


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    verdict: str  # the report's first line
    run_id: int | None = None
    report_dir: Path | None = None


@dataclass
class _Night:
    """What one nightly has done so far; filled in as it goes."""

    run_id: int | None = None
    error: str | None = None  # why the run failed
    failures: list[Failure] = field(default_factory=list)
    recorded: int = 0  # benchmark results stored


def _describe(error: BaseException) -> str:
    """One line for an error; unexpected ones also get their traceback on stderr."""
    if isinstance(error, UserError):
        return str(error)
    traceback.print_exception(error, file=sys.stderr)
    return f"{type(error).__name__}: {error}"


class NightlyJob:
    """One night on one store: the steps of `run`, each leaving the store consistent."""

    def __init__(self, config: NightlyConfig, store: ResultsStore, profiles: list[DeviceProfile], log: Log = _log):
        self.config, self.store, self.profiles, self.log = config, store, profiles, log
        self.night = _Night()

    @property
    def run_id(self) -> int:
        """The night's run in the store: `_train` or `_record` begins it before anything reads it."""
        if self.night.run_id is None:
            raise RuntimeError("the nightly run was read before it was begun in the store")
        return self.night.run_id

    def run(self, pipeline_config: PipelineConfig) -> Outcome:
        trained = self._train(pipeline_config)
        if trained is not None and self._record(*trained):
            try:
                return self._complete()
            except Exception as error:  # noqa: BLE001 - no report, no complete run: the night failed, say why
                self._finish_failed(f"the report could not be written: {_describe(error)}")
        report = self._report([])
        try:
            folder = publish(report, self.config.reports_dir)
        except Exception as error:  # noqa: BLE001 - the verdict line still reaches the log and the exit code
            self.log(f"could not write the report: {_describe(error)}")
            folder = None
        return self._outcome(report, folder)

    def _complete(self) -> Outcome:
        """Check the run, write its report, and mark it complete only once every report file is written."""
        findings = check_run(self.store, self.run_id, rules=self.config.regression_rules(),
                             baseline_runs=self.config.baseline_runs)
        report = self._report(findings)
        report = dataclasses.replace(report, run={**report.run, "status": COMPLETE})  # what it is once written
        with staged_report(report, self.config.reports_dir) as folder:
            self.store.finish_run(self.run_id, COMPLETE)
        return self._outcome(report, folder)

    def _report(self, findings: list) -> NightlyReport:
        return build_report(self.store, self.run_id, devices=[p.name for p in self.profiles],
                            findings=findings, failures=self.night.failures, error=self.night.error)

    def _outcome(self, report: NightlyReport, folder: Path | None) -> Outcome:
        exit_code = {VERDICT_FAILED: EXIT_FAILED, VERDICT_REGRESSION: EXIT_REGRESSION}.get(report.verdict, EXIT_OK)
        return Outcome(exit_code, verdict_line(report), self.night.run_id, folder)

    def _train(self, pipeline_config: PipelineConfig) -> tuple[Manifest, dict[str, tuple[Path, Path]]] | None:
        """Run the pipeline (cached stages are reused); a failure is recorded as a failed run."""
        self.log(f"training with {pipeline_config.source} (cached stages are reused)")
        try:
            manifest = run_stages(pipeline_config)
            return manifest, {variant: variant_files(manifest.run_dir, variant) for variant in self.config.variants}
        except Exception as error:  # noqa: BLE001 - any pipeline failure fails the night, recorded
            self.night.error = f"the training pipeline failed: {_describe(error)}"
        self.night.run_id = self.store.begin_run(pipeline_config.run.name, kind=RUN_KIND, git_commit=git_commit(),
                                                 config_path=pipeline_config.source)
        self.store.finish_run(self.night.run_id, FAILED)
        return None

    def _record(self, manifest: Manifest, files: dict[str, tuple[Path, Path]]) -> bool:
        """Record the run, benchmark and store every result; True when the run can be complete (its
        report decides), False when it was marked failed."""
        self.night.run_id = run_id = begin_pipeline_run(self.store, manifest.run_dir, kind=RUN_KIND)
        self.log(f"recording run {run_id} in {self.store.db.url}")
        try:
            for variant, (model, samples) in files.items():
                self._benchmark(manifest.run_dir.name, variant, model, samples)
        except Exception as error:  # noqa: BLE001 - e.g. the database went away: the run failed, say why
            self._finish_failed(f"recording failed: {_describe(error)}")
            return False
        except BaseException:
            self._finish_failed("interrupted")
            raise  # Ctrl-C: the run is marked failed, then the interrupt goes on
        if not self.night.recorded:
            self._finish_failed("no device produced a result (every device failed)")
            return False
        return True

    def _finish_failed(self, reason: str) -> None:
        self.night.error = reason
        try:
            self.store.finish_run(self.run_id, FAILED)
        except Exception as error:  # noqa: BLE001 - the store itself may be what failed
            self.log(f"could not mark run {self.night.run_id} failed: {error}")

    def _benchmark(self, run_name: str, variant: str, model: Path, samples: Path) -> None:
        """One variant on every device in parallel; each result is committed before the next variant runs."""
        self.log(f"benchmarking {variant} on {', '.join(p.name for p in self.profiles)}")
        try:
            results = run_on_devices(self.profiles, model, samples, run_name, benchmark)
        except Interrupted as interrupted:  # Ctrl-C: keep what had finished, then stop the night
            self._store_results(variant, interrupted.finished)
            raise
        self._store_results(variant, results)

    def _store_results(self, variant: str, results: GroupResult) -> None:
        for device, error in results.failed.items():
            self._fail(device, variant, failure_reason(device, error))
        for device, document in results.succeeded.items():
            self._store_result(device, variant, document)

    def _store_result(self, device: str, variant: str, document: dict[str, Any]) -> None:
        try:
            self.store.record_benchmark(self.run_id, variant, document, device=device,
                                        source=f"{variant} on {device}")
        except UserError as error:  # a document the store refuses: that benchmark failed, the others stand
            self._fail(device, variant, str(error))
            return
        if document.get("mismatch"):  # stored as evidence, kept out of baselines, and the night fails for it
            self._fail(device, variant, document["mismatch"])
            return
        self.night.recorded += 1
        self.log(f"recorded {variant} on {device}: median {document['latency_ms']['median']:.3f} ms")

    def _fail(self, device: str, variant: str, reason: str) -> None:
        self.night.failures.append(Failure(device, variant, reason))
        self.log(f"FAILED {variant} on {device}: {reason}")


def run_nightly(config: NightlyConfig, log: Log = _log) -> Outcome:
    """Check every input, then run one night; bad input raises UserError before anything is recorded."""
    pipeline_config = load_config(config.pipeline)
    config = dataclasses.replace(config, variants=variants_to_benchmark(config, pipeline_config))
    source = inventory_path(config.devices_file or None)
    profiles = select_devices(load_inventory(source), config.devices, False, source)
    with ResultsStore.open(config.results_db or None) as store, folder_lock(config.reports_dir, "nightly", REPORTS_FIX):
        remove_stale_temporaries(config.reports_dir)  # a report folder left by a killed nightly, not a running one
        return NightlyJob(config, store, profiles, log).run(pipeline_config)
