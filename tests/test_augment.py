"""Augmentations: shape, dtype and range kept, images changed, independent views, seeded; the natural
preset repeats the augmentation made before policies existed, bit for bit."""
from dataclasses import dataclass

import numpy as np
import pytest

from pipeline.core.preprocessing import to_float
from pipeline.core.tf_env import keras, tf
from pipeline.training.augment import DRAW_GROUPS, DRAWS, augment, augment_with
from pipeline.training.augment_policy import PRESETS, AugmentPolicy
from pipeline.training.config import DataConfig
from pipeline.training.datasets import load_dataset
from pipeline.training.fit import seed_everything
from pipeline.training.teacher_training import view_draws

NATURAL = PRESETS["natural"]


@pytest.fixture(scope="module")
def batch():
    """16 real Fashion-MNIST images as the float [0, 1] batch augment() receives."""
    return tf.constant(to_float(load_dataset(DataConfig(train_limit=16, test_limit=1)).train.pixels))


@pytest.mark.parametrize("policy", [NATURAL.views, NATURAL.training, PRESETS["digits-text"].views,
                                    PRESETS["digits-text"].training], ids=["views", "training", "dt-views", "dt"])
def test_augment_keeps_shape_dtype_and_range_and_changes_every_image(batch, policy):
    out = augment(batch, policy).numpy()
    assert out.shape == (16, 28, 28, 1) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    changed = np.abs(out - batch.numpy()).mean(axis=(1, 2, 3))
    assert (changed > 0.01).all(), changed


def test_strong_augmentation_changes_more_than_the_light_one(batch):
    seed_everything(0)
    strong = np.abs(augment(batch, NATURAL.views).numpy() - batch.numpy()).mean()
    light = np.abs(augment(batch, NATURAL.training).numpy() - batch.numpy()).mean()
    assert strong > light


def test_two_views_differ_and_a_seed_repeats_them(batch):
    """SimCLR needs two independent views per image; seed_everything (what every stage calls) repeats a run."""
    seed_everything(11)
    first, second = augment(batch, NATURAL.views).numpy(), augment(batch, NATURAL.views).numpy()
    assert (np.abs(first - second).mean(axis=(1, 2, 3)) > 0.01).all()
    seed_everything(11)
    np.testing.assert_array_equal(augment(batch, NATURAL.views).numpy(), first)
    np.testing.assert_array_equal(augment(batch, NATURAL.views).numpy(), second)
    seed_everything(12)
    assert not np.array_equal(augment(batch, NATURAL.views).numpy(), first)


# The augmentation as it was before policies (commit 3aa31ff), kept verbatim as the reference the natural
# preset must repeat: seeded runs of the demo draw the same views as before.
@dataclass(frozen=True)
class _Strength:
    min_crop_area: float
    flip: bool
    brightness: float
    contrast: float
    noise_std: float


_SSL = _Strength(min_crop_area=0.3, flip=True, brightness=0.4, contrast=0.5, noise_std=0.05)
_FINETUNE = _Strength(min_crop_area=0.75, flip=True, brightness=0.1, contrast=0.1, noise_std=0.0)
_OLD_DRAWS = ("area", "log_ratio", "top", "left", "flip", "contrast", "brightness")


def _old_transformed(images, strength, draw):
    batch = tf.shape(images)[0]
    area = draw("area", [batch], strength.min_crop_area, 1.0)
    log_ratio = draw("log_ratio", [batch], tf.math.log(3 / 4), tf.math.log(4 / 3))
    ratio = tf.exp(log_ratio)
    height = tf.minimum(tf.sqrt(area / ratio), 1.0)
    width = tf.minimum(tf.sqrt(area * ratio), 1.0)
    top = draw("top", [batch], 0.0, 1.0) * (1.0 - height)
    left = draw("left", [batch], 0.0, 1.0) * (1.0 - width)
    boxes = tf.stack([top, left, top + height, left + width], axis=1)
    size = tf.shape(images)[1:3]
    x = tf.image.crop_and_resize(images, boxes, tf.range(batch), size)
    per_image = [batch, 1, 1, 1]
    if strength.flip:
        flip = draw("flip", per_image, 0.0, 1.0) < 0.5
        x = tf.where(flip, tf.reverse(x, axis=[2]), x)
    if strength.contrast:
        mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
        x = (x - mean) * draw("contrast", per_image, 1 - strength.contrast, 1 + strength.contrast) + mean
    if strength.brightness:
        x = x + draw("brightness", per_image, -strength.brightness, strength.brightness)
    return x


def _old_augment_with(images, draws, strength):
    columns = dict(zip(_OLD_DRAWS, tf.unstack(tf.cast(draws, tf.float32), axis=1), strict=True))

    def stored(name, shape, low, high):
        return tf.reshape(low + columns[name] * (high - low), shape)

    return tf.clip_by_value(_old_transformed(images, strength, stored), 0.0, 1.0)


def _old_augment(images, strength):
    batch = tf.shape(images)[0]
    x = _old_transformed(images, strength, lambda _name, shape, low, high: tf.random.uniform(shape, low, high))
    if strength.noise_std:
        noisy = tf.random.uniform([batch, 1, 1, 1], 0.0, 1.0) < 0.5
        x = tf.where(noisy, x + tf.random.normal(tf.shape(x), stddev=strength.noise_std), x)
    return tf.clip_by_value(x, 0.0, 1.0)


def _seeded_map(function, images, seed: int) -> np.ndarray:
    """`function` over batches of 8 in a tf.data map after keras.utils.set_random_seed, as training runs it."""
    keras.utils.set_random_seed(seed)
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(8).map(function)
    return np.concatenate([x.numpy() for x in dataset])


def _seeded_views(function, images, seed: int) -> list[np.ndarray]:
    """Two views made in one tf.function after set_random_seed, as SimCLR's training step makes them."""
    keras.utils.set_random_seed(seed)
    return [view.numpy() for view in tf.function(lambda x: (function(x), function(x)))(images)]


@pytest.mark.parametrize("level, old", [("training", _FINETUNE), ("views", _SSL)])
@pytest.mark.parametrize("seed", [1234, 7])
def test_the_natural_preset_repeats_the_old_augmentation_bit_for_bit(batch, level, old, seed):
    policy = getattr(NATURAL, level)
    expected = _seeded_map(lambda x: _old_augment(x, old), batch, seed)
    np.testing.assert_array_equal(_seeded_map(lambda x: augment(x, policy), batch, seed), expected)
    assert np.abs(expected - batch.numpy()).mean() > 0.01  # the reference is augmented at all
    old_views = _seeded_views(lambda x: _old_augment(x, old), batch, seed)
    for view, old_view in zip(_seeded_views(lambda x: augment(x, policy), batch, seed), old_views, strict=True):
        np.testing.assert_array_equal(view, old_view)


def test_the_natural_preset_rebuilds_the_old_stored_views_bit_for_bit(batch):
    """Training against a teacher stores its draws: the knobs augmentation always had keep their values."""
    draws = view_draws(len(batch), seed=1234, view=3)
    assert draws.shape == (len(batch), len(DRAWS))
    old_draws = np.random.default_rng([1234, 3]).random((len(batch), len(_OLD_DRAWS)), dtype=np.float32)
    np.testing.assert_array_equal(draws[:, :len(DRAW_GROUPS[0])], old_draws)
    np.testing.assert_array_equal(augment_with(batch, draws, NATURAL.training).numpy(),
                                  _old_augment_with(batch, old_draws, _FINETUNE).numpy())


def _random_ops(policy: AugmentPolicy) -> int:
    graph = tf.function(lambda x: augment(x, policy)).get_concrete_function(tf.TensorSpec([None, 8, 8, 1])).graph
    return sum(op.type in ("RandomUniform", "RandomStandardNormal") for op in graph.get_operations())


def test_a_knob_that_is_off_makes_no_random_op():
    """An extra random op would shift every seeded draw after it."""
    assert _random_ops(AugmentPolicy()) == 0
    assert _random_ops(NATURAL.training) == 7  # area, aspect, top, left, flip, contrast, brightness
    assert _random_ops(NATURAL.views) == 9  # and whether to add noise, and the noise
    assert _random_ops(AugmentPolicy(rotation=5.0)) == 1
    assert _random_ops(AugmentPolicy(translation=0.1, flip="both")) == 4
