"""Hostile names through every output: the report's four files (both store backends), its plots and the
terminal tables. Strings come from where an attacker or a clumsy user controls them: the device name,
runtime and hostname a board reports, the run name stored in the database, a failure reason.
Each output is parsed back (xml.etree, html.parser, a CommonMark parser) and checked, not just searched."""
from __future__ import annotations

import html.parser
import itertools
import json
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from pipeline.core.safe_text import one_line, xml_chars
from pipeline.devices.result_table import format_table
from pipeline.errors import UserError
from pipeline.nightly.plots import label
from pipeline.nightly.publish import publish
from pipeline.nightly.report import Failure, build_report
from pipeline.results import ResultsStore, VariantRecord, check_run
from pipeline.results.listing import format_results
from pipeline.testing.synthetic import benchmark_document

pytest_plugins = ["tests.postgres_fixtures"]

HOSTILE = {
    "markdown": "**bold** [link](http://evil.example) ![img](http://evil.example/x.png) | extra | `code` _x_",
    "html": "<script>alert(1)</script><img src=x onerror=alert(2)>&amp;\"'",
    "xml_invalid": "dev\x01\x08\x0b\x0c\x1b[31mRED\x1b[0m\x7f\ufffe",  # NUL: see the last test
    "mathtext": "$\\alpha$ $x^$ a_b^c \\frac{1}{0} \\",  # an even number of $: matplotlib parses it
    "newline": "line1\nline2\r\n- injected item\n# heading",
    "long": "L" * 5000,
}
DEVICE_BY_KIND = {kind: f"d{index}-{text}" for index, (kind, text) in enumerate(HOSTILE.items())}
SHA = "ab" * 32
_databases = itertools.count()
CONTROL = {chr(code) for code in range(32)} | {"\x7f"}


def _store_url(backend: str, folder: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return str(folder / "results.db")
    return request.getfixturevalue("postgres_server").create_database(f"hostile_{next(_databases)}")


@pytest.fixture(scope="module", params=("sqlite", "postgresql"))
def hostile_report(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two nights whose devices, runtimes, hostnames and run names are the hostile strings (so trends,
    findings, tables and every plot carry them), and a failed benchmark with a hostile reason."""
    folder = tmp_path_factory.mktemp("hostile")
    url = _store_url(request.param, folder, request)
    with ResultsStore.open(url) as store:
        for night in range(2):
            name = HOSTILE["markdown"] + HOSTILE["newline"] if night else "n0"
            with store.recording(name, kind="nightly", variants=[VariantRecord("float", SHA, 20_000, 15_000, None,
                                                                               float_accuracy=0.9)]) as run_id:
                for index, (kind, device) in enumerate(DEVICE_BY_KIND.items()):
                    document = benchmark_document(device=device, model_sha256=SHA, accuracy=0.9,
                                                  samples=[1.0 + index + night * 0.5] * 5 + [1.1 + index] * 5,
                                                  runtime=HOSTILE[kind], energy_windows_mj=[0.5, 0.6])
                    document["hostname"] = HOSTILE[kind]
                    store.record_benchmark(run_id, "float", document, device=device)
        failures = [Failure(device, "float", HOSTILE[kind] + "\x00") for kind, device in DEVICE_BY_KIND.items()]
        report = build_report(store, run_id, devices=list(DEVICE_BY_KIND.values()),
                              findings=check_run(store, run_id), failures=failures,
                              error=HOSTILE["html"] + HOSTILE["xml_invalid"])
    return publish(report, folder / "reports")


def test_junit_stays_valid_xml_and_keeps_every_testcase(hostile_report: Path) -> None:
    raw = (hostile_report / "junit.xml").read_text(encoding="utf-8")
    suite = ElementTree.fromstring(raw.encode("utf-8"))  # raises on any character XML 1.0 forbids
    cases = suite.findall("testcase")
    assert len(cases) == int(suite.get("tests")) > len(DEVICE_BY_KIND)
    assert int(suite.get("errors")) == len(DEVICE_BY_KIND)  # every failed benchmark is its own <error>
    for case in cases:
        assert not CONTROL & set(case.get("classname") + case.get("name"))
    messages = [error.get("message") for error in suite.iter("error")]
    assert any("<script>alert(1)</script>" in message for message in messages)  # escaped, parsed back intact
    assert not any("\x1b" in message or "\x00" in message for message in messages)


class _Tags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_has_no_injected_markup_and_shows_the_names_as_text(hostile_report: Path) -> None:
    parser = _Tags()
    parser.feed((hostile_report / "report.html").read_text(encoding="utf-8"))
    tags = {tag for tag, _ in parser.tags}
    assert "script" not in tags and "a" not in tags
    assert all(attrs["src"].startswith("data:image/png;base64,") for tag, attrs in parser.tags if tag == "img")
    assert not any("onerror" in attrs for _, attrs in parser.tags)
    text = "".join(parser.text)
    assert "<script>alert(1)</script>" in text and "**bold** [link](http://evil.example)" in text
    assert not CONTROL & set(text) - {"\n"}  # no control character in the page's text, newlines only from markup


def test_summary_markdown_renders_no_link_image_html_or_extra_column(hostile_report: Path) -> None:
    markdown_it = pytest.importorskip("markdown_it")
    summary = (hostile_report / "summary.md").read_text(encoding="utf-8")
    assert not CONTROL & set(summary) - {"\n"}
    rendered = markdown_it.MarkdownIt("commonmark").enable("table").render(summary)
    parser = _Tags()
    parser.feed(rendered)
    tags = {tag for tag, _ in parser.tags}
    assert not tags & {"a", "img", "script", "code", "h1", "em"}, tags
    rows = [attrs for tag, attrs in parser.tags if tag == "tr"]
    header_cells = summary.splitlines()[2].count(" | ") + 1
    assert rows and all(line.count("|") - line.count("\\|") == header_cells + 1
                        for line in summary.splitlines() if line.startswith("| "))
    text = "".join(parser.text)
    assert "**bold** [link](http://evil.example)" in text and "<script>alert(1)</script>" in text
    items = [line for line in summary.splitlines() if line.startswith("- ")]
    assert not any(line.startswith("- injected") for line in items)  # a newline cannot start a list item


def test_json_keeps_the_strings_exactly(hostile_report: Path) -> None:
    document = json.loads((hostile_report / "report.json").read_text(encoding="utf-8"))
    assert {result["device"] for result in document["results"]} == set(DEVICE_BY_KIND.values())
    assert {failure["reason"] for failure in document["failures"]} == {text + "\x00" for text in HOSTILE.values()}


def test_every_plot_renders_with_mathtext_and_very_long_labels(hostile_report: Path) -> None:
    page = (hostile_report / "report.html").read_text(encoding="utf-8")
    assert page.count('alt="latency trend') == len(DEVICE_BY_KIND)
    assert 'alt="energy per inference"' in page


@pytest.mark.parametrize("name", list(HOSTILE.values()))
def test_plot_labels_are_one_short_line_with_every_dollar_escaped(name: str) -> None:
    shown = label(name)
    assert "\n" not in shown and len(shown) <= 48
    assert shown.count("$") == shown.count("\\$")  # matplotlib sees no unescaped $, so no mathtext at all


def _terminal_lines(table: str, rows: int) -> list[str]:
    lines = table.split("\n")
    assert len(lines) == rows + 1  # one line per row, plus the header
    assert not CONTROL & set(table) - {"\n"}
    return lines


def test_bench_table_keeps_one_line_per_device_without_escape_sequences() -> None:
    documents = []
    for text in HOSTILE.values():
        document = benchmark_document(device=text, model_sha256=SHA, samples=[1.0, 1.1], runtime=text)
        document["delegate"] = HOSTILE["xml_invalid"]
        documents.append(document)
    lines = _terminal_lines(format_table(documents), len(documents))
    assert all(len(line) < 300 for line in lines)  # the 5000-character name is cut


def test_results_listing_keeps_one_line_per_result(tmp_path: Path) -> None:
    with ResultsStore.open(str(tmp_path / "results.db")) as store:
        with store.recording(HOSTILE["newline"] + HOSTILE["xml_invalid"], kind="manual") as run_id:
            for kind, text in HOSTILE.items():
                store.record_benchmark(run_id, "float", benchmark_document(
                    device=DEVICE_BY_KIND[kind], model_sha256=SHA, samples=[1.0], runtime=text),
                    device=DEVICE_BY_KIND[kind])
        rows = store.results()
    _terminal_lines(format_results(rows), len(HOSTILE))


def test_one_line_and_xml_chars() -> None:
    assert one_line("a\x1b[31mred\x1b[0m\nb\x00c\u202ed\x1b]0;title\x07e") == "ared b?c?de"
    assert one_line("x" * 100, 10) == "xxxxxxx..."
    assert xml_chars("a\x00b\x1bc\nd\ufffe") == "a?b?c\nd?"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
@pytest.mark.parametrize("field", ["device", "hostname"])
def test_a_nul_character_from_a_board_is_refused_the_same_on_both_backends(
        backend: str, field: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """PostgreSQL text cannot hold NUL; SQLite can. The store refuses it on both with one line, so the nightly
    fails that one benchmark instead of the whole run (and both backends hold the same data)."""
    with ResultsStore.open(_store_url(backend, tmp_path, request)) as store:
        run_id = store.begin_run("nul", kind="manual")
        document = benchmark_document(device="pi", model_sha256=SHA, samples=[1.0])
        document[field] = "pi\x00evil"
        with pytest.raises(UserError, match=f"field '{field}' must be a non-empty string without NUL"):
            store.record_benchmark(run_id, "float", document, device="pi")
        store.record_benchmark(run_id, "float", benchmark_document(device="pi", model_sha256=SHA, samples=[1.0]),
                               device="pi")
        assert len(store.results(statuses=("running",))) == 1
