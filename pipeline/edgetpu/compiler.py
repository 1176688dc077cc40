"""Run `edgetpu_compiler` on an int8 .tflite and keep `<name>_edgetpu.tflite` and its log.

The compiler writes into a fresh temporary folder next to the destination; its outputs are
renamed into place only after it succeeded and its log was parsed, so an interrupted or failed
compile never leaves a half-written `_edgetpu.tflite` behind.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.core.artifacts import TMP_PREFIX
from pipeline.edgetpu.compiler_log import CompilerLog, parse_compiler_log
from pipeline.errors import UserError
from pipeline.tflite.graph import require_tflite

COMPILER = "edgetpu_compiler"
COMPILE_TIMEOUT_S = 600  # the compiler has its own 180 s timer per attempt; this only catches a hang
OUTPUT_SUFFIX = "_edgetpu"
INSTALL_HINT = (
    f"{COMPILER} is not on PATH: install the `edgetpu-compiler` package from Coral's apt repository "
    "(deb https://packages.cloud.google.com/apt coral-edgetpu-stable main; x86-64 Debian/Ubuntu only, "
    "see https://coral.ai/docs/edgetpu/compiler/), or use `python -m pipeline edgetpu-check` for a static report"
)


@dataclass(frozen=True)
class CompileResult:
    model: Path
    output: Path
    log_file: Path | None
    compiler: Path
    log: CompilerLog

    def to_dict(self) -> dict[str, Any]:
        return {"model": str(self.model), "output": str(self.output), "compiler": str(self.compiler),
                "log_file": None if self.log_file is None else str(self.log_file), **self.log.to_dict()}


def find_compiler() -> Path:
    found = shutil.which(COMPILER)
    if found is None:
        raise UserError(INSTALL_HINT)
    return Path(found)


def compiled_name(model: Path) -> str:
    return f"{model.stem}{OUTPUT_SUFFIX}.tflite"


def compile_model(model: Path, out_dir: Path | None = None) -> CompileResult:
    """Compile `model` into `out_dir` (default: next to the model) and parse the compiler's report."""
    require_tflite(model)
    compiler = find_compiler()
    out_dir = model.parent if out_dir is None else out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}edgetpu-", dir=out_dir))
    try:
        stdout = _run(compiler, model, work)
        produced = work / compiled_name(model)
        if not produced.is_file():
            raise UserError(f"{COMPILER} reported success but wrote no {produced.name}: run it by hand to see why")
        require_tflite(produced)
        produced_log = produced.with_suffix(".log")
        log = _parse(stdout, produced_log)
        return _publish(model, compiler, log, produced, produced_log, out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(compiler: Path, model: Path, work: Path) -> str:
    command = [str(compiler), "-s", "-o", str(work), str(model.resolve())]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as error:
        raise UserError(f"{COMPILER} did not finish within {COMPILE_TIMEOUT_S} s on {model}: "
                        "try a smaller model or run it by hand") from error
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise UserError(f"{COMPILER} failed on {model} (exit {done.returncode}): {_failure_line(output)}")
    return output


def _failure_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        if line.startswith(("ERROR", "Compilation failed:", "Invalid model")):
            return line
    return lines[-1] if lines else "no output"


def _parse(stdout: str, log_file: Path) -> CompilerLog:
    log = parse_compiler_log(stdout)
    if (log is None or not log.operators) and log_file.is_file():
        log = parse_compiler_log(log_file.read_text(errors="replace")) or log
    if log is None:
        raise UserError(f"could not find the operation counts in {COMPILER}'s output: is it a real edgetpu_compiler?")
    return log


def _publish(model: Path, compiler: Path, log: CompilerLog, produced: Path, produced_log: Path,
             out_dir: Path) -> CompileResult:
    """Rename the outputs into place: the log first, the model last, each in one atomic step."""
    final_log = out_dir / produced_log.name if produced_log.is_file() else None
    if final_log is not None:
        os.replace(produced_log, final_log)
    output = out_dir / produced.name
    os.replace(produced, output)
    return CompileResult(model=model, output=output, log_file=final_log, compiler=compiler, log=log)
