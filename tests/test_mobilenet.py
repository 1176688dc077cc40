"""MobileNetV2 (alpha 0.35) at 96x96x3, the MLPerf Tiny visual-wake-words size, on a small image
folder: three Fashion-MNIST classes written out as PNG files by the project's exporter, read with
data.format = "folder" (decoded, made RGB and resized to 96x96 by the pipeline); prune -> PQAT ->
full int8 (calibration drawn from the folder's training split) -> the device agent."""
import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.variants import variant_files
from tests.conftest import micro_config, run_cli

pytestmark = pytest.mark.slow

CLASSES = {1: "trouser", 7: "sneaker", 8: "bag"}  # Fashion-MNIST label -> folder name
SIZE = 96
TEST_IMAGES = 900  # 1 point of accuracy = 9 test images


def three_classes(images, count: int):
    """The first `count` images of CLASSES, relabelled 0..2 in label order."""
    from pipeline.training.datasets import in_memory

    keep = np.flatnonzero(np.isin(images.labels, list(CLASSES)))[:count]
    picked = images.select(keep)
    return in_memory(picked.to_array(), np.searchsorted(sorted(CLASSES), picked.labels))


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """root/train|test/<class>/*.png: 700 training and 900 test images, 28x28 grayscale."""
    from pipeline.training.config import DataConfig
    from pipeline.training.datasets import Dataset, load_idx_dir
    from pipeline.training.image_export import export_png_folder

    fashion = load_idx_dir(Path(DataConfig().path), "the default config")
    subset = Dataset(three_classes(fashion.train, 700), three_classes(fashion.test, TEST_IMAGES), source_files=(),
                     class_names=tuple(CLASSES[label] for label in sorted(CLASSES)))
    root = tmp_path_factory.mktemp("fashion3") / "images"
    assert export_png_folder(subset, root) == {"train": 700, "test": TEST_IMAGES}
    return root


@pytest.fixture(scope="module")
def mobilenet_run(image_folder, tmp_path_factory):
    from pipeline.training.runner import run_stages

    build = tmp_path_factory.mktemp("build")
    config = micro_config(
        build, name="mobilenet",
        data={"format": "folder", "path": str(image_folder), "image_size": [SIZE, SIZE], "color": "rgb",
              "train_limit": 0, "test_limit": 0, "validation_size": 100},
        model={"name": "mobilenet_v2", "width": 0.35},
        pretrain={"method": "none"},
        finetune={"label_fraction": 1.0, "epochs": 8, "batch_size": 32, "scratch_baseline": False},
        prune={"epochs": 2, "batch_size": 32, "frequency": 5},
        quantize={"method": "pqat", "epochs": 1, "batch_size": 32},
        convert={"calibration": "", "eval_samples": 30},
    )
    log: list[str] = []
    return run_stages(config, log=log.append), build


def test_mobilenet_v2_at_96x96_reaches_full_int8_within_a_point_of_float(mobilenet_run):
    from pipeline.tflite.evaluation import load_interpreter

    manifest, _ = mobilenet_run
    metrics = manifest.data["metrics"]
    assert manifest.data["class_names"] == ["bag", "sneaker", "trouser"]  # the folder names, sorted
    preprocessing = manifest.data["preprocessing"]
    assert preprocessing["input_shape"] == [SIZE, SIZE, 3] and preprocessing["color"] == "rgb"
    assert metrics["test_images"] == TEST_IMAGES and metrics["calibration_samples"] == 150  # 50 per class
    compressed = metrics["variants"][metrics["compressed_variant"]]
    model, _ = variant_files(manifest.run_dir)  # the compressed variant's file
    interpreter = load_interpreter(model)
    (model_input,), (model_output,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert (model_input["dtype"], model_output["dtype"]) == (np.int8, np.int8)
    assert model_input["shape"].tolist() == [1, SIZE, SIZE, 3]
    assert compressed["boundary_ok"] and compressed["float_ops"] == []
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD"} <= set(compressed["op_counts"])
    assert metrics["sparsity"] == pytest.approx(0.5, abs=0.05) and compressed["tflite_sparsity"] >= 0.4
    int8, float_model = compressed["accuracy"], compressed["converted_keras_accuracy"]
    assert compressed["source_float_accuracy"] > 0.6  # the pruned float model; three classes: chance is 1/3
    # Its float model: the (fake-quantized) Keras model the file was converted from, scored in float32 by
    # Keras on the same images. The pruned model before PQAT differs from it by a PQAT training epoch.
    assert abs(int8 - float_model) <= 0.01, (
        f"int8 file {int8:.4f} vs its float Keras model {float_model:.4f} on {TEST_IMAGES} test images "
        f"(1 point = 9 images; the pruned model before PQAT: {compressed['source_float_accuracy']:.4f})")
    ptq, float_file = metrics["variants"]["ptq_int8"]["accuracy"], metrics["variants"]["float"]["accuracy"]
    assert abs(ptq - float_file) <= 0.01, (  # no training in between: what int8 alone costs
        f"PTQ int8 file {ptq:.4f} vs the float file of the same fine-tuned model {float_file:.4f} "
        f"on {TEST_IMAGES} test images (1 point = 9 images)")


def test_mobilenet_v2_int8_runs_on_the_local_device(mobilenet_run, tmp_path):
    manifest, _ = mobilenet_run
    model, samples = variant_files(manifest.run_dir)
    done = run_cli("bench", "--device", "local", "--model", str(model), "--samples", str(samples), "--json",
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    document = json.loads(done.stdout)[0]
    assert document["device"] == "local" and document["accuracy"]["value"] >= 0.6
    assert document["accuracy"]["count"] == 30 and document["class_names"] == ["bag", "sneaker", "trouser"]
