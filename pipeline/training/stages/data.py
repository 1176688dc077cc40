"""Stage 1: fingerprint the dataset and carve a seeded validation split from the training set.

Only indices and source hashes are written; later stages reload the images from the same
files. The runner hashes those files into this stage's cache key (`dataset_files` in
pipeline/training/runner.py), so replacing one re-runs this stage, and the changed hashes in
its output re-run everything after.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.core.artifacts import sha256_file, write_json
from pipeline.core.npz import save_npz
from pipeline.core.preprocessing import PIXEL_OFFSET, PIXEL_SCALE
from pipeline.training.datasets import Dataset, labeled_subset, load_dataset, split_indices
from pipeline.training.stage_io import StageContext, StageOutput


@dataclass(frozen=True)
class RunData:
    """The dataset with this run's split applied."""

    dataset: Dataset
    train_idx: np.ndarray
    val_idx: np.ndarray

    @property
    def train_images(self) -> np.ndarray:
        return self.dataset.train_images[self.train_idx]

    @property
    def train_labels(self) -> np.ndarray:
        return self.dataset.train_labels[self.train_idx]

    def labeled(self, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """The labelled part of the training split that fine-tuning, pruning and QAT may use."""
        subset = labeled_subset(self.train_labels, fraction, seed)
        return self.train_images[subset], self.train_labels[subset]

    @property
    def val_images(self) -> np.ndarray:
        return self.dataset.train_images[self.val_idx]

    @property
    def val_labels(self) -> np.ndarray:
        return self.dataset.train_labels[self.val_idx]


def run(ctx: StageContext) -> StageOutput:
    dataset = load_dataset(ctx.config.data, ctx.config.source)
    train_idx, val_idx = split_indices(len(dataset.train_images), ctx.config.data.validation_size, ctx.config.run.seed)
    split_path = ctx.out_dir / "split.npz"
    save_npz(split_path, train_idx=train_idx, val_idx=val_idx)
    sources_path = ctx.out_dir / "sources.json"
    write_json(sources_path, {str(path): sha256_file(path) for path in dataset.source_files})
    preprocessing = {
        "formula": "x * scale + offset",
        "scale": PIXEL_SCALE,
        "offset": PIXEL_OFFSET,
        "raw_dtype": "uint8",
        "layout": "NHWC",
        "input_shape": list(dataset.input_shape),
    }
    metrics = {
        "train_images": int(len(train_idx)),
        "validation_images": int(len(val_idx)),
        "test_images": int(len(dataset.test_images)),
        "num_classes": dataset.num_classes,
    }
    return StageOutput({"split": split_path, "sources": sources_path}, metrics, {"preprocessing": preprocessing})


def load_run_data(ctx: StageContext) -> RunData:
    """Reload the dataset and apply the split recorded by this stage."""
    dataset = load_dataset(ctx.config.data, ctx.config.source)
    with np.load(ctx.input("data", "split")) as split:
        return RunData(dataset, split["train_idx"], split["val_idx"])
