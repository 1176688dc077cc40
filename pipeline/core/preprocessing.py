"""How a raw uint8 pixel becomes the model's float input: one definition for training,
conversion, the samples shipped to devices and the manifest."""
from __future__ import annotations

import numpy as np

# x * PIXEL_SCALE + PIXEL_OFFSET maps uint8 pixels to [0, 1].
PIXEL_SCALE = 1.0 / 255.0
PIXEL_OFFSET = 0.0

def to_float(images: np.ndarray) -> np.ndarray:
    """The model's input: x * PIXEL_SCALE + PIXEL_OFFSET, float32."""
    return images.astype(np.float32) * np.float32(PIXEL_SCALE) + np.float32(PIXEL_OFFSET)
