"""`baseline pin RUN | unpin | show`: which run regression checks compare against."""
from __future__ import annotations

import argparse

from pipeline.commands.results import add_db_argument
from pipeline.results.db import Row
from pipeline.results.regression import DEFAULT_BASELINE_RUNS
from pipeline.results.store import ResultsStore

ROLLING = f"regressions compare against the last {DEFAULT_BASELINE_RUNS} good (complete, unthrottled) nightly runs"


def add_arguments(parser: argparse.ArgumentParser, command_name: str) -> None:
    add_db_argument(parser)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    pin = actions.add_parser("pin", help="compare later runs against this complete run")
    pin.add_argument("run", help="run id, or a run name (its newest complete run)")
    actions.add_parser("unpin", help="go back to the rolling nightly baseline")
    actions.add_parser("show", help="print the pinned run, if any")
    for action in actions.choices.values():
        add_db_argument(action, in_subcommand=True)


def describe(run: Row) -> str:
    commit = (run.get("git_commit") or "unknown")[:12]
    return f"run {run['id']} {run['name']!r} ({run['kind']}, started {run['started_at']}, commit {commit})"


def run(args: argparse.Namespace) -> int:
    with ResultsStore.open(args.db) as store:
        if args.action == "pin":
            print(f"pinned baseline: {describe(store.pin_baseline(args.run))}")
        elif args.action == "unpin":
            print(("unpinned; " if store.unpin_baseline() else "nothing was pinned; ") + ROLLING)
        else:
            pinned = store.pinned_baseline()
            print(f"pinned baseline: {describe(pinned)}, pinned at {pinned['pinned_at']}" if pinned else
                  f"no pinned baseline: {ROLLING}")
    return 0
