"""`label-table`: does pretraining pay? SSL vs from-scratch test accuracy per label fraction.

Runs each config up to fine-tuning (stages shared with other runs are reused, so all
fractions share one pretraining) and prints a Markdown table for the README. The from-scratch
baseline doubles fine-tuning, so the demo leaves it off; a config that leaves it off is run here
with it on, under the run name `<name>-baseline`, so the config's own build stays as it was.
"""
from __future__ import annotations

import argparse
from dataclasses import replace

from pipeline.training.config import PipelineConfig, load_config
from pipeline.training.runner import run_stages

DEFAULT_CONFIGS = ["configs/labels-1pct.toml", "configs/labels-10pct.toml", "configs/demo.toml"]


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("--config", action="append", help="a pipeline TOML file; repeat for several "
                        f"(default: {' '.join(DEFAULT_CONFIGS)})")


def with_baseline(config: PipelineConfig) -> PipelineConfig:
    """The config with the from-scratch baseline on (in a run of its own if the config had it off)."""
    if config.finetune.scratch_baseline:
        return config
    return replace(config, run=replace(config.run, name=f"{config.run.name}-baseline"),
                   finetune=replace(config.finetune, scratch_baseline=True))


def run(args: argparse.Namespace) -> int:
    rows = []
    for path in args.config or DEFAULT_CONFIGS:
        config = with_baseline(load_config(path))
        metrics = run_stages(config, until="finetune").data["metrics"]
        rows.append((config, metrics))
    print("\n| labels | labelled images | epochs | SSL-pretrained top-1 | from scratch top-1 | gain |")
    print("|---:|---:|---:|---:|---:|---:|")
    for config, m in sorted(rows, key=lambda row: row[0].finetune.label_fraction):
        ssl, scratch = m.get("ssl_accuracy"), m.get("scratch_accuracy")
        gain = "-" if ssl is None or scratch is None else f"{100 * (ssl - scratch):+.2f}"
        print(f"| {100 * config.finetune.label_fraction:g}% | {m['labeled_images']} | {config.finetune.epochs} | "
              f"{'-' if ssl is None else f'{100 * ssl:.2f}%'} | {'-' if scratch is None else f'{100 * scratch:.2f}%'} "
              f"| {gain} |")
    return 0
