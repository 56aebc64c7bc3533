"""``Flatten``: images to rows, between convolutional and dense layers."""

from __future__ import annotations

import math

from nnbackend.backend import namespace_of
from nnbackend.layers.base import Layer
from nnbackend.registry import register


@register
class Flatten(Layer):
    """(batch, d1, d2, ...) -> (batch, d1 * d2 * ...), in C order: channel by channel,
    row by row (as PyTorch's ``flatten(1)``)."""

    keeps_range = True

    def output_shape(self, input_shape):
        return (math.prod(input_shape),)

    def forward(self, x, training=True):
        if x.ndim < 2:
            raise ValueError(
                f"Flatten takes a batch of samples, (batch, d1, ...), got shape "
                f"{tuple(x.shape)}: a 1-D array has no sample dimensions to flatten"
            )
        self._x_shape = tuple(x.shape)
        # not -1: a share of no rows (a distributed fit) has no size to divide
        return namespace_of(x).reshape(x, (x.shape[0], math.prod(x.shape[1:])))

    def backward(self, dy, input_grad=True):
        return namespace_of(dy).reshape(dy, self._x_shape)
