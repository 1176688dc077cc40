"""`configs/sweep.toml`: which pipeline runs a compression sweep trains, where it benchmarks, what it compares with.

Checked like the nightly config: an unknown key, a wrong type, a missing run file, two runs with one
run.name or two runs making the same variant stop the sweep with one line naming the file and the key,
before anything is trained.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.names import check_name
from pipeline.core.toml_config import check_strings, read_toml, section_from_dict
from pipeline.core.variants import compressed_variant, produced_variants
from pipeline.errors import UserError
from pipeline.results.ab_test import MIN_ROUNDS
from pipeline.training.config import PipelineConfig, load_config

DEFAULT_CONFIG = "configs/sweep.toml"


@dataclass(frozen=True)
class SweepConfig:
    """One sweep. `runs` are relative to the sweep file; the other paths to the current folder."""

    runs: list = field(default_factory=list)  # pipeline config files; the first one's float and ptq_int8 are kept
    devices: list = field(default_factory=lambda: ["local"])  # device names of the inventory
    devices_file: str = ""  # empty: $DEVICES, else ./devices.toml (local needs none)
    baseline: str = "ptq_int8"  # the variant speed-ups and size ratios are measured against
    ab_rounds: int = 10  # interleaved A/B rounds of each variant against the baseline per device; 0 = none
    results_db: str = ""  # empty: $RESULTS_DB, else results/results.db
    reports_dir: str = "reports"
    source: str = "<defaults>"  # the file it was read from, for error messages

    def run_paths(self) -> list[Path]:
        return [Path(self.source).parent / run for run in self.runs]


@dataclass(frozen=True)
class PlannedRun:
    """One pipeline run of the sweep and the variants it contributes (the first run: all it makes)."""

    config: PipelineConfig
    variants: list[str]


def validate(config: SweepConfig) -> SweepConfig:
    """Lists, names and files that types alone cannot check."""
    source = config.source
    check_strings(config.runs, f"{source}: sweep.runs")
    check_strings(config.devices, f"{source}: sweep.devices")
    for index, device in enumerate(config.devices):
        check_name(device, f"{source}: sweep.devices[{index}]")
    for index, path in enumerate(config.run_paths()):
        if not path.is_file():
            raise UserError(f"{source}: sweep.runs[{index}] = {config.runs[index]!r}: {path} does not exist "
                            f"(run files are relative to the sweep file)")
    if config.ab_rounds and config.ab_rounds < MIN_ROUNDS:
        raise UserError(f"{source}: sweep.ab_rounds = {config.ab_rounds} must be 0 (no interleaved A/B) or at least "
                        f"{MIN_ROUNDS}")
    for key in ("baseline", "reports_dir"):
        if not getattr(config, key):
            raise UserError(f"{source}: sweep.{key} must not be empty")
    return config


def plan_runs(config: SweepConfig) -> list[PlannedRun]:
    """Every run's pipeline config and the variants it adds; refuses two runs that would share a build folder
    or make the same variant, and a baseline no run makes."""
    plans: list[PlannedRun] = []
    made_by: dict[str, int] = {}
    names: dict[str, int] = {}
    for index, path in enumerate(config.run_paths()):
        pipeline_config = load_config(path)
        run_name = pipeline_config.run.name
        if run_name in names:
            raise UserError(f"{config.source}: sweep.runs[{index}] ({path}) and sweep.runs[{names[run_name]}] both "
                            f"have run.name = {run_name!r}; give each run its own name (they would share one folder)")
        names[run_name] = index
        variants = ([v.name for v in produced_variants(pipeline_config)] if index == 0
                    else [compressed_variant(pipeline_config).name])
        for name in variants:
            if name in made_by:
                raise UserError(f"{config.source}: sweep.runs[{index}] ({path}) makes variant {name!r}, which "
                                f"sweep.runs[{made_by[name]}] already makes; change its compression settings or "
                                f"drop one of them")
            made_by[name] = index
        plans.append(PlannedRun(pipeline_config, variants))
    if config.baseline not in made_by:
        raise UserError(f"{config.source}: sweep.baseline = {config.baseline!r} is not a variant of this sweep "
                        f"(it makes: {', '.join(made_by)})")
    return plans


def load_sweep_config(path: str | Path) -> SweepConfig:
    """Read and check a sweep TOML file: one [sweep] table."""
    path = Path(path)
    raw = read_toml(path, "sweep config", DEFAULT_CONFIG)
    unknown = sorted(set(raw) - {"sweep"})
    if unknown:
        raise UserError(f"{path}: unknown section [{unknown[0]}] (the only section is [sweep])")
    table = raw.get("sweep", {})
    if not isinstance(table, dict):
        raise UserError(f"{path}: 'sweep' must be a [sweep] table")
    if "source" in table:
        raise UserError(f"{path}: sweep: unknown key 'source'")
    config = section_from_dict(SweepConfig, table, f"{path}: sweep")
    return validate(dataclasses.replace(config, source=str(path)))


def with_overrides(config: SweepConfig, **overrides: Any) -> SweepConfig:
    """The config with command-line values (those that are not None) in place of the file's."""
    given = {key: value for key, value in overrides.items() if value is not None}
    return validate(dataclasses.replace(config, **given)) if given else config
