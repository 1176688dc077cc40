"""Write one run's report folder, `<reports>/<YYYY-MM-DD>-run<id>/`, all four files or none.

The files are rendered into a temporary folder that is renamed into place, so a reader (or a
nightly killed half-way) never sees a half-written report.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.core.artifacts import atomic_dir
from pipeline.core.folders import writing_into
from pipeline.nightly import html_report, json_report, junit_report, markdown_report
from pipeline.nightly.report import NightlyReport

FIX = "make the reports folder writable and free some space, or choose another with reports_dir / --reports"
FOLDER_MODE = 0o755  # reports are often served as they are; mkdtemp makes 0700
PUBLISHERS: dict[str, Callable[[NightlyReport], str]] = {
    "report.html": html_report.render,
    "summary.md": markdown_report.render,
    "junit.xml": junit_report.render,
    "report.json": json_report.render,
}


def report_folder(reports_dir: Path, report: NightlyReport) -> Path:
    """The run's start date (UTC) and its store id: unique per run, sorted by night."""
    return reports_dir / f"{(report.run['started_at'] or '')[:10]}-run{report.run['id']}"


@contextmanager
def staged_report(report: NightlyReport, reports_dir: str | Path) -> Iterator[Path]:
    """Render every format and write it into a temporary folder, run the block, then rename the folder into
    place. The nightly marks its run complete inside the block: a run whose report could not be rendered or
    written is never complete, and an error in the block leaves no report folder behind."""
    folder = report_folder(Path(reports_dir), report)
    rendered = {name: render(report) for name, render in PUBLISHERS.items()}  # fail before touching the disk
    with writing_into(reports_dir, FIX), atomic_dir(folder) as tmp:
        for name, content in rendered.items():
            (tmp / name).write_text(content, encoding="utf-8")
        os.chmod(tmp, FOLDER_MODE)
        yield folder


def publish(report: NightlyReport, reports_dir: str | Path) -> Path:
    """Render every format and move the folder into place in one rename; return its path."""
    with staged_report(report, reports_dir) as folder:
        return folder
