"""`python -m pipeline deploy`: put the agent, model and samples into each device's cache
without benchmarking (what is already there is not sent again)."""
from __future__ import annotations

import argparse

from pipeline.devices.bench_run import deploy, run_on_devices
from pipeline.devices.result_table import print_failures
from pipeline.devices.targets import add_target_arguments, targets_from_args


def add_arguments(parser: argparse.ArgumentParser, command_name: str) -> None:
    add_target_arguments(parser)


def run(args: argparse.Namespace) -> int:
    targets = targets_from_args(args)
    results = run_on_devices(targets.profiles, targets.model, targets.samples, targets.run, deploy)
    for name, uploads in results.succeeded.items():
        sent = sum(upload.bytes_sent for upload in uploads)
        print(f"{name}: {sent:,} bytes sent; on the device: {' '.join(upload.remote for upload in uploads)}")
    return print_failures(results)
