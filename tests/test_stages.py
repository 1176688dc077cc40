"""Each training stage on a micro run (600 images, one epoch): its artifacts and metrics."""
import json

import numpy as np
import pytest

from pipeline.tflite.evaluation import load_interpreter, run_model
from pipeline.tflite.verification import inspect_int8


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
    config, _, data = run
    metrics = data["metrics"]
    assert metrics["label_fraction"] == config.finetune.label_fraction
    assert metrics["labeled_images"] == pytest.approx(500 * config.finetune.label_fraction, abs=10)
    for key in ("ssl_accuracy", "scratch_accuracy"):
        assert 0.0 <= metrics[key] <= 1.0


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
        path = manifest.run_dir / data["artifacts"]["int8_tflite"]  # references belong to these very images
        np.testing.assert_array_equal(run_model(path, [samples["images"]], "check"), samples["reference_outputs"])
        assert len(np.unique(samples["labels"])) > 1


def test_manifest_lists_every_stage_with_hashes_and_wall_time(run):
    _, manifest, data = run
    saved = json.loads(manifest.path.read_text())
    assert list(saved["stages"]) == ["data", "pretrain", "finetune", "prune", "quantize", "convert"]
    for record in saved["stages"].values():
        assert record["wall_s"] >= 0 and record["config"]
        for output in record["outputs"].values():
            assert len(output["sha256"]) == 64 and (manifest.run_dir / output["path"]).is_file()
    assert saved["stages"]["convert"]["inputs"]["quantize.quantize_ready"]["sha256"] == \
        saved["stages"]["quantize"]["outputs"]["quantize_ready"]["sha256"]
    for key in ("float_accuracy", "int8_accuracy", "tflite_bytes", "tflite_gzip_bytes", "sparsity",
                "ssl_accuracy", "scratch_accuracy", "label_fraction"):
        assert key in saved["metrics"], key
