"""Fixtures for the device agent tests: tiny real models, the zipapp, and a way to run it.

Import what a test module needs, e.g. `from tests.agent_fixtures import agent_models, agent_pyz  # noqa: F401`.
Models are built once per session even when several modules import these fixtures (lru_cache
on the session's temp folder).
"""
from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
TFLITE214_PYTHON = REPO / ".venv-tflite214" / "bin" / "python"
IMAGE_SHAPE = (16, 16, 3)
TRAIN_COUNT, EVAL_COUNT = 600, 48
PREPROCESS_SCALE, PREPROCESS_OFFSET = 1 / 127.5, -1.0
SEED = 7
AGENT_TIMEOUT_S = 120
# The fastest protocol that still exercises every phase.
FAST_PROTOCOL = ["--warmup-runs", "2", "--warmup-min-s", "0", "--runs", "10", "--min-s", "0", "--idle-s", "0"]


@dataclass(frozen=True)
class ModelFiles:
    model: Path
    samples: Path


@dataclass(frozen=True)
class AgentModels:
    int8: ModelFiles
    float: ModelFiles


def bright_dark_images(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Noisy images whose class is whether their mean brightness is above mid-grey."""
    brightness = rng.uniform(0, 255, size=(count, 1, 1, 1))
    noise = rng.normal(0, 30, size=(count, *IMAGE_SHAPE))
    images = np.clip(brightness + noise, 0, 255).astype(np.uint8)
    return images, (brightness.reshape(-1) > 127.5).astype(np.int64)


def _train_keras_model(images: np.ndarray, labels: np.ndarray) -> Any:
    from pipeline.tf_env import keras

    keras.utils.set_random_seed(SEED)
    model = keras.Sequential([
        keras.layers.Input(IMAGE_SHAPE),
        keras.layers.Conv2D(4, 3, strides=2, activation="relu"),
        keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(2, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy")
    model.fit(images * PREPROCESS_SCALE + PREPROCESS_OFFSET, labels, epochs=6, batch_size=32, verbose=0)
    return model


def _convert(model: Any, calibration: np.ndarray, int8: bool) -> bytes:
    from pipeline.tf_env import tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        floats = (calibration * PREPROCESS_SCALE + PREPROCESS_OFFSET).astype(np.float32)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([floats[i : i + 1]] for i in range(len(floats)))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


def litert_outputs(model_path: Path, images: np.ndarray) -> np.ndarray:
    """What the host pipeline stores as reference_outputs: LiteRT's outputs, in the output dtype."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(model_path))
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    outputs = []
    for image in images:
        value = image[None].astype(np.float32) * np.float32(PREPROCESS_SCALE) + np.float32(PREPROCESS_OFFSET)
        scale, zero_point = source["quantization"]
        if source["dtype"] == np.int8:
            value = np.clip(np.round(value / np.float32(scale)) + zero_point, -128, 127)
        interpreter.set_tensor(source["index"], value.astype(source["dtype"]))
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(target["index"])[0].copy())
    return np.stack(outputs)


def write_samples(path: Path, images: np.ndarray, labels: np.ndarray, references: np.ndarray) -> None:
    np.savez(
        path, images=images, labels=labels, reference_outputs=references,
        preprocess_scale=np.float32(PREPROCESS_SCALE), preprocess_offset=np.float32(PREPROCESS_OFFSET),
    )


@functools.lru_cache(maxsize=None)
def build_agent_models(folder: Path) -> AgentModels:
    """Train the bright/dark classifier once and write its int8 and float models with samples."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    train_images, train_labels = bright_dark_images(TRAIN_COUNT, rng)
    eval_images, eval_labels = bright_dark_images(EVAL_COUNT, rng)
    keras_model = _train_keras_model(train_images, train_labels)
    files = {}
    for name, int8 in (("int8", True), ("float", False)):
        model_path = folder / f"bright_dark_{name}.tflite"
        model_path.write_bytes(_convert(keras_model, train_images[:100], int8))
        samples_path = folder / f"bright_dark_{name}_samples.npz"
        write_samples(samples_path, eval_images, eval_labels, litert_outputs(model_path, eval_images))
        files[name] = ModelFiles(model=model_path, samples=samples_path)
    return AgentModels(int8=files["int8"], float=files["float"])


@functools.lru_cache(maxsize=None)
def build_pyz(folder: Path) -> Path:
    from device_agents.bundle import build_agent_zipapp

    folder.mkdir(parents=True, exist_ok=True)
    return build_agent_zipapp(folder / "agent.pyz")


@pytest.fixture(scope="session")
def agent_models(tmp_path_factory: pytest.TempPathFactory) -> AgentModels:
    return build_agent_models(tmp_path_factory.getbasetemp() / "agent-models")


@pytest.fixture(scope="session")
def agent_pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_pyz(tmp_path_factory.getbasetemp() / "agent-pyz")


@dataclass
class AgentRun:
    code: int
    document: dict[str, Any]
    stdout: str
    stderr: str


def run_agent(
    pyz: Path, args: list[str], python: Path | str = sys.executable, extra_env: dict[str, str] | None = None
) -> AgentRun:
    """Run the zipapp like the host does and parse its single stdout document."""
    env = {**os.environ, **(extra_env or {})}
    done = subprocess.run(
        [str(python), str(pyz), *args], capture_output=True, text=True, timeout=AGENT_TIMEOUT_S, env=env
    )
    lines = done.stdout.splitlines()
    assert len(lines) == 1, f"expected one JSON line on stdout, got {done.stdout!r}; stderr: {done.stderr[-2000:]}"
    return AgentRun(code=done.returncode, document=json.loads(lines[0]), stdout=done.stdout, stderr=done.stderr)


def model_args(files: ModelFiles, *extra: str) -> list[str]:
    return ["--model", str(files.model), "--samples", str(files.samples), *FAST_PROTOCOL, *extra]
