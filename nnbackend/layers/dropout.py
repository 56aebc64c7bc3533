"""``Dropout``: inverted dropout, with masks drawn on the device."""

from __future__ import annotations

from nnbackend.backend import backend_of
from nnbackend.checks import finite_float
from nnbackend.layers.base import Layer
from nnbackend.registry import register, type_name


@register
class Dropout(Layer):
    """In training, each value is kept with probability ``1 - rate`` and scaled by
    ``1 / (1 - rate)`` (so no rescaling is needed at test time), or set to 0; otherwise
    (predict, evaluate, validation) the identity.

    The masks come from the model's generator (``Sequential`` passes it: ``rng=``), drawn
    on the device with its counter-based stream (``Generator.random_bits``): no copy
    from the host per step, the same masks on every backend for one seed, and a
    checkpoint's generator state resumes them where they were.
    """

    stochastic = draws_on_device = True

    def __init__(self, rate: float = 0.5):
        super().__init__()
        self.rate = finite_float(
            rate, "Dropout rate (the share dropped)", low=0, high=1, high_open=True
        )
        # a word in [0, 2**32) is kept when at least this: probability 1 - rate
        self._threshold = round(self.rate * 2**32)

    def forward(self, x, training=True, rng=None):
        if not training or self.rate == 0:
            self._mask = None
            return x
        if rng is None:
            raise ValueError(
                f"{self!r} draws its masks from a generator when training: call it through a "
                "Sequential (which passes its own), or pass one, "
                "layer.forward(x, training=True, rng=nb.Generator(seed))"
            )
        backend = self.backend or backend_of(x)
        xp = backend.xp
        keep = rng.random_bits(tuple(x.shape), backend=backend) >= self._threshold
        self._mask = xp.astype(keep, x.dtype) * (1.0 / (1.0 - self.rate))
        return x * self._mask

    def backward(self, dy, input_grad=True):
        return dy if self._mask is None else dy * self._mask

    def config(self):
        return {"type": type_name(self), "rate": self.rate}
