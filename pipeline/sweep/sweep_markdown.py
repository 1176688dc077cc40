"""`summary.md` of a sweep: the comparison table, the per-method evidence and what failed (the nightly's escaping)."""
from __future__ import annotations

from pipeline.nightly.markdown_report import escape
from pipeline.sweep import sweep_table, sweep_text
from pipeline.sweep.evidence import STAGE_TITLES, evidence_lines
from pipeline.sweep.sweep_report import SweepReport


def comparison_table(report: SweepReport) -> list[str]:
    titles = [escape(title) for title in sweep_table.headers(report)]
    lines = ["| " + " | ".join(titles) + " |", "|" + " --- |" * len(titles)]
    for row in report.variants:
        lines.append("| " + " | ".join(escape(cell) for cell in sweep_table.row_cells(report, row)) + " |")
    return lines


def render(report: SweepReport) -> str:
    lines = [f"**{escape(sweep_text.title(report))}**", "", *comparison_table(report), "",
             escape(sweep_text.legend(report))]
    if report.failures:
        lines += ["", "**Failed benchmarks**", ""]
        lines += [f"- {escape(f.variant)} on {escape(f.device)}: {escape(f.reason)}" for f in report.failures]
    lines += ["", "**Evidence per method**"]
    for entry in report.evidence:
        for stage, metrics in entry.stages.items():
            lines += ["", f"{escape(STAGE_TITLES[stage])}, {escape(entry.variant)} (run {escape(entry.run)}):", ""]
            lines += [f"- {escape(line)}" for line in evidence_lines(stage, metrics)]
    lines += ["", "Pareto plots: report.html; every number: sweep.json."]
    return "\n".join(lines) + "\n"
