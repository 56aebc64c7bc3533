"""The classic from-scratch course's layout (X of (features, m), Y of (1, m), W of
(n_out, n_in), b of (n_out, 1), float64 draws) where a hand loop meets it: told how to
make it this library's, as fit tells it."""

from __future__ import annotations

import numpy as np
import pytest

import nnbackend as nb
from nnbackend.layers import Dense


def course_data():
    X = np.random.default_rng(0).random((2, 40))
    return X, (X[:1] > 0.5).astype(np.float64)  # (2, 40) and (1, 40)


@pytest.mark.parametrize(
    ("layout", "said"),
    [
        (lambda X, Y: (X.T, Y), r"a row of 40 targets\? Pass it 1-D: np\.ravel\(y\)$"),
        (lambda X, Y: (X, Y.T), r"samples as columns\? Samples are rows here: pass X\.T$"),
        (lambda X, Y: (X, Y), r"pass X\.T and np\.ravel\(y\)$"),
    ],
)
def test_batches_of_the_course_layout_say_how_to_make_samples_rows(backend, layout, said):
    """Batches said only 'give one target per sample' where fit named the fix."""
    X, Y = layout(*course_data())
    with pytest.raises(ValueError, match=said):
        nb.data.Batches(X, Y, backend, batch_size=None)
    rows, targets = course_data()[0].T, np.ravel(course_data()[1])  # as told
    assert len(list(nb.data.Batches(rows, targets, backend, batch_size=None))) == 1


def test_weights_in_the_course_layout_are_told_how_to_fit(backend):
    """model.params[name] = ... said only 'cannot assign'."""
    model = nb.Sequential([Dense(3, 2), "sigmoid"], seed=0, backend=backend)
    W, b = np.random.default_rng(0).normal(size=(2, 3)) * 0.01, np.zeros((2, 1))
    as32 = model.backend.asarray

    def assign(name, value, said):
        with pytest.raises(ValueError, match=said):
            model.params[name] = value

    assign("0.W", as32(W, dtype="float32"), r"\(n_in, n_out\) here \(x @ W\); .* W\.T$")
    assign("0.b", as32(b, dtype="float32"), r"reshape it to \(2,\)$")
    wide = model.backend.with_dtype("float64").asarray(W.T)
    assign("0.W", wide, r"convert it, model\.backend\.asarray\(value, dtype='float32'\)$")
    model.params["0.W"] = model.backend.asarray(W.T, dtype="float32")  # as told
    model.params["0.b"] = model.backend.asarray(b.reshape(2), dtype="float32")
    np.testing.assert_allclose(nb.to_numpy(model.params["0.W"]), W.T, rtol=1e-6)
