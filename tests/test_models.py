"""Model builders: flat functional graphs with the named layers the pipeline relies on; DS-CNN to int8."""
import numpy as np
import pytest

from models import FEATURES_LAYER, LOGITS_LAYER, build_classifier, encoder_of
from pipeline.core.preprocessing import to_float
from pipeline.core.tf_env import keras
from pipeline.tflite.conversion import convert_int8
from pipeline.tflite.evaluation import load_interpreter, run_model
from pipeline.tflite.verification import inspect_int8
from pipeline.training.augment_policy import PRESETS
from pipeline.training.config import DataConfig
from pipeline.training.datasets import load_dataset
from pipeline.training.fit import seed_everything, train_on_labels


@pytest.mark.parametrize("name", ["resnet8", "ds_cnn"])
@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
def test_builders_are_flat_with_features_and_logits(name, shape):
    model = build_classifier(name, shape, 10)
    assert model.output_shape == (None, 10)
    assert not any(isinstance(layer, keras.Model) for layer in model.layers), "TF-MOT refuses nested models"
    assert model.get_layer(FEATURES_LAYER) and model.get_layer(LOGITS_LAYER)
    encoder = encoder_of(model)
    assert encoder.output_shape == model.get_layer(FEATURES_LAYER).output_shape


def test_resnet8_matches_mlperf_tiny_size():
    params = build_classifier("resnet8", (32, 32, 3), 10).count_params()
    assert 75_000 < params < 80_000  # the reference has about 78k parameters


def test_width_multiplier_shrinks_the_model():
    assert build_classifier("ds_cnn", (28, 28, 1), 10, width=0.5).count_params() < \
        build_classifier("ds_cnn", (28, 28, 1), 10).count_params()


def test_only_edge_friendly_layer_types():
    allowed = {"InputLayer", "Conv2D", "DepthwiseConv2D", "BatchNormalization", "ReLU", "Add",
               "GlobalAveragePooling2D", "Dense"}
    for name in ("resnet8", "ds_cnn"):
        kinds = {type(layer).__name__ for layer in build_classifier(name, (28, 28, 1), 10).layers}
        assert kinds <= allowed, kinds - allowed


def test_unknown_model_lists_choices():
    with pytest.raises(ValueError, match="choose one of: ds_cnn, mobilenet_v2, resnet8"):
        build_classifier("vgg", (28, 28, 1), 10)


@pytest.mark.parametrize("shape", [(96, 96, 3), (32, 32, 3)])
def test_mobilenet_v2_is_one_flat_graph_at_any_static_size(shape):
    model = build_classifier("mobilenet_v2", shape, 3, width=0.35)
    assert not any(isinstance(layer, keras.Model) for layer in model.layers), "TF-MOT refuses nested models"
    assert model.input_shape == (None, *shape) and model.output_shape == (None, 3)
    assert encoder_of(model).output_shape == model.get_layer(FEATURES_LAYER).output_shape
    kinds = {type(layer).__name__ for layer in model.layers}
    assert {"DepthwiseConv2D", "ZeroPadding2D", "ReLU", "BatchNormalization"} <= kinds
    assert max(layer.max_value for layer in model.layers if isinstance(layer, keras.layers.ReLU)) == 6.0  # ReLU6
    assert model.count_params() < build_classifier("mobilenet_v2", shape, 3, width=1.0).count_params()


def test_ds_cnn_trains_and_converts_to_full_int8(tmp_path):
    """One training step on real images moves the weights; the result converts to a full-int8 file that LiteRT runs."""
    data = load_dataset(DataConfig(train_limit=64, test_limit=32))
    seed_everything(2)
    model = build_classifier("ds_cnn", data.input_shape, 10, width=0.25)
    before = [weights.copy() for weights in model.get_weights()]
    train_on_labels(model, data.train, epochs=1, batch_size=64, learning_rate=1e-3,
                    seed=2, policy=PRESETS["natural"].training, description="ds_cnn")
    assert all(not np.array_equal(old, new) for old, new in zip(before, model.get_weights(), strict=True)
               if old.ndim == 4)  # every conv kernel moved
    path = tmp_path / "ds_cnn_int8.tflite"
    path.write_bytes(convert_int8(model, data.train.pixels[:32]))
    report = inspect_int8(path)
    assert report["boundary_int8"] and report["float_ops"] == []
    assert report["op_counts"]["DEPTHWISE_CONV_2D"] == 4 and report["op_counts"]["CONV_2D"] == 5
    outputs = run_model(path, [data.test.pixels], "ds_cnn int8")
    assert outputs.dtype == np.int8 and outputs.shape == (32, 10)
    scale, zero_point = load_interpreter(path).get_output_details()[0]["quantization"]
    dequantized = (outputs.astype(np.float32) - zero_point) * scale
    error = np.abs(dequantized - model.predict(to_float(data.test.pixels), verbose=0))
    assert error.max() <= 4 * scale  # the int8 file computes what the Keras model does, to a few output steps
