"""`configs/nightly.toml`: what the nightly job trains, benchmarks where, and how strictly it judges.

Checked like pipeline configs (`section_from_dict`): an unknown key or a wrong type stops the job
with one line naming the file and the key, before anything is trained or recorded.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.names import check_name
from pipeline.core.toml_config import check_strings, read_toml, section_from_dict
from pipeline.core.variants import VARIANT_NAMES, produced_variants
from pipeline.errors import UserError
from pipeline.results.ab_test import MIN_ROUNDS, rounds_for
from pipeline.results.regression import DEFAULT_BASELINE_RUNS, Rule, rules_with_overrides
from pipeline.training.config import PipelineConfig

DEFAULT_CONFIG = "configs/nightly.toml"
FAIL_ON_CHOICES = ("model", "device")  # what makes the nightly exit 1: model regressions, device drift


@dataclass(frozen=True)
class NightlyConfig:
    """One nightly job. Relative paths are relative to the current folder (the repository root under make)."""

    pipeline: str = "configs/demo.toml"  # the training pipeline config
    variants: list = field(default_factory=list)  # variant names to benchmark; empty: every one the pipeline makes
    devices: list = field(default_factory=lambda: ["local"])  # device names of the inventory
    devices_file: str = ""  # empty: $DEVICES, else ./devices.toml (local needs none)
    baseline_runs: int = DEFAULT_BASELINE_RUNS  # the last N good nightly runs form the baseline
    results_db: str = ""  # empty: $RESULTS_DB, else results/results.db
    reports_dir: str = "reports"
    models_dir: str = "results/models"  # every night's model files, content-addressed, for later A/B tests
    ab_rounds: int = 10  # back-to-back A/B rounds for a suspicious series (each model: 1/rounds of a benchmark)
    fail_on: list = field(default_factory=lambda: ["model"])  # add "device" to exit 1 on device drift too
    rules: dict = field(default_factory=dict)  # metric -> {threshold, alpha, ...}: overrides of DEFAULT_RULES
    source: str = "<defaults>"  # the file it was read from, for error messages

    def regression_rules(self) -> dict[str, Rule]:
        return rules_with_overrides(self.rules)


@dataclass(frozen=True)
class _RuleFields:
    """The keys a [rules.<metric>] table may set, with their TOML types (see regression.Rule)."""

    change: str = ""
    threshold: float = 0.0
    higher_is_better: bool = False
    alpha: float = 0.0
    sigmas: float = 0.0


def _names(values: list, key: str, source: str, allowed: tuple[str, ...] | None = None) -> None:
    """A non-empty list of distinct strings (from `allowed`, when given; safe names otherwise)."""
    where = f"{source}: nightly.{key}"
    check_strings(values, where)
    for index, value in enumerate(values):
        if allowed is not None and value not in allowed:
            raise UserError(f"{where}[{index}] = {value!r} is not valid; choose from: {', '.join(allowed)}")
        if allowed is None:
            check_name(value, f"{where}[{index}]")


def _rules(tables: dict, source: str) -> dict[str, dict[str, Any]]:
    """[rules.<metric>] tables checked key by key, then by the regression module's own range checks."""
    rules: dict[str, dict[str, Any]] = {}
    for metric, table in tables.items():
        where = f"{source}: rules.{metric}"
        if not isinstance(table, dict):
            raise UserError(f"{where} must be a table ([rules.{metric}] with threshold = ..., sigmas = ...)")
        parsed = section_from_dict(_RuleFields, table, where)
        rules[metric] = {key: getattr(parsed, key) for key in table}
    try:
        rules_with_overrides(rules)
    except UserError as error:
        raise UserError(f"{source}: {error}") from None
    return rules


def validate(config: NightlyConfig) -> NightlyConfig:
    """Choices and ranges that types alone cannot express."""
    source = config.source
    if config.variants:
        _names(config.variants, "variants", source, VARIANT_NAMES)
    _names(config.devices, "devices", source)
    _names(config.fail_on, "fail_on", source, FAIL_ON_CHOICES)
    if config.ab_rounds < MIN_ROUNDS:
        raise UserError(f"{source}: nightly.ab_rounds = {config.ab_rounds} must be at least {MIN_ROUNDS}")
    rules = _rules(config.rules, source)
    for metric, rule in rules_with_overrides(rules).items():
        if rule.noisy and rule.alpha is not None and config.ab_rounds < rounds_for(rule.alpha):
            raise UserError(f"{source}: nightly.ab_rounds = {config.ab_rounds} cannot reach rules.{metric}.alpha = "
                            f"{rule.alpha:g} (an A/B over n rounds has p >= 2^-n): use at least "
                            f"{rounds_for(rule.alpha)} rounds or a larger alpha")
    if config.baseline_runs < 1:
        raise UserError(f"{source}: nightly.baseline_runs = {config.baseline_runs} must be at least 1")
    for key in ("pipeline", "reports_dir", "models_dir"):
        if not getattr(config, key):
            raise UserError(f"{source}: nightly.{key} must not be empty")
    return dataclasses.replace(config, rules=rules)


def variants_to_benchmark(config: NightlyConfig, pipeline_config: PipelineConfig) -> list[str]:
    """The configured variants, each one the pipeline config makes (all it makes when none are listed)."""
    made = [v.name for v in produced_variants(pipeline_config)]
    for name in config.variants:
        if name not in made:
            raise UserError(f"{config.source}: nightly.variants lists {name!r}, which {pipeline_config.source} does "
                            f"not make (it makes: {', '.join(made)}); remove it or change the pipeline config")
    return list(config.variants) or made


def _settings(table: Any, path: Path) -> dict[str, Any]:
    """The [nightly] table, refusing keys that are not settings (rules have their own tables)."""
    if not isinstance(table, dict):
        raise UserError(f"{path}: 'nightly' must be a [nightly] table")
    settings = [f.name for f in dataclasses.fields(NightlyConfig) if f.name not in ("rules", "source")]
    unknown = sorted(set(table) - set(settings))
    if unknown:
        raise UserError(f"{path}: nightly: unknown key '{unknown[0]}' (valid keys: {', '.join(sorted(settings))})")
    return table


def load_nightly_config(path: str | Path) -> NightlyConfig:
    """Read and check a nightly TOML file: a [nightly] table and [rules.<metric>] tables."""
    path = Path(path)
    raw = read_toml(path, "nightly config", DEFAULT_CONFIG)
    unknown = sorted(set(raw) - {"nightly", "rules"})
    if unknown:
        raise UserError(f"{path}: unknown section [{unknown[0]}] (valid sections: nightly, rules.<metric>)")
    rules = raw.get("rules", {})
    if not isinstance(rules, dict):
        raise UserError(f"{path}: 'rules' must hold [rules.<metric>] tables")
    config = section_from_dict(NightlyConfig, _settings(raw.get("nightly", {}), path), f"{path}: nightly")
    return validate(dataclasses.replace(config, rules=rules, source=str(path)))


def with_overrides(config: NightlyConfig, **overrides: Any) -> NightlyConfig:
    """The config with command-line values (those that are not None) in place of the file's."""
    given = {key: value for key, value in overrides.items() if value is not None}
    return validate(dataclasses.replace(config, **given)) if given else config
