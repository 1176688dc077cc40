"""Numbers and sentences shared by every report format, so HTML, Markdown and JUnit say the same thing."""
from __future__ import annotations

from pipeline.nightly.device_evidence import evidence_line
from pipeline.nightly.report import VERDICT_DEVICE, VERDICT_FAILED, VERDICT_REGRESSION, NightlyReport
from pipeline.results import Finding
from pipeline.results.ab_test import DEVICE_SLOWER

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


def sigma(value: float | None) -> str:
    """A relative run-to-run sigma: '2.1 %'."""
    return MISSING if value is None else f"{value * 100:.1f} %"


def noise(finding: Finding) -> str:
    """The baseline's own variation, shown next to every change."""
    comparison, unit = finding.comparison, metric_unit(finding.comparison.metric)
    runs = ", ".join(str(run) for run in comparison.baseline_runs)
    spread = f"run-to-run spread {number(comparison.baseline_spread, unit)}"
    if comparison.rule.noisy:
        spread = f"run-to-run sigma {sigma(comparison.run_sigma)}, {spread}"
    return f"noise: {spread} ({finding.baseline_source}; baseline runs {runs})"


def change(finding: Finding) -> str:
    """'0.512 ms vs 0.258 ms baseline: +0.254 ms (+98.4 %, ratio 1.984, 12.3 sigmas)'."""
    comparison, unit = finding.comparison, metric_unit(finding.comparison.metric)
    if comparison.baseline is None:
        return f"{number(comparison.current, unit)}, no baseline yet"
    ratio = MISSING if comparison.ratio is None else f"{comparison.ratio:.3f}"
    how_sure = ""
    if comparison.rule.noisy:
        how_sure = (f", {comparison.sigmas:+.1f} sigmas" if comparison.sigmas is not None
                    else f", not enough history: {len(comparison.baseline_runs)} baseline run(s)")
    return (f"{number(comparison.current, unit)} vs {number(comparison.baseline, unit)} baseline: "
            f"{difference(comparison.change, unit)} ({percent(comparison.ratio)}, ratio {ratio}{how_sure})")


def ab_summary(finding: Finding) -> str:
    """What the back-to-back A/B found, or why there was none; empty for series that needed none."""
    ab, unit = finding.ab, metric_unit(finding.comparison.metric)
    if ab is None:
        reason = finding.evidence.get("ab_not_run")
        return f"; no A/B: {reason}" if reason else ""
    coverage = 1 - 2 * (finding.comparison.rule.alpha or 0.0)
    line = (f"; A/B over {ab.rounds} rounds: tonight's model / baseline model {ab.ratio:.3f} ({percent(ab.ratio)}, "
            f"{coverage * 100:.0f} % interval {ab.ratio_low:.3f}-{ab.ratio_high:.3f}, p {p_value(ab.p_value)})")
    tonight = finding.baseline_model_tonight
    if tonight is not None and tonight.current is not None:
        line += (f"; baseline model tonight {number(tonight.current, unit)} vs {number(tonight.baseline, unit)} "
                 f"on the baseline nights ({percent(tonight.ratio)})")
    if finding.verdict == DEVICE_SLOWER:
        evidence = finding.evidence
        line += f"; device, run {evidence.get('baseline_run')} -> tonight: " + evidence_line(
            evidence.get("baseline_night") or {}, evidence.get("tonight") or {})
    return line


def finding_line(finding: Finding) -> str:
    """One finding in one line: what, how much, how sure, how noisy, the A/B, and whether the device was throttled."""
    throttled = " [device throttled during this run]" if finding.comparison.current_throttled else ""
    judged = f"; {noise(finding)}" if finding.comparison.baseline is not None else ""
    return (f"{series_name(finding)}: {metric_name(finding.comparison.metric)} {change(finding)}{judged}"
            f"{ab_summary(finding)}{throttled}")


def _settings(result: dict) -> str:
    runtime = f"{result['runtime']} {result['runtime_version'] or ''}".rstrip()
    threads = result["threads"]
    return runtime if threads is None else f"{runtime}, {threads} thread{'' if threads == 1 else 's'}"


def settings_line(report: NightlyReport) -> str:
    """How each device ran tonight: runtime, version and threads, so a changed setting is visible
    next to the change it caused (threads are not part of a series: fewer threads is a regression)."""
    seen = dict.fromkeys(f"{result['device']}: {_settings(result)}" for result in report.results)
    return "Ran with " + "; ".join(seen) + "." if seen else ""


def ab_cost_line(report: NightlyReport) -> str:
    """How long the back-to-back A/Bs took next to one benchmark of the same variant (empty when none ran)."""
    timed = {f.series: f.evidence for f in report.findings if f.evidence.get("ab_seconds") is not None}
    if not timed:
        return ""
    parts = [f"{series.variant} on {series.device} {evidence['ab_seconds']:.1f} s (its benchmark: "
             f"{evidence.get('benchmark_seconds') or 0:.1f} s)" for series, evidence in timed.items()]
    return f"Back-to-back A/B: {'; '.join(parts)}. "


def _count(items: list, word: str) -> str:
    return f"{len(items)} {word}{'' if len(items) == 1 else 's'}"


def verdict_line(report: NightlyReport) -> str:
    """The first line a reader sees: REGRESSION (a model) / DEVICE SLOWER / OK / FAILED, with counts."""
    run = report.run
    what = f"nightly run {run['id']} ({run['name']}, {(run['started_at'] or '')[:10]})"
    if report.verdict == VERDICT_FAILED:
        return f"FAILED: {what} did not complete: {report.error or 'the run failed'}"
    counts = (f"{_count(report.regressions, 'model regression')}, {_count(report.device_drifts, 'device drift')}, "
              f"{_count(report.improvements, 'improvement')}")
    failed = f", {_count(report.failures, 'failed benchmark')}" if report.failures else ""
    head = {VERDICT_REGRESSION: "REGRESSION", VERDICT_DEVICE: "DEVICE SLOWER"}.get(report.verdict, "OK")
    return f"{head}: {what}: {counts}{failed}"
