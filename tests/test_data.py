"""Dataset loading: IDX (gz or plain), CIFAR-10 pickles, splits and label subsets."""
import gzip
import pickle
import struct

import numpy as np
import pytest

from pipeline.core.preprocessing import to_float
from pipeline.errors import UserError
from pipeline.training.config import DATA_FORMATS, DataConfig
from pipeline.training.datasets import (
    SOURCE_LISTERS,
    labeled_subset,
    load_dataset,
    read_idx,
    source_files,
    split_indices,
)

FASHION = "/usr/share/datasets/fashion-mnist"


def write_idx(path, array: np.ndarray, compress: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if compress else payload)


def make_idx_dir(folder, compress=True, n_train=30, n_test=10):
    rng = np.random.default_rng(0)
    suffix = ".gz" if compress else ""
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 8, 8)),
        "train-labels-idx1-ubyte": np.arange(n_train) % 3,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 8, 8)),
        "t10k-labels-idx1-ubyte": np.arange(n_test) % 3,
    }
    for name, array in arrays.items():
        write_idx(folder / f"{name}{suffix}", array, compress)
    return arrays


@pytest.mark.parametrize("compress", [True, False])
def test_idx_folder_in_mnist_layout(tmp_path, compress):
    arrays = make_idx_dir(tmp_path, compress)
    data = load_dataset(DataConfig(path=str(tmp_path)))
    assert data.train.arrays.shape == (30, 8, 8, 1) and data.train.arrays.dtype == np.uint8
    np.testing.assert_array_equal(data.train.arrays[..., 0], arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(data.test.labels, arrays["t10k-labels-idx1-ubyte"])
    assert data.num_classes == 3


def test_cifar10_pickles(tmp_path):
    rng = np.random.default_rng(1)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batches[name] = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": [0, 1, 2, 9]}
        with open(tmp_path / name, "wb") as handle:
            pickle.dump(batches[name], handle)
    data = load_dataset(DataConfig(format="cifar10", path=str(tmp_path)))
    assert data.train.arrays.shape == (20, 32, 32, 3) and data.test.arrays.shape == (4, 32, 32, 3)
    # channel-first rows become NHWC: the red plane is the first 1024 values
    np.testing.assert_array_equal(data.test.arrays[0, :, :, 0].ravel(), batches["test_batch"][b"data"][0, :1024])
    assert data.num_classes == 10


def write_cifar10_dir(folder) -> None:
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as handle:
            pickle.dump({b"data": np.zeros((1, 3072), dtype=np.uint8), b"labels": [0]}, handle)


@pytest.mark.parametrize("data_format, compress", [("idx", True), ("idx", False), ("cifar10", False)])
def test_source_files_are_the_files_the_loader_reads(tmp_path, data_format, compress):
    """What the data stage's cache key hashes, listed without decoding anything."""
    if data_format == "idx":
        make_idx_dir(tmp_path, compress)
    else:
        write_cifar10_dir(tmp_path)
    config = DataConfig(format=data_format, path=str(tmp_path))
    listed = source_files(config)
    assert listed == load_dataset(config).source_files
    assert len(listed) == (4 if data_format == "idx" else 6) and all(path.parent == tmp_path for path in listed)
    assert all(path.name.endswith(".gz") == compress for path in listed)
    with pytest.raises(UserError, match="dataset file not found"):
        source_files(DataConfig(format=data_format, path=str(tmp_path / "nowhere")))


def test_every_data_format_lists_its_source_files():
    assert set(SOURCE_LISTERS) == set(DATA_FORMATS)  # a new format's files must reach the data stage's cache key


def test_real_fashion_mnist_package():
    data = load_dataset(DataConfig(path=FASHION, train_limit=100, test_limit=50))
    assert data.train.arrays.shape == (100, 28, 28, 1) and data.test.arrays.shape == (50, 28, 28, 1)
    assert set(np.unique(data.train.labels)) <= set(range(10))


def test_missing_dataset_names_path_and_install_command(tmp_path):
    with pytest.raises(UserError) as error:
        load_dataset(DataConfig(path=str(tmp_path / "nowhere")), "configs/x.toml")
    message = str(error.value)
    assert str(tmp_path / "nowhere") in message
    assert "apt-get install dataset-fashion-mnist" in message and "configs/x.toml" in message


def test_missing_file_in_folder_is_named(tmp_path):
    make_idx_dir(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(UserError, match="t10k-labels-idx1-ubyte"):
        load_dataset(DataConfig(path=str(tmp_path)))


def test_truncated_and_foreign_files_are_refused(tmp_path):
    (tmp_path / "junk").write_bytes(b"\x89PNG....")
    with pytest.raises(UserError, match="not an IDX file"):
        read_idx(tmp_path / "junk")
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"abc")
    with pytest.raises(UserError, match="truncated"):
        read_idx(tmp_path / "short")


def test_split_is_disjoint_seeded_and_complete():
    train, val = split_indices(100, 20, seed=3)
    assert len(val) == 20 and len(train) == 80 and not set(train) & set(val)
    assert sorted(np.concatenate([train, val])) == list(range(100))
    np.testing.assert_array_equal(split_indices(100, 20, seed=3)[1], val)
    assert not np.array_equal(split_indices(100, 20, seed=4)[1], val)
    with pytest.raises(UserError, match="validation_size"):
        split_indices(10, 10, seed=0)


@pytest.mark.parametrize("fraction, per_class", [(0.01, 1), (0.1, 10), (1.0, 100)])
def test_labeled_subset_is_stratified(fraction, per_class):
    labels = np.repeat(np.arange(10), 100)
    subset = labeled_subset(labels, fraction, seed=0)
    counts = np.bincount(labels[subset], minlength=10)
    assert (counts == per_class).all()


def test_preprocessing_maps_pixels_to_unit_range():
    values = to_float(np.array([0, 128, 255], dtype=np.uint8))
    np.testing.assert_allclose(values, [0.0, 128 / 255, 1.0])
    assert values.dtype == np.float32
