"""Seeded random numbers. The standard has none. Draws made once (initial weights,
shuffling orders) are made on the host with NumPy and moved to the backend; draws
needed on every step (dropout masks) come from a counter-based generator (Philox)
run on the device itself. Either way one seed gives the same numbers everywhere."""

from __future__ import annotations

import math
import numbers
import operator

import numpy as np

from nnbackend.backend.core import get_backend
from nnbackend.backend.dtypes import float_dtype_name
from nnbackend.backend.philox import MASK32, blocks_for, random_words

# a loaded counter's bound: the blocks a stream can still draw keep far below int64's
MAX_COUNTER = 2**62


class Generator:
    """Seeded random numbers drawn on the host with NumPy, then moved to a backend.

    One seed gives bit-identical numbers on every backend and device: the draw is
    float64 on the host, cast there to the dtype asked for, then copied over.
    ``random_bits`` draws on the device instead (Philox4x32-10 keyed from the seed),
    with no copy, and gives the same bits on every backend too.

        rng = nb.Generator(0)
        W = rng.normal((2, 3), std=0.01)               # on the current backend
        order = rng.permutation(200)                   # host NumPy int64
        bits = rng.random_bits((100, 128))             # on the device, int64 in [0, 2**32)
    """

    def __init__(self, seed: int | None = None):
        _check_seed(seed)
        self.seed = seed
        sequence = np.random.SeedSequence(seed)
        self._host = np.random.default_rng(sequence)
        key = sequence.spawn(1)[0].generate_state(2, np.uint32)
        self._key = (int(key[0]), int(key[1]))
        self._counter = 0  # the next Philox block of the device stream
        self._device_counter = None  # that block on the device, while a recording draws

    def __repr__(self) -> str:
        return f"Generator(seed={self.seed!r})"

    def normal(self, shape, std: float = 1.0, *, backend=None, dtype=None):
        """Normal(0, std**2) draws of ``shape`` on ``backend`` in ``dtype``."""
        return self._place(self._host.standard_normal(shape) * std, backend, dtype)

    def uniform(self, shape, low: float = 0.0, high: float = 1.0, *, backend=None, dtype=None):
        """Uniform draws in [low, high) of ``shape`` on ``backend`` in ``dtype``."""
        backend = get_backend(backend)
        name = backend.dtype_name if dtype is None else dtype
        dtype = np.dtype(float_dtype_name(name))  # a name, or any library's dtype object
        draws = self._host.uniform(low, high, shape).astype(dtype)
        if high > low:  # a float64 draw just below high can round to it in float32
            below = np.nextafter(dtype.type(high), dtype.type(low))
            draws = np.minimum(draws, below, out=draws if draws.ndim else None)
        return self._place(draws, backend, dtype.name)

    def random_bits(self, shape, *, backend=None):
        """Uniform 32-bit words of ``shape`` drawn on ``backend``'s device: int64 values
        in [0, 2**32). Counter-based (Philox4x32-10): no host-to-device copy, and the same
        seed gives the same words on every backend. Each call moves on by
        ``ceil(size / 4)`` blocks of the stream. ``shape``: a tuple, or an int as NumPy's."""
        backend = get_backend(backend)
        shape = as_shape(shape)
        size = math.prod(shape)
        on_device = self._device_counter
        counter = self._counter if on_device is None else on_device
        words = random_words(backend.xp, backend.device, size, self._key, counter)
        if on_device is not None:
            on_device += blocks_for(size)  # in place: a recorded step moves it on too
        self._counter += blocks_for(size)
        return backend.xp.reshape(words, shape)

    @property
    def key(self) -> tuple[int, int]:
        """The device stream's Philox key (from the seed, or a loaded state)."""
        return self._key

    @property
    def counter(self) -> int:
        """The next block of the device stream (``random_bits``), as the host counts it."""
        return self._counter

    def advance(self, blocks: int) -> None:
        """Move the device stream on by ``blocks``, as draws of that many blocks would
        (after a recorded step drew them on the device)."""
        self._counter += blocks

    def count_on_device(self, counter) -> None:
        """Have ``random_bits`` start at the block held by ``counter`` (a 0-d int64 array
        on the device, which each draw moves on in place), or at the host's again (None):
        a recorded step's draws then differ at every replay (``nnbackend.backend.replay``)."""
        self._device_counter = counter

    def random_bits_of_rows(self, shape, first: int, total: int, *, backend=None):
        """Rows ``first .. first + shape[0]`` of the words that
        ``random_bits((total, *shape[1:]))`` would draw, and the generator moves on as
        that draw would: one rank's share of a whole batch's draw (a distributed fit), the
        other rows' blocks skipped, not computed."""
        backend = get_backend(backend)
        shape = as_shape(shape)
        if not 0 <= first <= first + shape[0] <= total:
            raise ValueError(f"rows {first}..{first + shape[0]} are not rows of {total}")
        row = math.prod(shape[1:])
        words = random_words(
            backend.xp, backend.device, row * shape[0], self._key, self._counter, row * first
        )
        self._counter += blocks_for(row * total)
        return backend.xp.reshape(words, shape)

    def permutation(self, n: int) -> np.ndarray:
        """A random order of ``range(n)`` as a host NumPy int64 array."""
        return self._host.permutation(n)

    def host(self) -> np.random.Generator:
        """The NumPy generator underneath, for host-side draws of your own."""
        return self._host

    @property
    def state(self) -> dict:
        """The generator's state (JSON-serialisable), to save and resume: NumPy's
        bit-generator state, with the device stream's key and counter under "philox"."""
        device = {"key": list(self._key), "counter": self._counter}
        return {**self._host.bit_generator.state, "philox": device}

    @state.setter
    def state(self, value: dict) -> None:
        value = dict(value)
        device = value.pop("philox", None)  # absent from states saved before it existed
        if device is not None:  # checked first: a refused state changes nothing
            key, counter = device["key"], device["counter"]
            if not (
                len(key) == 2
                and all(_is_int(k) and 0 <= k <= MASK32 for k in key)
                and _is_int(counter)
                and 0 <= counter <= MAX_COUNTER
            ):
                raise ValueError(
                    "a generator state's philox part needs a key of two numbers in "
                    f"0..2**32-1 and a counter in 0..2**62, got key {key!r} and counter "
                    f"{counter!r}"
                )
        self._host.bit_generator.state = value
        if device is not None:
            self._key = (int(key[0]), int(key[1]))
            self._counter = int(counter)

    @staticmethod
    def _place(host: np.ndarray, backend, dtype):
        backend = get_backend(backend)
        return backend.asarray(host, dtype=float_dtype_name(dtype or backend.dtype_name))


def _check_seed(seed) -> None:
    """None, a whole number >= 0, or a list of them (NumPy's SeedSequence takes both)."""
    if seed is None:
        return
    said = f"seed must be an int of at least 0 (or a list of them), not {seed!r}"
    parts = seed if isinstance(seed, list | tuple) and seed else [seed]
    if any(isinstance(s, bool) or not isinstance(s, numbers.Integral) for s in parts):
        raise TypeError(said)
    if any(s < 0 for s in parts):
        raise ValueError(said)


def as_generator(seed_or_rng) -> Generator:
    """A ``Generator`` from a seed, ``None`` (fresh entropy) or a Generator."""
    if isinstance(seed_or_rng, Generator):
        return seed_or_rng
    return Generator(seed_or_rng)


def as_shape(shape) -> tuple[int, ...]:
    """A shape given as NumPy takes one (an int, or a sequence of ints) as a tuple."""
    try:
        dims = (
            (operator.index(shape),)
            if not hasattr(shape, "__iter__")
            else tuple(operator.index(n) for n in shape)
        )
    except TypeError:
        raise TypeError(f"a shape is whole numbers, not {shape!r}") from None
    if any(n < 0 for n in dims):
        raise ValueError(f"a shape has no negative size: {shape!r}")
    return dims


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
