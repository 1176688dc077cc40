"""Each training stage on a micro run (600 images, one epoch): its artifacts and metrics."""
import json

import numpy as np
import pytest

from pipeline.core.tf_env import keras
from pipeline.tflite.evaluation import load_interpreter, run_model
from pipeline.tflite.verification import inspect_int8
from pipeline.training.datasets import load_dataset
from pipeline.training.fit import keras_accuracy
from pipeline.training.runner import STAGE_NAMES, run_stages
from tests.conftest import micro_config


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
    assert metrics["ssl_accuracy"] == keras_accuracy(classifier, dataset.test)
    assert (metrics["scratch_accuracy"] * len(dataset.test.labels)).is_integer()  # a share of the 200 test images


def test_prune_reaches_target_sparsity_per_layer(run):
    _, _, data = run
    metrics = data["metrics"]
    assert metrics["sparsity"] == pytest.approx(0.5, abs=0.02)
    assert "stem_conv" not in metrics["sparsity_per_layer"]
    assert all(value == pytest.approx(0.5, abs=0.05) for value in metrics["sparsity_per_layer"].values())


def test_convert_writes_verified_full_int8_model(run):
    _, manifest, data = run
    assert data["metrics"]["compressed_variant"] == "pqat_int8"  # pruned (0.5) + PQAT, the tiny config's recipe
    assert set(data["metrics"]["variants"]) == {"float", "ptq_int8", "pqat_int8"}
    pqat, ptq = data["metrics"]["variants"]["pqat_int8"], data["metrics"]["variants"]["ptq_int8"]
    path = manifest.run_dir / data["artifacts"]["pqat_int8_tflite"]
    report = inspect_int8(path)
    assert report["boundary_int8"] and report["float_ops"] == []
    interpreter = load_interpreter(path)
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    assert interpreter.get_input_details()[0]["shape"].tolist() == [1, 28, 28, 1]
    assert interpreter.get_input_details()[0]["shape_signature"].tolist() == [1, 28, 28, 1]  # static for the Edge TPU
    assert pqat["boundary_ok"] and pqat["float_ops"] == []
    assert pqat["tflite_sparsity"] >= 0.45  # PQAT kept the pruned zeros through conversion
    assert ptq["tflite_sparsity"] < 0.1
    assert pqat["bytes"] == path.stat().st_size
    assert pqat["gzip_bytes"] < ptq["gzip_bytes"]


def test_each_variant_records_the_float_model_it_came_from(run):
    _, _, data = run
    variants = data["metrics"]["variants"]
    # float and PTQ come from the fine-tuned model, PQAT from the pruned one: different models, different scores.
    assert variants["float"]["source_float_accuracy"] == variants["ptq_int8"]["source_float_accuracy"]
    assert variants["ptq_int8"]["converted_keras_accuracy"] == variants["ptq_int8"]["source_float_accuracy"]
    assert variants["float"]["accuracy"] == pytest.approx(variants["float"]["source_float_accuracy"], abs=0.01)
    for numbers in variants.values():
        assert 0.0 <= numbers["accuracy"] <= 1.0 and 0.0 <= numbers["source_float_accuracy"] <= 1.0


def test_samples_file_ships_real_images_and_reference_outputs(run):
    _, manifest, data = run
    with np.load(manifest.run_dir / data["artifacts"]["pqat_int8_samples"]) as samples:
        assert samples["images"].dtype == np.uint8 and samples["images"].shape == (20, 28, 28, 1)
        assert samples["images"].std() > 0
        assert samples["reference_outputs"].dtype == np.int8 and samples["reference_outputs"].shape == (20, 10)
        assert samples["preprocess_scale"] == np.float32(1 / 255)
        path = manifest.run_dir / data["artifacts"]["pqat_int8_tflite"]  # references belong to these very images
        np.testing.assert_array_equal(run_model(path, [samples["images"]], "check"), samples["reference_outputs"])
        assert len(np.unique(samples["labels"])) > 1


def test_recorded_wall_time_lies_within_the_stage_log_lines(micro_run):
    """wall_s is the time between a stage's `running` and `done` lines, less two function calls."""
    _, manifest, log = micro_run
    stamps = {tuple(line.split()[1:3]): when for line, when in zip(log, log.times, strict=True)}
    for stage in STAGE_NAMES:
        bracket = stamps[stage, "done"] - stamps[stage, "running"]
        # Rounded to 10 ms (a skipped step takes less); the half is no timing limit, it catches a clock started or
        # stopped mid-stage.
        assert bracket / 2 - 0.005 < manifest.stage(stage)["wall_s"] <= bracket + 0.005, stage


def test_manifest_lists_every_stage_with_config_and_hashes(run):
    _, manifest, data = run
    saved = json.loads(manifest.path.read_text())
    assert list(saved["stages"]) == ["data", "pretrain", "finetune", "distill", "slim", "prune", "cluster", "quantize",
                                     "convert"]
    for record in saved["stages"].values():
        assert record["config"]
        for output in record["outputs"].values():
            assert len(output["sha256"]) == 64 and (manifest.run_dir / output["path"]).is_file()
    assert saved["stages"]["convert"]["inputs"]["quantize.quantize_ready"]["sha256"] == \
        saved["stages"]["quantize"]["outputs"]["quantize_ready"]["sha256"]
    for key in ("variants", "compressed_variant", "calibration_samples", "sparsity",
                "ssl_accuracy", "scratch_accuracy", "label_fraction"):
        assert key in saved["metrics"], key


def test_unpruned_ptq_is_the_fine_tuned_ptq_model_made_once(tmp_path_factory):
    """Sparsity 0 passes the fine-tuned model through pruning, and its PTQ is `ptq_int8`: one file, not two."""
    config = micro_config(tmp_path_factory.mktemp("build"), name="unpruned", pretrain={"method": "none"},
                          prune={"target_sparsity": 0.0}, quantize={"method": "ptq"})
    manifest = run_stages(config, log=lambda _: None)
    assert manifest.stage("prune")["outputs"]["pruned"]["sha256"] == \
        manifest.stage("finetune")["outputs"]["classifier"]["sha256"]
    metrics = manifest.data["metrics"]
    assert metrics["compressed_variant"] == "ptq_int8" and list(metrics["variants"]) == ["float", "ptq_int8"]
    assert sorted(path.name for path in (manifest.run_dir / "convert").glob("*.tflite")) == [
        "float.tflite", "ptq_int8.tflite"]


def test_every_variant_counts_the_macs_and_kernel_weights_of_its_architecture(run):
    _, manifest, data = run
    variants = data["metrics"]["variants"]
    finetuned = keras.models.load_model(manifest.output_path("finetune", "classifier"), compile=False)
    kernel_weights = sum(int(layer.kernel.shape.num_elements())
                         for layer in finetuned.layers if hasattr(layer, "kernel"))
    # pruning zeros weights but keeps them, so every variant of one architecture counts the same
    assert {numbers["params"] for numbers in variants.values()} == {kernel_weights}
    assert len({numbers["macs"] for numbers in variants.values()}) == 1
    assert variants["float"]["macs"] > kernel_weights  # convolutions reuse each weight at many positions
