"""Datasets as uint8 NHWC arrays: IDX files (MNIST layout) or CIFAR-10 python pickles.

The training split is divided into a training part and a validation part with a seeded
permutation; the test split is only ever used for final evaluation.
"""
from __future__ import annotations

import gzip
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import UserError
from pipeline.training.config import DataConfig

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
CIFAR_TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR_TEST_BATCH = "test_batch"
IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.int16, 0x0C: np.int32, 0x0D: np.float32, 0x0E: np.float64}


@dataclass(frozen=True)
class Dataset:
    train_images: np.ndarray  # uint8 [N, H, W, C]
    train_labels: np.ndarray  # int64 [N]
    test_images: np.ndarray
    test_labels: np.ndarray
    source_files: tuple[Path, ...]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])

    @property
    def num_classes(self) -> int:
        return int(max(self.train_labels.max(), self.test_labels.max())) + 1


def _missing(path: Path, config_path: str) -> UserError:
    return UserError(
        f"dataset file not found: {path}; install the default dataset with "
        f"`sudo apt-get install dataset-fashion-mnist` or point data.path in {config_path} at a folder that holds it")


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


def _find_idx(folder: Path, stem: str, config_path: str) -> Path:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    raise _missing(folder / f"{stem}.gz", config_path)


def idx_source_files(folder: Path, config_path: str) -> tuple[Path, ...]:
    """The four IDX files, gzipped or not, in IDX_FILES order."""
    return tuple(_find_idx(folder, stem, config_path) for stem in IDX_FILES.values())


def load_idx_dir(folder: Path, config_path: str) -> Dataset:
    paths = dict(zip(IDX_FILES, idx_source_files(folder, config_path), strict=True))
    arrays = {key: read_idx(path) for key, path in paths.items()}
    images = {key: arrays[key][..., None] if arrays[key].ndim == 3 else arrays[key]
              for key in ("train_images", "test_images")}
    return Dataset(
        train_images=images["train_images"].astype(np.uint8),
        train_labels=arrays["train_labels"].astype(np.int64),
        test_images=images["test_images"].astype(np.uint8),
        test_labels=arrays["test_labels"].astype(np.int64),
        source_files=tuple(paths.values()),
    )


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as handle:
        batch = pickle.load(handle, encoding="bytes")
    images = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, np.asarray(batch[b"labels"], dtype=np.int64)


def cifar10_source_files(folder: Path, config_path: str) -> tuple[Path, ...]:
    """The five training batches, then the test batch."""
    paths = tuple(folder / name for name in CIFAR_TRAIN_BATCHES + [CIFAR_TEST_BATCH])
    for path in paths:
        if not path.is_file():
            raise _missing(path, config_path)
    return paths


def load_cifar10_dir(folder: Path, config_path: str) -> Dataset:
    paths = cifar10_source_files(folder, config_path)
    train = [_read_cifar_batch(path) for path in paths[:-1]]
    test_images, test_labels = _read_cifar_batch(paths[-1])
    return Dataset(
        train_images=np.concatenate([images for images, _ in train]),
        train_labels=np.concatenate([labels for _, labels in train]),
        test_images=test_images,
        test_labels=test_labels,
        source_files=paths,
    )


def load_dataset(config: DataConfig, config_path: str = "the config") -> Dataset:
    """Load the configured dataset, cut to train_limit / test_limit when those are set."""
    folder = Path(config.path)
    if not folder.is_dir():
        raise _missing(folder, config_path)
    dataset = load_idx_dir(folder, config_path) if config.format == "idx" else load_cifar10_dir(folder, config_path)
    train_n = config.train_limit or len(dataset.train_images)
    test_n = config.test_limit or len(dataset.test_images)
    return Dataset(
        dataset.train_images[:train_n], dataset.train_labels[:train_n],
        dataset.test_images[:test_n], dataset.test_labels[:test_n], dataset.source_files,
    )


# Per data.format, the files its loader reads, listed without decoding them: what the data stage's
# cache key hashes (by content, in about 0.1 s for Fashion-MNIST). Every format needs one.
SOURCE_LISTERS = {"idx": idx_source_files, "cifar10": cifar10_source_files}


def source_files(config: DataConfig, config_path: str = "the config") -> tuple[Path, ...]:
    """The files under data.path that the configured dataset is read from."""
    folder = Path(config.path)
    if not folder.is_dir():
        raise _missing(folder, config_path)
    return SOURCE_LISTERS[config.format](folder, config_path)


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

