"""The one registry of model variants: what each is called, how it was made, where a run keeps it.

A variant's name says how it was made, so a model trained with plain QAT is never called PQAT:
the compressed model of a run is named from `prune.target_sparsity` and `quantize.method`
(`compressed_name`). Every reader - `bench`, `deploy`, the nightly, the Edge TPU commands, the
results store, the reports - finds a run's files and numbers through this module, never by name
patterns of its own. In `build/<run>/manifest.json` a variant has the artifacts `<name>_tflite`
and `<name>_samples`, and its numbers under `metrics.variants.<name>`; `metrics.compressed_variant`
names the run's compressed model, the default of every command that takes one model.

Adding a variant is one `Variant` entry here plus the stage that writes the Keras model it is
converted from; the convert stage converts, evaluates and records every variant a config makes.
"""
from __future__ import annotations

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
PRUNED = KerasModel("prune", "pruned", "the pruned float model")
QUANTIZE_TRAINED = KerasModel("quantize", "quantize_ready", "the quantization-aware trained model")


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


def compressed_name(target_sparsity: float, quantize_method: str) -> str:
    """The compressed model's name, from how it was made: `pqat_int8`, `pruned_qat_int8`, `qat_int8`, ...

    Unpruned PTQ is the fine-tuned model quantized after training: the same model as `ptq_int8`.
    """
    pruned = target_sparsity > 0
    if quantize_method == "pqat":
        if not pruned:
            raise UserError("quantize.method = 'pqat' preserves pruned zeros, but prune.target_sparsity = 0 prunes "
                            "nothing; use quantize.method = 'qat' for an unpruned model")
        return "pqat_int8"
    return f"{'pruned_' if pruned else ''}{quantize_method}_int8"


def _compressed(config: Config) -> str:
    return compressed_name(config.prune.target_sparsity, config.quantize.method)


def _when_compressed_is(name: str) -> Callable[[Config], bool]:
    return lambda config: _compressed(config) == name


def _always(config: Config) -> bool:
    return True


VARIANTS: tuple[Variant, ...] = (
    Variant("float", "the fine-tuned model, float32 TFLite", FINETUNED, FINETUNED, False, _always),
    Variant("ptq_int8", "the fine-tuned model, full int8 by post-training quantization", FINETUNED, FINETUNED, True,
            _always),
    Variant("qat_int8", "the fine-tuned model (not pruned), quantization-aware trained (QAT), full int8",
            QUANTIZE_TRAINED, FINETUNED, True, _when_compressed_is("qat_int8")),
    Variant("pruned_ptq_int8", "the pruned model, full int8 by post-training quantization", PRUNED, PRUNED, True,
            _when_compressed_is("pruned_ptq_int8")),
    Variant("pruned_qat_int8", "the pruned model, plain QAT (may refill pruned zeros), full int8", QUANTIZE_TRAINED,
            PRUNED, True, _when_compressed_is("pruned_qat_int8")),
    Variant("pqat_int8", "the pruned model, pruning-preserving QAT (PQAT), full int8", QUANTIZE_TRAINED, PRUNED,
            True, _when_compressed_is("pqat_int8")),
)
VARIANT_NAMES = tuple(v.name for v in VARIANTS)
FLOAT = VARIANTS[0].name  # the uncompressed reference every run makes
_BY_NAME = {v.name: v for v in VARIANTS}


def variant(name: str) -> Variant:
    """The registry entry for `name`; a one-line error listing the names otherwise."""
    if name not in _BY_NAME:
        raise UserError(f"unknown model variant {name!r}; choose one of: {', '.join(VARIANT_NAMES)}")
    return _BY_NAME[name]


def produced_variants(config: Config) -> list[Variant]:
    """The variants a pipeline config makes, in registry order, each once."""
    return [v for v in VARIANTS if v.made_when(config)]


def compressed_variant(config: Config) -> Variant:
    """The run's compressed model: pruning (if any) and the quantization method of the config."""
    return variant(_compressed(config))


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
