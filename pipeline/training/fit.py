"""Shared training plumbing: tf.data input pipelines, a progress bar, seeding, evaluation.

Every function takes an ImageSet, so the same code trains on arrays in memory and on image
files decoded by tf.data while training runs.
"""
from __future__ import annotations

import sys
import time

import numpy as np
from tqdm import tqdm

from models import outputs_probabilities
from pipeline.core.tf_env import keras, tf
from pipeline.training.augment import augment
from pipeline.training.augment_policy import AugmentPolicy
from pipeline.training.image_set import ImageSet, model_input

EVAL_BATCH = 512


def seed_everything(seed: int) -> None:
    keras.utils.set_random_seed(seed)


def labeled_dataset(images: ImageSet, batch_size: int, seed: int, policy: AugmentPolicy) -> tf.data.Dataset:
    """Shuffled, batched (float image, label) pairs, augmented as `policy` says."""
    ds = images.dataset(labelled=True, shuffle_seed=seed).batch(batch_size)
    ds = ds.map(lambda x, y: (model_input(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    if policy.changes_images:
        ds = ds.map(lambda x, y: (augment(x, policy), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


class ProgressBar(keras.callbacks.Callback):
    """One tqdm bar over all batches of all epochs, with the latest metrics; it may span several fit()
    calls (training against a teacher fits once per view) until finish()."""

    bar: tqdm | None = None  # opened by the first on_train_begin, closed by finish()

    def __init__(self, description: str, epochs: int, steps_per_epoch: int, batch_size: int):
        super().__init__()
        self.description = description
        self.total = epochs * steps_per_epoch
        self.epochs = epochs
        self.batch_size = batch_size
        self.started = 0.0

    def on_train_begin(self, logs=None):
        if self.bar is None:
            self.bar = tqdm(total=self.total, desc=self.description, unit="step", file=sys.stderr, leave=False,
                            dynamic_ncols=True, mininterval=1.0)
            self.started = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        assert self.bar is not None
        self.bar.update(1)
        if logs:
            metrics = {name: f"{value:.3f}" for name, value in logs.items()}
            self.bar.set_postfix(epoch=f"{self.epoch}/{self.epochs}", **metrics, refresh=False)

    def finish(self) -> float:
        """Close the bar; the images per second trained since the first batch (0 when none was)."""
        if self.bar is None:
            return 0.0
        elapsed = time.perf_counter() - self.started
        self.bar.close()
        return self.bar.n * self.batch_size / max(elapsed, 1e-9)


def fit(model: keras.Model, dataset: tf.data.Dataset, epochs: int, steps_per_epoch: int, batch_size: int,
        description: str, callbacks: list | None = None) -> float:
    """Train with a progress bar; return the training throughput in images per second."""
    progress = ProgressBar(description, epochs, steps_per_epoch, batch_size)
    model.fit(dataset, epochs=epochs, verbose=0, callbacks=[progress, *(callbacks or [])])
    return progress.finish()


def keras_accuracy(model: keras.Model, images: ImageSet) -> float:
    """Top-1 accuracy of a Keras classifier (logits output) on a labelled image set, streamed in batches."""
    ds = images.dataset(labelled=False).batch(EVAL_BATCH).map(model_input).prefetch(tf.data.AUTOTUNE)
    logits = model.predict(ds, verbose=0)
    return float(np.mean(np.argmax(logits, axis=1) == images.labels))


def compile_classifier(model: keras.Model, learning_rate: float, decay_steps: int) -> None:
    """Adam with cosine decay and sparse cross-entropy on the model's logits (or its softmax, when a
    user's model ends in one): one recipe for every stage."""
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, max(decay_steps, 1))
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=not outputs_probabilities(model)),
        metrics=["accuracy"],
    )


def train_on_labels(model: keras.Model, images: ImageSet, *, epochs: int, batch_size: int,
                    learning_rate: float, seed: int, policy: AugmentPolicy, description: str,
                    callbacks: list | None = None) -> float:
    """The one supervised recipe of fine-tuning, pruning and QAT: compile, batch, fit; images per second."""
    steps = -(-len(images) // batch_size)
    compile_classifier(model, learning_rate, epochs * steps)
    dataset = labeled_dataset(images, batch_size, seed, policy)
    return fit(model, dataset, epochs, steps, batch_size, description, callbacks)
