"""The table printed at the end of a run: every variant it made, with accuracy, size, gzip size and sparsity."""
from __future__ import annotations

from pipeline.core.artifacts import Manifest
from pipeline.core.variants import RunVariants, variant


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _kb(value) -> str:
    return "-" if value is None else f"{value / 1024:.1f} KB"


def print_summary(manifest: Manifest) -> None:
    m = manifest.data.get("metrics", {})
    print(f"\nrun {manifest.data.get('run')}  ({manifest.path})")
    if manifest.data.get("class_names"):
        print(f"classes: {', '.join(manifest.data['class_names'])}")
    if "ssl_gain" in m:
        print(f"label fraction {m['label_fraction']}: SSL-pretrained {_pct(m['ssl_accuracy'])} vs from scratch "
              f"{_pct(m['scratch_accuracy'])}, {100 * m['ssl_gain']:+.2f} points (test top-1, float Keras)")
    elif "ssl_accuracy" in m or "scratch_accuracy" in m:
        trained = "SSL-pretrained" if "ssl_accuracy" in m else "from scratch"
        print(f"label fraction {m.get('label_fraction')}: {trained} "
              f"{_pct(m.get('ssl_accuracy', m.get('scratch_accuracy')))} (test top-1, float Keras; "
              f"`make label-table` compares pretrained with from scratch)")
    if "model_accuracy" in m:
        print(f"model.path {m.get('model_path')}: {_pct(m['model_accuracy'])} test top-1 as given "
              f"(pretraining and fine-tuning skipped)")
    if "variants" not in m:
        return
    run = RunVariants(manifest.run_dir)
    width = max(len("variant"), *(len(name) for name in run.names()))
    header = f"{'variant':<{width}} {'top-1':>8} {'size':>10} {'gzip':>10} {'sparsity':>9} {'source top-1':>13}"
    print(header)
    print("-" * len(header))
    for name in run.names():
        own = run.metrics_of(name)
        print(f"{name:<{width}} {_pct(own['accuracy']):>8} {_kb(own['bytes']):>10} {_kb(own['gzip_bytes']):>10} "
              f"{_pct(own.get('tflite_sparsity')):>9} {_pct(own['source_float_accuracy']):>13}")
    for name in run.names():
        print(f"  {name}: {variant(name).description}")
    compressed = run.compressed()
    own = run.metrics_of(compressed)
    print(f"{compressed} vs its source: {100 * (own['accuracy'] - own['source_float_accuracy']):+.2f} points; "
          f"boundary int8: {own.get('boundary_ok')}, float ops left: {own.get('float_ops')}")
