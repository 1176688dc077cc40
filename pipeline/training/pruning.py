"""Magnitude pruning with TF-MOT: wrap the prunable layers, schedule, strip, measure.

Only Conv2D and Dense kernels are pruned: those are the zeros that pruning-preserving QAT
keeps. The stem conv (a few hundred weights that see raw pixels) and depthwise kernels
are left dense.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.core.tf_env import keras, tfmot
from pipeline.errors import UserError

STEM_LAYER = "stem_conv"
PRUNING_END_FRACTION = 0.7  # reach the target after 70% of the steps, then fine-tune with the mask fixed


def is_prunable(layer: keras.layers.Layer) -> bool:
    if isinstance(layer, keras.layers.DepthwiseConv2D) or layer.name == STEM_LAYER:
        return False
    return isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))


def polynomial_schedule(target: float, total_steps: int, frequency: int) -> tfmot.sparsity.keras.PolynomialDecay:
    """A schedule that really reaches `target`: end_step is a pruning turn inside the run."""
    end_step = frequency * int(PRUNING_END_FRACTION * total_steps // frequency)
    if end_step < frequency:
        raise UserError(
            f"prune.frequency = {frequency} is too large for {total_steps} training steps: nothing would be pruned; "
            f"lower prune.frequency or raise prune.epochs")
    return tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=0.0, final_sparsity=target, begin_step=0, end_step=end_step, frequency=frequency)


def wrap_for_pruning(model: keras.Model, schedule) -> keras.Model:
    """A copy of `model` with every prunable layer wrapped by prune_low_magnitude."""
    def wrap(layer):
        if not is_prunable(layer):
            return layer
        return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)

    return keras.models.clone_model(model, clone_function=wrap)


def kernel_sparsity(model: keras.Model) -> dict[str, float]:
    """Fraction of exact zeros in each prunable layer's kernel."""
    return {layer.name: float(np.mean(layer.kernel.numpy() == 0)) for layer in model.layers if is_prunable(layer)}


def overall_sparsity(model: keras.Model) -> float:
    """Zeros over all prunable kernel weights (a weighted mean of the per-layer numbers)."""
    kernels = [layer.kernel.numpy() for layer in model.layers if is_prunable(layer)]
    return float(sum((k == 0).sum() for k in kernels) / max(sum(k.size for k in kernels), 1))


def pruned_kernel_sparsity(kernels: list[dict[str, Any]]) -> float:
    """Zero fraction over the kernels pruning touches (CONV_2D and FULLY_CONNECTED, stem excluded),
    from the kernel records of pipeline.tflite.verification.inspect_int8."""
    chosen = [k for k in kernels if k["op"] != "DEPTHWISE_CONV_2D" and STEM_LAYER not in k["tensor"]]
    return float(sum(k["zeros"] for k in chosen) / max(sum(k["weights"] for k in chosen), 1))
