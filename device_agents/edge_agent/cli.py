"""Command line of the agent: parse, run the benchmark, print exactly one JSON document.

stdout carries only the final document (the host parses it): while the benchmark runs, file
descriptor 1 points at stderr, so log lines printed by native runtime code cannot corrupt it.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from . import AGENT_VERSION, SCHEMA_VERSION
from .errors import AgentError, UsageError, one_line
from .meters import METER_CHOICES
from .runtimes import RUNTIME_CHOICES

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DELEGATE_HELP = "xnnpack (the runtime's default CPU path), none (plain CPU kernels), edgetpu, or a delegate .so path"


class AgentArgumentParser(argparse.ArgumentParser):
    """Usage errors become a UsageError (reported as JSON, exit 2) instead of argparse's exit."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see --help)")


def _number(kind: type, minimum: float, strict: bool = False) -> Any:
    """argparse type accepting finite numbers >= minimum (> minimum when strict), in ASCII digits: int() and
    float() also read other scripts' digits ('٣' is 3), and float() reads nan and inf."""

    def parse(text: str) -> Any:
        value = kind(text)
        if not text.isascii() or not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number in ASCII digits")
        if value < minimum or (strict and value == minimum):
            raise argparse.ArgumentTypeError(f"{text} must be {'>' if strict else '>='} {minimum:g}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _key_value(text: str) -> tuple[str, str]:
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not key=value")
    return key, value


def build_parser() -> argparse.ArgumentParser:
    parser = AgentArgumentParser(
        prog="agent.pyz", description="Benchmark one .tflite model on this device and print one JSON document."
    )
    add = parser.add_argument
    add("--model", required=True, help="the .tflite model to benchmark")
    add("--samples", required=True, help="samples .npz written by the host (images, labels, reference_outputs, ...)")
    add("--device", help="name to report for this device (default: the hostname)")
    add("--runtime", default="auto", choices=RUNTIME_CHOICES, help="TFLite runtime (auto tries them in order)")
    add("--delegate", default="xnnpack", help=DELEGATE_HELP)
    add("--delegate-option", dest="delegate_options", action="append", type=_key_value, default=[],
        metavar="KEY=VALUE", help="option passed to load_delegate (repeatable)")
    add("--threads", type=_number(int, 1), default=os.cpu_count() or 1, help="interpreter threads (default: all CPUs)")
    add("--warmup-runs", type=_number(int, 0), default=5, help="minimum warm-up invokes")
    add("--warmup-min-s", type=_number(float, 0), default=0.5, help="minimum warm-up seconds")
    add("--runs", type=_number(int, 1), default=50, help="minimum timed invokes")
    add("--min-s", type=_number(float, 0), default=1.0, help="minimum timed seconds")
    add("--eval-limit", type=_number(int, 0), help="evaluate accuracy on at most this many samples (default: all)")
    add("--energy-meter", default="none", choices=METER_CHOICES, help="power source sampled during the run")
    add("--meter-option", dest="meter_options", action="append", type=_key_value, default=[],
        metavar="KEY=VALUE", help="meter setting, e.g. hwmon=hwmon2, name=ina219, channels=1,2 (repeatable)")
    add("--sysfs-root", default="/", help="root under which /sys is read (tests point it at a fixture tree)")
    add("--idle-s", type=_number(float, 0), default=1.0, help="idle window measured before warm-up (energy only)")
    add("--sample-hz", type=_number(float, 0, strict=True), default=20.0, help="power sampling rate")
    add("--baseline-model", help="A/B mode: time --model (A) and this model (B) interleaved, round by round")
    add("--baseline-samples", help="A/B mode: samples .npz for the baseline model (default: --samples)")
    add("--rounds", type=_number(int, 3), default=10,
        help="A/B mode: rounds; each model gets 1/rounds of --runs and --min-s per round (default: %(default)s)")
    add("--version", action="version", version=f"edge_agent {AGENT_VERSION}")
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    args.delegate_options = dict(args.delegate_options)
    args.meter_options = dict(args.meter_options)
    return args


@contextmanager
def _stdout_redirected_to_stderr() -> Iterator[None]:
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def error_document(message: str) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "error": message}


def _run_safely(args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    from .ab import run_ab  # numpy is imported only once the arguments are valid
    from .benchmark import run_benchmark
    from .document_schema import SchemaError, check_ab_document, check_benchmark_document

    try:
        document = run_ab(args) if args.baseline_model else run_benchmark(args)
        (check_ab_document if args.baseline_model else check_benchmark_document)(document)
        return document, EXIT_OK
    except SchemaError as exc:  # the host would refuse it: say so here, where the cause is
        return error_document(f"internal error: the result breaks the document schema: {exc}"), EXIT_FAILED
    except UsageError as exc:
        return error_document(str(exc)), EXIT_USAGE
    except AgentError as exc:
        return error_document(str(exc)), EXIT_FAILED
    except KeyboardInterrupt:
        return error_document("interrupted"), EXIT_FAILED
    except Exception as exc:  # a bug or a runtime failure: still one JSON line; the traceback goes to stderr
        traceback.print_exc()
        return error_document(f"internal error {type(exc).__name__}: {one_line(exc)}"), EXIT_FAILED


def _emit(document: dict[str, Any], code: int) -> int:
    try:
        text = json.dumps(document, allow_nan=False)
    except ValueError:
        text, code = json.dumps(error_document("the result contained NaN or infinity: check the model")), EXIT_FAILED
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
    return code


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except UsageError as exc:
        return _emit(error_document(str(exc)), EXIT_USAGE)
    with _stdout_redirected_to_stderr():
        document, code = _run_safely(args)
    return _emit(document, code)
