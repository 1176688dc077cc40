"""Byte-reproducible .npz files, so committed and content-addressed data hashes the same every time."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from pipeline.core.artifacts import atomic_path

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def save_npz(path: str | Path, **arrays: ArrayLike) -> None:
    """Like np.savez, but with fixed timestamps and sorted members; written atomically."""
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name in sorted(arrays):
                info = zipfile.ZipInfo(f"{name}.npy", date_time=_FIXED_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                with archive.open(info, "w") as member:
                    np.lib.format.write_array(member, np.asarray(arrays[name]), allow_pickle=False)
