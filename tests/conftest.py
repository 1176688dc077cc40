"""Shared test helpers: tiny pipeline configs and CLI runners."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parent.parent


def micro_config(build_dir: Path | str, name: str = "micro", **sections):
    """configs/tiny.toml cut down further, writing under `build_dir`; `sections` override fields."""
    from pipeline.training.config import load_config, validate

    config = load_config(REPO / "configs" / "tiny.toml")
    overrides = {
        "run": {"name": name, "build_dir": str(build_dir)},
        "data": {"train_limit": 600, "test_limit": 200, "validation_size": 100},
        "model": {"width": 0.25},
        # A drawn calibration set is published under the test's folder, never into the repository's.
        "convert": {"calibration": str(REPO / config.convert.calibration), "eval_samples": 20,
                    "calibration_dir": str(Path(build_dir) / "calibration_data")},
    }
    for section, values in sections.items():
        overrides.setdefault(section, {}).update(values)
    for section, values in overrides.items():
        config = dataclasses.replace(config, **{section: dataclasses.replace(getattr(config, section), **values)})
    return validate(config)


def run_cli(*args: str, cwd: Path = REPO, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `python -m pipeline ARGS` as a user would; return the finished process."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


class TimedLog(list):
    """Log lines as a list, with the time.perf_counter() at which each was written in `times`."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def append(self, line: str) -> None:
        self.times.append(time.perf_counter())
        super().append(line)


@pytest.fixture(scope="session")
def micro_run(tmp_path_factory):
    """One complete micro pipeline run shared by the stage tests (about a minute on 2 cores)."""
    from pipeline.training.runner import run_stages

    config = micro_config(tmp_path_factory.mktemp("build"))
    log = TimedLog()
    manifest = run_stages(config, log=log.append)
    return config, manifest, log


def write_toml(config, path: Path) -> Path:
    """Write a PipelineConfig back as TOML (flat sections of str/int/float/bool)."""
    import json

    lines = []
    for field in dataclasses.fields(config):
        if field.name == "source":
            continue
        lines.append(f"[{field.name}]")
        for key, value in dataclasses.asdict(getattr(config, field.name)).items():
            lines.append(f"{key} = {str(value).lower() if isinstance(value, bool) else json.dumps(value)}")
    path.write_text("\n".join(lines) + "\n")
    return path
