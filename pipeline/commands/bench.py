"""`python -m pipeline bench`: benchmark a model on one or more devices with the device agent.

Each device's document (the agent's JSON plus bytes_sent, model_path and run) is saved under
build/<run>/bench/; a device that fails is reported with its reason while the others finish.
"""
from __future__ import annotations

import argparse
import json
import sys

from pipeline.devices.bench_run import benchmark, run_on_devices
from pipeline.devices.group import failure_reason
from pipeline.devices.result_table import format_table, print_failures, save_result
from pipeline.devices.targets import BUILD_DIR, add_target_arguments, targets_from_args


def add_arguments(parser: argparse.ArgumentParser, command_name: str) -> None:
    add_target_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the documents as JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    targets = targets_from_args(args)
    results = run_on_devices(targets.profiles, targets.model, targets.samples, targets.run, benchmark)
    documents = results.succeeded
    saved = {name: save_result(document, BUILD_DIR, name) for name, document in documents.items()}
    if args.json:
        failures = [{"device": name, "error": failure_reason(name, error)} for name, error in results.failed.items()]
        print(json.dumps(list(documents.values()) + failures, indent=2, sort_keys=True))
    elif documents:
        print(format_table(list(documents.values())))
    for path in saved.values():
        print(f"saved {path}", file=sys.stderr if args.json else sys.stdout)
    return print_failures(results)
