"""One split's images for every stage: uint8 arrays in memory, or image files decoded by tf.data.

The small built-in datasets stay in memory; an image folder is a list of paths that tf.data
reads, decodes and resizes while training runs, so memory stays bounded however many files
the folder holds. Subsets (validation split, labelled fraction, calibration) are chosen on
positions, never by loading the images, and every consumer gets the same uint8 pixels either way.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from pipeline.core.preprocessing import PIXEL_OFFSET, PIXEL_SCALE
from pipeline.core.tf_env import tf

UNLABELED = -1
# ITU-R BT.601 luma, the weights of tf.image.rgb_to_grayscale; they sum to 1, so a gray image stays exact.
GRAY_WEIGHTS = (0.2989, 0.5870, 0.1140)
DECODE_BATCH = 256


@dataclass(frozen=True)
class ImageDecoding:
    """How a file becomes a uint8 image: any PNG/JPEG/BMP/GIF (first frame), color, resize."""

    size: tuple[int, int]  # (height, width)
    channels: int  # 1 (grayscale) or 3 (rgb)
    method: str  # tf.image.resize method

    def describe(self) -> dict:
        return {"image_size": list(self.size), "color": "grayscale" if self.channels == 1 else "rgb",
                "resize": self.method, "resize_antialias": False,
                "decode": "PNG, JPEG, BMP or GIF (first frame) decoded to RGB, then converted and resized"}


def decode_file(path: tf.Tensor, decoding: ImageDecoding) -> tf.Tensor:
    """uint8 [H, W, C] from one image file: decode as RGB, convert color, resize, round."""
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    image = tf.cast(tf.ensure_shape(image, [None, None, 3]), tf.float32)
    if decoding.channels == 1:
        image = tf.reduce_sum(image * tf.constant(GRAY_WEIGHTS), axis=-1, keepdims=True)
    image = tf.image.resize(image, decoding.size, method=decoding.method)
    return tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)


def model_input(images: tf.Tensor) -> tf.Tensor:
    """The model's float input in tf: x * PIXEL_SCALE + PIXEL_OFFSET (as core.preprocessing.to_float)."""
    return tf.cast(images, tf.float32) * PIXEL_SCALE + PIXEL_OFFSET


@dataclass(frozen=True)
class ImageSet:
    """The images of one split with their labels (UNLABELED for unlabeled images)."""

    labels: np.ndarray  # int64 [N]
    arrays: np.ndarray | None = None  # uint8 [N, H, W, C] when in memory
    files: np.ndarray | None = None  # str [N] paths when read from files
    decoding: ImageDecoding | None = None  # how `files` are decoded

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def streamed(self) -> bool:
        return self.files is not None

    @property
    def pixels(self) -> np.ndarray:
        """The images of an in-memory set."""
        if self.arrays is None:
            raise ValueError("a streamed image set holds file paths, not pixels")
        return self.arrays

    @property
    def paths(self) -> np.ndarray:
        """The image files of a streamed set."""
        if self.files is None:
            raise ValueError("an in-memory image set has no files")
        return self.files

    @property
    def decoder(self) -> ImageDecoding:
        """How a streamed set's files are decoded."""
        if self.decoding is None:
            raise ValueError("an image set read from files needs its decoding")
        return self.decoding

    @property
    def image_shape(self) -> tuple[int, int, int]:
        if self.streamed:
            return (*self.decoder.size, self.decoder.channels)
        height, width, channels = (int(size) for size in self.pixels.shape[1:])
        return height, width, channels

    def select(self, positions: np.ndarray) -> ImageSet:
        """The images at `positions` (an index array), without reading any of them."""
        positions = np.asarray(positions, dtype=np.int64)
        return ImageSet(self.labels[positions], None if self.streamed else self.pixels[positions],
                        self.paths[positions] if self.streamed else None, self.decoding)

    def concatenate(self, other: ImageSet) -> ImageSet:
        """Both sets in one (same storage kind and image shape), e.g. training plus unlabeled images."""
        if self.streamed != other.streamed or self.image_shape != other.image_shape:
            raise ValueError("can only concatenate image sets stored the same way with the same image shape")
        labels = np.concatenate([self.labels, other.labels])
        if self.streamed:
            return ImageSet(labels, files=np.concatenate([self.paths, other.paths]), decoding=self.decoding)
        return ImageSet(labels, arrays=np.concatenate([self.pixels, other.pixels]))

    def dataset(self, *, labelled: bool, shuffle_seed: int | None = None,
                extras: tuple[np.ndarray, ...] = ()) -> tf.data.Dataset:
        """Unbatched uint8 images (with labels when `labelled`, then one row of each of `extras`, per-image
        arrays that travel with their image); shuffling happens before decoding."""
        source = self.files if self.streamed else self.arrays
        columns = (source, self.labels, *extras) if labelled else (source, *extras)
        ds = tf.data.Dataset.from_tensor_slices(columns if len(columns) > 1 else source)
        if shuffle_seed is not None:
            ds = ds.shuffle(len(self), seed=shuffle_seed, reshuffle_each_iteration=True)
        if self.streamed:
            decoding = self.decoder
            decode = ((lambda path, *rest: (decode_file(path, decoding), *rest)) if len(columns) > 1
                      else (lambda path: decode_file(path, decoding)))
            ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
        return ds

    def batches(self, batch_size: int = DECODE_BATCH) -> Iterator[np.ndarray]:
        """uint8 batches in order, decoded on the fly for files: for evaluation over a whole split."""
        if not self.streamed:
            for start in range(0, len(self), batch_size):
                yield self.pixels[start : start + batch_size]
            return
        yield from self.dataset(labelled=False).batch(batch_size).prefetch(tf.data.AUTOTUNE).as_numpy_iterator()

    def to_array(self) -> np.ndarray:
        """All images as one uint8 array: for small subsets only (samples files, calibration)."""
        if not self.streamed:
            return self.pixels
        shape = (0, *self.image_shape)
        return np.concatenate([np.empty(shape, np.uint8), *self.batches()])


def decodable_positions(images: ImageSet) -> tuple[np.ndarray, float]:
    """Positions of the files that decode, and the images decoded per second (one streamed pass)."""
    if not images.streamed:
        return np.arange(len(images)), 0.0
    decoding = images.decoder
    ds = tf.data.Dataset.from_tensor_slices((np.arange(len(images)), images.paths))
    ds = ds.map(lambda position, path: (position, decode_file(path, decoding)), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.ignore_errors(log_warning=False).map(lambda position, _: position).batch(DECODE_BATCH)
    started = time.perf_counter()
    kept = [batch for batch in ds.prefetch(tf.data.AUTOTUNE).as_numpy_iterator()]
    elapsed = time.perf_counter() - started
    positions = np.sort(np.concatenate([np.empty(0, np.int64), *kept]))
    return positions, len(positions) / max(elapsed, 1e-9)
