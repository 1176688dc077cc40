"""A user's own model: a trained .keras/.h5 classifier entering at pruning, a builder function
going through every stage, and the one-line refusals (wrong shape or classes, not a model, a
builder that does not import, a layer TF-MOT cannot quantize-aware-train)."""
import textwrap

import numpy as np
import pytest

from pipeline.core.variants import variant_files
from pipeline.errors import UserError
from tests.conftest import REPO, micro_config, run_cli, write_toml

LAMBDA_AND_CUSTOM_BUILDERS = textwrap.dedent('''
    import tf_keras as keras


    class Scale(keras.layers.Layer):
        """A custom layer: TF-MOT has no quantize config for it."""

        def call(self, inputs):
            return inputs * 0.5


    def _classifier(input_shape, num_classes, middle):
        inputs = keras.Input(shape=input_shape)
        x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inputs)
        x = middle(x)
        x = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, keras.layers.Dense(num_classes)(x))


    def with_lambda(input_shape, num_classes):
        return _classifier(input_shape, num_classes, keras.layers.Lambda(lambda t: t * 0.5, name="halve"))


    def with_custom_layer(input_shape, num_classes):
        return _classifier(input_shape, num_classes, Scale(name="scale"))


    def subclassed(input_shape, num_classes):
        class Tiny(keras.Model):
            def __init__(self):
                super().__init__()
                self.head = keras.layers.Dense(num_classes)

            def call(self, inputs):
                return self.head(keras.layers.Flatten()(inputs))

        return Tiny()
''')


def user_classifier(input_shape=(28, 28, 1), num_classes=10, softmax=True):
    """A small trained-looking functional classifier, as a user would save it."""
    from pipeline.core.tf_env import keras

    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inputs)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax" if softmax else None)(x)
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def micro_data():
    from pipeline.training.datasets import load_dataset

    return load_dataset(micro_config("unused").data)


@pytest.fixture()
def builders(tmp_path, monkeypatch):
    """A module `user_builders` on sys.path, as a user's own package would be."""
    (tmp_path / "user_builders.py").write_text(LAMBDA_AND_CUSTOM_BUILDERS)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "user_builders"


def _config(tmp_path, **sections):
    sections.setdefault("pretrain", {"method": "none"})
    return micro_config(tmp_path / "build", **sections)


def _one_line_error(config, until=None) -> str:
    from pipeline.training.runner import run_stages

    with pytest.raises(UserError) as caught:
        run_stages(config, until=until, log=lambda _: None)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.fixture(scope="module")
def trained_files(tmp_path_factory, micro_data):
    """The user's classifier, trained briefly and saved as .keras and .h5."""
    from pipeline.core.preprocessing import to_float
    from pipeline.core.tf_env import keras

    folder = tmp_path_factory.mktemp("user")
    keras.utils.set_random_seed(0)
    model = user_classifier()
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(to_float(micro_data.train.pixels), micro_data.train.labels, epochs=20, batch_size=32, verbose=0)
    paths = {"keras": folder / "my_classifier.keras", "h5": folder / "my_classifier.h5"}
    for path in paths.values():
        model.save(path)
    return paths


@pytest.mark.parametrize("kind", ["keras", "h5"])
def test_trained_classifier_enters_at_pruning_and_reaches_the_device(kind, trained_files, tmp_path):
    from pipeline.training.runner import run_stages

    config = _config(tmp_path, model={"path": str(trained_files[kind])}, pretrain={"method": "simclr"})
    log: list[str] = []
    manifest = run_stages(config, log=log.append)
    for stage in ("pretrain", "finetune"):
        assert any(f"{stage:<9} skipped  (model.path" in line for line in log), log
        assert "enters at pruning" in manifest.stage(stage)["skipped"]
    assert "encoder" not in manifest.stage("pretrain")["outputs"]
    metrics = manifest.data["metrics"]
    assert metrics["model_accuracy"] > 0.5  # the user's own training, kept (10 classes: chance is 0.1)
    assert metrics["sparsity"] == pytest.approx(0.5, abs=0.05)
    compressed = metrics["variants"][metrics["compressed_variant"]]
    assert compressed["boundary_ok"] and compressed["float_ops"] == []
    assert abs(compressed["accuracy"] - compressed["converted_keras_accuracy"]) < 0.05
    model, samples = variant_files(manifest.run_dir)
    bench = run_cli("bench", "--device", "local", "--model", str(model), "--samples", str(samples), "--json",
                    cwd=tmp_path)
    assert bench.returncode == 0, bench.stderr[-2000:]
    assert '"accuracy"' in bench.stdout and '"device": "local"' in bench.stdout


def test_changing_the_model_file_reruns_the_stages_that_read_it(trained_files, tmp_path):
    from pipeline.training.runner import run_stages

    path = tmp_path / "copy.h5"
    path.write_bytes(trained_files["h5"].read_bytes())
    config = _config(tmp_path, model={"path": str(path)})
    run_stages(config, until="finetune", log=lambda _: None)
    user_classifier().save(path)  # same architecture, other weights
    log: list[str] = []
    run_stages(config, until="finetune", log=log.append)
    assert any("finetune  running" in line for line in log), log


@pytest.mark.parametrize(("model", "expected"), [
    (dict(input_shape=(32, 32, 3)), "takes inputs of shape (32, 32, 3) but the data's images are (28, 28, 1)"),
    (dict(num_classes=5), "outputs shape (5,) but the data has 10 classes"),
])
def test_model_that_does_not_fit_the_data_is_refused(model, expected, tmp_path):
    path = tmp_path / "mismatch.keras"
    user_classifier(**model).save(path)
    message = _one_line_error(_config(tmp_path, model={"path": str(path)}), until="finetune")
    assert expected in message and str(path) in message


@pytest.mark.parametrize("name", ["not_a_model.keras", "not_a_model.h5", "saved_model_dir"])
def test_file_that_is_not_a_keras_model_is_refused(name, tmp_path):
    path = tmp_path / name
    if name.endswith("dir"):
        path.mkdir()
        (path / "saved_model.pb").write_bytes(b"\x00garbage")
    else:
        path.write_text("these are not the weights you are looking for\n")
    message = _one_line_error(_config(tmp_path, model={"path": str(path)}), until="finetune")
    assert f"model.path {path} is not a Keras model" in message and "model.save(" in message


def test_missing_model_file_is_refused(tmp_path):
    message = _one_line_error(_config(tmp_path, model={"path": str(tmp_path / "nope.keras")}), until="finetune")
    assert "does not exist" in message


@pytest.mark.parametrize(("builder", "expected"), [
    ("no_such_package.models:build", "cannot import 'no_such_package.models' (ModuleNotFoundError"),
    ("user_builders:no_such_function", "module 'user_builders' has no function 'no_such_function'"),
    ("user_builders", "must be 'package.module:function'"),
])
def test_builder_that_does_not_import_is_refused(builder, expected, builders, tmp_path):
    message = _one_line_error(_config(tmp_path, model={"builder": builder}), until="finetune")
    assert expected in message


def test_subclassed_model_is_refused(builders, tmp_path):
    message = _one_line_error(_config(tmp_path, model={"builder": f"{builders}:subclassed"}), until="finetune")
    assert "subclassed keras.Model (Tiny)" in message and "keras.Model(inputs, outputs)" in message


@pytest.mark.parametrize(("function", "layer"), [("with_lambda", "'halve' (Lambda)"),
                                                 ("with_custom_layer", "'scale' (Scale)")])
def test_layer_qat_cannot_handle_gets_one_line_naming_it_and_the_fix(function, layer, builders, tmp_path):
    config = _config(tmp_path, model={"builder": f"{builders}:{function}"}, quantize={"method": "pqat"})
    message = _one_line_error(config)
    assert f"layer {layer} is not supported by TF-MOT quantization-aware training" in message
    assert 'quantize.method = "ptq"' in message


@pytest.mark.parametrize(("suffix", "expected"), [
    (".keras", "holds a Lambda layer, whose Python code Keras does not load from a .keras file"),
    (".h5", "layer 'halve' (Lambda) is not supported by TF-MOT quantization-aware training"),
])
def test_saved_model_with_a_lambda_layer_gets_one_line(suffix, expected, builders, tmp_path):
    from models.user import build_with

    path = tmp_path / f"lambda{suffix}"
    build_with(f"{builders}:with_lambda", (28, 28, 1), 10).save(path)
    assert expected in _one_line_error(_config(tmp_path, model={"path": str(path)}), until="finetune")


@pytest.mark.parametrize("function", ["with_lambda", "with_custom_layer"])
def test_ptq_path_takes_a_model_qat_refuses_to_full_int8(function, builders, tmp_path):
    """Every stage, SimCLR pretraining included, with the layer loaded back from HDF5 each time."""
    from pipeline.training.runner import run_stages

    config = _config(tmp_path, model={"builder": f"{builders}:{function}"}, quantize={"method": "ptq"},
                     pretrain={"method": "simclr", "epochs": 1, "batch_size": 128})
    manifest = run_stages(config, log=lambda _: None)
    metrics = manifest.data["metrics"]
    assert "encoder" in manifest.stage("pretrain")["outputs"] and "ssl_accuracy" in metrics
    compressed = metrics["variants"][metrics["compressed_variant"]]
    assert compressed["boundary_ok"] and compressed["float_ops"] == []
    assert compressed["tflite_sparsity"] > 0.3  # pruning ran on the Conv2D/Dense layers around it


def test_encoder_is_the_input_of_the_last_dense_layer_unless_named(builders):
    from models import encoder_of
    from models.user import build_with

    model = build_with(f"{builders}:with_lambda", (28, 28, 1), 10)
    assert encoder_of(model).output_shape == (None, 16)
    assert encoder_of(model, "halve").output_shape == model.get_layer("halve").output_shape
    with pytest.raises(UserError, match="model.encoder_layer = 'nope' is not a layer of the model"):
        encoder_of(model, "nope")


def test_pretrained_encoder_weights_reach_a_second_build_despite_new_layer_names(builders, tmp_path):
    """A builder called twice in one process gets new automatic layer names; weights load by position."""
    from models import encoder_of
    from models.user import build_with

    first, second = (build_with(f"{builders}:with_lambda", (28, 28, 1), 10) for _ in range(2))
    assert first.layers[1].name != second.layers[1].name
    encoder_of(first).save_weights(tmp_path / "encoder.h5")
    encoder_of(second).load_weights(tmp_path / "encoder.h5")
    for a, b in zip(encoder_of(first).weights, encoder_of(second).weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_cli_prints_the_refusal_in_one_line(tmp_path):
    path = tmp_path / "broken.keras"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    config = micro_config(tmp_path / "build", model={"path": str(path)})
    toml = write_toml(config, tmp_path / "user.toml")
    done = run_cli("finetune", "--config", str(toml), cwd=REPO)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "is not a Keras model" in errors[0] and "Traceback" not in done.stderr


def test_readme_example_configs_name_a_builder_that_pqat_can_compress():
    from pipeline.training.config import load_config
    from pipeline.training.image_set import ImageSet
    from pipeline.training.model_source import new_classifier

    builder_config = load_config(REPO / "configs" / "own-builder.toml")
    assert load_config(REPO / "configs" / "own-model.toml").model.path == "build/my_classifier.keras"
    images = ImageSet(np.zeros(4, np.int64), arrays=np.zeros((4, 28, 28, 1), np.uint8))
    model = new_classifier(builder_config, images, 10).model  # checks shape, classes, pruning and PQAT support
    assert builder_config.quantize.method == "pqat" and model.output_shape == (None, 10)
