"""The compression stages (distill, slim, cluster, and quantize's CQAT/PCQAT) on tiny data, through the runner.

The micro run turns every optional step off; the slow `compressed_run` turns them all on (a half-width
ResNet-8 student, channel pruning, low-rank factorization, 50% magnitude pruning, 8 clusters, PCQAT)
under run.strategy = "default" and converts it.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import UserError
from pipeline.training.config import load_config
from tests.conftest import micro_config, run_cli, write_toml
from tests.test_runner import copied_run, statuses  # noqa: F401  (copied_run is a fixture)

pytestmark = pytest.mark.filterwarnings("ignore:Statistics for quantized inputs:UserWarning")

CLUSTERS = 8
TEACHER_WIDTH = 0.25  # the micro run's model.width
STUDENT_WIDTH = TEACHER_WIDTH / 2


def _with(config, **sections):
    """`config` with some fields of some sections replaced (not validated)."""
    for section, values in sections.items():
        config = dataclasses.replace(config, **{section: dataclasses.replace(getattr(config, section), **values)})
    return config


# --- each step off -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("stage, source, reason", [
    ("distill", "finetune.classifier", "distill.student is not set"),
    ("slim", "distill.model", "slim.channel_ratio and slim.lowrank_energy are 0"),
    ("cluster", "prune.pruned", "cluster.clusters = 0"),
])
def test_a_step_that_is_off_hands_its_input_on_byte_for_byte(micro_run, stage, source, reason):
    config, manifest, log = micro_run
    record = manifest.stage(stage)
    assert reason in record["skipped"]
    assert any(line.split()[1:3] == [stage, "skipped"] and reason in line for line in log)
    [output] = record["outputs"].values()
    assert output["sha256"] == record["inputs"][source]["sha256"]
    source_stage, artifact = source.split(".")
    assert (manifest.run_dir / output["path"]).read_bytes() == manifest.output_path(source_stage, artifact).read_bytes()


# --- which images distillation sees ----------------------------------------------------------------------------------

def _run_data(unlabeled: int):
    from pipeline.training.datasets import Dataset, in_memory
    from pipeline.training.stages.data import RunData

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (60, 8, 8, 1), dtype=np.uint8)
    labels = np.arange(60) % 3
    extra = in_memory(rng.integers(0, 256, (unlabeled, 8, 8, 1), dtype=np.uint8), np.full(unlabeled, -1)) \
        if unlabeled else None
    dataset = Dataset(in_memory(images, labels), in_memory(images[:6], labels[:6]), (), unlabeled=extra)
    return RunData(dataset, train_idx=np.arange(10, 60), val_idx=np.arange(10))


@pytest.mark.parametrize("unlabeled_images, distill_unlabeled", [(0, True), (7, True), (7, False)])
def test_distillation_sees_the_labelled_subset_with_labels_and_the_rest_as_soft_labels_only(
        tmp_path, unlabeled_images, distill_unlabeled):
    from pipeline.training.image_set import UNLABELED
    from pipeline.training.teacher_training import distillation_images

    config = micro_config(tmp_path, distill={"student": "resnet8", "unlabeled": distill_unlabeled})
    data = _run_data(unlabeled_images)
    images = distillation_images(config, data)
    labelled = data.labeled(config.finetune.label_fraction, config.run.seed)  # what fine-tuning and the baseline see
    has_label = images.labels != UNLABELED
    np.testing.assert_array_equal(images.to_array()[has_label], labelled.to_array())
    np.testing.assert_array_equal(images.labels[has_label], labelled.labels)
    soft_only = len(data.train) - len(labelled) + unlabeled_images if distill_unlabeled else 0
    assert len(images) - int(has_label.sum()) == soft_only


# --- bad combinations and layers a method cannot handle ---------------------------------------------------------------

@pytest.mark.parametrize("sections, key", [
    ({"cluster": {"clusters": 8}, "quantize": {"method": "pqat"}}, "quantize.method = 'pqat'"),
    ({"cluster": {"clusters": 8}, "quantize": {"method": "cqat"}}, "quantize.method = 'cqat'"),  # micro prunes
    ({"quantize": {"method": "pcqat"}}, "cluster.clusters = 0"),
    ({"prune": {"target_sparsity": 0.0}, "quantize": {"method": "pqat"}}, "prune.target_sparsity = 0"),
    ({"slim": {"channel_layers": ["stack1_a_conv"]}}, "slim.channel_layers names layers but slim.channel_ratio = 0"),
    ({"slim": {"lowrank_layers": ["logits"]}}, "slim.lowrank_layers names layers but slim.lowrank_energy = 0"),
    ({"prune": {"recovery": "teachers"}}, "prune.recovery"),
    ({"cluster": {"layers": ["stack1_a_conv"]}}, "cluster.layers names layers but cluster.clusters = 0"),
])
def test_a_bad_compression_config_is_refused_at_load_in_one_line_naming_file_and_key(tmp_path, sections, key):
    path = write_toml(_with(micro_config(tmp_path), **sections), tmp_path / "bad.toml")
    with pytest.raises(UserError) as error:
        load_config(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ") and key in message and "\n" not in message


def test_an_unprunable_layer_fails_the_pipeline_in_one_line_on_the_command_line(copied_run, tmp_path):
    config = _with(copied_run, slim={"channel_ratio": 0.5, "channel_layers": ["stack2_add"]})
    done = run_cli("slim", "--config", str(write_toml(config, tmp_path / "add.toml")))
    assert done.returncode == 1
    [line] = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert re.search(r"layer stack2_add \(Add\) cannot be channel-pruned: .*remove it from slim\.channel_layers "
                     r"\(prunable: stack1_a_conv, stack2_a_conv, stack3_a_conv\)$", line)
    assert "Traceback" not in done.stderr


def test_a_layer_lowrank_cannot_split_fails_the_pipeline_in_one_line(copied_run):
    """A depthwise student (DS-CNN) with slim.lowrank_layers naming one of its DepthwiseConv2D layers."""
    from models import build_classifier
    from pipeline.training.runner import run_stages

    depthwise = next(layer.name for layer in build_classifier("ds_cnn", (28, 28, 1), 10, STUDENT_WIDTH).layers
                     if type(layer).__name__ == "DepthwiseConv2D")
    config = _with(copied_run, distill={"student": "ds_cnn", "width": STUDENT_WIDTH, "epochs": 1,
                                        "plain_baseline": False},
                   slim={"lowrank_energy": 0.9, "lowrank_layers": [depthwise]})
    log = []
    with pytest.raises(UserError) as error:
        run_stages(config, until="slim", log=log.append)
    assert str(error.value) == (f"layer {depthwise} (DepthwiseConv2D) cannot be factorized: only Conv2D (ungrouped, "
                                "undilated) and Dense kernels can; remove it from slim.lowrank_layers")
    assert statuses(log)["distill"] == "done"


# --- recovery from the teacher ------------------------------------------------------------------------------------

def test_recovery_from_the_teacher_trains_on_every_image_and_keeps_each_stages_promise(copied_run):
    """slim, prune and cluster with recovery = "teacher": each fine-tunes through the Distiller on every
    training image (not the labelled quarter), and what the surgery promised still holds afterwards:
    fewer MACs, the target sparsity (UpdatePruningStep reaches the wrappers inside the Distiller), at most
    `clusters` values per kernel besides the pruned zeros in the layers cluster.layers names, and only there."""
    from pipeline.training.model_source import load_stage_model
    from pipeline.training.runner import run_stages

    teacher = {"recovery": "teacher", "epochs": 1}
    clustered_layers = ["stack2_b_conv", "stack3_a_conv", "stack3_b_conv"]
    config = _with(copied_run, slim={"channel_ratio": 0.5, **teacher}, prune={**teacher, "frequency": 5},
                   cluster={"clusters": CLUSTERS, "layers": clustered_layers, **teacher}, quantize={"method": "pcqat"})
    log = []
    manifest = run_stages(config, until="cluster", log=log.append)
    assert [statuses(log)[stage] for stage in ("slim", "prune", "cluster")] == ["done"] * 3
    train = len(np.load(manifest.output_path("data", "split"))["train_idx"])
    assert config.finetune.label_fraction < 1  # so "every image" is more than the labelled ones
    for stage in ("slim", "prune", "cluster"):
        metrics = manifest.stage(stage)["metrics"]
        assert (metrics["recovery"], metrics["recovery_images"]) == ("teacher", train), stage
    slim, prune = manifest.stage("slim")["metrics"], manifest.stage("prune")["metrics"]
    assert slim["macs_after"] < slim["macs_before"]
    assert prune["sparsity"] == pytest.approx(config.prune.target_sparsity, abs=0.02)
    distinct = manifest.stage("cluster")["metrics"]["distinct_kernel_values"]
    clustered = load_stage_model(manifest.output_path("cluster", "clustered"), config)
    for layer in clustered.layers:
        if type(layer).__name__ in ("Conv2D", "Dense"):
            values = len(np.unique(layer.get_weights()[0]))
            assert values == distinct[layer.name]
            # cluster.layers: only those are clustered (the others keep more values than the bound).
            assert (values <= CLUSTERS + 1) == (layer.name in clustered_layers), (layer.name, values)


# --- every step on (slow: trains five compression stages from scratch) -----------------------------------------------

@pytest.fixture(scope="module")
def compressed_run(tmp_path_factory):
    from pipeline.training.runner import run_stages

    config = micro_config(
        tmp_path_factory.mktemp("compressed"), name="compressed", run={"strategy": "default"},
        distill={"student": "resnet8", "width": STUDENT_WIDTH, "epochs": 1, "batch_size": 64},
        slim={"channel_ratio": 0.5, "lowrank_energy": 0.9, "epochs": 1},
        cluster={"clusters": CLUSTERS, "epochs": 1}, quantize={"method": "pcqat"})
    return config, run_stages(config, log=lambda line: None)


@pytest.mark.slow
def test_the_compressed_variant_is_named_by_its_recipe(compressed_run):
    from pipeline.core.variants import recipe_of

    config, manifest = compressed_run
    metrics = manifest.data["metrics"]
    assert metrics["compressed_variant"] == recipe_of(config).name == "distilled_chpruned_lowrank_pcqat_int8"
    assert set(metrics["variants"]) == {"float", "ptq_int8", "distilled_chpruned_lowrank_pcqat_int8"}
    assert all(not manifest.stage(stage).get("skipped") for stage in ("distill", "slim", "cluster"))


@pytest.mark.slow
def test_distillation_records_a_student_half_the_teacher_and_both_accuracies(compressed_run):
    from pipeline.training.model_source import load_stage_model

    config, manifest = compressed_run
    metrics = manifest.stage("distill")["metrics"]
    teacher = load_stage_model(manifest.output_path("finetune", "classifier"), config)
    student = load_stage_model(manifest.output_path("distill", "model"), config)
    assert (metrics["teacher_params"], metrics["student_params"]) == (teacher.count_params(), student.count_params())
    assert metrics["student_params"] <= 0.5 * metrics["teacher_params"]
    for key in ("teacher_accuracy", "distilled_accuracy", "plain_student_accuracy"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["distillation_gain"] == pytest.approx(metrics["distilled_accuracy"]
                                                         - metrics["plain_student_accuracy"])
    train = len(np.load(manifest.output_path("data", "split"))["train_idx"])
    assert metrics["labelled_images"] + metrics["soft_label_only_images"] == train  # Fashion-MNIST: none unlabeled
    # The baseline learns from exactly the images distillation has labels for, for as many epochs.
    assert metrics["plain_student_images"] == metrics["labelled_images"]
    assert metrics["plain_student_epochs"] == config.distill.epochs


@pytest.mark.slow
def test_slim_macs_are_the_models_and_the_tflite_files_macs(compressed_run):
    """Keras-counted MACs (surgery.model_macs) and graph-counted MACs (tflite.cost) are the same count:
    Conv2D / DepthwiseConv2D / Dense output positions times kernel size, nothing else. So they are equal,
    and the compressed file has fewer MACs than ptq_int8 by exactly what distill and slim removed."""
    from pipeline.training.model_source import load_stage_model
    from pipeline.training.surgery import model_macs

    config, manifest = compressed_run
    slim, distill = manifest.stage("slim")["metrics"], manifest.stage("distill")["metrics"]
    slimmed = load_stage_model(manifest.output_path("slim", "model"), config)
    assert slim["macs_after"] == model_macs(slimmed) < slim["macs_before"] == distill["student_macs"]
    assert slim["params_after"] == slimmed.count_params()
    variants = manifest.data["metrics"]["variants"]
    compressed = variants[manifest.data["metrics"]["compressed_variant"]]
    assert variants["ptq_int8"]["macs"] == variants["float"]["macs"] == distill["teacher_macs"]
    assert compressed["macs"] == slim["macs_after"]
    assert variants["ptq_int8"]["macs"] - compressed["macs"] == (
        distill["teacher_macs"] - distill["student_macs"] + slim["macs_before"] - slim["macs_after"])
    # Graph parameters are kernel weights only; Keras also counts biases and BatchNorm.
    kernels = sum(int(np.prod(layer.get_weights()[0].shape)) for layer in slimmed.layers
                  if type(layer).__name__ in ("Conv2D", "DepthwiseConv2D", "Dense"))
    assert compressed["params"] == kernels


def _int8_kernels(path: Path) -> dict[str, np.ndarray]:
    """Layer name -> int8 kernel [output channels, ...] of each conv / fully-connected op of a .tflite file."""
    from pipeline.tflite.graph import load_graph

    kernels = {}
    for op in load_graph(path).ops:
        if op.name in ("CONV_2D", "FULLY_CONNECTED"):
            weights = op.inputs[1]
            kernels[re.search(r"/quant_(\w+?)/", weights.name).group(1)] = weights.values
    return kernels


@pytest.mark.slow
def test_pcqat_keeps_clusters_and_pruned_zeros_into_the_int8_file(compressed_run):
    from pipeline.training.model_source import load_stage_model

    config, manifest = compressed_run
    name = manifest.data["metrics"]["compressed_variant"]
    kernels = _int8_kernels(manifest.output_path("convert", f"{name}_tflite"))
    pruned = {layer.name: layer.get_weights()[0]
              for layer in load_stage_model(manifest.output_path("prune", "pruned"), config).layers
              if type(layer).__name__ in ("Conv2D", "Dense")}
    assert set(kernels) == set(pruned)
    bound_bites = False
    for layer, kernel in kernels.items():
        rows = kernel.reshape(kernel.shape[0], -1)
        # Per-channel int8 scales map each channel's centroids to at most one int8 value each (+ exact zeros).
        assert max(len(np.unique(row)) for row in rows) <= CLUSTERS + 1, layer
        bound_bites |= rows.shape[1] > CLUSTERS + 1
        # Keras [kh, kw, in, out] / [in, out] against TFLite [out, kh, kw, in] / [out, in].
        zeros = np.moveaxis(pruned[layer] == 0, -1, 0)
        assert np.all(kernel[zeros] == 0), layer
    assert bound_bites  # some channels hold more weights than the bound, so it says something
    sparsity = manifest.data["metrics"]["variants"][name]["tflite_sparsity"]
    assert sparsity == pytest.approx(config.prune.target_sparsity, abs=0.02)
