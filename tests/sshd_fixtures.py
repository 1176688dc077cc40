"""Fixtures for the device tests: a real OpenSSH server on loopback as the "device", a tiny
full-int8 model with its samples file, and inventory profiles pointing at them.

Import what a test module uses, e.g. `from tests.sshd_fixtures import ssh_host  # noqa: F401`.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.devices.inventory import DeviceProfile
from pipeline.devices.loopback_sshd import LoopbackSshd, free_port, start_sshd

IMAGE_SHAPE = (8, 8, 1)
SAMPLE_COUNT = 48
CALIBRATION_COUNT = 16
# Quick agent settings: a handful of invokes, no minimum durations, no idle window.
QUICK_BENCH = {"runs": 5, "min_s": 0.0, "warmup_runs": 1, "warmup_min_s": 0.0, "idle_s": 0.0}


@pytest.fixture(scope="session")
def ssh_host(tmp_path_factory: pytest.TempPathFactory) -> LoopbackSshd:
    """sshd on 127.0.0.1 with its own host key; only the generated client key may log in."""
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


@pytest.fixture
def known_hosts(tmp_path: Path, ssh_host: LoopbackSshd) -> Path:
    """A known_hosts file that holds the test host's real key."""
    path = tmp_path / "known_hosts"
    path.write_text(ssh_host.known_hosts_line())
    return path


def ssh_profile(server: LoopbackSshd, known_hosts: Path, workdir: Path, name: str = "testhost",
                **overrides: object) -> DeviceProfile:
    """An SSH device profile for the loopback sshd; the device's python is this venv's."""
    values = dict(name=name, transport="ssh", host=server.address, port=server.port, user=server.user,
                  key_file=str(server.client_key), use_agent=False, ssh_config=str(workdir / "no-ssh-config"),
                  known_hosts=str(known_hosts), workdir=str(workdir), python=sys.executable,
                  connect_retries=0, connect_timeout_s=5.0, **QUICK_BENCH)
    values.update(overrides)
    return DeviceProfile(**values)


def closed_port_profile(profile: DeviceProfile) -> DeviceProfile:
    """The same device on a loopback port where nothing listens (an unreachable board)."""
    return dataclasses.replace(profile, name="unreachable", port=free_port())


def inventory_toml(profiles: list[DeviceProfile]) -> str:
    """An inventory file holding these profiles (every field written out)."""
    lines = []
    for profile in profiles:
        lines.append(f"[devices.{profile.name}]")
        for key, value in dataclasses.asdict(profile).items():
            if key == "name" or isinstance(value, dict):
                continue
            lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def _write_samples(path: Path, images: np.ndarray, labels: np.ndarray, model_path: Path, scale: float) -> None:
    """The samples file of the agent contract, with reference outputs from LiteRT on the host."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(model_path))
    interpreter.allocate_tensors()
    tensor_in, tensor_out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    in_scale, in_zero = tensor_in["quantization"]
    references = []
    for image in images.astype(np.float32) * scale:
        quantized = np.clip(np.round(image / in_scale) + in_zero, -128, 127).astype(np.int8)
        interpreter.set_tensor(tensor_in["index"], quantized[None])
        interpreter.invoke()
        references.append(interpreter.get_tensor(tensor_out["index"])[0])
    np.savez(path, images=images, labels=labels, reference_outputs=np.array(references),
             preprocess_scale=np.float32(scale), preprocess_offset=np.float32(0.0))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small tf_keras conv net (bright vs dark images) as full-int8 TFLite, and its samples .npz."""
    from pipeline.tf_env import keras, tf

    folder = tmp_path_factory.mktemp("tiny-model")
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, SAMPLE_COUNT)
    images = (rng.integers(0, 96, (SAMPLE_COUNT, *IMAGE_SHAPE)) + 128 * labels[:, None, None, None]).astype(np.uint8)
    scale = 1.0 / 255.0
    floats = images.astype(np.float32) * scale
    model = keras.Sequential([keras.layers.Input(IMAGE_SHAPE), keras.layers.Conv2D(4, 3, activation="relu"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    model.compile(keras.optimizers.Adam(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(floats, labels, epochs=20, batch_size=16, verbose=0)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([floats[i:i + 1]] for i in range(CALIBRATION_COUNT))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    model_path = folder / "tiny_int8.tflite"
    model_path.write_bytes(converter.convert())
    samples_path = folder / "tiny_int8_samples.npz"
    _write_samples(samples_path, images, labels, model_path, scale)
    return model_path, samples_path


@pytest.fixture(scope="session")
def agent_zipapp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real device agent, packed as the host sends it."""
    from device_agents.bundle import build_agent_zipapp

    return build_agent_zipapp(tmp_path_factory.mktemp("agent") / "agent.pyz")
