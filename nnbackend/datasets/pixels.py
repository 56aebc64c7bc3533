"""Pixels as float32 in [0, 1], from whatever a data file stored, and the bounds on
what an image file may make the reader allocate."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

#: the most bytes the float32 pixels of one file may take (MNIST's 60,000 training
#: images take 188 MB, the cat files' 209 images 10 MB)
MAX_PIXEL_BYTES = 1 << 30
#: bytes of pixels a compressed file may declare per stored byte. Deflate can reach
#: ~1032 on constant data, but images compress far less (MNIST's about 5, its labels
#: 2): a 2 MB file declaring a gigabyte of "images" is refused before it is inflated.
MAX_IMAGE_RATIO = 64
#: the most images (and so labels) one file may hold: MNIST has 60,000 (the bytes above
#: stop 28 x 28 images at 342,000). A label becomes 8 bytes (int64), 40 one-hot
MAX_IMAGES = 10_000_000


def check_image_count(shape: tuple, src: Path, what: str, error=ValueError) -> None:
    """Refuse images of ``shape`` (N, ...) before they are read if a side is 0 (images
    without pixels), or if N, or their pixels as float32, are beyond the bounds above.
    Every loader calls it, so each file format says the same. ``what`` names them
    ("x_train.npy"); ``error`` is the ValueError class raised."""
    pixels = math.prod(shape)
    if 0 in shape[1:]:
        raise error(
            f"{src}: {what} declares {shape}: images without pixels; each image has at "
            "least one pixel along every side"
        )
    if shape and shape[0] > MAX_IMAGES:
        raise error(
            f"{src}: {what} declares {shape}: {shape[0]} images, more than the {MAX_IMAGES} "
            "these loaders read (MNIST has 60,000): the file is damaged, or of a larger data set "
            "than they are for"
        )
    if 4 * pixels > MAX_PIXEL_BYTES:
        raise error(
            f"{src}: {what} declares {shape}: {pixels} pixels, {4 * pixels} bytes as "
            f"float32, more than the {MAX_PIXEL_BYTES} these loaders read (MNIST's take 188 MB): "
            "the file is damaged, or of a larger data set than they are for"
        )


def scaled_pixels(x: np.ndarray, src: Path, what: str, axes=None, error=ValueError) -> np.ndarray:
    """float32 pixels in [0, 1]: integers (0..255) are divided by 255, floats must
    already lie in [0, 1] and are kept as they are (never divided a second time).
    ``axes``: the result is ``x.transpose(axes)``, written in that order at once (no
    second full-size copy). Booleans are refused: True is neither 1 nor 255 for sure.
    ``error``: the exception class a refusal raises (the loader's own)."""
    if x.dtype.kind == "b":
        raise error(
            f"{src}: {what} hold booleans; save pixels as integers 0..255 or as floats "
            "in [0, 1] (a binarised image: x.astype('uint8') * 255)"
        )
    if x.dtype.kind in "iu":
        if x.size and (x.min() < 0 or x.max() > 255):
            raise error(
                f"{src}: {what} hold integers from {x.min()} to {x.max()}; pixels are 0..255"
            )
        return _into_float32(x, axes, np.float32(255))
    if x.dtype.kind != "f":
        raise error(f"{src}: {what} hold {x.dtype} values; pixels are numbers")
    if not np.isfinite(x).all():
        raise error(f"{src}: {what} hold NaN or infinite values")
    if x.size and (x.min() < 0 or x.max() > 1):
        raise error(
            f"{src}: {what} are floats from {_shown(x.min())} to {_shown(x.max())}; float "
            "pixels must already lie in [0, 1] (divide 0..255 values by 255 before saving)"
        )
    return _into_float32(x, axes, None)


def _shown(value) -> str:
    """A float as short as it can be written and read back the same: 1.0000001 is not
    1 (``:g`` showed it as 1, in the message that said it was past 1); 1e300 in its
    exponent form, not 301 digits."""
    text = np.format_float_positional(value, trim="-")
    return text if len(text) <= 24 else np.format_float_scientific(value, trim="-")


def _into_float32(x: np.ndarray, axes, divisor) -> np.ndarray:
    """``x.transpose(axes)`` (divided by ``divisor``) as a new C-contiguous float32 array:
    the only full-size array made (astype, then dividing, made two)."""
    view = x.transpose(axes) if axes is not None else x
    out = np.empty(view.shape, dtype=np.float32)
    if divisor is None:
        np.copyto(out, view, casting="unsafe")
    else:
        np.divide(view, divisor, out=out, dtype=np.float32, casting="unsafe")
    return out
