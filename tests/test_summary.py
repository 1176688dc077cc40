"""The end-of-run table: one row per variant the run made, named by the registry."""
from __future__ import annotations

import json
from pathlib import Path

from pipeline.core.artifacts import Manifest
from pipeline.training.summary import print_summary

OWN = {"accuracy": 0.88, "bytes": 30_720, "gzip_bytes": 15_360, "source_float_accuracy": 0.895}


def test_a_qat_run_prints_its_variants_and_is_not_called_pqat(tmp_path: Path, capsys) -> None:
    variants = {"float": {**OWN, "accuracy": 0.9}, "ptq_int8": OWN,
                "pruned_qat_int8": {**OWN, "tflite_sparsity": 0.3, "boundary_ok": True, "float_ops": []}}
    (tmp_path / "manifest.json").write_text(json.dumps({"run": "qat", "metrics": {
        "variants": variants, "compressed_variant": "pruned_qat_int8"}}))
    print_summary(Manifest(tmp_path))
    out = capsys.readouterr().out
    rows = [line.split()[0] for line in out.splitlines()[4:7]]
    assert rows == ["float", "ptq_int8", "pruned_qat_int8"]
    assert "pruned_qat_int8   88.00%    30.0 KB    15.0 KB    30.00%        89.50%" in out  # names set the width
    assert "  pruned_qat_int8: the fine-tuned model, magnitude-pruned, plain QAT" in out and "pqat" not in out.lower()
    assert "pruned_qat_int8 vs its source: -1.50 points; boundary int8: True" in out
