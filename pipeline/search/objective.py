"""One trial: train its recipe stage by stage (stages another run computed are copied), stop it when a stage
leaves it below the median, score its int8 model on the validation split, time it interleaved against the
PTQ int8 model on every device, and hand Optuna its objective and constraint values.

The test split is never read here: the convert stage evaluates every model on it as in any run, but only
the final report reads that number, for the models on the front.
"""
from __future__ import annotations

import fcntl
import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna

from pipeline.core.artifacts import Manifest
from pipeline.core.safe_text import one_line
from pipeline.core.variants import VARIANTS, RunVariants, compressed_variant
from pipeline.devices import Baseline, DeviceProfile, benchmark, benchmark_ab, failure_reason, run_on_devices
from pipeline.errors import UserError
from pipeline.results import DEFAULT_RULES
from pipeline.results.ab_test import paired_test
from pipeline.search import feasibility
from pipeline.search.early_stopping import INTERMEDIATE, should_prune, stage_validation_accuracy, step_of
from pipeline.search.found import config_sections
from pipeline.search.settings import SearchConfig
from pipeline.search.space import draw, trial_config
from pipeline.search.study import QUEUED
from pipeline.training.config import PipelineConfig
from pipeline.training.runner import run_dir_for, run_stages

PTQ_BASELINE = next(v.name for v in VARIANTS if v.quantized)  # ptq_int8: the fine-tuned model, quantized after training
# Trained once per study and shared; after them each compression stage is a point the pruner may stop at.
SHARED_UNTIL = "finetune"
STEPS = (SHARED_UNTIL, "distill", "slim", "prune", "cluster", "quantize", "convert")
STAGE_LINE = re.compile(r"\[\d+/\d+\] (\w+)\s+(done|cached)(\s+\(from run)?")
RAN, REUSED, CACHED = "ran", "reused", "cached"  # computed here, copied from another run, already in this run
Log = Callable[[str], None]


class SurplusTrial(UserError):
    """A trial Optuna created after the study's queue ran out: another worker took the last one."""


def trial_run_name(study: str, number: int) -> str:
    return f"{study}-t{number:03d}"


def stage_recorder(outcomes: dict[str, str], log: Log) -> Log:
    """A runner log that notes each stage's first outcome in this trial: ran, reused or cached."""
    shown: set[str] = set()

    def record(line: str) -> None:
        match = STAGE_LINE.search(line)
        if match:
            stage, state, copied = match.groups()
            outcomes.setdefault(stage, RAN if state == "done" else REUSED if copied else CACHED)
        if line not in shown:  # each step's run_stages call repeats the lines of the stages before it
            shown.add(line)
            log(f"  {line}")

    return record


def validation_accuracy(config: PipelineConfig, manifest: Manifest, model: Path) -> float:
    """Top-1 of a .tflite model on the run's validation split, one invoke per image as on a device."""
    from pipeline.tflite.evaluation import accuracy, run_model  # TensorFlow loads here, in the worker only
    from pipeline.training.stage_io import StageContext
    from pipeline.training.stages.data import load_run_data

    validation = load_run_data(StageContext(config, manifest.run_dir, manifest.run_dir, manifest)).validation
    outputs = run_model(model, validation.batches(), f"validate {model.stem}", total=len(validation))
    return accuracy(outputs, validation.labels)


@dataclass(frozen=True)
class Timing:
    speedup: float  # PTQ int8 median / candidate median, median over interleaved rounds
    speedup_low: float
    speedup_high: float
    latency_ms: float  # the candidate's median over every round's invokes
    rounds: int


def check_on_devices(profiles: list[DeviceProfile], run_name: str, candidate: tuple[Path, Path]) -> None:
    """Run the candidate once as `bench` does, outputs checked against the host's reference: a board that
    contradicts the host (another model, a broken runtime) fails the trial before any timing is taken.
    The interleaved A/B that follows times the models but does not check their outputs."""
    results = run_on_devices(profiles, candidate[0], candidate[1], run_name, benchmark)
    for device, error in results.failed.items():
        raise UserError(f"checking on {device} failed: {failure_reason(device, error)}")
    for device, document in results.succeeded.items():
        if document.get("mismatch"):
            raise UserError(f"checking on {device} failed: {one_line(document['mismatch'])}")


def time_against_baseline(profiles: list[DeviceProfile], run_name: str, candidate: tuple[Path, Path],
                          baseline: tuple[Path, Path], rounds: int) -> dict[str, Timing]:
    """The candidate (A) against PTQ int8 (B) in alternating rounds on every device, each under its
    device's lock (`flock <workdir>/bench.lock`, as `bench` takes it)."""
    results = run_on_devices(profiles, candidate[0], candidate[1], run_name,
                             benchmark_ab(Baseline(*baseline, rounds=rounds)))
    for device, error in results.failed.items():
        raise UserError(f"timing on {device} failed: {failure_reason(device, error)}")
    timings = {}
    for device, document in results.succeeded.items():
        a_rounds, b_rounds = (document["ab"][side].get("round_samples_ms") for side in ("a", "b"))
        if not a_rounds or not b_rounds:
            raise UserError(f"timing on {device} failed: the agent returned no rounds")
        ab = paired_test(DEFAULT_RULES["latency_ms"], a_rounds, b_rounds)  # ratios are candidate / baseline
        pooled = float(np.median(np.concatenate([np.asarray(r, float) for r in a_rounds])))
        timings[device] = Timing(1 / ab.ratio, 1 / ab.ratio_high, 1 / ab.ratio_low, pooled, ab.rounds)
    return timings


class Objective:
    """Optuna's objective for one worker: settings -> trained model -> (accuracy, speed-up per device[, bytes])."""

    def __init__(self, config: SearchConfig, base: PipelineConfig, profiles: list[DeviceProfile], log: Log):
        self.config, self.base, self.profiles, self.log = config, base, profiles, log

    def __call__(self, trial: optuna.Trial) -> tuple[float, ...]:
        if not trial.user_attrs.get(QUEUED):  # not from the study's queue: the study is full
            trial.set_user_attr("surplus", True)
            raise SurplusTrial(f"trial {trial.number}: the study already has its {self.config.study.trials} trials")
        settings = draw(trial, self.config.space)
        config = trial_config(self.base, settings, trial_run_name(self.config.study.name, trial.number))
        trial.set_user_attr("run", config.run.name)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        trial.set_user_attr("settings", settings)
        trial.set_user_attr("config", config_sections(config))
        manifest = self._train(trial, config)
        name = compressed_variant(config).name
        variants = RunVariants(run_dir_for(config))
        accuracy = validation_accuracy(config, manifest, variants.files(name).model)
        check_on_devices(self.profiles, config.run.name, variants.files(name))
        timings = time_against_baseline(self.profiles, config.run.name, variants.files(name),
                                         variants.files(PTQ_BASELINE), self.config.study.ab_rounds)
        measured = {"variant": name, "val_accuracy": accuracy, "bytes": variants.metrics_of(name)["bytes"],
                    "macs": variants.metrics_of(name)["macs"],
                    "speedup": {d: t.speedup for d, t in timings.items()},
                    "speedup_interval": {d: [t.speedup_low, t.speedup_high] for d, t in timings.items()},
                    "latency_ms": {d: t.latency_ms for d, t in timings.items()}}
        for key, value in measured.items():
            trial.set_user_attr(key, value)
        for limit, value in feasibility.constraint_values(self.config, measured).items():
            trial.set_constraint(limit, value)
        return feasibility.objective_values(self.config, measured)

    def _train(self, trial: optuna.Trial, config: PipelineConfig) -> Manifest:
        """run_stages up to each step in turn; after each, the median rule on the model's validation accuracy."""
        outcomes: dict[str, str] = {}
        log = stage_recorder(outcomes, self.log)
        intermediate: dict[str, float] = {}
        value = None
        try:
            for stage in STEPS:
                manifest = run_stages(config, until=stage, log=log)
                metrics = (manifest.stage(stage) or {}).get("metrics", {})
                measured = stage_validation_accuracy(stage, metrics)
                value = value if measured is None else measured  # a stage turned off hands its input on
                if value is None or stage == STEPS[-1]:
                    continue
                intermediate[str(step_of(stage))] = value
                trial.set_user_attr(INTERMEDIATE, intermediate)
                finished = [t.user_attrs.get(INTERMEDIATE, {}) for t in
                            trial.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))]
                if should_prune(value, step_of(stage), finished, self.config.pruner):
                    raise optuna.TrialPruned(f"validation accuracy {value:.4f} after {stage} is below the median "
                                             f"of the finished trials")
        finally:
            trial.set_user_attr("stages", outcomes)
        return manifest


def shared_stages(base: PipelineConfig, study: str, log: Log) -> dict[str, str]:
    """Data, pretraining and fine-tuning in a run of their own before any trial starts, so the trials (in
    every worker of this machine) copy them instead of computing them side by side."""
    outcomes: dict[str, str] = {}
    config = trial_config(base, {}, f"{study}-shared")
    lock = Path(config.run.build_dir) / f"{config.run.name}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # another search starting here waits, then finds them cached
        run_stages(config, until=SHARED_UNTIL, log=stage_recorder(outcomes, log))
    return outcomes

