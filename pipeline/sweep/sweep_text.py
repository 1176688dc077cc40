"""Sentences every sweep report format shares, so the terminal, HTML and Markdown say the same thing."""
from __future__ import annotations

from pipeline.sweep.sweep_report import SweepReport


def title(report: SweepReport) -> str:
    """'Compression sweep 12 (2026-11-28): 8 variants on local; 0 failed benchmarks'."""
    run = report.sweep
    failed = len(report.failures)
    return (f"Compression sweep {run['id']} ({(run['started_at'] or '')[:10]}): {len(report.variants)} variants on "
            f"{', '.join(report.devices)}; {failed} failed benchmark{'' if failed == 1 else 's'}")


def _settings(report: SweepReport) -> str:
    seen = dict.fromkeys(f"{m.device}: {m.runtime}, {m.threads} thread{'' if m.threads == 1 else 's'}"
                         for m in report.measurements)
    return "; ".join(seen) or "nothing ran"


def _rounds(report: SweepReport) -> str:
    return "/".join(sorted({str(i.rounds) for i in report.interleaved})) or "no"


def legend(report: SweepReport) -> str:
    """How to read the table: where the numbers come from and what the ratios compare."""
    return (f"Top-1: the whole test set on the host (int8 variants through LiteRT). Latency: median / p99 through "
            f"the device agent, every variant with the same settings ({_settings(report)}), one benchmark per "
            f"variant and device in this sweep. Speed-up: {report.baseline}'s median latency / the variant's on the "
            f"same device; interleaved A/B: the variant and {report.baseline} alternating in one agent process for "
            f"{_rounds(report)} rounds, the median of the per-round speed-ups and its interval (drift hits both "
            f"alike); size and gzip: the variant's bytes / {report.baseline}'s (below 1 is smaller). Parameters "
            f"and MACs are counted from the .tflite graph. Pareto front: not beaten in both top-1 and median latency "
            f"(per device) or gzip size by another variant of this sweep.")
