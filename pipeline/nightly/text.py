"""Numbers and sentences shared by every report format, so HTML, Markdown and JUnit say the same thing."""
from __future__ import annotations

from pipeline.nightly.report import VERDICT_FAILED, VERDICT_REGRESSION, NightlyReport
from pipeline.results import Finding

MISSING = "-"
# metric -> (what a reader calls it, unit kind)
METRICS = {
    "latency_ms": ("median latency", "ms"),
    "energy_mj": ("energy per inference", "mJ"),
    "accuracy": ("top-1 on device", "fraction"),
    "float_accuracy": ("float model top-1", "fraction"),
    "int8_accuracy": ("int8 model top-1", "fraction"),
    "model_bytes": ("file size", "bytes"),
    "gzip_bytes": ("gzip size", "bytes"),
}


def number(value: float | None, unit: str, signed: bool = False) -> str:
    """A value in its unit: '0.258 ms', '90.50 %', '15,792 B'; signed, a change: '+0.012 ms', '-1.50 points'."""
    if value is None:
        return MISSING
    sign = "+" if signed else ""
    if unit == "fraction":  # accuracies are fractions; a change in them is in percentage points
        return f"{value * 100:{sign}.2f} {'points' if signed else '%'}"
    if unit == "bytes":
        return f"{value:{sign},.0f} B"
    return f"{value:{sign}.3f} {unit}"


def difference(value: float | None, unit: str) -> str:
    return number(value, unit, signed=True)


def percent(ratio: float | None) -> str:
    return MISSING if ratio is None else f"{(ratio - 1) * 100:+.1f} %"


def p_value(value: float | None) -> str:
    if value is None:
        return "not tested"
    return f"{value:.2g}" if value > 0 else "< 1e-300"  # the test's p underflows for large, clear shifts


def metric_name(metric: str) -> str:
    return METRICS.get(metric, (metric, ""))[0]


def metric_unit(metric: str) -> str:
    return METRICS.get(metric, (metric, ""))[1]


def series_name(finding: Finding) -> str:
    """'<variant> on local (litert+xnnpack)', or just the variant for model-level metrics."""
    series = finding.series
    return series.variant if series.device is None else f"{series.variant} on {series.device} ({series.runtime})"


def noise(finding: Finding) -> str:
    """The baseline's own variation, shown next to every change."""
    comparison, unit = finding.comparison, metric_unit(finding.comparison.metric)
    runs = ", ".join(str(run) for run in comparison.baseline_runs)
    return (f"noise: baseline IQR {number(comparison.baseline_iqr, unit)}, run-to-run spread "
            f"{number(comparison.baseline_spread, unit)} ({finding.baseline_source}; baseline runs {runs})")


def change(finding: Finding) -> str:
    """'0.512 ms vs 0.258 ms baseline: +0.254 ms (+98.4 %, ratio 1.984, p 2e-80)'."""
    comparison, unit = finding.comparison, metric_unit(finding.comparison.metric)
    if comparison.baseline is None:
        return f"{number(comparison.current, unit)}, no baseline yet"
    ratio = MISSING if comparison.ratio is None else f"{comparison.ratio:.3f}"
    return (f"{number(comparison.current, unit)} vs {number(comparison.baseline, unit)} baseline: "
            f"{difference(comparison.change, unit)} ({percent(comparison.ratio)}, ratio {ratio}, "
            f"p {p_value(comparison.p_value)})")


def finding_line(finding: Finding) -> str:
    """One finding in one line: what, how much, how sure, how noisy, and whether the device was throttled."""
    throttled = " [device throttled during this run]" if finding.comparison.current_throttled else ""
    judged = f"; {noise(finding)}" if finding.comparison.baseline is not None else ""
    return f"{series_name(finding)}: {metric_name(finding.comparison.metric)} {change(finding)}{judged}{throttled}"


def _settings(result: dict) -> str:
    runtime = f"{result['runtime']} {result['runtime_version'] or ''}".rstrip()
    threads = result["threads"]
    return runtime if threads is None else f"{runtime}, {threads} thread{'' if threads == 1 else 's'}"


def settings_line(report: NightlyReport) -> str:
    """How each device ran tonight: runtime, version and threads, so a changed setting is visible
    next to the change it caused (threads are not part of a series: fewer threads is a regression)."""
    seen = dict.fromkeys(f"{result['device']}: {_settings(result)}" for result in report.results)
    return "Ran with " + "; ".join(seen) + "." if seen else ""


def _count(items: list, word: str) -> str:
    return f"{len(items)} {word}{'' if len(items) == 1 else 's'}"


def verdict_line(report: NightlyReport) -> str:
    """The first line a reader sees: REGRESSION / OK / FAILED, with counts."""
    run = report.run
    what = f"nightly run {run['id']} ({run['name']}, {(run['started_at'] or '')[:10]})"
    if report.verdict == VERDICT_FAILED:
        return f"FAILED: {what} did not complete: {report.error or 'the run failed'}"
    counts = f"{_count(report.regressions, 'regression')}, {_count(report.improvements, 'improvement')}"
    failed = f", {_count(report.failures, 'failed benchmark')}" if report.failures else ""
    head = "REGRESSION" if report.verdict == VERDICT_REGRESSION else "OK"
    return f"{head}: {what}: {counts}{failed}"
