"""`bench-pipeline`: where the demo's time goes, and what compression buys in latency on this machine.

Per-stage wall time and training throughput come from the run's manifest (the numbers of
the run that produced the artifacts); the latency of the float model and of the run's compressed
model is measured now, by the device agent on the `local` device, both with the same thread count.
"""
from __future__ import annotations

import argparse
import dataclasses

from pipeline.commands.arguments import ascii_int
from pipeline.commands.stages import DEFAULT_CONFIG
from pipeline.core.artifacts import Manifest
from pipeline.core.variants import FLOAT, RunVariants
from pipeline.devices import benchmark, load_inventory, run_on_devices, select_devices
from pipeline.errors import UserError
from pipeline.training.config import load_config
from pipeline.training.runner import STAGE_NAMES, run_dir_for

THROUGHPUT_METRICS = {"pretrain": "pretrain_images_per_s", "finetune": "finetune_images_per_s",
                      "prune": "prune_images_per_s", "quantize": "quantize_images_per_s"}


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("--config", default=DEFAULT_CONFIG, help=f"pipeline TOML file (default: {DEFAULT_CONFIG})")
    parser.add_argument("--threads", type=ascii_int, default=2, help="LiteRT threads for both models (default: 2)")


def _print_stages(manifest: Manifest) -> None:
    print(f"{'stage':<10} {'wall s':>8} {'train img/s':>12}")
    for name in STAGE_NAMES:
        record = manifest.stage(name)
        if record:
            rate = record["metrics"].get(THROUGHPUT_METRICS.get(name, ""), None)
            print(f"{name:<10} {record['wall_s']:>8.1f} {'-' if rate is None else f'{rate:.0f}':>12}")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    run_dir = run_dir_for(config)
    manifest = Manifest(run_dir)
    if not manifest.stage("convert"):
        raise UserError(f"{run_dir} has no converted model yet; run `make demo` (or the run for {args.config}) first")
    if args.threads < 1:
        raise UserError(f"--threads = {args.threads} must be at least 1")
    _print_stages(manifest)
    local = dataclasses.replace(select_devices(load_inventory(None), [], False, None)[0], threads=args.threads)
    run = RunVariants(run_dir, f"run the pipeline for {args.config} first")
    compressed = run.compressed()
    medians = {}
    for variant in (FLOAT, compressed):
        model, samples = run.files(variant)
        result = run_on_devices([local], model, samples, config.run.name, benchmark)
        if result.failed:
            raise UserError(f"benchmarking the {variant} model failed: {next(iter(result.failed.values()))}")
        medians[variant] = next(iter(result.succeeded.values()))["latency_ms"]["median"]
    print(f"\nLiteRT on this machine, {args.threads} threads, median per inference:")
    print(f"  {FLOAT} {medians[FLOAT]:.3f} ms   {compressed} {medians[compressed]:.3f} ms   "
          f"{FLOAT}/{compressed} = {medians[FLOAT] / medians[compressed]:.2f}x")
    return 0
