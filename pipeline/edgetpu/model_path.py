"""Which model the Edge TPU commands work on: the one given, or the demo run's int8 model."""
from __future__ import annotations

from pathlib import Path

from pipeline.core.artifacts import MANIFEST_NAME, read_json
from pipeline.errors import UserError

DEMO_RUN_DIR = Path("build/demo")
INT8_ARTIFACT = "int8_tflite"  # key under the manifest's top-level "artifacts"


def resolve_model(given: str | None, run_dir: Path = DEMO_RUN_DIR) -> Path:
    """`given` as a path, or `artifacts.int8_tflite` of `run_dir`'s manifest when none is given."""
    if given:
        return Path(given)
    manifest = run_dir / MANIFEST_NAME
    hint = "run `make demo` (or `make stage-convert`) first, or pass MODEL=path/to/model.tflite"
    if not manifest.is_file():
        raise UserError(f"no model given and {manifest} does not exist: {hint}")
    try:
        relative = read_json(manifest).get("artifacts", {}).get(INT8_ARTIFACT)
    except ValueError as error:
        raise UserError(f"{manifest} is not valid JSON ({error}): {hint}") from error
    if not relative:
        raise UserError(f"no model given and {manifest} has no artifacts.{INT8_ARTIFACT}: {hint}")
    return run_dir / relative
