"""Stage 9: convert to TFLite and verify what a device will run.

Every variant the config makes (pipeline/core/variants.py: the float and PTQ int8 fine-tuned
model, and the compressed model named after how it was made) leaves this stage
as `<name>.tflite` (artifact `<name>_tflite`) with its numbers under `metrics.variants.<name>`.
Each is evaluated on the whole test set through LiteRT with proper input quantization and
shipped with a samples file (real test images, labels, reference outputs, preprocessing)
so that a device can check its accuracy and its outputs against the host's (and name its classes).
The compressed float model is also written as a Keras 3 `.keras` file (artifact `keras3_model`).
Unless convert.calibration names a file, the calibration images are drawn from the run's
training split here and saved beside the models with their provenance (the artifact), and a copy
is published as `<convert.calibration_dir>/<run name>.npz` + `.json` for people to find and reuse.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.artifacts import gzip_size, read_json
from pipeline.core.npz import save_npz
from pipeline.core.preprocessing import PIXEL_OFFSET, PIXEL_SCALE
from pipeline.core.tf_env import keras
from pipeline.core.variants import (
    COMPRESSED_FLOAT,
    QUANTIZE_TRAINED,
    KerasModel,
    Variant,
    compressed_variant,
    produced_variants,
)
from pipeline.errors import UserError
from pipeline.keras3 import keras3
from pipeline.keras3.equivalence import compare
from pipeline.keras3.export import save_keras3
from pipeline.keras3.layers import NoEquivalent
from pipeline.tflite.conversion import convert_float, convert_int8
from pipeline.tflite.cost import model_cost
from pipeline.tflite.evaluation import accuracy, run_model
from pipeline.tflite.verification import inspect_int8
from pipeline.training.calibration_set import (
    draw_from_split,
    load_calibration,
    publish_calibration,
    save_calibration,
)
from pipeline.training.fit import keras_accuracy
from pipeline.training.image_set import ImageSet
from pipeline.training.model_source import load_stage_model
from pipeline.training.pruning import pruned_kernel_sparsity
from pipeline.training.stage_io import StageContext, StageOutput
from pipeline.training.stages.data import RunData, load_run_data
from pipeline.training.stages.quantize import load_quantized
from pipeline.training.workers import is_chief


def _write_variant(ctx: StageContext, variant: Variant, model_bytes: bytes, data: RunData) -> tuple[dict, dict]:
    """Write `<name>.tflite` and its samples file; return (artifacts, the variant's own metrics)."""
    model_path = ctx.out_dir / f"{variant.name}.tflite"
    model_path.write_bytes(model_bytes)
    test = data.test
    outputs = run_model(model_path, test.batches(), f"evaluate {variant.name}", total=len(test))
    count = min(ctx.config.convert.eval_samples, len(test))
    # Evenly spaced over the test set: a folder lists its files class by class, so the first N would be one class.
    positions = np.arange(count) * len(test) // max(count, 1)
    shipped = test.select(positions)
    names = {"class_names": np.asarray(data.dataset.class_names, dtype=str)} if data.dataset.class_names else {}
    samples_path = ctx.out_dir / f"{variant.name}.samples.npz"
    save_npz(samples_path, images=shipped.to_array(), labels=shipped.labels, reference_outputs=outputs[positions],
             preprocess_scale=np.float32(PIXEL_SCALE), preprocess_offset=np.float32(PIXEL_OFFSET), **names)
    cost = model_cost(model_path)
    metrics = {"accuracy": accuracy(outputs, test.labels), "bytes": model_path.stat().st_size,
               "gzip_bytes": gzip_size(model_path), "macs": cost.macs, "params": cost.params}
    if variant.quantized:
        report = inspect_int8(model_path)
        metrics.update(boundary_ok=report["boundary_int8"], float_ops=report["float_ops"],
                       tflite_sparsity=pruned_kernel_sparsity(report["kernels"]), op_counts=report["op_counts"])
    return {variant.artifact: model_path, variant.samples: samples_path}, metrics


class _KerasModels:
    """Each Keras model a variant needs, loaded and scored on the test split once."""

    def __init__(self, ctx: StageContext, data: RunData):
        self.ctx, self.test = ctx, data.test
        self._models: dict[KerasModel, Any] = {}
        self._accuracies: dict[KerasModel, float] = {}

    def model(self, which: KerasModel):
        if which not in self._models:
            path = self.ctx.input(which.stage, which.artifact)
            if which == QUANTIZE_TRAINED:
                float_model = self.ctx.input(COMPRESSED_FLOAT.stage, COMPRESSED_FLOAT.artifact)
                self._models[which] = load_quantized(path, float_model, self.ctx.config)
            else:
                self._models[which] = load_stage_model(path, self.ctx.config)
        return self._models[which]

    def accuracy(self, which: KerasModel) -> float:
        if which not in self._accuracies:
            self._accuracies[which] = keras_accuracy(self.model(which), self.test)
        return self._accuracies[which]


def _calibration(ctx: StageContext, data: RunData) -> tuple[np.ndarray, dict[str, Path]]:
    """The calibration images: the configured file, or drawn from the training split and saved here."""
    if ctx.config.convert.calibration:
        return load_calibration(Path(ctx.config.convert.calibration), data.dataset.input_shape), {}
    drawn = draw_from_split(data.train, data.train_idx)
    drawn["provenance"].update({
        "source_files": read_json(ctx.input("data", "sources")),
        "split": f"training split of run seed {ctx.config.run.seed} (data stage split.npz)",
        "command": "the convert stage, with convert.calibration = \"\"",
        **({"class_names": list(data.dataset.class_names)} if data.dataset.class_names else {}),
    })
    path = ctx.out_dir / "calibration.npz"
    save_calibration(path, drawn)
    return drawn["images"], {"calibration": path, "calibration_provenance": path.with_suffix(".json")}


def _publish(ctx: StageContext, saved: Path) -> None:
    """Copy the drawn set to convert.calibration_dir (the chief only). The stage's own file stays the
    artifact, so the copy is outside the cache: deleting it changes nothing, a re-run rewrites it."""
    if not is_chief():
        return
    folder = Path(ctx.config.convert.calibration_dir)
    try:
        publish_calibration(saved, folder, ctx.config.run.name)
    except OSError as error:
        raise UserError(f"cannot publish the drawn calibration set in {folder} ({error.strerror or error}); make "
                        f"it writable or set convert.calibration_dir in {ctx.config.source}") from None


def _export_keras3(ctx: StageContext, model: keras.Model, test: ImageSet) -> tuple[dict[str, Path], dict]:
    """The compressed float model as a Keras 3 `.keras` file, loaded back with Keras 3 and compared with
    the tf_keras model on the test set; a model with a layer Keras 3 lacks is recorded as not written."""
    path = ctx.out_dir / "compressed_float.keras"
    try:
        save_keras3(model, path)
    except NoEquivalent as error:
        path.unlink(missing_ok=True)
        return {}, {"written": False, "reason": str(error)}
    agreement = compare(keras3().saving.load_model(path, compile=False), model, test)
    return {"keras3_model": path}, {"written": True, "test_argmax_agreement": agreement.argmax_agreement,
                                    "test_max_abs_diff": agreement.max_abs_diff}


def run(ctx: StageContext) -> StageOutput:
    data = load_run_data(ctx)
    calibration, artifacts = _calibration(ctx, data)
    keras_models = _KerasModels(ctx, data)
    variants = {}
    for variant in produced_variants(ctx.config):
        model = keras_models.model(variant.converted_from)
        model_bytes = convert_int8(model, calibration) if variant.quantized else convert_float(model)
        files, numbers = _write_variant(ctx, variant, model_bytes, data)
        artifacts.update(files)
        # The Keras model the file was converted from (fake-quantized for PQAT/QAT) should score like the file;
        # a gap means the conversion or the input quantization is wrong.
        numbers["converted_keras_accuracy"] = keras_models.accuracy(variant.converted_from)
        numbers["source_float_accuracy"] = keras_models.accuracy(variant.source)
        variants[variant.name] = numbers
    exported, keras3_export = _export_keras3(ctx, keras_models.model(COMPRESSED_FLOAT), data.test)
    artifacts.update(exported)
    if "calibration" in artifacts:  # published last: a run whose conversion failed publishes nothing
        _publish(ctx, artifacts["calibration"])
    metrics = {"variants": variants, "compressed_variant": compressed_variant(ctx.config).name,
               "calibration_samples": len(calibration), "keras3_export": keras3_export}
    return StageOutput(artifacts, metrics)
