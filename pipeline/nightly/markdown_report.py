"""`summary.md`: short enough for a chat message or a CI comment; the verdict is its first line."""
from __future__ import annotations

import re

from pipeline.core.marks import MISMATCH
from pipeline.core.safe_text import one_line
from pipeline.nightly import comparison_table as table
from pipeline.nightly import text
from pipeline.nightly.report import NightlyReport
from pipeline.results import Finding

THROTTLED = "throttled"
# What starts Markdown (or GitHub) inline markup: code, emphasis, links, table cells, strikethrough, math;
# '_' only at a word's edge (inside a word it is plain text), '<' only before a tag, '&' only in an entity,
# so ordinary text such as ai_edge_litert or "p < 1e-300" stays readable in the raw file.
MARKUP = re.compile(r"[\\`*\[\]|~$]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])|<(?=[A-Za-z/!?])|&(?=#?[A-Za-z0-9]+;)")


def escape(value: str) -> str:
    """One line with every markup character backslash-escaped: a name cannot add a link, an image, HTML
    or a table column, nor end the line (CommonMark lets any ASCII punctuation be escaped)."""
    return MARKUP.sub(lambda match: "\\" + match.group(0), one_line(value))


def _cell(cell: table.Cell | str) -> str:
    if isinstance(cell, str):
        return escape(cell)
    shown = f"**{escape(cell.value)}**" if cell.direction else escape(cell.value)
    notes = [f"{cell.direction}: {cell.note}"] if cell.direction else []
    notes += [THROTTLED] if cell.throttled else []
    shown += f" **{MISMATCH}**" if cell.mismatch else ""
    return shown + (f" ({escape('; '.join(notes))})" if notes else "")


def comparison_table(report: NightlyReport) -> list[str]:
    titles = [escape(title) for title in table.headers(report)]
    lines = ["| " + " | ".join(titles) + " |", "|" + " --- |" * len(titles)]
    for row in table.comparison_rows(report):
        lines.append("| " + " | ".join(_cell(cell) for cell in table.row_cells(row)) + " |")
    return lines


def _section(title: str, findings: list[Finding]) -> list[str]:
    return ["", f"**{title}**", ""] + ([f"- {escape(text.finding_line(f))}" for f in findings] or ["- none"])


def render(report: NightlyReport) -> str:
    lines = [f"**{escape(text.verdict_line(report))}**", ""]
    if report.variants:
        lines += comparison_table(report)
    lines += _section("Model regressions", report.regressions)
    lines += _section("Device drift", report.device_drifts)
    if report.unconfirmed:
        lines += _section("Slower on history alone, not confirmed", report.unconfirmed)
    lines += _section("Improvements", report.improvements)
    if report.failures:
        lines += ["", "**Failed benchmarks**", ""]
        lines += [f"- {escape(failure.variant)} on {escape(failure.device)}: {escape(failure.reason)}"
                  for failure in report.failures]
    if report.without_baseline:
        lines += ["", f"{len(report.without_baseline)} metric(s) had no baseline yet (not judged)."]
    lines += ["", f"Latency cells: median / p99. {escape(text.settings_line(report))} "
                  f"{escape(text.ab_cost_line(report))}Details and plots: report.html; every number: report.json."]
    return "\n".join(lines) + "\n"
