"""The zipapp the host uploads: deterministic bytes (content-addressed by sha256), runnable as one
file, and made only of agent code that a Python 3.9 device with numpy and a runtime can import.
"""
from __future__ import annotations

import ast
import hashlib
import os
import subprocess
import sys
import zipfile

from pipeline.devices.bundle import AGENT_PACKAGE, build_agent_zipapp

PYTHON39 = (3, 9)
ALLOWED_THIRD_PARTY = {"numpy"}  # runtimes are imported by name through importlib, never statically


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_building_twice_gives_identical_bytes(tmp_path):
    first = build_agent_zipapp(tmp_path / "a" / "agent.pyz")
    for source in AGENT_PACKAGE.glob("*.py"):  # new timestamps must not change the archive
        os.utime(source)
    (tmp_path / "b").mkdir()
    second = build_agent_zipapp(tmp_path / "b")  # a folder: the file goes inside as agent.pyz
    assert second == tmp_path / "b" / "agent.pyz"
    assert _sha256(first) == _sha256(second)


def test_archive_holds_only_sorted_sources_with_fixed_dates(tmp_path):
    archive = build_agent_zipapp(tmp_path / "agent.pyz")
    assert archive.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    with zipfile.ZipFile(archive) as bundle:
        names = bundle.namelist()
        assert names[0] == "__main__.py" and names[1:] == sorted(names[1:])
        assert all(name.endswith(".py") and "__pycache__" not in name for name in names)
        assert {"edge_agent/cli.py", "edge_agent/meters.py"} <= set(names)
        assert {info.date_time for info in bundle.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_the_zipapp_runs_as_one_file(tmp_path):
    archive = build_agent_zipapp(tmp_path / "agent.pyz")
    done = subprocess.run([sys.executable, str(archive), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "--energy-meter" in done.stdout and "--delegate" in done.stdout
    version = subprocess.run([str(archive), "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("edge_agent ")


def _imported_top_level_modules(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_agent_sources_are_python39_stdlib_and_numpy_only():
    for source in sorted(AGENT_PACKAGE.glob("*.py")):
        text = source.read_text()
        tree = ast.parse(text, filename=str(source), feature_version=PYTHON39)
        outside = _imported_top_level_modules(tree) - set(sys.stdlib_module_names) - ALLOWED_THIRD_PARTY
        assert outside <= {"__future__"}, f"{source.name} imports {outside}"
        if source.name not in ("__init__.py", "__main__.py"):
            assert "from __future__ import annotations" in text, source.name
