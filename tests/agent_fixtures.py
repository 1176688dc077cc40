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
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
TFLITE214_PYTHON = REPO / ".venv-tflite214" / "bin" / "python"
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
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
    from pipeline.core.tf_env import keras

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
    from pipeline.core.tf_env import tf

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


@functools.cache
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


@functools.cache
def build_ten_class_model(folder: Path) -> ModelFiles:
    """A small int8 Fashion-MNIST classifier (10 classes, 200 test samples): unlike the two-class model, whose
    softmax saturates, its outputs show where int8 kernels of other builds round differently."""
    from pipeline.core.tf_env import keras
    from pipeline.training.datasets import read_idx

    folder.mkdir(parents=True, exist_ok=True)
    images = read_idx(FASHION_MNIST / "train-images-idx3-ubyte.gz")[:3000, ..., None]
    labels = read_idx(FASHION_MNIST / "train-labels-idx1-ubyte.gz")[:3000]
    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        keras.layers.Input(images.shape[1:]),
        keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
        keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(images * PREPROCESS_SCALE + PREPROCESS_OFFSET, labels, epochs=2, batch_size=64, verbose=0)
    files = ModelFiles(folder / "fashion_int8.tflite", folder / "fashion_int8_samples.npz")
    files.model.write_bytes(_convert(model, images[:100], int8=True))
    test_images = read_idx(FASHION_MNIST / "t10k-images-idx3-ubyte.gz")[:200, ..., None]
    test_labels = read_idx(FASHION_MNIST / "t10k-labels-idx1-ubyte.gz")[:200].astype(np.int64)
    write_samples(files.samples, test_images, test_labels, litert_outputs(files.model, test_images))
    return files


@functools.cache
def build_pyz(folder: Path) -> Path:
    from pipeline.devices.bundle import build_agent_zipapp

    folder.mkdir(parents=True, exist_ok=True)
    return build_agent_zipapp(folder / "agent.pyz")


@pytest.fixture(scope="session")
def agent_models(tmp_path_factory: pytest.TempPathFactory) -> AgentModels:
    return build_agent_models(tmp_path_factory.getbasetemp() / "agent-models")


@pytest.fixture(scope="session")
def ten_class_model(tmp_path_factory: pytest.TempPathFactory) -> ModelFiles:
    return build_ten_class_model(tmp_path_factory.getbasetemp() / "ten-class-model")


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


# A hostile board: the real agent runs, then `rewrite` (Python statements on `document`) changes its JSON
# before the host reads it. json.dumps writes NaN and Infinity as the tokens the host's parser accepts.
REWRITING_PYTHON = """#!{python}
# TEST FIXTURE: a board whose agent output is rewritten.
import json
import subprocess
import sys

done = subprocess.run([{python!r}, *sys.argv[1:]], stdout=subprocess.PIPE, text=True)
document = json.loads(done.stdout)
{rewrite}
sys.stdout.write(json.dumps(document) + "\\n")
sys.exit(done.returncode)
"""


def rewriting_python(path: Path, rewrite: str) -> Path:
    """An interpreter for the device that runs the real agent and rewrites its document with `rewrite`."""
    path.write_text(REWRITING_PYTHON.format(python=sys.executable, rewrite=rewrite))
    path.chmod(0o755)
    return path


def model_args(files: ModelFiles, *extra: str) -> list[str]:
    return ["--model", str(files.model), "--samples", str(files.samples), *FAST_PROTOCOL, *extra]


# ---- sysfs-shaped fixture trees, a stand-in vcgencmd, and power that changes on a known schedule ----

# A Raspberry Pi 5's `vcgencmd pmic_read_adc` rails: (rail, current channel, volt channel, amps, volts).
PMIC_RAILS = [
    ("3V7_WL_SW", 0, 8, 0.0039, 3.7175), ("3V3_SYS", 1, 9, 0.0566, 3.3123), ("1V8_SYS", 2, 10, 0.1786, 1.7995),
    ("DDR_VDD2", 3, 11, 0.0205, 1.1106), ("DDR_VDDQ", 4, 12, 0.0, 0.6072), ("1V1_SYS", 5, 13, 0.1884, 1.1057),
    ("0V8_SW", 6, 14, 0.2928, 0.8020), ("VDD_CORE", 7, 15, 0.7168, 0.8400), ("3V3_DAC", 17, 20, 0.0005, 3.3150),
    ("3V3_ADC", 18, 21, 0.0005, 3.3168), ("0V8_AON", 16, 19, 0.0039, 0.8037), ("HDMI", 22, 23, 0.0215, 5.1494),
]
PMIC_VOLT_ONLY = [("EXT5V", 24, 5.1457), ("BATT", 25, 0.0)]
FAKE_VCGENCMD = """#!/bin/sh
# TEST FIXTURE standing in for the Raspberry Pi's vcgencmd: prints files the test writes beside it.
here=${0%/*}
case "$1" in
  pmic_read_adc) exec cat "$here/pmic_read_adc.txt" ;;
  get_throttled)
    calls=$(cat "$here/throttled_calls" 2>/dev/null || echo 0)
    echo $((calls + 1)) > "$here/throttled_calls"
    value=$(sed -n "$((calls + 1))p" "$here/throttled.txt")
    [ -n "$value" ] || value=$(tail -n 1 "$here/throttled.txt")
    echo "throttled=$value" ;;
  *) echo "unknown command $1" >&2; exit 1 ;;
esac
"""


def write_atomic(path: Path, text: str) -> None:
    """Replace a file in one step, like a sysfs read that never sees half a value."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def make_fake_vcgencmd(folder: Path, throttled: tuple[str, ...] = ("0x0",)) -> Path:
    """The stand-in vcgencmd; get_throttled prints `throttled` values in turn, then repeats the last."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "vcgencmd"
    script.write_text(FAKE_VCGENCMD)
    script.chmod(0o755)
    (folder / "throttled.txt").write_text("\n".join(throttled) + "\n")
    write_pmic(folder, 3.0)
    return script


def pmic_text(total_watts: float) -> str:
    """pmic_read_adc output whose paired rails sum to total_watts (VDD_CORE takes up the difference)."""
    others = sum(amps * volts for rail, _, _, amps, volts in PMIC_RAILS if rail != "VDD_CORE")
    core_volts = next(volts for rail, _, _, _, volts in PMIC_RAILS if rail == "VDD_CORE")
    lines = []
    for rail, current_channel, _, amps, _ in PMIC_RAILS:
        amps = (total_watts - others) / core_volts if rail == "VDD_CORE" else amps
        lines.append(f"     {rail}_A current({current_channel})={amps:.8f}A")
    lines += [f"     {rail}_V volt({channel})={volts:.8f}V" for rail, _, channel, _, volts in PMIC_RAILS]
    lines += [f"     {rail}_V volt({channel})={volts:.8f}V" for rail, channel, volts in PMIC_VOLT_ONLY]
    return "\n".join(lines) + "\n"


def write_pmic(folder: Path, total_watts: float) -> None:
    write_atomic(folder / "pmic_read_adc.txt", pmic_text(total_watts))


def triangle_watts(low: float, high: float, period_s: float) -> Callable[[float], float]:
    """Power rising linearly from low to high and back every period_s."""

    def watts_at(elapsed_s: float) -> float:
        phase = (elapsed_s / period_s) % 1.0
        return low + (high - low) * (1.0 - abs(2.0 * phase - 1.0))

    return watts_at


class ScheduledPower:
    """TEST FIXTURE: a thread rewriting a fake sensor every tick, logging each value it wrote.

    The log is the ground truth: the sensor showed log[i] watts from log[i]'s time to the next write.
    """

    def __init__(self, write: Callable[[float], None], watts_at: Callable[[float], float], tick_s: float = 0.005):
        self._write, self._watts_at, self._tick_s = write, watts_at, tick_s
        self.log: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._origin = time.time()

    def _step(self) -> None:
        watts = self._watts_at(time.time() - self._origin)
        self._write(watts)
        self.log.append((time.time(), watts))

    def _run(self) -> None:
        while not self._stop.wait(self._tick_s):
            self._step()

    def __enter__(self) -> ScheduledPower:
        self._step()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._stop.set()
        self._thread.join()

    def energy_j(self, start_s: float, end_s: float) -> float:
        """Integral of the written staircase over [start_s, end_s] (unix seconds)."""
        ends = [when for when, _ in self.log[1:]] + [float("inf")]
        return sum(
            watts * max(0.0, min(end, end_s) - max(begin, start_s))
            for (begin, watts), end in zip(self.log, ends, strict=True)
        )

    def watts_between(self, start_s: float, end_s: float) -> list[float]:
        return [watts for when, watts in self.log if start_s <= when <= end_s]


class RaplCounter:
    """TEST FIXTURE: a RAPL zone whose energy_uj accumulates the scheduled power and wraps."""

    def __init__(self, zone: Path, max_range_uj: int, start_uj: int):
        self.zone, self.max_range_uj = zone, max_range_uj
        self.totals: list[tuple[float, float]] = [(time.time(), start_uj / 1e6)]  # (time, joules so far)
        self._watts = 0.0
        write_atomic(zone / "max_energy_range_uj", f"{max_range_uj}\n")
        write_atomic(zone / "name", "package-0\n")
        write_atomic(zone / "energy_uj", f"{start_uj}\n")

    def __call__(self, watts: float) -> None:
        now = time.time()
        previous_time, previous_total = self.totals[-1]
        total_j = previous_total + self._watts * (now - previous_time)
        self.totals.append((now, total_j))
        self._watts = watts
        write_atomic(self.zone / "energy_uj", f"{int(total_j * 1e6) % self.max_range_uj}\n")

    def energy_j(self, start_s: float, end_s: float) -> float:
        """What the counter itself accumulated between two times (a stalled writer delays it)."""
        return self._total_at(end_s) - self._total_at(start_s)

    def _total_at(self, when_s: float) -> float:
        return [total for written, total in self.totals if written <= when_s][-1]

    def wraps_between(self, start_s: float, end_s: float) -> int:
        """How many times the written counter wrapped between two times."""
        laps = [int(total * 1e6) // self.max_range_uj for when, total in self.totals if start_s <= when <= end_s]
        return laps[-1] - laps[0] if laps else 0


def make_cpu_tree(root: Path, governors: tuple[str, ...], cur_khz: int) -> None:
    """cpufreq files for len(governors) CPUs plus two thermal zones, in sysfs layout under root."""
    for number, governor in enumerate(governors):
        cpufreq = root / f"sys/devices/system/cpu/cpu{number}/cpufreq"
        for name, value in (("scaling_governor", governor), ("scaling_cur_freq", cur_khz),
                            ("scaling_min_freq", 600000), ("scaling_max_freq", 2400000)):
            write_atomic(cpufreq / name, f"{value}\n")
    for number, (kind, millidegrees) in enumerate((("cpu-thermal", 51234), ("rp1_adc", 44500))):
        write_atomic(root / f"sys/class/thermal/thermal_zone{number}/type", f"{kind}\n")
        write_atomic(root / f"sys/class/thermal/thermal_zone{number}/temp", f"{millidegrees}\n")
