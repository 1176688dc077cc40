"""`run` and the per-stage subcommands: run the training stages up to one of them."""
from __future__ import annotations

import argparse

from pipeline.training.config import load_config
from pipeline.training.runner import run_stages
from pipeline.training.summary import print_summary

DEFAULT_CONFIG = "configs/demo.toml"


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("--config", default=DEFAULT_CONFIG, help=f"pipeline TOML file (default: {DEFAULT_CONFIG})")
    parser.add_argument("--force", action="store_true", help="re-run the stages even when cached")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    until = None if args.command == "run" else args.command
    manifest = run_stages(config, until=until, force=args.force)
    print_summary(manifest)
    return 0
