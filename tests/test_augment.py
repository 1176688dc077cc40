"""Augmentations: shape, dtype and range kept, images changed, independent views, seeded."""
import numpy as np
import pytest

from pipeline.core.preprocessing import to_float
from pipeline.core.tf_env import tf
from pipeline.training.augment import FINETUNE_STRENGTH, SSL_STRENGTH, augment
from pipeline.training.config import DataConfig
from pipeline.training.datasets import load_dataset
from pipeline.training.fit import seed_everything


@pytest.fixture(scope="module")
def batch():
    """16 real Fashion-MNIST images as the float [0, 1] batch augment() receives."""
    return tf.constant(to_float(load_dataset(DataConfig(train_limit=16, test_limit=1)).train.pixels))


@pytest.mark.parametrize("strength", [SSL_STRENGTH, FINETUNE_STRENGTH], ids=["ssl", "finetune"])
def test_augment_keeps_shape_dtype_and_range_and_changes_every_image(batch, strength):
    out = augment(batch, strength).numpy()
    assert out.shape == (16, 28, 28, 1) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    changed = np.abs(out - batch.numpy()).mean(axis=(1, 2, 3))
    assert (changed > 0.01).all(), changed


def test_strong_augmentation_changes_more_than_the_light_one(batch):
    seed_everything(0)
    strong = np.abs(augment(batch, SSL_STRENGTH).numpy() - batch.numpy()).mean()
    light = np.abs(augment(batch, FINETUNE_STRENGTH).numpy() - batch.numpy()).mean()
    assert strong > light


def test_two_views_differ_and_a_seed_repeats_them(batch):
    """SimCLR needs two independent views per image; seed_everything (what every stage calls) repeats a run."""
    seed_everything(11)
    first, second = augment(batch, SSL_STRENGTH).numpy(), augment(batch, SSL_STRENGTH).numpy()
    assert (np.abs(first - second).mean(axis=(1, 2, 3)) > 0.01).all()
    seed_everything(11)
    np.testing.assert_array_equal(augment(batch, SSL_STRENGTH).numpy(), first)
    np.testing.assert_array_equal(augment(batch, SSL_STRENGTH).numpy(), second)
    seed_everything(12)
    assert not np.array_equal(augment(batch, SSL_STRENGTH).numpy(), first)
