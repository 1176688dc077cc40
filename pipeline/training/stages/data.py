"""Stage 1: check and fingerprint the dataset, and carve a seeded validation split from training.

Only indices, file lists and source hashes are written; later stages reload the images from
the same files. An image folder is decoded once here (streamed, in parallel): files that do
not decode, and entries the scan left out (broken symlinks, symlink loops, names that are not
UTF-8), are skipped and counted (or refused with `data.strict`), and the file list of
what remains is what every later stage reads. The runner hashes the dataset's files into this
stage's cache key (`dataset_files` in pipeline/training/runner.py), so replacing one re-runs this
stage, and the changed hashes in its output re-run everything after.
"""
from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from device_agents.edge_agent.memory import peak_rss_mb
from pipeline.core.artifacts import sha256_file, write_json
from pipeline.core.npz import save_npz
from pipeline.core.preprocessing import PIXEL_OFFSET, PIXEL_SCALE
from pipeline.errors import UserError
from pipeline.training.config import DataConfig
from pipeline.training.datasets import Dataset, folder_dataset, labeled_subset, load_dataset, split_indices
from pipeline.training.image_folder import TEST, TRAIN, VALIDATION, FolderSplit
from pipeline.training.image_set import ImageSet, decodable_positions
from pipeline.training.stage_io import StageContext, StageOutput

SKIPPED_SHOWN = 20  # undecodable files named in the manifest metrics (all of them are in skipped.json)


@dataclass(frozen=True)
class RunData:
    """The dataset with this run's split applied."""

    dataset: Dataset
    train_idx: np.ndarray
    val_idx: np.ndarray

    @property
    def train(self) -> ImageSet:
        return self.dataset.train.select(self.train_idx)

    @property
    def validation(self) -> ImageSet:
        """The val/ folder when the dataset has one, else the seeded split of the training images."""
        return self.dataset.validation or self.dataset.train.select(self.val_idx)

    @property
    def test(self) -> ImageSet:
        return self.dataset.test

    @property
    def pretraining(self) -> ImageSet:
        """What self-supervised pretraining sees: the training split plus any unlabeled images."""
        return self.train.concatenate(self.dataset.unlabeled) if self.dataset.unlabeled else self.train

    def labeled(self, fraction: float, seed: int) -> ImageSet:
        """The labelled part of the training split that fine-tuning, pruning and QAT may use."""
        return self.train.select(labeled_subset(self.train.labels, fraction, seed))


def _drop_undecodable(dataset: Dataset, config: DataConfig, source: str) -> tuple[Dataset, list[str], float]:
    """Decode every file once; return the dataset without the files that fail, their names, images/s."""
    parts = {"train": dataset.train, "test": dataset.test, "validation": dataset.validation,
             "unlabeled": dataset.unlabeled}
    kept, skipped, rates = {}, list(dataset.unreadable), []
    for name, images in parts.items():
        if images is None:
            continue
        positions, rate = decodable_positions(images)
        bad = np.setdiff1d(np.arange(len(images)), positions)
        skipped += [str(path) for path in images.paths[bad]] if images.streamed else []
        kept[name] = images.select(positions)
        rates.append((len(images), rate))
    if skipped and config.strict:
        raise UserError(f"{len(skipped)} image file(s) cannot be read or do not decode as PNG, JPEG, BMP or GIF, "
                        f"first {skipped[0]}; replace or remove them, or set data.strict = false in {source} to "
                        f"skip them")
    if skipped:
        print(f"data: skipped {len(skipped)} image file(s) that cannot be read or do not decode, first {skipped[0]} "
              f"(all listed in data/skipped.json; data.strict = true refuses them)", file=sys.stderr)
    for name in ("train", "test", "validation"):
        if name in kept and dataset.class_names:
            _check_every_class_left(kept[name], dataset.class_names, name, config.path)
    total = sum(count for count, _ in rates)
    seconds = sum(count / rate for count, rate in rates if rate > 0)
    cleaned = replace(dataset, train=kept["train"], test=kept["test"], validation=kept.get("validation"),
                      unlabeled=kept.get("unlabeled"))
    return cleaned, skipped, total / max(seconds, 1e-9)


def _check_two_classes(dataset: Dataset, where: str) -> None:
    """A classifier of one class is 100 % accurate and learns nothing: refused before anything is decoded."""
    present = np.unique(dataset.train.labels)
    if len(present) < 2:
        names = dataset.class_names or tuple(str(label) for label in present)
        raise UserError(f"the training split of {where} has {len(present)} class ({', '.join(names) or 'none'}): "
                        f"a classifier needs at least two; add a folder (or labels) for every class")


def _check_every_class_left(images: ImageSet, class_names: tuple[str, ...], split: str, root: str) -> None:
    counts = np.bincount(images.labels, minlength=len(class_names))
    if (counts == 0).any():
        empty = class_names[int(np.flatnonzero(counts == 0)[0])]
        raise UserError(f"class {empty!r} has no readable image left in the {split} split of {root} "
                        f"(every file failed to decode): add images that decode")


def _relative(images: ImageSet, root: str) -> np.ndarray:
    return np.asarray([str(Path(path).relative_to(root)) for path in images.paths], dtype=str)


def _save_index(path: Path, dataset: Dataset, config: DataConfig) -> None:
    """The kept files of every split, relative to data.path (unlabeled: to data.unlabeled_path)."""
    arrays = {"class_names": np.asarray(dataset.class_names, dtype=str)}
    for key, images in ((TRAIN, dataset.train), (TEST, dataset.test), (VALIDATION, dataset.validation)):
        if images is not None:
            arrays[f"{key}_files"], arrays[f"{key}_labels"] = _relative(images, config.path), images.labels
    if dataset.unlabeled is not None:
        arrays["unlabeled_files"] = _relative(dataset.unlabeled, config.unlabeled_path)
    save_npz(path, **arrays)


def _load_index(path: Path, config: DataConfig) -> Dataset:
    with np.load(path, allow_pickle=False) as index:
        splits = {key: FolderSplit(index[f"{key}_files"], index[f"{key}_labels"])
                  for key in (TRAIN, TEST, VALIDATION) if f"{key}_files" in index.files}
        unlabeled = index["unlabeled_files"] if "unlabeled_files" in index.files else None
        class_names = tuple(str(name) for name in index["class_names"])
    return folder_dataset(config, class_names, splits, unlabeled)


def _folder_digest(images: ImageSet, root: str) -> dict:
    """sha256 over every file's relative path and content hash: one line per folder in sources.json."""
    digest = hashlib.sha256()
    for path in images.paths:
        digest.update(f"{Path(path).relative_to(root)}\0{sha256_file(path)}\n".encode())
    return {"files": len(images), "sha256": digest.hexdigest()}


def _sources(dataset: Dataset, config: DataConfig) -> dict:
    if config.format != "folder":
        return {str(path): sha256_file(path) for path in dataset.source_files}
    parts = {TRAIN: dataset.train, TEST: dataset.test, VALIDATION: dataset.validation}
    sources = {str(Path(config.path, key)): _folder_digest(images, config.path)
               for key, images in parts.items() if images is not None}
    if dataset.unlabeled is not None:
        sources[config.unlabeled_path] = _folder_digest(dataset.unlabeled, config.unlabeled_path)
    return sources


def preprocessing_record(dataset: Dataset, config: DataConfig) -> dict:
    """What a device needs to turn its own pixels into this model's input."""
    height, width, channels = dataset.input_shape
    record = {
        "formula": "x * scale + offset",
        "scale": PIXEL_SCALE,
        "offset": PIXEL_OFFSET,
        # The same map written as per-channel (x - mean) / std, the form many camera pipelines take.
        "mean": [0.0 - PIXEL_OFFSET / PIXEL_SCALE + 0.0] * channels,
        "std": [1.0 / PIXEL_SCALE] * channels,
        "raw_dtype": "uint8",
        "layout": "NHWC",
        "input_shape": [height, width, channels],
        "image_size": [height, width],
        "color": "grayscale" if channels == 1 else "rgb",
        "resize": "none: images are stored at this size",
    }
    if dataset.train.streamed:
        record.update(dataset.train.decoder.describe())
    return record


def run(ctx: StageContext) -> StageOutput:
    config = ctx.config.data
    dataset = load_dataset(config, ctx.config.source)
    _check_two_classes(dataset, config.path)
    artifacts, metrics = {}, {}
    if config.format == "folder":
        dataset, skipped, rate = _drop_undecodable(dataset, config, ctx.config.source)
        artifacts["files"] = ctx.out_dir / "files.npz"
        _save_index(artifacts["files"], dataset, config)
        artifacts["skipped"] = ctx.out_dir / "skipped.json"
        write_json(artifacts["skipped"], skipped)
        metrics.update({"skipped_images": len(skipped), "skipped_files": skipped[:SKIPPED_SHOWN],
                        "decode_images_per_s": round(rate, 1), "unlabeled_images": len(dataset.unlabeled or ())})
    if dataset.validation is None:
        train_idx, val_idx = split_indices(len(dataset.train), config.validation_size, ctx.config.run.seed)
    else:
        train_idx, val_idx = np.arange(len(dataset.train)), np.empty(0, np.int64)
    artifacts["split"] = ctx.out_dir / "split.npz"
    save_npz(artifacts["split"], train_idx=train_idx, val_idx=val_idx)
    artifacts["sources"] = ctx.out_dir / "sources.json"
    write_json(artifacts["sources"], _sources(dataset, config))
    run_data = RunData(dataset, train_idx, val_idx)
    metrics.update({
        "train_images": int(len(train_idx)),
        "validation_images": len(run_data.validation),
        "test_images": len(dataset.test),
        "num_classes": dataset.num_classes,
        # The whole process's peak so far: the data stage's own when it runs first in a fresh process.
        "data_peak_rss_mb": round(peak_rss_mb(), 1),
    })
    extra = {"preprocessing": preprocessing_record(dataset, config),
             "class_names": list(dataset.class_names) if dataset.class_names else None}
    return StageOutput(artifacts, metrics, extra)


def load_run_data(ctx: StageContext) -> RunData:
    """Reload the dataset (a folder: the files the data stage kept) and apply its split."""
    config = ctx.config.data
    if config.format == "folder":
        dataset = _load_index(ctx.input("data", "files"), config)
    else:
        dataset = load_dataset(config, ctx.config.source)
    with np.load(ctx.input("data", "split")) as split:
        return RunData(dataset, split["train_idx"], split["val_idx"])
