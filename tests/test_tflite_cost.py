"""MACs and parameters read from .tflite graphs agree with the hand count of the Keras model."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.tflite.cost import model_cost

pytestmark = pytest.mark.filterwarnings("ignore:Statistics for quantized inputs:UserWarning")


def _tiny_model():
    """16x16x3 -> conv 3x3 s1 same (8) -> depthwise 3x3 s2 same -> conv 1x1 (12) -> pool -> dense (5)."""
    from pipeline.core.tf_env import keras

    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same")(x)
    x = keras.layers.Conv2D(12, 1, use_bias=False)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(5)(x))


# output positions x MACs per output value
CONV = 16 * 16 * 8 * (3 * 3 * 3)
DEPTHWISE = 8 * 8 * 8 * (3 * 3)
POINTWISE = 8 * 8 * 12 * 8
DENSE = 5 * 12
KERNEL_WEIGHTS = 3 * 3 * 3 * 8 + 3 * 3 * 8 + 8 * 12 + 12 * 5  # biases are not counted


@pytest.fixture(scope="module")
def tiny_tflite(tmp_path_factory):
    from pipeline.tflite.conversion import convert_float, convert_int8

    model = _tiny_model()
    folder = tmp_path_factory.mktemp("cost")
    calibration = np.random.default_rng(0).integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
    paths = {"float": folder / "float.tflite", "int8": folder / "int8.tflite"}
    paths["float"].write_bytes(convert_float(model))
    paths["int8"].write_bytes(convert_int8(model, calibration))
    return paths


@pytest.mark.parametrize("variant", ["float", "int8"])
def test_macs_and_params_match_the_hand_count(tiny_tflite, variant):
    cost = model_cost(tiny_tflite[variant])
    assert [op.op for op in cost.ops] == ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "FULLY_CONNECTED"]
    assert [op.macs for op in cost.ops] == [CONV, DEPTHWISE, POINTWISE, DENSE]
    assert cost.macs == CONV + DEPTHWISE + POINTWISE + DENSE
    assert cost.params == KERNEL_WEIGHTS
