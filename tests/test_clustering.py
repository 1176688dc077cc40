"""Clustering with TF-MOT on a tiny model: N values per kernel survive fine-tuning, CQAT and int8 conversion."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import UserError

pytestmark = pytest.mark.filterwarnings("ignore:Statistics for quantized inputs:UserWarning")
CLUSTERS = 6
INPUT = (12, 12, 1)


def _fit(model, epochs=1):
    from pipeline.core.tf_env import keras

    rng = np.random.default_rng(0)
    images, labels = rng.random((64, *INPUT), dtype=np.float32), rng.integers(0, 4, 64)
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(images, labels, epochs=epochs, batch_size=16, verbose=0)


@pytest.mark.slow  # trains twice and converts: about 30 s on an idle 2-core machine
def test_clustered_pqat_int8_kernels_keep_n_values_per_channel(tmp_path):
    from models import build_classifier
    from pipeline.core.tf_env import tfmot
    from pipeline.tflite.conversion import convert_int8
    from pipeline.tflite.graph import load_graph
    from pipeline.training.clustering import (
        cluster_preserving_scheme,
        distinct_kernel_values,
        strip_clustering,
        wrap_for_clustering,
    )

    model = build_classifier("resnet8", INPUT, 4, width=0.5)
    clustered = wrap_for_clustering(model, CLUSTERS, "kmeans_plus_plus")
    _fit(clustered)
    stripped = strip_clustering(clustered)
    counts = distinct_kernel_values(stripped)
    assert len(counts) == 10 and max(counts.values()) <= CLUSTERS  # stem, 6 block convs, 2 projections, logits
    annotated = tfmot.quantization.keras.quantize_annotate_model(stripped)
    qat = tfmot.quantization.keras.quantize_apply(annotated, cluster_preserving_scheme(preserve_sparsity=True))
    _fit(qat)
    path = tmp_path / "clustered.tflite"
    path.write_bytes(convert_int8(qat, np.random.default_rng(1).integers(0, 256, (8, *INPUT), dtype=np.uint8)))
    kernels = [op.inputs[1].values for op in load_graph(path).ops if op.name in ("CONV_2D", "FULLY_CONNECTED")]
    assert len(kernels) == 10
    for kernel in kernels:  # int8 scales are per output channel: each channel holds at most N levels
        per_channel = [np.unique(kernel[c]).size for c in range(kernel.shape[0])]
        assert max(per_channel) <= CLUSTERS


@pytest.mark.parametrize("clusters, init, message", [(1, "linear", "cluster.clusters = 1"),
                                                     (8, "random", "cluster.init = 'random'")])
def test_bad_settings_get_one_line(clusters, init, message):
    from models import build_classifier
    from pipeline.training.clustering import wrap_for_clustering

    with pytest.raises(UserError, match=message):
        wrap_for_clustering(build_classifier("resnet8", INPUT, 4, width=0.5), clusters, init)
