"""Stage 5: structured compression that makes the model physically smaller, then fine-tuning.

Channel pruning (`slim.channel_ratio`) removes whole filters and rebuilds the model without
them; low-rank factorization (`slim.lowrank_energy`) splits kernels in two by truncated SVD.
Unlike magnitude pruning, both cut the MACs and bytes of the .tflite file, which is what a
board's latency and energy follow. Fine-tuning then recovers accuracy: on the labelled images, or
(`slim.recovery = "teacher"`) by distillation from the model before the surgery on every image.
With neither set the stage hands its input on.
"""
from __future__ import annotations

import dataclasses

from pipeline.training.channel_pruning import prune_channels
from pipeline.training.distribute import training_strategy
from pipeline.training.fit import keras_accuracy, seed_everything
from pipeline.training.lowrank import factorize
from pipeline.training.model_files import save_model_h5
from pipeline.training.model_source import load_stage_model
from pipeline.training.stage_io import StageContext, StageOutput, passed_on
from pipeline.training.stages.data import load_run_data
from pipeline.training.surgery import model_macs
from pipeline.training.teacher_training import recover, recovery_images


def run(ctx: StageContext) -> StageOutput:
    cfg = ctx.config.slim
    if cfg.channel_ratio == 0 and cfg.lowrank_energy == 0:
        return passed_on(ctx, "distill", "model", "model", "slim.channel_ratio and slim.lowrank_energy are 0: "
                                                            "the model goes on as it is")
    strategy = training_strategy(ctx.config.run.strategy)
    seed = ctx.config.run.seed
    seed_everything(seed)
    data = load_run_data(ctx)
    metrics: dict = {}
    with strategy.scope():
        model = load_stage_model(ctx.input("distill", "model"), ctx.config)
        metrics.update(macs_before=model_macs(model), params_before=model.count_params(),
                       val_accuracy_before=keras_accuracy(model, data.validation))
        if cfg.channel_ratio > 0:
            model, pruned = prune_channels(model, cfg.channel_ratio, cfg.channel_criterion, cfg.channel_layers or None)
            metrics["channel_pruned_layers"] = [dataclasses.asdict(record) for record in pruned]
        if cfg.lowrank_energy > 0:
            model, factorized = factorize(model, cfg.lowrank_layers, cfg.lowrank_energy)
            metrics["factorized_layers"] = [dataclasses.asdict(record) for record in factorized]
        metrics["val_accuracy_before_finetune"] = keras_accuracy(model, data.validation)
        images = recovery_images(ctx.config, data, cfg.recovery)
        throughput = recover(model, ctx.input("distill", "model"), images, ctx.config, "slim", "slim fine-tune")
    path = ctx.out_dir / "model.h5"
    save_model_h5(model, path, include_optimizer=False)
    metrics.update(macs_after=model_macs(model), params_after=model.count_params(),
                   val_accuracy_after=keras_accuracy(model, data.validation), recovery=cfg.recovery,
                   recovery_images=len(images), slim_images_per_s=round(throughput, 1))
    return StageOutput({"model": path}, metrics)
