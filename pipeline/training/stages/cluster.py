"""Stage 7: weight clustering (TF-MOT), fine-tuning the centroids on the labelled images (or, with
`cluster.recovery = "teacher"`, by distillation from the unclustered model on every image).

Every Conv2D/Dense kernel ends with `cluster.clusters` distinct values; a pruned model keeps its
zeros (TF-MOT's sparsity-preserving clustering), the first half of the collaborative chain whose
second half is `quantize.method = "pcqat"`. With `cluster.clusters = 0` the stage hands the pruned
model on.
"""
from __future__ import annotations

from pipeline.training.clustering import distinct_kernel_values, strip_clustering, wrap_for_clustering
from pipeline.training.distribute import training_strategy
from pipeline.training.fit import keras_accuracy, seed_everything
from pipeline.training.model_files import save_model_h5
from pipeline.training.model_source import load_stage_model
from pipeline.training.pruning import overall_sparsity
from pipeline.training.stage_io import StageContext, StageOutput, passed_on
from pipeline.training.stages.data import load_run_data
from pipeline.training.teacher_training import recover, recovery_images


def run(ctx: StageContext) -> StageOutput:
    cfg = ctx.config.cluster
    if cfg.clusters == 0:
        return passed_on(ctx, "prune", "pruned", "clustered", "cluster.clusters = 0: the model goes on unclustered")
    strategy = training_strategy(ctx.config.run.strategy)
    seed = ctx.config.run.seed
    seed_everything(seed)
    data = load_run_data(ctx)
    preserve_sparsity = ctx.config.prune.target_sparsity > 0
    with strategy.scope():
        model = load_stage_model(ctx.input("prune", "pruned"), ctx.config)
        wrapped = wrap_for_clustering(model, cfg.clusters, cfg.init, preserve_sparsity, cfg.layers)
        images = recovery_images(ctx.config, data, cfg.recovery)
        throughput = recover(wrapped, ctx.input("prune", "pruned"), images, ctx.config, "cluster", "cluster")
    clustered = strip_clustering(wrapped)
    path = ctx.out_dir / "clustered.h5"
    save_model_h5(clustered, path, include_optimizer=False)
    metrics = {
        "clusters": cfg.clusters,
        "sparsity_preserved": preserve_sparsity,
        "recovery": cfg.recovery,
        "recovery_images": len(images),
        "sparsity": overall_sparsity(clustered),
        "distinct_kernel_values": distinct_kernel_values(clustered),
        "clustered_val_accuracy": keras_accuracy(clustered, data.validation),
        "cluster_images_per_s": round(throughput, 1),
    }
    return StageOutput({"clustered": path}, metrics)
