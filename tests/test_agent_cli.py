"""The agent's command line as the host uses it: the JSON schema, accuracy against the host's
reference outputs, the timing protocol's counts, and one-line JSON errors for bad input.
"""
from __future__ import annotations

import hashlib
import shlex
import socket
import statistics
from pathlib import Path

import numpy as np
import pytest

from tests.agent_fixtures import FAST_PROTOCOL, agent_models, agent_pyz, model_args, run_agent  # noqa: F401

TOP_LEVEL_TYPES = {
    "schema_version": int, "device": str, "hostname": str, "arch": str, "python": str, "runtime": dict,
    "delegate": str, "threads": int, "model": dict, "warmup_runs": int, "runs": int, "init_ms": float,
    "first_inference_ms": float, "latency_ms": dict, "latency_samples_ms": list, "timed_wall_s": float,
    "throughput_ips": float,
    "peak_rss_mb": float, "accuracy": dict, "class_names": type(None),  # these samples predate class names
    "top1_agreement": float, "output_max_diff": float, "energy": type(None), "state": dict,
    "warnings": list, "started_at": str, "agent_version": str,
}
LATENCY_KEYS = {"mean", "median", "p90", "p99", "min", "max", "std"}
TENSOR_KEYS = {"dtype", "shape", "scale", "zero_point"}


def _reference_accuracy(samples: Path) -> float:
    with np.load(samples) as arrays:
        return float(np.mean(np.argmax(arrays["reference_outputs"], axis=1) == arrays["labels"]))


def test_document_has_every_field_with_its_type(agent_models, agent_pyz):
    run = run_agent(agent_pyz, model_args(agent_models.int8, "--device", "bench-pi"))
    assert run.code == 0, run.document
    document = run.document
    assert {key: type(value) for key, value in document.items()} == TOP_LEVEL_TYPES
    assert document["schema_version"] == 1 and document["device"] == "bench-pi"
    assert document["hostname"] == socket.gethostname()
    assert document["runtime"] == {"name": "ai_edge_litert", "version": "2.3.0"}
    model_bytes = agent_models.int8.model.read_bytes()
    assert document["model"]["sha256"] == hashlib.sha256(model_bytes).hexdigest()
    assert document["model"]["bytes"] == len(model_bytes)
    for side in ("input", "output"):
        assert set(document["model"][side]) == TENSOR_KEYS and document["model"][side]["dtype"] == "int8"
    assert document["model"]["input"]["shape"] == [1, 16, 16, 3] and document["model"]["input"]["scale"] > 0
    assert set(document["latency_ms"]) == LATENCY_KEYS
    assert all(isinstance(value, float) and value > 0 for value in document["latency_samples_ms"])
    assert set(document["state"]) >= {"before", "after", "throttled"}
    assert document["started_at"].endswith("+00:00") and document["peak_rss_mb"] > 1


def test_latency_summary_matches_the_raw_samples(agent_models, agent_pyz):
    args = model_args(agent_models.int8, "--warmup-runs", "3", "--runs", "7")
    document = run_agent(agent_pyz, args).document
    samples = document["latency_samples_ms"]
    assert document["warmup_runs"] == 3 and document["runs"] == len(samples) == 7
    assert document["latency_ms"]["median"] == pytest.approx(statistics.median(samples))
    assert document["latency_ms"]["min"] == pytest.approx(min(samples))
    assert document["latency_ms"]["max"] == pytest.approx(max(samples))
    assert document["latency_ms"]["std"] == pytest.approx(statistics.stdev(samples), rel=1e-3)


def test_runs_continue_until_the_minimum_duration(agent_models, agent_pyz):
    document = run_agent(agent_pyz, model_args(agent_models.int8, "--runs", "1", "--min-s", "0.3")).document
    assert document["runs"] > 1
    assert document["runs"] / document["throughput_ips"] >= 0.3  # the timed window's wall time


@pytest.mark.parametrize("variant", ["int8", "float"])
def test_accuracy_and_outputs_agree_with_the_host_reference(variant, agent_models, agent_pyz):
    files = getattr(agent_models, variant)
    document = run_agent(agent_pyz, model_args(files)).document
    count = document["accuracy"]["count"]
    assert count == 48
    assert abs(document["accuracy"]["value"] - _reference_accuracy(files.samples)) <= 1 / count
    assert document["accuracy"]["value"] > 0.8  # the bright/dark task is learnable: the samples are real
    assert document["output_max_diff"] <= (1 if variant == "int8" else 1e-4)
    assert document["top1_agreement"] == 1.0  # the host's own runtime: every top-1 class is the reference's
    assert document["model"]["input"]["dtype"] == ("int8" if variant == "int8" else "float32")


def test_eval_limit_caps_the_evaluation(agent_models, agent_pyz):
    document = run_agent(agent_pyz, model_args(agent_models.int8, "--eval-limit", "5")).document
    assert document["accuracy"]["count"] == 5


def _write_npz_without_labels(folder: Path, source: Path) -> Path:
    with np.load(source) as arrays:
        kept = {name: arrays[name] for name in arrays.files if name != "labels"}
    np.savez(folder / "no_labels.npz", **kept)
    return folder / "no_labels.npz"


BASE = "--model {model} --samples {samples} " + " ".join(FAST_PROTOCOL)
# (case, command line with placeholders, exit code, part of the error): each breaks exactly one thing
BAD_INPUTS = [
    ("missing model", "--model {folder}/absent.tflite --samples {samples}", 1, "absent.tflite not found"),
    ("garbage model", "--model {garbage} --samples {samples}", 1, "cannot load model"),
    ("garbage samples", "--model {model} --samples {garbage}", 1, "not a readable .npz"),
    ("samples without labels", "--model {model} --samples {no_labels}", 1, "lacks labels"),
    ("samples of another model", "--model {model} --samples {float_samples}", 1, "use the samples file written"),
    ("runtime not installed", BASE + " --runtime tflite_runtime", 1, "--runtime tflite_runtime"),
    ("edgetpu absent", BASE + " --delegate edgetpu", 1, "libedgetpu.so.1"),
    ("delegate path absent", BASE + " --delegate {folder}/libnothing.so", 1, "libnothing.so: no such file"),
    ("unknown runtime", BASE + " --runtime onnx", 2, "invalid choice: 'onnx'"),
    ("no model argument", "--samples {samples}", 2, "--model"),
    ("malformed meter option", BASE + " --energy-meter hwmon --meter-option hwmon2", 2, "is not key=value"),
    ("option for another meter", BASE + " --energy-meter rapl --meter-option name=ina219", 2, "not known for rapl"),
    ("threads in other digits", BASE + " --threads \u0663", 2, "'\u0663' is not a finite number in ASCII digits"),
    ("full-width runs", BASE + " --runs \uff15\uff10", 2, "is not a finite number in ASCII digits"),
    ("infinite min-s", BASE + " --min-s inf", 2, "'inf' is not a finite number"),  # before: an endless loop
    ("nan warm-up", BASE + " --warmup-min-s nan", 2, "'nan' is not a finite number"),
]


def _command_line(template: str, models, folder: Path) -> list[str]:
    garbage = folder / "garbage.bin"
    garbage.write_bytes(b"not a zip and not a flatbuffer")
    paths = {
        "model": models.int8.model, "samples": models.int8.samples, "float_samples": models.float.samples,
        "garbage": garbage, "no_labels": _write_npz_without_labels(folder, models.int8.samples), "folder": folder,
    }
    return shlex.split(template.format(**{name: shlex.quote(str(path)) for name, path in paths.items()}))


@pytest.mark.parametrize(
    ("template", "code", "message"), [row[1:] for row in BAD_INPUTS], ids=[row[0] for row in BAD_INPUTS]
)
def test_bad_input_is_one_json_line_and_an_exit_code(template, code, message, agent_models, agent_pyz, tmp_path):
    run = run_agent(agent_pyz, _command_line(template, agent_models, tmp_path))
    assert run.code == code
    assert run.document.keys() == {"schema_version", "error"} and run.document["schema_version"] == 1
    assert message in run.document["error"] and "\n" not in run.document["error"]
    assert "Traceback" not in run.stderr

