"""Makefile variables reach the shell as data: real `make` runs the real recipes with hostile values, the
interpreter replaced by a script that records its argv (`-o setup` keeps make from touching the venv)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
RECORD_ARGV = (f"#!{sys.executable}\nimport json, os, sys\n"
               "open(os.environ['ARGV_OUT'], 'w').write(json.dumps(sys.argv[1:]))\n")


def _make(tmp_path: Path, target: str, variables: dict[str, str], environment: dict[str, str] | None = None) -> list:
    """Run `make TARGET VAR=value...`; return the argv the recipe passed to the Python interpreter."""
    recorder = tmp_path / "python"
    recorder.write_text(RECORD_ARGV)
    recorder.chmod(0o755)
    out = tmp_path / "argv"
    env = {**os.environ, **(environment or {}), "ARGV_OUT": str(out)}
    command = ["make", "-s", "-o", "setup", target, f"VPY={recorder}", *(f"{k}={v}" for k, v in variables.items())]
    subprocess.run(command, cwd=REPO, env=env, check=True, capture_output=True, text=True, timeout=60)
    return json.loads(out.read_text())


def _hostile(marker: Path) -> dict[str, str]:
    """Values that run `touch marker` if make or the shell interprets them."""
    return {
        "RUN": f"x'; touch {marker}; echo '",
        "DEVICE": f"$(shell touch {marker})",
        "MODEL": f'm"; touch {marker}; "',
        "SAMPLES": f"`touch {marker}` $(touch {marker})",
    }


def test_bench_passes_every_value_as_one_argument_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "injected"
    values = _hostile(marker)
    argv = _make(tmp_path, "bench", values)
    assert argv == ["-m", "pipeline", "bench", "--device", values["DEVICE"], "--run", values["RUN"],
                    "--model", values["MODEL"], "--samples", values["SAMPLES"]]
    assert not marker.exists()


def test_values_from_the_environment_are_frozen_too(tmp_path: Path) -> None:
    marker = tmp_path / "injected"
    argv = _make(tmp_path, "deploy", {}, environment=_hostile(marker))
    assert argv[argv.index("--run") + 1] == _hostile(marker)["RUN"] and not marker.exists()


@pytest.mark.parametrize("target, variable, position", [
    ("demo", "CONFIG", 4), ("stage-data", "CONFIG", 4), ("bench-pipeline", "CONFIG", 4),
    ("edgetpu-check", "MODEL", 3), ("nightly", "NIGHTLY_CONFIG", 4), ("bench-results", "COUNT", 4)])
def test_each_target_quotes_its_variable(tmp_path: Path, target: str, variable: str, position: int) -> None:
    marker = tmp_path / "injected"
    value = f"a b'\"; touch {marker} #$(shell touch {marker})"
    argv = _make(tmp_path, target, {variable: value})
    assert argv[position] == value and not marker.exists()


def test_defaults_still_apply(tmp_path: Path) -> None:
    assert _make(tmp_path, "bench", {}) == ["-m", "pipeline", "bench", "--device", "local", "--run", "demo"]
    assert _make(tmp_path, "stage-data", {}) == ["-m", "pipeline", "data", "--config", "configs/demo.toml"]
