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
    assert "pruned_qat_int8   88.00%    30.0 KB    15.0 KB    30.00%        89.50%" in out
    assert "  pruned_qat_int8: the fine-tuned model, magnitude-pruned, plain QAT" in out and "pqat" not in out.lower()
    assert "pruned_qat_int8 vs its source: -1.50 points; boundary int8: True" in out


def _summary_of(metrics: dict, tmp_path: Path, capsys) -> str:
    (tmp_path / "manifest.json").write_text(json.dumps({"run": "demo", "metrics": metrics}))
    print_summary(Manifest(tmp_path))
    return capsys.readouterr().out


def test_the_ssl_gain_is_printed_when_the_run_trained_the_baseline(tmp_path: Path, capsys) -> None:
    out = _summary_of({"label_fraction": 0.25, "ssl_accuracy": 0.8957, "scratch_accuracy": 0.8753,
                       "ssl_gain": 0.8957 - 0.8753}, tmp_path, capsys)
    assert "SSL-pretrained 89.57% vs from scratch 87.53%, +2.04 points" in out


def test_without_the_baseline_the_summary_says_where_the_gain_is_measured(tmp_path: Path, capsys) -> None:
    out = _summary_of({"label_fraction": 0.25, "ssl_accuracy": 0.8957}, tmp_path, capsys)
    assert "SSL-pretrained 89.57% (test top-1" in out and "make label-table" in out and "scratch 87" not in out
