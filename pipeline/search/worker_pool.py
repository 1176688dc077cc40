"""Workers: processes that take trials from the study's queue until it is empty, one progress line per trial.

`--workers N` starts N of them here (spawned: each loads TensorFlow itself and shares nothing but the
study database and the build folder); the same command on another machine adds its workers to the study.
"""
from __future__ import annotations

import multiprocessing
import signal
import sys
from collections.abc import Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from pipeline.core.safe_text import one_line
from pipeline.devices import DeviceProfile
from pipeline.search import feasibility
from pipeline.search.objective import Objective
from pipeline.search.settings import SearchConfig, base_config
from pipeline.search.study import open_study, queued

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
Log = Callable[[str], None]


def worker_log(index: int) -> Log:
    def log(message: str) -> None:
        print(f"search[{index}]: {one_line(message)}", file=sys.stderr, flush=True)

    return log


def _numbers(config: SearchConfig, trial: FrozenTrial) -> str:
    attrs = trial.user_attrs
    if "val_accuracy" not in attrs:
        return ""
    speed = ", ".join(f"{attrs['speedup'][d]:.2f}x on {d}" for d in config.study.devices)
    flag = "" if feasibility.feasible(trial) or trial.state != TrialState.COMPLETE else " (infeasible)"
    return f"val top-1 {attrs['val_accuracy']:.4f}, {speed}, {attrs['bytes']} bytes{flag}"


def progress_line(config: SearchConfig, study: optuna.Study, trial: FrozenTrial) -> str:
    """`trial n/N #k STATE: numbers; best so far #j: numbers` (n counts every finished trial of the study)."""
    trials = study.get_trials(deepcopy=False)
    done = sum(t.state in FINISHED and not t.user_attrs.get("surplus") for t in trials)
    line = f"trial {done}/{config.study.trials} #{trial.number} {trial.state.name}"
    numbers = _numbers(config, trial)
    line += f": {numbers}" if numbers else ""
    best = feasibility.best_trial(trials, config.study.devices)
    return line + (f"; best so far #{best.number}: {_numbers(config, best)}" if best else "; no feasible trial yet")


def work(config: SearchConfig, index: int, profiles: list[DeviceProfile]) -> None:
    """Take queued trials until none is left."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    log = worker_log(index)
    study = open_study(config, index)
    objective = Objective(config, base_config(config), profiles, log)

    def report(study: optuna.Study, trial: FrozenTrial) -> None:
        if not trial.user_attrs.get("surplus"):
            log(progress_line(config, study, trial))

    while queued(study):
        study.optimize(objective, n_trials=1, catch=(Exception,), callbacks=[report])


def run_workers(config: SearchConfig, count: int, profiles: list[DeviceProfile]) -> list[int]:
    """`count` workers: this process alone for one, else spawned processes; their exit codes."""
    if count == 1:
        work(config, 0, profiles)
        return [0]
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=work, args=(config, index, profiles), name=f"search-worker-{index}")
                 for index in range(count)]
    signal.signal(signal.SIGTERM, _exit)  # so that the workers are stopped with this process, not orphaned
    try:
        for process in processes:
            process.start()
        for process in processes:
            process.join()
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()  # its trial stops sending heartbeats: failed after grace_s
    return [process.exitcode or 0 for process in processes]


def _exit(signum: int, frame: object) -> None:
    sys.exit(128 + signum)
