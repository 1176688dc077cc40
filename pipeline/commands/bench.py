"""`python -m pipeline bench`: benchmark a model on one or more devices with the device agent.

Each device's document (the agent's JSON plus bytes_sent, model_path and run) is printed first,
then saved under build/<run>/bench/; a save that fails keeps a copy in the temporary folder and
says where. A device that fails, or whose result contradicts the host, is reported with its
reason while the others finish. Ctrl-C cancels the devices still working and keeps the finished ones.
"""
from __future__ import annotations

import argparse
import json
import sys

from pipeline.devices.bench_run import benchmark, run_on_devices
from pipeline.devices.group import GroupResult, Interrupted, failure_reason
from pipeline.devices.result_table import format_table, print_failures, print_mismatches, save_or_keep
from pipeline.devices.targets import BUILD_DIR, add_target_arguments, targets_from_args

EXIT_INTERRUPTED = 130


def add_arguments(parser: argparse.ArgumentParser, command_name: str) -> None:
    add_target_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the documents as JSON instead of a table")


def _report(results: GroupResult, as_json: bool) -> int:
    """Print, then save, every finished result; the exit code (1 if anything failed or was not saved)."""
    documents = results.succeeded
    if as_json:
        failures = [{"device": name, "error": failure_reason(name, error)} for name, error in results.failed.items()]
        print(json.dumps(list(documents.values()) + failures, indent=2, sort_keys=True))
    elif documents:
        print(format_table(list(documents.values())))
    sys.stdout.flush()
    unsaved = []
    for name, document in documents.items():
        path, problem = save_or_keep(document, BUILD_DIR, name)
        if problem:
            unsaved.append(problem)
        else:
            print(f"saved {path}", file=sys.stderr if as_json else sys.stdout)
    code = max(print_failures(results), print_mismatches(documents))
    for problem in unsaved:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if unsaved else code


def run(args: argparse.Namespace) -> int:
    targets = targets_from_args(args)
    try:
        results = run_on_devices(targets.profiles, targets.model, targets.samples, targets.run, benchmark)
    except Interrupted as interrupted:
        _report(interrupted.finished, args.json)
        cancelled = [profile.name for profile in targets.profiles if profile.name not in interrupted.finished]
        print(f"interrupted: kept {len(interrupted.finished.succeeded)} finished result(s); cancelled "
              f"{', '.join(cancelled) or 'nothing'}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return _report(results, args.json)
