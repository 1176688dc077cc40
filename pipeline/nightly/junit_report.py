"""`junit.xml`: one testcase per device x variant x metric, so CI shows a regression as a failed test.

A regression is a <failure> whose message holds the numbers; a metric with no baseline yet is
<skipped>; an improvement passes with a note; a device that could not benchmark a variant is an <error>.
Model-level metrics (size, host accuracy) are measured on the host: their device is `host`.
"""
from __future__ import annotations

import xml.etree.ElementTree as ElementTree

from pipeline.core.safe_text import one_line, xml_chars
from pipeline.nightly import text
from pipeline.nightly.report import VERDICT_FAILED, NightlyReport
from pipeline.results import Finding
from pipeline.results.regression import IMPROVEMENT, NO_BASELINE, REGRESSION

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
    series, direction = finding.series, finding.comparison.direction
    case = _case(suite, series.device or HOST_DEVICE, series.variant, finding.comparison.metric)
    line = text.finding_line(finding)
    if direction == REGRESSION:
        ElementTree.SubElement(case, "failure", type="regression", message=line).text = line
        return "failure"
    if direction == NO_BASELINE:
        ElementTree.SubElement(case, "skipped", message=f"no baseline yet: {line}")
        return "skipped"
    note = "improvement: " if direction == IMPROVEMENT else "unchanged: "
    ElementTree.SubElement(case, "system-out").text = note + line
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
