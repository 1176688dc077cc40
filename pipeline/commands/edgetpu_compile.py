"""`edgetpu-compile`: compile an int8 .tflite with edgetpu_compiler into `<name>_edgetpu.tflite`.

The static check's prediction is shown next to the compiler's counts, so a mismatch between
the documented rules and the real compiler is visible.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipeline.commands.edgetpu_check import MODEL_HELP, resolve_model
from pipeline.edgetpu.compatibility import check_model
from pipeline.edgetpu.compiler import CompileResult, compile_model


def add_arguments(parser: argparse.ArgumentParser, command_name: str) -> None:
    parser.add_argument("model", nargs="?", help=MODEL_HELP)
    parser.add_argument("--output-dir", type=Path, help="folder for <name>_edgetpu.tflite (default: next to the model)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    model = resolve_model(args.model)
    result = compile_model(model, args.output_dir)
    predicted = check_model(model)
    if args.json:
        static = {"ops_total": len(predicted.verdicts), "ops_on_edgetpu": predicted.ops_on_edgetpu}
        print(json.dumps({**result.to_dict(), "static_check": static}, indent=2))
    else:
        print(_summary(result, predicted.ops_on_edgetpu, len(predicted.verdicts)))
    return 0


def _summary(result: CompileResult, predicted_on_edgetpu: int, predicted_total: int) -> str:
    log = result.log
    lines = [
        f"compiled {result.model} with {result.compiler} (version {log.compiler_version or 'unknown'})",
        f"wrote {result.output}" + (f" and {result.log_file}" if result.log_file else ""),
        f"{log.ops_on_edgetpu} of {log.ops_total} ops mapped to the Edge TPU, {log.ops_on_cpu} on the CPU "
        f"(static check predicted {predicted_on_edgetpu} of {predicted_total})",
    ]
    width = max([len(line.op) for line in log.operators] + [len("operator")])
    if log.operators:
        lines.append(f"  {'operator'.ljust(width)}  count  status")
        lines += [f"  {line.op.ljust(width)}  {line.count:>5}  {line.status}" for line in log.operators]
    return "\n".join(lines)
