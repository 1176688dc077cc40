"""The agent under each TFLite runtime: ai_edge_litert (this venv), tflite-runtime 2.14 with numpy 1.x
(.venv-tflite214, what Raspberry Pi OS users install) and tensorflow.lite, on the same model and
samples. The samples' reference outputs are the host's ai_edge_litert outputs, so each run's
output_max_diff is that runtime's distance from ai_edge_litert.
"""
from __future__ import annotations

import pytest

from tests.agent_fixtures import TFLITE214_PYTHON, agent_models, agent_pyz, model_args, run_agent  # noqa: F401

INT8_UNITS_APART = 3  # runtimes round requantization differently by about one unit
FLOAT_APART = 1e-4


@pytest.fixture(scope="module")
def tflite214_python():
    if not TFLITE214_PYTHON.exists():
        pytest.fail(f"{TFLITE214_PYTHON} is missing: run `make test` (it creates .venv-tflite214) and retry")
    return TFLITE214_PYTHON


@pytest.mark.parametrize("variant", ["int8", "float"])
def test_litert_and_tflite_runtime_214_agree(variant, agent_models, agent_pyz, tflite214_python):
    files = getattr(agent_models, variant)
    litert = run_agent(agent_pyz, model_args(files))
    tflite = run_agent(agent_pyz, model_args(files), python=tflite214_python)
    assert litert.code == 0 and tflite.code == 0, (litert.document, tflite.document)
    assert litert.document["runtime"]["name"] == "ai_edge_litert"
    assert tflite.document["runtime"] == {"name": "tflite_runtime", "version": "2.14.0"}
    assert litert.document.keys() == tflite.document.keys()
    count = litert.document["accuracy"]["count"]
    assert tflite.document["accuracy"]["count"] == count
    assert abs(litert.document["accuracy"]["value"] - tflite.document["accuracy"]["value"]) <= 1 / count
    limit = INT8_UNITS_APART if variant == "int8" else FLOAT_APART
    assert litert.document["output_max_diff"] <= limit
    assert tflite.document["output_max_diff"] <= limit


def test_plain_cpu_kernels_without_xnnpack_agree_too(agent_models, agent_pyz, tflite214_python):
    for python in (None, tflite214_python):
        extra = {"python": python} if python else {}
        run = run_agent(agent_pyz, model_args(agent_models.int8, "--delegate", "none"), **extra)
        assert run.code == 0, run.document
        assert run.document["delegate"] == "none" and run.document["output_max_diff"] <= INT8_UNITS_APART


def test_tensorflow_lite_is_the_last_fallback(agent_models, agent_pyz):
    run = run_agent(agent_pyz, model_args(agent_models.int8, "--runtime", "tensorflow", "--threads", "1"))
    assert run.code == 0, run.document
    assert run.document["runtime"]["name"] == "tensorflow" and run.document["threads"] == 1
    assert run.document["output_max_diff"] <= INT8_UNITS_APART


def test_auto_picks_the_installed_runtime(agent_models, agent_pyz, tflite214_python):
    """auto prefers ai_edge_litert; the tflite214 venv has only tflite_runtime, so auto falls through to it."""
    run = run_agent(agent_pyz, model_args(agent_models.int8, "--runtime", "auto"), python=tflite214_python)
    assert run.document["runtime"]["name"] == "tflite_runtime"
