"""Elementwise activation layers: any input shape, the same shape out.

They have no weights and work on any backend's arrays as they come. Their backward
passes (and Sigmoid's and ReLU's forward) take the kernel table's fused version where the
backend has one (``nnbackend.backend.kernels``); the code beside it is the reference.
Sigmoid, Tanh and ReLU after a Dense layer are computed with it, in one call, where
the table has ``dense_act`` (``Sequential`` pairs them; ``Dense.forward_activated``).
"""

from __future__ import annotations

import math

from nnbackend import functional as F
from nnbackend.backend import namespace_of
from nnbackend.backend.kernels import table
from nnbackend.checks import finite_float
from nnbackend.layers.base import Layer
from nnbackend.registry import register, type_name


@register
class Identity(Layer):
    """x as it is ("linear"): any shape in, the same array out; dy passes back as it is."""

    aliases = ("linear",)

    def forward(self, x, training=True):
        return x

    def backward(self, dy, input_grad=True):
        return dy


@register
class Sigmoid(Layer):
    """1 / (1 + exp(-x)), stable for any x."""

    output_range = (0.0, 1.0)
    fused_activation = "sigmoid"

    def forward(self, x, training=True):
        fused = table(namespace_of(x)).sigmoid
        y = self._y = F.sigmoid(x) if fused is None else fused(x)
        return y  # not self._y: another thread's predict may have set it since

    def backward(self, dy, input_grad=True):
        fused = table(namespace_of(dy)).sigmoid_backward
        if fused is not None:
            return fused(self._y, dy)
        return dy * F.sigmoid_grad_from_output(self._y)


@register
class Tanh(Layer):
    """tanh(x), elementwise: any shape in, the same shape out, in (-1, 1). Backward uses
    the output kept by forward: dx = dy * (1 - y**2)."""

    output_range = (-1.0, 1.0)
    fused_activation = "tanh"

    def forward(self, x, training=True):
        y = self._y = F.tanh(x)
        return y

    def backward(self, dy, input_grad=True):
        fused = table(namespace_of(dy)).tanh_backward
        if fused is not None:
            return fused(self._y, dy)
        return dy * F.tanh_grad_from_output(self._y)


@register
class ReLU(Layer):
    """max(x, 0), elementwise: any shape in, the same shape out. Backward passes dy where
    the output is positive, 0 elsewhere (0 at x = 0)."""

    output_range = (0.0, math.inf)
    fused_activation = "relu"

    def forward(self, x, training=True):
        fused = table(namespace_of(x)).relu
        y = self._y = F.relu(x) if fused is None else fused(x)
        return y

    def backward(self, dy, input_grad=True):
        xp = namespace_of(dy)
        fused = table(xp).relu_backward
        if fused is not None:
            return fused(self._y, dy)
        return dy * xp.astype(self._y > 0, dy.dtype)


@register
class LeakyReLU(Layer):
    """x where x > 0, else alpha * x."""

    output_range = (-math.inf, math.inf)

    def __init__(self, alpha: float = 0.01):
        super().__init__()
        self.alpha = finite_float(alpha, "LeakyReLU alpha")

    def forward(self, x, training=True):
        self._x = x
        return F.leaky_relu(x, self.alpha)

    def backward(self, dy, input_grad=True):
        xp = namespace_of(dy)
        return xp.where(self._x > 0, dy, self.alpha * dy)

    def config(self):
        return {"type": type_name(self), "alpha": self.alpha}


@register
class Softmax(Layer):
    """Softmax over the last axis (the features of each row). For training, prefer
    logits into ``SoftmaxCrossEntropy``: fused, it is cheaper and stable for any logits."""

    output_range = (0.0, 1.0)

    def forward(self, x, training=True):
        y = self._y = F.softmax(x, axis=-1)
        return y

    def backward(self, dy, input_grad=True):
        return F.softmax_backward(self._y, dy, axis=-1)
