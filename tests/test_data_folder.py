"""Image folders and .npz files as datasets: scanning, decoding, the data stage's checks and bad input."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from pipeline.errors import UserError
from pipeline.training.config import DataConfig
from pipeline.training.datasets import load_dataset
from pipeline.training.external_files import source_files
from pipeline.training.runner import run_stages
from tests.conftest import micro_config
from tests.image_folder_fixtures import CLASS_NAMES, colored_images, save_image, write_image_folder


def folder_config(root, **overrides) -> DataConfig:
    return DataConfig(**{"format": "folder", "path": str(root), "image_size": [32, 32], **overrides})


@pytest.fixture
def small_folder(tmp_path):
    return write_image_folder(tmp_path / "images", train_per_class=4, test_per_class=2, unlabeled=5)


def run_data_stage(build, root, **data):
    config = micro_config(build, data={"format": "folder", "path": str(root), "image_size": [32, 32],
                                       "train_limit": 0, "test_limit": 0, "validation_size": 3, **data})
    return run_stages(config, until="data", log=lambda _: None)


def test_classes_are_sorted_folder_names_and_every_format_decodes(tmp_path):
    rng = np.random.default_rng(1)
    originals = {name: colored_images(label, 1, rng)[0] for label, name in enumerate(CLASS_NAMES)}
    for split in ("train", "test"):
        for (name, image), suffix in zip(originals.items(), ("png", "bmp", "gif"), strict=True):
            save_image(tmp_path / split / name / f"a.{suffix}", image)
        save_image(tmp_path / split / "cat" / "deeper" / "b.jpg", originals["cat"])  # any depth counts
    (tmp_path / "train" / "cat" / "notes.txt").write_text("not an image, ignored")
    data = load_dataset(folder_config(tmp_path))
    assert data.class_names == CLASS_NAMES and data.num_classes == 3
    assert data.train.labels.tolist() == [0, 0, 1, 2] and data.train.streamed
    pixels = data.train.to_array()
    assert pixels.shape == (4, 32, 32, 3) and pixels.dtype == np.uint8
    np.testing.assert_array_equal(pixels[0], originals["cat"])  # PNG: lossless
    np.testing.assert_array_equal(pixels[2], originals["dog"])  # BMP: lossless
    for position, path in ((1, tmp_path / "train/cat/deeper/b.jpg"), (3, tmp_path / "train/frog/a.gif")):
        reference = np.asarray(Image.open(path).convert("RGB"))  # lossy formats: Pillow's decoding
        assert np.abs(pixels[position].astype(int) - reference).max() <= 4  # IDCT rounding differs


def test_grayscale_and_resize_to_image_size(tmp_path):
    gray = np.arange(16 * 20, dtype=np.uint8).reshape(16, 20)
    for split in ("train", "test"):
        save_image(tmp_path / split / "only" / "g.png", gray)
        save_image(tmp_path / split / "only" / "big.png", np.full((64, 80, 3), 200, np.uint8))
    data = load_dataset(folder_config(tmp_path, image_size=[16, 20], color="grayscale", resize="area"))
    pixels = data.test.to_array()
    assert data.input_shape == (16, 20, 1) and pixels.shape == (2, 16, 20, 1)
    np.testing.assert_array_equal(pixels[1, ..., 0], gray)  # a gray image at the target size stays exact
    assert (pixels[0] == 200).all()  # 64x80 RGB gray -> 16x20 grayscale


def test_corrupt_files_are_skipped_and_counted_or_refused_when_strict(tmp_path, small_folder):
    (small_folder / "train" / "dog" / "broken.png").write_bytes(b"not a png at all")
    good_jpeg = next((small_folder / "train" / "frog").glob("*.jpg")).read_bytes()
    (small_folder / "train" / "frog" / "cut.jpg").write_bytes(good_jpeg[: len(good_jpeg) // 2])
    manifest = run_data_stage(tmp_path / "build", small_folder)
    metrics = manifest.stage("data")["metrics"]
    skipped = json.loads(manifest.output_path("data", "skipped").read_text())
    assert metrics["skipped_images"] == 2 and sorted(skipped) == sorted(
        str(small_folder / "train" / name) for name in ("dog/broken.png", "frog/cut.jpg"))
    assert metrics["train_images"] + metrics["validation_images"] == 12  # the 12 good training images
    assert manifest.data["class_names"] == list(CLASS_NAMES)
    with pytest.raises(UserError, match=r"2 image file\(s\) cannot be read or do not .*broken.png.*strict = false"):
        run_data_stage(tmp_path / "strict", small_folder, strict=True)


def _unreadable_entries(folder) -> dict[str, str]:
    """A dangling symlink, a symlink loop and a file whose name is not UTF-8, each among good images: what a
    careless copy leaves behind. Returns what the data stage must list for each."""
    dog, frog = folder / "train" / "dog", folder / "train" / "frog"
    (dog / "gone.png").symlink_to(dog / "deleted.png")
    (frog / "x1.png").symlink_to(frog / "x2.png")
    (frog / "x2.png").symlink_to(frog / "x1.png")
    good = next(dog.glob("*.png")).read_bytes()
    with open(os.fsencode(dog) + b"/caf\xe9.png", "wb") as handle:  # Latin-1 bytes, not UTF-8
        handle.write(good)
    return {f"{dog}/gone.png": "broken symlink", f"{frog}/x1.png": "symlink loop",
            f"{frog}/x2.png": "symlink loop", f"{dog}/caf\\xe9.png": "file name is not UTF-8"}


def test_broken_links_loops_and_undecodable_names_are_skipped_and_listed_or_refused_when_strict(tmp_path,
                                                                                                 small_folder):
    expected = _unreadable_entries(small_folder)
    manifest = run_data_stage(tmp_path / "build", small_folder)  # the runner hashes every input file first
    skipped = json.loads(manifest.output_path("data", "skipped").read_text())
    assert sorted(skipped) == sorted(f"{path} ({reason})" for path, reason in expected.items())
    assert manifest.stage("data")["metrics"]["skipped_images"] == 4
    assert manifest.stage("data")["metrics"]["train_images"] + manifest.stage("data")["metrics"][
        "validation_images"] == 12
    with pytest.raises(UserError, match=r"^4 image file\(s\) cannot be read .*data.strict = false") as caught:
        run_data_stage(tmp_path / "strict", small_folder, strict=True)
    assert "\n" not in str(caught.value)


def test_a_single_class_is_refused_in_one_line(tmp_path):
    for split in ("train", "test"):
        for index, image in enumerate(colored_images(0, 3, np.random.default_rng(0))):
            save_image(tmp_path / "images" / split / "cat" / f"{index}.png", image)
    with pytest.raises(UserError, match=r"has 1 class \(cat\): a classifier needs at least two") as caught:
        run_data_stage(tmp_path / "build", tmp_path / "images")
    assert "\n" not in str(caught.value)


def test_a_class_whose_every_file_is_corrupt_is_refused(tmp_path, small_folder):
    for path in (small_folder / "test" / "frog").iterdir():
        path.write_bytes(b"garbage")
    with pytest.raises(UserError, match="class 'frog' has no readable image left in the test split"):
        run_data_stage(tmp_path / "build", small_folder)


def test_empty_class_folder_is_refused(small_folder):
    (small_folder / "train" / "zebra").mkdir()
    (small_folder / "test" / "zebra").mkdir()
    with pytest.raises(UserError, match=r"class folder .*train/zebra holds no readable images.*add images or remove"):
        load_dataset(folder_config(small_folder))


def test_test_classes_must_match_train(small_folder):
    (small_folder / "test" / "dog").rename(small_folder / "test" / "doggo")
    with pytest.raises(UserError, match=r"test has different classes.*missing \['dog'\], extra \['doggo'\]"):
        load_dataset(folder_config(small_folder))


def test_missing_folders_name_the_fix(tmp_path, small_folder):
    with pytest.raises(UserError, match=r"image folder .*nowhere not found: set data.path in"):
        load_dataset(folder_config(tmp_path / "nowhere"))
    with pytest.raises(UserError, match=r"unlabeled image folder .*absent not found: fix data.unlabeled_path"):
        load_dataset(folder_config(small_folder, unlabeled_path=str(tmp_path / "absent")))
    (small_folder / "test").rename(tmp_path / "elsewhere")
    with pytest.raises(UserError, match=r"has no test/ folder: lay it out as path/train/<class>"):
        load_dataset(folder_config(small_folder))


def test_val_folder_replaces_the_seeded_split(tmp_path, small_folder):
    for label, name in enumerate(CLASS_NAMES):
        save_image(small_folder / "val" / name / "v.png", colored_images(label, 1, np.random.default_rng(2))[0])
    manifest = run_data_stage(tmp_path / "build", small_folder)
    metrics = manifest.stage("data")["metrics"]
    assert (metrics["train_images"], metrics["validation_images"], metrics["test_images"]) == (12, 3, 6)


def test_unlabeled_images_any_depth_and_source_files(small_folder):
    config = folder_config(small_folder, unlabeled_path=str(small_folder / "unlabeled"))
    data = load_dataset(config)
    assert len(data.unlabeled) == 5 and (data.unlabeled.labels == -1).all()
    assert data.unlabeled.to_array().shape == (5, 32, 32, 3)
    files = source_files(config)
    assert len(files) == 12 + 6 + 5 and all(path.is_file() for path in files)


def test_folder_config_needs_image_size_and_known_choices(tmp_path):
    from pipeline.training.config import PipelineConfig, validate

    for data, message in ((DataConfig(format="folder"), "image_size = \\[height, width\\] is required"),
                          (DataConfig(format="folder", image_size=[32]), "must be \\[height, width\\]"),
                          (DataConfig(format="folder", image_size=[8, 8], color="cmyk"), "data.color"),
                          (DataConfig(format="folder", image_size=[8, 8], train_limit=5), "smaller folder")):
        with pytest.raises(UserError, match=message):
            validate(PipelineConfig(data=data))


def write_npz(path, **overrides):
    rng = np.random.default_rng(3)
    arrays = {"x_train": rng.integers(0, 256, (12, 8, 8, 3), dtype=np.uint8), "y_train": np.arange(12) % 3,
              "x_test": rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8), "y_test": np.arange(6) % 3,
              "x_unlabeled": rng.integers(0, 256, (20, 8, 8, 3), dtype=np.uint8),
              "class_names": np.array(["a", "b", "c"])}
    arrays.update(overrides)
    np.savez(path, **{key: value for key, value in arrays.items() if value is not None})
    return path


def test_npz_format_with_unlabeled_images_and_class_names(tmp_path):
    data = load_dataset(DataConfig(format="npz", path=str(write_npz(tmp_path / "d.npz")), train_limit=10))
    assert len(data.train) == 10 and len(data.test) == 6 and len(data.unlabeled) == 20
    assert data.class_names == ("a", "b", "c") and data.input_shape == (8, 8, 3) and not data.train.streamed


@pytest.mark.parametrize("overrides, message", [
    ({"y_test": None}, "lacks y_test"),
    ({"x_train": np.zeros((12, 8, 8, 3), np.float32)}, "x_train must be non-empty uint8 raw pixels"),
    ({"y_train": np.arange(12) % 4}, r"labels outside \[0, 3\)"),
    ({"x_test": np.zeros((6, 9, 9, 3), np.uint8)}, "image shape of x_train"),
])
def test_bad_npz_is_refused(tmp_path, overrides, message):
    with pytest.raises(UserError, match=message):
        load_dataset(DataConfig(format="npz", path=str(write_npz(tmp_path / "d.npz", **overrides))))


def test_an_exported_png_folder_reads_back_pixel_identical(tmp_path):
    from pipeline.training.image_export import export_png_folder
    from tests.test_data import make_idx_dir

    (tmp_path / "idx").mkdir()
    make_idx_dir(tmp_path / "idx", n_train=12, n_test=6)
    arrays = load_dataset(DataConfig(path=str(tmp_path / "idx")))
    assert export_png_folder(arrays, tmp_path / "png", every=2) == {"train": 6, "test": 3}
    folder = load_dataset(folder_config(tmp_path / "png", image_size=[8, 8], color="grayscale"))
    assert folder.class_names == ("0", "1", "2")
    order = np.argsort(arrays.train.labels[::2], kind="stable")  # the folder lists images class by class
    np.testing.assert_array_equal(folder.train.to_array(), arrays.train.arrays[::2][order])
    np.testing.assert_array_equal(folder.train.labels, arrays.train.labels[::2][order])
