"""The image-folder layout of Keras `image_dataset_from_directory`: scanning and structure checks.

`path/train/<class>/...`, `path/test/<class>/...` and, when present, `path/val/<class>/...`;
class names are the folder names, sorted, and a label is its class's position in that list.
Files at any depth below a class folder count; only the image suffixes below are read.
Nothing is decoded here, so a folder of any size is listed in seconds. An entry that cannot be read
as a file (a broken symlink, a symlink loop, no read permission) or whose name is not UTF-8 is left
out and listed with its reason: the data stage counts it like an image that does not decode.
"""
from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
TRAIN, VALIDATION, TEST = "train", "val", "test"
LAYOUT = "path/train/<class>/*.png|jpg|bmp|gif and path/test/<class>/* (path/val/<class>/* optional)"


@dataclass(frozen=True)
class FolderSplit:
    """The image files of one split (paths relative to the dataset folder) and their labels."""

    files: np.ndarray  # str [N]
    labels: np.ndarray  # int64 [N]
    unreadable: tuple[str, ...] = ()  # "<path> (<reason>)" of the entries left out


def shown_path(path: Path) -> str:
    """A path as printable text even when its bytes are not UTF-8 (those bytes appear as \\xNN)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def unreadable_reason(path: Path) -> str | None:
    """Why `path` cannot be one of the dataset's files, or None when it can."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return "file name is not UTF-8"
    try:
        os.stat(path)
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "symlink loop"
        return "broken symlink" if path.is_symlink() else (error.strerror or "cannot be read")
    return None if os.access(path, os.R_OK) else "no read permission"


def image_files_under(folder: Path) -> tuple[list[Path], list[str]]:
    """Every readable image file below `folder`, at any depth, in a stable (sorted) order, and the image
    entries left out with their reason; hidden entries are skipped."""
    found, unreadable = [], []
    for parent, dirs, names in os.walk(folder):
        dirs[:] = sorted(name for name in dirs if not name.startswith("."))
        for name in sorted(names):
            if name.startswith(".") or not name.lower().endswith(IMAGE_SUFFIXES):
                continue
            path = Path(parent, name)
            reason = unreadable_reason(path)
            if reason:
                unreadable.append(f"{shown_path(path)} ({reason})")
            else:
                found.append(path)
    return found, unreadable


def class_names_of(split_dir: Path) -> tuple[str, ...]:
    return tuple(sorted(entry.name for entry in split_dir.iterdir()
                        if entry.is_dir() and not entry.name.startswith(".")))


def _scan_split(root: Path, split: str, class_names: tuple[str, ...]) -> FolderSplit:
    files, labels, unreadable = [], [], []
    for label, name in enumerate(class_names):
        members, left_out = image_files_under(root / split / name)
        if not members:
            raise UserError(f"class folder {root / split / name} holds no readable images "
                            f"({', '.join(IMAGE_SUFFIXES)}{'; first left out: ' + left_out[0] if left_out else ''}): "
                            f"add images or remove the folder")
        files += [str(path.relative_to(root)) for path in members]
        labels += [label] * len(members)
        unreadable += left_out
    return FolderSplit(np.asarray(files, dtype=str), np.asarray(labels, dtype=np.int64), tuple(unreadable))


def _check_same_classes(root: Path, split: str, expected: tuple[str, ...]) -> None:
    found = class_names_of(root / split)
    if found != expected:
        missing = sorted(set(expected) - set(found))
        extra = sorted(set(found) - set(expected))
        raise UserError(f"{root / split} has different classes from {root / TRAIN}: "
                        f"missing {missing or 'none'}, extra {extra or 'none'}; "
                        f"give every split the same class folders")


def scan_folder(root: Path, config_path: str) -> tuple[tuple[str, ...], dict[str, FolderSplit]]:
    """(class names, {split: files}) of a dataset folder; the `val` split only when its folder exists."""
    if not root.is_dir():
        raise UserError(f"image folder {root} not found: set data.path in {config_path} "
                        f"to a folder laid out as {LAYOUT}")
    for split in (TRAIN, TEST):
        if not (root / split).is_dir():
            raise UserError(f"{root} has no {split}/ folder: lay it out as {LAYOUT}")
    class_names = class_names_of(root / TRAIN)
    if not class_names:
        raise UserError(f"{root / TRAIN} has no class folders: put each class's images in train/<class name>/")
    splits = [TRAIN, TEST] + ([VALIDATION] if (root / VALIDATION).is_dir() else [])
    for split in splits[1:]:
        _check_same_classes(root, split, class_names)
    return class_names, {split: _scan_split(root, split, class_names) for split in splits}


def scan_unlabeled(folder: Path, config_path: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """The unlabeled images (any depth below `folder`), as paths relative to it, and the entries left out."""
    if not folder.is_dir():
        raise UserError(f"unlabeled image folder {folder} not found: fix data.unlabeled_path in {config_path} "
                        f"or set it to \"\"")
    files, unreadable = image_files_under(folder)
    if not files:
        raise UserError(f"unlabeled image folder {folder} holds no readable images ({', '.join(IMAGE_SUFFIXES)})")
    return np.asarray([str(path.relative_to(folder)) for path in files], dtype=str), tuple(unreadable)
