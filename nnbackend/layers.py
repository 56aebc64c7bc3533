"""Layers: each a small class with a hand-written forward and backward.

Rows are samples: a layer maps ``x`` of shape ``(batch, n_in)`` to ``(batch, n_out)``.

    layer.params    {"W": (n_in, n_out), "b": (n_out,)}   the weights, on the model's backend
    layer.grads     the same keys, filled by backward
    y = layer.forward(x, training=True)     keeps what backward needs
    dx = layer.backward(dy)                 fills grads, returns dL/dx; never changes dy
    layer.backward(dy, input_grad=False)    the first layer's dL/dx is of no use in training:
                                            layers with weights then skip it (return None)

Layers without weights work on any backend's arrays as they come. ``Dense`` draws
its weights when built, which ``Sequential`` does with the model's backend and seed.
"""

from __future__ import annotations

import math

from nnbackend import functional as F
from nnbackend import init as initializers
from nnbackend.backend import namespace_of
from nnbackend.checks import boolean, finite_float, positive_int
from nnbackend.registry import LAYERS, construct, register


class Layer:
    """Base class. ``decayed`` names the params that L2 weight decay applies to;
    ``output_range`` is the (low, high) its outputs can take, None when unknown (a
    loss that wants probabilities checks the model's last layer with it)."""

    decayed: tuple[str, ...] = ()
    output_range: tuple[float, float] | None = None
    registry = LAYERS

    def __init__(self):
        self.params: dict = {}
        self.grads: dict = {}
        self.state: dict = {}
        self.backend = None

    def build(self, backend, rng) -> None:
        """Create the weights on ``backend``, drawing from ``rng``."""
        self.backend = backend

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """name -> shape of each weight, known from the constructor's arguments alone
        (a checkpoint's datasets are checked against these before they are read)."""
        return {}

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """name -> shape of each running-state array (BatchNorm's statistics)."""
        return {}

    def forward(self, x, training: bool = True):
        raise NotImplementedError

    def backward(self, dy, input_grad: bool = True):
        raise NotImplementedError

    def __call__(self, x, training: bool = False):
        return self.forward(x, training=training)

    def config(self) -> dict:
        """The constructor's arguments, JSON-ready, with the class name as "type"."""
        return {"type": type(self).__name__}

    @classmethod
    def from_config(cls, config: dict) -> Layer:
        """The layer that ``config()`` described (less its "type")."""
        return construct(cls, config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "type")
        return f"{type(self).__name__}({args})"


@register
class Dense(Layer):
    """``y = x @ W + b``; W has shape (n_in, n_out), b (n_out,).

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

    def forward(self, x, training=True):
        if "W" not in self.params:
            raise RuntimeError(
                f"{self!r} has no weights yet: put it in a Sequential, which builds it, "
                "or call layer.build(backend, nb.Generator(seed))"
            )
        if x.ndim != 2 or x.shape[1] != self.n_in:
            raise ValueError(
                f"{self!r} expects input of shape (batch, {self.n_in}), got {tuple(x.shape)}"
            )
        self._x = x
        y = x @ self.params["W"]
        if self.bias:
            y += self.params["b"]
        return y

    def backward(self, dy, input_grad=True):
        xp = self.backend.xp
        self.grads["W"] = self._x.T @ dy
        if self.bias:
            self.grads["b"] = xp.sum(dy, axis=0)
        return dy @ self.params["W"].T if input_grad else None

    def config(self):
        return {
            "type": "Dense",
            "n_in": self.n_in,
            "n_out": self.n_out,
            "bias": self.bias,
            "init": self.init.config(),
        }


@register
class Identity(Layer):
    aliases = ("linear",)

    def forward(self, x, training=True):
        return x

    def backward(self, dy, input_grad=True):
        return dy


@register
class Sigmoid(Layer):
    """1 / (1 + exp(-x)), stable for any x."""

    output_range = (0.0, 1.0)

    def forward(self, x, training=True):
        self._y = F.sigmoid(x)
        return self._y

    def backward(self, dy, input_grad=True):
        return dy * F.sigmoid_grad_from_output(self._y)


@register
class Tanh(Layer):
    output_range = (-1.0, 1.0)

    def forward(self, x, training=True):
        self._y = F.tanh(x)
        return self._y

    def backward(self, dy, input_grad=True):
        return dy * F.tanh_grad_from_output(self._y)


@register
class ReLU(Layer):
    output_range = (0.0, math.inf)

    def forward(self, x, training=True):
        self._y = F.relu(x)
        return self._y

    def backward(self, dy, input_grad=True):
        xp = namespace_of(dy)
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
        return {"type": "LeakyReLU", "alpha": self.alpha}


@register
class Softmax(Layer):
    """Softmax over the features of each row. For training, prefer logits into
    ``SoftmaxCrossEntropy``: fused, it is cheaper and stable for any logits."""

    output_range = (0.0, 1.0)

    def forward(self, x, training=True):
        self._y = F.softmax(x, axis=-1)
        return self._y

    def backward(self, dy, input_grad=True):
        return F.softmax_backward(self._y, dy, axis=-1)


def from_config(config: dict) -> Layer:
    """A layer from ``layer.config()``'s output."""
    return LAYERS.build(config)


def get(spec) -> Layer:
    """A layer from a name (the activations: "relu", "tanh", "sigmoid", "leaky_relu",
    "softmax", "linear"), a config dict, or a Layer."""
    return LAYERS.create(spec)
