"""The agent's A/B mode: two real models timed interleaved in one process, round by round, on both runtimes."""
from __future__ import annotations

import hashlib

import pytest

from tests.agent_fixtures import TFLITE214_PYTHON, agent_models, agent_pyz, model_args, run_agent  # noqa: F401


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("python", ["default", "tflite214"])
def test_ab_times_both_models_in_alternating_rounds(agent_models, agent_pyz, python):
    if python == "tflite214" and not TFLITE214_PYTHON.exists():
        pytest.skip("no .venv-tflite214 (make .venv-tflite214/.installed)")
    extra = {"python": TFLITE214_PYTHON} if python == "tflite214" else {}
    run = run_agent(agent_pyz, model_args(agent_models.int8, "--baseline-model", str(agent_models.float.model),
                                          "--baseline-samples", str(agent_models.float.samples), "--rounds", "4"),
                    **extra)
    assert run.code == 0, run.document
    ab = run.document["ab"]
    assert ab["rounds"] == 4 and ab["orders"] == ["AB", "BA", "AB", "BA"]
    assert ab["a"]["model"]["sha256"] == _sha(agent_models.int8.model)
    assert ab["b"]["model"]["sha256"] == _sha(agent_models.float.model)
    for side in (ab["a"], ab["b"]):
        assert len(side["round_samples_ms"]) == 4 and side["round_energy_mj"] is None
        assert all(len(samples) == 3 and min(samples) > 0 for samples in side["round_samples_ms"])  # ceil(10 / 4)
    assert set(run.document["state"]["before"]) == {"load", "cpus", "thermal", "throttling"}


def test_ab_refuses_fewer_than_three_rounds_and_a_missing_baseline_model(agent_models, agent_pyz, tmp_path):
    few = run_agent(agent_pyz, model_args(agent_models.int8, "--baseline-model", str(agent_models.int8.model),
                                          "--rounds", "2"))
    assert few.code == 2 and "--rounds: 2 must be >= 3" in few.document["error"]
    missing = run_agent(agent_pyz, model_args(agent_models.int8, "--baseline-model", str(tmp_path / "gone.tflite")))
    assert missing.code == 1 and "gone.tflite not found" in missing.document["error"]
