"""The tf.distribute strategy every training stage builds, compiles and fits its model under.

Batch sizes in the config are global: Keras' fit splits each batch over the replicas (per
replica = global / replicas), and the pretraining loop does the same with
`experimental_distribute_dataset`. Learning rates belong to the global batch and are not
rescaled, so a run on N replicas takes the same optimizer steps as a one-process run.
"""
from __future__ import annotations

import functools

from pipeline.core.tf_env import tf
from pipeline.training.workers import is_multi_worker


@functools.cache  # one per process: MultiWorkerMirroredStrategy can be set up only once
def training_strategy(name: str) -> tf.distribute.Strategy:
    """`name` is run.strategy: auto, default, mirrored or multi_worker (cluster from TF_CONFIG)."""
    if is_multi_worker(name):
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def global_mean_gradients(gradients: list[tf.Tensor]) -> list[tf.Tensor]:
    """Per-replica gradients of a per-replica mean loss, scaled so that the optimizer's sum over
    replicas is the gradient of the global-batch mean (identity on one replica)."""
    replicas = tf.distribute.get_replica_context().num_replicas_in_sync
    return [gradient / replicas for gradient in gradients]
