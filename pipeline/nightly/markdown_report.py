"""`summary.md`: short enough for a chat message or a CI comment; the verdict is its first line."""
from __future__ import annotations

from pipeline.nightly import comparison_table as table
from pipeline.nightly import text
from pipeline.nightly.report import NightlyReport
from pipeline.results import Finding

THROTTLED = "throttled"


def _escape(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def _cell(cell: table.Cell | str) -> str:
    if isinstance(cell, str):
        return _escape(cell)
    shown = f"**{cell.value}**" if cell.direction else cell.value
    notes = [f"{cell.direction}: {cell.note}"] if cell.direction else []
    notes += [THROTTLED] if cell.throttled else []
    return _escape(shown + (f" ({'; '.join(notes)})" if notes else ""))


def comparison_table(report: NightlyReport) -> list[str]:
    titles = table.headers(report)
    lines = ["| " + " | ".join(titles) + " |", "|" + " --- |" * len(titles)]
    for row in table.comparison_rows(report):
        lines.append("| " + " | ".join(_cell(cell) for cell in table.row_cells(row)) + " |")
    return lines


def _section(title: str, findings: list[Finding]) -> list[str]:
    return ["", f"**{title}**", ""] + ([f"- {text.finding_line(f)}" for f in findings] or ["- none"])


def render(report: NightlyReport) -> str:
    lines = [f"**{text.verdict_line(report)}**", ""]
    if report.variants:
        lines += comparison_table(report)
    lines += _section("Model regressions", report.regressions)
    lines += _section("Device drift", report.device_drifts)
    if report.unconfirmed:
        lines += _section("Slower on history alone, not confirmed", report.unconfirmed)
    lines += _section("Improvements", report.improvements)
    if report.failures:
        lines += ["", "**Failed benchmarks**", ""]
        lines += [f"- {failure.variant} on {failure.device}: {_escape(failure.reason)}" for failure in report.failures]
    if report.without_baseline:
        lines += ["", f"{len(report.without_baseline)} metric(s) had no baseline yet (not judged)."]
    lines += ["", f"Latency cells: median / p99. {text.settings_line(report)} {text.ab_cost_line(report)}"
                  "Details and plots: report.html; every number: report.json."]
    return "\n".join(lines) + "\n"
