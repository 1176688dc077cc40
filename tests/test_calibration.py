"""The committed calibration file: training split only, stratified, and reproducible byte for byte."""
import json

import numpy as np
import pytest

from pipeline.core.artifacts import sha256_file
from pipeline.errors import UserError
from pipeline.training.calibration_set import load_calibration, write_calibration
from pipeline.training.config import load_config
from pipeline.training.datasets import split_indices
from tests.conftest import REPO

COMMITTED = REPO / "calibration_data" / "fashion_mnist_train_500.npz"


def test_regenerating_is_byte_identical(tmp_path):
    import dataclasses

    config = load_config(REPO / "configs" / "demo.toml")
    target = tmp_path / "calibration.npz"
    config = dataclasses.replace(config, convert=dataclasses.replace(config.convert, calibration=str(target)))
    write_calibration(config)
    assert sha256_file(target) == sha256_file(COMMITTED)
    assert json.loads(target.with_suffix(".json").read_text()) == \
        json.loads(COMMITTED.with_suffix(".json").read_text())


def test_samples_come_from_the_training_split_only():
    config = load_config(REPO / "configs" / "demo.toml")
    _, val_idx = split_indices(60000, config.data.validation_size, config.run.seed)
    with np.load(COMMITTED) as data:
        assert not set(data["indices"].tolist()) & set(val_idx.tolist())
        assert (np.bincount(data["labels"], minlength=10) == 50).all()


def test_shape_mismatch_names_the_fix():
    with pytest.raises(UserError, match="regenerate it with"):
        load_calibration(COMMITTED, (32, 32, 3))
    with pytest.raises(UserError, match="make calibration"):
        load_calibration(REPO / "calibration_data" / "missing.npz", (28, 28, 1))
