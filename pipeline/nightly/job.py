"""The nightly job: train, record, benchmark every variant on every device, check, report.

Order matters for what a crash leaves behind: the run is recorded as running before the first
benchmark, each result is committed as it arrives, and only when every device is done is the run
marked complete (then it counts for baselines) or failed. A process killed half-way leaves a
running run that no baseline uses; the next nightly's `begin_run` marks it failed.
"""
from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.artifacts import Manifest, remove_stale_temporaries
from pipeline.devices import DeviceProfile, benchmark, failure_reason, model_from_manifest, run_on_devices
from pipeline.devices.inventory import inventory_path, load_inventory, select_devices
from pipeline.devices.targets import VARIANTS as BENCH_ARTIFACTS
from pipeline.errors import UserError
from pipeline.nightly import kept_models
from pipeline.nightly.confirm import ABRequest, Confirmation
from pipeline.nightly.nightly_config import NightlyConfig
from pipeline.nightly.publish import publish
from pipeline.nightly.report import VERDICT_DEVICE, VERDICT_FAILED, VERDICT_REGRESSION, Failure, build_report
from pipeline.nightly.text import verdict_line
from pipeline.results import Finding, ResultsStore, begin_pipeline_run, check_run
from pipeline.results.check import baseline_choice
from pipeline.results.manifest import VARIANTS as STORE_VARIANTS
from pipeline.results.manifest import git_commit
from pipeline.results.store import COMPLETE, FAILED
from pipeline.training.config import PipelineConfig, load_config
from pipeline.training.runner import run_stages

EXIT_OK, EXIT_REGRESSION, EXIT_FAILED = 0, 1, 2
RUN_KIND = "nightly"
Log = Callable[[str], None]


def _log(message: str) -> None:
    print(f"nightly: {message}", file=sys.stderr, flush=True)


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
    files: dict[str, tuple[Path, Path]] = field(default_factory=dict)  # variant -> tonight's model and samples
    benchmarked: set[tuple[str, str]] = field(default_factory=set)  # (device, variant) with a stored result
    benchmark_seconds: dict[str, float] = field(default_factory=dict)  # variant -> wall time on every device


def variant_files(manifest: Manifest, variant: str) -> tuple[Path, Path]:
    """A store variant's model and samples files, as the run's manifest names them."""
    artifact = STORE_VARIANTS[variant].artifact
    bench_variant = next(name for name, (model, _) in BENCH_ARTIFACTS.items() if model == artifact)
    return model_from_manifest(manifest.run_dir, bench_variant, f"the pipeline config does not produce "
                               f"variant {variant}; remove it from the nightly variants")


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

    def run(self, pipeline_config: PipelineConfig) -> Outcome:
        trained = self._train(pipeline_config)
        if trained is not None:
            self._record(*trained)
        findings = []
        if self.store.run(self.night.run_id)["status"] == COMPLETE:
            findings = self._check(trained[0].run_dir.name)
        report = build_report(self.store, self.night.run_id, devices=[p.name for p in self.profiles],
                              findings=findings, failures=self.night.failures, error=self.night.error)
        folder = publish(report, self.config.reports_dir)
        return Outcome(self._exit_code(report.verdict), verdict_line(report), self.night.run_id, folder)

    def _exit_code(self, verdict: str) -> int:
        """2 no verdict, 1 a model regression (or device drift, when fail_on lists "device"), else 0."""
        if verdict == VERDICT_FAILED:
            return EXIT_FAILED
        if verdict == VERDICT_REGRESSION or (verdict == VERDICT_DEVICE and "device" in self.config.fail_on):
            return EXIT_REGRESSION
        return EXIT_OK

    def _check(self, run_name: str) -> list[Finding]:
        """History first (`check_run`), then a back-to-back A/B for each series that looks worse."""
        run_id = self.night.run_id
        findings = check_run(self.store, run_id, rules=self.config.regression_rules(),
                             baseline_runs=self.config.baseline_runs)
        choice = baseline_choice(self.store, run_id, baseline_runs=self.config.baseline_runs)
        requests = {(profile.name, variant): ABRequest(profile, files, run_name, self.config.ab_rounds)
                    for profile in self.profiles for variant, files in self.night.files.items()
                    if (profile.name, variant) in self.night.benchmarked}
        confirmation = Confirmation(self.store, run_id, choice, self.config.models_dir, self.log)
        return confirmation.confirm(findings, requests, self.night.benchmark_seconds)

    def _keep_models(self) -> None:
        """Tonight's model files, by content, for the A/B tests of later nights; a copy that fails is only logged."""
        for variant, (model, samples) in self.night.files.items():
            try:
                kept_models.keep(self.config.models_dir, model, samples)
            except OSError as error:
                self.log(f"could not keep {variant}'s model in {self.config.models_dir}: {error}")

    def _train(self, pipeline_config: PipelineConfig) -> tuple[Manifest, dict[str, tuple[Path, Path]]] | None:
        """Run the pipeline (cached stages are reused); a failure is recorded as a failed run."""
        self.log(f"training with {pipeline_config.source} (cached stages are reused)")
        try:
            manifest = run_stages(pipeline_config)
            return manifest, {variant: variant_files(manifest, variant) for variant in self.config.variants}
        except Exception as error:  # noqa: BLE001 - any pipeline failure fails the night, recorded
            self.night.error = f"the training pipeline failed: {_describe(error)}"
        self.night.run_id = self.store.begin_run(pipeline_config.run.name, kind=RUN_KIND, git_commit=git_commit(),
                                                 config_path=pipeline_config.source)
        self.store.finish_run(self.night.run_id, FAILED)
        return None

    def _record(self, manifest: Manifest, files: dict[str, tuple[Path, Path]]) -> None:
        """Record the run, benchmark and store every result, then mark the run complete or failed."""
        self.night.run_id = run_id = begin_pipeline_run(self.store, manifest.run_dir, kind=RUN_KIND)
        self.night.files = files
        self.log(f"recording run {run_id} in {self.store.db.url}")
        try:
            for variant, (model, samples) in files.items():
                started = time.monotonic()
                self._benchmark(manifest.run_dir.name, variant, model, samples)
                self.night.benchmark_seconds[variant] = round(time.monotonic() - started, 3)
        except Exception as error:  # noqa: BLE001 - e.g. the database went away: the run failed, say why
            self._finish_failed(f"recording failed: {_describe(error)}")
            return
        except BaseException:
            self._finish_failed("interrupted")
            raise  # Ctrl-C: the run is marked failed, then the interrupt goes on
        if not self.night.recorded:
            self._finish_failed("no device produced a result (every device failed)")
            return
        self.store.finish_run(run_id, COMPLETE)
        self._keep_models()

    def _finish_failed(self, reason: str) -> None:
        self.night.error = reason
        try:
            self.store.finish_run(self.night.run_id, FAILED)
        except Exception as error:  # noqa: BLE001 - the store itself may be what failed
            self.log(f"could not mark run {self.night.run_id} failed: {error}")

    def _benchmark(self, run_name: str, variant: str, model: Path, samples: Path) -> None:
        """One variant on every device in parallel; each result is committed before the next variant runs."""
        self.log(f"benchmarking {variant} on {', '.join(p.name for p in self.profiles)}")
        results = run_on_devices(self.profiles, model, samples, run_name, benchmark)
        for device, error in results.failed.items():
            self._fail(device, variant, failure_reason(device, error))
        for device, document in results.succeeded.items():
            self._store_result(device, variant, document)

    def _store_result(self, device: str, variant: str, document: dict[str, Any]) -> None:
        try:
            self.store.record_benchmark(self.night.run_id, variant, document, source=f"{variant} on {device}")
        except UserError as error:  # a document the store refuses: that benchmark failed, the others stand
            self._fail(device, variant, str(error))
            return
        self.night.recorded += 1
        self.night.benchmarked.add((device, variant))
        self.log(f"recorded {variant} on {device}: median {document['latency_ms']['median']:.3f} ms")

    def _fail(self, device: str, variant: str, reason: str) -> None:
        self.night.failures.append(Failure(device, variant, reason))
        self.log(f"FAILED {variant} on {device}: {reason}")


def run_nightly(config: NightlyConfig, log: Log = _log) -> Outcome:
    """Check every input, then run one night; bad input raises UserError before anything is recorded."""
    pipeline_config = load_config(config.pipeline)
    source = inventory_path(config.devices_file or None)
    profiles = select_devices(load_inventory(source), config.devices, False, source)
    remove_stale_temporaries(config.reports_dir)  # a report folder left by a killed nightly
    with ResultsStore.open(config.results_db or None) as store:
        return NightlyJob(config, store, profiles, log).run(pipeline_config)
