"""Pooling: the largest or the mean value of each window of each channel.

Windows that do not fit at the right or bottom edge are left out (floor, as PyTorch
does): a 2x2 pool over a 7x7 image gives 3x3 and ignores the last row and column.
"""

from __future__ import annotations

from nnbackend.backend import namespace_of
from nnbackend.backend.fastpaths import native
from nnbackend.layers.base import Layer, check_images, image_shape, pair
from nnbackend.layers.im2col import add_windows, out_size, window_views
from nnbackend.registry import register, type_name


class Pool2D(Layer):
    """Shared by MaxPool2D and AvgPool2D: (batch, C, H, W) -> (batch, C, OH, OW) with
    ``OH = (H - pool_h) // stride_h + 1``. ``stride`` defaults to ``pool_size``
    (windows side by side)."""

    keeps_range = True  # a maximum or a mean of values stays within their range

    def __init__(self, pool_size=2, stride=None):
        super().__init__()
        self.pool_size = pair(pool_size, "pool_size")
        self.stride = self.pool_size if stride is None else pair(stride, "stride")
        if min(self.pool_size) < 1 or min(self.stride) < 1:
            raise ValueError(
                f"{type(self).__name__} needs pool_size and stride of at least 1, "
                f"got pool_size={pool_size}, stride={stride}"
            )

    def output_shape(self, input_shape):
        channels, h, w = image_shape(self, input_shape)
        oh, ow = self._out_hw(h, w)
        if oh < 1 or ow < 1:
            raise ValueError(f"{self!r}: its window does not fit in a {h}x{w} input")
        return (channels, oh, ow)

    def _out_hw(self, h: int, w: int) -> tuple[int, int]:
        (kh, kw), (sh, sw) = self.pool_size, self.stride
        return out_size(h, kh, sh), out_size(w, kw, sw)

    def _take_input(self, x) -> None:
        check_images(self, x)
        self.output_shape(tuple(x.shape[1:]))  # a clear error for a window that does not fit
        self._x = x

    def _views(self, x):
        """The window slices of x (N, C, H, W), one per offset, each (N, C, OH, OW)."""
        self._take_input(x)
        return window_views(x, self.pool_size, self.stride)

    def _add_back(self, parts, xp):
        """Each offset's gradient part (N, C, OH, OW) added back into (N, C, H, W)."""
        shape = tuple(self._x.shape)
        return add_windows(parts, shape, self.pool_size, self.stride, xp)

    def config(self):
        return {"type": type_name(self), "pool_size": self.pool_size, "stride": self.stride}


@register
class MaxPool2D(Pool2D):
    """The largest value of each window. Its gradient goes to that one input (the first
    of equal largest ones, in row-major order, as in PyTorch). A window holding NaN
    gives NaN; where its gradient goes then is the backend's (nowhere on the standard
    path, to a NaN on torch and CuPy): the loss is NaN by then, and fit stops on it."""

    def forward(self, x, training=True):
        xp = namespace_of(x)
        self._take_input(x)
        pool = native("max_pool", xp)
        found = None if pool is None else pool(x, self.pool_size, self.stride)
        self._native = None if found is None else native("max_pool_backward", xp)
        if found is not None:  # the library's own, for windows of this shape and stride
            y, self._where = found
            self._y = y
            return y  # not self._y: another thread's predict may have set it since
        views = window_views(x, self.pool_size, self.stride)
        y = views[0]
        for view in views[1:]:  # elementwise over the slices: no stacked copy
            y = xp.maximum(y, view)
        self._y = y
        return y

    def backward(self, dy, input_grad=True):
        if self._native is not None:
            return self._native(dy, self._x, self._where, self.pool_size, self.stride)
        xp = namespace_of(dy)
        views = window_views(self._x, self.pool_size, self.stride)
        hit = views[0] == self._y
        parts, found = [dy * xp.astype(hit, dy.dtype)], hit  # found: windows routed already
        for view in views[1:]:
            hit = xp.logical_and(view == self._y, xp.logical_not(found))
            parts.append(dy * xp.astype(hit, dy.dtype))
            found = xp.logical_or(found, hit)
        return self._add_back(parts, xp)


@register
class AvgPool2D(Pool2D):
    """The mean of each window (every window has its full area: no padding)."""

    def forward(self, x, training=True):
        views = self._views(x)
        total = views[0]
        for view in views[1:]:
            total = total + view
        return total / len(views)

    def backward(self, dy, input_grad=True):
        xp = namespace_of(dy)
        area = self.pool_size[0] * self.pool_size[1]
        share = dy / area
        return self._add_back([share] * area, xp)


@register
class GlobalAvgPool2D(Layer):
    """The mean of each channel over the whole image: (batch, C, H, W) -> (batch, C)."""

    keeps_range = True

    def output_shape(self, input_shape):
        channels, height, width = image_shape(self, input_shape)
        self._check_area(height, width)
        return (channels,)

    def forward(self, x, training=True):
        check_images(self, x)
        self._check_area(x.shape[2], x.shape[3])
        self._x_shape = tuple(x.shape)
        return namespace_of(x).mean(x, axis=(2, 3))

    def _check_area(self, height: int, width: int) -> None:
        if height * width == 0:  # the mean of no pixels: NaN, with no error
            raise ValueError(f"{self!r}: an image of {height}x{width} pixels has no mean")

    def backward(self, dy, input_grad=True):
        xp = namespace_of(dy)
        n, c, h, w = self._x_shape
        share = xp.reshape(dy / (h * w), (n, c, 1, 1))
        return xp.zeros(self._x_shape, dtype=dy.dtype, device=dy.device) + share
