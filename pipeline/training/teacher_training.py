"""Training a model against a teacher's softened outputs on every training image.

The distill stage trains a new student this way; the slim, prune and cluster stages can recover
the accuracy their surgery costs the same way (`recovery = "teacher"`), with the model before
the surgery as the teacher. Labelled images keep their labels (the hard term), every other training
image (and data.unlabeled_path's) adds the teacher's soft labels: about four times more images
than the labelled quarter fine-tuning sees, so the recovered model follows its teacher closely.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from pipeline.core.tf_env import keras, tf
from pipeline.training.augment import FINETUNE_STRENGTH, augment
from pipeline.training.config import ClusterConfig, PipelineConfig, PruneConfig, SlimConfig
from pipeline.training.datasets import labeled_subset
from pipeline.training.distillation import Distiller
from pipeline.training.fit import fit, train_on_labels
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


def _distillation_dataset(images: ImageSet, batch_size: int, seed: int, augmented: bool) -> tf.data.Dataset:
    """(image, label, labelled flag) batches; an unlabeled image has flag 0 and a placeholder label."""
    def prepare(x, y):
        x = model_input(x)
        return (augment(x, FINETUNE_STRENGTH) if augmented else x), tf.maximum(y, 0), tf.cast(y >= 0, tf.float32)

    ds = images.dataset(labelled=True, shuffle_seed=seed).batch(batch_size)
    return ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def train_with_teacher(student: keras.Model, teacher: keras.Model, images: ImageSet, config: PipelineConfig, *,
                       epochs: int, batch_size: int, learning_rate: float, description: str,
                       callbacks: list | None = None) -> float:
    """Fit `student` to `teacher` on `images` (Adam, cosine decay, distill.temperature and distill.alpha);
    return the training throughput in images per second. Call inside the strategy's scope."""
    distiller = Distiller(student, teacher, config.distill.temperature, config.distill.alpha)
    steps = -(-len(images) // batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, max(epochs * steps, 1))
    distiller.compile(optimizer=keras.optimizers.Adam(schedule))
    dataset = _distillation_dataset(images, batch_size, config.run.seed, config.finetune.augment)
    return fit(distiller, dataset, epochs, steps, batch_size, description, callbacks)


def recovery_images(config: PipelineConfig, data: RunData, recovery: str) -> ImageSet:
    """What a stage fine-tunes on after its surgery: every training image with the teacher, else the labelled ones."""
    if recovery == "teacher":
        return distillation_images(config, data)
    return data.labeled(config.finetune.label_fraction, config.run.seed)


def recover(model: keras.Model, teacher_path: Path, images: ImageSet, config: PipelineConfig,
            section: SlimConfig | PruneConfig | ClusterConfig, description: str,
            callbacks: list | None = None) -> float:
    """Fine-tune `model` after a stage's surgery as `section.recovery` says, on `recovery_images`:
    from the teacher saved at `teacher_path` (the model before the surgery), or on the labels; images per
    second. Call inside the strategy's scope."""
    if section.recovery == "teacher":
        # A fresh copy: the surgery and TF-MOT's wrappers hold the layers of the model they were given.
        teacher = load_stage_model(teacher_path, config)
        return train_with_teacher(model, teacher, images, config, epochs=section.epochs,
                                  batch_size=section.batch_size, learning_rate=section.learning_rate,
                                  description=f"{description} (from the teacher)", callbacks=callbacks)
    return train_on_labels(model, images, epochs=section.epochs, batch_size=section.batch_size,
                           learning_rate=section.learning_rate, seed=config.run.seed,
                           augmented=config.finetune.augment, description=description, callbacks=callbacks)
