"""`python -m pipeline search`: a multi-objective search over the compression recipes (Optuna), each trial timed
interleaved against PTQ int8 on the named devices; writes `reports/search-<date>/` and the best model's config.

Prints the report folder and the found config; exits 0 when every worker finished, 1 when one did not
(or on bad input, before anything is trained)."""
from __future__ import annotations

import argparse

from pipeline.search.config import DEFAULT_CONFIG, load_search_config, with_overrides
from pipeline.search.job import run_search


def add_arguments(parser: argparse.ArgumentParser, command_name: str) -> None:
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="search TOML file (default: %(default)s)")
    parser.add_argument("--workers", type=int, help="worker processes on this machine (default: the config's)")
    parser.add_argument("--trials", type=int, help="trials of the study in total (default: the config's)")
    parser.add_argument("--device", action="append", metavar="NAME",
                        help="time candidates on this device (repeatable; default: the config's devices)")
    parser.add_argument("--devices", metavar="FILE", help="device inventory (default: the config's devices_file, "
                                                          "else $DEVICES, else ./devices.toml)")
    parser.add_argument("--db", metavar="URL", help="study database (default: the config's results_db, "
                                                    "else $RESULTS_DB, else results/results.db)")
    parser.add_argument("--study", metavar="NAME", help="study name (default: the config's)")
    parser.add_argument("--latency-ms", type=float, help="constraint: at most this median latency on every device")
    parser.add_argument("--latency-ratio", type=float, help="constraint: at most this fraction of PTQ int8's latency")
    parser.add_argument("--max-bytes", type=int, help="constraint: at most this .tflite size")
    parser.add_argument("--reports", metavar="DIR", help="reports folder (default: the config's reports_dir)")


def run(args: argparse.Namespace) -> int:
    config = with_overrides(load_search_config(args.config), workers=args.workers, trials=args.trials,
                            devices=args.device, devices_file=args.devices, results_db=args.db, name=args.study,
                            max_latency_ms=args.latency_ms, max_latency_ratio=args.latency_ratio,
                            max_bytes=args.max_bytes, reports_dir=args.reports)
    outcome = run_search(config)
    print(f"report: {outcome.folder}")
    print(f"found config: {outcome.found or 'none (no trial met the constraints)'}")
    return outcome.exit_code
