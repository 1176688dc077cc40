"""Run a .tflite file through LiteRT the way a device does: one uint8 image at a time,
quantized with the model's own input scale and zero point (the agent's own function)."""
from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from tqdm import tqdm

from device_agents.edge_agent.samples import quantize_images
from pipeline.core.preprocessing import PIXEL_OFFSET, PIXEL_SCALE


def load_interpreter(path: Path, threads: int | None = None) -> Interpreter:
    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    return interpreter


def run_model(path: Path, batches: Iterable[np.ndarray], description: str, total: int | None = None) -> np.ndarray:
    """Raw outputs (model dtype) for batches of uint8 images, one invoke per image as on a device.

    Batches are consumed one at a time, so a whole test set read from files never sits in memory.
    """
    interpreter = load_interpreter(path)
    input_detail = interpreter.get_input_details()[0]
    output_index = interpreter.get_output_details()[0]["index"]
    outputs = []
    with tqdm(total=total, desc=description, unit="img", file=sys.stderr, leave=False, mininterval=1.0) as bar:
        for images in batches:
            for sample in quantize_images(images, PIXEL_SCALE, PIXEL_OFFSET, input_detail):  # exactly what devices do
                interpreter.set_tensor(input_detail["index"], sample[None])
                interpreter.invoke()
                outputs.append(interpreter.get_tensor(output_index)[0].copy())
            bar.update(len(images))
    return np.stack(outputs)


def accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(outputs, axis=1) == labels))
