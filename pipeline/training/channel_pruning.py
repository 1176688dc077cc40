"""Channel (structured) pruning: remove whole filters and rebuild a physically smaller model.

A Conv2D's filters can go when its output reaches exactly one consumer that reads channels
(a Conv2D, or a Dense after global pooling) only through layers that keep channels apart
(BatchNormalization, activations, DepthwiseConv2D, pooling, dropout). Removing filter c then
removes channel c from every layer on that path and input channel c of the consumer. Outputs that
meet an Add, a Concatenate or a second consumer are left whole, which keeps the channels a
residual addition joins consistent (in ResNet-8 the inner conv of each block is pruned).
Filters are ranked by the L1 norm of their kernel or by |gamma| of the BatchNorm after them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.core.tf_env import keras
from pipeline.errors import UserError
from pipeline.training.config import CHANNEL_CRITERIA
from pipeline.training.surgery import Replacement, consumers, copy_layer, rebuild

CHANNELWISE = (keras.layers.BatchNormalization, keras.layers.ReLU, keras.layers.Activation,
               keras.layers.DepthwiseConv2D, keras.layers.Dropout, keras.layers.MaxPooling2D,
               keras.layers.AveragePooling2D, keras.layers.GlobalAveragePooling2D,
               keras.layers.GlobalMaxPooling2D)


@dataclass(frozen=True)
class Chain:
    """A prunable conv, the channel-wise layers after it, and the layer that reads its channels."""

    conv: keras.layers.Layer
    path: tuple[keras.layers.Layer, ...]
    reader: keras.layers.Layer


@dataclass(frozen=True)
class PrunedLayer:
    layer: str
    filters_before: int
    filters_after: int


def prunable_chains(model: keras.Model) -> list[Chain]:
    """Every Conv2D whose filters can be removed without touching a residual addition."""
    readers = consumers(model)
    chains = []
    for layer in model.layers:
        if type(layer) is not keras.layers.Conv2D or layer.groups != 1:
            continue
        path, current = [], layer
        while len(readers[current.name]) == 1 and isinstance(readers[current.name][0], CHANNELWISE):
            current = readers[current.name][0]
            path.append(current)
        following = readers[current.name]
        if len(following) != 1:
            continue
        reader = following[0]
        reads_channels = type(reader) is keras.layers.Conv2D and reader.groups == 1
        after_pooling = isinstance(reader, keras.layers.Dense) and path and isinstance(
            path[-1], (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D))
        if reads_channels or after_pooling:
            chains.append(Chain(layer, tuple(path), reader))
    return chains


def filter_scores(chain: Chain, criterion: str) -> np.ndarray:
    """One importance score per filter of the chain's conv (higher is kept)."""
    if criterion == "l1":
        kernel = chain.conv.get_weights()[0]
        return np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(axis=0)
    norms = [layer for layer in chain.path if isinstance(layer, keras.layers.BatchNormalization)]
    if not norms:
        raise UserError(f"layer {chain.conv.name} ({type(chain.conv).__name__}) has no BatchNormalization after it: "
                        "prune it with slim.channel_criterion = \"l1\"")
    return np.abs(norms[0].get_weights()[0])


def _slice_channelwise(layer: keras.layers.Layer, keep: np.ndarray) -> list[np.ndarray]:
    """A channel-wise layer's weights for the kept channels (depthwise kernels on their channel axis)."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kernel, *bias = layer.get_weights()
        return [kernel[:, :, keep, :], *[b[keep] for b in bias]]
    return [weight[keep] for weight in layer.get_weights()]


def prune_channels(model: keras.Model, ratio: float, criterion: str = "l1",
                   layers: list[str] | None = None) -> tuple[keras.Model, list[PrunedLayer]]:
    """Remove `ratio` of the filters of every prunable conv (or of those named); return the smaller model."""
    if not 0.0 <= ratio < 1.0:
        raise UserError(f"slim.channel_ratio = {ratio!r} must be in [0, 1)")
    if criterion not in CHANNEL_CRITERIA:
        raise UserError(f"slim.channel_criterion = {criterion!r} is not valid; choose one of: "
                        f"{', '.join(CHANNEL_CRITERIA)}")
    chains = {chain.conv.name: chain for chain in prunable_chains(model)}
    by_name = {layer.name: layer for layer in model.layers}
    for name in layers or []:
        if name not in by_name:
            raise UserError(f"slim.channel_layers names '{name}', which model {model.name} does not have "
                            f"(prunable: {', '.join(chains) or 'none'})")
        if name not in chains:
            raise UserError(f"layer {name} ({type(by_name[name]).__name__}) cannot be channel-pruned: only a Conv2D "
                            f"whose output reaches one conv or pooled dense without an addition can; remove it from "
                            f"slim.channel_layers (prunable: {', '.join(chains) or 'none'})")
    chosen = [chains[name] for name in layers] if layers else list(chains.values())
    kept_filters: dict[str, np.ndarray] = {}  # conv name -> filters it keeps
    kept_inputs: dict[str, np.ndarray] = {}  # reader name -> input channels it keeps
    replacements, records = {}, []
    for chain in chosen:
        kept = max(1, int(round(chain.conv.filters * (1.0 - ratio))))
        keep = np.sort(np.argsort(-filter_scores(chain, criterion), kind="stable")[:kept])
        kept_filters[chain.conv.name] = kept_inputs[chain.reader.name] = keep
        for layer in chain.path:
            if layer.get_weights():
                replacements[layer.name] = _with_weights(_slice_channelwise(layer, keep))
        records.append(PrunedLayer(chain.conv.name, chain.conv.filters, kept))
    for name in kept_filters.keys() | kept_inputs.keys():
        replacements[name] = _sliced_copy(by_name[name], kept_inputs.get(name), kept_filters.get(name))
    return rebuild(model, replacements), records


def _with_weights(weights: list[np.ndarray]) -> Replacement:
    return lambda original, x: copy_layer(original, x, weights=weights)


def _sliced_copy(layer: keras.layers.Layer, inputs_kept: np.ndarray | None,
                 filters_kept: np.ndarray | None) -> Replacement:
    """A replacement for a Conv2D or Dense with some input channels and/or filters removed."""
    kernel, *bias = layer.get_weights()
    if inputs_kept is not None:
        kernel = kernel[inputs_kept] if kernel.ndim == 2 else kernel[:, :, inputs_kept, :]
    config = {}
    if filters_kept is not None:
        kernel, bias = kernel[..., filters_kept], [b[filters_kept] for b in bias]
        config = {"filters": len(filters_kept)}
    return lambda original, x: copy_layer(original, x, config=config, weights=[kernel, *bias])
