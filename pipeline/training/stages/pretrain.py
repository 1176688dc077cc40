"""Stage 2: self-supervised pretraining of the encoder on the training images (labels unused)
plus the unlabeled images of data.unlabeled_path or the npz's x_unlabeled.

The encoder is the classifier's own layers up to its classification head (see
pipeline.training.model_source.new_encoder), so its weights load in layer order into the
encoder part of the flat classifier that fine-tuning builds (TF-MOT refuses nested models).
A user's trained classifier (model.path) skips this stage. Steps run under the run's
tf.distribute strategy; each replica's gradients are scaled so their sum is the global mean.
"""
from __future__ import annotations

import sys
import time

import numpy as np
from tqdm import tqdm

from pipeline.core.tf_env import keras, tf
from pipeline.errors import UserError
from pipeline.training.distribute import training_strategy
from pipeline.training.fit import seed_everything
from pipeline.training.image_set import ImageSet, model_input
from pipeline.training.model_files import save_weights_h5
from pipeline.training.model_source import new_classifier, new_encoder, skip_reason
from pipeline.training.ssl import rotation, simclr
from pipeline.training.stage_io import StageContext, StageOutput
from pipeline.training.stages.data import load_run_data


def _distributed(step, strategy: tf.distribute.Strategy):
    """`step` run on every replica's share of a global batch; the mean loss over replicas."""
    @tf.function
    def distributed_step(batch):
        return strategy.reduce(tf.distribute.ReduceOp.MEAN, strategy.run(step, args=(batch,)), axis=None)

    return distributed_step


def _train(step, images: ImageSet, epochs: int, batch_size: int, seed: int,
           strategy: tf.distribute.Strategy) -> tuple[float, float]:
    """Run `step` over shuffled global batches; return (last epoch's mean loss, images per second)."""
    dataset = strategy.experimental_distribute_dataset(
        images.dataset(labelled=False, shuffle_seed=seed).batch(batch_size, drop_remainder=True)
        .map(model_input, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2))
    step = _distributed(step, strategy)
    steps = len(images) // batch_size
    started, epoch_loss = time.perf_counter(), float("nan")
    with tqdm(total=epochs * steps, desc="pretrain", unit="step", file=sys.stderr, leave=False, mininterval=1.0) as bar:
        for epoch in range(epochs):
            losses = []
            for batch in dataset:
                losses.append(float(step(batch)))
                bar.update(1)
                bar.set_postfix(epoch=f"{epoch + 1}/{epochs}", loss=f"{losses[-1]:.3f}", refresh=False)
            epoch_loss = float(np.mean(losses))
    return epoch_loss, epochs * steps * batch_size / max(time.perf_counter() - started, 1e-9)


def run(ctx: StageContext) -> StageOutput:
    cfg = ctx.config.pretrain
    if ctx.config.model.path:
        return StageOutput({}, {"pretrain_method": "skipped"}, {"skipped": skip_reason(ctx.config)})
    if cfg.method == "none":
        return StageOutput({}, {"pretrain_method": "none"})
    strategy = training_strategy(ctx.config.run.strategy)
    seed_everything(ctx.config.run.seed)
    data = load_run_data(ctx)
    with strategy.scope():
        classifier = new_classifier(ctx.config, data.validation, data.dataset.num_classes).model
        encoder = new_encoder(ctx.config, classifier)
        feature_dim = encoder.output_shape[-1]
        policy = ctx.config.augment_policy("pretrain")
        optimizer = keras.optimizers.Adam(cfg.learning_rate)
        if cfg.method == "simclr":
            head = simclr.projection_head(feature_dim, cfg.projection_dim)
            step = simclr.make_train_step(encoder, head, optimizer, cfg.temperature, policy)
        else:
            head = rotation.rotation_head(feature_dim)
            step = rotation.make_train_step(encoder, head, optimizer, policy)
    images = data.pretraining
    if len(images) < cfg.batch_size:
        raise UserError(f"{ctx.config.source}: pretrain.batch_size = {cfg.batch_size} is larger than the "
                        f"{len(images)} training images; lower it")
    loss, throughput = _train(step, images, cfg.epochs, cfg.batch_size, ctx.config.run.seed, strategy)
    encoder_path = ctx.out_dir / "encoder.h5"
    save_weights_h5(encoder, encoder_path)
    metrics = {"pretrain_method": cfg.method, "pretrain_loss": round(loss, 4),
               "pretrain_images": len(images), "pretrain_images_per_s": round(throughput, 1)}
    return StageOutput({"encoder": encoder_path}, metrics)
