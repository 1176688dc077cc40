"""End to end through the CLI on a small subset: a model that really learns, converted to int8
that keeps its accuracy, and a second invocation that is all cached."""
import json
import re

import pytest

from pipeline.training.runner import STAGE_NAMES
from tests.conftest import micro_config, run_cli, write_toml

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    build = tmp_path_factory.mktemp("e2e")
    config = micro_config(
        build, name="small",
        data={"train_limit": 6000, "test_limit": 2000, "validation_size": 500},
        model={"width": 0.5},
        pretrain={"epochs": 1, "batch_size": 128},
        finetune={"label_fraction": 0.5, "epochs": 10},  # enough steps for BatchNorm statistics to settle
        prune={"epochs": 2, "frequency": 10},
        convert={"eval_samples": 100},
    )
    toml = write_toml(config, build / "small.toml")
    first = run_cli("run", "--config", str(toml), timeout=1800)
    return toml, first, json.loads((build / "small" / "manifest.json").read_text())


def test_run_succeeds_and_prints_the_comparison_table(small_run):
    _, first, _ = small_run
    assert first.returncode == 0, first.stderr[-2000:]
    for name in ("float", "ptq_int8", "pqat_int8"):
        assert f"\n{name} " in first.stdout and f"  {name}: the " in first.stdout  # a table row and how it was made
    for stage in ("data", "pretrain", "finetune", "distill", "slim", "prune", "cluster", "quantize", "convert"):
        assert f"{stage:<9} done" in first.stderr


def test_int8_model_learned_and_kept_float_accuracy(small_run):
    variants = small_run[2]["metrics"]["variants"]
    pqat, ptq = variants["pqat_int8"], variants["ptq_int8"]
    assert pqat["accuracy"] > 0.6  # 10 classes: chance is 0.1
    # Conversion is faithful: each int8 file scores like the Keras model it was converted from ...
    assert abs(pqat["accuracy"] - pqat["converted_keras_accuracy"]) < 0.02
    assert abs(ptq["accuracy"] - ptq["converted_keras_accuracy"]) < 0.02
    # ... and PQAT did not cost accuracy against the pruned float model it started from.
    assert pqat["accuracy"] > pqat["source_float_accuracy"] - 0.02
    assert pqat["tflite_sparsity"] >= 0.45
    assert pqat["gzip_bytes"] < 0.85 * ptq["gzip_bytes"]


def test_second_run_is_all_cached(small_run):
    toml, _, _ = small_run
    second = run_cli("run", "--config", str(toml))
    assert second.returncode == 0
    statuses = re.findall(r"^\[\d+/\d+\] (\S+) +(\S+)", second.stderr, flags=re.MULTILINE)
    run_statuses = [line for line in statuses if line[1] != "skipped"]  # a skip adds a line after its status
    assert run_statuses == [(stage, "cached") for stage in STAGE_NAMES], second.stderr
