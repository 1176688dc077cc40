"""The study's report, `reports/search-<date>/`: every trial's settings and numbers (trials.json and a table in
summary.md), the measured front (front.png and a table with the front's test-set top-1), the best trial
under the constraints and the config that rebuilds it, and how often each stage ran or was reused.

Only here is the test split's number read: the front is chosen on validation top-1 and measured speed-up,
then its models' test top-1 (from their runs' convert stage) is shown beside it.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
from collections import Counter
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from pipeline.core.artifacts import atomic_dir
from pipeline.core.variants import RunVariants
from pipeline.results.pareto import pareto_front
from pipeline.search import feasibility
from pipeline.search.found import write_found
from pipeline.search.settings import SearchConfig

SHARED_RUN = "shared_run:"  # study user attributes <this>:<host>:<pid>:<time>: each shared run's stage outcomes


def _trial_json(trial: FrozenTrial) -> dict[str, Any]:
    attrs = {k: v for k, v in trial.user_attrs.items() if k != "config"}
    return {"number": trial.number, "state": trial.state.name, "params": trial.params, "values": trial.values,
            "feasible": feasibility.feasible(trial), "constraints": trial.constraints, **attrs}


def _test_accuracy(build_dir: str, trial: FrozenTrial) -> float | None:
    """The convert stage's test-set top-1 of the trial's model (None when its run folder is gone)."""
    attrs = trial.user_attrs
    try:
        return RunVariants(Path(build_dir) / attrs["run"]).metrics_of(attrs["variant"])["accuracy"]
    except Exception:  # noqa: BLE001 - a report line, not a reason to lose the report
        return None


def stage_counts(trials: list[FrozenTrial], shared: list[dict[str, str]]) -> dict[str, dict[str, int]]:
    """Per stage: how many runs of the study computed it, copied it from another run, or had it already."""
    counts: dict[str, Counter] = {}
    for outcomes in [*shared, *(t.user_attrs.get("stages", {}) for t in trials)]:
        for stage, outcome in outcomes.items():
            counts.setdefault(stage, Counter())[outcome] += 1
    return {stage: dict(counter) for stage, counter in counts.items()}


def build(config: SearchConfig, study: optuna.Study, build_dir: str) -> dict[str, Any]:
    """Everything the report shows, as JSON-ready values."""
    trials = [t for t in study.get_trials() if not t.user_attrs.get("surplus")]
    first = config.study.devices[0]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    points = {str(t.number): (t.user_attrs["val_accuracy"], 1 / t.user_attrs["speedup"][first]) for t in complete}
    front = [next(t for t in complete if str(t.number) == n) for n in pareto_front(points)]
    best = feasibility.best_trial(trials, config.study.devices)
    return {
        "study": config.study.name, "config": config.source, "objectives": feasibility.objective_names(config),
        "constraints": dataclasses.asdict(config.constraints), "devices": config.study.devices,
        "trials": [_trial_json(t) for t in trials],
        "states": dict(Counter(t.state.name for t in trials)),
        "front": [{**_trial_json(t), "test_accuracy": _test_accuracy(build_dir, t)} for t in front],
        "best": None if best is None else best.number,
        "stage_counts": stage_counts(trials, [v for k, v in study.user_attrs.items() if k.startswith(SHARED_RUN)]),
    }


def _row(trial: dict[str, Any], devices: list[str], test: bool) -> str:
    speed = " | ".join(f"{trial['speedup'][d]:.2f}x, {trial['latency_ms'][d]:.3f} ms" if "speedup" in trial
                       else "-" for d in devices)
    accuracy = f"{trial['val_accuracy'] * 100:.2f}" if "val_accuracy" in trial else "-"
    cells = [f"#{trial['number']}", trial["state"], trial.get("variant", "-"), accuracy]
    if test:
        cells.append("-" if trial.get("test_accuracy") is None else f"{trial['test_accuracy'] * 100:.2f}")
    cells += [speed, str(trial.get("bytes", "-")), "yes" if trial["feasible"] else "no"]
    return "| " + " | ".join(cells) + " |"


def _table(trials: list[dict[str, Any]], devices: list[str], test: bool) -> list[str]:
    head = ["trial", "state", "variant", "val top-1 %", *(["test top-1 %"] if test else []),
            *(f"speed-up vs ptq_int8, median on {d}" for d in devices), "bytes", "feasible"]
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + [_row(t, devices, test) for t in trials]


def markdown(report: dict[str, Any], found: Path | None) -> str:
    devices = report["devices"]
    best = f"trial #{report['best']}, rebuilt by `{found}`" if found else "none: no complete trial met the constraints"
    lines = [f"# Model search `{report['study']}`", "",
             f"Config: `{report['config']}`. Objectives: {', '.join(report['objectives'])}. "
             f"Trials: {json.dumps(report['states'])}. Constraints (0 = none): {json.dumps(report['constraints'])}.",
             "", f"Best under the constraints: {best}.", "",
             f"## Pareto front (validation top-1 vs speed-up on {devices[0]}), with test top-1", "",
             *_table(report["front"], devices, True), "", "![front](front.png)", "",
             "## Stages: computed, copied from another run, or already in the run", "",
             "| stage | ran | reused | cached |", "|---|---|---|---|",
             *(f"| {stage} | {c.get('ran', 0)} | {c.get('reused', 0)} | {c.get('cached', 0)} |"
               for stage, c in report["stage_counts"].items()),
             "", "## Every trial", "", *_table(report["trials"], devices, False), ""]
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> None:
    """Validation top-1 against speed-up on the first device: every complete trial, the front joined."""
    from matplotlib.figure import Figure

    device = report["devices"][0]
    figure = Figure(figsize=(5.2, 3.8), layout="constrained")
    axes = figure.subplots()
    for feasible, marker in ((True, "o"), (False, "x")):
        shown = [t for t in report["trials"] if t["state"] == "COMPLETE" and t["feasible"] == feasible]
        axes.scatter([t["speedup"][device] for t in shown], [t["val_accuracy"] * 100 for t in shown],
                     marker=marker, color="0.5", label="feasible" if feasible else "infeasible")
    for trial in report["trials"]:
        if trial["state"] == "COMPLETE":
            axes.annotate(f"#{trial['number']}", (trial["speedup"][device], trial["val_accuracy"] * 100),
                          fontsize=7, xytext=(4, 4), textcoords="offset points")
    front = sorted(report["front"], key=lambda t: t["speedup"][device])
    axes.plot([t["speedup"][device] for t in front], [t["val_accuracy"] * 100 for t in front], color="tab:red",
              marker="o", label="Pareto front")
    axes.set(xlabel=f"speed-up vs ptq_int8 on {device} (interleaved)", ylabel="int8 top-1 on validation (%)",
             title=f"search {report['study']}")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    figure.savefig(path, dpi=110)


def publish(config: SearchConfig, study: optuna.Study, build_dir: str) -> tuple[Path, Path | None]:
    """Write the found config (if any), then the report folder in one rename; return both paths."""
    report = build(config, study, build_dir)
    found = None
    if report["best"] is not None:
        best = study.trials[report["best"]]
        comment = (f"Found by `python -m pipeline search` ({config.source}): study {config.study.name}, trial "
                   f"#{best.number}, validation top-1 {best.user_attrs['val_accuracy']:.4f}")
        found = write_found(best.user_attrs["config"], config.study.found_dir, comment)
    report["found_config"] = None if found is None else str(found)
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    folder = Path(config.study.reports_dir) / f"search-{date}"
    with atomic_dir(folder) as tmp:
        (tmp / "trials.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        (tmp / "summary.md").write_text(markdown(report, found), encoding="utf-8")
        plot(report, tmp / "front.png")
    return folder, found
