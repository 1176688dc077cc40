"""Weight clustering with TF-MOT: every kernel keeps only N distinct values (its cluster centroids).

`cluster_weights` wraps the model, fine-tuning moves the centroids, `strip_clustering` leaves
plain layers whose kernels hold N values each. Cluster-preserving QAT keeps them through
quantization-aware training (and keeps exact zeros too when the model was pruned first: the
collaborative-optimization chain TF-MOT calls PCQAT). Few distinct values compress well, so the
gain is in the gzip size of the .tflite, not in its raw size or its latency.
"""
from __future__ import annotations

import numpy as np

from pipeline.core.tf_env import keras, tfmot
from pipeline.errors import UserError
from pipeline.training.config import CENTROID_INITS as CENTROID_INIT_NAMES

# One place names the initializations (config checks them before TensorFlow loads); TF-MOT's enum
# spells each in capitals.
CENTROID_INITS = {name: getattr(tfmot.clustering.keras.CentroidInitialization, name.upper())
                  for name in CENTROID_INIT_NAMES}
CLUSTERED_LAYERS = (keras.layers.Conv2D, keras.layers.Dense)  # DepthwiseConv2D is a Conv2D too


def wrap_for_clustering(model: keras.Model, clusters: int, init: str, preserve_sparsity: bool = False,
                        layers: list[str] | None = None) -> keras.Model:
    """The model with the kernels of `layers` (every Conv2D/DepthwiseConv2D/Dense when empty) clustered to
    `clusters` values each (exact zeros kept as zeros with `preserve_sparsity`, for a pruned model)."""
    if clusters < 2:
        raise UserError(f"cluster.clusters = {clusters!r} must be at least 2")
    if init not in CENTROID_INITS:
        raise UserError(f"cluster.init = {init!r} is not valid; choose one of: {', '.join(CENTROID_INITS)}")
    settings = {"number_of_clusters": clusters, "cluster_centroids_init": CENTROID_INITS[init],
                "preserve_sparsity": preserve_sparsity}
    chosen = _clustered_layer_names(model, layers or [])
    try:
        if chosen is None:
            return tfmot.clustering.keras.cluster_weights(model, **settings)
        # TF-MOT's recipe for some layers: wrap those, keep (share) the others.
        return keras.models.clone_model(model, clone_function=lambda layer: tfmot.clustering.keras.cluster_weights(
            layer, **settings) if layer.name in chosen else layer)
    except ValueError as error:  # TF-MOT names the layer it cannot cluster
        raise UserError(f"cannot cluster model {model.name}: {str(error).splitlines()[0]} "
                        "(set cluster.clusters lower than that layer's weight count, or leave it out of "
                        "cluster.layers)") from None


def _clustered_layer_names(model: keras.Model, layers: list[str]) -> set[str] | None:
    """The names in `layers`, checked against the model (None: cluster every kernel)."""
    if not layers:
        return None
    by_name = {layer.name: layer for layer in model.layers}
    for name in layers:
        if name not in by_name:
            raise UserError(f"cluster.layers names '{name}', which model {model.name} does not have")
        if not isinstance(by_name[name], CLUSTERED_LAYERS):
            raise UserError(f"layer {name} ({type(by_name[name]).__name__}) cannot be clustered: only Conv2D, "
                            "DepthwiseConv2D and Dense kernels can; remove it from cluster.layers")
    return set(layers)


def strip_clustering(model: keras.Model) -> keras.Model:
    return tfmot.clustering.keras.strip_clustering(model)


def distinct_kernel_values(model: keras.Model) -> dict[str, int]:
    """Layer name -> number of distinct values in its kernel (what clustering bounds)."""
    return {layer.name: int(np.unique(layer.get_weights()[0]).size)
            for layer in model.layers if isinstance(layer, CLUSTERED_LAYERS)}


def cluster_preserving_scheme(preserve_sparsity: bool) -> tfmot.quantization.keras.QuantizeScheme:
    """The QAT scheme that keeps the centroids (and, after pruning, the zeros)."""
    return tfmot.experimental.combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=preserve_sparsity)
