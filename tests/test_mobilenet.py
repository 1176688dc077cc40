"""MobileNetV2 (alpha 0.35) at 96x96x3, the MLPerf Tiny visual-wake-words size: prune -> PQAT ->
full int8 -> the device agent, on three Fashion-MNIST classes upsampled to 96x96 RGB."""
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.variants import variant_files
from tests.conftest import micro_config, run_cli

pytestmark = pytest.mark.slow

CLASSES = (1, 7, 8)  # trouser, sneaker, bag
SIZE = 96


def write_idx(path, array: np.ndarray) -> None:
    """An uncompressed IDX file (the layout the idx loader reads): magic, big-endian dims, data."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def upsampled_subset(images: np.ndarray, labels: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    from pipeline.core.tf_env import tf

    keep = np.flatnonzero(np.isin(labels, CLASSES))[:count]
    resized = tf.image.resize(images[keep][..., None], (SIZE, SIZE)).numpy()
    rgb = np.repeat(np.clip(np.round(resized), 0, 255).astype(np.uint8), 3, axis=-1)
    return rgb, np.searchsorted(CLASSES, labels[keep])


@pytest.fixture(scope="module")
def rgb96_dataset(tmp_path_factory):
    from pipeline.training.config import DataConfig
    from pipeline.training.datasets import IDX_FILES, load_idx_dir

    fashion = load_idx_dir(Path(DataConfig().path), "the default config")
    arrays = {"train_images": fashion.train.pixels[..., 0], "train_labels": fashion.train.labels,
              "test_images": fashion.test.pixels[..., 0], "test_labels": fashion.test.labels}
    folder = tmp_path_factory.mktemp("rgb96")
    for split, count in (("train", 700), ("test", 900)):  # 900 test images: 1 point = 9 images, not 3
        images, labels = upsampled_subset(arrays[f"{split}_images"], arrays[f"{split}_labels"], count)
        write_idx(folder / IDX_FILES[f"{split}_images"], images)
        write_idx(folder / IDX_FILES[f"{split}_labels"], labels)
    return folder


@pytest.fixture(scope="module")
def mobilenet_run(rgb96_dataset, tmp_path_factory):
    from pipeline.training.calibration_set import write_calibration
    from pipeline.training.runner import run_stages

    build = tmp_path_factory.mktemp("build")
    config = micro_config(
        build, name="mobilenet",
        data={"format": "idx", "path": str(rgb96_dataset), "train_limit": 0, "test_limit": 0, "validation_size": 100},
        model={"name": "mobilenet_v2", "width": 0.35},
        pretrain={"method": "none"},
        finetune={"label_fraction": 1.0, "epochs": 8, "batch_size": 32, "scratch_baseline": False},
        prune={"epochs": 2, "batch_size": 32, "frequency": 5},
        quantize={"method": "pqat", "epochs": 1, "batch_size": 32},
        convert={"calibration": str(build / "calibration_rgb96.npz"), "eval_samples": 30},
    )
    write_calibration(config)
    log: list[str] = []
    return run_stages(config, log=log.append), build


def test_mobilenet_v2_at_96x96_reaches_full_int8_within_a_point_of_float(mobilenet_run):
    manifest, _ = mobilenet_run
    metrics = manifest.data["metrics"]
    assert manifest.data["preprocessing"]["input_shape"] == [SIZE, SIZE, 3]
    compressed = metrics["variants"][metrics["compressed_variant"]]
    assert compressed["boundary_ok"] and compressed["float_ops"] == []
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD"} <= set(compressed["op_counts"])
    assert metrics["sparsity"] == pytest.approx(0.5, abs=0.05) and compressed["tflite_sparsity"] >= 0.4
    assert compressed["source_float_accuracy"] > 0.6  # the pruned float model; three classes: chance is 1/3
    assert abs(compressed["accuracy"] - compressed["source_float_accuracy"]) <= 0.01


def test_mobilenet_v2_int8_runs_on_the_local_device(mobilenet_run, tmp_path):
    manifest, _ = mobilenet_run
    model, samples = variant_files(manifest.run_dir)
    done = run_cli("bench", "--device", "local", "--model", str(model), "--samples", str(samples), "--json",
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    document = json.loads(done.stdout)[0]
    assert document["device"] == "local" and document["accuracy"]["value"] >= 0.6
