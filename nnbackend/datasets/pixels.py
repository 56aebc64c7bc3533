"""Pixels as float32 in [0, 1], from whatever a data file stored."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def scaled_pixels(x: np.ndarray, src: Path, what: str) -> np.ndarray:
    """float32 pixels in [0, 1]: integers (0..255) are divided by 255, floats must
    already lie in [0, 1] and are kept as they are (never divided a second time)."""
    if x.dtype.kind in "biu":
        if x.size and (x.min() < 0 or x.max() > 255):
            raise ValueError(
                f"{src}: {what} hold integers from {x.min()} to {x.max()}; pixels are 0..255"
            )
        return x.astype(np.float32) / np.float32(255)
    if x.dtype.kind != "f":
        raise ValueError(f"{src}: {what} hold {x.dtype} values; pixels are numbers")
    if not np.isfinite(x).all():
        raise ValueError(f"{src}: {what} hold NaN or infinite values")
    if x.size and (x.min() < 0 or x.max() > 1):
        raise ValueError(
            f"{src}: {what} are floats from {x.min():g} to {x.max():g}; float pixels must "
            "already lie in [0, 1] (divide 0..255 values by 255 before saving)"
        )
    return x.astype(np.float32)
