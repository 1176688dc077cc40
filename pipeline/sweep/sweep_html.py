"""`report.html` of a sweep: one self-contained page (the nightly's style and escaping, plots as data: URIs)."""
from __future__ import annotations

from pipeline.nightly.html_report import STYLE, details, escape, failure_list, image
from pipeline.sweep import pareto_plots, sweep_table, sweep_text
from pipeline.sweep.evidence import STAGE_TITLES, evidence_lines
from pipeline.sweep.sweep_report import SweepReport

PARETO_CLASS = "pareto"
HOW = ' class="how"'  # the description column reads as text: left-aligned
SWEEP_STYLE = STYLE + "tr.pareto td:first-child { font-weight: bold; } .how { text-align: left; }\n"


def _table(report: SweepReport) -> str:
    head = "".join(f"<th{HOW if title == sweep_table.DESCRIPTION else ''}>{escape(title)}</th>"
                   for title in sweep_table.headers(report))
    rows = []
    for row in report.variants:
        cells = sweep_table.row_cells(report, row)
        css = f' class="{PARETO_CLASS}"' if report.fronts(row.name) else ""
        rows.append(f"<tr{css}><td>{escape(cells[0])}</td><td{HOW}>{escape(cells[1])}</td>"
                    + "".join(f"<td>{escape(cell)}</td>" for cell in cells[2:]) + "</tr>")
    return (f"<table><tr>{head}</tr>{''.join(rows)}</table>"
            f"<p class=\"muted\">{escape(sweep_text.legend(report))}</p>")


def _plots(report: SweepReport) -> str:
    images = [image(png, f"top-1 vs median latency on {device}") for device in report.devices
              if (png := pareto_plots.latency_plot(report, device))]
    size = pareto_plots.size_plot(report)
    images += [image(size, "top-1 vs gzip size")] if size else []
    return f"<h2>Pareto fronts</h2><div class=\"plots\">{''.join(images) or 'no measured variants'}</div>"


def _evidence(report: SweepReport) -> str:
    parts = []
    for entry in report.evidence:
        for stage, metrics in entry.stages.items():
            items = "".join(f"<li>{escape(line)}</li>" for line in evidence_lines(stage, metrics))
            parts.append(f"<h3>{escape(STAGE_TITLES[stage])}: {escape(entry.variant)} "
                         f"(run {escape(entry.run)})</h3><ul>{items}</ul>")
    return "<h2>Evidence per method</h2>" + ("".join(parts) or "<p>no compression stage did any work</p>")


def render(report: SweepReport) -> str:
    title = sweep_text.title(report)
    body = [f"<h1>{escape(title)}</h1>", _table(report), failure_list(report.failures), _plots(report),
            _evidence(report), details("Sweep run", report.sweep)]
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{SWEEP_STYLE}</style></head><body>\n" + "\n".join(part for part in body if part)
            + "\n</body></html>\n")
