"""Datasets: IDX files (MNIST layout), CIFAR-10 python pickles, one .npz, or an image folder.

The first three are uint8 NHWC arrays in memory; a folder is a list of image files that
tf.data decodes as it goes (pipeline.training.image_set). Unless the folder has a val/ split,
the training split is divided into a training part and a validation part with a seeded
permutation; the test split is only ever used for final evaluation.
"""
from __future__ import annotations

import dataclasses
import gzip
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import UserError
from pipeline.training.config import DataConfig
from pipeline.training.external_files import (
    IDX_FILES,
    NPZ_REQUIRED,
    cifar10_source_files,
    idx_source_files,
    missing_dataset,
)
from pipeline.training.image_folder import TEST, TRAIN, VALIDATION, FolderSplit, scan_folder, scan_unlabeled
from pipeline.training.image_set import UNLABELED, ImageDecoding, ImageSet

IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.int16, 0x0C: np.int32, 0x0D: np.float32, 0x0E: np.float64}


@dataclass(frozen=True)
class Dataset:
    train: ImageSet
    test: ImageSet
    source_files: tuple[Path, ...]  # what was read (for a folder: the folders; every file: see source_files)
    validation: ImageSet | None = None  # a val/ folder; None = the data stage carves one from `train`
    unlabeled: ImageSet | None = None  # extra images for self-supervised pretraining
    class_names: tuple[str, ...] | None = None
    unreadable: tuple[str, ...] = ()  # folder entries left out: "<path> (<reason>)" (image_folder.py)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.train.image_shape

    @property
    def num_classes(self) -> int:
        if self.class_names:
            return len(self.class_names)
        return int(max(self.train.labels.max(), self.test.labels.max())) + 1


def in_memory(images: np.ndarray, labels: np.ndarray) -> ImageSet:
    return ImageSet(np.asarray(labels, dtype=np.int64), arrays=images)


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (optionally gzipped): magic, dims, then big-endian data."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise UserError(f"{path} is not an IDX file (bad magic number)")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    dtype = np.dtype(IDX_DTYPES[raw[2]]).newbyteorder(">")
    data = np.frombuffer(raw, dtype=dtype, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise UserError(f"{path} is truncated: expected {int(np.prod(dims))} values, found {data.size}")
    return data.reshape(dims).astype(dtype.newbyteorder("="))


def load_idx_dir(folder: Path, config_path: str) -> Dataset:
    paths = dict(zip(IDX_FILES, idx_source_files(folder, config_path), strict=True))
    arrays = {key: read_idx(path) for key, path in paths.items()}
    images = {key: arrays[key][..., None] if arrays[key].ndim == 3 else arrays[key]
              for key in ("train_images", "test_images")}
    return Dataset(
        train=in_memory(images["train_images"].astype(np.uint8), arrays["train_labels"]),
        test=in_memory(images["test_images"].astype(np.uint8), arrays["test_labels"]),
        source_files=tuple(paths.values()),
    )


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as handle:
        batch = pickle.load(handle, encoding="bytes")
    images = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, np.asarray(batch[b"labels"], dtype=np.int64)


def load_cifar10_dir(folder: Path, config_path: str) -> Dataset:
    paths = cifar10_source_files(folder, config_path)
    train = [_read_cifar_batch(path) for path in paths[:-1]]
    test_images, test_labels = _read_cifar_batch(paths[-1])
    return Dataset(
        train=in_memory(np.concatenate([images for images, _ in train]),
                        np.concatenate([labels for _, labels in train])),
        test=in_memory(test_images, test_labels),
        source_files=tuple(paths),
    )


def _npz_images(path: Path, name: str, array: np.ndarray) -> np.ndarray:
    if array.ndim == 3:
        array = array[..., None]
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] not in (1, 3) or not len(array):
        raise UserError(f"{path}: {name} must be non-empty uint8 raw pixels [N, H, W] or [N, H, W, 1|3], "
                        f"got {array.dtype} {list(array.shape)}; save the images before any scaling")
    return array


def _npz_labels(path: Path, name: str, labels: np.ndarray, count: int, classes: int | None) -> np.ndarray:
    if labels.ndim != 1 or len(labels) != count or not np.issubdtype(labels.dtype, np.integer):
        raise UserError(f"{path}: {name} must be {count} integer class indices, "
                        f"got {labels.dtype} {list(labels.shape)}")
    if labels.min() < 0 or (classes is not None and labels.max() >= classes):
        raise UserError(f"{path}: {name} holds labels outside [0, {classes or 'classes'}): "
                        f"labels are class positions (in class_names when given)")
    return labels.astype(np.int64)


def load_npz_file(path: Path, config_path: str) -> Dataset:
    """x_train, y_train, x_test, y_test (and optional x_unlabeled, class_names) from one .npz."""
    if not path.is_file():
        raise UserError(f"dataset file {path} not found: set data.path in {config_path} to an .npz holding "
                        f"{', '.join(NPZ_REQUIRED)}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} is not a readable .npz without pickled objects ({exc})") from None
    missing = [name for name in NPZ_REQUIRED if name not in arrays]
    if missing:
        raise UserError(f"{path} lacks {', '.join(missing)}: the npz format needs {', '.join(NPZ_REQUIRED)} "
                        f"(x_unlabeled and class_names are optional)")
    names = tuple(str(name) for name in arrays["class_names"]) if "class_names" in arrays else None
    sets = {}
    for split in ("train", "test"):
        images = _npz_images(path, f"x_{split}", arrays[f"x_{split}"])
        labels = _npz_labels(path, f"y_{split}", arrays[f"y_{split}"], len(images), len(names) if names else None)
        sets[split] = in_memory(images, labels)
    unlabeled = None
    if "x_unlabeled" in arrays:
        images = _npz_images(path, "x_unlabeled", arrays["x_unlabeled"])
        unlabeled = in_memory(images, np.full(len(images), UNLABELED))
    if sets["test"].image_shape != sets["train"].image_shape or (
            unlabeled and unlabeled.image_shape != sets["train"].image_shape):
        raise UserError(f"{path}: x_test and x_unlabeled must have the image shape of x_train "
                        f"{list(sets['train'].image_shape)}")
    return Dataset(sets["train"], sets["test"], (path,), unlabeled=unlabeled, class_names=names)


def decoding_of(config: DataConfig) -> ImageDecoding:
    return ImageDecoding(tuple(config.image_size), 1 if config.color == "grayscale" else 3, config.resize)


def folder_dataset(config: DataConfig, class_names: tuple[str, ...], splits: dict[str, FolderSplit],
                   unlabeled: np.ndarray | None, unreadable: tuple[str, ...] = ()) -> Dataset:
    """A streamed Dataset from file lists (paths relative to data.path and data.unlabeled_path)."""
    decoding = decoding_of(config)

    def image_set(split: FolderSplit) -> ImageSet:
        files = np.asarray([str(Path(config.path, name)) for name in split.files], dtype=str)
        return ImageSet(split.labels, files=files, decoding=decoding)

    extra = None
    if unlabeled is not None:
        files = np.asarray([str(Path(config.unlabeled_path, name)) for name in unlabeled], dtype=str)
        extra = ImageSet(np.full(len(files), UNLABELED, dtype=np.int64), files=files, decoding=decoding)
    folders = [Path(config.path)] + ([Path(config.unlabeled_path)] if config.unlabeled_path else [])
    return Dataset(image_set(splits[TRAIN]), image_set(splits[TEST]), tuple(folders),
                   validation=image_set(splits[VALIDATION]) if VALIDATION in splits else None,
                   unlabeled=extra, class_names=class_names, unreadable=unreadable)


def load_folder(config: DataConfig, config_path: str) -> Dataset:
    """Scan an image folder (and data.unlabeled_path); nothing is decoded yet."""
    class_names, splits = scan_folder(Path(config.path), config_path)
    unlabeled, left_out = scan_unlabeled(Path(config.unlabeled_path), config_path) if config.unlabeled_path \
        else (None, ())
    unreadable = tuple(entry for split in splits.values() for entry in split.unreadable) + left_out
    return folder_dataset(config, class_names, splits, unlabeled, unreadable)


def load_dataset(config: DataConfig, config_path: str = "the config") -> Dataset:
    """Load the configured dataset, cut to train_limit / test_limit when those are set (array formats)."""
    folder = Path(config.path)
    if config.format == "folder":
        return load_folder(config, config_path)
    if config.format == "npz":
        dataset = load_npz_file(folder, config_path)
    elif not folder.is_dir():
        raise missing_dataset(folder, config_path)
    else:
        dataset = load_idx_dir(folder, config_path) if config.format == "idx" else load_cifar10_dir(folder, config_path)
    train_n = min(config.train_limit or len(dataset.train), len(dataset.train))
    test_n = min(config.test_limit or len(dataset.test), len(dataset.test))
    return dataclasses.replace(dataset, train=dataset.train.select(np.arange(train_n)),
                               test=dataset.test.select(np.arange(test_n)))


def split_indices(n: int, validation_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of the training set into (train, validation) indices."""
    if validation_size >= n:
        raise UserError(f"data.validation_size = {validation_size} leaves no training images "
                        f"(the training split has {n})")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[validation_size:]), np.sort(order[:validation_size])


def labeled_subset(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Positions of a class-stratified fraction of `labels` (at least one per class)."""
    rng = np.random.default_rng(seed)
    chosen = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        count = max(1, int(round(fraction * len(members))))
        chosen.append(rng.choice(members, size=count, replace=False))
    return np.sort(np.concatenate(chosen))

