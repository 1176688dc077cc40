"""`python -m pipeline nightly`: train, benchmark on every device, record, check against the baselines, report.

Exit codes: 0 no model regression (device drift too, unless the config's fail_on lists "device"),
1 at least one model regression, 2 the nightly produced no verdict (bad input, the pipeline failed,
every device failed, the results store failed). CI should call this entry point: make turns 1 into 2.
"""
from __future__ import annotations

import argparse
import sys

from pipeline.core.safe_text import one_line
from pipeline.errors import UserError
from pipeline.nightly.job import EXIT_FAILED, run_nightly
from pipeline.nightly.nightly_config import DEFAULT_CONFIG, load_nightly_config, with_overrides

EXIT_USER_ERROR = EXIT_FAILED  # for bad arguments too (the CLI reads it): 1 means "regression" here


def add_arguments(parser: argparse.ArgumentParser, command_name: str) -> None:
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="nightly TOML file (default: %(default)s)")
    parser.add_argument("--db", metavar="URL", help="results database (default: the config's results_db, "
                                                    "else $RESULTS_DB, else results/results.db)")
    parser.add_argument("--devices", metavar="FILE", help="device inventory (default: the config's devices_file, "
                                                          "else $DEVICES, else ./devices.toml)")
    parser.add_argument("--device", action="append", metavar="NAME",
                        help="benchmark on this device (repeatable; default: the config's devices)")
    parser.add_argument("--reports", metavar="DIR", help="reports folder (default: the config's reports_dir)")


def run(args: argparse.Namespace) -> int:
    try:
        config = with_overrides(load_nightly_config(args.config), results_db=args.db, devices_file=args.devices,
                                devices=args.device, reports_dir=args.reports)
        outcome = run_nightly(config)
    except UserError as error:  # exit 1 means "regression" here, so bad input is 2 like any night without verdict
        print(f"error: {one_line(error)}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as error:  # noqa: BLE001 - e.g. the database went away: no verdict, one line, exit 2
        print(f"error: the nightly failed: {type(error).__name__}: {one_line(error)}", file=sys.stderr)
        return EXIT_FAILED
    print(one_line(outcome.verdict))
    if outcome.report_dir is not None:
        print(f"report: {outcome.report_dir}")
    return outcome.exit_code
