"""Keras 3 models rebuilt as tf_keras: keras.applications architectures and every translated layer
compute the same outputs, keep their layer names and weights; a Lambda, a custom layer class or an
op with no layer is refused in one line naming it; the tf_keras model goes back out as a Keras 3
file that a process without TF_USE_LEGACY_KERAS loads and that predicts the same."""
import os
import subprocess
import sys

import numpy as np
import pytest

from pipeline.errors import UserError
from tests.keras3_models import every_layer_model, keras3_builders, randomize  # noqa: F401

ARCHITECTURES = {
    "mobilenet_v2": ("MobileNetV2", {"alpha": 0.35}),
    "mobilenet_v3_small": ("MobileNetV3Small", {"minimalistic": False}),
    "mobilenet_v3_small_minimalistic": ("MobileNetV3Small", {"minimalistic": True}),
    "mobilenet_v3_large": ("MobileNetV3Large", {"minimalistic": False}),
    "efficientnet_b0": ("EfficientNetB0", {}),
    "resnet50": ("ResNet50", {}),
}


def _images(shape, count=16, seed=0):
    from pipeline.training.image_set import ImageSet

    rng = np.random.default_rng(seed)
    return ImageSet(np.zeros(count, np.int64), arrays=rng.integers(0, 256, (count, *shape), dtype=np.uint8))


def _keras3_names(model) -> set[str]:
    return {operation.name for operation in model.operations}


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_application_rebuilds_with_the_same_outputs_names_and_weights(name):
    import keras

    from pipeline.keras3.equivalence import TOLERANCE, compare
    from pipeline.keras3.rebuild import rebuild

    function, options = ARCHITECTURES[name]
    original = getattr(keras.applications, function)(input_shape=(32, 32, 3), weights=None, classes=5,
                                                     classifier_activation=None, **options)
    randomize(original)
    rebuilt = rebuild(original, name)
    assert {layer.name for layer in rebuilt.layers} == _keras3_names(original)
    for layer in original.layers:
        for ours, theirs in zip(layer.get_weights(), rebuilt.get_layer(layer.name).get_weights(), strict=True):
            np.testing.assert_array_equal(ours, theirs)
    comparison = compare(original, rebuilt, _images((32, 32, 3)))
    assert comparison.max_abs_diff <= TOLERANCE and comparison.argmax_agreement == 1.0


def test_every_translated_layer_and_op_computes_the_same():
    from pipeline.keras3.equivalence import TOLERANCE, compare
    from pipeline.keras3.layers import LAYERS, UNARY_OPS
    from pipeline.keras3.rebuild import rebuild

    original = every_layer_model()
    randomize(original, seed=1)
    rebuilt = rebuild(original, "every layer")
    covered = {type(layer).__name__ for layer in original.layers}
    assert covered >= set(LAYERS) - {"Conv2D", "DepthwiseConv2D", "BatchNormalization", "ReLU", "ZeroPadding2D",
                                     "Add", "Multiply", "GlobalAveragePooling2D", "Dropout", "Rescaling"}
    assert compare(original, rebuilt, _images((16, 16, 3))).max_abs_diff <= TOLERANCE
    # Each recorded op became the built-in layer named after it: x - 1, x / 4, 2 - x, -x a Rescaling.
    made = {type(op).__name__: type(rebuilt.get_layer(op.name)).__name__ for op in original.operations
            if op not in original.layers}
    assert made == {"Subtract": "Rescaling", "TrueDivide": "Rescaling", "Negative": "Rescaling", "Add": "Add",
                    "Multiply": "Multiply", **{op: "Activation" for op in ("Sigmoid", "Relu", "Silu")}}
    assert set(made) & set(UNARY_OPS) == {"Sigmoid", "Relu", "Silu"}


@pytest.mark.parametrize(("function", "expected"), [
    ("with_lambda", "layer 'halve' (Lambda) is a Lambda (Python code)"),
    ("with_custom_layer", "layer 'scale' (Scale) is a layer class tf_keras does not share"),
])
def test_lambda_and_custom_layer_are_refused_by_name(function, expected, keras3_builders):
    from models.user import build_with
    from pipeline.keras3.rebuild import rebuild

    with pytest.raises(UserError) as caught:
        rebuild(build_with(f"{keras3_builders}:{function}", (28, 28, 1), 10), "model.builder")
    message = str(caught.value)
    assert expected in message and "\n" not in message and "import tf_keras" in message


def test_op_with_no_layer_is_refused_by_name():
    import keras

    from pipeline.keras3.rebuild import rebuild

    inputs = keras.Input(shape=(8, 8, 1))
    model = keras.Model(inputs, keras.layers.Flatten()(keras.ops.sqrt(inputs)))
    with pytest.raises(UserError, match=r"op '\w+' \(Sqrt\) on tensors has no tf_keras layer that computes it"):
        rebuild(model, "model.path m.keras")


def test_export_loads_in_keras3_without_legacy_keras_and_predicts_the_same(tmp_path):
    from pipeline.keras3.export import save_keras3
    from pipeline.keras3.rebuild import rebuild

    rebuilt = rebuild(every_layer_model(), "every layer")
    randomize(rebuilt, seed=2)
    path = tmp_path / "exported.keras"
    save_keras3(rebuilt, path)
    images = np.random.default_rng(3).uniform(0, 1, (8, 16, 16, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", images)
    script = ("import sys, numpy as np, keras; assert keras.__version__.startswith('3.');"
              "m = keras.saving.load_model(sys.argv[1]);"
              "np.save(sys.argv[3], m.predict(np.load(sys.argv[2]), verbose=0))")
    env = {key: value for key, value in os.environ.items() if key != "TF_USE_LEGACY_KERAS"}
    done = subprocess.run([sys.executable, "-c", script, str(path), str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), rebuilt(images).numpy(), atol=1e-5)
