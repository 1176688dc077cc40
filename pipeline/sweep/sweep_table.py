"""The sweep's comparison table as plain strings: one row per variant, the same cells in the terminal, HTML and
Markdown (each adds its own escaping). Missing numbers are '-', a device without an energy meter says so."""
from __future__ import annotations

from pipeline.core.marks import MISMATCH
from pipeline.core.safe_text import one_line, table_cell
from pipeline.nightly import text
from pipeline.nightly.comparison_table import NO_METER, NOT_RUN
from pipeline.sweep.sweep_report import SweepReport, VariantRow

DESCRIPTION = "how it was made"
NOT_ON_FRONT = "-"


def _count(value: int | None) -> str:
    return text.MISSING if value is None else f"{value:,}"


def _ratio(value: float | None) -> str:
    return text.MISSING if value is None else f"{value:.2f}x"


def headers(report: SweepReport, with_description: bool = True) -> list[str]:
    """Column titles matching `row_cells`."""
    devices = report.devices
    return (["variant"] + ([DESCRIPTION] if with_description else [])
            + ["parameters", "MACs", "top-1 (test set)", "bytes", "gzip bytes"]
            + [f"{d} median / p99" for d in devices] + [f"{d} energy / inference" for d in devices]
            + [f"{d} speed-up vs {report.baseline}" for d in devices]
            + [f"{d} speed-up, interleaved A/B" for d in devices]
            + [f"size vs {report.baseline}", f"gzip vs {report.baseline}", "Pareto front"])


def _latency(report: SweepReport, device: str, name: str) -> str:
    measured = report.measurement(device, name)
    if measured is None or measured.median_ms is None:
        return NOT_RUN
    if measured.p99_ms is None:
        shown = text.number(measured.median_ms, "ms")
    else:
        shown = f"{measured.median_ms:.3f} / {measured.p99_ms:.3f} ms"
    return f"{shown} {MISMATCH}" if measured.mismatch else shown


def _energy(report: SweepReport, device: str, name: str) -> str:
    measured = report.measurement(device, name)
    if measured is None:
        return NOT_RUN
    shown = NO_METER if measured.energy_mj is None else text.number(measured.energy_mj, "mJ")
    return f"{shown} {MISMATCH}" if measured.mismatch else shown


def _interleaved(report: SweepReport, device: str, name: str) -> str:
    measured = report.interleaved_speedup(device, name)
    if measured is None:
        return text.MISSING
    return f"{measured.speedup:.2f}x ({measured.low:.2f}-{measured.high:.2f})"


def row_cells(report: SweepReport, row: VariantRow, with_description: bool = True) -> list[str]:
    """A variant's cells in `headers` order."""
    devices, name = report.devices, row.name
    return ([name] + ([row.description] if with_description else [])
            + [_count(row.params), _count(row.macs), text.number(row.accuracy, "fraction"), _count(row.bytes),
               _count(row.gzip_bytes)]
            + [_latency(report, d, name) for d in devices] + [_energy(report, d, name) for d in devices]
            + [_ratio(report.speedup(d, name)) for d in devices]
            + [_interleaved(report, d, name) for d in devices]
            + [_ratio(report.size_ratio(name)), _ratio(report.size_ratio(name, "gzip_bytes")),
               ", ".join(report.fronts(name)) or NOT_ON_FRONT])


def format_table(report: SweepReport) -> str:
    """An aligned terminal table (names cut and cleaned of escapes), then how each variant was made."""
    rows = [headers(report, False)] + [row_cells(report, v, False) for v in report.variants]
    rows = [[table_cell(cell) for cell in row] for row in rows]
    widths = [max(len(row[index]) for row in rows) for index in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) if index == 0 else cell.rjust(width)
                       for index, (cell, width) in enumerate(zip(row, widths, strict=True))).rstrip() for row in rows]
    return "\n".join(lines + [""] + [f"{table_cell(v.name)}: {one_line(v.description)}" for v in report.variants])
