"""`python -m pipeline search`: a multi-objective search over the compression recipes (Optuna), each trial timed
interleaved against PTQ int8 on the named devices; writes `reports/search-<date>/` and the best model's config.

Prints the report folder and the found config; exits 0 when every worker finished, 1 when one did not
(or on bad input, before anything is trained)."""
from __future__ import annotations

import argparse

from pipeline.commands.arguments import add_device_job_arguments, ascii_int
from pipeline.search.driver import run_search
from pipeline.search.settings import DEFAULT_CONFIG, load_search_config, with_overrides


def add_arguments(parser: argparse.ArgumentParser, command_name: str) -> None:
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="search TOML file (default: %(default)s)")
    add_device_job_arguments(parser, "time candidates on this device (repeatable; default: the config's devices)")
    parser.add_argument("--workers", type=ascii_int, help="worker processes on this machine (default: the config's)")
    parser.add_argument("--trials", type=ascii_int, help="trials of the study in total (default: the config's)")
    parser.add_argument("--study", metavar="NAME", help="study name (default: the config's)")
    parser.add_argument("--latency-ms", type=float, help="constraint: at most this median latency on every device")
    parser.add_argument("--latency-ratio", type=float, help="constraint: at most this fraction of PTQ int8's latency")
    parser.add_argument("--max-bytes", type=ascii_int, help="constraint: at most this .tflite size")


def run(args: argparse.Namespace) -> int:
    config = with_overrides(load_search_config(args.config), workers=args.workers, trials=args.trials,
                            devices=args.device, devices_file=args.devices, results_db=args.db, name=args.study,
                            max_latency_ms=args.latency_ms, max_latency_ratio=args.latency_ratio,
                            max_bytes=args.max_bytes, reports_dir=args.reports)
    outcome = run_search(config)
    print(f"report: {outcome.folder}")
    print(f"found config: {outcome.found or 'none (no trial met the constraints)'}")
    return outcome.exit_code
