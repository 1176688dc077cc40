"""Self-supervised objectives: the NT-Xent loss against hand-computed values, rotation labels, rotation pretraining."""
import math

import numpy as np
import pytest

from models import build_classifier, encoder_of
from pipeline.core.preprocessing import to_float
from pipeline.core.tf_env import keras, tf
from pipeline.training.augment_policy import PRESETS
from pipeline.training.config import DataConfig
from pipeline.training.datasets import load_dataset
from pipeline.training.fit import seed_everything
from pipeline.training.ssl.rotation import ROTATIONS, make_train_step, rotate_batch, rotation_head
from pipeline.training.ssl.simclr import nt_xent_loss


@pytest.fixture(scope="module")
def images():
    """64 real Fashion-MNIST training images, uint8 NHWC."""
    return load_dataset(DataConfig(train_limit=64, test_limit=1)).train.pixels


def reference_nt_xent(z1: np.ndarray, z2: np.ndarray, temperature: float) -> float:
    """NT-Xent written out row by row (Chen et al. 2020, eq. 1): view i's positive is the other view of its image."""
    z = np.concatenate([z1, z2]).astype(np.float64)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    n = len(z1)
    losses = []
    for i in range(2 * n):
        positive = (i + n) % (2 * n)
        others = [math.exp(z[i] @ z[k] / temperature) for k in range(2 * n) if k != i]
        losses.append(-math.log(math.exp(z[i] @ z[positive] / temperature) / sum(others)))
    return float(np.mean(losses))


def test_nt_xent_of_two_identical_orthogonal_pairs_is_log_1_plus_2_e_minus_2():
    # Each view has similarity 1 with its positive and 0 with the two others: loss = -log(e^2 / (e^2 + 2)) at T = 0.5.
    views = np.eye(2, dtype=np.float32)
    assert float(nt_xent_loss(views, views, 0.5)) == pytest.approx(math.log(1 + 2 * math.exp(-2)), rel=1e-6)


def test_nt_xent_matches_the_written_out_formula_and_normalizes_lengths():
    rng = np.random.default_rng(0)
    z1, z2 = rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(4, 3)).astype(np.float32)
    expected = reference_nt_xent(z1, z2, 0.2)
    assert float(nt_xent_loss(z1, z2, 0.2)) == pytest.approx(expected, rel=1e-5)
    assert float(nt_xent_loss(3 * z1, 0.5 * z2, 0.2)) == pytest.approx(expected, rel=1e-5)  # cosine similarity
    assert float(nt_xent_loss(z2, z1, 0.2)) == pytest.approx(expected, rel=1e-5)  # symmetric in the views
    assert float(nt_xent_loss(z1, z1 + 0.01, 0.2)) < expected  # views that agree cost less


def test_rotation_labels_say_how_often_each_image_was_turned(images):
    tf.random.set_seed(5)
    rotated, labels = rotate_batch(tf.constant(to_float(images)))
    rotated, labels = rotated.numpy(), labels.numpy()
    assert set(labels.tolist()) == set(range(ROTATIONS))  # 64 draws: every rotation occurs
    for image, turned, k in zip(to_float(images), rotated, labels, strict=True):
        np.testing.assert_array_equal(turned, np.rot90(image, k=k))  # counter-clockwise, as np.rot90


def test_rotation_pretraining_learns_to_tell_the_rotation(images):
    """30 steps on 64 clothing images (fresh rotations each step): the loss falls below chance, log 4 = 1.39."""
    seed_everything(1)
    encoder = encoder_of(build_classifier("resnet8", (28, 28, 1), 10, width=0.25))
    step = make_train_step(encoder, rotation_head(encoder.output_shape[-1]), keras.optimizers.Adam(1e-2),
                           PRESETS["natural"].training)
    batch = tf.constant(to_float(images))
    losses = [float(step(batch)) for _ in range(30)]
    assert np.mean(losses[-5:]) < min(math.log(ROTATIONS) - 0.08, np.mean(losses[:3]) - 0.1), losses
