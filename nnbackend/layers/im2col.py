"""The windows that convolution and pooling slide over an image, with the standard alone.

For a kernel of kh x kw, each kernel offset (i, j) meets one strided slice of the
(padded) input; stacking the kh * kw slices gives every window at once:

    window_views(x, kernel, stride)      the kh*kw slices, one per kernel offset, each
                                         (N, C, OH, OW)
    windows(x, kernel, stride)           (N, C, H, W) -> (N, C, kh*kw, OH, OW), stacked
    im2col(x, kernel, stride, padding)   (N, C, H, W) -> (N, C*kh*kw, OH*OW): the columns
                                         a convolution multiplies by its (F, C*kh*kw) kernel
    add_windows(parts, shape, ...)       the transpose of ``windows``: each window's
                                         gradient added back where the window came from
    col2im(cols, input_shape, ...)       the transpose of ``im2col``

Slicing, ``stack``, ``concat`` and ``reshape`` build the windows; ``add_windows`` adds by
slices, in place where the namespace allows it (array-api-extra's ``at``, which builds
the result anew where arrays are immutable). The backend seam may hold native versions
(``nnbackend.backend.fastpaths``); these stay the reference they are tested against.
"""

from __future__ import annotations

import array_api_extra as xpx

from nnbackend.backend import namespace_of


def out_size(size: int, kernel: int, stride: int, padding: int = 0) -> int:
    """How many windows of ``kernel`` fit along an axis of ``size`` (floor, as PyTorch)."""
    return (size + 2 * padding - kernel) // stride + 1


def offsets(kernel: tuple[int, int]) -> list[tuple[int, int]]:
    """The kernel offsets (i, j) in row-major order: window element k is offset k."""
    return [(i, j) for i in range(kernel[0]) for j in range(kernel[1])]


def window_slices(offset, out_shape, stride) -> tuple:
    """The index of the input pixels that kernel offset (i, j) meets, over every output
    position: rows i, i + sh, ..., columns j, j + sw, ..."""
    (i, j), (oh, ow), (sh, sw) = offset, out_shape, stride
    return (..., slice(i, i + sh * (oh - 1) + 1, sh), slice(j, j + sw * (ow - 1) + 1, sw))


def pad2d(x, padding: tuple[int, int]):
    """(N, C, H, W) with ``padding`` rows and columns of zeros on each side."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    xp = namespace_of(x)
    n, c, h, w = x.shape
    if pw:
        side = xp.zeros((n, c, h, pw), dtype=x.dtype, device=x.device)
        x = xp.concat([side, x, side], axis=3)
    if ph:
        side = xp.zeros((n, c, ph, w + 2 * pw), dtype=x.dtype, device=x.device)
        x = xp.concat([side, x, side], axis=2)
    return x


def windows(x, kernel: tuple[int, int], stride: tuple[int, int]):
    """(N, C, H, W) -> (N, C, kh*kw, OH, OW): element k of each window is kernel offset k."""
    return namespace_of(x).stack(window_views(x, kernel, stride), axis=2)


def window_views(x, kernel, stride) -> list:
    """The kh*kw strided slices of (N, C, H, W) that ``windows`` stacks, one per kernel
    offset, each (N, C, OH, OW); no copy where the namespace slices by views."""
    out = (out_size(x.shape[2], kernel[0], stride[0]), out_size(x.shape[3], kernel[1], stride[1]))
    return [x[window_slices(o, out, stride)] for o in offsets(kernel)]


def add_windows(parts, shape, kernel, stride, xp):
    """The transpose of ``windows``: an array of ``shape`` (N, C, H, W) where each of the
    kh*kw ``parts`` (N, C, OH, OW), one per kernel offset, is added onto the pixels that
    offset met. Windows that do not overlap (stride >= kernel) meet each pixel at most
    once: their parts are written, not added (one pass instead of three)."""
    parts = list(parts)
    out = (parts[0].shape[2], parts[0].shape[3])
    overlap = stride[0] < kernel[0] or stride[1] < kernel[1]
    dx = xp.zeros(shape, dtype=parts[0].dtype, device=parts[0].device)
    for offset, part in zip(offsets(kernel), parts, strict=True):
        at = xpx.at(dx)[window_slices(offset, out, stride)]
        dx = at.add(part, xp=xp) if overlap else at.set(part, xp=xp)
    return dx


def im2col(x, kernel, stride, padding):
    """(N, C, H, W) -> columns (N, C*kh*kw, OH*OW); row c*kh*kw + k of a sample's columns
    holds channel c at kernel offset k, as a (F, C, kh, kw) kernel reshaped to
    (F, C*kh*kw) expects."""
    xp = namespace_of(x)
    win = windows(pad2d(x, padding), kernel, stride)
    n, c, k, oh, ow = win.shape
    return xp.reshape(win, (n, c * k, oh * ow))


def col2im(cols, input_shape, kernel, stride, padding, out_shape):
    """The transpose of ``im2col``: columns (N, C*kh*kw, OH*OW) -> (N, C, H, W), the
    entries of overlapping windows summed."""
    xp = namespace_of(cols)
    n, c, h, w = input_shape
    (ph, pw), k = padding, kernel[0] * kernel[1]
    win = xp.reshape(cols, (n, c, k, *out_shape))
    padded = (n, c, h + 2 * ph, w + 2 * pw)
    dx = add_windows((win[:, :, i, ...] for i in range(k)), padded, kernel, stride, xp)
    return dx[:, :, ph : ph + h, pw : pw + w] if ph or pw else dx
