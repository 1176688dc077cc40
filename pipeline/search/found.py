"""A found model's pipeline config, `configs/found/<study>-<trial>.toml`: the trial's every setting written out
in full (no `extends`), so `python -m pipeline run --config`, a sweep run, `bench` and the nightly use it like
any config, and it rebuilds the model even after the base config changes."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from pipeline.core.artifacts import atomic_path
from pipeline.core.safe_text import one_line
from pipeline.training.config import PipelineConfig, load_config


def _value(value: Any) -> str:
    """A TOML value: JSON's strings and numbers are TOML's too (finite floats only: configs refuse the rest)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, dict):  # an inline table, e.g. an augmentation policy's knobs
        return "{" + ", ".join(f"{json.dumps(key)} = {_value(item)}" for key, item in value.items()) + "}"
    return json.dumps(value)


def config_sections(config: PipelineConfig) -> dict[str, dict[str, Any]]:
    """Every section of a pipeline config as plain values, as written in a config file (what a trial records,
    and a found config holds): `augment` stays the setting, not the policy record a cache key hashes."""
    return {item.name: dataclasses.asdict(getattr(config, item.name))
            for item in dataclasses.fields(config) if item.name != "source"}


def toml_text(sections: dict[str, dict[str, Any]], comment: str) -> str:
    lines = [f"# {one_line(comment)}"]
    for name, table in sections.items():
        lines += ["", f"[{name}]"] + [f"{key} = {_value(value)}" for key, value in table.items()]
    return "\n".join(lines) + "\n"


def write_found(sections: dict[str, dict[str, Any]], folder: str | Path, comment: str) -> Path:
    """Write `<folder>/<run name>.toml` in one rename (a reader never sees half a config), checked by
    reading it back as any pipeline config is read."""
    path = Path(folder) / f"{sections['run']['name']}.toml"
    with atomic_path(path) as tmp:
        tmp.write_text(toml_text(sections, comment), encoding="utf-8")
        load_config(tmp)
    return path
