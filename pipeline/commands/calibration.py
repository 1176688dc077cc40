"""`calibration`: regenerate the representative samples file named by convert.calibration."""
from __future__ import annotations

import argparse

from pipeline.commands.stages import DEFAULT_CONFIG
from pipeline.core.artifacts import sha256_file
from pipeline.training.calibration_set import write_calibration
from pipeline.training.config import load_config


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("--config", default=DEFAULT_CONFIG, help=f"pipeline TOML file (default: {DEFAULT_CONFIG})")


def run(args: argparse.Namespace) -> int:
    path = write_calibration(load_config(args.config))
    print(f"{path}  sha256 {sha256_file(path)}")
    return 0
