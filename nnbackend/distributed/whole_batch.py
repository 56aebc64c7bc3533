"""What a rank's share of a global batch needs of the whole batch in a data-parallel
step, so that the step is the one process's step on the whole batch:

- its rows of the random numbers the whole batch draws (Dropout's masks, a noise
  layer's normal draws), the generator moving on as the whole batch's draw moves it,
  on every rank alike;
- statistics over every rank's rows (BatchNorm's mean and variance, and the sums its
  backward needs), through a ``WholeBatch`` that layers with ``batch_statistics`` are
  given for the length of the step (``layer.whole_batch``; None in one process).

    with whole_batch(model, mine, rows, engine):    # around forward and backward
        out = model.forward(xb[mine, ...])
        ...

The layers import nothing of MPI: they call what they are handed.
"""

from __future__ import annotations

import contextlib

from nnbackend.backend.random import as_shape
from nnbackend.distributed.collectives import allreduce


class RowsOfBatch:
    """The model's generator as one share of a batch draws from it. A draw whose first
    axis is the share's rows (``count``, from row ``first`` of ``total``) gives the
    share's rows of what the whole batch would draw, and moves the generator on as the
    whole draw does; any other draw is made whole, alike on every rank. Anything else
    (``permutation``, ``host()``) is the generator's own: one mask for the whole batch
    is drawn there exactly (a ``(1, n)`` draw above is read as rows on a share of one
    row), and a draw there of the share's size puts the ranks' generators apart, which
    the fit's end check reports."""

    def __init__(self, rng, first: int, total: int, count: int):
        self.rng, self.first, self.total, self.count = rng, first, total, count

    def random_bits(self, shape, *, backend=None):
        """(rows of the share, ...) words: rows ``first ..`` of the whole batch's draw."""
        shape = as_shape(shape)
        if not self._by_rows(shape):
            return self.rng.random_bits(shape, backend=backend)
        return self.rng.random_bits_of_rows(shape, self.first, self.total, backend=backend)

    def normal(self, shape, std: float = 1.0, *, backend=None, dtype=None):
        return self._rows_of(self.rng.normal, shape, std, backend=backend, dtype=dtype)

    def uniform(self, shape, low: float = 0.0, high: float = 1.0, *, backend=None, dtype=None):
        return self._rows_of(self.rng.uniform, shape, low, high, backend=backend, dtype=dtype)

    def _by_rows(self, shape: tuple) -> bool:
        return len(shape) > 0 and shape[0] == self.count

    def _rows_of(self, draw, shape, *args, **kwargs):
        """The share's rows of ``draw`` of the whole batch (made on the host, so whole)."""
        shape = as_shape(shape)
        if not self._by_rows(shape):
            return draw(shape, *args, **kwargs)
        whole = draw((self.total, *shape[1:]), *args, **kwargs)
        return whole[self.first : self.first + self.count, ...]

    def __getattr__(self, name):
        return getattr(self.rng, name)


class WholeBatch:
    """The whole batch as a layer of one share sees it: ``rows``, the global batch's
    rows, and ``sum(arrays)``, the arrays summed over every rank (one allreduce per
    dtype; every rank must call it alike)."""

    def __init__(self, engine, rows: int):
        self.engine, self.rows = engine, rows

    def sum(self, arrays) -> list:
        return allreduce(self.engine, arrays)


@contextlib.contextmanager
def whole_batch(model, mine: slice, rows: int, engine):
    """For the length of one step of the share ``mine`` of a global batch of ``rows``
    rows: the model draws through ``RowsOfBatch`` and its layers with
    ``batch_statistics`` take their statistics over the whole batch."""
    rng = model.rng
    layers = [layer for layer in model.layers if layer.batch_statistics]
    model.rng = RowsOfBatch(rng, mine.start, rows, mine.stop - mine.start)
    for layer in layers:
        layer.whole_batch = WholeBatch(engine, rows)
    try:
        yield
    finally:
        model.rng = rng
        for layer in layers:
            del layer.whole_batch  # the class's None again: one process's statistics
