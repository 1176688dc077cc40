"""What a .tflite model costs to run: multiply-accumulates and parameters per op, read from the graph.

Counted for the ops that hold nearly all the arithmetic of a vision classifier: CONV_2D,
DEPTHWISE_CONV_2D and FULLY_CONNECTED. Element-wise ops, pooling and activation
functions cost a few operations per output value and are left out, as in the usual MAC counts
of papers and of MLPerf Tiny. Parameters are the kernel weights of those ops; biases are left out
because the converter adds zero biases to some ops and moves others into separate ADD ops, so
counting them would make the same model count differently in float and int8 files.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod
from pathlib import Path

from pipeline.tflite.graph import Graph, OpInfo, load_graph

WEIGHTS = 1  # input index of the kernel in every counted op (0: activations, 2: optional bias)
COUNTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


@dataclass(frozen=True)
class OpCost:
    index: int
    op: str
    weights: str  # name of the weight tensor (names the layer it came from)
    macs: int
    params: int


@dataclass(frozen=True)
class ModelCost:
    ops: tuple[OpCost, ...]

    @property
    def macs(self) -> int:
        return sum(op.macs for op in self.ops)

    @property
    def params(self) -> int:
        return sum(op.params for op in self.ops)


def _macs_per_output(op: OpInfo) -> int:
    """Multiply-accumulates behind one output value, from the weight tensor's layout."""
    shape = op.inputs[WEIGHTS].shape
    if op.name == "CONV_2D":  # [out_channels, kh, kw, in_channels]
        return prod(shape[1:])
    if op.name == "DEPTHWISE_CONV_2D":  # [1, kh, kw, out_channels]: one kh x kw window per output
        return shape[1] * shape[2]
    return shape[-1]  # FULLY_CONNECTED [out_units, in_units]


def op_cost(op: OpInfo) -> OpCost | None:
    """The cost of one op, or None for ops whose arithmetic is not counted."""
    if op.name not in COUNTED_OPS or len(op.inputs) <= WEIGHTS:
        return None
    macs = prod(op.outputs[0].shape) * _macs_per_output(op)
    weights = op.inputs[WEIGHTS]
    return OpCost(op.index, op.name, weights.name, int(macs), int(prod(weights.shape)))


def graph_cost(graph: Graph) -> ModelCost:
    return ModelCost(tuple(cost for op in graph.ops if (cost := op_cost(op)) is not None))


def model_cost(path: Path) -> ModelCost:
    """MACs and parameters of a .tflite file, per op and in total (batch as stored: 1 for our models)."""
    return graph_cost(load_graph(path))
