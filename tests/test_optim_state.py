"""An optimizer's state: copies on loading, shapes against the weights, and which
model the state belongs to."""

from __future__ import annotations

import numpy as np
import pytest

import nnbackend as nb
from nnbackend.layers import Dense

RNG = np.random.default_rng(0)
X, LABELS = RNG.normal(size=(64, 6)), RNG.integers(0, 3, 64)
FIT = dict(loss="cross_entropy", batch_size=16, verbose=0)


def net(backend, outputs=3):
    return nb.Sequential([Dense(6, 8), "tanh", Dense(8, outputs)], backend=backend, seed=1)


def host(opt):
    return {s: {n: nb.to_numpy(a).copy() for n, a in opt.state[s].items()} for s in opt.slots}


@pytest.mark.parametrize("fused", [True, False])
def test_a_loaded_state_is_a_copy(backend64, fused):
    """Training the optimizer that loaded a state leaves the one it came from as it was
    (weight by weight, updates are in place; a flat step lays the state out anew)."""
    model = net(backend64)
    first = nb.optim.Adam(0.01)
    model.fit(X, LABELS, optimizer=first, **FIT)
    before = host(first)
    second = nb.optim.Adam(0.01)
    second.load_state_dict(first.state_dict())
    loaded = host(second)
    with nb.backend.fused(fused):
        model.copy().fit(X, LABELS, optimizer=second, **FIT)
    after = host(first)
    for slot in before:
        for name in before[slot]:
            assert np.array_equal(loaded[slot][name], before[slot][name])
            assert np.array_equal(after[slot][name], before[slot][name])
            assert not np.array_equal(nb.to_numpy(second.state[slot][name]), before[slot][name])
