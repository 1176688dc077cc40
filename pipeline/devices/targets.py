"""What `bench` and `deploy` act on: devices from the inventory and a model with its samples
(the run's manifest by default, or --model/--samples)."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.names import check_name
from pipeline.core.runs import DEFAULT_BUILD_DIR, DEFAULT_RUN
from pipeline.core.variants import VARIANT_NAMES, variant_files
from pipeline.devices.inventory import DeviceProfile, inventory_path, load_inventory, select_devices
from pipeline.errors import UserError

BUILD_DIR = Path(DEFAULT_BUILD_DIR)
MANIFEST_HINT = "run `make demo` first (or pick another --run/--variant), or pass --model M.tflite --samples S.npz"


@dataclass(frozen=True)
class Targets:
    profiles: list[DeviceProfile]
    model: Path
    samples: Path
    run: str


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", action="append", default=[], metavar="NAME",
                        help="device from the inventory (repeatable; default: local)")
    parser.add_argument("--all", action="store_true", help="every device of the inventory")
    parser.add_argument("--devices", metavar="FILE", help="inventory file (default: $DEVICES, else ./devices.toml)")
    add_model_arguments(parser)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", default=DEFAULT_RUN, help="pipeline run whose model to use (default: %(default)s)")
    parser.add_argument("--variant", choices=VARIANT_NAMES,
                        help="which model of the run (default: the run's compressed model, metrics.compressed_variant)")
    parser.add_argument("--model", type=Path, help="a .tflite file instead of the run's model")
    parser.add_argument("--samples", type=Path, help="its samples .npz (required with --model)")


def _existing(path: Path, what: str) -> Path:
    if not path.is_file():
        raise UserError(f"{what} {path} does not exist; check the path (or rerun `make demo`)")
    return path


def model_from_args(args: argparse.Namespace) -> tuple[Path, Path]:
    """--model/--samples, else the run's manifest; both files must exist."""
    check_name(args.run, "--run")
    if args.model is None and args.samples is not None:
        raise UserError("--samples needs --model (without both, the run's manifest names them)")
    if args.model is not None:
        if args.samples is None:
            raise UserError("--model needs --samples S.npz (the labelled images and reference outputs for it)")
        model, samples = args.model, args.samples
    else:
        model, samples = variant_files(BUILD_DIR / args.run, args.variant, MANIFEST_HINT)
    return _existing(model, "model"), _existing(samples, "samples file")


def targets_from_args(args: argparse.Namespace) -> Targets:
    """Devices and model chosen on the command line, all checked before any device is contacted."""
    if args.all and args.device:
        raise UserError("give either --all or --device NAME, not both")
    source = inventory_path(args.devices)
    profiles = select_devices(load_inventory(source), args.device, args.all, source)
    model, samples = model_from_args(args)
    return Targets(profiles, model, samples, args.run)
