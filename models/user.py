"""A user's own classifier: an architecture from a builder function, or a trained model file.

Both must end as what every stage expects: a flat functional (or Sequential) tf_keras model,
one image in, one score per class out. Whatever is wrong with them is said in one line that
names the problem and the fix, before any training starts.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.core.tf_env import keras
from pipeline.errors import UserError
from pipeline.keras3 import keras3

BUILDER_FORM = "'package.module:function' (a function (input_shape, num_classes) -> keras.Model)"
MODEL_FILE_FORMS = ".keras file, .h5 file or SavedModel folder"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"


def _builder_module(spec: str):
    module_name, _, function_name = spec.partition(":")
    if not module_name or not function_name:
        raise UserError(f"model.builder = {spec!r} must be {BUILDER_FORM}")
    try:
        return importlib.import_module(module_name), function_name
    except Exception as error:  # noqa: BLE001 - any failure while importing user code is the user's to fix
        raise UserError(f"model.builder = {spec!r}: cannot import {module_name!r} ({_first_line(error)}); "
                        f"put the module on PYTHONPATH or in the folder you run the pipeline from") from None


def import_builder(spec: str) -> Callable:
    """The function `spec` names, imported."""
    module, function_name = _builder_module(spec)
    function = getattr(module, function_name, None)
    if not callable(function):
        raise UserError(f"model.builder = {spec!r}: module {module.__name__!r} has no function {function_name!r}")
    return function


def custom_layers(spec: str) -> dict[str, type]:
    """The Layer classes defined in the builder's module: what loading its saved models needs."""
    if not spec:
        return {}
    module, _ = _builder_module(spec)
    return {name: value for name, value in vars(module).items()
            if isinstance(value, type) and issubclass(value, keras.layers.Layer)}


def build_with(spec: str, input_shape: tuple[int, ...], num_classes: int) -> Any:
    """The builder's model: a tf_keras Model, or a Keras 3 one (which the caller rebuilds as tf_keras)."""
    model = import_builder(spec)(tuple(input_shape), num_classes)
    if not isinstance(model, (keras.Model, keras3().Model)):
        raise UserError(f"model.builder = {spec!r} returned {type(model).__name__}, not a Keras Model; "
                        f"return keras.Model(inputs, outputs)")
    return model


def _unreadable(path: Path, error: BaseException) -> str:
    return (f"model.path {path} is not a Keras model this pipeline can load ({_first_line(error)}); "
            f"save your classifier with model.save('my_classifier.keras')")


def load_model_file(path: Path) -> keras.Model:
    """A user's trained classifier, loaded without its optimizer."""
    if not path.exists():
        raise UserError(f"model.path {path} does not exist; point it at a {MODEL_FILE_FORMS}")
    try:
        model = keras.models.load_model(path, compile=False)
    except ValueError as error:
        if "safe_mode" not in str(error):
            raise UserError(_unreadable(path, error)) from None
        raise UserError(f"model.path {path} holds a Lambda layer, whose Python code Keras does not load from a "
                        f".keras file; give the model's code as [model] builder instead") from None
    except Exception as error:  # noqa: BLE001 - Keras raises many types for a file it cannot read
        raise UserError(_unreadable(path, error)) from None
    if not isinstance(model, keras.Model):
        raise UserError(f"model.path {path} holds a TensorFlow SavedModel without Keras metadata; "
                        f"save it from tf_keras with model.save(...)")
    return model


def check_graph_model(model: keras.Model, origin: str) -> None:
    """TF-MOT rewrites only flat functional or Sequential graphs, and the stages save HDF5."""
    if not (getattr(model, "_is_graph_network", False) or isinstance(model, keras.Sequential)):
        raise UserError(f"{origin}: the model is a subclassed keras.Model ({type(model).__name__}); TF-MOT prunes "
                        f"and quantizes only functional or Sequential models: build it as keras.Model(inputs, outputs)")
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if nested:
        raise UserError(f"{origin}: layer '{nested[0].name}' ({type(nested[0]).__name__}) is a model inside the "
                        f"model, which TF-MOT refuses; build one flat model from the inner model's output tensor")


def check_fits(model: keras.Model, origin: str, input_shape: tuple[int, ...], num_classes: int) -> None:
    """One image of the data's shape in, one score per class out."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UserError(f"{origin}: the model has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                        f"the pipeline needs one image input and one class-score output")
    got_input = tuple(model.input_shape[1:])
    if got_input != tuple(input_shape):
        raise UserError(f"{origin}: the model takes inputs of shape {got_input} but the data's images are "
                        f"{tuple(input_shape)}; rebuild the model for that shape or resize the data")
    got_classes = model.output_shape[-1]
    if len(model.output_shape) != 2 or got_classes != num_classes:
        raise UserError(f"{origin}: the model outputs shape {tuple(model.output_shape[1:])} but the data has "
                        f"{num_classes} classes; its last layer must be Dense({num_classes})")
