"""Command line: one subcommand per job, each implemented in its own module.

Modules are imported only when their subcommand runs, so `--help` and cache checks stay
fast and do not import TensorFlow. A command module provides
`add_arguments(parser)` and `run(args) -> int`, and may set `EXIT_USER_ERROR` when bad input
must not exit 1 (the nightly's 1 means "regression").
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import NoReturn

from pipeline.core.safe_text import one_line
from pipeline.errors import UserError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("pipeline.commands.stages", "run every training stage (cached stages are skipped)"),
    "data": ("pipeline.commands.stages", "stage 1: load the dataset and carve the validation split"),
    "pretrain": ("pipeline.commands.stages", "stage 2: self-supervised pretraining of the encoder"),
    "finetune": ("pipeline.commands.stages", "stage 3: few-label fine-tuning (and the from-scratch baseline)"),
    "distill": ("pipeline.commands.stages", "stage 4: knowledge distillation into a smaller student (optional)"),
    "slim": ("pipeline.commands.stages", "stage 5: channel pruning / low-rank factorization (optional)"),
    "prune": ("pipeline.commands.stages", "stage 6: magnitude pruning with TF-MOT"),
    "cluster": ("pipeline.commands.stages", "stage 7: weight clustering with TF-MOT (optional)"),
    "quantize": ("pipeline.commands.stages", "stage 8: QAT / PQAT / CQAT / PCQAT, or PTQ"),
    "convert": ("pipeline.commands.stages", "stage 9: full-int8 TFLite conversion and verification"),
    "label-table": ("pipeline.commands.label_table", "SSL vs from-scratch accuracy per label fraction (README table)"),
    "export-folder": ("pipeline.commands.export_folder", "write the config's dataset out as a PNG image folder"),
    "calibration": ("pipeline.commands.calibration", "regenerate calibration_data/ (byte-identical)"),
    "bench-pipeline": ("pipeline.commands.bench_pipeline", "per-stage wall time, throughput, float vs int8 latency"),
    "bench": ("pipeline.commands.bench", "benchmark a model on one or more devices with the device agent"),
    "deploy": ("pipeline.commands.deploy", "upload the agent and a model to devices without benchmarking"),
    "bench-agent": ("pipeline.commands.bench_agent", "agent vs benchmark_litert_model latency; SSH upload vs scp"),
    "edgetpu-check": ("pipeline.commands.edgetpu_check", "static Edge TPU compatibility report of an int8 .tflite"),
    "edgetpu-compile": ("pipeline.commands.edgetpu_compile", "compile an int8 .tflite with edgetpu_compiler"),
    "bench-results": ("pipeline.commands.bench_results", "results store insert/query throughput, SQLite vs PostgreSQL"),
    "results": ("pipeline.commands.results", "list and filter stored results (table or JSON)"),
    "baseline": ("pipeline.commands.baseline", "pin or unpin the baseline run for regression checks"),
    "nightly": ("pipeline.commands.nightly", "train, benchmark, record and report every nightly variant"),
    "bench-nightly-noise": ("pipeline.commands.bench_nightly_noise", "unchanged nightlies in a row: false alarms"),
    "sweep": ("pipeline.commands.sweep", "train, benchmark and compare every compression variant of the sweep"),
    "search": ("pipeline.commands.search", "multi-objective search of compression recipes, timed on the devices"),
}


class OneLineArgumentParser(argparse.ArgumentParser):
    """Argument errors as a UserError: one line naming the problem and where help is, exit 1, like every other
    error (argparse prints its usage block and exits 2). Subcommand parsers inherit the class."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{message}; see {self.prog} --help")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(prog="python -m pipeline", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        command_parser.set_defaults(_module=module_name)
        # Arguments are added lazily (see main) except for the one being run.
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    module = None
    try:
        if argv and argv[0] in COMMANDS:
            # Re-build only the chosen subcommand with its real arguments.
            module = importlib.import_module(COMMANDS[argv[0]][0])
            parser = OneLineArgumentParser(prog=f"python -m pipeline {argv[0]}", description=COMMANDS[argv[0]][1])
            module.add_arguments(parser, argv[0])
            args = parser.parse_args(argv[1:])
            args.command = argv[0]
            return int(module.run(args) or 0)
        build_parser().parse_args(argv)  # prints help (exit 0), or refuses a missing or unknown command
    except UserError as error:
        print(f"error: {one_line(error)}", file=sys.stderr)  # one line, whatever strings the message quotes
        return getattr(module, "EXIT_USER_ERROR", 1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 1
