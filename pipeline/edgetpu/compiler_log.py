"""Parse what `edgetpu_compiler -s` prints (and its `<name>_edgetpu.log`): how many ops it mapped.

The compiler prints a summary ("Total number of operations: 7", and when some ops stay on the
CPU "Number of operations that will run on Edge TPU: 5") and an operator table with one line per
(op, status): "CONV_2D   3   Mapped to Edge TPU".
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

MAPPED_STATUS = "Mapped to Edge TPU"
VERSION_RE = re.compile(r"Edge TPU Compiler version (\S+)")
TOTAL_RE = re.compile(r"Total number of operations:\s*(\d+)")
ON_EDGETPU_RE = re.compile(r"Number of operations that will run on Edge TPU:\s*(\d+)")
SUBGRAPHS_RE = re.compile(r"Number of Edge TPU subgraphs:\s*(\d+)")
TABLE_HEADER_RE = re.compile(r"^Operator\s+Count\s+Status\s*$")
TABLE_ROW_RE = re.compile(r"^([A-Z][A-Z0-9_]*)\s+(\d+)\s+(\S.*?)\s*$")


@dataclass(frozen=True)
class OperatorLine:
    op: str
    count: int
    status: str


@dataclass(frozen=True)
class CompilerLog:
    compiler_version: str | None
    ops_total: int
    ops_on_edgetpu: int
    subgraphs: int | None
    operators: list[OperatorLine]

    @property
    def ops_on_cpu(self) -> int:
        return self.ops_total - self.ops_on_edgetpu

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ops_on_cpu": self.ops_on_cpu}


def parse_compiler_log(text: str) -> CompilerLog | None:
    """The counts in the compiler's output, or None when it has neither a total nor an operator table."""
    operators = _operator_table(text)
    table_total = sum(line.count for line in operators)
    table_mapped = sum(line.count for line in operators if line.status == MAPPED_STATUS)
    total = _int(TOTAL_RE, text)
    if total is None and not operators:
        return None
    ops_total = total if total is not None else table_total
    on_edgetpu = _int(ON_EDGETPU_RE, text)
    if on_edgetpu is None:
        # The compiler omits the split when every op is mapped; the table still has it.
        on_edgetpu = table_mapped if operators else ops_total
    version = VERSION_RE.search(text)
    return CompilerLog(
        compiler_version=version.group(1) if version else None,
        ops_total=ops_total,
        ops_on_edgetpu=on_edgetpu,
        subgraphs=_int(SUBGRAPHS_RE, text),
        operators=operators,
    )


def _operator_table(text: str) -> list[OperatorLine]:
    rows: list[OperatorLine] = []
    in_table = False
    for line in text.splitlines():
        if TABLE_HEADER_RE.match(line.strip()):
            in_table = True
            continue
        match = TABLE_ROW_RE.match(line.strip()) if in_table else None
        if match:
            rows.append(OperatorLine(match.group(1), int(match.group(2)), match.group(3)))
    return rows


def _int(pattern: re.Pattern[str], text: str) -> int | None:
    match = pattern.search(text)
    return int(match.group(1)) if match else None
