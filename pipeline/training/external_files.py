"""The files stages read from outside the run folder: each dataset format's source files, listed
without decoding anything, and the calibration file. What the runner hashes into the stages' cache
keys; kept free of TensorFlow so that a cache check stays fast."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pipeline.errors import UserError
from pipeline.training.config import DataConfig
from pipeline.training.image_folder import scan_folder, scan_unlabeled

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
CIFAR_TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR_TEST_BATCH = "test_batch"
NPZ_REQUIRED = ("x_train", "y_train", "x_test", "y_test")


def missing_dataset(path: Path, config_path: str) -> UserError:
    return UserError(
        f"dataset file not found: {path}; install the default dataset with "
        f"`sudo apt-get install dataset-fashion-mnist` or point data.path in {config_path} at a folder that holds it")


def find_idx(folder: Path, stem: str, config_path: str) -> Path:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    raise missing_dataset(folder / f"{stem}.gz", config_path)


def idx_source_files(folder: Path, config_path: str) -> tuple[Path, ...]:
    """The four IDX files, gzipped or not, in IDX_FILES order."""
    return tuple(find_idx(folder, stem, config_path) for stem in IDX_FILES.values())


def cifar10_source_files(folder: Path, config_path: str) -> tuple[Path, ...]:
    """The five training batches, then the test batch."""
    paths = tuple(folder / name for name in CIFAR_TRAIN_BATCHES + [CIFAR_TEST_BATCH])
    for path in paths:
        if not path.is_file():
            raise missing_dataset(path, config_path)
    return paths


def _npz_source_files(config: DataConfig, config_path: str) -> tuple[Path, ...]:
    path = Path(config.path)
    if not path.is_file():
        raise UserError(f"dataset file {path} not found: set data.path in {config_path} to an .npz holding "
                        f"{', '.join(NPZ_REQUIRED)}")
    return (path,)


def _folder_source_files(config: DataConfig, config_path: str) -> tuple[Path, ...]:
    """Every image file of the folder's splits, then of data.unlabeled_path."""
    root = Path(config.path)
    _, splits = scan_folder(root, config_path)
    files = [root / name for split in splits.values() for name in split.files]
    if config.unlabeled_path:
        unlabeled = Path(config.unlabeled_path)
        files += [unlabeled / name for name in scan_unlabeled(unlabeled, config_path)[0]]
    return tuple(files)


def _in_folder(lister: Callable[[Path, str], tuple[Path, ...]]) -> Callable[[DataConfig, str], tuple[Path, ...]]:
    def listed(config: DataConfig, config_path: str) -> tuple[Path, ...]:
        folder = Path(config.path)
        if not folder.is_dir():
            raise missing_dataset(folder, config_path)
        return lister(folder, config_path)
    return listed


# Per data.format, the files its loader reads, listed without decoding them: what the data stage's
# cache key hashes (by content, in about 0.1 s for Fashion-MNIST). Every format needs one.
SOURCE_LISTERS: dict[str, Callable[[DataConfig, str], tuple[Path, ...]]] = {
    "idx": _in_folder(idx_source_files),
    "cifar10": _in_folder(cifar10_source_files),
    "npz": _npz_source_files,
    "folder": _folder_source_files,
}


def source_files(config: DataConfig, config_path: str = "the config") -> tuple[Path, ...]:
    """The files the configured dataset is read from (for a folder: every image file)."""
    return SOURCE_LISTERS[config.format](config, config_path)


def existing_calibration(path: Path) -> Path:
    """`path`, refused with the way to create it when it does not exist."""
    if not path.is_file():
        raise UserError(f"calibration file {path} not found; create it with `make calibration` "
                        f"(or set convert.calibration in the config)")
    return path
