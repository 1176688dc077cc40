"""Low-rank factorization of Conv2D and Dense kernels by truncated SVD.

A k x k convolution from C_in to C_out channels has a kernel that reshapes to a matrix
[k*k*C_in, C_out]. Its SVD U S V^T truncated to rank r splits the layer in two: a k x k
convolution with r filters (U_r sqrt(S_r)) followed by a 1 x 1 convolution from r to C_out
channels (sqrt(S_r) V_r^T) that carries the original bias. MACs fall when
r < k*k*C_in*C_out / (k*k*C_in + C_out); a layer where the chosen rank would not save MACs is
left as it is. Dense layers split the same way into two Dense layers. Fine-tune afterwards:
the truncation is the best rank-r approximation of each kernel, not of the network.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.core.tf_env import keras
from pipeline.errors import UserError
from pipeline.training.surgery import Replacement, copy_layer, layer_macs, rebuild


@dataclass(frozen=True)
class Factorization:
    """One layer before and after: what the manifest records per layer."""

    layer: str
    rank: int
    full_rank: int
    energy_kept: float  # fraction of the kernel's squared singular values the rank keeps
    macs_before: int
    macs_after: int
    params_before: int
    params_after: int
    factorized: bool  # False: the rank would not have saved MACs, the layer was kept


def kernel_matrix(layer: keras.layers.Layer) -> np.ndarray:
    """The layer's kernel as [inputs per output value, outputs]."""
    kernel = layer.get_weights()[0]
    return kernel.reshape(-1, kernel.shape[-1])


def choose_rank(singular_values: np.ndarray, energy: float) -> int:
    """The smallest rank whose squared singular values keep at least `energy` of the total."""
    squares = np.asarray(singular_values, dtype=np.float64) ** 2
    kept = np.cumsum(squares) / max(squares.sum(), np.finfo(np.float64).tiny)
    return min(int(np.searchsorted(kept, energy - 1e-12)) + 1, len(squares))


def split_layer(layer: keras.layers.Layer, inputs, rank: int):
    """The two layers that replace `layer` at `rank`, applied to `inputs` (a Replacement for rebuild)."""
    u, s, vt = np.linalg.svd(kernel_matrix(layer).astype(np.float64), full_matrices=False)
    root = np.sqrt(s[:rank])
    first = (u[:, :rank] * root).astype(np.float32)  # [inputs per output, rank]
    second = (root[:, None] * vt[:rank]).astype(np.float32)  # [rank, outputs]
    bias = layer.get_weights()[1:]
    if isinstance(layer, keras.layers.Dense):
        reduce = keras.layers.Dense(rank, use_bias=False, name=f"{layer.name}_lr")
        hidden = reduce(inputs)
        reduce.set_weights([first])
        return copy_layer(layer, hidden, weights=[second, *bias])
    kh, kw, cin, _ = layer.kernel.shape
    reduce = keras.layers.Conv2D(rank, (kh, kw), strides=layer.strides, padding=layer.padding, use_bias=False,
                                 name=f"{layer.name}_lr")
    hidden = reduce(inputs)
    reduce.set_weights([first.reshape(kh, kw, cin, rank)])
    return copy_layer(layer, hidden, config={"kernel_size": (1, 1), "strides": (1, 1), "padding": "valid"},
                      weights=[second.reshape(1, 1, rank, -1), *bias])


def _split_at(rank: int) -> Replacement:
    return lambda layer, inputs: split_layer(layer, inputs, rank)


def _factorizable(layer: keras.layers.Layer) -> bool:
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return False
    if isinstance(layer, keras.layers.Conv2D):
        return layer.groups == 1 and max(layer.dilation_rate) == 1
    return isinstance(layer, keras.layers.Dense)


def factorize(model: keras.Model, layers: list[str], energy: float) -> tuple[keras.Model, list[Factorization]]:
    """Factorize the named layers (all Conv2D/Dense layers where it saves MACs when `layers` is empty)
    at the smallest rank keeping `energy` of each kernel's spectrum."""
    if not 0.0 < energy <= 1.0:
        raise UserError(f"slim.lowrank_energy = {energy!r} must be in (0, 1]")
    by_name = {layer.name: layer for layer in model.layers}
    for name in layers:
        if name not in by_name:
            raise UserError(f"slim.lowrank_layers names '{name}', which model {model.name} does not have")
        if not _factorizable(by_name[name]):
            raise UserError(f"layer {name} ({type(by_name[name]).__name__}) cannot be factorized: only Conv2D "
                            "(ungrouped, undilated) and Dense kernels can; remove it from slim.lowrank_layers")
    candidates = [by_name[name] for name in layers] or [layer for layer in model.layers if _factorizable(layer)]
    records, replacements = [], {}
    for layer in candidates:
        matrix = kernel_matrix(layer)
        s = np.linalg.svd(matrix.astype(np.float64), compute_uv=False)
        rank = choose_rank(s, energy)
        positions = layer_macs(layer) // matrix.size
        macs_after = positions * rank * (matrix.shape[0] + matrix.shape[1])
        params_after = rank * (matrix.shape[0] + matrix.shape[1])
        saves = macs_after < layer_macs(layer)
        squares = s ** 2
        records.append(Factorization(layer.name, rank, len(s), float(squares[:rank].sum() / squares.sum()),
                                     layer_macs(layer), macs_after if saves else layer_macs(layer), matrix.size,
                                     params_after if saves else matrix.size, saves))
        if saves:
            replacements[layer.name] = _split_at(rank)
    return rebuild(model, replacements), records
