"""Read a .tflite flatbuffer into plain op and tensor records, in execution order.

Uses the flatbuffer schema that ships with LiteRT (no TensorFlow import, no interpreter), so
builtin options (fused activations, dilations, strides) and constant values are visible.
TFLite runs a subgraph's operators in the order they are stored, so list order is execution order.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from pipeline.errors import UserError

TFLITE_IDENTIFIER = b"TFL3"  # flatbuffer file identifier, bytes 4..8 of every .tflite
DTYPE_NAMES = {value: name.lower() for name, value in vars(schema.TensorType).items() if not name.startswith("_")}
OP_NAMES = {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
NUMPY_DTYPES = {np.dtype(t).name: t for t in (np.int8, np.uint8, np.int16, np.int32, np.int64, np.float16, np.float32)}
INT8, UINT8 = DTYPE_NAMES[schema.TensorType.INT8], DTYPE_NAMES[schema.TensorType.UINT8]  # dtype names, as TensorInfo


@dataclass(frozen=True)
class TensorInfo:
    index: int
    name: str
    dtype: str  # the TFLite type in lower case: int8, float32, ...
    shape: tuple[int, ...]  # as stored (a dynamic batch is stored as 1)
    signature: tuple[int, ...]  # -1 marks a dimension only known at run time
    quantized: bool  # carries a quantization scale
    zero_point: tuple[int, ...]
    values: np.ndarray | None  # the data of a constant tensor, None for activations

    @property
    def constant(self) -> bool:
        return self.values is not None

    def describe(self) -> str:
        return f"{self.dtype}[{','.join(str(d) for d in self.signature)}]"


@dataclass(frozen=True)
class OpInfo:
    index: int
    name: str  # TFLite builtin name such as CONV_2D, or CUSTOM:<code>
    inputs: tuple[TensorInfo, ...]  # optional inputs that are absent (-1) are left out
    outputs: tuple[TensorInfo, ...]
    options: Any  # the schema's builtin options object (e.g. Conv2DOptionsT), or None


@dataclass(frozen=True)
class Graph:
    ops: tuple[OpInfo, ...]
    subgraph_count: int
    inputs: tuple[TensorInfo, ...] = ()  # the main subgraph's boundary tensors
    outputs: tuple[TensorInfo, ...] = ()


def require_tflite(path: Path) -> bytes:
    """The file's bytes, or a UserError when it is missing or not a TFLite flatbuffer."""
    if not path.is_file():
        raise UserError(f"model not found: {path} (pass the path of an int8 .tflite file)")
    data = path.read_bytes()
    if data[4:8] != TFLITE_IDENTIFIER:
        raise UserError(f"{path} is not a TFLite model (no TFL3 identifier): pass a .tflite written by the converter")
    return data


def load_graph(path: Path) -> Graph:
    """Ops of the main subgraph in execution order, with their tensors resolved."""
    data = require_tflite(path)
    try:
        model = schema.ModelT.InitFromPackedBuf(data, 0)
    except Exception as error:  # a truncated or corrupt flatbuffer fails deep inside the generated code
        raise UserError(f"{path} could not be parsed as a TFLite flatbuffer (truncated or corrupt): "
                        "re-export the model") from error
    if not model.subgraphs:
        raise UserError(f"{path} has no subgraph: re-export the model")
    main = model.subgraphs[0]
    tensors = [_tensor_info(i, t, model.buffers, data) for i, t in enumerate(main.tensors or [])]
    ops = tuple(_op_info(i, op, model.operatorCodes, tensors) for i, op in enumerate(main.operators or []))
    return Graph(ops=ops, subgraph_count=len(model.subgraphs),
                 inputs=tuple(tensors[i] for i in _ints(main.inputs)),
                 outputs=tuple(tensors[i] for i in _ints(main.outputs)))


def _op_info(index: int, op: Any, codes: list, tensors: list[TensorInfo]) -> OpInfo:
    return OpInfo(
        index=index,
        name=_op_name(codes[op.opcodeIndex]),
        inputs=tuple(tensors[i] for i in _ints(op.inputs) if i >= 0),
        outputs=tuple(tensors[i] for i in _ints(op.outputs) if i >= 0),
        options=op.builtinOptions,
    )


def _op_name(code: Any) -> str:
    # Builtin codes above 127 live only in builtinCode; older files only fill the deprecated field.
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    if builtin == schema.BuiltinOperator.CUSTOM:
        custom = code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode
        return f"CUSTOM:{custom}"
    return OP_NAMES.get(builtin, f"BUILTIN_{builtin}")


def _tensor_info(index: int, tensor: Any, buffers: list, data: bytes) -> TensorInfo:
    dtype = DTYPE_NAMES.get(tensor.type, f"type{tensor.type}")
    shape = tuple(_ints(tensor.shape))
    signature = tuple(_ints(tensor.shapeSignature)) or shape
    quantization = tensor.quantization
    scales = [] if quantization is None or quantization.scale is None else quantization.scale
    zero_points = [] if quantization is None else _ints(quantization.zeroPoint)
    raw = _constant_bytes(buffers[tensor.buffer] if tensor.buffer < len(buffers) else None, data)
    return TensorInfo(
        index=index,
        name=tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name),
        dtype=dtype,
        shape=shape,
        signature=signature,
        quantized=len(scales) > 0,
        zero_point=tuple(zero_points),
        values=_decode(raw, dtype, shape) if raw is not None and not tensor.isVariable else None,
    )


def _constant_bytes(buffer: Any, data: bytes) -> bytes | None:
    """A buffer's bytes: inline, or (models over 2 GB) at an offset after the flatbuffer."""
    if buffer is None:
        return None
    if buffer.data is not None and len(buffer.data) > 0:
        return bytes(buffer.data)
    if buffer.offset > 1 and buffer.size > 0:
        return data[buffer.offset: buffer.offset + buffer.size]
    return None


def _decode(raw: bytes, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    if dtype not in NUMPY_DTYPES:
        return np.frombuffer(raw, dtype=np.uint8)  # kept only to mark the tensor as constant
    values = np.frombuffer(raw, dtype=NUMPY_DTYPES[dtype])
    return values.reshape(shape) if values.size == int(np.prod(shape)) else values


def _ints(values: Any) -> list[int]:
    return [] if values is None else [int(v) for v in values]
