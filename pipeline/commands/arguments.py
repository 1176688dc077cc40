"""Argument types shared by commands: numbers written with ASCII digits only.

`int("١٢")` is 12 in Python; a run id or count typed in another script's digits is refused instead of
being read as something the user may not have meant.
"""
from __future__ import annotations

import argparse

MAX_INT = (1 << 63) - 1  # the stores' integer columns are 64-bit


def ascii_int(text: str) -> int:
    """argparse `type=`: a non-negative decimal integer in ASCII digits that fits a 64-bit column."""
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_INT:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (0-9 digits, at most {MAX_INT})")
    return int(text)


def add_device_job_arguments(parser: argparse.ArgumentParser, device_help: str) -> None:
    """--device (repeatable), --devices, --db and --reports: what a job that benchmarks and reports takes."""
    parser.add_argument("--device", action="append", metavar="NAME", help=device_help)
    parser.add_argument("--devices", metavar="FILE", help="device inventory (default: the config's devices_file, "
                                                          "else $DEVICES, else ./devices.toml)")
    parser.add_argument("--db", metavar="URL", help="results database (default: the config's results_db, "
                                                    "else $RESULTS_DB, else results/results.db)")
    parser.add_argument("--reports", metavar="DIR", help="reports folder (default: the config's reports_dir)")
