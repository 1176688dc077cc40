"""Distillation loss against a hand computation; a distilled student learns from soft labels alone."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import UserError


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_loss_equals_the_hand_computed_value():
    from pipeline.training.distillation import distillation_loss

    student = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]], dtype=np.float32)
    teacher = np.array([[3.0, 0.0, -2.0], [-1.0, 2.0, 0.0]], dtype=np.float32)
    labels, labeled = np.array([0, 2]), np.array([1.0, 0.0], dtype=np.float32)  # the second image has no label
    temperature, alpha = 4.0, 0.3
    p_teacher, p_student = _softmax(teacher / temperature), _softmax(student / temperature)
    kl = (p_teacher * (np.log(p_teacher) - np.log(p_student))).sum(axis=1)
    hard = -np.log(_softmax(student)[0, 0])
    expected = ((alpha * hard + (1 - alpha) * temperature ** 2 * kl[0]) + temperature ** 2 * kl[1]) / 2
    got = float(distillation_loss(labels, labeled, student, teacher, temperature, alpha))
    assert got == pytest.approx(expected, rel=1e-5)
    # a student equal to the teacher has no soft loss: only alpha * CE remains
    same = float(distillation_loss(labels, np.ones(2, np.float32), teacher, teacher, temperature, alpha))
    ce = -np.log(_softmax(teacher)[[0, 1], [0, 2]])
    assert same == pytest.approx(alpha * ce.mean(), rel=1e-5)


@pytest.mark.parametrize("temperature, alpha, message", [(0.0, 0.5, "distill.temperature"),
                                                         (4.0, 1.5, "distill.alpha")])
def test_bad_settings_get_one_line(temperature, alpha, message):
    from pipeline.training.distillation import check_settings

    with pytest.raises(UserError, match=message):
        check_settings(temperature, alpha)


def test_student_learns_the_teacher_from_unlabeled_images():
    from pipeline.core.tf_env import keras, tf
    from pipeline.training.distillation import Distiller

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = rng.normal(size=(512, 6)).astype(np.float32)
    teacher = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])
    teacher.set_weights([rng.normal(size=(6, 4)).astype(np.float32) * 2, np.zeros(4, np.float32)])
    student = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])

    def agreement():
        return np.mean(student.predict(images, verbose=0).argmax(1) == teacher.predict(images, verbose=0).argmax(1))

    before = agreement()
    distiller = Distiller(student, temperature=2.0, alpha=0.5)
    distiller.compile(optimizer=keras.optimizers.Adam(0.05))
    no_labels = tf.data.Dataset.from_tensor_slices((images, np.zeros(512, np.int64), np.zeros(512, np.float32),
                                                    teacher.predict(images, verbose=0)))
    distiller.fit(no_labels.batch(64), epochs=30, verbose=0)
    assert before < 0.6 and agreement() > 0.9  # 4 classes: a random student agrees about a quarter of the time


_TWO_REPLICA_STEP = '''
import numpy as np
from pipeline.core.tf_env import keras, tf
tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                           [tf.config.LogicalDeviceConfiguration()] * 2)
from pipeline.training.distillation import Distiller

def one_step(strategy):
    """The student's kernel change after one SGD step on one batch of 8 (half of it unlabeled)."""
    keras.utils.set_random_seed(0)
    with strategy.scope():
        student = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])
        distiller = Distiller(student, 4.0, 0.5)
        distiller.compile(optimizer=keras.optimizers.SGD(0.5))
    rng = np.random.default_rng(1)
    batch = (rng.normal(size=(8, 6)).astype(np.float32), rng.integers(0, 4, 8), np.array([1, 0] * 4, np.float32),
             rng.normal(size=(8, 4)).astype(np.float32))
    before = student.get_weights()[0].copy()
    distiller.fit(tf.data.Dataset.from_tensor_slices(batch).batch(8), epochs=1, verbose=0)
    return student.get_weights()[0] - before

mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert mirrored.num_replicas_in_sync == 2
alone, split = one_step(tf.distribute.get_strategy()), one_step(mirrored)
print(float(np.abs(alone).max()), float(np.abs(split - alone).max()))
'''


def test_distiller_takes_the_same_step_on_two_replicas_as_on_one():
    """Each replica's loss is its half-batch mean; the optimizer sums the replicas' gradients, so the
    Distiller must scale them (before the fix a two-replica step was twice the one-replica step)."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    done = subprocess.run([sys.executable, "-c", _TWO_REPLICA_STEP], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr[-2000:]
    step, difference = map(float, done.stdout.split())
    assert step > 1e-3  # the step moved the student
    assert difference <= 1e-5 * step
