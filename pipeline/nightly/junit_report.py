"""`junit.xml`: one testcase per device x variant x metric, so CI shows a regression as a failed test.

Only a model regression is a <failure> (its message holds the numbers); a slower device, or a change
on history alone that no A/B confirmed, passes with a warning in its <system-out>; a metric with no
baseline (or not enough history) yet is <skipped>; an improvement passes with a note; a device that
could not benchmark a variant is an <error>.
Model-level metrics (size, host accuracy) are measured on the host: their device is `host`.
"""
from __future__ import annotations

import xml.etree.ElementTree as ElementTree

from pipeline.core.safe_text import one_line, xml_chars
from pipeline.nightly import text
from pipeline.nightly.report import VERDICT_FAILED, NightlyReport
from pipeline.results import Finding
from pipeline.results.ab_test import DEVICE_SLOWER, MODEL_REGRESSION, UNCONFIRMED
from pipeline.results.regression import NO_BASELINE, NOT_ENOUGH_HISTORY

WARNINGS = {DEVICE_SLOWER: "warning: device slower, not a model regression: ",
            UNCONFIRMED: "warning: slower on history alone, not confirmed by an A/B: "}

SUITE_NAME = "nightly"
HOST_DEVICE = "host"


def _case(suite: ElementTree.Element, device: str, variant: str, name: str) -> ElementTree.Element:
    classname = f"{SUITE_NAME}.{one_line(device)}.{one_line(variant)}"
    return ElementTree.SubElement(suite, "testcase", classname=classname, name=one_line(name))


def _strip_forbidden(root: ElementTree.Element) -> None:
    """Drop what XML 1.0 forbids from every text and attribute (ElementTree escapes <, & and quotes but
    writes a control character as it is, and one of them makes CI discard the whole file)."""
    for element in root.iter():
        element.text = None if element.text is None else xml_chars(element.text)
        for key, value in element.attrib.items():
            element.set(key, xml_chars(value))


def _add_finding(suite: ElementTree.Element, finding: Finding) -> str | None:
    """The testcase of one finding; returns its outcome tag (failure / skipped) or None for a pass."""
    series, verdict = finding.series, finding.verdict
    case = _case(suite, series.device or HOST_DEVICE, series.variant, finding.comparison.metric)
    line = text.finding_line(finding)
    if verdict == MODEL_REGRESSION:
        ElementTree.SubElement(case, "failure", type="regression", message=line).text = line
        return "failure"
    if verdict in (NO_BASELINE, NOT_ENOUGH_HISTORY):
        ElementTree.SubElement(case, "skipped", message=f"{verdict.replace('-', ' ')}: {line}")
        return "skipped"
    ElementTree.SubElement(case, "system-out").text = WARNINGS.get(verdict, f"{verdict}: ") + line
    return None


def render(report: NightlyReport) -> str:
    run = report.run
    suite = ElementTree.Element("testsuite", name=f"{SUITE_NAME} run {run['id']} ({run['name']})",
                                timestamp=run["started_at"] or "", hostname=run["host"] or "")
    outcomes = [_add_finding(suite, finding) for finding in report.findings]
    for failure in report.failures:
        case = _case(suite, failure.device, failure.variant, "benchmark")
        ElementTree.SubElement(case, "error", type="benchmark-failed", message=failure.reason).text = failure.reason
        outcomes.append("error")
    if report.verdict == VERDICT_FAILED:
        case = ElementTree.SubElement(suite, "testcase", classname=SUITE_NAME, name="run completed")
        ElementTree.SubElement(case, "error", type="run-failed", message=text.verdict_line(report))
        outcomes.append("error")
    suite.set("tests", str(len(outcomes)))
    for tag, attribute in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
        suite.set(attribute, str(outcomes.count(tag)))
    _strip_forbidden(suite)
    ElementTree.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(suite, encoding="unicode") + "\n"
