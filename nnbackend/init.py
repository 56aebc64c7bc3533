"""Weight initialisers: normal draws whose spread depends on the layer's fan-in/out.

Every draw goes through a ``Generator`` (host NumPy, then moved to the backend), so
one seed gives the same initial weights on every backend.

    Dense(784, 50, init="he")                # by name
    Dense(2, 1, init=nb.init.Normal(0.01))   # the tutorials' randn * 0.01
"""

from __future__ import annotations

import math

from nnbackend.checks import finite_float
from nnbackend.registry import INITIALIZERS, construct, register, type_name


class Initializer:
    """Draws weights from N(0, std**2), the spread set by the layer's fan-in and fan-out.

    A Dense weight matrix has shape (fan_in, fan_out); layers of other shapes give their
    fans (a Conv2D's (out, in, kh, kw) kernel: in * kh * kw and out * kh * kw).
    """

    name = "initializer"
    registry = INITIALIZERS

    def std(self, fan_in: int, fan_out: int) -> float:
        """The standard deviation of the draws for a weight of these fans (a Dense weight
        of shape (fan_in, fan_out)). Every initialiser defines it."""
        raise NotImplementedError

    def __call__(self, shape: tuple[int, ...], rng, backend, fans: tuple[int, int] | None = None):
        if fans is None and len(shape) != 2:
            raise ValueError(
                f"a weight of shape {tuple(shape)} has no fan-in and fan-out of its own: give "
                "fans=(fan_in, fan_out) (a Conv2D's (out, in, kh, kw): in*kh*kw, out*kh*kw)"
            )
        fan_in, fan_out = shape if fans is None else fans
        return rng.normal(shape, std=self.std(fan_in, fan_out), backend=backend)

    def config(self) -> dict:
        """The initialiser by name, JSON-ready, with its arguments (``Normal``: std)."""
        return {"name": saved_name(self)}

    @classmethod
    def from_config(cls, config: dict) -> Initializer:
        """The initialiser that ``config()`` described (less its "name")."""
        return construct(cls, config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"{type(self).__name__}({args})"


@register
class Normal(Initializer):
    """N(0, std**2) whatever the shape; ``Normal(0.01)`` is the tutorials' ``randn * 0.01``
    (fine for one or two layers, known to stall deeper nets)."""

    name = "normal"

    def __init__(self, std: float = 0.01):
        self.std_value = finite_float(std, "Normal std", low=0)

    def std(self, fan_in, fan_out):
        return self.std_value

    def config(self):
        return {"name": saved_name(self), "std": self.std_value}


@register
class LeCun(Initializer):
    """``randn / sqrt(fan_in)``: keeps the variance of tanh/sigmoid layers' inputs near 1."""

    name = "lecun"
    aliases = ("lecun_normal",)

    def std(self, fan_in, fan_out):
        return 1.0 / math.sqrt(fan_in)


@register
class Xavier(Initializer):
    """Glorot & Bengio (2010), normal form: std = sqrt(2 / (fan_in + fan_out))."""

    name = "xavier"
    aliases = ("xavier_normal", "glorot_normal")

    def std(self, fan_in, fan_out):
        return math.sqrt(2.0 / (fan_in + fan_out))


@register
class He(Initializer):
    """He et al. (2015): std = sqrt(2 / fan_in), for ReLU layers."""

    name = "he"
    aliases = ("he_normal", "kaiming_normal")

    def std(self, fan_in, fan_out):
        return math.sqrt(2.0 / fan_in)


@register
class Zeros(Initializer):
    """All zeros (the biases' default). Never for weights: every unit would stay alike."""

    name = "zeros"

    def __call__(self, shape, rng, backend, fans=None):
        return backend.xp.zeros(shape, dtype=backend.dtype, device=backend.device)


INITIALIZERS.add(Xavier, "glorot")


def saved_name(init: Initializer) -> str:
    """The name ``init`` is saved under: the one its class is registered under, else its
    nearest registered base's. An initialiser draws only the first weights, which a
    checkpoint holds: a subclass of He that no one registered loads as He, where a file
    naming the subclass could not be loaded at all."""
    for cls in type(init).__mro__:
        name = INITIALIZERS.registered_name(cls)
        if name is not None:
            return name
    return type_name(init)


def get(spec) -> Initializer:
    """An initialiser from a name ("lecun", "he", "xavier", ...), a config dict, or an
    Initializer."""
    return INITIALIZERS.create(spec)
