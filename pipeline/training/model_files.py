"""Keras HDF5 files (models and weights) written so that a full disk is one ordinary error.

HDF5 writes in place and copes badly with a full disk: `model.save` surfaces ENOSPC as a
RuntimeError or OSError with a multi-line message that names no fix, and a file left in that failed
state crashed the interpreter at exit (a segfault, exit 139) in our full-tmpfs test. So Keras writes
the HDF5 file into memory, which cannot fill, and the bytes reach the disk through plain Python I/O:
a full disk is then an OSError(ENOSPC), which the runner turns into one line naming the build folder
and the fix (pipeline/core/folders.py), and the stage's temporary folder is discarded. The file's
bytes are what Keras would have written to the path; it loads the same. Stage models are small (a
few MB), so the copy in memory costs nothing worth measuring.
"""
from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import h5py

from pipeline.core.tf_env import keras


def _write_through_memory(path: Path, write: Callable[[h5py.File], None]) -> None:
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as handle:
        write(handle)
    with open(path, "wb") as out:
        out.write(buffer.getbuffer())


def save_model_h5(model: keras.Model, path: Path, *, include_optimizer: bool = True) -> None:
    """`model.save(path)` as HDF5."""
    _write_through_memory(path, lambda handle: model.save(handle, include_optimizer=include_optimizer))


def save_weights_h5(model: keras.Model, path: Path) -> None:
    """`model.save_weights(path)` as HDF5 (tf_keras's own writer: `save_weights` takes only paths)."""
    hdf5_format = keras.src.saving.legacy.hdf5_format
    _write_through_memory(path, lambda handle: hdf5_format.save_weights_to_hdf5_group(handle, model))
