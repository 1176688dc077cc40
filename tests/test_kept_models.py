"""Kept models: every night's model files by content, found again by sha256, never a damaged copy."""
from __future__ import annotations

import hashlib
from pathlib import Path

from pipeline.nightly.kept_models import find, keep


def _files(folder: Path, content: bytes) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.tflite").write_bytes(content)
    (folder / "model.samples.npz").write_bytes(b"samples of " + content)
    return folder / "model.tflite", folder / "model.samples.npz"


def test_a_kept_model_is_found_by_its_sha256_with_its_samples(tmp_path: Path) -> None:
    sha = keep(tmp_path / "models", *_files(tmp_path / "night1", b"model one"))
    assert sha == hashlib.sha256(b"model one").hexdigest()
    model, samples = find(tmp_path / "models", sha)
    assert model.read_bytes() == b"model one" and samples.read_bytes() == b"samples of model one"
    assert keep(tmp_path / "models", *_files(tmp_path / "night2", b"model one")) == sha  # same content, one copy
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [f"{sha}.samples.npz", f"{sha}.tflite"]


def test_an_unknown_or_damaged_model_is_not_found(tmp_path: Path) -> None:
    sha = keep(tmp_path / "models", *_files(tmp_path / "night1", b"model one"))
    assert find(tmp_path / "models", "0" * 64) is None
    (tmp_path / "models" / f"{sha}.tflite").write_bytes(b"bit rot")
    assert find(tmp_path / "models", sha) is None
