"""`report.html`: one self-contained page (inline CSS, plots as data: URIs, no external resources)."""
from __future__ import annotations

import html

from pipeline.core.marks import MISMATCH
from pipeline.core.safe_text import one_line
from pipeline.nightly import comparison_table as table
from pipeline.nightly import plots, text
from pipeline.nightly.report import Failure, NightlyReport
from pipeline.results import Finding

STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
.verdict { font-size: 1.2em; font-weight: bold; padding: 0.5em; border-radius: 4px; }
.verdict.ok { background: #e3f5e1; } .verdict.regression { background: #fde2e1; }
.verdict.failed { background: #fff1d6; }
.regression { color: #b00020; } .improvement { color: #17792b; }
.device-slower, .unconfirmed { color: #c05600; }
.note { display: block; font-size: 0.8em; } .throttled { color: #c05600; font-size: 0.8em; }
.mismatch { display: block; color: #b00020; font-weight: bold; font-size: 0.8em; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; } .muted { color: #666; }
"""
FINDING_COLUMNS = ("series", "metric", "verdict", "current", "baseline", "change", "change %", "sigmas",
                   "A/B tonight / baseline model", "A/B p", "baseline IQR", "run-to-run spread", "baseline from")


def escape(value: object) -> str:
    """Escaped for HTML text and attributes, as one line without control characters."""
    return html.escape(one_line(value))


def _cell(cell: table.Cell | str) -> str:
    if isinstance(cell, str):
        return f"<td>{escape(cell)}</td>"
    parts = [escape(cell.value)]
    if cell.direction:
        parts.append(f'<span class="note {cell.direction}">{escape(cell.direction)}: {escape(cell.note)}</span>')
    if cell.throttled:
        parts.append('<span class="throttled">&#9888; throttled</span>')
    if cell.mismatch:
        parts.append(f'<span class="mismatch">{MISMATCH}: contradicts the host\'s reference</span>')
    css = f' class="{cell.direction}"' if cell.direction else ""
    return f"<td{css}>{''.join(parts)}</td>"


def _comparison(report: NightlyReport) -> str:
    head = "".join(f"<th>{escape(title)}</th>" for title in table.headers(report))
    rows = "".join("<tr>" + "".join(_cell(c) for c in table.row_cells(row)) + "</tr>"
                   for row in table.comparison_rows(report))
    legend = ("Latency: median / p99 per device. A changed cell shows the change and the baseline's noise "
              "(IQR); &#9888; marks results taken while the device was throttled; MISMATCH marks a result that "
              "contradicts the host's reference (never compared, never a baseline). "
              + escape(text.settings_line(report)))
    return f"<table><tr>{head}</tr>{rows}</table><p class=\"muted\">{legend}</p>"


def _list(title: str, findings: list[Finding], css: str) -> str:
    items = "".join(f'<li class="{css}">{escape(text.finding_line(f))}</li>' for f in findings) or "<li>none</li>"
    return f"<h2>{title}</h2><ul>{items}</ul>"


def image(png: str, alt: str) -> str:
    return f'<img src="data:image/png;base64,{png}" alt="{escape(alt)}">'


def _plots(report: NightlyReport) -> str:
    run_id = report.run["id"]
    trends = "".join(image(plots.latency_trend(t, run_id), f"latency trend {t.series.variant} {t.series.device}")
                     for t in report.trends if t.points)
    tradeoffs = [(device, plots.tradeoffs(report, device)) for device in report.devices]
    tradeoff_html = "".join(image(png, f"accuracy vs latency and size on {device}")
                            for device, png in tradeoffs if png)
    energy_png = plots.energy(report)
    energy = (image(energy_png, "energy per inference") if energy_png else
              "<p>no energy meter: no device reported energy (set energy_meter in the device inventory)</p>")
    band = "shaded: baseline median &plusmn; the latency rule's threshold; dashed lines: change points"
    return (f"<h2>Latency trends</h2><p class=\"muted\">{band}</p><div class=\"plots\">{trends or 'no results'}</div>"
            f"<h2>Accuracy against latency and size</h2><div class=\"plots\">{tradeoff_html or 'no results'}</div>"
            f"<h2>Energy per inference</h2>{energy}")


def _finding_row(finding: Finding) -> str:
    c, unit = finding.comparison, text.metric_unit(finding.comparison.metric)
    ab = finding.ab
    cells = [text.series_name(finding), text.metric_name(c.metric), finding.verdict, text.number(c.current, unit),
             text.number(c.baseline, unit), text.difference(c.change, unit), text.percent(c.ratio),
             text.MISSING if c.sigmas is None else f"{c.sigmas:+.1f}",
             text.MISSING if ab is None else f"{ab.ratio:.3f} ({ab.ratio_low:.3f}-{ab.ratio_high:.3f})",
             text.MISSING if ab is None else text.p_value(ab.p_value), text.number(c.baseline_iqr, unit),
             text.number(c.baseline_spread, unit), finding.baseline_source]
    return f'<tr class="{escape(finding.verdict)}">' + "".join(f"<td>{escape(cell)}</td>" for cell in cells) + "</tr>"


def _all_findings(report: NightlyReport) -> str:
    head = "".join(f"<th>{escape(title)}</th>" for title in FINDING_COLUMNS)
    rows = "".join(_finding_row(f) for f in report.findings)
    return f"<h2>Every check</h2><table><tr>{head}</tr>{rows}</table>"


def details(title: str, fields: dict) -> str:
    """A heading and a two-column table of `fields` (the run's row from the store)."""
    items = "".join(f"<tr><td>{escape(key)}</td><td>{escape(value)}</td></tr>" for key, value in fields.items())
    return f"<h2>{escape(title)}</h2><table>{items}</table>"


def failure_list(failures: list[Failure]) -> str:
    """'Failed benchmarks' with one item per device x variant that failed; empty when none did."""
    if not failures:
        return ""
    items = "".join(f"<li>{escape(f.variant)} on {escape(f.device)}: {escape(f.reason)}</li>" for f in failures)
    return f"<h2>Failed benchmarks</h2><ul>{items}</ul>"


def render(report: NightlyReport) -> str:
    verdict = text.verdict_line(report)
    body = [f'<h1>Nightly run {escape(report.run["id"])}: {escape(report.run["name"])}</h1>',
            f'<p class="verdict {report.verdict}">{escape(verdict)}</p>']
    if report.variants:
        body.append(_comparison(report))
    body += [_list("Model regressions", report.regressions, "regression"),
             _list("Device drift", report.device_drifts, "device-slower"),
             _list("Slower on history alone, not confirmed", report.unconfirmed, "unconfirmed") if report.unconfirmed
             else "",
             _list("Improvements", report.improvements, "improvement"), failure_list(report.failures), _plots(report),
             _all_findings(report), details("Run", report.run)]
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(verdict)}</title>'
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
