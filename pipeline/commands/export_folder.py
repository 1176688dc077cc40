"""`export-folder`: write a config's dataset (e.g. Fashion-MNIST IDX) out as a PNG image folder."""
from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.commands.arguments import ascii_int
from pipeline.commands.stages import DEFAULT_CONFIG
from pipeline.errors import UserError
from pipeline.training.config import load_config
from pipeline.training.datasets import load_dataset
from pipeline.training.image_export import export_png_folder


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("--config", default=DEFAULT_CONFIG, help=f"pipeline TOML file (default: {DEFAULT_CONFIG})")
    parser.add_argument("--out", type=Path, required=True, help="folder to write (replaced as a whole)")
    parser.add_argument("--every", type=ascii_int, default=1, help="keep every N-th image (4: a quarter; default 1)")


def run(args: argparse.Namespace) -> int:
    if args.every < 1:
        raise UserError(f"--every = {args.every} must be at least 1")
    config = load_config(args.config)
    counts = export_png_folder(load_dataset(config.data, config.source), args.out, args.every)
    print(f"{args.out}: {counts['train']:,} training and {counts['test']:,} test images (PNG)")
    return 0
