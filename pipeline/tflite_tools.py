"""TFLite conversion, inspection and evaluation through LiteRT.

Conversion is full-integer: int8 kernels and activations, int8 input and output, with the
representative samples fed in exactly the preprocessing used in training and with a batch
dimension of 1. Inspection checks what a device will actually get: int8 on every boundary
tensor, no float compute left, and how many kernel weights are exact zeros.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from tqdm import tqdm

from device_agents.edge_agent.samples import quantize_images
from pipeline.data import PIXEL_OFFSET, PIXEL_SCALE, to_float
from pipeline.sparsity import STEM_LAYER
from pipeline.tf_env import keras, tf

KERNEL_OPS = {"CONV_2D": 1, "FULLY_CONNECTED": 1, "DEPTHWISE_CONV_2D": 1}  # op -> input index of its weights
FLOAT_TYPES = (np.float32, np.float16, np.float64)


def _static_converter(model: keras.Model) -> tf.lite.TFLiteConverter:
    """A converter for a batch of exactly 1: devices run one image at a time, and the Edge TPU
    compiler needs static shapes (a Keras model's batch dimension is otherwise dynamic)."""
    spec = tf.TensorSpec([1, *model.input_shape[1:]], tf.float32)
    function = tf.function(lambda images: model(images, training=False)).get_concrete_function(spec)
    return tf.lite.TFLiteConverter.from_concrete_functions([function], model)


def convert_float(model: keras.Model) -> bytes:
    return _static_converter(model).convert()


def convert_int8(model: keras.Model, calibration_images: np.ndarray) -> bytes:
    """Full-integer conversion with int8 input and output (TFLITE_BUILTINS_INT8 only)."""
    calibration = to_float(calibration_images)

    def representative() -> Iterator[list[np.ndarray]]:
        for image in tqdm(calibration, desc="calibrate", unit="img", file=sys.stderr, leave=False, mininterval=1.0):
            yield [image[None]]

    converter = _static_converter(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def load_interpreter(path: Path, threads: int | None = None) -> Interpreter:
    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    return interpreter


def run_model(path: Path, images: np.ndarray, description: str) -> np.ndarray:
    """Raw outputs (model dtype) for uint8 images, one invoke per image as on a device."""
    interpreter = load_interpreter(path)
    input_detail = interpreter.get_input_details()[0]
    output_index = interpreter.get_output_details()[0]["index"]
    inputs = quantize_images(images, PIXEL_SCALE, PIXEL_OFFSET, input_detail)  # exactly what devices do
    outputs = []
    for sample in tqdm(inputs, desc=description, unit="img", file=sys.stderr, leave=False, mininterval=1.0):
        interpreter.set_tensor(input_detail["index"], sample[None])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(output_index)[0].copy())
    return np.stack(outputs)


def accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(outputs, axis=1) == labels))


def inspect_int8(path: Path) -> dict[str, Any]:
    """Boundary dtypes, ops that still compute in float, and kernel sparsity per weight op."""
    interpreter = load_interpreter(path)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    boundary = interpreter.get_input_details() + interpreter.get_output_details()
    float_ops, kernels = [], []
    for op in interpreter._get_ops_details():
        indices = [i for i in list(op["inputs"]) + list(op["outputs"]) if i >= 0]
        if any(tensors[i]["dtype"] in FLOAT_TYPES for i in indices):
            float_ops.append(op["op_name"])
        if op["op_name"] in KERNEL_OPS:
            weights = interpreter.get_tensor(op["inputs"][KERNEL_OPS[op["op_name"]]])
            kernels.append({"op": op["op_name"], "tensor": tensors[op["inputs"][1]]["name"],
                            "weights": int(weights.size), "zeros": int((weights == 0).sum())})
    return {
        "boundary_dtypes": sorted({np.dtype(t["dtype"]).name for t in boundary}),
        "boundary_int8": all(t["dtype"] == np.int8 for t in boundary),
        "float_ops": sorted(set(float_ops)),
        "kernels": kernels,
        "op_counts": _op_counts(interpreter),
    }


def _op_counts(interpreter: Interpreter) -> dict[str, int]:
    counts: dict[str, int] = {}
    for op in interpreter._get_ops_details():
        counts[op["op_name"]] = counts.get(op["op_name"], 0) + 1
    return counts


def pruned_kernel_sparsity(kernels: list[dict[str, Any]]) -> float:
    """Zero fraction over the kernels pruning touches: CONV_2D and FULLY_CONNECTED, stem excluded."""
    chosen = [k for k in kernels if k["op"] != "DEPTHWISE_CONV_2D" and STEM_LAYER not in k["tensor"]]
    return float(sum(k["zeros"] for k in chosen) / max(sum(k["weights"] for k in chosen), 1))
