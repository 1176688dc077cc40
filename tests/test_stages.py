"""Each training stage on a micro run (600 images, one epoch): its artifacts and metrics."""
import json

import numpy as np
import pytest

from pipeline.core.tf_env import keras
from pipeline.tflite.evaluation import load_interpreter
from pipeline.tflite.verification import inspect_int8
from pipeline.training.datasets import load_dataset
from pipeline.training.fit import keras_accuracy
from pipeline.training.runner import STAGE_NAMES


@pytest.fixture(scope="module")
def run(micro_run):
    config, manifest, _ = micro_run
    return config, manifest, manifest.data


def test_data_stage_records_split_and_preprocessing(run):
    config, manifest, data = run
    with np.load(manifest.output_path("data", "split")) as split:
        train, val = split["train_idx"], split["val_idx"]
    assert len(val) == 100 and len(train) == 500 and not set(train) & set(val)
    assert data["preprocessing"]["scale"] == pytest.approx(1 / 255)
    assert data["preprocessing"]["offset"] == 0.0
    assert data["preprocessing"]["input_shape"] == [28, 28, 1] and data["preprocessing"]["layout"] == "NHWC"


def test_pretrain_saves_encoder_weights(run):
    _, manifest, data = run
    assert manifest.output_path("pretrain", "encoder").stat().st_size > 1000
    assert data["metrics"]["pretrain_method"] == "simclr" and np.isfinite(data["metrics"]["pretrain_loss"])


def test_finetune_records_ssl_and_scratch_at_the_label_fraction(run):
    config, manifest, data = run
    metrics = data["metrics"]
    assert metrics["label_fraction"] == config.finetune.label_fraction
    assert metrics["labeled_images"] == pytest.approx(500 * config.finetune.label_fraction, abs=10)
    # The micro run is too short to learn (BatchNorm statistics after 4 steps): whether the recipe
    # learns is tests/test_fit.py's job. Here: the recorded accuracy is the saved classifier's on the test set.
    dataset = load_dataset(config.data)
    classifier = keras.models.load_model(manifest.output_path("finetune", "classifier"), compile=False)
    assert metrics["ssl_accuracy"] == keras_accuracy(classifier, dataset.test_images, dataset.test_labels)
    assert (metrics["scratch_accuracy"] * len(dataset.test_labels)).is_integer()  # a share of the 200 test images


def test_prune_reaches_target_sparsity_per_layer(run):
    _, _, data = run
    metrics = data["metrics"]
    assert metrics["sparsity"] == pytest.approx(0.5, abs=0.02)
    assert "stem_conv" not in metrics["sparsity_per_layer"]
    assert all(value == pytest.approx(0.5, abs=0.05) for value in metrics["sparsity_per_layer"].values())


def test_convert_writes_verified_full_int8_model(run):
    _, manifest, data = run
    metrics = data["metrics"]
    path = manifest.run_dir / data["artifacts"]["int8_tflite"]
    report = inspect_int8(path)
    assert report["boundary_int8"] and report["float_ops"] == []
    interpreter = load_interpreter(path)
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    assert interpreter.get_input_details()[0]["shape"].tolist() == [1, 28, 28, 1]
    assert interpreter.get_input_details()[0]["shape_signature"].tolist() == [1, 28, 28, 1]  # static for the Edge TPU
    assert metrics["int8_boundary_ok"] and metrics["int8_float_ops"] == []
    assert metrics["tflite_sparsity"] >= 0.45  # PQAT kept the pruned zeros through conversion
    assert metrics["ptq_int8_tflite_sparsity"] < 0.1
    assert metrics["tflite_bytes"] == path.stat().st_size
    assert metrics["tflite_gzip_bytes"] < metrics["ptq_int8_tflite_gzip_bytes"]


def test_samples_file_ships_real_images_and_reference_outputs(run):
    _, manifest, data = run
    with np.load(manifest.run_dir / data["artifacts"]["int8_samples"]) as samples:
        assert samples["images"].dtype == np.uint8 and samples["images"].shape == (20, 28, 28, 1)
        assert samples["images"].std() > 0
        assert samples["reference_outputs"].dtype == np.int8 and samples["reference_outputs"].shape == (20, 10)
        assert samples["preprocess_scale"] == np.float32(1 / 255)


def test_recorded_wall_time_lies_within_the_stage_log_lines(micro_run):
    """wall_s is the time between a stage's `running` and `done` lines, less two function calls."""
    _, manifest, log = micro_run
    stamps = {tuple(line.split()[1:3]): when for line, when in zip(log, log.times, strict=True)}
    for stage in STAGE_NAMES:
        bracket = stamps[stage, "done"] - stamps[stage, "running"]
        # Rounded to 10 ms; the half is no timing limit, it catches a clock started or stopped mid-stage.
        assert bracket / 2 < manifest.stage(stage)["wall_s"] <= bracket + 0.005, stage


def test_manifest_lists_every_stage_with_config_and_hashes(run):
    _, manifest, data = run
    saved = json.loads(manifest.path.read_text())
    assert list(saved["stages"]) == ["data", "pretrain", "finetune", "prune", "quantize", "convert"]
    for record in saved["stages"].values():
        assert record["config"]
        for output in record["outputs"].values():
            assert len(output["sha256"]) == 64 and (manifest.run_dir / output["path"]).is_file()
    assert saved["stages"]["convert"]["inputs"]["quantize.quantize_ready"]["sha256"] == \
        saved["stages"]["quantize"]["outputs"]["quantize_ready"]["sha256"]
    for key in ("float_accuracy", "int8_accuracy", "tflite_bytes", "tflite_gzip_bytes", "sparsity",
                "ssl_accuracy", "scratch_accuracy", "label_fraction"):
        assert key in saved["metrics"], key
