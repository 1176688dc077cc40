"""The one adapter from the training pipeline's `build/<run>/manifest.json` to store records.

Which variants a run made and their numbers come from the variant registry
(pipeline/core/variants.py), which reads `metrics.variants.<name>`; the file's hash and size come
from the stage output record of the variant's artifact.
"""
from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.core.artifacts import gzip_size
from pipeline.core.variants import RunVariants, variant
from pipeline.results.store import ResultsStore, VariantRecord

MANIFEST_HINT = "run the training pipeline first (python -m pipeline run)"


def _output_record(manifest: Mapping[str, Any], artifact: str) -> dict[str, Any]:
    """The {path, sha256, bytes} the stage that wrote `artifact` recorded for it."""
    for stage in manifest.get("stages", {}).values():
        record = stage.get("outputs", {}).get(artifact)
        if record:
            return record
    return {}


def variants_from_manifest(run: RunVariants) -> list[VariantRecord]:
    """One VariantRecord per variant the run made; gzip size measured from the file if absent."""
    records = []
    for name in run.names():
        entry, own = variant(name), run.metrics_of(name)
        output = _output_record(run.data, entry.artifact)
        gzip_bytes = own.get("gzip_bytes")
        path = run.run_dir / output["path"] if output else None
        if gzip_bytes is None and path is not None and path.is_file():
            gzip_bytes = gzip_size(path)
        records.append(VariantRecord(
            name=name, sha256=output.get("sha256"), bytes=output.get("bytes", own.get("bytes")),
            gzip_bytes=gzip_bytes, sparsity=own.get("tflite_sparsity"),
            float_accuracy=own.get("source_float_accuracy") if entry.quantized else own.get("accuracy"),
            int8_accuracy=own.get("accuracy") if entry.quantized else None, metrics=own))
    return records


def git_commit(repo_dir: Path = Path(".")) -> str | None:
    """HEAD of the checkout the run came from, or None outside a git checkout."""
    try:
        result = subprocess.run(["git", "-C", str(repo_dir), "rev-parse", "HEAD"], capture_output=True, text=True)
    except OSError:
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def begin_pipeline_run(store: ResultsStore, run_dir: str | Path, *, kind: str = "nightly",
                       commit: str | None = None) -> int:
    """Record `run_dir/manifest.json` as a running run with its variants (one transaction); return the run id."""
    run = RunVariants(run_dir, MANIFEST_HINT)
    manifest = run.data
    config = {name: stage.get("config") for name, stage in manifest.get("stages", {}).items()}
    return store.begin_run(manifest.get("run") or run.run_dir.name, kind=kind, git_commit=commit or git_commit(),
                           config_path=manifest.get("config_path"), config=config,
                           metrics=manifest.get("metrics"), variants=variants_from_manifest(run))
