"""What a rank's share of a global batch needs of the whole batch in a data-parallel
step, so that the step is the one process's step on the whole batch: its rows of the
random numbers the whole batch draws (Dropout's masks), the generator moving on as the
whole batch's draw moves it, on every rank alike.

    with whole_batch(model, mine, rows, engine):    # around forward and backward
        out = model.forward(xb[mine, ...])
        ...
"""

from __future__ import annotations

import contextlib


class RowsOfBatch:
    """The model's generator as one share of a batch draws from it: ``random_bits``
    gives the share's rows of what the whole batch (``total`` rows) would draw, and
    moves the generator on by the whole draw. Anything else is the generator's."""

    def __init__(self, rng, first: int, total: int):
        self.rng, self.first, self.total = rng, first, total

    def random_bits(self, shape, *, backend=None):
        """(rows of the share, ...) words: rows ``first ..`` of the whole batch's draw."""
        return self.rng.random_bits_of_rows(shape, self.first, self.total, backend=backend)

    def __getattr__(self, name):
        return getattr(self.rng, name)


@contextlib.contextmanager
def whole_batch(model, mine: slice, rows: int, engine):
    """For the length of one step of the share ``mine`` of a global batch of ``rows``
    rows: the model draws through ``RowsOfBatch``."""
    rng = model.rng
    model.rng = RowsOfBatch(rng, mine.start, rows)
    try:
        yield
    finally:
        model.rng = rng
