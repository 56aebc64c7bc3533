"""What layers and losses keep of their last batch: their private attributes that hold
arrays (a layer's input for its backward, a loss's gradient). Copies leave them out,
and ``predict`` and ``evaluate``, which need no backward, drop what their pass left
(from several threads at once too: a model served from a thread pool)."""

from __future__ import annotations

import copy

from nnbackend.backend.arrays import holds_arrays


def private_arrays(thing) -> dict:
    """``thing``'s private attributes that hold arrays, by name."""
    items = list(vars(thing).items())  # a copy: a predict in another thread adds and drops
    return {name: value for name, value in items if name.startswith("_") and holds_arrays(value)}


def batch_arrays(things) -> list[dict]:
    """``private_arrays`` of each of ``things``, taken before a pass for
    ``forget_last_batch`` to tell what the pass left behind."""
    return [private_arrays(thing) for thing in things]


def forget_last_batch(things, before: list[dict]) -> None:
    """Drop the private arrays that a pass left on ``things`` (those ``before`` did not
    hold): a whole set's activations stayed held until the next forward (293 MiB for
    19 MiB of input through a small dense net). What a layer made once, in its build,
    it keeps; a backward then says to call forward first."""
    for thing, held in zip(things, before, strict=True):
        for name, value in private_arrays(thing).items():
            if held.get(name) is not value:
                vars(thing).pop(name, None)  # gone already where another thread dropped it


def own_copy(thing):
    """A copy of ``thing`` (a loss, a list of metrics) that shares nothing it can help
    (``copy.deepcopy``: its last batch left behind), else one that shares its settings
    (``copy.copy``: a module or a lock in it cannot be deep-copied)."""
    try:
        return copy.deepcopy(thing)
    except Exception:  # whatever deepcopy raises, a shallow copy will do
        return copy.copy(thing)
