"""The labelled samples: loading the host's .npz, quantizing inputs, accuracy and output diff.

The host writes raw uint8 pixels plus the model's preprocessing (float = image * scale + offset)
and its own LiteRT outputs, so the device reproduces exactly the host's inputs and its outputs
can be compared with the host's in the model's own units.
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import AgentError, one_line

REQUIRED_ARRAYS = ("images", "labels", "reference_outputs", "preprocess_scale", "preprocess_offset")
OPTIONAL_ARRAYS = ("class_names",)  # absent from samples files written before class names travelled
QUANTIZED_DTYPES = (np.int8, np.uint8)
REGENERATE = "regenerate it with the host pipeline"


@dataclass
class Samples:
    """Validated contents of a samples .npz."""

    images: np.ndarray  # uint8 [N, H, W, C]
    labels: np.ndarray  # int64 [N]
    reference_outputs: np.ndarray  # [N, classes] in the model's output dtype
    scale: float
    offset: float
    class_names: list[str] | None = None  # label i is class_names[i]; None when the file names no classes


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise AgentError(f"samples file {path} not found: pass the .npz written by the host pipeline")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [name for name in REQUIRED_ARRAYS if name not in archive.files]
            if missing:
                raise AgentError(
                    f"samples file {path} lacks {', '.join(missing)} (needs {', '.join(REQUIRED_ARRAYS)}): {REGENERATE}"
                )
            return {name: archive[name] for name in REQUIRED_ARRAYS + OPTIONAL_ARRAYS if name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise AgentError(f"samples file {path} is not a readable .npz ({one_line(exc)}): {REGENERATE}") from exc


def _check_shapes(path: Path, arrays: dict[str, np.ndarray]) -> None:
    images, labels, references = arrays["images"], arrays["labels"], arrays["reference_outputs"]
    problems = []
    if images.dtype != np.uint8 or images.ndim != 4 or len(images) == 0:
        problems.append(f"images must be non-empty uint8 [N,H,W,C], got {images.dtype} {list(images.shape)}")
    if labels.ndim != 1 or len(labels) != len(images) or not np.issubdtype(labels.dtype, np.integer):
        problems.append(f"labels must be integer [N={len(images)}], got {labels.dtype} {list(labels.shape)}")
    if references.ndim != 2 or len(references) != len(images):
        problems.append(f"reference_outputs must be [N={len(images)}, classes], got {list(references.shape)}")
    for name in ("preprocess_scale", "preprocess_offset"):
        if arrays[name].size != 1 or not np.isfinite(arrays[name]).all():
            problems.append(f"{name} must be one finite number")
    names = arrays.get("class_names")
    if names is not None and (names.ndim != 1 or names.dtype.kind != "U" or len(names) <= int(labels.max(initial=0))):
        problems.append(f"class_names must be one string per class, got {names.dtype} {list(names.shape)}")
    if problems:
        raise AgentError(f"samples file {path}: {'; '.join(problems)}: {REGENERATE}")


def load_samples(path: Path) -> Samples:
    """Load and validate the samples file; any problem is one AgentError naming the file."""
    arrays = _read_arrays(path)
    _check_shapes(path, arrays)
    return Samples(
        images=arrays["images"],
        labels=arrays["labels"].astype(np.int64),
        reference_outputs=arrays["reference_outputs"],
        scale=float(arrays["preprocess_scale"].reshape(())),
        offset=float(arrays["preprocess_offset"].reshape(())),
        class_names=[str(name) for name in arrays["class_names"]] if "class_names" in arrays else None,
    )


def tensor_summary(detail: dict[str, Any]) -> dict[str, Any]:
    """dtype, shape and (scale, zero_point) of an interpreter tensor, as JSON-able values."""
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return {
        "dtype": np.dtype(detail["dtype"]).name,
        "shape": [int(size) for size in detail["shape"]],
        "scale": float(scale),
        "zero_point": int(zero_point),
    }


def quantize_images(images: np.ndarray, scale: float, offset: float, input_detail: dict[str, Any]) -> np.ndarray:
    """Model-ready inputs: f = image * scale + offset, then q = clip(round(f / s) + zp) for int inputs."""
    floats = images.astype(np.float32) * np.float32(scale) + np.float32(offset)
    dtype = np.dtype(input_detail["dtype"])
    if dtype == np.float32:
        return floats
    if dtype not in QUANTIZED_DTYPES:
        raise AgentError(f"model input dtype {dtype.name} is not supported: use a float32, int8 or uint8 input")
    input_scale, zero_point = input_detail["quantization"]
    if input_scale == 0:
        raise AgentError(f"model input is {dtype.name} but has no quantization scale: reconvert the model")
    limits = np.iinfo(dtype)
    quantized = np.round(floats / np.float32(input_scale)) + zero_point
    return np.clip(quantized, limits.min, limits.max).astype(dtype)


def check_against_model(samples: Samples, input_detail: dict[str, Any], output_detail: dict[str, Any]) -> None:
    """The samples must fit the model: image size, reference width and reference dtype."""
    input_shape = [int(size) for size in input_detail["shape"]]
    if input_shape[0] != 1 or list(samples.images.shape[1:]) != input_shape[1:]:
        raise AgentError(
            f"samples are images of shape {list(samples.images.shape[1:])} but the model input is {input_shape}: "
            "use the samples file written for this model"
        )
    classes = int(np.prod(output_detail["shape"]))
    output_dtype = np.dtype(output_detail["dtype"])
    references = samples.reference_outputs
    if references.shape[1] != classes or references.dtype != output_dtype:
        raise AgentError(
            f"reference_outputs are {references.dtype.name} [N, {references.shape[1]}] but the model outputs "
            f"{output_dtype.name} [{classes}]: use the samples file written for this model"
        )


def evaluate(
    interpreter: Any, inputs: np.ndarray, samples: Samples, output_detail: dict[str, Any], limit: int | None
) -> dict[str, Any]:
    """Over the (first `limit`) samples: top-1 accuracy, how often the top-1 class is the reference's, and
    max |output - reference| in output units (the host judges agreement from these)."""
    input_index = interpreter.get_input_details()[0]["index"]
    count = len(inputs) if limit is None else min(limit, len(inputs))
    correct = agreeing = 0
    max_diff = 0.0
    for position in range(count):
        interpreter.set_tensor(input_index, inputs[position : position + 1])
        interpreter.invoke()
        output = interpreter.get_tensor(output_detail["index"]).reshape(-1)
        reference = samples.reference_outputs[position]
        correct += int(np.argmax(output) == samples.labels[position])
        agreeing += int(np.argmax(output) == np.argmax(reference))
        difference = np.abs(output.astype(np.float64) - reference.astype(np.float64))
        max_diff = max(max_diff, float(difference.max()))
    if count == 0:
        return {"accuracy": {"value": None, "count": 0}, "top1_agreement": None, "output_max_diff": None}
    return {"accuracy": {"value": correct / count, "count": count}, "top1_agreement": agreeing / count,
            "output_max_diff": max_diff}
