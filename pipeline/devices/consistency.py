"""Does a device's result agree with the host? A result that contradicts the host's own reference is
not a measurement of the model the host built, so it is marked and kept out of baselines.

The samples file holds the host's reference outputs and the labels; the agent reports its top-1
accuracy, how often its top-1 class is the reference's, and the largest |device output - reference|
in the model's output units. The rule separates a different model from rounding (docs/devices.md has
the measurements): int8 kernels of another build or architecture round differently, which moves
outputs by a few quantization steps and flips the top-1 class only on near-ties, while altered
weights move them by tens to hundreds of steps and drop the agreement to about chance.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.devices.inventory import DeviceProfile

QUANTIZED_LEVELS = {np.dtype(np.int8): 255, np.dtype(np.uint8): 255}  # full scale of an output, in steps


@dataclass(frozen=True)
class HostReference:
    """What the host's own outputs on the shipped samples say."""

    accuracy: float  # top-1 of the reference outputs against the labels
    count: int  # samples
    full_scale: float  # the output's range in output units: 255 steps for int8, the references' spread for float


def host_reference(samples: Path) -> HostReference:
    """Accuracy, sample count and output full scale from the host's samples file (the agent evaluates them all)."""
    with np.load(samples) as arrays:
        references, labels = arrays["reference_outputs"], arrays["labels"].reshape(-1)
    flat = references.reshape(len(labels), -1)
    accuracy = float(np.mean(np.argmax(flat, axis=1) == labels))
    spread = float(np.ptp(flat.astype(np.float64))) if flat.size else 0.0
    return HostReference(accuracy, len(labels), QUANTIZED_LEVELS.get(flat.dtype, spread) or 1.0)


def accuracy_allowance(profile: DeviceProfile, reference: HostReference) -> float:
    """How far below the host's accuracy a board may be: accuracy_sigmas binomial standard errors, plus one sample."""
    p, n = reference.accuracy, max(reference.count, 1)
    return profile.accuracy_sigmas * math.sqrt(p * (1 - p) / n) + 1 / n


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _output_reason(document: Mapping[str, Any], profile: DeviceProfile, reference: HostReference) -> str | None:
    diff = _number(document.get("output_max_diff"))
    limit = profile.output_tolerance * reference.full_scale
    if diff is None:
        return "no output difference was reported"
    if diff > limit:
        return (f"outputs differ from the host's reference by up to {diff:g} units (output_tolerance = "
                f"{profile.output_tolerance:g} of a {reference.full_scale:g}-unit full scale allows {limit:g})")
    return None


def _agreement_reason(document: Mapping[str, Any], profile: DeviceProfile) -> str | None:
    agreement = _number(document.get("top1_agreement"))
    if agreement is None:
        return "no top-1 agreement was reported"
    if agreement < profile.min_top1_agreement:
        return (f"the top-1 class agrees with the host's on only {agreement:.1%} of the samples "
                f"(min_top1_agreement = {profile.min_top1_agreement:g})")
    return None


def _accuracy_reason(document: Mapping[str, Any], profile: DeviceProfile, reference: HostReference) -> str | None:
    block = document.get("accuracy")
    accuracy = _number(block.get("value")) if isinstance(block, Mapping) else None
    if accuracy is None:
        return "no on-device accuracy was reported"
    allowance = accuracy_allowance(profile, reference)
    if accuracy < reference.accuracy - allowance:
        return (f"on-device accuracy {accuracy:.4f} is below the host's {reference.accuracy:.4f} on the same "
                f"{reference.count} samples by more than {allowance:.4f} "
                f"(accuracy_sigmas = {profile.accuracy_sigmas:g})")
    return None


def mismatch_reason(document: Mapping[str, Any], profile: DeviceProfile, reference: HostReference) -> str | None:
    """Why the device's result contradicts the host (one line), or None when it agrees. A value the
    agent left out counts as a contradiction: a board cannot skip the check by not reporting."""
    reported = document.get("device")
    reasons = [f"the agent reported device {str(reported)[:60]!r}" if reported != profile.name else None,
               _output_reason(document, profile, reference), _agreement_reason(document, profile),
               _accuracy_reason(document, profile, reference)]
    found = [reason for reason in reasons if reason]
    if not found:
        return None
    return ("result contradicts the host: " + "; ".join(found) +
            "; is the model on the device the one the host built? (check its sha256 and the runtime)")
