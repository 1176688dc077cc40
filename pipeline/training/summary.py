"""The table printed at the end of a run: float vs int8 accuracy, size, gzip size, sparsity."""
from __future__ import annotations

from pipeline.core.artifacts import Manifest


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _kb(value) -> str:
    return "-" if value is None else f"{value / 1024:.1f} KB"


def print_summary(manifest: Manifest) -> None:
    m = manifest.data.get("metrics", {})
    print(f"\nrun {manifest.data.get('run')}  ({manifest.path})")
    if "ssl_accuracy" in m or "scratch_accuracy" in m:
        print(f"label fraction {m.get('label_fraction')}: SSL-pretrained {_pct(m.get('ssl_accuracy'))}"
              f" vs from scratch {_pct(m.get('scratch_accuracy'))} (test top-1, float Keras)")
    if "model_accuracy" in m:
        print(f"model.path {m.get('model_path')}: {_pct(m['model_accuracy'])} test top-1 as given "
              f"(pretraining and fine-tuning skipped)")
    if "int8_accuracy" not in m:
        return
    rows = [
        ("float TFLite (fine-tuned)", m.get("float_tflite_accuracy"), m.get("float_tflite_bytes"),
         m.get("float_tflite_gzip_bytes"), None),
        ("PTQ int8 (unpruned)", m.get("ptq_int8_accuracy"), m.get("ptq_int8_tflite_bytes"),
         m.get("ptq_int8_tflite_gzip_bytes"), m.get("ptq_int8_tflite_sparsity")),
        ("pruned float (Keras)", m.get("float_accuracy"), None, None, m.get("sparsity")),
        (f"{m.get('quantize_method', 'int8').upper()} int8 (pruned)", m.get("int8_accuracy"), m.get("tflite_bytes"),
         m.get("tflite_gzip_bytes"), m.get("tflite_sparsity")),
    ]
    header = f"{'model':<28} {'top-1':>8} {'size':>10} {'gzip':>10} {'sparsity':>9}"
    print(header)
    print("-" * len(header))
    for name, accuracy, size, gz, sparsity in rows:
        print(f"{name:<28} {_pct(accuracy):>8} {_kb(size):>10} {_kb(gz):>10} {_pct(sparsity):>9}")
    drop = m["float_accuracy"] - m["int8_accuracy"]
    print(f"int8 vs pruned float: {100 * drop:+.2f} points lost; "
          f"boundary int8: {m.get('int8_boundary_ok')}, float ops left: {m.get('int8_float_ops')}")
