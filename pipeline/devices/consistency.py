"""Does a device's result agree with the host? A result that contradicts the host's own reference is
not a measurement of the model the host built, so it is marked and kept out of baselines.

The samples file holds the host's reference outputs and the labels: the agent reports the largest
|device output - reference| (in the model's output units, int8 units for an int8 model) and its
top-1 accuracy; the host's accuracy on the same samples is argmax(reference) against the labels.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.devices.inventory import DeviceProfile


def host_accuracy(samples: Path) -> float:
    """Top-1 accuracy of the host's reference outputs on every sample (the agent evaluates them all)."""
    with np.load(samples) as arrays:
        references, labels = arrays["reference_outputs"], arrays["labels"].reshape(-1)
    return float(np.mean(np.argmax(references.reshape(len(labels), -1), axis=1) == labels))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def mismatch_reason(document: Mapping[str, Any], profile: DeviceProfile, expected_accuracy: float) -> str | None:
    """Why the device's result contradicts the host (one line), or None when it agrees. A value the
    agent left out counts as a contradiction: a board cannot skip the check by not reporting."""
    reasons = []
    reported = document.get("device")
    if reported != profile.name:
        reasons.append(f"the agent reported device {str(reported)[:60]!r}")
    diff = _number(document.get("output_max_diff"))
    if diff is None or diff > profile.output_tolerance:
        reasons.append("no output difference was reported" if diff is None else
                       f"outputs differ from the host's reference by up to {diff:g} units "
                       f"(output_tolerance = {profile.output_tolerance:g})")
    block = document.get("accuracy")
    accuracy = _number(block.get("value")) if isinstance(block, Mapping) else None
    if accuracy is None:
        reasons.append("no on-device accuracy was reported")
    elif accuracy < expected_accuracy - profile.accuracy_margin:
        reasons.append(f"on-device accuracy {accuracy:.4f} is far below the host's {expected_accuracy:.4f} on the "
                       f"same samples (accuracy_margin = {profile.accuracy_margin:g})")
    if not reasons:
        return None
    return ("result contradicts the host: " + "; ".join(reasons) +
            "; is the model on the device the one the host built? (check its sha256 and the runtime)")
