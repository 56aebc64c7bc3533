"""Seeded random numbers. The standard has none: draws are made on the host with
NumPy and moved to the backend, so one seed gives the same numbers everywhere."""

from __future__ import annotations

import numpy as np

from nnbackend.backend.core import get_backend


class Generator:
    """Seeded random numbers drawn on the host with NumPy, then moved to a backend.

    One seed gives bit-identical numbers on every backend and device: the draw is
    float64 on the host, cast there to the dtype asked for, then copied over.

        rng = nb.Generator(0)
        W = rng.normal((2, 3), std=0.01)               # on the current backend
        order = rng.permutation(200)                   # host NumPy int64
    """

    def __init__(self, seed: int | None = None):
        self.seed = seed
        self._host = np.random.default_rng(seed)

    def __repr__(self) -> str:
        return f"Generator(seed={self.seed!r})"

    def normal(self, shape, std: float = 1.0, *, backend=None, dtype=None):
        """Normal(0, std**2) draws of ``shape`` on ``backend`` in ``dtype``."""
        return self._place(self._host.standard_normal(shape) * std, backend, dtype)

    def uniform(self, shape, low: float = 0.0, high: float = 1.0, *, backend=None, dtype=None):
        """Uniform draws in [low, high) of ``shape`` on ``backend`` in ``dtype``."""
        return self._place(self._host.uniform(low, high, shape), backend, dtype)

    def permutation(self, n: int) -> np.ndarray:
        """A random order of ``range(n)`` as a host NumPy int64 array."""
        return self._host.permutation(n)

    def host(self) -> np.random.Generator:
        """The NumPy generator underneath, for host-side draws of your own."""
        return self._host

    @property
    def state(self) -> dict:
        """The generator's state (JSON-serialisable), to save and resume."""
        return self._host.bit_generator.state

    @state.setter
    def state(self, value: dict) -> None:
        self._host.bit_generator.state = value

    @staticmethod
    def _place(host: np.ndarray, backend, dtype):
        backend = get_backend(backend)
        return backend.asarray(host, dtype=dtype or backend.dtype_name)


def as_generator(seed_or_rng) -> Generator:
    """A ``Generator`` from a seed, ``None`` (fresh entropy) or a Generator."""
    if isinstance(seed_or_rng, Generator):
        return seed_or_rng
    return Generator(seed_or_rng)
