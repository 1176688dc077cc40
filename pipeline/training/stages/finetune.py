"""Stage 3: fine-tune a classifier on a fraction of the labels, and the same recipe from scratch.

Both models see the same labelled images, epochs, augmentation and optimizer; the only
difference is the starting weights. Their test accuracies are the evidence that
pretraining pays (or does not) at this label fraction.

A user's trained classifier (model.path) is not fine-tuned: this stage checks it against the
data and hands it on to pruning as this stage's `classifier`, and says that it skipped.
"""
from __future__ import annotations

from pathlib import Path

from pipeline.training.distribute import training_strategy
from pipeline.training.fit import keras_accuracy, seed_everything, train_on_labels
from pipeline.training.image_set import ImageSet
from pipeline.training.model_files import save_model_h5
from pipeline.training.model_source import (
    Classifier,
    new_classifier,
    new_encoder,
    skip_reason,
    trained_classifier,
)
from pipeline.training.stage_io import StageContext, StageOutput
from pipeline.training.stages.data import RunData, load_run_data


def train_classifier(ctx: StageContext, data: RunData, images: ImageSet, encoder_weights: Path | None,
                     label: str) -> tuple[Classifier, float]:
    """Train one classifier with the stage's recipe; return it and its training throughput."""
    cfg = ctx.config.finetune
    strategy = training_strategy(ctx.config.run.strategy)
    seed_everything(ctx.config.run.seed)
    with strategy.scope():
        classifier = new_classifier(ctx.config, data.validation, data.dataset.num_classes)
        if encoder_weights is not None:
            new_encoder(ctx.config, classifier.model).load_weights(encoder_weights)
        throughput = train_on_labels(classifier.model, images, epochs=cfg.epochs, batch_size=cfg.batch_size,
                                     learning_rate=cfg.learning_rate, seed=ctx.config.run.seed,
                                     policy=ctx.config.augment_policy("finetune"),
                                     description=f"finetune ({label})")
    return classifier, throughput


def _keras3_metrics(classifier: Classifier) -> dict:
    """The rebuild check of a Keras 3 model, under its own name in the manifest's metrics."""
    return {"keras3_rebuild": classifier.keras3_check} if classifier.keras3_check else {}


def _enter_trained(ctx: StageContext, data: RunData) -> StageOutput:
    """The user's classifier, checked and saved as this stage's output, with its own accuracy."""
    classifier = trained_classifier(ctx.config, data.validation, data.dataset.num_classes)
    model = classifier.model
    classifier_path = ctx.out_dir / "classifier.h5"
    save_model_h5(model, classifier_path, include_optimizer=False)
    metrics = {
        "model_path": ctx.config.model.path,
        "model_accuracy": keras_accuracy(model, data.test),
        "model_val_accuracy": keras_accuracy(model, data.validation),
        **_keras3_metrics(classifier),
    }
    return StageOutput({"classifier": classifier_path}, metrics, {"skipped": skip_reason(ctx.config)})


def run(ctx: StageContext) -> StageOutput:
    data = load_run_data(ctx)
    if ctx.config.model.path:
        return _enter_trained(ctx, data)
    pretrained = ctx.manifest.stage_outputs("pretrain").get("encoder")
    encoder_weights = ctx.input("pretrain", "encoder") if pretrained else None
    label = "ssl" if encoder_weights else "scratch"
    images = data.labeled(ctx.config.finetune.label_fraction, ctx.config.run.seed)
    classifier, throughput = train_classifier(ctx, data, images, encoder_weights, label)
    model = classifier.model
    classifier_path = ctx.out_dir / "classifier.h5"
    save_model_h5(model, classifier_path)
    metrics = {
        **_keras3_metrics(classifier),
        "label_fraction": ctx.config.finetune.label_fraction,
        "labeled_images": len(images),
        f"{label}_accuracy": keras_accuracy(model, data.test),
        f"{label}_val_accuracy": keras_accuracy(model, data.validation),
        "finetune_images_per_s": round(throughput, 1),
    }
    artifacts = {"classifier": classifier_path}
    if encoder_weights and ctx.config.finetune.scratch_baseline:
        scratch, _ = train_classifier(ctx, data, images, None, "scratch")
        metrics["scratch_accuracy"] = keras_accuracy(scratch.model, data.test)
        metrics["scratch_val_accuracy"] = keras_accuracy(scratch.model, data.validation)
    if "scratch_accuracy" in metrics and "ssl_accuracy" in metrics:
        metrics["ssl_gain"] = metrics["ssl_accuracy"] - metrics["scratch_accuracy"]
    return StageOutput(artifacts, metrics)
