"""Stage 5: quantization-aware training (PQAT or plain QAT), or nothing for PTQ.

PQAT (Default8BitPrunePreserveQuantizeScheme) keeps the pruned zeros while the model learns
to live with int8 weights and activations; plain QAT may refill them. PTQ passes the
pruned float model through and leaves all quantization to the converter.
"""
from __future__ import annotations

import shutil

from pipeline.core.tf_env import keras, tfmot
from pipeline.training.config import PipelineConfig
from pipeline.training.distribute import training_strategy
from pipeline.training.fit import keras_accuracy, seed_everything, train_on_labels
from pipeline.training.model_files import save_model_h5
from pipeline.training.model_source import load_stage_model
from pipeline.training.stage_io import StageContext, StageOutput
from pipeline.training.stages.data import load_run_data
from pipeline.training.tfmot_support import check_quantizable


def quantize_aware(model: keras.Model, method: str) -> keras.Model:
    """Wrap a flat float model for QAT with the scheme `method` names."""
    annotated = tfmot.quantization.keras.quantize_annotate_model(model)
    if method == "pqat":
        return tfmot.quantization.keras.quantize_apply(
            annotated, tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme())
    return tfmot.quantization.keras.quantize_apply(annotated)


def load_quantized(path, config: PipelineConfig) -> keras.Model:
    """Load this stage's output (QAT models need TF-MOT's custom objects in scope)."""
    with tfmot.quantization.keras.quantize_scope():
        return load_stage_model(path, config)


def run(ctx: StageContext) -> StageOutput:
    cfg = ctx.config.quantize
    out_path = ctx.out_dir / "model.h5"
    if cfg.method == "ptq":
        shutil.copyfile(ctx.input("prune", "pruned"), out_path)
        return StageOutput({"quantize_ready": out_path}, {"quantize_method": "ptq"})
    strategy = training_strategy(ctx.config.run.strategy)
    seed_everything(ctx.config.run.seed)
    data = load_run_data(ctx)
    images = data.labeled(ctx.config.finetune.label_fraction, ctx.config.run.seed)
    with strategy.scope():
        pruned = load_stage_model(ctx.input("prune", "pruned"), ctx.config)
        check_quantizable(pruned)
        model = quantize_aware(pruned, cfg.method)
        throughput = train_on_labels(model, images, epochs=cfg.epochs, batch_size=cfg.batch_size,
                                     learning_rate=cfg.learning_rate, seed=ctx.config.run.seed,
                                     augmented=ctx.config.finetune.augment, description=cfg.method)
    save_model_h5(model, out_path, include_optimizer=False)
    metrics = {
        "quantize_method": cfg.method,
        "qat_val_accuracy": keras_accuracy(model, data.validation),
        "quantize_images_per_s": round(throughput, 1),
    }
    return StageOutput({"quantize_ready": out_path}, metrics)
