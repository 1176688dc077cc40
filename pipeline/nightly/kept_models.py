"""Every night's model files kept by content, so a later night can re-benchmark the baseline night's model.

`<models_dir>/<sha256>.tflite` is the model whose sha256 the store recorded for a variant, and
`<sha256>.samples.npz` the samples it was benchmarked with. Files are written atomically and checked
against their name when read back, so a damaged copy is never benchmarked as the baseline.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from pipeline.core.artifacts import atomic_path, sha256_file

MODEL_SUFFIX = ".tflite"
SAMPLES_SUFFIX = ".samples.npz"


def _paths(models_dir: Path, sha256: str) -> tuple[Path, Path]:
    return models_dir / f"{sha256}{MODEL_SUFFIX}", models_dir / f"{sha256}{SAMPLES_SUFFIX}"


def keep(models_dir: str | Path, model: Path, samples: Path) -> str:
    """Copy a model and its samples in (once per content); returns the model's sha256."""
    sha256 = sha256_file(model)
    for source, kept in zip((model, samples), _paths(Path(models_dir), sha256), strict=True):
        if not kept.exists():
            with atomic_path(kept) as tmp:
                shutil.copyfile(source, tmp)
    return sha256


def find(models_dir: str | Path, sha256: str) -> tuple[Path, Path] | None:
    """The kept model with this sha256 and its samples, or None when it was never kept or is damaged."""
    model, samples = _paths(Path(models_dir), sha256)
    if not model.is_file() or not samples.is_file() or sha256_file(model) != sha256:
        return None
    return model, samples
