"""The comparison table a reader looks at first: one row per variant, size and accuracy, then latency and
energy per device. Cells carry their change against the baseline (with the noise) so HTML and Markdown
only decide how to draw them."""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.nightly import text
from pipeline.nightly.report import NightlyReport, variant_accuracy
from pipeline.results import Finding
from pipeline.results.ab_test import DEVICE_SLOWER, MODEL_REGRESSION, UNCONFIRMED
from pipeline.results.regression import IMPROVEMENT, REGRESSION

CELL_DIRECTIONS = {MODEL_REGRESSION: REGRESSION, IMPROVEMENT: IMPROVEMENT, DEVICE_SLOWER: DEVICE_SLOWER,
                   UNCONFIRMED: UNCONFIRMED}

NO_METER = "no meter"
NOT_RUN = "not run"


@dataclass(frozen=True)
class Cell:
    value: str
    direction: str | None = None  # regression / improvement / device-slower / unconfirmed, else None
    note: str = ""  # the change and its noise, e.g. "+98.4 %, noise IQR 0.004 ms"
    throttled: bool = False
    mismatch: bool = False  # the result contradicts the host's reference: shown, never compared


@dataclass(frozen=True)
class Row:
    variant: str
    accuracy: Cell
    size: Cell
    gzip: Cell
    sparsity: str
    latency: dict[str, Cell]  # device -> median / p99
    energy: dict[str, Cell]  # device -> mJ per inference


def _cell(value: str, finding: Finding | None, throttled: bool = False) -> Cell:
    if finding is None or finding.verdict not in CELL_DIRECTIONS:
        return Cell(value, throttled=throttled)
    comparison, unit = finding.comparison, text.metric_unit(finding.comparison.metric)
    moved = text.difference(comparison.change, unit) if unit == "fraction" else text.percent(comparison.ratio)
    if finding.ab is not None:
        note = f"{moved}, A/B {text.percent(finding.ab.ratio)}"
    elif comparison.rule.noisy:
        note = f"{moved}, run-to-run sigma {text.sigma(comparison.run_sigma)}"
    else:
        note = f"{moved}, noise IQR {text.number(comparison.baseline_iqr, unit)}"
    return Cell(value, CELL_DIRECTIONS[finding.verdict], note, throttled)


def _device_cells(report: NightlyReport, variant: str, device: str) -> tuple[Cell, Cell]:
    result = report.result(device, variant)
    if result is None:
        return Cell(NOT_RUN), Cell(NOT_RUN)
    throttled = bool(result["throttled"])
    median, p99 = result["latency_median_ms"], result["latency_p99_ms"]
    latency = f"{median:.3f} / {p99:.3f} ms" if p99 is not None else text.number(median, "ms")
    energy_value = result["energy_mj_per_inference"]
    energy = NO_METER if energy_value is None else text.number(energy_value, "mJ")
    if result["mismatch"]:
        return Cell(latency, throttled=throttled, mismatch=True), Cell(energy, throttled=throttled, mismatch=True)
    return (_cell(latency, report.finding(variant, device, "latency_ms"), throttled),
            _cell(energy, report.finding(variant, device, "energy_mj"), throttled))


def comparison_rows(report: NightlyReport) -> list[Row]:
    """float, PTQ int8 and PQAT int8 (as recorded), each with its numbers on every device."""
    rows = []
    for variant in report.variants:
        name = variant["name"]
        accuracy_metric = "int8_accuracy" if variant.get("int8_accuracy") is not None else "float_accuracy"
        cells = {device: _device_cells(report, name, device) for device in report.devices}
        sparsity = variant.get("sparsity")
        rows.append(Row(
            variant=name,
            accuracy=_cell(text.number(variant_accuracy(variant), "fraction"),
                           report.finding(name, None, accuracy_metric)),
            size=_cell(text.number(variant.get("bytes"), "bytes"), report.finding(name, None, "model_bytes")),
            gzip=_cell(text.number(variant.get("gzip_bytes"), "bytes"), report.finding(name, None, "gzip_bytes")),
            sparsity=text.MISSING if sparsity is None else f"{sparsity * 100:.0f} %",
            latency={device: pair[0] for device, pair in cells.items()},
            energy={device: pair[1] for device, pair in cells.items()}))
    return rows


def headers(report: NightlyReport) -> list[str]:
    """Column titles matching `comparison_rows`."""
    return (["variant", "top-1", "size", "gzip size", "sparsity"]
            + [f"{device} median / p99" for device in report.devices]
            + [f"{device} energy / inference" for device in report.devices])


def row_cells(row: Row) -> list[Cell | str]:
    """A row's cells in `headers` order."""
    cells: list[Cell | str] = [row.variant, row.accuracy, row.size, row.gzip, row.sparsity]
    return cells + list(row.latency.values()) + list(row.energy.values())
