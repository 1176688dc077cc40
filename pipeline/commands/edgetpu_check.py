"""`edgetpu-check`: which ops of an int8 .tflite the Edge TPU compiler can map, and where the CPU takes over."""
from __future__ import annotations

import argparse
import json

from pipeline.edgetpu.compatibility import check_model
from pipeline.edgetpu.compatibility_report import format_report
from pipeline.edgetpu.model_path import resolve_model


def add_arguments(parser: argparse.ArgumentParser, command_name: str) -> None:
    parser.add_argument("model", nargs="?", help="int8 .tflite to check (default: build/demo's artifacts.int8_tflite)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    report = check_model(resolve_model(args.model))
    print(json.dumps(report.to_dict(), indent=2) if args.json else format_report(report))
    return 0
