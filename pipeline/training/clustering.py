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

CENTROID_INITS = {
    "kmeans_plus_plus": tfmot.clustering.keras.CentroidInitialization.KMEANS_PLUS_PLUS,
    "linear": tfmot.clustering.keras.CentroidInitialization.LINEAR,
    "density_based": tfmot.clustering.keras.CentroidInitialization.DENSITY_BASED,
}
CLUSTERED_LAYERS = (keras.layers.Conv2D, keras.layers.Dense)  # DepthwiseConv2D is a Conv2D too


def wrap_for_clustering(model: keras.Model, clusters: int, init: str, preserve_sparsity: bool = False) -> keras.Model:
    """The model with its Conv2D/DepthwiseConv2D/Dense kernels clustered to `clusters` values each
    (exact zeros kept as zeros with `preserve_sparsity`, for a pruned model)."""
    if clusters < 2:
        raise UserError(f"cluster.clusters = {clusters!r} must be at least 2")
    if init not in CENTROID_INITS:
        raise UserError(f"cluster.init = {init!r} is not valid; choose one of: {', '.join(CENTROID_INITS)}")
    try:
        return tfmot.clustering.keras.cluster_weights(model, number_of_clusters=clusters,
                                                      cluster_centroids_init=CENTROID_INITS[init],
                                                      preserve_sparsity=preserve_sparsity)
    except ValueError as error:  # TF-MOT names the layer it cannot cluster
        raise UserError(f"cannot cluster model {model.name}: {str(error).splitlines()[0]} "
                        "(set cluster.clusters lower than that layer's weight count, or skip clustering)") from None


def strip_clustering(model: keras.Model) -> keras.Model:
    return tfmot.clustering.keras.strip_clustering(model)


def distinct_kernel_values(model: keras.Model) -> dict[str, int]:
    """Layer name -> number of distinct values in its kernel (what clustering bounds)."""
    return {layer.name: int(np.unique(layer.get_weights()[0]).size)
            for layer in model.layers if isinstance(layer, CLUSTERED_LAYERS)}


def cluster_preserving_scheme(preserve_sparsity: bool) -> tfmot.quantization.keras.QuantizeScheme:
    """The QAT scheme that keeps the centroids (and, after pruning, the zeros)."""
    return tfmot.experimental.combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=preserve_sparsity)
