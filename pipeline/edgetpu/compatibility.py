"""Static Edge TPU compatibility check: which ops of an int8 .tflite the compiler can map.

Each op is judged on its own (op type, 8-bit quantized tensors, static shapes, tensor rank,
the op's documented limits), then placed: `edgetpu_compiler` maps one contiguous run of
supported ops and everything from the first unsupported op on runs on the CPU, even ops that
are supported (a single Edge TPU subgraph). The one exception is a leading QUANTIZE of a float
model input: it stays on the CPU and the Edge TPU run starts after it, as the compiler does.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pipeline.edgetpu.op_rules import RULES, OpRule
from pipeline.tflite.graph import INT8, UINT8, OpInfo, TensorInfo, load_graph

EIGHT_BIT = (INT8, UINT8)
CONSTANT_INDEX_DTYPES = ("int32", "int64")  # biases, shapes, axes and paddings
MAX_LARGE_DIMS = 3  # only the 3 innermost dimensions may be larger than 1
EDGETPU = "edgetpu"
CPU = "cpu"


@dataclass(frozen=True)
class OpVerdict:
    """One op as the report shows it."""

    op: OpInfo
    rule: OpRule | None
    reasons: list[str]  # why this op itself cannot run on the Edge TPU (empty: it can)
    notes: list[str]
    placement: str = CPU
    cpu_because: str | None = None  # why a supported op still runs on the CPU

    @property
    def supported(self) -> bool:
        return not self.reasons

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.op.index,
            "op": self.op.name,
            "edgetpu_op": self.rule.coral_name if self.rule else None,
            "min_runtime": self.rule.min_runtime if self.rule else None,
            "output": self.op.outputs[0].describe() if self.op.outputs else None,
            "supported": self.supported,
            "placement": self.placement,
            "reasons": self.reasons,
            "cpu_because": self.cpu_because,
            "notes": self.notes,
        }


@dataclass(frozen=True)
class CompatReport:
    model: str
    verdicts: list[OpVerdict]
    segment: tuple[int, int] | None  # first and last op index on the Edge TPU
    fallback_index: int | None  # the unsupported op from which everything runs on the CPU
    subgraph_count: int
    notes: list[str] = field(default_factory=list)

    @property
    def ops_on_edgetpu(self) -> int:
        return sum(v.placement == EDGETPU for v in self.verdicts)

    @property
    def first_unsupported(self) -> OpVerdict | None:
        return next((v for v in self.verdicts if not v.supported), None)

    @property
    def fallback(self) -> OpVerdict | None:
        """The unsupported op where the Edge TPU run ends and the CPU takes over for good."""
        return None if self.fallback_index is None else self.verdicts[self.fallback_index]

    def to_dict(self) -> dict[str, Any]:
        def brief(verdict: OpVerdict | None) -> dict[str, Any] | None:
            return None if verdict is None else {"index": verdict.op.index, "op": verdict.op.name,
                                                 "reasons": verdict.reasons}

        return {
            "model": self.model,
            "ops_total": len(self.verdicts),
            "ops_on_edgetpu": self.ops_on_edgetpu,
            "ops_on_cpu": len(self.verdicts) - self.ops_on_edgetpu,
            "edgetpu_segment": None if self.segment is None else {"first": self.segment[0], "last": self.segment[1]},
            "first_unsupported": brief(self.first_unsupported),
            "fallback_at": brief(self.fallback),
            "subgraphs": self.subgraph_count,
            "notes": self.notes,
            "ops": [v.to_dict() for v in self.verdicts],
        }


def check_model(path: str | Path) -> CompatReport:
    """Judge every op of the main subgraph and place it on the Edge TPU or the CPU."""
    graph = load_graph(Path(path))
    judged = [_judge(op) for op in graph.ops]
    start, stop = _edgetpu_run(judged)
    placed = [_place(v, (start, stop), judged) for v in judged]
    return CompatReport(model=str(path), verdicts=placed, segment=(start, stop - 1) if stop > start else None,
                        fallback_index=stop if stop < len(judged) else None,
                        subgraph_count=graph.subgraph_count, notes=_model_notes(placed, graph.subgraph_count))


def _judge(op: OpInfo) -> OpVerdict:
    rule = RULES.get(op.name)
    reasons = [] if rule else [f"{op.name} is not in the Edge TPU's supported operations"]
    reasons += _dtype_reasons(op) + _shape_reasons(op)
    if rule and rule.limits and not _has_dynamic_shape(op):
        reasons += rule.limits(op)
    notes = [rule.note] if rule and rule.note else []
    return OpVerdict(op=op, rule=rule, reasons=reasons, notes=notes)


def _tensors_with_roles(op: OpInfo) -> list[tuple[str, TensorInfo]]:
    return [("input", t) for t in op.inputs] + [("output", t) for t in op.outputs]


def _dtype_reasons(op: OpInfo) -> list[str]:
    """Activations and weights must be 8-bit quantized; int32/int64 is fine only for constants."""
    unquantized, wrong_type = [], []
    for role, tensor in _tensors_with_roles(op):
        label = f"{'constant' if tensor.constant else role} '{tensor.name}'"
        if tensor.dtype in EIGHT_BIT and not tensor.quantized:
            unquantized.append(label)
        elif tensor.dtype in CONSTANT_INDEX_DTYPES and not tensor.constant:
            wrong_type.append(f"{label} is {tensor.dtype} computed at run time (e.g. a shape from a dynamic batch)")
        elif tensor.dtype not in EIGHT_BIT + CONSTANT_INDEX_DTYPES:
            wrong_type.append(f"{label} is {tensor.dtype}")
    reasons = [f"not int8/uint8 quantized: {', '.join(wrong_type)}"] if wrong_type else []
    if unquantized:
        reasons.append(f"no quantization parameters: {', '.join(unquantized)}")
    return reasons


def _has_dynamic_shape(op: OpInfo) -> bool:
    return any(-1 in t.signature[1:] for _, t in _tensors_with_roles(op) if not t.constant)


def _shape_reasons(op: OpInfo) -> list[str]:
    """Static sizes (a dynamic batch alone is tolerated) and at most 3 dimensions larger than 1."""
    dynamic, too_many_dims = [], []
    for role, tensor in _tensors_with_roles(op):
        if tensor.constant:
            continue
        if -1 in tensor.signature[1:]:
            dynamic.append(f"{role} '{tensor.name}' {tensor.describe()}")
        elif any(d > 1 for d in tensor.shape[:-MAX_LARGE_DIMS]):
            too_many_dims.append(f"{role} '{tensor.name}' {tensor.describe()}")
    reasons = []
    if dynamic:
        reasons.append(f"dynamic shape (give the model a fixed input size): {', '.join(dynamic)}")
    if too_many_dims:
        reasons.append(f"more than {MAX_LARGE_DIMS} dimensions larger than 1 (batch must be 1): "
                       f"{', '.join(too_many_dims)}")
    return reasons


def _is_input_quantize(verdict: OpVerdict) -> bool:
    """A QUANTIZE from a float tensor: the CPU converts a float model input, then the Edge TPU starts."""
    op = verdict.op
    return op.name == "QUANTIZE" and bool(op.inputs) and op.inputs[0].dtype.startswith("float")


def _edgetpu_run(judged: list[OpVerdict]) -> tuple[int, int]:
    """[start, stop): the ops the compiler maps; from `stop` on, everything runs on the CPU."""
    start = next((i for i, v in enumerate(judged) if not _is_input_quantize(v)), len(judged))
    stop = next((i for i in range(start, len(judged)) if not judged[i].supported), len(judged))
    return start, stop


def _place(verdict: OpVerdict, run: tuple[int, int], judged: list[OpVerdict]) -> OpVerdict:
    start, stop = run
    if start <= verdict.op.index < stop:
        return replace(verdict, placement=EDGETPU)
    if not verdict.supported:
        return verdict
    return replace(verdict, cpu_because=f"after #{stop} {judged[stop].op.name}: the compiler maps a single "
                                        "Edge TPU segment, everything after the first unsupported op runs on the CPU")


def _model_notes(placed: list[OpVerdict], subgraph_count: int) -> list[str]:
    notes = []
    activations = [t for v in placed for _, t in _tensors_with_roles(v.op) if not t.constant]
    if any(t.signature[:1] == (-1,) for t in activations):
        notes.append("the batch dimension is dynamic (-1); the model is compiled at its stored shape (batch 1)")
    if subgraph_count > 1:
        notes.append(f"the model has {subgraph_count} subgraphs; only the main one is checked "
                     "(ops that call other subgraphs are unsupported)")
    runtimes = [v.rule.min_runtime for v in placed if v.placement == EDGETPU and v.rule and v.rule.min_runtime]
    if runtimes:
        notes.append(f"needs Edge TPU runtime {max(runtimes)} or newer (see min_runtime per op)")
    return notes
