"""Stage 4: knowledge distillation of a smaller student from the fine-tuned model (the teacher).

The student (`distill.student` at `distill.width`, from random weights) learns from the labelled
images with their labels and the teacher's softened outputs, and from every other training image
(and data.unlabeled_path's) with the teacher's softened outputs alone: the self-supervised teacher
passes on what it learned from many images to a model small enough for the board. With
`distill.plain_baseline`, the same student is also trained on the labelled images alone (same
epochs, same recipe): the two accuracies are the evidence that distillation pays. Without a
student the stage hands the fine-tuned model on.
"""
from __future__ import annotations

import numpy as np

from models import build_classifier
from pipeline.core.tf_env import keras
from pipeline.training.distribute import training_strategy
from pipeline.training.fit import keras_accuracy, seed_everything, train_on_labels
from pipeline.training.image_set import UNLABELED
from pipeline.training.model_files import save_model_h5
from pipeline.training.model_source import load_stage_model
from pipeline.training.stage_io import StageContext, StageOutput, passed_on
from pipeline.training.stages.data import RunData, load_run_data
from pipeline.training.surgery import model_macs
from pipeline.training.teacher_training import distillation_images, train_with_teacher


def _new_student(ctx: StageContext, data: RunData) -> keras.Model:
    cfg = ctx.config.distill
    return build_classifier(cfg.student, data.dataset.input_shape, data.dataset.num_classes, cfg.width)


def run(ctx: StageContext) -> StageOutput:
    cfg = ctx.config.distill
    if not cfg.student:
        return passed_on(ctx, "finetune", "classifier", "model", "distill.student is not set: the fine-tuned "
                                                                  "model goes on as it is")
    strategy = training_strategy(ctx.config.run.strategy)
    data = load_run_data(ctx)
    images = distillation_images(ctx.config, data)
    seed = ctx.config.run.seed
    seed_everything(seed)
    with strategy.scope():
        teacher = load_stage_model(ctx.input("finetune", "classifier"), ctx.config)
        student = _new_student(ctx, data)
        throughput = train_with_teacher(student, teacher, images, ctx.config, epochs=cfg.epochs,
                                        batch_size=cfg.batch_size, learning_rate=cfg.learning_rate,
                                        policy=ctx.config.augment_policy("distill"), description="distill")
    student_path = ctx.out_dir / "model.h5"
    save_model_h5(student, student_path, include_optimizer=False)
    labelled = int(np.sum(images.labels != UNLABELED))
    metrics = {
        "student": cfg.student, "student_width": cfg.width,
        "teacher_params": teacher.count_params(), "student_params": student.count_params(),
        "teacher_macs": model_macs(teacher), "student_macs": model_macs(student),
        "labelled_images": labelled, "soft_label_only_images": len(images) - labelled,
        "teacher_accuracy": keras_accuracy(teacher, data.test),
        "distilled_accuracy": keras_accuracy(student, data.test),
        "distilled_val_accuracy": keras_accuracy(student, data.validation),
        "distill_images_per_s": round(throughput, 1),
    }
    if cfg.plain_baseline:
        seed_everything(seed)
        labelled_images = data.labeled(ctx.config.finetune.label_fraction, seed)
        with strategy.scope():
            plain = _new_student(ctx, data)
            train_on_labels(plain, labelled_images, epochs=cfg.epochs, batch_size=cfg.batch_size,
                            learning_rate=cfg.learning_rate, seed=seed, policy=ctx.config.augment_policy("distill"),
                            description="student without distillation")
        metrics.update(plain_student_images=len(labelled_images), plain_student_epochs=cfg.epochs,
                       plain_student_accuracy=keras_accuracy(plain, data.test))
        metrics["distillation_gain"] = metrics["distilled_accuracy"] - metrics["plain_student_accuracy"]
    return StageOutput({"model": student_path}, metrics)
