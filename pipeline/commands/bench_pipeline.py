"""`bench-pipeline`: where the demo's time goes, and what int8 buys in latency on this machine.

Per-stage wall time and training throughput come from the run's manifest (the numbers of
the run that produced the artifacts); float vs int8 latency is measured now, by the device
agent on the `local` device, both models with the same thread count.
"""
from __future__ import annotations

import argparse
import dataclasses

from pipeline.commands.arguments import ascii_int
from pipeline.commands.stages import DEFAULT_CONFIG
from pipeline.core.artifacts import Manifest
from pipeline.devices import benchmark, load_inventory, model_from_manifest, run_on_devices, select_devices
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
    medians = {}
    for variant in ("float", "int8"):
        model, samples = model_from_manifest(run_dir, variant)
        result = run_on_devices([local], model, samples, config.run.name, benchmark)
        if result.failed:
            raise UserError(f"benchmarking the {variant} model failed: {next(iter(result.failed.values()))}")
        medians[variant] = next(iter(result.succeeded.values()))["latency_ms"]["median"]
    print(f"\nLiteRT on this machine, {args.threads} threads, median per inference:")
    print(f"  float {medians['float']:.3f} ms   int8 {medians['int8']:.3f} ms   "
          f"float/int8 = {medians['float'] / medians['int8']:.2f}x")
    return 0
