"""Runs the training stages in order, skipping those whose inputs and config are unchanged.

A stage's cache key hashes its config sections, the sha256 of every input artifact, the
sha256 of every file it reads from outside the run folder (its external inputs: the dataset
files, the calibration file, a user's model file or builder module) and the source of the
stage's module. A stage is re-run when its key changes or one of its recorded outputs is
missing or altered; a re-run changes its outputs' hashes, so the stages after it re-run too,
and only those.

In a multi-worker run every worker runs every stage (they must take the same collective
steps, and only the chief has the build folder); the other workers write into a temporary
folder that is deleted at the end.
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.core.artifacts import (
    MANIFEST_NAME,
    Manifest,
    atomic_dir,
    file_record,
    remove_stale_temporaries,
    sha256_file,
    sha256_json,
)
from pipeline.core.folders import folder_lock, writing_into
from pipeline.errors import UserError
from pipeline.training.config import PipelineConfig
from pipeline.training.external_files import existing_calibration, source_files
from pipeline.training.stage_io import StageContext, StageOutput
from pipeline.training.workers import is_chief, is_multi_worker


def no_external_inputs(config: PipelineConfig) -> dict[str, Path]:
    return {}


def dataset_files(config: PipelineConfig) -> dict[str, Path]:
    """The dataset's source files, named by their path under data.path (or data.unlabeled_path)."""
    roots = {"": Path(config.data.path), "unlabeled/": Path(config.data.unlabeled_path or config.data.path)}
    named = {}
    for path in source_files(config.data, config.source):
        prefix, root = next(((prefix, root) for prefix, root in roots.items()
                             if path != root and path.is_relative_to(root)),
                            ("", path.parent))  # an npz dataset is one file: named by its file name
        named[prefix + path.relative_to(root).as_posix()] = path
    return named


def user_model_files(config: PipelineConfig) -> dict[str, Path]:
    """The user's model file (every file of a SavedModel folder) or builder module source."""
    if config.model.path:
        path = Path(config.model.path)
        if path.is_dir():
            return {f"model/{p.relative_to(path).as_posix()}": p for p in sorted(path.rglob("*")) if p.is_file()}
        return {"model": path} if path.is_file() else {}
    if config.model.builder:
        try:
            spec = importlib.util.find_spec(config.model.builder.partition(":")[0])
        except (ImportError, ValueError):
            return {}  # the stage that imports it says what is wrong in one line
        return {"builder": Path(spec.origin)} if spec and spec.origin and Path(spec.origin).is_file() else {}
    return {}


def calibration_files(config: PipelineConfig) -> dict[str, Path]:
    """The configured calibration file; none when the convert stage draws its own from the training split."""
    if not config.convert.calibration:
        return {}
    return {"calibration": existing_calibration(Path(config.convert.calibration))}


@dataclass(frozen=True)
class StageSpec:
    name: str
    module: str  # exposes run(ctx) -> StageOutput
    sections: tuple[str, ...]  # config sections the stage reads
    inputs: tuple[str, ...]  # earlier stages whose outputs it reads
    # Files it reads from outside the run folder, by a name that does not depend on where they are.
    external: Callable[[PipelineConfig], dict[str, Path]] = no_external_inputs


STAGES: tuple[StageSpec, ...] = (
    StageSpec("data", "pipeline.training.stages.data", ("run", "data"), (), dataset_files),
    StageSpec("pretrain", "pipeline.training.stages.pretrain", ("run", "model", "pretrain"), ("data",),
              user_model_files),
    StageSpec("finetune", "pipeline.training.stages.finetune", ("run", "model", "finetune"), ("data", "pretrain"),
              user_model_files),
    StageSpec("distill", "pipeline.training.stages.distill", ("run", "finetune", "distill"), ("data", "finetune")),
    StageSpec("slim", "pipeline.training.stages.slim", ("run", "finetune", "distill", "slim"), ("data", "distill")),
    StageSpec("prune", "pipeline.training.stages.prune", ("run", "finetune", "distill", "prune"), ("data", "slim")),
    StageSpec("cluster", "pipeline.training.stages.cluster", ("run", "finetune", "distill", "prune", "cluster"),
              ("data", "prune")),
    StageSpec("quantize", "pipeline.training.stages.quantize", ("run", "finetune", "quantize"), ("data", "cluster")),
    # The compression sections name the compressed variant (pipeline/core/variants.py Recipe).
    StageSpec("convert", "pipeline.training.stages.convert",
              ("convert", "distill", "slim", "prune", "cluster", "quantize"),
              ("data", "finetune", "cluster", "quantize"), calibration_files),
)
STAGE_NAMES = [spec.name for spec in STAGES]
# Where a run is stored (and publishes a drawn calibration set), and where its external inputs lie, do not
# change what it computes: the external files' content is in the key instead, so moving them keeps the
# cache and editing them does not.
LOCATION_FIELDS = {"run": ("name", "build_dir"), "data": ("path",), "convert": ("calibration", "calibration_dir")}
PROJECT_ROOT = Path(__file__).resolve().parents[2]
PROJECT_PACKAGES = ("pipeline", "models", "device_agents")
# Plumbing that computes nothing a stage outputs: config values (defaults included) are hashed
# themselves, so editing these files must not invalidate every cached stage.
PLUMBING_MODULES = ("pipeline.training.config", "pipeline.core.toml_config", "pipeline.errors",
                    "pipeline.core.artifacts", "pipeline.training.stage_io", "pipeline.core.names")


def run_dir_for(config: PipelineConfig) -> Path:
    return Path(config.run.build_dir) / config.run.name


def _module_file(name: str) -> Path | None:
    """The source file of a project module, found without importing it (imports load TensorFlow)."""
    base = PROJECT_ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _code_files(module: str) -> list[Path]:
    """The stage's module and every project module it imports, directly or not: its code version."""
    seen: dict[str, Path] = {}
    pending = [module]
    while pending:
        name = pending.pop()
        path = _module_file(name)
        if name in seen or path is None:
            continue
        seen[name] = path
        if name in PLUMBING_MODULES:  # what config checking imports computes nothing a stage outputs either
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                pending += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                pending += [alias.name for alias in node.names]
    return sorted(path for name, path in seen.items()
                  if name.split(".")[0] in PROJECT_PACKAGES and name not in PLUMBING_MODULES)


def external_inputs(spec: StageSpec, config: PipelineConfig) -> dict[str, dict[str, str]]:
    """The stage's external input files with their sha256 (about 0.1 s for Fashion-MNIST's 30 MB)."""
    return {name: {"path": str(path), "sha256": sha256_file(path)} for name, path in spec.external(config).items()}


def _cache_key(spec: StageSpec, config: PipelineConfig, manifest: Manifest, external: dict[str, dict[str, str]]) -> str:
    code = {str(path.relative_to(PROJECT_ROOT)): sha256_file(path) for path in _code_files(spec.module)}
    inputs = {stage: {k: v["sha256"] for k, v in manifest.stage_outputs(stage).items()} for stage in spec.inputs}
    sections = {name: config.section(name) for name in spec.sections}
    for section, fields in LOCATION_FIELDS.items():
        for field in fields:
            sections.get(section, {}).pop(field, None)
    files = {name: record["sha256"] for name, record in external.items()}
    return sha256_json({"stage": spec.name, "config": sections, "inputs": inputs, "external": files, "code": code})


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_stages(
    config: PipelineConfig, until: str | None = None, force: bool = False, log: Callable[[str], None] = _log
) -> Manifest:
    """Run the stages up to and including `until` (default: all); return the updated manifest."""
    if until is not None and until not in STAGE_NAMES:
        raise UserError(f"unknown stage '{until}'; choose one of: {', '.join(STAGE_NAMES)}")
    force = force or is_multi_worker(config.run.strategy)
    with _worker_run_dir(config) as run_dir:
        fix = f"make it writable or free some space, or set run.build_dir in {config.source}"
        with folder_lock(run_dir, "pipeline run", fix), writing_into(run_dir, fix):
            return _run_locked(config, run_dir, until, force, log)


@contextmanager
def _worker_run_dir(config: PipelineConfig) -> Iterator[Path]:
    """The run folder for the chief (or a lone process); a throw-away folder for other workers."""
    if is_chief():
        yield run_dir_for(config)
        return
    scratch = Path(tempfile.mkdtemp(prefix=f"pipeline-worker-{config.run.name}-"))
    try:
        yield scratch / config.run.name
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run_locked(config: PipelineConfig, run_dir: Path, until: str | None, force: bool,
                log: Callable[[str], None]) -> Manifest:
    """run_stages while this process alone writes `run_dir`, so its leftovers are really stale."""
    remove_stale_temporaries(run_dir)
    manifest = Manifest(run_dir)
    manifest.data["run"] = config.run.name
    manifest.data["config_path"] = config.source
    last = STAGE_NAMES.index(until) if until else len(STAGES) - 1
    for index, spec in enumerate(STAGES[: last + 1]):
        step = f"[{index + 1}/{len(STAGES)}] {spec.name:<9}"
        external = external_inputs(spec, config)
        key = _cache_key(spec, config, manifest, external)
        record = manifest.stage(spec.name)
        if not force and record and record.get("cache_key") == key and manifest.outputs_intact(spec.name):
            log(f"{step} cached   ({record['wall_s']:.1f}s when run)")
            _log_skip(step, record, log)
            provenance = _provenance(spec, config, external)
            if any(record.get(field) != value for field, value in provenance.items()):  # its inputs were moved
                manifest.set_stage(spec.name, {**record, **provenance}, STAGE_NAMES)
            continue
        reused = None if force else _reuse_from_other_run(spec, key, config, run_dir, external)
        if reused:
            record, source = reused
            log(f"{step} cached   (from run '{source}', {record['wall_s']:.1f}s when run)")
        else:
            log(f"{step} running")
            record = _execute(spec, key, config, manifest, external)
            log(f"{step} done     ({record['wall_s']:.1f}s)")
            _log_skip(step, record, log)
        manifest.set_stage(spec.name, record, STAGE_NAMES)
    return manifest


def _log_skip(step: str, record: dict[str, Any], log: Callable[[str], None]) -> None:
    """A stage that ran but did not do its work (a trained model skips training) says so."""
    if record.get("skipped"):
        log(f"{step} skipped  ({record['skipped']})")


def _provenance(spec: StageSpec, config: PipelineConfig, external: dict[str, dict[str, str]]) -> dict[str, Any]:
    """The config sections and external files a stage record names, as this run sees them."""
    return {"config": {name: config.section(name) for name in spec.sections}, "external_inputs": external}


def _execute(
    spec: StageSpec, key: str, config: PipelineConfig, manifest: Manifest, external: dict[str, dict[str, str]]
) -> dict[str, Any]:
    """Run one stage into a temporary folder, rename it into place, and return its record."""
    started = time.perf_counter()
    module = importlib.import_module(spec.module)
    final_dir = manifest.run_dir / spec.name
    with atomic_dir(final_dir) as tmp_dir:
        output: StageOutput = module.run(StageContext(config, manifest.run_dir, tmp_dir, manifest))
        relative = {name: path.relative_to(tmp_dir) for name, path in output.artifacts.items()}
    inputs = {
        f"{stage}.{name}": {"path": out["path"], "sha256": out["sha256"]}
        for stage in spec.inputs
        for name, out in manifest.stage_outputs(stage).items()
    }
    return {
        **_provenance(spec, config, external),
        "inputs": inputs,
        "outputs": {name: file_record(final_dir / rel, manifest.run_dir) for name, rel in relative.items()},
        "metrics": output.metrics,
        "wall_s": round(time.perf_counter() - started, 2),
        "cache_key": key,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **output.extra,
    }


def _reuse_from_other_run(
    spec: StageSpec, key: str, config: PipelineConfig, run_dir: Path, external: dict[str, dict[str, str]]
) -> tuple[dict[str, Any], str] | None:
    """Copy a stage another run in the same build folder already computed with the same key.

    Runs that differ only in later stages (say, label fractions) then share one pretraining.
    """
    for other_manifest_path in sorted(run_dir.parent.glob(f"*/{MANIFEST_NAME}")):
        if other_manifest_path.parent == run_dir:
            continue
        other = Manifest(other_manifest_path.parent)
        record = other.stage(spec.name)
        if not record or record.get("cache_key") != key or not other.outputs_intact(spec.name):
            continue
        with atomic_dir(run_dir / spec.name) as tmp_dir:
            shutil.copytree(other.run_dir / spec.name, tmp_dir, dirs_exist_ok=True)
        copied = {**record, **_provenance(spec, config, external),
                  "copied_from": other.data.get("run", other.run_dir.name)}
        return copied, copied["copied_from"]
    return None
