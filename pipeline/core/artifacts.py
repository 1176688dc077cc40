"""Artifacts on disk: hashing, atomic writes and the run manifest.

Nothing is ever half-written where a later run would read it: files are written to a
temporary name and renamed, stage folders are built under a temporary name and renamed
into place, and the manifest is replaced in one rename.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

MANIFEST_NAME = "manifest.json"
TMP_PREFIX = ".tmp-"
SUMMARY_FIELDS = ("preprocessing", "class_names")  # stage-record fields lifted to the manifest's top level
_UMASK = os.umask(0)
os.umask(_UMASK)


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_json(value: Any) -> str:
    """Hash of a JSON-able value, independent of key order."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it over `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=TMP_PREFIX + path.name + ".", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the final file the usual mode
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: str | Path, value: Any, sort_keys: bool = True) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(value, indent=2, sort_keys=sort_keys, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary folder; on success it replaces `path` as a whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX + path.name + ".", dir=path.parent))
    try:
        yield tmp
        old = path.with_name(TMP_PREFIX + path.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remove_stale_temporaries(folder: str | Path) -> None:
    """Delete leftovers of interrupted writes (they are never read as results)."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    for leftover in folder.glob(TMP_PREFIX + "*"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


def gzip_size(path: str | Path) -> int:
    """Size after gzip -9: how sparsity shows up in a file's size on the wire."""
    import gzip

    return len(gzip.compress(Path(path).read_bytes(), compresslevel=9, mtime=0))


def file_record(path: Path, relative_to: Path) -> dict[str, Any]:
    return {"path": str(path.relative_to(relative_to)), "sha256": sha256_file(path), "bytes": path.stat().st_size}


class Manifest:
    """`build/<run>/manifest.json`: per stage its config, inputs, outputs, metrics and wall time."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / MANIFEST_NAME
        self.data: dict[str, Any] = read_json(self.path) if self.path.exists() else {}
        self.data.setdefault("stages", {})

    def stage(self, name: str) -> dict[str, Any] | None:
        return self.data["stages"].get(name)

    def stage_outputs(self, name: str) -> dict[str, Any]:
        """Output records of a stage that has run (the runner runs a stage's inputs before it)."""
        return self.data["stages"][name]["outputs"]

    def output_path(self, stage: str, artifact: str) -> Path:
        return self.run_dir / self.stage_outputs(stage)[artifact]["path"]

    def outputs_intact(self, name: str) -> bool:
        """True when every output a stage recorded still exists with its recorded hash."""
        record = self.stage(name)
        if not record:
            return False
        for output in record["outputs"].values():
            path = self.run_dir / output["path"]
            if not path.is_file() or sha256_file(path) != output["sha256"]:
                return False
        return True

    def set_stage(self, name: str, record: dict[str, Any], order: list[str]) -> None:
        """Store a stage record, forget stages after it that no longer match, and save."""
        self.data["stages"][name] = record
        self.data["stages"] = {k: self.data["stages"][k] for k in order if k in self.data["stages"]}
        self._refresh_summary()
        self.save()

    def _refresh_summary(self) -> None:
        """Top-level `artifacts`, `metrics`, `preprocessing` and `class_names`: the fields users and devices read."""
        artifacts: dict[str, str] = {}
        metrics: dict[str, Any] = {}
        for record in self.data["stages"].values():
            artifacts.update({k: v["path"] for k, v in record["outputs"].items()})
            metrics.update(record["metrics"])
            for field in SUMMARY_FIELDS:
                if field in record:
                    self.data[field] = record[field]
        self.data["artifacts"] = artifacts
        self.data["metrics"] = metrics

    def save(self) -> None:
        write_json(self.path, self.data, sort_keys=False)  # stages stay in pipeline order
