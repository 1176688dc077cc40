"""Stage 6: convert to TFLite and verify what a device will run.

Three models leave this stage, the variants a nightly compares:
- `int8_tflite`: the compressed model (pruned + PQAT/QAT/PTQ), full int8;
- `ptq_int8_tflite`: the fine-tuned, unpruned model, full int8 by post-training quantization;
- `float_tflite`: the fine-tuned model in float32.
Each is evaluated on the whole test set through LiteRT with proper input quantization and
shipped with a samples file (real test images, labels, reference outputs, preprocessing)
so that a device can check its accuracy and its outputs against the host's.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.core.artifacts import gzip_size
from pipeline.core.npz import save_npz
from pipeline.core.preprocessing import PIXEL_OFFSET, PIXEL_SCALE
from pipeline.tflite.conversion import convert_float, convert_int8
from pipeline.tflite.evaluation import accuracy, run_model
from pipeline.tflite.verification import inspect_int8
from pipeline.training.calibration_set import load_calibration
from pipeline.training.fit import keras_accuracy
from pipeline.training.model_source import load_stage_model
from pipeline.training.pruning import pruned_kernel_sparsity
from pipeline.training.stage_io import StageContext, StageOutput
from pipeline.training.stages.data import RunData, load_run_data
from pipeline.training.stages.quantize import load_quantized


def _write_variant(ctx: StageContext, name: str, model_bytes: bytes, data: RunData) -> tuple[dict, dict]:
    """Write `<name>.tflite` and its samples file; return (artifacts, metrics) prefixed with `name`."""
    model_path = ctx.out_dir / f"{name}.tflite"
    model_path.write_bytes(model_bytes)
    test_images, test_labels = data.dataset.test_images, data.dataset.test_labels
    outputs = run_model(model_path, test_images, f"evaluate {name}")
    count = min(ctx.config.convert.eval_samples, len(test_images))
    samples_path = ctx.out_dir / f"{name}.samples.npz"
    save_npz(samples_path, images=test_images[:count], labels=test_labels[:count], reference_outputs=outputs[:count],
             preprocess_scale=np.float32(PIXEL_SCALE), preprocess_offset=np.float32(PIXEL_OFFSET))
    metrics = {"accuracy": accuracy(outputs, test_labels), "bytes": model_path.stat().st_size,
               "gzip_bytes": gzip_size(model_path)}
    return {"tflite": model_path, "samples": samples_path}, metrics


def run(ctx: StageContext) -> StageOutput:
    data = load_run_data(ctx)
    calibration = load_calibration(Path(ctx.config.convert.calibration), data.dataset.input_shape)
    finetuned = load_stage_model(ctx.input("finetune", "classifier"), ctx.config)
    pruned = load_stage_model(ctx.input("prune", "pruned"), ctx.config)
    compressed = load_quantized(ctx.input("quantize", "quantize_ready"), ctx.config)
    variants = {
        "int8": convert_int8(compressed, calibration),
        "ptq_int8": convert_int8(finetuned, calibration),
        "float": convert_float(finetuned),
    }
    artifacts, metrics = {}, {}
    for name, model_bytes in variants.items():
        files, numbers = _write_variant(ctx, name, model_bytes, data)
        artifacts.update({f"{name}_tflite": files["tflite"], f"{name}_samples": files["samples"]})
        metrics.update({f"{name}_tflite_{key}": value for key, value in numbers.items()})
    for name in ("int8", "ptq_int8"):
        report = inspect_int8(artifacts[f"{name}_tflite"])
        metrics[f"{name}_boundary_ok"] = report["boundary_int8"]
        metrics[f"{name}_float_ops"] = report["float_ops"]
        metrics[f"{name}_tflite_sparsity"] = pruned_kernel_sparsity(report["kernels"])
        metrics[f"{name}_op_counts"] = report["op_counts"]
    test = (data.dataset.test_images, data.dataset.test_labels)
    metrics.update({
        # The headline names the issue and the reports use.
        "int8_accuracy": metrics["int8_tflite_accuracy"],
        "float_accuracy": keras_accuracy(pruned, *test),
        # The Keras model the int8 file was converted from (fake-quantized for PQAT/QAT): the two
        # should agree closely; a gap means the conversion or the input quantization is wrong.
        "converted_keras_accuracy": keras_accuracy(compressed, *test),
        "finetuned_float_accuracy": keras_accuracy(finetuned, *test),
        "tflite_bytes": metrics["int8_tflite_bytes"],
        "tflite_gzip_bytes": metrics["int8_tflite_gzip_bytes"],
        "tflite_sparsity": metrics["int8_tflite_sparsity"],
        "ptq_int8_accuracy": metrics["ptq_int8_tflite_accuracy"],
        "float_tflite_accuracy": metrics["float_tflite_accuracy"],
        "int8_boundary_ok": metrics["int8_boundary_ok"],
        "calibration_samples": len(calibration),
    })
    return StageOutput(artifacts, metrics)
