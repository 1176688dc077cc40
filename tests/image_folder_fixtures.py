"""Image folders for the tests, written with Pillow: learnable classes (one dominant color each)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

CLASS_NAMES = ("cat", "dog", "frog")  # sorted, as the pipeline orders them
SIZE = 32


def colored_images(label: int, count: int, rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """uint8 RGB images whose channel `label` is bright and the others dark, with noise and a square."""
    images = rng.integers(0, 90, (count, size, size, 3), dtype=np.uint8)
    images[..., label] += 150
    for image in images:
        top, left = rng.integers(0, size // 2, 2)
        image[top : top + size // 4, left : left + size // 4] = rng.integers(0, 256, 3, dtype=np.uint8)
    return images


def save_image(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image.squeeze()).save(path)


def write_image_folder(root: Path, train_per_class: int = 40, test_per_class: int = 10, unlabeled: int = 60,
                       seed: int = 0) -> Path:
    """root/train|test/<class>/*.png|jpg (PNG and JPEG mixed) and root/unlabeled/ (nested, no labels)."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", train_per_class), ("test", test_per_class)):
        for label, name in enumerate(CLASS_NAMES):
            for index, image in enumerate(colored_images(label, count, rng)):
                suffix = "png" if index % 2 == 0 else "jpg"
                save_image(root / split / name / f"{name}_{index:03d}.{suffix}", image)
    for index in range(unlabeled):
        image = colored_images(index % len(CLASS_NAMES), 1, rng)[0]
        save_image(root / "unlabeled" / f"batch{index % 3}" / f"u{index:03d}.png", image)
    return root
