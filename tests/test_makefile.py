"""The make targets the README and docs tell users to run exist in the Makefile."""
import os
import re
import subprocess

import pytest

from tests.conftest import REPO

# Under `make test` the parent make's MAKEFLAGS/MAKELEVEL reach us and turn on "Entering directory" lines.
CLEAN_ENV = {key: value for key, value in os.environ.items() if key not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}


def _make(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", *arguments], cwd=REPO, capture_output=True, text=True, timeout=60, env=CLEAN_ENV)


DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# `make <target>` in prose or code; `stage-<name>` placeholders are resolved to one real stage.
TARGETS = sorted({match.replace("<name>", "data") for path in DOCUMENTS
                  for match in re.findall(r"`make ([a-z][a-z0-9-]*(?:<name>)?)", path.read_text())})


def test_documents_name_make_targets():
    assert {"demo", "label-table", "stage-data", "nightly"} <= set(TARGETS)


@pytest.mark.parametrize("target", TARGETS)
def test_documented_make_target_exists(target):
    """`make -n` prints the recipe without running it, and fails on a target the Makefile lacks."""
    done = _make("-n", target)
    assert done.returncode == 0, done.stderr


def test_label_table_target_runs_the_label_table_command():
    done = _make("-n", "label-table")
    assert done.stdout.splitlines()[-1].endswith("-m pipeline label-table")
    assert "make label-table" in _make("help").stdout
