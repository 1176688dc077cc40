"""The variant registry: names derived from how a model was made, and the one manifest lookup with its errors."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from pipeline.core.variants import (
    FLOAT,
    VARIANT_NAMES,
    VARIANTS,
    Recipe,
    RunVariants,
    compressed_variant,
    produced_variants,
    variant,
    variant_files,
)
from pipeline.errors import UserError
from pipeline.training.config import load_config, validate
from tests.conftest import REPO


def _config(target_sparsity: float, method: str):
    config = load_config(REPO / "configs" / "tiny.toml")
    return validate(dataclasses.replace(
        config, prune=dataclasses.replace(config.prune, target_sparsity=target_sparsity),
        quantize=dataclasses.replace(config.quantize, method=method)))


@pytest.mark.parametrize("sparsity, method, compressed, made", [
    (0.5, "pqat", "pqat_int8", ["float", "ptq_int8", "pqat_int8"]),
    (0.5, "qat", "pruned_qat_int8", ["float", "ptq_int8", "pruned_qat_int8"]),
    (0.5, "ptq", "pruned_ptq_int8", ["float", "ptq_int8", "pruned_ptq_int8"]),
    (0.0, "qat", "qat_int8", ["float", "ptq_int8", "qat_int8"]),
    (0.0, "ptq", "ptq_int8", ["float", "ptq_int8"]),  # unpruned PTQ is the fine-tuned PTQ model: made once
])
def test_names_are_derived_from_the_config(sparsity, method, compressed, made) -> None:
    config = _config(sparsity, method)
    assert compressed_variant(config).name == compressed
    assert [v.name for v in produced_variants(config)] == made


def test_a_qat_run_is_never_called_pqat() -> None:
    for sparsity in (0.0, 0.5):
        config = _config(sparsity, "qat")
        names = [v.name for v in produced_variants(config)]
        assert "pqat_int8" not in names and all("pqat" not in name for name in names)
        assert "PQAT" not in compressed_variant(config).description


def test_every_config_has_a_registered_compressed_variant_and_unpruned_pqat_is_refused() -> None:
    for sparsity in (0.0, 0.3):
        for method in ("pqat", "qat", "ptq"):
            if (sparsity, method) == (0.0, "pqat"):
                with pytest.raises(UserError, match="prunes nothing; use .*'qat'"):
                    Recipe(pruned=False, quantize=method).check()
                with pytest.raises(UserError, match="tiny.toml: quantize.method = 'pqat' .* prunes nothing"):
                    _config(sparsity, method)
                continue
            entry = variant(Recipe(pruned=sparsity > 0, quantize=method).name)
            assert entry.quantized and entry.name.startswith("pruned_" if sparsity and method != "pqat" else "")


@pytest.mark.parametrize("recipe, name", [
    (Recipe(distilled=True, channel_pruned=True, pruned=True, quantize="pqat"), "distilled_chpruned_pqat_int8"),
    (Recipe(low_rank=True, quantize="ptq"), "lowrank_ptq_int8"),
    (Recipe(pruned=True, clustered=True, quantize="pcqat"), "pcqat_int8"),
    (Recipe(clustered=True, quantize="cqat"), "cqat_int8"),
    (Recipe(pruned=True, clustered=True, quantize="ptq"), "pruned_clustered_ptq_int8"),
    (Recipe(distilled=True, quantize="qat"), "distilled_qat_int8"),
])
def test_a_recipe_is_named_by_every_step_in_pipeline_order(recipe, name) -> None:
    assert recipe.check().name == name
    assert variant(name).description == recipe.description and "\n" not in recipe.description
    assert ("student distilled" in recipe.description) == recipe.distilled


@pytest.mark.parametrize("recipe, message", [
    (Recipe(pruned=True, clustered=True, quantize="pqat"), "keeps pruned zeros but not the weight clusters"),
    (Recipe(pruned=True, quantize="pcqat"), "preserves weight clusters, but cluster.clusters = 0 clusters nothing"),
    (Recipe(clustered=True, quantize="pcqat"), "preserves pruned zeros, but prune.target_sparsity = 0"),
    (Recipe(pruned=True, clustered=True, quantize="cqat"), "may refill pruned zeros; use 'pcqat'"),
    (Recipe(quantize="int4"), "quantize.method = 'int4' is not valid"),
])
def test_a_qat_scheme_that_does_not_fit_the_steps_is_refused(recipe, message) -> None:
    with pytest.raises(UserError, match=message):
        recipe.check("my.toml")
    assert all(entry.name not in ("pruned_pqat_int8", "clustered_pcqat_int8") for entry in VARIANTS)


def test_registry_entries_have_unique_names_keys_and_one_line_descriptions() -> None:
    assert len(set(VARIANT_NAMES)) == len(VARIANTS) and VARIANT_NAMES[0] == FLOAT
    for entry in VARIANTS:
        assert (entry.artifact, entry.samples) == (f"{entry.name}_tflite", f"{entry.name}_samples")
        assert entry.description and "\n" not in entry.description
        assert entry.quantized == entry.name.endswith("_int8")
    assert variant("pqat_int8").source.stage == "cluster" and variant("ptq_int8").source.stage == "finetune"
    with pytest.raises(UserError, match=r"unknown model variant 'int8'; a variant is named float, ptq_int8, or "):
        variant("int8")


def _run(tmp_path: Path, made=("float", "pqat_int8"), compressed="pqat_int8") -> Path:
    """A run folder whose manifest records `made` with real files on disk."""
    run_dir = tmp_path / "build" / "demo"
    (run_dir / "convert").mkdir(parents=True)
    artifacts, numbers = {}, {}
    for name in made:
        for key, suffix in ((f"{name}_tflite", ".tflite"), (f"{name}_samples", ".samples.npz")):
            (run_dir / "convert" / f"{name}{suffix}").write_bytes(b"x")
            artifacts[key] = f"convert/{name}{suffix}"
        numbers[name] = {"accuracy": 0.9, "bytes": 1, "gzip_bytes": 1, "source_float_accuracy": 0.91}
    (run_dir / "manifest.json").write_text(json.dumps({
        "run": "demo", "artifacts": artifacts,
        "metrics": {"variants": numbers, "compressed_variant": compressed}}))
    return run_dir


def test_lookup_defaults_to_the_compressed_variant_and_lists_what_the_run_made(tmp_path: Path) -> None:
    run_dir = _run(tmp_path)
    assert variant_files(run_dir) == (run_dir / "convert" / "pqat_int8.tflite",
                                      run_dir / "convert" / "pqat_int8.samples.npz")
    assert variant_files(run_dir, "float").model == run_dir / "convert" / "float.tflite"
    run = RunVariants(run_dir)
    assert run.names() == ["float", "pqat_int8"] and run.compressed() == "pqat_int8"
    assert run.metrics_of("pqat_int8")["source_float_accuracy"] == 0.91


@pytest.mark.parametrize("breakage, name, message", [
    ("no manifest", None, r"manifest.json does not exist: HINT"),
    ("not json", None, r"manifest.json is not valid JSON \(.*\): HINT"),
    ("no variants", None, r"has no metrics.variants .*: HINT"),
    ("no compressed", None, r"names no compressed variant it made .*: HINT"),
    ("missing artifact", "float", r"has no artifacts.float_samples: HINT"),
    ("missing file", "float", r"float.tflite \(artifacts.float_tflite of .*\) does not exist: HINT"),
    ("", "qat_int8", r"did not make variant 'qat_int8' \(it made: float, pqat_int8\); pick one of those"),
    ("", "int8", r"unknown model variant 'int8'; a variant is named float"),
])
def test_lookup_errors_are_one_line_and_say_what_to_do(tmp_path: Path, breakage, name, message) -> None:
    run_dir = _run(tmp_path)
    manifest = run_dir / "manifest.json"
    data = json.loads(manifest.read_text())
    if breakage == "no manifest":
        manifest.unlink()
    elif breakage == "not json":
        manifest.write_text("{not json")
    elif breakage == "no variants":
        manifest.write_text(json.dumps({"artifacts": data["artifacts"]}))
    elif breakage == "no compressed":
        del data["metrics"]["compressed_variant"]
        manifest.write_text(json.dumps(data))
    elif breakage == "missing artifact":
        del data["artifacts"]["float_samples"]
        manifest.write_text(json.dumps(data))
    elif breakage == "missing file":
        (run_dir / "convert" / "float.tflite").unlink()
    with pytest.raises(UserError, match=message) as raised:
        variant_files(run_dir, name, hint="HINT")
    assert "\n" not in str(raised.value)
