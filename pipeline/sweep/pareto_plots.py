"""The sweep's Pareto plots as base64 PNG (the nightly's plot helpers): top-1 against median latency per device,
and top-1 against gzip size; the non-dominated variants are marked and joined, the front taken from the
report (computed from the measured numbers)."""
from __future__ import annotations

from matplotlib.figure import Figure

from pipeline.nightly.plots import BASELINE_COLOR, CURRENT_COLOR, LINE_COLOR, annotated, label, png
from pipeline.sweep.sweep_report import SweepReport

PARETO_SIZE = (5.2, 3.8)  # inches
KIB = 1024


def _plot(points: dict[str, tuple[float, float]], front: list[str], baseline: str, title: str, xlabel: str) -> str:
    """Every measured variant as a point, the front in red and joined by a line in cost order, the baseline ringed."""
    figure = Figure(figsize=PARETO_SIZE, layout="constrained")
    axes = figure.subplots()
    names = list(points)
    annotated(axes, [points[n][0] for n in names], [points[n][1] for n in names], names, color=LINE_COLOR,
              label="variant")
    on_front = sorted((points[n] for n in front if n in points), key=lambda point: point[0])
    axes.plot([x for x, _ in on_front], [y for _, y in on_front], color=CURRENT_COLOR, marker="o", markersize=8,
              linewidth=1.2, label="Pareto front (not dominated)", zorder=3)
    if baseline in points:
        axes.scatter([points[baseline][0]], [points[baseline][1]], s=180, facecolors="none", edgecolors=BASELINE_COLOR,
                     linewidths=1.5, label=f"baseline {label(baseline)}", zorder=4)
    axes.set(title=title, xlabel=xlabel, ylabel="top-1 on the test set (%)")
    axes.title.set_fontsize(9)
    axes.margins(0.25)  # room for the variant names
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="best")
    return png(figure)


def latency_plot(report: SweepReport, device: str) -> str | None:
    """Top-1 against median latency on `device`; None when no variant has both numbers there."""
    points = {}
    for v in report.variants:
        measured = report.measurement(device, v.name)
        if v.accuracy is not None and measured is not None and measured.median_ms is not None:
            points[v.name] = (measured.median_ms, v.accuracy * 100)
    if not points:
        return None
    return _plot(points, report.latency_front(device), report.baseline,
                 f"top-1 vs median latency on {label(device)}", "median latency (ms)")


def size_plot(report: SweepReport) -> str | None:
    """Top-1 against gzip size; None when no variant has both numbers."""
    points = {v.name: (v.gzip_bytes / KIB, v.accuracy * 100) for v in report.variants
              if v.accuracy is not None and v.gzip_bytes is not None}
    if not points:
        return None
    return _plot(points, report.size_front(), report.baseline, "top-1 vs gzip size", "gzip size (KiB)")
