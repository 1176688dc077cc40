"""Keras 3 model files: telling them from tf_keras ones, and loading them with Keras 3.

Both Keras write `.keras` zips and `.h5` files; each records the Keras version that wrote it
(the zip's metadata.json, the HDF5 file's `keras_version` attribute). A Keras 3 file's layer list
is read before loading, so that a Lambda or a custom layer class is named in one line rather
than surfacing as Keras's own deserialization error.
"""
from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py

from pipeline.errors import UserError
from pipeline.keras3 import keras3
from pipeline.keras3.layers import not_shared


def _metadata(path: Path) -> tuple[str, dict]:
    """(Keras version, model config) of a .keras or .h5 file; ("", {}) when it records none."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if not {"metadata.json", "config.json"} <= names:
                return "", {}
            version = json.loads(archive.read("metadata.json")).get("keras_version", "")
            return str(version), json.loads(archive.read("config.json"))
    if h5py.is_hdf5(path):
        with h5py.File(path, "r") as handle:
            version, config = handle.attrs.get("keras_version", ""), handle.attrs.get("model_config")
            return str(version), json.loads(config) if config else {}
    return "", {}


def is_keras3_file(path: Path) -> bool:
    """True for a model file Keras 3 wrote (a missing or unreadable file is not)."""
    try:
        return path.is_file() and _metadata(path)[0].startswith("3.")
    except (OSError, ValueError, zipfile.BadZipFile):
        return False


def _layers(config: dict) -> Iterator[dict]:
    for layer in config.get("config", {}).get("layers", []):
        yield layer
        yield from _layers(layer)


def _custom(layer: dict) -> bool:
    class_name, registered = layer.get("class_name", ""), layer.get("registered_name")
    module = layer.get("module") or "keras.layers"
    return (class_name == "Lambda" or not module.startswith("keras") or registered not in (None, class_name)
            or not hasattr(keras3().layers, class_name))


def load_keras3_file(path: Path, origin: str) -> Any:
    """The Keras 3 model in `path`, without its optimizer; a Lambda or custom layer refused by name."""
    _, config = _metadata(path)
    for layer in _layers(config):
        if _custom(layer):
            name, class_name = layer.get("config", {}).get("name", "?"), layer["class_name"].rpartition(">")[2]
            raise UserError(f"{origin}: {not_shared(name, class_name)}")  # HDF5 names a class 'package>Class'

    try:
        return keras3().saving.load_model(path, compile=False)
    except Exception as error:  # noqa: BLE001 - Keras raises many types for a file it cannot read
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise UserError(f"{origin} is a Keras 3 file that Keras 3 cannot load ({type(error).__name__}: {first}); "
                        f"save it again with model.save('my_classifier.keras')") from None
