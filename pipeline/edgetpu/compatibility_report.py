"""The compatibility report as a table for people (the JSON form is `CompatReport.to_dict`)."""
from __future__ import annotations

from pipeline.edgetpu.compatibility import EDGETPU, CompatReport, OpVerdict

HEADERS = ("#", "op", "output", "supported", "runs on", "why")
MAX_WHY = 110  # characters of the reason column before it is cut (the JSON keeps everything)


def format_report(report: CompatReport) -> str:
    rows = [HEADERS] + [_row(v) for v in report.verdicts]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS) - 1)]
    lines = [f"Edge TPU compatibility of {report.model}", ""]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)] + [row[-1]]
        lines.append("  ".join(cells).rstrip())
    lines += ["", *summary_lines(report)]
    lines += [f"note: {note}" for note in report.notes]
    return "\n".join(lines)


def summary_lines(report: CompatReport) -> list[str]:
    total = len(report.verdicts)
    lines = [f"{report.ops_on_edgetpu} of {total} ops on the Edge TPU, {total - report.ops_on_edgetpu} on the CPU."]
    if report.segment is not None:
        lines.append(f"Edge TPU segment: ops #{report.segment[0]} to #{report.segment[1]}.")
    first = report.first_unsupported
    if first is not None:
        lines.append(f"First unsupported op: {_describe(first)}")
    fallback = report.fallback
    if fallback is not None and fallback is not first:
        lines.append(f"CPU from: {_describe(fallback)}")
    return lines


def _describe(verdict: OpVerdict) -> str:
    return f"#{verdict.op.index} {verdict.op.name}: {'; '.join(verdict.reasons)}"


def _row(verdict: OpVerdict) -> tuple[str, ...]:
    why = "; ".join(verdict.reasons) or verdict.cpu_because or "; ".join(verdict.notes)
    if len(why) > MAX_WHY:
        why = why[: MAX_WHY - 3] + "..."
    output = verdict.op.outputs[0].describe() if verdict.op.outputs else "-"
    runs_on = "Edge TPU" if verdict.placement == EDGETPU else "CPU"
    return (str(verdict.op.index), verdict.op.name, output, "yes" if verdict.supported else "no", runs_on, why)
