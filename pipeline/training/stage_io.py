"""What a stage receives and returns. Kept apart from the runner so that editing the runner
does not change every stage's code version (and so invalidate every cached stage)."""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.artifacts import Manifest
from pipeline.training.config import PipelineConfig


@dataclass
class StageOutput:
    """What a stage returns: files it wrote (name -> path inside its folder) and metrics."""

    artifacts: dict[str, Path]
    metrics: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # extra top-level manifest fields


@dataclass
class StageContext:
    config: PipelineConfig
    run_dir: Path
    out_dir: Path  # a temporary folder, renamed to run_dir/<stage> on success
    manifest: Manifest

    def input(self, stage: str, artifact: str) -> Path:
        return self.manifest.output_path(stage, artifact)


def passed_on(ctx: StageContext, stage: str, artifact: str, name: str, reason: str) -> StageOutput:
    """A compression step the config turns off hands its input on unchanged, as its output `name`,
    so the next stage always reads one place; the log and the manifest say it skipped, and why."""
    source = ctx.input(stage, artifact)
    copied = ctx.out_dir / f"{name}{source.suffix}"
    shutil.copyfile(source, copied)
    return StageOutput({name: copied}, {}, {"skipped": reason})
