"""``Conv2D``: a 2-D convolution (cross-correlation, as every framework computes it)
as im2col and one matrix product."""

from __future__ import annotations

import math

from nnbackend import init as initializers
from nnbackend.backend.fastpaths import native
from nnbackend.backend.kernels import table
from nnbackend.checks import boolean, positive_int
from nnbackend.layers.base import (
    NO_GRAD_BUFFERS,
    Layer,
    check_built,
    check_images,
    fused_activation_of,
    image_shape,
    pair,
)
from nnbackend.layers.im2col import col2im, im2col, out_size
from nnbackend.registry import register, type_name


@register
class Conv2D(Layer):
    """x (batch, in_channels, H, W) -> y (batch, out_channels, OH, OW), with
    ``OH = (H + 2 * padding - kh) // stride + 1`` (and so for OW).

    Parameters as PyTorch lays them out: ``W`` (out_channels, in_channels, kh, kw) and
    ``b`` (out_channels,). ``kernel_size``, ``stride`` and ``padding`` (zeros) are an
    int or a (rows, columns) pair. ``init`` as for Dense, "he" by default, with fan-in
    ``in_channels * kh * kw``. The forward pass gathers every window into columns
    (im2col) and multiplies them by the kernel reshaped to (out_channels, in * kh * kw);
    the columns take ``kh * kw * OH * OW / (H * W)`` (about ``kh * kw``) times the input's
    memory. On torch the
    library's own convolution runs instead (oneDNN, cuDNN), and on CuPy kernels that lay
    the columns out for one product over the whole batch (``nnbackend.backend.fastpaths``).
    """

    decayed = ("W",)
    output_range = (-math.inf, math.inf)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        bias: bool = True,
        init="he",
    ):
        super().__init__()
        self.in_channels = positive_int(in_channels, "Conv2D in_channels")
        self.out_channels = positive_int(out_channels, "Conv2D out_channels")
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride, "stride")
        if isinstance(padding, str) and padding.lower() in ("same", "valid"):  # Keras's words
            same = tuple((k - 1) // 2 for k in self.kernel_size)
            even = any(k % 2 == 0 for k in self.kernel_size)  # a border on one side only
            told = f"padding={same} (at stride 1{': an even kernel loses a row or column' * even})"
            told = "padding=0" if padding.lower() == "valid" else told
            raise TypeError(f"Conv2D's padding is the zeros added on each side: {told}")
        self.padding = pair(padding, "padding")
        too_wide = any(p > k for p, k in zip(self.padding, self.kernel_size, strict=True))
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.padding) < 0 or too_wide:
            raise ValueError(  # a wider border adds outputs of zeros alone (and memory)
                "Conv2D needs kernel_size and stride of at least 1 and padding from 0 to "
                f"kernel_size, got kernel_size={kernel_size}, stride={stride}, padding={padding}"
            )
        self.bias = boolean(bias, "Conv2D bias")
        self.init = initializers.get(init)

    def param_shapes(self):
        shapes = {"W": (self.out_channels, self.in_channels, *self.kernel_size)}
        return {**shapes, "b": (self.out_channels,)} if self.bias else shapes

    def build(self, backend, rng):
        super().build(backend, rng)
        shapes = self.param_shapes()
        area = self.kernel_size[0] * self.kernel_size[1]
        fans = (self.in_channels * area, self.out_channels * area)
        self.params["W"] = self.init(shapes["W"], rng, backend, fans=fans)
        if self.bias:
            self.params["b"] = initializers.Zeros()(shapes["b"], rng, backend)

    def output_shape(self, input_shape):
        channels, h, w = image_shape(self, input_shape)
        if channels != self.in_channels:
            raise ValueError(
                f"{self!r} takes {self.in_channels} channels, not samples of shape "
                f"{tuple(input_shape)}"
            )
        oh, ow = self._out_hw(h, w)
        if oh < 1 or ow < 1:
            raise ValueError(
                f"{self!r}: its {self.kernel_size} kernel does not fit in a {h}x{w} input "
                f"padded by {self.padding}"
            )
        return (self.out_channels, oh, ow)

    def _out_hw(self, h: int, w: int) -> tuple[int, int]:
        k, s, p = self.kernel_size, self.stride, self.padding
        return out_size(h, k[0], s[0], p[0]), out_size(w, k[1], s[1], p[1])

    def forward(self, x, training=True):
        self._check_input(x)
        xp = self.backend.xp
        conv = native("conv2d", xp)
        if conv is not None:  # the library's own convolution (torch) or CuPy's kernels
            return self._forward_natively(conv, x)
        self._native = None
        gather = native("im2col", xp) or im2col
        cols = gather(x, self.kernel_size, self.stride, self.padding)  # (N, C*kh*kw, L)
        kernel = xp.reshape(self.params["W"], (self.out_channels, -1))
        y = kernel @ cols  # (N, F, L): one product for the whole batch
        if self.bias:
            y = y + xp.reshape(self.params["b"], (-1, 1))
        self._cols, self._x_shape = cols, tuple(x.shape)
        return xp.reshape(y, (x.shape[0], self.out_channels, *self._out_hw(*x.shape[2:])))

    def forward_activated(self, x, activation):
        """act(conv(x)) in one call, where the library has one (CuPy: the bias and the
        activation in the kernel that lays out the product as images), keeping what both
        layers' ``backward`` need; None where it has none."""
        conv = native("conv2d_act", self.backend.xp)
        name = fused_activation_of(activation)
        if conv is None or name is None:
            return None
        self._check_input(x)
        y = activation._y = self._forward_natively(lambda *args: conv(*args, name), x)
        return y  # not activation._y: another thread's predict may have set it since

    def _check_input(self, x) -> None:
        check_built(self)
        check_images(self, x, self.in_channels)
        self.output_shape(tuple(x.shape[1:]))  # a clear error for a kernel that does not fit

    def _forward_natively(self, conv, x):
        self._native = native("conv2d_backward", self.backend.xp)
        W, b = self.params["W"], self.params.get("b")
        y, self._saved = conv(x, W, b, self.stride, self.padding)
        return y

    def backward(self, dy, input_grad=True):
        if self._native is not None:
            dx, self.grads["W"], db = self._native(
                dy, self._saved, self.params["W"], self.stride, self.padding, self.bias,
                input_grad, self.grad_buffers,
            )  # fmt: skip
            if self.bias:
                self.grads["b"] = db
            return dx
        xp = self.backend.xp
        n, f, oh, ow = dy.shape
        dy = xp.reshape(dy, (n, f, oh * ow))
        per_sample = dy @ xp.matrix_transpose(self._cols)  # (N, F, C*kh*kw)
        out = self.grad_buffers  # the flat buffer's views, when a fit binds one
        kernels = None if out is NO_GRAD_BUFFERS or not out else table(xp)
        if kernels is not None and kernels.sum_into is not None:
            kernels.sum_into(per_sample, 0, xp.reshape(out["W"], (f, -1)))  # a view of it
            self.grads["W"] = out["W"]
            if self.bias:
                self.grads["b"] = kernels.sum_into(dy, (0, 2), out["b"])
        else:
            self.grads["W"] = xp.reshape(xp.sum(per_sample, axis=0), self.params["W"].shape)
            if self.bias:
                self.grads["b"] = xp.sum(dy, axis=(0, 2))
        if not input_grad:
            return None
        kernel = xp.reshape(self.params["W"], (f, -1))
        dcols = xp.matrix_transpose(kernel) @ dy  # (N, C*kh*kw, L)
        return col2im(dcols, self._x_shape, self.kernel_size, self.stride, self.padding, (oh, ow))

    def config(self):
        return {
            "type": type_name(self),
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": self.kernel_size,
            "stride": self.stride,
            "padding": self.padding,
            "bias": self.bias,
            "init": self.init.config(),
        }
