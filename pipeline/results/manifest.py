"""The one adapter from the training pipeline's `build/<run>/manifest.json` to store records.

Everything manifest-specific lives here. The convert stage names each variant's metrics
after its artifact (`int8_tflite_accuracy`, `ptq_int8_tflite_gzip_bytes`, ...) and a few after
the variant (`int8_boundary_ok`, `ptq_int8_accuracy`); both prefixes are stripped to give the
variant's own metrics. The float model each int8 variant was quantized from has its
accuracy under a run-level name (`float_accuracy` is the pruned Keras model).
"""
from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.core.artifacts import MANIFEST_NAME, gzip_size, read_json
from pipeline.errors import UserError
from pipeline.results.store import ResultsStore, VariantRecord


@dataclass(frozen=True)
class VariantSource:
    """Where one variant's numbers are in a manifest."""

    artifact: str  # key under `artifacts` and in the convert stage's outputs; also its metric prefix
    metric_prefix: str | None  # second, shorter prefix some of its metrics use
    source_float_accuracy: str | None  # run-level metric: accuracy of the float model it was made from


VARIANTS = {
    "float": VariantSource("float_tflite", None, None),
    "ptq_int8": VariantSource("ptq_int8_tflite", "ptq_int8", "finetuned_float_accuracy"),
    "pqat_int8": VariantSource("int8_tflite", "int8", "float_accuracy"),
}
VARIANT_BY_ARTIFACT = {source.artifact: name for name, source in VARIANTS.items()}


def variant_metrics(metrics: Mapping[str, Any], source: VariantSource) -> dict[str, Any]:
    """A variant's own metrics with their prefix stripped (`int8_tflite_accuracy` -> `accuracy`)."""
    own: dict[str, Any] = {}
    for key, value in metrics.items():
        if key.startswith(source.artifact + "_"):
            own[key[len(source.artifact) + 1:]] = value
        elif source.metric_prefix and key.startswith(source.metric_prefix + "_"):
            own.setdefault(key[len(source.metric_prefix) + 1:], value)
    return own


def _output_record(manifest: Mapping[str, Any], artifact: str) -> dict[str, Any] | None:
    """The {path, sha256, bytes} the stage that wrote `artifact` recorded for it."""
    for stage in manifest.get("stages", {}).values():
        record = stage.get("outputs", {}).get(artifact)
        if record:
            return record
    return None


def variants_from_manifest(manifest: Mapping[str, Any], run_dir: Path | None = None) -> list[VariantRecord]:
    """One VariantRecord per variant artifact the manifest lists; gzip size measured from the file if absent."""
    metrics = manifest.get("metrics", {})
    records = []
    for name, source in VARIANTS.items():
        output = _output_record(manifest, source.artifact)
        if output is None:
            continue
        own = variant_metrics(metrics, source)
        gzip_bytes = own.get("gzip_bytes")
        path = run_dir / output["path"] if run_dir else None
        if gzip_bytes is None and path is not None and path.is_file():
            gzip_bytes = gzip_size(path)
        is_float = source.source_float_accuracy is None
        records.append(VariantRecord(
            name=name, sha256=output.get("sha256"), bytes=output.get("bytes", own.get("bytes")),
            gzip_bytes=gzip_bytes, sparsity=own.get("sparsity"),
            float_accuracy=own.get("accuracy") if is_float else metrics.get(source.source_float_accuracy),
            int8_accuracy=None if is_float else own.get("accuracy"), metrics=own))
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
    run_dir = Path(run_dir)
    path = run_dir / MANIFEST_NAME
    if not path.is_file():
        raise UserError(f"{path} does not exist: run the training pipeline first (python -m pipeline run)")
    manifest = read_json(path)
    config = {name: stage.get("config") for name, stage in manifest.get("stages", {}).items()}
    return store.begin_run(manifest.get("run") or run_dir.name, kind=kind, git_commit=commit or git_commit(),
                           config_path=manifest.get("config_path"), config=config,
                           metrics=manifest.get("metrics"), variants=variants_from_manifest(manifest, run_dir))
