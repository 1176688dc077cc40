"""Runs the training stages in order, skipping those whose inputs and config are unchanged.

A stage's cache key hashes its config sections, the sha256 of every input artifact and
the source of the stage's module. A stage is re-run when its key changes or one of its
recorded outputs is missing or altered; a re-run changes its outputs' hashes, so the
stages after it re-run too, and only those.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pipeline.artifacts import Manifest, atomic_dir, file_record, remove_stale_temporaries, sha256_json
from pipeline.config import PipelineConfig
from pipeline.errors import UserError


@dataclass(frozen=True)
class StageSpec:
    name: str
    module: str  # exposes run(ctx) -> StageOutput
    sections: tuple[str, ...]  # config sections the stage reads
    inputs: tuple[str, ...]  # earlier stages whose outputs it reads


STAGES: tuple[StageSpec, ...] = (
    StageSpec("data", "pipeline.stages.data", ("run", "data"), ()),
    StageSpec("pretrain", "pipeline.stages.pretrain", ("run", "model", "pretrain"), ("data",)),
    StageSpec("finetune", "pipeline.stages.finetune", ("run", "model", "finetune"), ("data", "pretrain")),
    StageSpec("prune", "pipeline.stages.prune", ("run", "finetune", "prune"), ("data", "finetune")),
    StageSpec("quantize", "pipeline.stages.quantize", ("run", "finetune", "quantize"), ("data", "prune")),
    StageSpec("convert", "pipeline.stages.convert", ("convert",), ("data", "finetune", "prune", "quantize")),
)
STAGE_NAMES = [spec.name for spec in STAGES]
LOCATION_FIELDS = ("name", "build_dir")


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

    def metric(self, name: str) -> Any:
        return self.manifest.data["metrics"][name]


def run_dir_for(config: PipelineConfig) -> Path:
    return Path(config.run.build_dir) / config.run.name


def _cache_key(spec: StageSpec, config: PipelineConfig, manifest: Manifest) -> str:
    module_source = Path(importlib.util.find_spec(spec.module).origin).read_text()
    inputs = {stage: {k: v["sha256"] for k, v in manifest.stage(stage)["outputs"].items()} for stage in spec.inputs}
    sections = {name: config.section(name) for name in spec.sections}
    for field in LOCATION_FIELDS:  # where a run is stored does not change what it computes
        sections.get("run", {}).pop(field, None)
    return sha256_json({"stage": spec.name, "config": sections, "inputs": inputs, "code": module_source})


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_stages(
    config: PipelineConfig, until: str | None = None, force: bool = False, log: Callable[[str], None] = _log
) -> Manifest:
    """Run the stages up to and including `until` (default: all); return the updated manifest."""
    if until is not None and until not in STAGE_NAMES:
        raise UserError(f"unknown stage '{until}'; choose one of: {', '.join(STAGE_NAMES)}")
    run_dir = run_dir_for(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(run_dir)
    manifest = Manifest(run_dir)
    manifest.data["run"] = config.run.name
    manifest.data["config_path"] = config.source
    last = STAGE_NAMES.index(until) if until else len(STAGES) - 1
    for index, spec in enumerate(STAGES[: last + 1]):
        key = _cache_key(spec, config, manifest)
        record = manifest.stage(spec.name)
        if not force and record and record.get("cache_key") == key and manifest.outputs_intact(spec.name):
            log(f"[{index + 1}/{len(STAGES)}] {spec.name:<9} cached   ({record['wall_s']:.1f}s when run)")
            continue
        log(f"[{index + 1}/{len(STAGES)}] {spec.name:<9} running")
        started = time.perf_counter()
        module = importlib.import_module(spec.module)
        final_dir = run_dir / spec.name
        with atomic_dir(final_dir) as tmp_dir:
            output: StageOutput = module.run(StageContext(config, run_dir, tmp_dir, manifest))
            relative = {name: path.relative_to(tmp_dir) for name, path in output.artifacts.items()}
        wall = time.perf_counter() - started
        inputs = {
            f"{stage}.{name}": {"path": out["path"], "sha256": out["sha256"]}
            for stage in spec.inputs
            for name, out in manifest.stage(stage)["outputs"].items()
        }
        new_record = {
            "config": {name: config.section(name) for name in spec.sections},
            "inputs": inputs,
            "outputs": {name: file_record(final_dir / rel, run_dir) for name, rel in relative.items()},
            "metrics": output.metrics,
            "wall_s": round(wall, 2),
            "cache_key": key,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **output.extra,
        }
        manifest.set_stage(spec.name, new_record, STAGE_NAMES)
        log(f"[{index + 1}/{len(STAGES)}] {spec.name:<9} done     ({wall:.1f}s)")
    return manifest
