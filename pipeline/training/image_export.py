"""Write an in-memory dataset out as an image folder (PNG): the same images in the layout a user
brings, to compare a folder run with an array run and to measure the folder reader at scale."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.core.artifacts import atomic_dir
from pipeline.core.tf_env import tf
from pipeline.training.datasets import Dataset
from pipeline.training.image_folder import TEST, TRAIN


def folder_class_names(dataset: Dataset) -> tuple[str, ...]:
    """The dataset's class names, else zero-padded label numbers (so sorting keeps the label order)."""
    if dataset.class_names:
        return dataset.class_names
    width = len(str(dataset.num_classes - 1))
    return tuple(f"{label:0{width}d}" for label in range(dataset.num_classes))


def export_png_folder(dataset: Dataset, root: Path, every: int = 1) -> dict[str, int]:
    """root/train|test/<class>/<position>.png for every `every`-th image; returns images per split."""
    names = folder_class_names(dataset)
    counts = {}
    with atomic_dir(root) as tmp:
        for split, images in ((TRAIN, dataset.train), (TEST, dataset.test)):
            positions = np.arange(0, len(images), every)
            chosen = images.select(positions)
            for name in names:
                (tmp / split / name).mkdir(parents=True)
            for position, image, label in zip(positions, chosen.to_array(), chosen.labels, strict=True):
                path = tmp / split / names[label] / f"{position:06d}.png"
                path.write_bytes(tf.io.encode_png(image).numpy())
            counts[split] = len(positions)
    return counts
