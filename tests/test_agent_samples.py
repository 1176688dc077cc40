"""Samples: the host's .npz is validated, and inputs are quantized exactly as the contract says."""
from __future__ import annotations

import numpy as np
import pytest

from device_agents.edge_agent.errors import AgentError
from device_agents.edge_agent.samples import check_against_model, load_samples, quantize_images

INT8_INPUT = {"dtype": np.int8, "quantization": (0.0078125, -1), "shape": np.array([1, 2, 2, 1])}
FLOAT_OUTPUT = {"dtype": np.float32, "quantization": (0.0, 0), "shape": np.array([1, 3])}


def _write(path, **overrides):
    arrays = {
        "images": np.zeros((4, 2, 2, 1), np.uint8),
        "labels": np.arange(4, dtype=np.int64) % 3,
        "reference_outputs": np.zeros((4, 3), np.float32),
        "preprocess_scale": np.float32(1 / 127.5),
        "preprocess_offset": np.float32(-1.0),
    }
    arrays.update(overrides)
    np.savez(path, **{name: value for name, value in arrays.items() if value is not None})
    return path


def test_int8_inputs_follow_round_divide_add_zero_point_and_clip():
    images = np.array([0, 64, 127, 128, 255], np.uint8).reshape(5, 1, 1, 1)
    quantized = quantize_images(images, 1 / 127.5, -1.0, {**INT8_INPUT, "quantization": (0.0078125, -1)})
    floats = images.astype(np.float32) * np.float32(1 / 127.5) - 1
    expected = np.clip(np.round(floats / 0.0078125) - 1, -128, 127)
    assert quantized.dtype == np.int8
    assert quantized.reshape(-1).tolist() == expected.reshape(-1).astype(int).tolist()
    assert quantized.reshape(-1)[[0, -1]].tolist() == [-128, 127]  # pixel 0 gives -129: clipped


def test_uint8_and_float_inputs():
    images = np.array([0, 255], np.uint8).reshape(2, 1, 1, 1)
    uint8 = quantize_images(images, 1 / 255, 0.0, {"dtype": np.uint8, "quantization": (1 / 255, 0)})
    assert uint8.dtype == np.uint8 and uint8.reshape(-1).tolist() == [0, 255]
    floats = quantize_images(images, 1 / 127.5, -1.0, {"dtype": np.float32, "quantization": (0.0, 0)})
    assert floats.dtype == np.float32 and floats.reshape(-1) == pytest.approx([-1.0, 1.0])


def test_a_quantized_input_without_scale_is_refused():
    with pytest.raises(AgentError, match="no quantization scale"):
        quantize_images(np.zeros((1, 1, 1, 1), np.uint8), 1.0, 0.0, {"dtype": np.int8, "quantization": (0.0, 0)})


def test_valid_samples_load(tmp_path):
    samples = load_samples(_write(tmp_path / "ok.npz"))
    assert samples.images.shape == (4, 2, 2, 1) and samples.scale == pytest.approx(1 / 127.5)
    assert samples.offset == -1.0 and samples.labels.dtype == np.int64


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"labels": None}, "lacks labels"),
        ({"images": np.zeros((4, 2, 2, 1), np.float32)}, "images must be non-empty uint8"),
        ({"labels": np.zeros(3, np.int64)}, "labels must be integer [N=4]"),
        ({"reference_outputs": np.zeros((4,), np.float32)}, "reference_outputs must be [N=4, classes]"),
        ({"preprocess_scale": np.float32(np.nan)}, "preprocess_scale must be one finite number"),
    ],
)
def test_invalid_samples_name_the_problem(tmp_path, overrides, message):
    with pytest.raises(AgentError) as caught:
        load_samples(_write(tmp_path / "bad.npz", **overrides))
    assert message in str(caught.value) and "regenerate it with the host pipeline" in str(caught.value)


def test_pickled_object_arrays_are_not_loaded(tmp_path):
    path = _write(tmp_path / "objects.npz", labels=np.array([object()] * 4, dtype=object))
    with pytest.raises(AgentError, match="not a readable .npz"):
        load_samples(path)


def test_samples_must_fit_the_model(tmp_path):
    samples = load_samples(_write(tmp_path / "ok.npz"))
    check_against_model(samples, INT8_INPUT, FLOAT_OUTPUT)
    with pytest.raises(AgentError, match=r"images of shape \[2, 2, 1\] but the model input is \[1, 4, 4, 1\]"):
        check_against_model(samples, {**INT8_INPUT, "shape": np.array([1, 4, 4, 1])}, FLOAT_OUTPUT)
    with pytest.raises(AgentError, match="reference_outputs are float32 .* model outputs int8"):
        check_against_model(samples, INT8_INPUT, {**FLOAT_OUTPUT, "dtype": np.int8})


def test_class_names_travel_when_present_and_old_files_still_load(tmp_path):
    named = load_samples(_write(tmp_path / "named.npz", class_names=np.array(["cat", "dog", "frog"])))
    assert named.class_names == ["cat", "dog", "frog"]
    assert load_samples(_write(tmp_path / "old.npz")).class_names is None
    with pytest.raises(AgentError, match="class_names must be one string per class"):
        load_samples(_write(tmp_path / "short.npz", class_names=np.array(["cat"])))
