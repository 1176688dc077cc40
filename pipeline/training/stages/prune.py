"""Stage 6: magnitude-prune the classifier (the fine-tuned one, or what distill / slim made of it) to a
target sparsity, fine-tuning on the same labels (or, with `prune.recovery = "teacher"`, by
distillation from the unpruned model on every training image).

PolynomialDecay ramps sparsity from 0 to the target; UpdatePruningStep advances it every
batch; strip_pruning removes the wrappers so the zeros are plain weights, ready for PQAT,
conversion and size measurement. A target of 0 passes its input through untouched, so an
"unpruned" variant (pipeline/core/variants.py) is exactly the model the earlier steps made.
"""
from __future__ import annotations

import shutil

from pipeline.core.tf_env import tfmot
from pipeline.training.distribute import training_strategy
from pipeline.training.fit import keras_accuracy, seed_everything
from pipeline.training.model_files import save_model_h5
from pipeline.training.model_source import load_stage_model
from pipeline.training.pruning import kernel_sparsity, overall_sparsity, polynomial_schedule, wrap_for_pruning
from pipeline.training.stage_io import StageContext, StageOutput
from pipeline.training.stages.data import load_run_data
from pipeline.training.teacher_training import recover, recovery_images
from pipeline.training.tfmot_support import check_prunable


def run(ctx: StageContext) -> StageOutput:
    cfg = ctx.config.prune
    strategy = training_strategy(ctx.config.run.strategy)
    seed_everything(ctx.config.run.seed)
    data = load_run_data(ctx)
    pruned_path = ctx.out_dir / "pruned.h5"
    if cfg.target_sparsity == 0:
        shutil.copyfile(ctx.input("slim", "model"), pruned_path)
        stripped, throughput, images = load_stage_model(pruned_path, ctx.config), None, None
    else:
        images = recovery_images(ctx.config, data, cfg.recovery)
        steps = -(-len(images) // cfg.batch_size)
        with strategy.scope():
            model = load_stage_model(ctx.input("slim", "model"), ctx.config)
            check_prunable(model)
            model = wrap_for_pruning(model, polynomial_schedule(cfg.target_sparsity, cfg.epochs * steps,
                                                                cfg.frequency))
            throughput = recover(model, ctx.input("slim", "model"), images, ctx.config, "prune", "prune",
                                 callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
        stripped = tfmot.sparsity.keras.strip_pruning(model)
        save_model_h5(stripped, pruned_path, include_optimizer=False)
    metrics = {
        "target_sparsity": cfg.target_sparsity,
        "recovery": cfg.recovery,
        "recovery_images": None if images is None else len(images),
        "sparsity": overall_sparsity(stripped),
        "sparsity_per_layer": kernel_sparsity(stripped),
        "pruned_val_accuracy": keras_accuracy(stripped, data.validation),
        "prune_images_per_s": None if throughput is None else round(throughput, 1),
    }
    return StageOutput({"pruned": pruned_path}, metrics)
