"""A user's image folder through every stage and onto the local device: 3 classes of 32x32 RGB
PNG and JPEG files plus an unlabeled folder; the class names reach the manifest, the agent's JSON
and the printed table (about two minutes on 2 cores)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.tflite.evaluation import load_interpreter
from pipeline.training.runner import run_stages
from tests.conftest import micro_config, run_cli
from tests.image_folder_fixtures import CLASS_NAMES, write_image_folder

pytestmark = pytest.mark.slow
LOCAL_DEVICE = """[devices.local]
transport = "local"
workdir = "{workdir}"
runs = 20
min_s = 0.1
warmup_runs = 2
warmup_min_s = 0.0
idle_s = 0.0
"""


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    home = tmp_path_factory.mktemp("folder-run")
    images = write_image_folder(home / "images")
    config = micro_config(
        home / "build", name="photos",
        data={"format": "folder", "path": str(images), "image_size": [32, 32], "color": "rgb",
              "unlabeled_path": str(images / "unlabeled"), "train_limit": 0, "test_limit": 0, "validation_size": 15},
        pretrain={"batch_size": 32}, finetune={"batch_size": 16}, prune={"batch_size": 16},
        quantize={"batch_size": 16}, convert={"calibration": ""})
    return home, run_stages(config, log=lambda _: None)


def test_every_stage_runs_on_the_folder_and_names_its_classes(folder_run):
    _, manifest = folder_run
    metrics, data = manifest.data["metrics"], manifest.data
    assert list(data["stages"]) == ["data", "pretrain", "finetune", "distill", "slim", "prune", "cluster", "quantize",
                                    "convert"]
    assert data["class_names"] == list(CLASS_NAMES)
    assert (metrics["train_images"], metrics["validation_images"], metrics["test_images"]) == (105, 15, 30)
    assert metrics["unlabeled_images"] == 60 and metrics["pretrain_images"] == 105 + 60
    assert data["preprocessing"]["input_shape"] == [32, 32, 3] and data["preprocessing"]["resize"] == "bilinear"
    assert data["preprocessing"]["color"] == "rgb" and data["preprocessing"]["std"] == [255.0] * 3
    compressed = metrics["compressed_variant"]
    interpreter = load_interpreter(manifest.run_dir / data["artifacts"][f"{compressed}_tflite"])
    assert interpreter.get_input_details()[0]["shape"].tolist() == [1, 32, 32, 3]
    numbers = metrics["variants"][compressed]
    assert numbers["boundary_ok"] and numbers["float_ops"] == []
    with np.load(manifest.run_dir / data["artifacts"][f"{compressed}_samples"]) as samples:
        assert samples["class_names"].tolist() == list(CLASS_NAMES) and samples["images"].shape == (20, 32, 32, 3)
        assert np.bincount(samples["labels"]).tolist() == [7, 7, 6]  # spread over the class-ordered test files


def test_calibration_is_drawn_from_the_training_split_with_provenance(folder_run):
    _, manifest = folder_run
    provenance = json.loads(manifest.output_path("convert", "calibration_provenance").read_text())
    with np.load(manifest.output_path("convert", "calibration")) as calibration:
        labels = calibration["labels"]
    with (np.load(manifest.output_path("data", "split")) as split,
          np.load(manifest.output_path("data", "files")) as files):
        train_idx, train_labels = split["train_idx"], files["train_labels"][split["train_idx"]]
    # Stratified at 50 per class: every training image of these small classes, never a validation image.
    assert np.bincount(labels).tolist() == np.bincount(train_labels).tolist()
    assert set(provenance["indices"]) <= set(train_idx.tolist()) and len(provenance["files"]) == 105
    assert all("/train/" in path for path in provenance["files"])
    assert manifest.data["metrics"]["calibration_samples"] == 105


def test_bench_local_reports_the_class_names(folder_run):
    home, manifest = folder_run
    inventory = home / "devices.toml"
    inventory.write_text(LOCAL_DEVICE.format(workdir=home / "device"))
    result = run_cli("bench", "--devices", str(inventory), "--device", "local", "--run", "photos", cwd=home)
    assert result.returncode == 0, result.stderr
    assert "classes: 0=cat, 1=dog, 2=frog" in result.stdout.splitlines()
    saved = json.loads(next((home / "build" / "photos" / "bench").glob("local-*.json")).read_text())
    assert saved["class_names"] == list(CLASS_NAMES) and saved["accuracy"]["count"] == 20
    assert saved["output_max_diff"] <= 2  # the agent reproduces the host's int8 outputs
