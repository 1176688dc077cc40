"""`report.json`: the whole report for machines: run, variants, results, findings, failures and trends."""
from __future__ import annotations

import json

from pipeline.nightly.report import NightlyReport


def render(report: NightlyReport) -> str:
    return json.dumps(report.to_json(), indent=2, sort_keys=True, default=str) + "\n"
