"""The one adapter from the training pipeline's `build/<run>/manifest.json` to store records.

Everything manifest-specific lives here: which artifact is which variant and which metric
names belong to which variant. Metrics prefixed with a variant name (`ptq_int8_accuracy`)
belong to that variant; unprefixed per-model metrics (`tflite_bytes`, `int8_accuracy`,
`sparsity`, ...) describe the deployed model, `pqat_int8`; run-level metrics (the float
model's accuracy, the SSL numbers) are shared by every variant.
"""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Mapping

from pipeline.artifacts import MANIFEST_NAME, gzip_size, read_json
from pipeline.errors import UserError
from pipeline.results.store import ResultsStore, VariantRecord

VARIANT_ARTIFACTS = {"float": "float_tflite", "ptq_int8": "ptq_int8_tflite", "pqat_int8": "int8_tflite"}
DEPLOYED_VARIANT = "pqat_int8"
RUN_LEVEL_METRICS = ("float_accuracy", "ssl_accuracy", "scratch_accuracy", "label_fraction")


def variant_metrics(metrics: Mapping[str, Any], variant: str) -> dict[str, Any]:
    """The metrics that describe `variant`: run-level ones, then its own (prefix stripped) on top."""
    prefixes = tuple(f"{name}_" for name in VARIANT_ARTIFACTS)
    if variant == DEPLOYED_VARIANT:
        shared = {k: v for k, v in metrics.items() if k in RUN_LEVEL_METRICS or not k.startswith(prefixes)}
    else:
        shared = {k: metrics[k] for k in RUN_LEVEL_METRICS if k in metrics}
    own = {k[len(variant) + 1:]: v for k, v in metrics.items()
           if k.startswith(f"{variant}_") and k not in RUN_LEVEL_METRICS}
    return {**shared, **own}


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
    for variant, artifact in VARIANT_ARTIFACTS.items():
        output = _output_record(manifest, artifact)
        if output is None:
            continue
        own = variant_metrics(metrics, variant)
        gzip_bytes = own.get("tflite_gzip_bytes")
        path = run_dir / output["path"] if run_dir else None
        if gzip_bytes is None and path is not None and path.is_file():
            gzip_bytes = gzip_size(path)
        accuracy = own.get("accuracy")
        records.append(VariantRecord(
            name=variant, sha256=output.get("sha256"), bytes=output.get("bytes"), gzip_bytes=gzip_bytes,
            sparsity=own.get("sparsity"),
            float_accuracy=accuracy if variant == "float" and accuracy is not None else own.get("float_accuracy"),
            int8_accuracy=None if variant == "float" else own.get("int8_accuracy", accuracy),
            metrics=own))
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
