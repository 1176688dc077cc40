"""Atomic files and folders, hashing, and the manifest's summary fields."""
import json

import numpy as np
import pytest

from pipeline.core.artifacts import Manifest, atomic_dir, atomic_path, remove_stale_temporaries, sha256_file, write_json
from pipeline.core.npz import save_npz


def test_atomic_path_leaves_old_file_when_the_write_fails(tmp_path):
    target = tmp_path / "model.tflite"
    target.write_bytes(b"good")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"good"
    assert list(tmp_path.iterdir()) == [target]


def test_atomic_dir_replaces_whole_folder_only_on_success(tmp_path):
    folder = tmp_path / "prune"
    with atomic_dir(folder) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(folder) as tmp:
            (tmp / "b").write_text("half")
            raise KeyboardInterrupt
    assert [p.name for p in folder.iterdir()] == ["a"]
    assert [p.name for p in tmp_path.iterdir()] == ["prune"]


def test_stale_temporaries_are_removed(tmp_path):
    (tmp_path / ".tmp-convert.abc").mkdir()
    (tmp_path / ".tmp-manifest.json.x").write_text("{")
    (tmp_path / "keep").write_text("")
    remove_stale_temporaries(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["keep"]


def test_npz_is_byte_reproducible_and_loadable(tmp_path):
    arrays = {"images": np.arange(12, dtype=np.uint8).reshape(3, 2, 2), "scale": np.float32(0.5)}
    save_npz(tmp_path / "a.npz", **arrays)
    save_npz(tmp_path / "b.npz", **arrays)
    assert sha256_file(tmp_path / "a.npz") == sha256_file(tmp_path / "b.npz")
    with np.load(tmp_path / "a.npz") as loaded:
        np.testing.assert_array_equal(loaded["images"], arrays["images"])
        assert loaded["scale"] == np.float32(0.5)


def test_manifest_summary_and_integrity(tmp_path):
    (tmp_path / "convert").mkdir()
    model = tmp_path / "convert" / "pqat_int8.tflite"
    model.write_bytes(b"tflite")
    manifest = Manifest(tmp_path)
    record = {"outputs": {"pqat_int8_tflite": {"path": "convert/pqat_int8.tflite", "sha256": sha256_file(model)}},
              "metrics": {"variants": {"pqat_int8": {"accuracy": 0.9}}}, "preprocessing": {"scale": 0.1}}
    manifest.set_stage("convert", record, ["data", "convert"])
    saved = json.loads((tmp_path / "manifest.json").read_text())
    assert saved["artifacts"] == {"pqat_int8_tflite": "convert/pqat_int8.tflite"}
    assert saved["metrics"]["variants"]["pqat_int8"]["accuracy"] == 0.9 and saved["preprocessing"] == {"scale": 0.1}
    assert Manifest(tmp_path).outputs_intact("convert")
    model.write_bytes(b"tampered")
    assert not Manifest(tmp_path).outputs_intact("convert")


def test_write_json_is_sorted_and_complete(tmp_path):
    write_json(tmp_path / "x.json", {"b": 1, "a": [1, 2]})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": [1, 2], "b": 1}
