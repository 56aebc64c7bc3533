"""``Dense``: the fully connected layer, ``y = x @ W + b``."""

from __future__ import annotations

import math

from nnbackend import init as initializers
from nnbackend.backend.kernels import table
from nnbackend.checks import boolean, positive_int
from nnbackend.layers.base import NO_GRAD_BUFFERS, Layer, check_built, fused_activation_of
from nnbackend.registry import register, type_name


@register
class Dense(Layer):
    """``y = x @ W + b``: x (batch, n_in) -> y (batch, n_out); W has shape (n_in, n_out),
    b (n_out,).

    ``init`` is an initialiser name ("lecun", the default: randn / sqrt(n_in); "he",
    "xavier", "normal" = randn * 0.01) or an ``nb.init.Initializer``. Biases start at 0;
    ``bias=False`` leaves them out.
    """

    decayed = ("W",)
    output_range = (-math.inf, math.inf)

    def __init__(self, n_in: int, n_out: int, bias: bool = True, init="lecun"):
        super().__init__()
        self.n_in = positive_int(n_in, "Dense n_in")
        self.n_out = positive_int(n_out, "Dense n_out")
        self.bias = boolean(bias, "Dense bias")
        self.init = initializers.get(init)

    def build(self, backend, rng):
        super().build(backend, rng)
        shapes = self.param_shapes()
        self.params["W"] = self.init(shapes["W"], rng, backend)
        if self.bias:
            self.params["b"] = initializers.Zeros()(shapes["b"], rng, backend)

    def param_shapes(self):
        return {"W": (self.n_in, self.n_out), **({"b": (self.n_out,)} if self.bias else {})}

    @property
    def input_shape(self):
        return (self.n_in,)

    def output_shape(self, input_shape):
        if tuple(input_shape) != (self.n_in,):
            given = (
                f"{input_shape[0]}"
                if len(input_shape) == 1
                else f"samples of shape {tuple(input_shape)} (put a Flatten() before it)"
            )
            raise ValueError(f"{self!r} takes {self.n_in} features, not {given}")
        return (self.n_out,)

    def forward(self, x, training=True):
        self._take(x)
        if self.bias:
            linear = table(self.backend.xp).linear
            if linear is not None:  # one operator (torch: addmm)
                return linear(x, self.params["W"], self.params["b"])
        y = x @ self.params["W"]
        if self.bias:
            y += self.params["b"]
        return y

    def forward_activated(self, x, activation):
        """act(x @ W + b) in one call of the kernel table's ``dense_act`` (torch: one
        ``_addmm_activation`` for ReLU; CuPy: the product, then one kernel), keeping
        what both layers' ``backward`` need; None where the table has none."""
        dense_act = table(self.backend.xp).dense_act if self.bias else None
        name = fused_activation_of(activation)
        if dense_act is None or name is None:
            return None
        self._take(x)
        y = activation._y = dense_act(x, self.params["W"], self.params["b"], name)
        return y  # not activation._y: another thread's predict may have set it since

    def _take(self, x) -> None:
        """Check ``x`` (batch, n_in) and keep it for ``backward``."""
        check_built(self)
        if x.ndim != 2 or x.shape[1] != self.n_in:
            raise ValueError(
                f"{self!r} expects input of shape (batch, {self.n_in}), got {tuple(x.shape)}"
            )
        self._x = x

    def backward(self, dy, input_grad=True):
        x = self._x  # kept by forward
        xp, kernels = self.backend.xp, table(self.backend.xp)
        if kernels.matmul_into is None:
            self.grads["W"] = x.T @ dy
            if self.bias:
                self.grads["b"] = xp.sum(dy, axis=0)
        else:  # bound to the flat buffer or not, the same kernels: the same numbers
            into = {} if self.grad_buffers is NO_GRAD_BUFFERS else self.grad_buffers
            self.grads["W"] = kernels.matmul_into(x.T, dy, into.get("W"))
            if self.bias:
                self.grads["b"] = kernels.sum_into(dy, 0, into.get("b"))
        return dy @ self.params["W"].T if input_grad else None

    def config(self):
        return {
            "type": type_name(self),
            "n_in": self.n_in,
            "n_out": self.n_out,
            "bias": self.bias,
            "init": self.init.config(),
        }
