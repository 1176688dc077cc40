"""Training against a teacher one view at a time: the teacher's logits computed once per view belong
to exactly the augmented images the student trains on, epoch after epoch, in any shuffled order."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.core.tf_env import keras, tf
from pipeline.training import teacher_training
from pipeline.training.augment_policy import NONE, PRESETS, AugmentPolicy
from pipeline.training.image_set import UNLABELED, ImageDecoding, ImageSet
from pipeline.training.teacher_training import _view_dataset, teacher_logits, train_with_teacher, view_draws
from tests.conftest import micro_config

COUNT = 48
NATURAL = PRESETS["natural"].training
CLASSES = 3


def _teacher() -> keras.Model:
    keras.utils.set_random_seed(5)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(CLASSES)(keras.layers.Flatten()(x)))


@pytest.fixture(scope="module")
def images() -> ImageSet:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, CLASSES, COUNT)
    labels[::3] = UNLABELED
    return ImageSet(labels, arrays=rng.integers(0, 256, (COUNT, 8, 8, 1), dtype=np.uint8))


def _check_view(images: ImageSet, policy: AugmentPolicy) -> np.ndarray:
    """Every shuffled batch of a view carries the teacher's logits on its own images; the images in order."""
    teacher, draws = _teacher(), view_draws(len(images), seed=1, view=0)
    logits = teacher_logits(teacher, images, draws, policy)
    assert logits.shape == (COUNT, CLASSES) and logits.dtype == np.float32
    seen = []
    dataset = _view_dataset(images, draws, logits, 16, seed=3, policy=policy)
    for _ in range(2):  # two epochs of one view: reshuffled, the same augmented images
        for x, _label, labelled, carried in dataset:
            np.testing.assert_allclose(teacher(x).numpy(), carried.numpy(), rtol=1e-5, atol=1e-5)
            seen.append((carried.numpy(), labelled.numpy()))
    rows = np.concatenate([logit_rows for logit_rows, _ in seen])
    flags = np.concatenate([flag_rows for _, flag_rows in seen])
    assert len(rows) == 2 * COUNT
    assert sorted(map(tuple, rows[:COUNT])) == sorted(map(tuple, logits))  # every image once per epoch
    assert flags.sum() == 2 * np.sum(images.labels != UNLABELED)
    return logits


def test_the_teacher_sees_exactly_the_augmented_images_the_student_trains_on(images):
    augmented = _check_view(images, NATURAL)
    plain = teacher_logits(_teacher(), images, view_draws(len(images), seed=1, view=0), NONE)
    assert np.abs(augmented - plain).max() > 1e-3  # the view is augmented
    other_view = teacher_logits(_teacher(), images, view_draws(len(images), seed=1, view=1), NATURAL)
    assert np.abs(augmented - other_view).max() > 1e-3  # and the next view is another one


def test_a_view_that_rotates_and_shifts_still_matches_its_teacher_logits(images):
    """digits-text adds rotations (draws of their own): the teacher still sees the student's pixels."""
    digits = _check_view(images, PRESETS["digits-text"].training)
    assert np.abs(digits - _check_view(images, NATURAL)).max() > 1e-3  # another augmentation than natural's


def test_a_view_of_images_streamed_from_files_keeps_each_image_with_its_logits(images, tmp_path):
    paths = []
    for position, image in enumerate(images.pixels):
        paths.append(str(tmp_path / f"{position}.png"))
        tf.io.write_file(paths[-1], tf.io.encode_png(image))
    streamed = ImageSet(images.labels, files=np.array(paths), decoding=ImageDecoding((8, 8), 1, "bilinear"))
    in_memory = _check_view(images, NATURAL)
    np.testing.assert_allclose(_check_view(streamed, NATURAL), in_memory, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("epochs, view_epochs, views", [(5, 2, 3), (4, 4, 1), (3, 1, 3)])
def test_the_teacher_runs_once_per_view_and_the_student_trains_every_epoch(
        images, tmp_path, monkeypatch, epochs, view_epochs, views):
    passes = []

    def counted(*args, **kwargs):
        passes.append(1)
        return teacher_logits(*args, **kwargs)

    monkeypatch.setattr(teacher_training, "teacher_logits", counted)
    config = micro_config(tmp_path, distill={"view_epochs": view_epochs})
    steps = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: passes.append(0))
    throughput = train_with_teacher(_teacher(), _teacher(), images, config, epochs=epochs, batch_size=16,
                                    learning_rate=1e-3, policy=NATURAL, description="test", callbacks=[steps])
    assert passes.count(1) == views
    assert passes.count(0) == epochs * -(-COUNT // 16)  # every epoch's batches, across the views
    assert throughput > 0


def test_a_teacher_ending_in_a_softmax_gives_logits_with_the_same_soft_targets(images):
    """A user's model may end in a softmax; log p are logits whose softmax is p again."""
    logits_teacher = _teacher()
    softmax_teacher = keras.Model(logits_teacher.input, keras.layers.Softmax()(logits_teacher.output))
    draws = view_draws(len(images), seed=1, view=0)
    from_softmax = teacher_logits(softmax_teacher, images, draws, NATURAL)
    expected = tf.nn.softmax(teacher_logits(logits_teacher, images, draws, NATURAL)).numpy()
    np.testing.assert_allclose(tf.nn.softmax(from_softmax).numpy(), expected, rtol=1e-4, atol=1e-6)
