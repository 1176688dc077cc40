"""Full-integer TFLite conversion: int8 kernels and activations, int8 input and output.

The representative samples are fed in exactly the preprocessing used in training and with a
batch dimension of 1, the shape devices run.
"""
from __future__ import annotations

import sys
from collections.abc import Iterator

import numpy as np
from tqdm import tqdm

from pipeline.core.preprocessing import to_float
from pipeline.core.tf_env import keras, tf


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
