"""`bench-pipeline`: where the demo's time goes, what compression buys in latency on this machine, and
how the image-folder reader scales.

Per-stage wall time and training throughput come from the run's manifest (the numbers of
the run that produced the artifacts); each training stage's achieved FLOP/s is set against this
machine's fp32 matrix-product rate, measured now (pipeline/training/roofline.py). The latency of
the float model and of the run's compressed model is measured now, by the device agent on the
`local` device, both with the same thread count.
The data-stage figures come from the config's dataset written out as PNG folders (a quarter and all of it, under
build/bench-data/): each folder's data stage runs alone in a fresh process, which reports its
decode rate and its own peak resident memory.
"""
from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
from pathlib import Path

from pipeline.commands.arguments import ascii_int
from pipeline.commands.stages import DEFAULT_CONFIG
from pipeline.core.artifacts import Manifest
from pipeline.core.variants import FLOAT, RunVariants
from pipeline.devices import benchmark, load_inventory, run_on_devices, select_devices
from pipeline.errors import UserError
from pipeline.training.config import PipelineConfig, load_config
from pipeline.training.datasets import load_dataset
from pipeline.training.image_export import export_png_folder
from pipeline.training.model_source import load_stage_model, new_encoder
from pipeline.training.roofline import StageRoofline, matmul_flops_per_s, training_flops_per_image
from pipeline.training.runner import STAGE_NAMES, run_dir_for
from pipeline.training.ssl import rotation, simclr

THROUGHPUT_METRICS = {"pretrain": "pretrain_images_per_s", "finetune": "finetune_images_per_s",
                      "prune": "prune_images_per_s", "quantize": "quantize_images_per_s"}


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("--config", default=DEFAULT_CONFIG, help=f"pipeline TOML file (default: {DEFAULT_CONFIG})")
    parser.add_argument("--threads", type=ascii_int, default=2, help="LiteRT threads for both models (default: 2)")
    parser.add_argument("--data", choices=("both", "only", "skip"), default="both",
                        help="the image-folder data-stage figures: with the rest, alone, or not at all")


DATA_BENCH_DIR = "bench-data"
FOLDER_SIZES = {"quarter": 4, "full": 1}  # folder name -> every N-th image of the dataset


def _folder_config(folder: Path, name: str, build_dir: Path, shape: tuple[int, int, int],
                   validation_size: int) -> Path:
    """A config that reads `folder` as the dataset and stops after the data stage."""
    path = build_dir / f"{name}.toml"
    color = "grayscale" if shape[2] == 1 else "rgb"
    path.write_text(f'[run]\nname = "{name}"\nbuild_dir = "{build_dir}"\n\n[data]\nformat = "folder"\n'
                    f'path = "{folder}"\nimage_size = [{shape[0]}, {shape[1]}]\ncolor = "{color}"\n'
                    f"validation_size = {validation_size}\n")
    return path


def _data_stage_figures(config: PipelineConfig) -> None:
    """Write the dataset as PNG folders (once) and time each folder's data stage in its own process."""
    build_dir = Path(config.run.build_dir) / DATA_BENCH_DIR
    dataset = load_dataset(config.data, config.source)
    print(f"{'folder':<10} {'images':>8} {'decode img/s':>13} {'stage s':>8} {'peak RSS MB':>12}")
    for name, every in FOLDER_SIZES.items():
        folder = build_dir / f"png-{name}"
        if not folder.is_dir():
            export_png_folder(dataset, folder, every)
        toml = _folder_config(folder.resolve(), f"data-{name}", build_dir.resolve(), dataset.input_shape,
                              config.data.validation_size // every)
        done = subprocess.run([sys.executable, "-m", "pipeline", "data", "--config", str(toml), "--force"],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise UserError(f"the data stage on {folder} failed: {done.stderr.strip().splitlines()[-1]}")
        record = Manifest(build_dir / f"data-{name}").stage("data") or {}
        metrics = record["metrics"]
        images = metrics["train_images"] + metrics["validation_images"] + metrics["test_images"]
        print(f"{name:<10} {images:>8,} {metrics['decode_images_per_s']:>13.0f} {record['wall_s']:>8.1f} "
              f"{metrics['data_peak_rss_mb']:>12.1f}")


def _print_stages(manifest: Manifest) -> None:
    print(f"{'stage':<10} {'wall s':>8} {'train img/s':>12}")
    for name in STAGE_NAMES:
        record = manifest.stage(name)
        if record:
            rate = record["metrics"].get(THROUGHPUT_METRICS.get(name, ""), None)
            print(f"{name:<10} {record['wall_s']:>8.1f} {'-' if rate is None else f'{rate:.0f}':>12}")


def _stage_models(config: PipelineConfig, manifest: Manifest) -> dict[str, int]:
    """Training FLOPs per image of each stage that trains the run's classifier (or its encoder)."""
    classifier = load_stage_model(manifest.output_path("finetune", "classifier"), config)
    per_image = {stage: training_flops_per_image(classifier) for stage in ("finetune", "prune", "quantize")}
    if config.pretrain.method in ("simclr", "rotation") and not config.model.path:
        encoder = new_encoder(config, classifier)
        features = encoder.output_shape[-1]
        if config.pretrain.method == "simclr":
            head, views = simclr.projection_head(features, config.pretrain.projection_dim), 2
        else:
            head, views = rotation.rotation_head(features), 1
        per_image["pretrain"] = training_flops_per_image(encoder, views) + training_flops_per_image(head, views)
    return per_image


def rooflines(config: PipelineConfig, manifest: Manifest, ceiling: float) -> list[StageRoofline]:
    """The achieved FLOP/s of every training stage the run recorded a throughput for."""
    flops = _stage_models(config, manifest)
    found = []
    for stage, per_image in flops.items():
        record = manifest.stage(stage) or {}
        rate = record.get("metrics", {}).get(THROUGHPUT_METRICS[stage])
        if rate:
            found.append(StageRoofline(stage, rate, per_image, ceiling))
    return found


def _print_rooflines(config: PipelineConfig, manifest: Manifest) -> None:
    ceiling = matmul_flops_per_s()
    print(f"\nfp32 matrix product on this machine: {ceiling / 1e9:.1f} GFLOP/s (the ceiling)")
    print(f"{'stage':<10} {'train img/s':>12} {'MFLOP/img':>10} {'GFLOP/s':>8} {'of ceiling':>11}")
    for row in rooflines(config, manifest, ceiling):
        print(f"{row.stage:<10} {row.images_per_s:>12.0f} {row.flops_per_image / 1e6:>10.1f} "
              f"{row.flops_per_s / 1e9:>8.1f} {row.efficiency:>11.2f}")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.data != "skip":
        _data_stage_figures(config)
        if args.data == "only":
            return 0
        print()
    run_dir = run_dir_for(config)
    manifest = Manifest(run_dir)
    if not manifest.stage("convert"):
        raise UserError(f"{run_dir} has no converted model yet; run `make demo` (or the run for {args.config}) first")
    if args.threads < 1:
        raise UserError(f"--threads = {args.threads} must be at least 1")
    _print_stages(manifest)
    _print_rooflines(config, manifest)
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
