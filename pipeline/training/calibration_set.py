"""Representative samples for int8 calibration, drawn reproducibly from the training split.

The file holds raw uint8 images; the converter applies the model's preprocessing. Images
come from the training split only (never validation or test), stratified by class, with a
fixed seed, so `make calibration` rewrites the committed file byte for byte.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from pipeline.core.artifacts import atomic_path, sha256_file, write_json
from pipeline.core.npz import save_npz
from pipeline.errors import UserError
from pipeline.training.config import PipelineConfig
from pipeline.training.datasets import load_dataset, split_indices
from pipeline.training.external_files import existing_calibration
from pipeline.training.image_set import ImageSet

CALIBRATION_SEED = 20261126
PER_CLASS = 50


def stratified_positions(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Sorted positions of `per_class` items of every class (all of a smaller class), seeded."""
    rng = np.random.default_rng(seed)
    return np.sort(np.concatenate([
        rng.choice(np.flatnonzero(labels == cls), size=min(per_class, int(np.sum(labels == cls))), replace=False)
        for cls in np.unique(labels)]))


def draw_from_split(train: ImageSet, train_idx: np.ndarray, per_class: int = PER_CLASS,
                    seed: int = CALIBRATION_SEED) -> dict:
    """Calibration images from a training split (`train`, at positions `train_idx` of the dataset)."""
    chosen = stratified_positions(train.labels, per_class, seed)
    picked = train.select(chosen)
    classes, counts = np.unique(picked.labels, return_counts=True)
    provenance = {"seed": seed, "per_class": per_class, "count": int(len(chosen)),
                  "class_counts": {str(label): int(count) for label, count in zip(classes, counts, strict=True)},
                  "indices": train_idx[chosen].tolist(),
                  "preprocessing": "none: raw uint8 NHWC pixels; the converter applies the model's x * scale + offset"}
    if picked.streamed:
        provenance["files"] = picked.paths.tolist()
    return {"images": picked.to_array(), "labels": picked.labels, "provenance": provenance}


def draw_calibration(config: PipelineConfig, per_class: int = PER_CLASS, seed: int = CALIBRATION_SEED) -> dict:
    """Pick `per_class` training-split images of every class; return arrays and provenance."""
    data_config = config.data.__class__(**{**config.section("data"), "train_limit": 0, "test_limit": 0})
    dataset = load_dataset(data_config, config.source)
    train_idx, _ = split_indices(len(dataset.train), config.data.validation_size, config.run.seed)
    drawn = draw_from_split(dataset.train.select(train_idx), train_idx, per_class, seed)
    drawn["provenance"].update({
        "source_files": {str(path): sha256_file(path) for path in dataset.source_files},
        "split": f"training split of run seed {config.run.seed} with validation_size {config.data.validation_size}",
        "command": "make calibration",
    })
    return drawn


def save_calibration(path: Path, drawn: dict) -> None:
    """The images as .npz and their provenance as .json beside it."""
    save_npz(path, images=drawn["images"], labels=drawn["labels"], indices=np.asarray(drawn["provenance"]["indices"]))
    write_json(path.with_suffix(".json"), drawn["provenance"])


def publish_calibration(saved: Path, folder: Path, name: str) -> Path:
    """Copy a saved set (.npz and its .json) to `folder`/`name`.npz|.json, each file atomically."""
    target = folder / f"{name}.npz"
    for source, destination in ((saved, target), (saved.with_suffix(".json"), target.with_suffix(".json"))):
        with atomic_path(destination) as tmp:
            shutil.copyfile(source, tmp)
    return target


def write_calibration(config: PipelineConfig) -> Path:
    if not config.convert.calibration or config.data.format == "folder":
        raise UserError(f"{config.source}: `make calibration` writes the file convert.calibration names for an "
                        f"idx, cifar10 or npz dataset; with convert.calibration = \"\" the convert stage draws "
                        f"the samples from the run's training split itself")
    path = Path(config.convert.calibration)
    save_calibration(path, draw_calibration(config))
    return path


def load_calibration(path: Path, input_shape: tuple[int, ...]) -> np.ndarray:
    """The calibration images, checked against the model's input shape."""
    existing_calibration(path)
    with np.load(path) as data:
        images = data["images"]
    if images.dtype != np.uint8 or tuple(images.shape[1:]) != tuple(input_shape):
        raise UserError(f"calibration file {path} holds {images.dtype} images of shape {tuple(images.shape[1:])}, "
                        f"the model expects uint8 {tuple(input_shape)}; regenerate it with "
                        f"`python -m pipeline calibration --config <your config>`")
    return images
