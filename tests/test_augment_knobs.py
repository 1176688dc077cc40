"""Each knob of an augmentation policy does what it says on synthetic images, and nothing else:
a flip-free policy never mirrors, rotations and shifts stay within their bounds, crops keep their area."""
import math

import numpy as np
import pytest

from pipeline.core.tf_env import tf
from pipeline.training.augment import DRAWS, augment, augment_with
from pipeline.training.augment_policy import PRESETS, AugmentPolicy
from pipeline.training.fit import seed_everything

SIZE = 28
COPIES = 64  # each flip happens to half of the images: all 64 unflipped has odds 2^-64


def _copies(image: np.ndarray) -> tf.Tensor:
    return tf.constant(np.repeat(image[None, :, :, None], COPIES, axis=0).astype(np.float32))


def _augmented(image: np.ndarray, policy: AugmentPolicy, seed: int = 3) -> np.ndarray:
    seed_everything(seed)
    return augment(_copies(image), policy).numpy()[..., 0]


def _stored(image: np.ndarray, policy: AugmentPolicy, **draws: float) -> np.ndarray:
    """One image augmented by chosen draws (the others 0.5, the middle of their range)."""
    row = np.array([[draws.get(name, 0.5) for name in DRAWS]], dtype=np.float32)
    return augment_with(tf.constant(image[None, :, :, None].astype(np.float32)), row, policy).numpy()[0, :, :, 0]


def _halves():
    """Bright left half, dark right half; and bright top half, dark bottom half."""
    left = np.zeros((SIZE, SIZE), dtype=np.float32)
    left[:, : SIZE // 2] = 0.8
    return left, left.T.copy()


def _mirrored(images: np.ndarray, axis: int) -> np.ndarray:
    """Which images have more light in their second half along `axis` (1: right, 0: bottom) than the first."""
    first, second = np.split(images, 2, axis=axis + 1)
    return second.mean(axis=(1, 2)) > first.mean(axis=(1, 2))


FLIP_FREE = [PRESETS["digits-text"].training, PRESETS["digits-text"].views,
             AugmentPolicy(crop_area=(0.3, 1.0), aspect=(0.75, 4 / 3), rotation=45.0, translation=0.2,
                           brightness=0.4, contrast=0.5, noise=0.1)]


@pytest.mark.parametrize("policy", FLIP_FREE, ids=["digits-text", "digits-text-views", "every-other-knob-at-most"])
def test_a_flip_free_policy_never_mirrors(policy):
    left, top = _halves()
    assert not _mirrored(_augmented(left, policy), axis=1).any()
    assert not _mirrored(_augmented(top, policy), axis=0).any()


@pytest.mark.parametrize("flip, horizontal, vertical", [("horizontal", True, False), ("vertical", False, True),
                                                         ("both", True, True), ("none", False, False)])
def test_each_flip_mirrors_half_of_the_images_along_its_axis_only(flip, horizontal, vertical):
    left, top = _halves()
    policy = AugmentPolicy(flip=flip)
    for image, axis, expected in ((left, 1, horizontal), (top, 0, vertical)):
        out = _augmented(image, policy)
        mirrored = _mirrored(out, axis)
        assert (0.2 < mirrored.mean() < 0.8) if expected else not mirrored.any()
        np.testing.assert_array_equal(out[mirrored], np.flip(image, axis=axis)[None].repeat(mirrored.sum(), 0))
        np.testing.assert_array_equal(out[~mirrored], image[None].repeat((~mirrored).sum(), 0))
    assert _augmented(left, PRESETS["natural"].training).shape == (COPIES, SIZE, SIZE)


def _bar() -> np.ndarray:
    """A horizontal bar through the centre, long and thin."""
    image = np.zeros((SIZE, SIZE))
    image[SIZE // 2 - 1 : SIZE // 2 + 1, 4:-4] = 1.0
    return image


def _orientation(image: np.ndarray) -> float:
    """The angle in degrees of the main axis of the image's light (second moments); 0 = horizontal."""
    ys, xs = np.mgrid[: image.shape[0], : image.shape[1]]
    total = image.sum()
    mx, my = (image * xs).sum() / total, (image * ys).sum() / total
    mu20, mu02 = (image * (xs - mx) ** 2).sum(), (image * (ys - my) ** 2).sum()
    mu11 = (image * (xs - mx) * (ys - my)).sum()
    return math.degrees(0.5 * math.atan2(2 * mu11, mu20 - mu02))


def test_rotations_stay_within_their_bound_and_reach_it():
    policy = AugmentPolicy(rotation=10.0)
    angles = np.array([_orientation(image) for image in _augmented(_bar(), policy)])
    assert np.abs(angles).max() <= 10.5 and np.abs(angles).max() > 7  # within bounds, and really turned
    assert (angles > 1).any() and (angles < -1).any()  # both ways
    for draw in (0.0, 1.0):  # the ends of the range turn by the bound
        assert abs(abs(_orientation(_stored(_bar(), policy, rotation=draw))) - 10) < 0.5
    assert abs(_orientation(_stored(_bar(), policy, rotation=0.5))) < 0.1


def _centroid(image: np.ndarray) -> np.ndarray:
    ys, xs = np.mgrid[: image.shape[0], : image.shape[1]]
    return np.array([(image * ys).sum(), (image * xs).sum()]) / image.sum()


def test_translations_stay_within_their_bound_and_do_not_turn():
    dot = np.zeros((SIZE, SIZE))
    dot[12:16, 12:16] = 1.0
    policy = AugmentPolicy(translation=0.1)
    shifts = np.array([_centroid(image) - _centroid(dot) for image in _augmented(dot, policy)])
    assert np.abs(shifts).max() <= 0.1 * SIZE + 0.01 and np.abs(shifts).max() > 2
    np.testing.assert_allclose(_centroid(_stored(dot, policy, shift_y=0.0, shift_x=1.0)) - _centroid(dot),
                               [-2.8, 2.8], atol=0.05)
    assert abs(_orientation(_stored(_bar(), policy, shift_y=0.9, shift_x=0.1))) < 0.1


def test_a_crop_keeps_its_area_and_is_resized_back():
    """A horizontal ramp 0..1 cropped at the top-left corner to a square of area a ends at sqrt(a)."""
    ramp = np.tile(np.linspace(0.0, 1.0, SIZE), (SIZE, 1))
    policy = AugmentPolicy(crop_area=(0.25, 0.64))
    for draw, side in ((0.0, 0.5), (1.0, 0.8)):
        out = _stored(ramp, policy, area=draw, top=0.0, left=0.0)
        assert out.shape == (SIZE, SIZE) and out[:, 0].max() < 1e-6
        np.testing.assert_allclose(out[:, -1], side, atol=1e-5)


def test_brightness_contrast_and_noise_stay_within_their_bounds():
    gray = np.full((SIZE, SIZE), 0.5)
    brighter = _augmented(gray, AugmentPolicy(brightness=0.2))
    offsets = brighter.mean(axis=(1, 2)) - 0.5
    assert np.abs(offsets).max() <= 0.2 + 1e-6 and np.ptp(offsets) > 0.2
    assert np.ptp(brighter, axis=(1, 2)).max() < 1e-6  # each image changes as a whole
    two_tone = np.where(np.arange(SIZE) < SIZE // 2, 0.3, 0.7)[None, :].repeat(SIZE, 0)
    spread = np.ptp(_augmented(two_tone, AugmentPolicy(contrast=0.5)), axis=(1, 2))
    assert spread.min() >= 0.4 * 0.5 - 1e-6 and spread.max() <= 0.4 * 1.5 + 1e-6 and np.ptp(spread) > 0.2
    noisy = _augmented(gray, AugmentPolicy(noise=0.05)) - 0.5
    changed = np.abs(noisy).max(axis=(1, 2)) > 0
    assert 0.2 < changed.mean() < 0.8  # noise on about half of the images
    np.testing.assert_allclose(noisy[changed].std(), 0.05, rtol=0.05)


def test_no_augmentation_returns_the_images():
    left, _ = _halves()
    np.testing.assert_array_equal(_augmented(left, PRESETS["none"].training), left[None].repeat(COPIES, 0))
