"""Device-to-host transfers, counted: each one is a sync on a GPU, and a training step
should make none."""

from __future__ import annotations

import contextlib


class TransferCounter:
    """How many device-to-host transfers nnbackend made while it was active."""

    def __init__(self):
        self.count = 0

    def __repr__(self) -> str:
        return f"TransferCounter(count={self.count})"


_counters: list[TransferCounter] = []


@contextlib.contextmanager
def count_host_transfers():
    """Count nnbackend's device-to-host transfers (each is a sync on a GPU).

    with nb.count_host_transfers() as transfers:
        model.fit(X, y, ...)
    print(transfers.count)
    """
    counter = TransferCounter()
    _counters.append(counter)
    try:
        yield counter
    finally:
        _counters.remove(counter)


def count_transfer() -> None:
    for counter in _counters:
        counter.count += 1
