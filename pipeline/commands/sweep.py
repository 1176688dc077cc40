"""`python -m pipeline sweep`: train every run of the sweep (cached stages reused), benchmark every variant on
every device, record it all in the results store and write `reports/sweep-<date>/`.

Prints the comparison table and the report folder; exits 0 when every benchmark was recorded, 1 when some
failed (or on bad input, before anything is trained)."""
from __future__ import annotations

import argparse

from pipeline.commands.arguments import add_device_job_arguments
from pipeline.sweep.sweep_config import DEFAULT_CONFIG, load_sweep_config, with_overrides
from pipeline.sweep.sweep_job import run_sweep
from pipeline.sweep.sweep_table import format_table


def add_arguments(parser: argparse.ArgumentParser, command_name: str) -> None:
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="sweep TOML file (default: %(default)s)")
    add_device_job_arguments(parser, "benchmark on this device (repeatable; default: the config's devices)")


def run(args: argparse.Namespace) -> int:
    config = with_overrides(load_sweep_config(args.config), devices=args.device, devices_file=args.devices,
                            results_db=args.db, reports_dir=args.reports)
    outcome = run_sweep(config)
    print(format_table(outcome.report))
    print(f"report: {outcome.folder}")
    return outcome.exit_code
