"""`edgetpu-check`: which ops of an int8 .tflite the Edge TPU compiler can map, and where the CPU takes over."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipeline.core.runs import DEFAULT_BUILD_DIR, DEFAULT_RUN
from pipeline.core.variants import variant_files
from pipeline.edgetpu.compatibility import check_model
from pipeline.edgetpu.compatibility_report import format_report

DEMO_RUN_DIR = Path(DEFAULT_BUILD_DIR) / DEFAULT_RUN
MODEL_HELP = "int8 .tflite (default: the demo run's compressed model, from build/demo/manifest.json)"


def resolve_model(given: str | None) -> Path:
    """`given` as a path, or the demo run's compressed variant when none is given."""
    if given:
        return Path(given)
    hint = "run `make demo` (or `make stage-convert`) first, or pass MODEL=path/to/model.tflite"
    return variant_files(DEMO_RUN_DIR, hint=hint).model


def add_arguments(parser: argparse.ArgumentParser, command_name: str) -> None:
    parser.add_argument("model", nargs="?", help=MODEL_HELP)
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    report = check_model(resolve_model(args.model))
    print(json.dumps(report.to_dict(), indent=2) if args.json else format_report(report))
    return 0
