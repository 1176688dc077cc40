"""Augmentation policies: which random changes a training stage makes to its images.

A policy is a set of knobs (flips, crop area and aspect ranges, rotation, translation, brightness,
contrast, noise); presets name the useful ones. Each training section's `augment` setting is `true`
(the natural preset), `false` (none), a preset name or a table of knobs. Mirroring a photo of a shirt
keeps it a shirt, mirroring a "2" does not: the right policy depends on the data. This module has no
TensorFlow, so a bad setting is refused before any work starts; pipeline.training.augment applies it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from pipeline.core.toml_config import check_type, choice, in_range
from pipeline.errors import UserError

FLIPS = ("none", "horizontal", "vertical", "both")


@dataclass(frozen=True)
class AugmentPolicy:
    """The knobs; the defaults change nothing."""

    flip: str = "none"  # which mirrorings are applied, each to half of the images
    crop_area: tuple[float, float] = (1.0, 1.0)  # a random crop keeps this fraction of the image, resized back
    aspect: tuple[float, float] = (1.0, 1.0)  # the crop's width / height ratio range, drawn log-uniform
    rotation: float = 0.0  # degrees, at most, either way
    translation: float = 0.0  # shift, at most, as a fraction of height and width, either way
    brightness: float = 0.0  # max additive change
    contrast: float = 0.0  # max relative change around the image mean
    noise: float = 0.0  # std of gaussian noise added to half of the images

    @property
    def crops(self) -> bool:
        return self.crop_area != (1.0, 1.0) or self.aspect != (1.0, 1.0)

    @property
    def changes_images(self) -> bool:
        return self != AugmentPolicy()


@dataclass(frozen=True)
class Preset:
    """A named pair of policies: `views` for SimCLR's two strongly changed views of an image, `training`
    for everything else that trains on images (fine-tuning, distillation, recovery, QAT, rotation
    pretraining)."""

    training: AugmentPolicy
    views: AugmentPolicy


NONE = AugmentPolicy()
PRESETS = {
    # Photos of objects, clothes, animals, scenes: whatever is the same class mirrored. The default, and
    # the augmentation the pipeline always made (a seeded run draws the same views).
    "natural": Preset(
        training=AugmentPolicy(flip="horizontal", crop_area=(0.75, 1.0), aspect=(3 / 4, 4 / 3), brightness=0.1,
                               contrast=0.1),
        views=AugmentPolicy(flip="horizontal", crop_area=(0.3, 1.0), aspect=(3 / 4, 4 / 3), brightness=0.4,
                            contrast=0.5, noise=0.05)),
    # Digits, letters, signs, anything with a handedness (a mirrored 2 is no 2): no flips, mild crops that
    # keep the glyph whole, small rotations; SimCLR's views are natural's without the flip, turned a little.
    "digits-text": Preset(
        training=AugmentPolicy(crop_area=(0.9, 1.0), aspect=(0.9, 1 / 0.9), rotation=5.0, brightness=0.1,
                               contrast=0.1),
        views=AugmentPolicy(crop_area=(0.3, 1.0), aspect=(3 / 4, 4 / 3), rotation=10.0, brightness=0.4,
                            contrast=0.5, noise=0.05)),
    # Nothing changed: a baseline, or images that already vary as much as the ones the model will meet.
    "none": Preset(training=NONE, views=NONE),
}
FOLLOW_FINETUNE = "finetune"  # the value that makes a section use [finetune]'s setting
KNOBS = tuple(f.name for f in dataclasses.fields(AugmentPolicy))
KNOB_LIMITS = {"rotation": 45.0, "translation": 0.5, "brightness": 1.0, "contrast": 1.0, "noise": 1.0}
RANGE_LIMITS = {"crop_area": (0.05, 1.0), "aspect": (0.25, 4.0)}

AugmentSetting = bool | str | dict


def policy_of(setting: AugmentSetting, views: bool, where: str) -> AugmentPolicy:
    """The policy an `augment` setting names (`views`: SimCLR's views); `where` names it in errors."""
    setting = _preset_name(setting)
    if isinstance(setting, str):
        if setting not in PRESETS:
            raise UserError(f"{where} = {setting!r} is not a preset; choose one of: {', '.join(PRESETS)} "
                            f"(or true, false, a table of knobs)")
        return PRESETS[setting].views if views else PRESETS[setting].training
    if isinstance(setting, dict):
        return _from_table(setting, where)
    raise UserError(f"{where} must be true, false, a preset name or a table of knobs, "
                    f"got {type(setting).__name__} {setting!r}")


def policy_record(setting: AugmentSetting, views: bool, where: str) -> dict[str, Any]:
    """What the manifest records and the cache key hashes: the preset's name ("custom" for a table)
    and every knob."""
    preset = "custom" if isinstance(setting, dict) else _preset_name(setting)
    return {"preset": preset, **dataclasses.asdict(policy_of(setting, views, where))}


def _preset_name(setting: AugmentSetting) -> str | dict:
    """true and false as the presets they stand for."""
    if isinstance(setting, bool):
        return "natural" if setting else "none"
    return setting


def _from_table(table: dict, where: str) -> AugmentPolicy:
    """A policy from a table of knobs; the knobs it leaves out change nothing."""
    unknown = sorted(set(table) - set(KNOBS))
    if unknown:
        raise UserError(f"{where}: unknown knob {unknown[0]!r} (knobs: {', '.join(KNOBS)})")
    values: dict[str, Any] = {}
    for name, value in table.items():
        key = f"{where}.{name}"
        if name == "flip":
            choice(check_type(value, str, key), FLIPS, key)
        elif name in RANGE_LIMITS:
            value = _value_range(value, key, *RANGE_LIMITS[name])
        else:
            value = check_type(value, float, key)
            in_range(value, 0.0, KNOB_LIMITS[name], key, low_open=False, high_open=False)
        values[name] = value
    return AugmentPolicy(**values)


def _value_range(value: Any, key: str, low: float, high: float) -> tuple[float, float]:
    """[min, max], two numbers in [low, high] with min <= max."""
    if not isinstance(value, list) or len(value) != 2:
        raise UserError(f"{key} = {value!r} must be [min, max], two numbers")
    pair = (check_type(value[0], float, key), check_type(value[1], float, key))
    for number in pair:
        in_range(number, low, high, key, low_open=False, high_open=False)
    if pair[0] > pair[1]:
        raise UserError(f"{key} = {value!r}: min must not be above max")
    return pair
