"""`make bench-nightly-noise`: NIGHTS nightly runs in a row with nothing changed, into a fresh store.

Every night trains nothing new (cached stages) and benchmarks the same model files, so any model
regression it reports is a false alarm. Prints one line per night (verdict, exit code, how many series
needed a back-to-back A/B and how long it took next to one benchmark) and the totals. A benchmark, not a
test: it prints numbers and asserts none. The store, reports and kept models go under --out.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from pipeline.commands.arguments import ascii_int
from pipeline.errors import UserError
from pipeline.nightly.job import run_nightly
from pipeline.nightly.nightly_config import DEFAULT_CONFIG, load_nightly_config, with_overrides

DEFAULT_NIGHTS = 10
DEFAULT_OUT = "build/bench-nightly-noise"


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="nightly TOML file (default: %(default)s)")
    parser.add_argument("--pipeline", help="pipeline config instead of the nightly config's (e.g. configs/tiny.toml)")
    parser.add_argument("--nights", type=ascii_int, default=DEFAULT_NIGHTS,
                        help="nights in a row (default: %(default)s)")
    parser.add_argument("--out", default=DEFAULT_OUT,
                        help="an empty folder for the store, reports and kept models (default: %(default)s)")


def _night_line(number: int, exit_code: int, verdict: str, report: dict, seconds: float) -> tuple[str, int, int]:
    """One night's line, its model regressions and its A/B series."""
    findings = report["findings"]
    regressions = sum(f["verdict"] == "model-regression" for f in findings)
    timed = {(f["series"]["device"], f["series"]["variant"]): f["evidence"] for f in findings
             if f["evidence"].get("ab_seconds") is not None}
    ab = ", ".join(f"{variant} {e['ab_seconds']:.1f} s vs {e['benchmark_seconds']:.1f} s"
                   for (_, variant), e in sorted(timed.items())) or "none"
    return (f"night {number:2d}: exit {exit_code}, {seconds:5.1f} s, A/B: {ab}\n          {verdict}",
            regressions, len(timed))


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        print(f"error: {out} is not empty: pass a new --out folder (each benchmark starts from an empty store)")
        return 1
    config = with_overrides(load_nightly_config(args.config), pipeline=args.pipeline,
                            results_db=str(out / "results.db"),
                            reports_dir=str(out / "reports"), models_dir=str(out / "models"))
    total_regressions = total_ab = 0
    for number in range(1, args.nights + 1):
        started = time.monotonic()
        outcome = run_nightly(config)
        if outcome.report_dir is None:
            raise UserError(f"night {number}: its report could not be written ({outcome.verdict}); see the error "
                            f"above, then rerun with a new --out")
        report = json.loads((outcome.report_dir / "report.json").read_text())
        line, regressions, ab_series = _night_line(number, outcome.exit_code, outcome.verdict, report,
                                                   time.monotonic() - started)
        print(line, flush=True)
        total_regressions += regressions
        total_ab += ab_series
    print(f"{args.nights} unchanged nights: {total_regressions} model regression(s) reported (false alarms), "
          f"{total_ab} back-to-back A/B(s) run")
    return 0
