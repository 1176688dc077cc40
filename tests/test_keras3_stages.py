"""Keras 3 models through the pipeline: a trained `.keras` or `.h5` file Keras 3 wrote enters at
pruning and reaches a full-int8 file and a Keras 3 export (and a second run is all cached); a Keras 3
builder trains through every stage; a Lambda or custom layer class is refused in one line naming it."""
import textwrap

import numpy as np
import pytest

from pipeline.errors import UserError
from tests.conftest import REPO, micro_config, run_cli, write_toml
from tests.keras3_models import keras3_builders  # noqa: F401
from tests.test_user_model import _one_line_error


@pytest.fixture(scope="module")
def micro_data():
    from pipeline.training.datasets import load_dataset

    return load_dataset(micro_config("unused").data)


@pytest.fixture(scope="module")
def keras3_files(tmp_path_factory, micro_data):
    """A residual depthwise CNN trained briefly with Keras 3 and saved by it as .keras and .h5."""
    import importlib
    import sys

    import keras

    from pipeline.core.preprocessing import to_float

    folder = tmp_path_factory.mktemp("keras3")
    (folder / "trained_keras3.py").write_text(textwrap.dedent(_builders_source()))
    sys.path.insert(0, str(folder))
    try:
        builders = importlib.import_module("trained_keras3")
    finally:
        sys.path.remove(str(folder))
    keras.utils.set_random_seed(0)
    model = builders.residual_cnn((28, 28, 1), 10)
    model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(to_float(micro_data.train.pixels), micro_data.train.labels, epochs=8, batch_size=32, verbose=0)
    paths = {"keras": folder / "k3_classifier.keras", "h5": folder / "k3_classifier.h5"}
    for path in paths.values():
        model.save(path)
    return paths


def _builders_source() -> str:
    from tests.keras3_models import KERAS3_BUILDERS

    return KERAS3_BUILDERS


def _config(tmp_path, **sections):
    sections.setdefault("pretrain", {"method": "none"})
    return micro_config(tmp_path / "build", **sections)


@pytest.mark.parametrize("kind", ["keras", "h5"])
def test_keras3_file_goes_through_every_stage_and_comes_back_out_as_keras3(kind, keras3_files, tmp_path):
    import keras

    from pipeline.keras3.equivalence import TOLERANCE
    from pipeline.training.runner import run_stages

    config = _config(tmp_path, model={"path": str(keras3_files[kind])})
    manifest = run_stages(config, log=lambda _: None)
    metrics = manifest.data["metrics"]
    rebuild = metrics["keras3_rebuild"]
    assert rebuild["max_abs_diff"] <= TOLERANCE and rebuild["images"] == 100
    assert manifest.stage("finetune")["metrics"]["keras3_rebuild"] == rebuild
    assert metrics["model_accuracy"] > 0.5
    compressed = metrics["variants"][metrics["compressed_variant"]]
    assert metrics["compressed_variant"] == "pqat_int8"
    assert compressed["boundary_ok"] and compressed["float_ops"] == [] and compressed["tflite_sparsity"] > 0.3
    export = metrics["keras3_export"]
    assert export["written"] and export["test_argmax_agreement"] >= 0.999
    exported = keras.saving.load_model(manifest.run_dir / manifest.data["artifacts"]["keras3_model"])
    assert exported.layers[-1].get_config()["units"] == 10
    log: list[str] = []
    run_stages(config, log=log.append)
    assert all(" cached " in line or "skipped" in line for line in log), log


def test_keras3_builder_trains_through_pretraining_and_finetuning(keras3_builders, tmp_path):
    from pipeline.training.model_source import load_stage_model
    from pipeline.training.runner import run_stages

    config = _config(tmp_path, model={"builder": f"{keras3_builders}:residual_cnn"},
                     pretrain={"method": "simclr", "epochs": 1, "batch_size": 128})
    manifest = run_stages(config, until="finetune", log=lambda _: None)
    assert "encoder" in manifest.stage("pretrain")["outputs"]
    finetune = manifest.stage("finetune")["metrics"]
    assert finetune["keras3_rebuild"]["max_abs_diff"] <= 1e-4 and "ssl_accuracy" in finetune
    classifier = load_stage_model(manifest.output_path("finetune", "classifier"), config)
    assert [type(layer).__name__ for layer in classifier.layers][3:6] == ["ReLU", "DepthwiseConv2D",
                                                                         "BatchNormalization"]


@pytest.mark.parametrize(("function", "suffix"), [("with_lambda", ".keras"), ("with_custom_layer", ".keras"),
                                                  ("with_custom_layer", ".h5"), ("with_lambda", "")])
def test_lambda_or_custom_layer_is_refused_in_one_line_naming_it(function, suffix, keras3_builders, tmp_path):
    from models.user import build_with

    layer = {"with_lambda": "layer 'halve' (Lambda)", "with_custom_layer": "layer 'scale' (Scale)"}[function]
    if suffix:
        path = tmp_path / f"model{suffix}"
        build_with(f"{keras3_builders}:{function}", (28, 28, 1), 10).save(path)
        model = {"path": str(path)}
    else:
        model = {"builder": f"{keras3_builders}:{function}"}
    message = _one_line_error(_config(tmp_path, model=model), until="finetune")
    assert layer in message and "import tf_keras" in message and 'quantize.method = "ptq"' in message


def test_cli_refuses_a_keras3_lambda_file_in_one_line(keras3_builders, tmp_path):
    from models.user import build_with

    path = tmp_path / "lambda.keras"
    build_with(f"{keras3_builders}:with_lambda", (28, 28, 1), 10).save(path)
    toml = write_toml(_config(tmp_path, model={"path": str(path)}), tmp_path / "k3.toml")
    done = run_cli("finetune", "--config", str(toml), cwd=REPO)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 1 and len(errors) == 1 and "Traceback" not in done.stderr
    assert "layer 'halve' (Lambda) is a Lambda" in errors[0]


def test_layers_qat_cannot_take_are_named_in_one_line():
    import keras

    from pipeline.keras3.rebuild import rebuild
    from pipeline.training.tfmot_support import check_quantizable

    inputs = keras.Input(shape=(8, 8, 1))
    x = inputs
    for number, activation in enumerate(("elu", "softplus", "selu", "mish", "elu", "softplus")):
        x = keras.layers.Activation(activation, name=f"{activation}_{number}")(keras.layers.Conv2D(4, 1)(x))
    model = rebuild(keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(x))), "m")
    with pytest.raises(UserError) as caught:
        check_quantizable(model)
    message = str(caught.value)
    assert message.startswith("layers 'elu_0' (Activation), 'softplus_1' (Activation), 'selu_2' (Activation), ")
    assert "and 2 more are not supported by TF-MOT" in message and 'quantize.method = "ptq"' in message


@pytest.mark.slow
def test_mobilenet_v3_trains_with_qat_and_converts_to_full_int8(tmp_path):
    """Its hard-swish, squeeze-excite Multiply and Rescaling layers get TF-MOT's output-only config."""
    import keras

    from pipeline.keras3.rebuild import rebuild
    from pipeline.tflite.conversion import convert_int8
    from pipeline.tflite.verification import inspect_int8
    from pipeline.training.stages.quantize import quantize_aware
    from pipeline.training.tfmot_support import check_quantizable

    model = rebuild(keras.applications.MobileNetV3Small(input_shape=(32, 32, 3), weights=None, classes=4), "v3")
    check_quantizable(model)
    trained = quantize_aware(model, "qat")
    trained.compile("adam", "sparse_categorical_crossentropy")
    images = np.random.default_rng(0).integers(0, 256, (64, 32, 32, 3), dtype=np.uint8)
    trained.fit(images / 255.0, np.arange(64) % 4, epochs=1, batch_size=16, verbose=0)
    path = tmp_path / "v3.tflite"
    path.write_bytes(convert_int8(trained, images[:16]))
    report = inspect_int8(path)
    assert report["boundary_int8"] and report["float_ops"] == [] and report["op_counts"]["HARD_SWISH"] > 0


def test_rebuild_that_computes_something_else_is_refused(keras3_files, micro_data):
    import keras

    from pipeline.keras3.equivalence import check_equivalent
    from pipeline.keras3.rebuild import rebuild

    original = keras.saving.load_model(keras3_files["keras"])
    rebuilt = rebuild(original, "m")
    record = check_equivalent(original, rebuilt, micro_data.test, "m")
    assert record["images"] == 200 and 0 <= record["max_abs_diff"] <= record["tolerance"] == 1e-4
    kernel, *rest = rebuilt.layers[-1].get_weights()
    rebuilt.layers[-1].set_weights([kernel + 1e-3, *rest])
    with pytest.raises(UserError, match=r"differ from the Keras 3 model's by up to .* \(tolerance 0.0001\)"):
        check_equivalent(original, rebuilt, micro_data.test, "model.path m.keras")
