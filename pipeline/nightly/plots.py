"""The report's plots as base64 PNG, so report.html needs no other file (matplotlib, Agg backend)."""
from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")  # no display on a nightly machine; set before anything draws

from matplotlib.figure import Figure  # noqa: E402 - after choosing the backend

from pipeline.core.safe_text import one_line  # noqa: E402
from pipeline.nightly.report import NightlyReport, Trend, variant_accuracy  # noqa: E402

DPI = 100
TREND_SIZE = (4.6, 3.0)  # inches
TRADEOFF_SIZE = (9.2, 3.4)
LABEL_LIMIT = 48  # characters of a name in a plot: a very long one would make a huge image
CURRENT_COLOR, BASELINE_COLOR, THROTTLED_COLOR, LINE_COLOR = "#d62728", "#2ca02c", "#ff7f0e", "#1f77b4"
CHANGE_COLOR = "#9467bd"


def label(name: object) -> str:
    """A name as plot text: one short line, `$` escaped so matplotlib does not parse it as mathtext
    (an unbalanced `$\\alpha` or `$x^$` would make the whole report fail)."""
    return one_line(name, LABEL_LIMIT).replace("$", r"\$")


def png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _baseline_band(axes, trend: Trend) -> None:
    """The baseline median and the rule's no-alarm band around it (median +- threshold)."""
    comparison = trend.finding.comparison if trend.finding else None
    if comparison is None or comparison.baseline is None:
        return
    base, threshold = comparison.baseline, comparison.rule.threshold
    axes.axhspan(base * (1 - threshold), base * (1 + threshold), color=BASELINE_COLOR, alpha=0.15,
                 label=f"baseline {base:.3f} ms ±{threshold * 100:g} %")
    axes.axhline(base, color=BASELINE_COLOR, linewidth=1)
    in_baseline = [i for i, p in enumerate(trend.points) if p.run_id in comparison.baseline_runs]
    axes.scatter(in_baseline, [trend.points[i].value for i in in_baseline], s=70, facecolors="none",
                 edgecolors=BASELINE_COLOR, label="baseline runs", zorder=3)


def latency_trend(trend: Trend, current_run: int) -> str:
    """Median latency per run for one device x variant x runtime, this run in red, throttled runs and change
    points marked."""
    figure = Figure(figsize=TREND_SIZE)
    axes = figure.subplots()
    positions = list(range(len(trend.points)))
    axes.plot(positions, [p.value for p in trend.points], marker="o", color=LINE_COLOR, zorder=2)
    _baseline_band(axes, trend)
    throttled = [i for i, p in enumerate(trend.points) if p.throttled]
    if throttled:
        axes.scatter(throttled, [trend.points[i].value for i in throttled], marker="x", s=80, color=THROTTLED_COLOR,
                     label="throttled", zorder=4)
    for number, index in enumerate(i for i, p in enumerate(trend.points) if p.run_id in trend.change_points):
        axes.axvline(index - 0.5, color=CHANGE_COLOR, linestyle="--", linewidth=1,
                     label="change point" if number == 0 else None)
    current = [i for i, p in enumerate(trend.points) if p.run_id == current_run]
    axes.scatter(current, [trend.points[i].value for i in current], s=60, color=CURRENT_COLOR, label="this run",
                 zorder=5)
    axes.set_xticks(positions, [str(p.run_id) for p in trend.points], fontsize=7, rotation=90)
    series = trend.series
    axes.set(title=f"{label(series.variant)} on {label(series.device)}\n{label(series.runtime)}", xlabel="run",
             ylabel="median latency (ms)")
    axes.title.set_fontsize(9)
    axes.legend(fontsize=7, loc="best")
    axes.grid(alpha=0.3)
    return png(figure)


def annotated(axes, xs: list[float], ys: list[float], names: list[str], **style) -> None:
    axes.scatter(xs, ys, **style)
    for x, y, name in zip(xs, ys, names, strict=True):
        axes.annotate(label(name), (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)


def tradeoffs(report: NightlyReport, device: str) -> str | None:
    """Top-1 against median latency on `device`, and top-1 against file and gzip size; None if nothing ran."""
    top1 = {v["name"]: accuracy * 100 for v in report.variants if (accuracy := variant_accuracy(v)) is not None}
    timed = [(r["variant"], r["latency_median_ms"]) for r in report.results
             if r["device"] == device and r["variant"] in top1 and not r["mismatch"]]  # a mismatch is no point
    if not timed:
        return None
    figure = Figure(figsize=TRADEOFF_SIZE, layout="constrained")
    left, right = figure.subplots(1, 2)
    names = [name for name, _ in timed]
    annotated(left, [ms for _, ms in timed], [top1[n] for n in names], names, color=LINE_COLOR)
    left.set(title=f"top-1 vs median latency on {label(device)}", xlabel="median latency (ms)", ylabel="top-1 (%)")
    sized = [v for v in report.variants if v["bytes"] and v["name"] in top1]
    annotated(right, [v["bytes"] / 1024 for v in sized], [top1[v["name"]] for v in sized], [v["name"] for v in sized],
               color=LINE_COLOR, label="file")
    gzipped = [v for v in sized if v["gzip_bytes"]]
    right.scatter([v["gzip_bytes"] / 1024 for v in gzipped], [top1[v["name"]] for v in gzipped],
                  marker="s", color=BASELINE_COLOR, label="gzip")
    for v in gzipped:  # a line from each file size to its gzip size: what sparsity saves on the wire
        right.plot([v["bytes"] / 1024, v["gzip_bytes"] / 1024], [top1[v["name"]]] * 2, color="#999",
                   linewidth=0.8, zorder=1)
    right.set(title="top-1 vs size", xlabel="size (KiB)", ylabel="top-1 (%)")
    right.legend(fontsize=8)
    for axes in (left, right):
        axes.margins(0.2)  # room for the variant names
        axes.grid(alpha=0.3)
        axes.title.set_fontsize(9)
    return png(figure)


def energy(report: NightlyReport) -> str | None:
    """Energy per inference per device and variant; None when no result has an energy value (no meter)."""
    measured = [r for r in report.results if r["energy_mj_per_inference"] is not None and not r["mismatch"]]
    if not measured:
        return None
    figure = Figure(figsize=TREND_SIZE)
    axes = figure.subplots()
    labels = [f"{label(r['variant'])}\n{label(r['device'])}" for r in measured]
    colors = [THROTTLED_COLOR if r["throttled"] else LINE_COLOR for r in measured]
    axes.bar(range(len(measured)), [r["energy_mj_per_inference"] for r in measured], color=colors)
    axes.set_xticks(range(len(measured)), labels, fontsize=7)
    axes.set(title="energy per inference (orange: throttled)", ylabel="mJ / inference")
    axes.title.set_fontsize(9)
    axes.grid(alpha=0.3, axis="y")
    return png(figure)
