"""The search job: check every input, train the shared stages once, run the workers, publish the report.

A re-run of the same command resumes the study: trials of dead workers are marked failed and replaced,
completed ones stay, and the report covers them all.
"""
from __future__ import annotations

import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import optuna

from pipeline.core.safe_text import one_line
from pipeline.devices.inventory import inventory_path, load_inventory, select_devices
from pipeline.search.objective import shared_stages
from pipeline.search.settings import SearchConfig, base_config
from pipeline.search.study import open_study, top_up
from pipeline.search.study_report import SHARED_RUN, publish
from pipeline.search.worker_pool import run_workers


def _log(message: str) -> None:
    print(f"search: {one_line(message)}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class SearchOutcome:
    folder: Path
    found: Path | None
    exit_code: int  # 0 every worker finished, 1 one did not (the report shows what was done)


def run_search(config: SearchConfig) -> SearchOutcome:
    """Bad input raises UserError before any study is created or anything trained."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    base = base_config(config)
    source = inventory_path(config.study.devices_file or None)
    profiles = select_devices(load_inventory(source), config.study.devices, False, source)
    study = open_study(config)
    _log(f"study {config.study.name!r}: {len(study.trials)} trial(s) so far, {top_up(study, config.study.trials)} "
         f"queued now; shared stages first")
    outcomes = shared_stages(base, config.study.name, lambda line: _log(line.strip()))
    study.set_user_attr(f"{SHARED_RUN}{socket.gethostname()}:{os.getpid()}:{time.time():.0f}", outcomes)
    codes = run_workers(config, config.study.workers, profiles)
    folder, found = publish(config, study, base.run.build_dir)
    _log(f"report: {folder}" + (f"; best model's config: {found}" if found else "; no trial met the constraints"))
    return SearchOutcome(folder, found, 1 if any(codes) else 0)
