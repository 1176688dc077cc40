"""The Edge TPU's supported operations and their documented limitations, keyed by TFLite op name.

Source: Coral, "TensorFlow models on the Edge TPU", table "Supported operations"
(https://coral.ai/docs/edgetpu/models-intro/#supported-operations). `min_runtime` is the
table's "Runtime version" column (None = every version). A limit function returns the reasons
an op breaks its row's limitation; an empty list means the row's limitation is met.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pipeline.tflite.graph import OpInfo, TensorInfo

SOFTMAX_MAX_ELEMENTS = 16_000
Z_REDUCTION_MULTIPLE = 4  # a Mean over channels needs a channel count that is a multiple of this
FUSED_ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
PRECISION_NOTE = "the compiler may still leave it on the CPU for some input/output sizes (precision loss)"


@dataclass(frozen=True)
class OpRule:
    coral_name: str  # the op's name in Coral's table
    min_runtime: int | None = None  # Edge TPU runtime version that added the op
    limits: Callable[[OpInfo], list[str]] | None = None
    note: str | None = None  # a documented caveat that a static check cannot decide


def effective_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape without leading 1s: a [1, 10] tensor is one-dimensional to the Edge TPU."""
    dims = list(shape)
    while len(dims) > 1 and dims[0] == 1:
        dims.pop(0)
    return tuple(dims)


def constant_ints(tensor: TensorInfo) -> list[int] | None:
    if tensor.values is None:
        return None
    return [int(v) for v in np.asarray(tensor.values).reshape(-1)]


def _normalised_axes(axis_tensor: TensorInfo, rank: int) -> list[int] | None:
    axes = constant_ints(axis_tensor)
    return None if axes is None else sorted({a + rank if a < 0 else a for a in axes})


def _no_fused_activation(op: OpInfo) -> list[str]:
    code = getattr(op.options, "fusedActivationFunction", 0)
    if code:
        return [f"fused activation {FUSED_ACTIVATIONS.get(code, code)} is not supported on this op: "
                "apply the activation as its own layer"]
    return []


def _same_dilation(op: OpInfo) -> list[str]:
    height, width = op.options.dilationHFactor, op.options.dilationWFactor
    if height != width:
        return [f"dilation differs in y and x ({height} vs {width}); the Edge TPU needs the same dilation in both"]
    return []


def _concatenation(op: OpInfo) -> list[str]:
    reasons = _no_fused_activation(op)
    constants = [t for t in op.inputs if t.constant]
    if constants and len(op.inputs) != 2:
        reasons.append(f"a constant input with {len(op.inputs)} inputs; "
                       "the Edge TPU allows a constant only with 2 inputs")
    for tensor in constants:
        zero = tensor.zero_point[0] if tensor.zero_point else 0
        if np.any(np.asarray(tensor.values) != zero):
            reasons.append(f"constant input '{tensor.name}' is not all zeros (only zero padding may be concatenated)")
    return reasons


def _fully_connected(op: OpInfo) -> list[str]:
    reasons = []
    if op.options is not None and op.options.weightsFormat != 0:
        reasons.append("shuffled fully-connected weights; only the default weights format is supported")
    output = op.outputs[0]
    if len(effective_shape(output.shape)) > 1:
        reasons.append(f"output {output.describe()} is not one-dimensional")
    return reasons


def _axis_limits(op: OpInfo, axis_input: int, data_input: int) -> tuple[list[int] | None, list[str]]:
    """Normalised constant axes of a reduce/split/pack-like op, and reasons if they touch the batch."""
    data = op.inputs[data_input]
    axes = _normalised_axes(op.inputs[axis_input], len(data.shape))
    if axes is None:
        return None, ["axis is computed at run time; the Edge TPU needs a constant axis"]
    if 0 in axes and len(data.shape) > 1:
        return axes, ["operates on the batch dimension (axis 0), which the Edge TPU cannot do"]
    return axes, []


def _reduce(op: OpInfo) -> list[str]:
    return _axis_limits(op, axis_input=1, data_input=0)[1]


def _mean(op: OpInfo) -> list[str]:
    axes, reasons = _axis_limits(op, axis_input=1, data_input=0)
    shape = op.inputs[0].shape
    z_axis = len(shape) - 1
    if axes and z_axis in axes and shape[z_axis] % Z_REDUCTION_MULTIPLE:
        reasons.append(f"reduces over {shape[z_axis]} channels; a channel reduction needs a multiple of "
                       f"{Z_REDUCTION_MULTIPLE}")
    return reasons


def _split(op: OpInfo) -> list[str]:
    return _axis_limits(op, axis_input=0, data_input=1)[1]


def _pack(op: OpInfo) -> list[str]:
    if op.options is not None and op.options.axis == 0:
        return ["packs along the batch dimension (axis 0), which the Edge TPU cannot do"]
    return []


def _pad(op: OpInfo) -> list[str]:
    paddings = constant_ints(op.inputs[1])
    if paddings is None:
        return ["paddings are computed at run time; the Edge TPU needs constant paddings"]
    if len(op.inputs[0].shape) > 1 and paddings[:2] != [0, 0]:
        return ["pads the batch dimension, which the Edge TPU cannot do"]
    return []


def _prelu(op: OpInfo) -> list[str]:
    alpha = op.inputs[1]
    if not alpha.constant:
        return ["alpha is not a constant"]
    if any(d > 1 for d in alpha.shape[:-1]):
        return [f"alpha {alpha.describe()} is not 1-dimensional (use shared_axes=[1, 2] in Keras PReLU)"]
    return []


def _softmax(op: OpInfo) -> list[str]:
    data = op.inputs[0]
    reasons = []
    if len(effective_shape(data.shape)) > 1:
        reasons.append(f"input {data.describe()} is not 1-D; the Edge TPU's Softmax takes a 1-D input only")
    if int(np.prod(data.shape)) > SOFTMAX_MAX_ELEMENTS:
        reasons.append(f"input has {int(np.prod(data.shape))} elements, over the limit of {SOFTMAX_MAX_ELEMENTS}")
    return reasons


def _strided_slice(op: OpInfo) -> list[str]:
    strides = constant_ints(op.inputs[3]) if len(op.inputs) > 3 else None
    reasons = []
    if strides is None or any(s != 1 for s in strides):
        reasons.append(f"strides {strides} are not all 1 (only a plain slice maps to the Edge TPU)")
    if op.options is not None and (op.options.ellipsisMask or op.options.newAxisMask):
        reasons.append("uses an ellipsis or new-axis mask, which the Edge TPU does not support")
    return reasons


RULES: dict[str, OpRule] = {
    "ADD": OpRule("Add"),
    "AVERAGE_POOL_2D": OpRule("AveragePool2d", limits=_no_fused_activation),
    "CONCATENATION": OpRule("Concatenation", limits=_concatenation),
    "CONV_2D": OpRule("Conv2d", limits=_same_dilation),
    "DEPTHWISE_CONV_2D": OpRule("DepthwiseConv2d", limits=_same_dilation),
    "EXPAND_DIMS": OpRule("ExpandDims", min_runtime=13),
    "FULLY_CONNECTED": OpRule("FullyConnected", limits=_fully_connected),
    "L2_NORMALIZATION": OpRule("L2Normalization"),
    "LOGISTIC": OpRule("Logistic"),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": OpRule("LSTM", min_runtime=14),
    "MAXIMUM": OpRule("Maximum"),
    "MAX_POOL_2D": OpRule("MaxPool2d", limits=_no_fused_activation),
    "MEAN": OpRule("Mean", limits=_mean),
    "MINIMUM": OpRule("Minimum"),
    "MUL": OpRule("Mul"),
    "PACK": OpRule("Pack", min_runtime=13, limits=_pack),
    "PAD": OpRule("Pad", limits=_pad),
    "PRELU": OpRule("PReLU", min_runtime=13, limits=_prelu),
    "QUANTIZE": OpRule("Quantize", min_runtime=13),
    "REDUCE_MAX": OpRule("ReduceMax", min_runtime=14, limits=_reduce),
    "REDUCE_MIN": OpRule("ReduceMin", min_runtime=14, limits=_reduce),
    "RELU": OpRule("ReLU"),
    "RELU6": OpRule("ReLU6"),
    "RELU_N1_TO_1": OpRule("ReLUN1To1"),
    "RESHAPE": OpRule("Reshape", note="certain reshapes of large tensors may not be mapped"),
    "RESIZE_BILINEAR": OpRule("ResizeBilinear", note=PRECISION_NOTE),
    "RESIZE_NEAREST_NEIGHBOR": OpRule("ResizeNearestNeighbor", note=PRECISION_NOTE),
    "RSQRT": OpRule("Rsqrt", min_runtime=14),
    "SLICE": OpRule("Slice"),
    "SOFTMAX": OpRule("Softmax", limits=_softmax),
    "SPACE_TO_DEPTH": OpRule("SpaceToDepth"),
    "SPLIT": OpRule("Split", limits=_split),
    "SQUARED_DIFFERENCE": OpRule("SquaredDifference", min_runtime=14),
    "SQUEEZE": OpRule("Squeeze"),
    "STRIDED_SLICE": OpRule("StridedSlice", limits=_strided_slice),
    "SUB": OpRule("Sub"),
    "SUM": OpRule("Sum", min_runtime=13, limits=_reduce),
    "TANH": OpRule("Tanh"),
    "TRANSPOSE": OpRule("Transpose", min_runtime=14),
    "TRANSPOSE_CONV": OpRule("TransposeConv", min_runtime=13),
}
