"""Model builders: flat functional graphs with the named layers the pipeline relies on."""
import pytest

from models import FEATURES_LAYER, LOGITS_LAYER, build_classifier, encoder_of
from pipeline.core.tf_env import keras


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
