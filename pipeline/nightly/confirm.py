"""Back-to-back confirmation of suspicious series: the nightly's second look before it blames a model.

For every device x variant whose latency or energy looked worse than its history could explain, the
baseline night's model (kept by content, `kept_models`) and tonight's model run interleaved on that
device, in one agent process (`benchmark_ab`). The paired test decides whether tonight's model is slower
(`model-regression`); when it is not, but the baseline model itself ran slower than on the baseline
nights, the device is slower tonight (`device-slower`, with the device's state as evidence). Series that
did not look worse are never re-run, so the A/B costs time only when something looks wrong.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.devices import Baseline, DeviceProfile, benchmark_ab, failure_reason, run_on_devices
from pipeline.nightly import kept_models
from pipeline.nightly.device_evidence import device_evidence
from pipeline.results import Finding, Observation, ResultsStore, Series, compare
from pipeline.results.ab_test import ABTest, night_verdict, paired_test
from pipeline.results.check import BaselineChoice, baseline_of
from pipeline.results.queries import result_document

# metric -> how to read its per-round values from one side of the agent's A/B document
ROUND_VALUES: dict[str, Callable[[dict[str, Any]], list[list[float]] | None]] = {
    "latency_ms": lambda side: side.get("round_samples_ms"),
    "energy_mj": lambda side: None if side.get("round_energy_mj") is None else [[v] for v in side["round_energy_mj"]],
}


@dataclass(frozen=True)
class ABRequest:
    """Everything one A/B needs: where, which two models, and the night it belongs to."""

    profile: DeviceProfile
    tonight: tuple[Path, Path]  # model and samples
    run_name: str
    rounds: int


class Confirmation:
    """Runs the A/Bs of one night and rewrites the verdicts of the findings they concern."""

    def __init__(self, store: ResultsStore, run_id: int, choice: BaselineChoice, models_dir: str,
                 log: Callable[[str], None]):
        self.store, self.run_id, self.choice, self.models_dir, self.log = store, run_id, choice, models_dir, log

    def confirm(self, findings: list[Finding], requests: dict[tuple[str, str], ABRequest],
                benchmark_seconds: dict[str, float]) -> list[Finding]:
        """`findings` with the verdicts of suspicious device series replaced by what their A/B says."""
        suspicious = {f.series for f in findings if f.comparison.suspicious}
        outcomes = {}
        for series in sorted(suspicious, key=lambda s: (s.device or "", s.variant)):
            if series.device is None:  # size and accuracy are deterministic: never re-run
                continue
            request = requests.get((series.device, series.variant))
            trigger = next(f for f in findings if f.series == series and f.comparison.suspicious)
            outcomes[series] = self._run(series, trigger, request, benchmark_seconds.get(series.variant))
        return [self.judge(f, *outcomes[f.series]) if f.series in outcomes and f.comparison.rule.noisy else f
                for f in findings]

    def _baseline_files(self, series: Series, baseline_run: int) -> tuple[Path, Path] | str:
        sha = next((v["sha256"] for v in self.store.variants(baseline_run) if v["name"] == series.variant), None)
        kept = kept_models.find(self.models_dir, sha) if sha else None
        return kept or f"the model of baseline run {baseline_run} was not kept in {self.models_dir}"

    def _run(self, series: Series, trigger: Finding, request: ABRequest | None,
             benchmark_s: float | None) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """The A/B document (None if it could not run) and the evidence to attach."""
        baseline_run = trigger.comparison.baseline_runs[-1]
        evidence: dict[str, Any] = {"baseline_run": baseline_run, "benchmark_seconds": benchmark_s,
                                    "baseline_night": device_evidence(result_document(self.store.db, baseline_run,
                                                                                      series))}
        files = self._baseline_files(series, baseline_run)
        if request is None or isinstance(files, str):
            evidence["ab_not_run"] = files if isinstance(files, str) else "tonight's model files are unknown"
            self.log(f"no A/B for {series.variant} on {series.device}: {evidence['ab_not_run']}")
            return None, evidence
        self.log(f"A/B {series.variant} on {series.device}: tonight's model against run {baseline_run}'s, "
                 f"{request.rounds} rounds")
        started = time.monotonic()
        results = run_on_devices([request.profile], *request.tonight, request.run_name,
                                 benchmark_ab(Baseline(*files, rounds=request.rounds)))
        evidence["ab_seconds"] = round(time.monotonic() - started, 3)
        device = request.profile.name
        if results.failed:
            evidence["ab_not_run"] = failure_reason(device, results.failed[device])
            self.log(f"A/B {series.variant} on {device} failed: {evidence['ab_not_run']}")
            return None, evidence
        return results.succeeded[device], evidence

    def judge(self, finding: Finding, document: dict[str, Any] | None, evidence: dict[str, Any]) -> Finding:
        """One finding with the A/B's verdict (or its history verdict and the reason no A/B decided)."""
        rule, metric = finding.comparison.rule, finding.comparison.metric
        a_rounds = b_rounds = None
        if document is not None:
            a_rounds, b_rounds = (ROUND_VALUES[metric](document["ab"][side]) for side in ("a", "b"))
        if a_rounds is None or b_rounds is None:
            reason = evidence.get("ab_not_run") or f"the device measured no {metric} per round"
            return dataclasses.replace(finding, evidence={**evidence, "ab_not_run": reason})
        evidence = {**evidence, "tonight": device_evidence(document)}
        ab = paired_test(rule, a_rounds, b_rounds)
        baseline = baseline_of(self.store, finding.series, metric, self.run_id, self.choice)
        pooled_b = float(np.median(np.concatenate([np.asarray(r, float) for r in b_rounds])))
        tonight_b = compare(metric, baseline, Observation(self.run_id, pooled_b), rule)
        verdict = night_verdict(finding.comparison, ab, tonight_b)
        self._log_ab(finding, ab, verdict)
        return dataclasses.replace(finding, verdict=verdict, ab=ab, baseline_model_tonight=tonight_b,
                                   evidence=evidence)

    def _log_ab(self, finding: Finding, ab: ABTest, verdict: str) -> None:
        self.log(f"A/B {finding.series.variant} on {finding.series.device} {finding.comparison.metric}: "
                 f"tonight / baseline model {ab.ratio:.3f} [{ab.ratio_low:.3f}, {ab.ratio_high:.3f}], "
                 f"p {ab.p_value:.2g} over {ab.rounds} rounds: {verdict}")
