"""What a device will actually get: int8 on every boundary tensor, no float compute left, and
how many kernel weights are exact zeros. Read from the flatbuffer itself (pipeline/tflite/graph.py)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from pipeline.tflite.graph import INT8, load_graph

KERNEL_OPS = {"CONV_2D": 1, "FULLY_CONNECTED": 1, "DEPTHWISE_CONV_2D": 1}  # op -> input index of its weights
FLOAT_DTYPES = ("float16", "float32", "float64")


def inspect_int8(path: Path) -> dict[str, Any]:
    """Boundary dtypes, ops that still compute in float, kernel zeros per weight op, op counts."""
    graph = load_graph(path)
    boundary = graph.inputs + graph.outputs
    float_ops, kernels = set(), []
    for op in graph.ops:
        if any(tensor.dtype in FLOAT_DTYPES for tensor in op.inputs + op.outputs):
            float_ops.add(op.name)
        weights = op.inputs[KERNEL_OPS[op.name]] if op.name in KERNEL_OPS else None
        if weights is not None and weights.values is not None:
            kernels.append({"op": op.name, "tensor": weights.name, "weights": int(weights.values.size),
                            "zeros": int((weights.values == 0).sum())})
    return {
        "boundary_dtypes": sorted({tensor.dtype for tensor in boundary}),
        "boundary_int8": bool(boundary) and all(tensor.dtype == INT8 for tensor in boundary),
        "float_ops": sorted(float_ops),
        "kernels": kernels,
        "op_counts": dict(Counter(op.name for op in graph.ops)),
    }
