"""Write a sweep's report folder, `<reports>/sweep-<YYYY-MM-DD>/`, all three files or none.

A second sweep on the same day gets `sweep-<date>-2/` (then -3, ...) instead of replacing the first: a sweep
takes up to an hour of measurements, and the earlier report is the evidence someone may already have quoted.
The files are rendered first, written into a temporary folder and renamed into place, so no reader sees
a half-written report and two sweeps never take the same name.
"""
from __future__ import annotations

import errno
import itertools
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from pipeline.core.artifacts import TMP_PREFIX
from pipeline.core.folders import writing_into
from pipeline.nightly.publish import FIX, FOLDER_MODE
from pipeline.sweep import sweep_html, sweep_markdown
from pipeline.sweep.sweep_report import SweepReport


def render_json(report: SweepReport) -> str:
    return json.dumps(report.to_json(), indent=2, sort_keys=True, default=str) + "\n"


PUBLISHERS: dict[str, Callable[[SweepReport], str]] = {
    "report.html": sweep_html.render,
    "summary.md": sweep_markdown.render,
    "sweep.json": render_json,
}


def _free_name(reports_dir: Path, report: SweepReport) -> Iterator[Path]:
    """`sweep-<date>` (the sweep's UTC start date), then `sweep-<date>-2`, `-3`, ..."""
    base = f"sweep-{(report.sweep['started_at'] or '')[:10]}"
    yield reports_dir / base
    for number in itertools.count(2):
        yield reports_dir / f"{base}-{number}"


def publish(report: SweepReport, reports_dir: str | Path) -> Path:
    """Render every format, write them into a temporary folder, and rename it to the first free name; return it.

    A rename onto a folder another sweep has just filled fails (ENOTEMPTY/EEXIST), so the next name is
    tried: no lock is needed, and a nightly writing its own report into the same folder never blocks a sweep."""
    rendered = {name: render(report) for name, render in PUBLISHERS.items()}  # fail before touching the disk
    reports = Path(reports_dir)
    with writing_into(reports, FIX):
        reports.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}sweep.", dir=reports))
        try:
            for name, content in rendered.items():
                (tmp / name).write_text(content, encoding="utf-8")
            os.chmod(tmp, FOLDER_MODE)
            for folder in _free_name(reports, report):
                if folder.exists() and any(folder.iterdir()):
                    continue
                try:
                    os.rename(tmp, folder)
                except OSError as error:
                    if error.errno in (errno.ENOTEMPTY, errno.EEXIST):
                        continue
                    raise
                return folder
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    raise AssertionError("unreachable: the names never run out")
