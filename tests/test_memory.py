"""What fit, predict and evaluate allocate and what they keep: a set of float64 rows
for a float32 model is cast a batch at a time where the caller asks for batches, and
no call keeps a whole set's activations after it returns (tracemalloc traces NumPy)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import nnbackend as nb
from nnbackend.backend import kernels_numpy
from nnbackend.layers import Dense

ROWS, FEATURES = 20_000, 50
X = np.random.default_rng(0).standard_normal((ROWS, FEATURES))  # float64: 8 MB
Y = np.random.default_rng(1).integers(0, 10, ROWS)


def net(backend="numpy"):
    model = nb.Sequential([Dense(FEATURES, 64), "relu", Dense(64, 10)], backend=backend, seed=0)
    model.fit(X[:64], Y[:64], loss="cross_entropy", optimizer="adam", verbose=0)
    return model


def peak_of(call) -> int:
    """The most bytes ``call`` had allocated at once, beyond what it started with."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start = tracemalloc.get_traced_memory()[0]
        call()
        return tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()


def private_arrays(thing) -> list[str]:
    return [k for k, v in vars(thing).items() if k.startswith("_") and hasattr(v, "shape")]


def test_predict_and_evaluate_keep_no_activations(backend):
    """They kept every layer's input and output for a backward that never comes (293 MiB
    after predicting 19 MiB of rows), and evaluate the loss's gradient of the whole set."""
    model = net(backend.name)
    proba = nb.to_numpy(model.predict_proba(X))
    assert [private_arrays(layer) for layer in model.layers] == [[], [], []]
    model.evaluate(X, Y)
    assert [private_arrays(layer) for layer in model.layers] == [[], [], []]
    assert private_arrays(model.loss) == []
    with pytest.raises(AttributeError, match=r"call forward\(x\) before backward\(dy\)"):
        model.backward(backend.asarray(np.ones((5, 10)), dtype="float32"))
    np.testing.assert_allclose(nb.to_numpy(model.predict_proba(X[:5])), proba[:5], rtol=1e-6)
    model.fit(X[:64], Y[:64], loss="cross_entropy", optimizer="adam", verbose=0)  # trains on


@pytest.mark.parametrize("how", ["predict", "evaluate", "fit on_device=False"])
def test_float64_rows_in_batches_are_not_cast_whole(how):
    """A float32 copy of all of X (half its size) came first, batches or not; and fit
    on NumPy took on_device=False for True."""
    model = net()
    call = {
        "predict": lambda: model.predict(X, batch_size=256),
        "evaluate": lambda: model.evaluate(X, Y, batch_size=256),
        "fit on_device=False": lambda: model.fit(
            X, Y, loss="cross_entropy", optimizer="adam", batch_size=256, verbose=0,
            on_device=False,
        ),
    }[how]  # fmt: skip
    assert peak_of(call) < X.nbytes / 4  # the outputs and labels, a batch's arrays


def test_numpy_s_relu_keeps_no_row_as_long_as_a_whole_set():
    """Its kept row of zeros grew to the largest output ever seen, and stayed."""
    big = np.random.default_rng(2).standard_normal(kernels_numpy.MAX_KEPT + 10).astype("float32")
    np.testing.assert_array_equal(kernels_numpy.relu(big), np.maximum(big, 0))
    small = big[:1000].reshape(10, 100)
    np.testing.assert_array_equal(kernels_numpy.relu(small), np.maximum(small, 0))
    assert all(row.size <= kernels_numpy.MAX_KEPT for row in kernels_numpy._constant_rows.values())
