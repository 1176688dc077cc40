"""Stage 8: quantization-aware training (plain QAT, PQAT, CQAT or PCQAT), or nothing for PTQ.

PQAT (Default8BitPrunePreserveQuantizeScheme) keeps the pruned zeros while the model learns
to live with int8 weights and activations; CQAT keeps the weight clusters, PCQAT both (TF-MOT's
collaborative optimization); plain QAT may refill zeros and move clusters. PTQ passes the
compressed float model through and leaves all quantization to the converter.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from pipeline.core.tf_env import keras, tfmot
from pipeline.training.clustering import cluster_preserving_scheme
from pipeline.training.config import PipelineConfig
from pipeline.training.distribute import training_strategy
from pipeline.training.fit import keras_accuracy, seed_everything, train_on_labels
from pipeline.training.model_files import save_model_h5
from pipeline.training.model_source import load_stage_model
from pipeline.training.qat_annotation import annotate_for_qat
from pipeline.training.stage_io import StageContext, StageOutput
from pipeline.training.stages.data import load_run_data
from pipeline.training.tfmot_support import check_quantizable


def quantize_aware(model: keras.Model, method: str) -> keras.Model:
    """Wrap a flat float model for QAT with the scheme `method` names."""
    annotated = annotate_for_qat(model)
    schemes = {"pqat": tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme,
               "cqat": lambda: cluster_preserving_scheme(preserve_sparsity=False),
               "pcqat": lambda: cluster_preserving_scheme(preserve_sparsity=True)}
    # The scope holds TF-MOT's own quantize configs, among them the output-only one annotate_for_qat may use.
    with tfmot.quantization.keras.quantize_scope():
        if method in schemes:
            return tfmot.quantization.keras.quantize_apply(annotated, schemes[method]())
        return tfmot.quantization.keras.quantize_apply(annotated)


def load_quantized(path: Path, float_model: Path, config: PipelineConfig) -> keras.Model:
    """Load this stage's output (`path`), given the float model it was trained from.

    A QAT model is rebuilt from that float model with the same scheme and given the saved weights:
    an .h5 file does not record which scheme its wrappers were made with, and the cluster-preserving
    ones have weights the default wrappers lack.
    """
    if config.quantize.method == "ptq":
        return load_stage_model(path, config)
    model = quantize_aware(load_stage_model(float_model, config), config.quantize.method)
    model.load_weights(path)
    return model


def run(ctx: StageContext) -> StageOutput:
    cfg = ctx.config.quantize
    out_path = ctx.out_dir / "model.h5"
    if cfg.method == "ptq":
        shutil.copyfile(ctx.input("cluster", "clustered"), out_path)
        return StageOutput({"quantize_ready": out_path}, {"quantize_method": "ptq"})
    strategy = training_strategy(ctx.config.run.strategy)
    seed_everything(ctx.config.run.seed)
    data = load_run_data(ctx)
    images = data.labeled(ctx.config.finetune.label_fraction, ctx.config.run.seed)
    with strategy.scope():
        compressed = load_stage_model(ctx.input("cluster", "clustered"), ctx.config)
        check_quantizable(compressed)
        model = quantize_aware(compressed, cfg.method)
        throughput = train_on_labels(model, images, epochs=cfg.epochs, batch_size=cfg.batch_size,
                                     learning_rate=cfg.learning_rate, seed=ctx.config.run.seed,
                                     policy=ctx.config.augment_policy("quantize"), description=cfg.method)
    save_model_h5(model, out_path, include_optimizer=False)
    metrics = {
        "quantize_method": cfg.method,
        "qat_val_accuracy": keras_accuracy(model, data.validation),
        "quantize_images_per_s": round(throughput, 1),
    }
    return StageOutput({"quantize_ready": out_path}, metrics)
