"""Training a model against a teacher's softened outputs on every training image.

The distill stage trains a new student this way; the slim, prune and cluster stages can recover
the accuracy their surgery costs the same way (`recovery = "teacher"`), with the model before
the surgery as the teacher. Labelled images keep their labels (the hard term), every other training
image (and data.unlabeled_path's) adds the teacher's soft labels: about four times more images
than the labelled quarter fine-tuning sees, so the recovered model follows its teacher closely.

The teacher's forward pass cost nearly as much as the student's training step (a 4x larger model),
and it was repeated on every image in every epoch. Instead each augmentation of the training images
(a view) is decided by stored uniform draws, the teacher runs once over a view, and the student
trains on that same view for distill.view_epochs epochs, rebuilding each augmented image from its
draws: the teacher sees exactly what the student sees, and only the logits [N, classes] are kept,
so image files stream from disk as before.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from models import outputs_probabilities
from pipeline.core.tf_env import keras, tf
from pipeline.training.augment import DRAW_GROUPS, augment_with
from pipeline.training.augment_policy import AugmentPolicy
from pipeline.training.config import ClusterConfig, PipelineConfig, PruneConfig, SlimConfig
from pipeline.training.datasets import labeled_subset
from pipeline.training.distillation import Distiller
from pipeline.training.fit import EVAL_BATCH, ProgressBar, train_on_labels
from pipeline.training.image_set import UNLABELED, ImageSet, model_input
from pipeline.training.model_source import load_stage_model
from pipeline.training.stages.data import RunData


def distillation_images(config: PipelineConfig, data: RunData) -> ImageSet:
    """The training split with labels kept only on the labelled fraction, plus any unlabeled images
    (only the labelled fraction when `distill.unlabeled` is off)."""
    train = data.train
    labeled = labeled_subset(train.labels, config.finetune.label_fraction, config.run.seed)
    if not config.distill.unlabeled:
        return train.select(labeled)
    labels = np.full(len(train), UNLABELED, dtype=np.int64)
    labels[labeled] = train.labels[labeled]
    images = dataclasses.replace(train, labels=labels)
    return images.concatenate(data.dataset.unlabeled) if data.dataset.unlabeled else images


def view_draws(count: int, seed: int, view: int) -> np.ndarray:
    """The uniform draws [count, len(DRAWS)] that decide view number `view` of `count` images."""
    rng = np.random.default_rng([seed, view])
    return np.hstack([rng.random((count, len(group)), dtype=np.float32) for group in DRAW_GROUPS])


def _view(images: tf.Tensor, draws: tf.Tensor, policy: AugmentPolicy) -> tf.Tensor:
    """A uint8 batch as the model input of one view (the policy has no noise, so draws decide it all)."""
    x = model_input(images)
    return augment_with(x, draws, policy) if policy.changes_images else x


def teacher_logits(teacher: keras.Model, images: ImageSet, draws: np.ndarray, policy: AugmentPolicy) -> np.ndarray:
    """The teacher's logits [N, classes] on one view of `images`, in their order."""
    ds = images.dataset(labelled=False, extras=(draws,)).batch(EVAL_BATCH)
    ds = ds.map(lambda x, d: _view(x, d, policy), num_parallel_calls=tf.data.AUTOTUNE)
    outputs = teacher.predict(ds.prefetch(tf.data.AUTOTUNE), verbose=0)
    if outputs_probabilities(teacher):  # a user's model may end in a softmax; softmax(log p) = p
        outputs = np.log(np.maximum(outputs, 1e-7))
    return outputs.astype(np.float32)


def _view_dataset(images: ImageSet, draws: np.ndarray, logits: np.ndarray, batch_size: int, seed: int,
                  policy: AugmentPolicy) -> tf.data.Dataset:
    """(image, label, labelled flag, teacher logits) batches of one view; an unlabeled image has flag 0
    and a placeholder label."""
    def prepare(x, y, d, t):
        return _view(x, d, policy), tf.maximum(y, 0), tf.cast(y >= 0, tf.float32), t

    ds = images.dataset(labelled=True, shuffle_seed=seed, extras=(draws, logits)).batch(batch_size)
    return ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def train_with_teacher(student: keras.Model, teacher: keras.Model, images: ImageSet, config: PipelineConfig, *,
                       epochs: int, batch_size: int, learning_rate: float, policy: AugmentPolicy, description: str,
                       callbacks: list | None = None) -> float:
    """Fit `student` to `teacher` on `images` (Adam, cosine decay, distill.temperature and distill.alpha),
    a new view (augmented by `policy`) every distill.view_epochs epochs; return images per second, the
    teacher's passes included. Call inside the strategy's scope."""
    distiller = Distiller(student, config.distill.temperature, config.distill.alpha)
    steps = -(-len(images) // batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, max(epochs * steps, 1))
    distiller.compile(optimizer=keras.optimizers.Adam(schedule))
    view_epochs = config.distill.view_epochs if policy.changes_images else max(epochs, 1)  # unaugmented: one view
    progress = ProgressBar(description, epochs, steps, batch_size)
    for view, first_epoch in enumerate(range(0, epochs, view_epochs)):
        draws = view_draws(len(images), config.run.seed, view)
        logits = teacher_logits(teacher, images, draws, policy)
        dataset = _view_dataset(images, draws, logits, batch_size, config.run.seed + view, policy)
        distiller.fit(dataset, initial_epoch=first_epoch, epochs=min(first_epoch + view_epochs, epochs), verbose=0,
                      callbacks=[progress, *(callbacks or [])])
    return progress.finish()


def recovery_images(config: PipelineConfig, data: RunData, recovery: str) -> ImageSet:
    """What a stage fine-tunes on after its surgery: every training image with the teacher, else the labelled ones."""
    if recovery == "teacher":
        return distillation_images(config, data)
    return data.labeled(config.finetune.label_fraction, config.run.seed)


def recover(model: keras.Model, teacher_path: Path, images: ImageSet, config: PipelineConfig,
            stage: str, description: str, callbacks: list | None = None) -> float:
    """Fine-tune `model` after a stage's surgery as its section's `recovery` says, on `recovery_images`:
    from the teacher saved at `teacher_path` (the model before the surgery), or on the labels, augmented
    as the section's `augment` says; images per second. Call inside the strategy's scope."""
    section: SlimConfig | PruneConfig | ClusterConfig = getattr(config, stage)
    policy = config.augment_policy(stage)
    if section.recovery == "teacher":
        # A fresh copy: the surgery and TF-MOT's wrappers hold the layers of the model they were given.
        teacher = load_stage_model(teacher_path, config)
        return train_with_teacher(model, teacher, images, config, epochs=section.epochs,
                                  batch_size=section.batch_size, learning_rate=section.learning_rate, policy=policy,
                                  description=f"{description} (from the teacher)", callbacks=callbacks)
    return train_on_labels(model, images, epochs=section.epochs, batch_size=section.batch_size,
                           learning_rate=section.learning_rate, seed=config.run.seed,
                           policy=policy, description=description, callbacks=callbacks)
