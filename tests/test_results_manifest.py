"""The manifest adapter: the variants a run made, their own metrics and sizes, recorded as one running run."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.core.artifacts import file_record, gzip_size, write_json
from pipeline.core.variants import RunVariants
from pipeline.errors import UserError
from pipeline.results.manifest import begin_pipeline_run, variants_from_manifest
from pipeline.results.store import ResultsStore

VARIANT_METRICS = {
    "pqat_int8": {"accuracy": 0.899, "bytes": 999, "gzip_bytes": 400, "tflite_sparsity": 0.49, "boundary_ok": True,
                  "source_float_accuracy": 0.905},
    "ptq_int8": {"accuracy": 0.907, "bytes": 1200, "gzip_bytes": 700, "boundary_ok": True,
                 "source_float_accuracy": 0.912},
    "float": {"accuracy": 0.912, "bytes": 4000, "source_float_accuracy": 0.913},
}
METRICS = {"ssl_accuracy": 0.88, "scratch_accuracy": 0.81, "label_fraction": 0.1, "sparsity": 0.5,
           "variants": VARIANT_METRICS, "compressed_variant": "pqat_int8"}


def _run_dir(tmp_path: Path) -> Path:
    """A build/<run> folder with three real .tflite stand-in files and a manifest naming them."""
    run_dir = tmp_path / "build" / "nightly"
    convert = run_dir / "convert"
    convert.mkdir(parents=True)
    outputs = {}
    for name, size in (("pqat_int8", 999), ("ptq_int8", 1200), ("float", 4000)):
        path = convert / f"{name}.tflite"
        path.write_bytes(bytes(range(256)) * (size // 256) + b"\0" * (size % 256))
        outputs[f"{name}_tflite"] = file_record(path, run_dir)
    write_json(run_dir / "manifest.json", {
        "run": "nightly", "config_path": "configs/demo.toml", "metrics": METRICS,
        "stages": {"convert": {"config": {"eval_samples": 20}, "inputs": {}, "outputs": outputs, "metrics": {},
                               "wall_s": 1.0, "finished_at": "2025-01-01T00:00:00Z"}},
        "artifacts": {k: v["path"] for k, v in outputs.items()}})
    return run_dir


def test_variants_take_sizes_from_the_outputs_and_measure_a_missing_gzip_size(tmp_path: Path) -> None:
    run_dir = _run_dir(tmp_path)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    records = {r.name: r for r in variants_from_manifest(RunVariants(run_dir))}
    pqat, ptq, float_ = records["pqat_int8"], records["ptq_int8"], records["float"]
    assert (pqat.bytes, pqat.gzip_bytes, pqat.sparsity) == (999, 400, 0.49)
    assert (pqat.float_accuracy, pqat.int8_accuracy) == (0.905, 0.899)  # the pruned model it came from, its own
    assert (ptq.float_accuracy, ptq.int8_accuracy, ptq.bytes) == (0.912, 0.907, 1200)
    assert float_.int8_accuracy is None and float_.float_accuracy == 0.912  # a float variant's own accuracy
    assert float_.gzip_bytes == gzip_size(run_dir / "convert" / "float.tflite")
    assert pqat.sha256 == manifest["stages"]["convert"]["outputs"]["pqat_int8_tflite"]["sha256"]
    assert pqat.metrics == VARIANT_METRICS["pqat_int8"]  # stored as the manifest has them, no prefixes to strip


def test_begin_pipeline_run_records_a_running_run_with_every_variant(tmp_path: Path) -> None:
    with ResultsStore.open(str(tmp_path / "results.db")) as store:
        run_id = begin_pipeline_run(store, _run_dir(tmp_path), commit="abc123")
        run = store.run(run_id)
        assert (run["name"], run["status"], run["kind"], run["git_commit"]) == ("nightly", "running", "nightly",
                                                                               "abc123")
        assert json.loads(run["config_json"]) == {"convert": {"eval_samples": 20}}
        assert [v["name"] for v in store.variants(run_id)] == ["float", "pqat_int8", "ptq_int8"]
        with pytest.raises(UserError, match="run the training pipeline first"):
            begin_pipeline_run(store, tmp_path / "missing")
