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


class Scaled(nb.layers.Layer):
    """Multiplies by a constant it makes once, in its build, and keeps privately."""

    def build(self, backend, rng):
        super().build(backend, rng)
        self._factor = backend.asarray(np.full((1, 10), 2.0), dtype=backend.dtype_name)

    def forward(self, x, training=False):
        return x * self._factor

    def backward(self, dy, input_grad=True):
        return dy * self._factor


def test_what_a_layer_made_in_its_build_outlives_a_predict(backend):
    """Only what the pass itself left is dropped: a constant from the build stays."""
    model = nb.Sequential([Dense(FEATURES, 10), Scaled()], backend=backend.name, seed=0)
    first = model.predict(X[:5])
    np.testing.assert_array_equal(model.predict(X[:5]), first)
    assert "_factor" in vars(model.layers[1])


def test_the_estimators_predict_keeps_no_activations(backend):
    from nnbackend.sklearn import MLPClassifier

    est = MLPClassifier((32,), max_iter=2, backend=backend.name, random_state=0)
    with pytest.warns(Warning):  # not converged in 2 iterations
        est.fit(X[:200], Y[:200])
    est.predict(X)
    assert [private_arrays(layer) for layer in est.model_.layers] == [[], [], []]


def test_device_rows_of_another_dtype_go_in_batches_on_the_device():
    """float64 rows on a device, into a float32 model, with on_device=False or a batch
    for evaluate: they were taken by NumPy's take, which cannot read a device's array."""
    device = nb.get_backend("strict:device1", dtype="float64")
    model = nb.Sequential([Dense(FEATURES, 10)], backend="strict:device1", seed=0)
    X_dev, Y_dev = device.asarray(X[:64]), device.asarray(Y[:64])
    model.fit(X_dev, Y_dev, loss="cross_entropy", optimizer="sgd", batch_size=8, verbose=0,
              on_device=False)  # fmt: skip
    whole = model.evaluate(X_dev, Y_dev)
    assert model.evaluate(X_dev, Y_dev, batch_size=8) == pytest.approx(whole, rel=1e-6)
