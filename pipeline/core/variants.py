"""The one registry of model variants: what each is called, how it was made, where a run keeps it.

A variant's name says how it was made, so a model trained with plain QAT is never called PQAT:
the compressed model of a run is named from the compression steps its config turns on
(`Recipe`: distillation, channel pruning, low-rank factorization, magnitude pruning, clustering)
and its quantization method. Every reader - `bench`, `deploy`, the nightly, the Edge TPU commands, the
results store, the reports - finds a run's files and numbers through this module, never by name
patterns of its own. In `build/<run>/manifest.json` a variant has the artifacts `<name>_tflite`
and `<name>_samples`, and its numbers under `metrics.variants.<name>`; `metrics.compressed_variant`
names the run's compressed model, the default of every command that takes one model.

Adding a variant is one `Variant` entry here plus the stage that writes the Keras model it is
converted from; the convert stage converts, evaluates and records every variant a config makes.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from pipeline.core.artifacts import MANIFEST_NAME, read_json
from pipeline.errors import UserError

# A pipeline config (pipeline.training.config.PipelineConfig; core sits below training, so not imported).
Config = Any


@dataclass(frozen=True)
class KerasModel:
    """A Keras model a training stage wrote: what a variant is converted from, or the float model it came from."""

    stage: str
    artifact: str
    description: str


FINETUNED = KerasModel("finetune", "classifier", "the fine-tuned float model")
# The float model after every compression step before quantization (distill, slim, prune, cluster; each may be off).
COMPRESSED_FLOAT = KerasModel("cluster", "clustered", "the compressed float model")
QUANTIZE_TRAINED = KerasModel("quantize", "quantize_ready", "the quantization-aware trained model")

QUANTIZE_METHODS = ("pqat", "qat", "ptq", "cqat", "pcqat")
_QUANTIZE_PHRASES = {
    "ptq": "post-training quantization (PTQ)",
    "qat": "plain QAT (may refill pruned zeros and move clusters)",
    "pqat": "pruning-preserving QAT (PQAT)",
    "cqat": "cluster-preserving QAT (CQAT)",
    "pcqat": "sparsity- and cluster-preserving QAT (PCQAT)",
}


@dataclass(frozen=True)
class Recipe:
    """How a compressed model was made, step by step in pipeline order; its name is the variant's name.

    `[distilled_][chpruned_][lowrank_]` then `[pruned_][clustered_]ptq_int8` / `..qat_int8`, or
    `pqat_int8`, `cqat_int8`, `pcqat_int8`, whose QAT scheme already says what was preserved.
    """

    distilled: bool = False  # a smaller student distilled from the fine-tuned model
    channel_pruned: bool = False  # whole filters removed, model rebuilt smaller
    low_rank: bool = False  # kernels split by truncated SVD
    pruned: bool = False  # magnitude pruning (scattered zeros)
    clustered: bool = False  # weight clustering
    quantize: str = "ptq"

    def check(self, where: str = "") -> Recipe:
        """Refuse a QAT scheme that preserves what no step made, or loses what one did."""
        at = f"{where}: " if where else ""
        method = self.quantize
        if method not in QUANTIZE_METHODS:
            raise UserError(f"{at}quantize.method = {method!r} is not valid; "
                            f"choose one of: {', '.join(QUANTIZE_METHODS)}")
        if method in ("pqat", "pcqat") and not self.pruned:
            raise UserError(f"{at}quantize.method = {method!r} preserves pruned zeros, but prune.target_sparsity = 0 "
                            f"prunes nothing; use {'cqat' if method == 'pcqat' else 'qat'!r} for an unpruned model")
        if method in ("cqat", "pcqat") and not self.clustered:
            raise UserError(f"{at}quantize.method = {method!r} preserves weight clusters, but cluster.clusters = 0 "
                            f"clusters nothing; use {'pqat' if method == 'pcqat' else 'qat'!r} or set cluster.clusters")
        if method == "pqat" and self.clustered:
            raise UserError(f"{at}quantize.method = 'pqat' keeps pruned zeros but not the weight clusters; "
                            "use 'pcqat' (keeps both)")
        if method == "cqat" and self.pruned:
            raise UserError(f"{at}quantize.method = 'cqat' keeps clusters but may refill pruned zeros; "
                            "use 'pcqat' (keeps both)")
        return self

    @property
    def name(self) -> str:
        steps = [step for step, done in (("distilled", self.distilled), ("chpruned", self.channel_pruned),
                                         ("lowrank", self.low_rank)) if done]
        if self.quantize in ("ptq", "qat"):
            steps += [step for step, done in (("pruned", self.pruned), ("clustered", self.clustered)) if done]
        return "_".join([*steps, self.quantize, "int8"])

    @property
    def description(self) -> str:
        steps = [phrase for phrase, done in (
            ("channel-pruned (filters removed)", self.channel_pruned), ("low-rank factorized", self.low_rank),
            ("magnitude-pruned", self.pruned), ("weight-clustered", self.clustered)) if done]
        model = "a student distilled from the fine-tuned model" if self.distilled else "the fine-tuned model"
        return ", ".join([model, *steps, _QUANTIZE_PHRASES[self.quantize], "full int8"])


def recipe_of(config: Config) -> Recipe:
    """The compressed model's recipe from a pipeline config's compression settings (checked)."""
    return Recipe(distilled=bool(config.distill.student), channel_pruned=config.slim.channel_ratio > 0,
                  low_rank=config.slim.lowrank_energy > 0, pruned=config.prune.target_sparsity > 0,
                  clustered=config.cluster.clusters > 0, quantize=config.quantize.method).check(config.source)


@dataclass(frozen=True)
class Variant:
    name: str
    description: str  # one line: how it was made
    converted_from: KerasModel  # the Keras model the .tflite file is converted from
    source: KerasModel  # the float model it came from; its accuracy is recorded beside the variant's
    quantized: bool  # full int8 (calibrated) rather than float32
    made_when: Callable[[Config], bool]  # does a pipeline config produce it

    @property
    def artifact(self) -> str:
        """Key of the .tflite file under the manifest's `artifacts`."""
        return f"{self.name}_tflite"

    @property
    def samples(self) -> str:
        """Key of its samples file (labelled images and reference outputs) under `artifacts`."""
        return f"{self.name}_samples"


def _always(config: Config) -> bool:
    return True


def _when_compressed_is(name: str) -> Callable[[Config], bool]:
    return lambda config: recipe_of(config).name == name


def _every_recipe() -> list[Recipe]:
    """Every valid recipe, the plain ones first (the order of tables and error messages)."""
    recipes = []
    for distilled, channel_pruned, low_rank in itertools.product((False, True), repeat=3):
        for clustered, pruned, quantize in itertools.product((False, True), (False, True), QUANTIZE_METHODS):
            recipe = Recipe(distilled, channel_pruned, low_rank, pruned, clustered, quantize)
            try:
                recipes.append(recipe.check())
            except UserError:
                continue
    return recipes


_PLAIN_PTQ = Recipe()  # the fine-tuned model quantized after training: always made, as `ptq_int8`
VARIANTS: tuple[Variant, ...] = (
    Variant("float", "the fine-tuned model, float32 TFLite", FINETUNED, FINETUNED, False, _always),
    Variant(_PLAIN_PTQ.name, _PLAIN_PTQ.description, FINETUNED, FINETUNED, True, _always),
    *(Variant(recipe.name, recipe.description, QUANTIZE_TRAINED, COMPRESSED_FLOAT, True,
              _when_compressed_is(recipe.name)) for recipe in _every_recipe() if recipe != _PLAIN_PTQ),
)
VARIANT_NAMES = tuple(v.name for v in VARIANTS)
FLOAT = VARIANTS[0].name  # the uncompressed reference every run makes
_BY_NAME = {v.name: v for v in VARIANTS}
_NAMING = ("float, ptq_int8, or [distilled_][chpruned_][lowrank_] + one of [pruned_][clustered_]ptq_int8, "
           "[pruned_][clustered_]qat_int8, pqat_int8, cqat_int8, pcqat_int8")


def variant(name: str) -> Variant:
    """The registry entry for `name`; a one-line error listing the names otherwise."""
    if name not in _BY_NAME:
        raise UserError(f"unknown model variant {name!r}; a variant is named {_NAMING}")
    return _BY_NAME[name]


def produced_variants(config: Config) -> list[Variant]:
    """The variants a pipeline config makes, in registry order, each once."""
    return [v for v in VARIANTS if v.made_when(config)]


def compressed_variant(config: Config) -> Variant:
    """The run's compressed model: every compression step the config turns on, and its quantization."""
    return variant(recipe_of(config).name)


class VariantFiles(NamedTuple):
    model: Path
    samples: Path


class RunVariants:
    """A run folder's variants as its manifest records them; every error is one line that says what to do."""

    def __init__(self, run_dir: str | Path, hint: str = "run `make demo` first"):
        self.run_dir, self.hint = Path(run_dir), hint
        self.path = self.run_dir / MANIFEST_NAME
        if not self.path.is_file():
            raise UserError(f"{self.path} does not exist: {hint}")
        try:
            self.data: dict[str, Any] = read_json(self.path)
        except ValueError as error:
            raise UserError(f"{self.path} is not valid JSON ({error}): {hint}") from None
        self.metrics: dict[str, Any] = self.data.get("metrics", {})
        self.recorded: dict[str, Any] = self.metrics.get("variants", {})
        if not self.recorded:
            raise UserError(f"{self.path} has no metrics.variants (no convert stage yet, or one from before the "
                            f"variant registry): {hint}")

    def names(self) -> list[str]:
        """The variants the run made, in registry order (unknown names are refused)."""
        for name in self.recorded:
            variant(name)
        return [name for name in VARIANT_NAMES if name in self.recorded]

    def compressed(self) -> str:
        name = self.metrics.get("compressed_variant")
        if name not in self.recorded:
            raise UserError(f"{self.path} names no compressed variant it made (metrics.compressed_variant = "
                            f"{name!r}): {self.hint}")
        return name

    def metrics_of(self, name: str) -> dict[str, Any]:
        """A variant's own numbers (accuracy, bytes, gzip_bytes, ..., source_float_accuracy)."""
        self._check_made(name)
        return dict(self.recorded[name])

    def files(self, name: str | None = None) -> VariantFiles:
        """The model and samples files of `name` (default: the compressed variant); both must exist."""
        name = self.compressed() if name is None else name
        entry = self._check_made(name)
        artifacts = self.data.get("artifacts", {})
        paths = []
        for key in (entry.artifact, entry.samples):
            if key not in artifacts:
                raise UserError(f"{self.path} has no artifacts.{key}: {self.hint}")
            path = self.run_dir / artifacts[key]
            if not path.is_file():
                raise UserError(f"{path} (artifacts.{key} of {self.path}) does not exist: {self.hint}")
            paths.append(path)
        return VariantFiles(*paths)

    def _check_made(self, name: str) -> Variant:
        entry = variant(name)
        if name not in self.recorded:
            raise UserError(f"run {self.run_dir} did not make variant {name!r} (it made: {', '.join(self.names())}); "
                            f"pick one of those or change the pipeline config")
        return entry


def variant_files(run_dir: str | Path, name: str | None = None, hint: str = "run `make demo` first") -> VariantFiles:
    """The one lookup of a run's model and samples files for a variant (default: its compressed one)."""
    return RunVariants(run_dir, hint).files(name)
