"""`results`: list stored benchmark results of complete runs as a table or JSON, with filters."""
from __future__ import annotations

import argparse
import json

from pipeline.commands.arguments import ascii_int
from pipeline.core.variants import VARIANT_NAMES
from pipeline.errors import UserError
from pipeline.results.listing import format_results
from pipeline.results.store import COMPLETE, FAILED, RUNNING, ResultsStore
from pipeline.results.timeutil import parse_time


def add_db_argument(parser: argparse.ArgumentParser, *, in_subcommand: bool = False) -> None:
    """--db URL; a subcommand's copy must not reset a value given before the subcommand's name."""
    parser.add_argument("--db", metavar="URL", default=argparse.SUPPRESS if in_subcommand else None,
                        help="results database: postgresql://... or a SQLite file (default: $RESULTS_DB, "
                             "else results/results.db)")


def add_arguments(parser: argparse.ArgumentParser, command_name: str) -> None:
    parser.add_argument("--device", help="only this device (its name in the agent's results)")
    parser.add_argument("--variant", help=f"only this model variant ({', '.join(VARIANT_NAMES)})")
    parser.add_argument("--since", metavar="DATE", help="runs started on or after DATE (YYYY-MM-DD or ISO time, UTC)")
    parser.add_argument("--until", metavar="DATE", help="runs started on or before DATE (a bare date includes the day)")
    parser.add_argument("--run", type=ascii_int, metavar="ID", help="only this run id")
    parser.add_argument("--all", action="store_true", help="include running and failed runs too")
    parser.add_argument("--json", action="store_true", help="print JSON (one object per result) instead of a table")
    add_db_argument(parser)


def run(args: argparse.Namespace) -> int:
    since = parse_time(args.since, what="--since") if args.since else None
    until = parse_time(args.until, what="--until", end_of_day=True) if args.until else None
    if since and until and since > until:
        raise UserError(f"--since {args.since} is after --until {args.until}: swap them")
    statuses = (COMPLETE, RUNNING, FAILED) if args.all else (COMPLETE,)
    with ResultsStore.open(args.db) as store:
        rows = store.results(device=args.device, variant=args.variant, since=since, until=until, run_id=args.run,
                             statuses=statuses)
        location = store.db.url
    if args.json:
        for row in rows:
            row["throttled"] = None if row["throttled"] is None else bool(row["throttled"])
        print(json.dumps(rows, indent=2))
    elif rows:
        print(format_results(rows))
    else:
        print(f"no matching results in {location}")
    return 0
