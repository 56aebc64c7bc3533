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


@pytest.mark.parametrize(
    ("option", "said"),
    [
        ("num_iterations", r"epochs=\.\.\., batch_size=None"),
        ("lambd", r"l2=lambd/m \(m the number of samples\)"),
        ("keep_prob", r"Dropout\(rate=1 - keep_prob\)"),
        ("print_cost", r"verbose=1"),
        ("max_iter", r"epochs= is the number of passes"),
        ("eta", r"SGD\(lr=eta\) under cross_entropy .* SGD\(lr=k \* eta\) on k outputs"),
        ("lmbda", r"l2=lmbda / n with cross_entropy's .* l2=lmbda / \(k \* n\)"),
    ],
)
def test_the_course_fit_options_are_told_ours(option, said):
    """num_iterations=, lambd=, keep_prob= and print_cost= were answered with the list
    of fit's options alone."""
    X, Y = course_data()
    model = nb.Sequential([Dense(2, 1), "sigmoid"], seed=0)
    with pytest.raises(TypeError, match=said):
        model.fit(X.T, np.ravel(Y), loss="bce", optimizer="sgd", **{option: 0.5})


def test_the_course_regularised_gradient_descent_is_fit_as_told(backend64):
    """The hints' fit (epochs=, batch_size=None, l2=lambd/m) takes the course's steps:
    W -= lr * ((A - Y) X^T / m + lambd / m * W), b -= lr * sum(A - Y) / m."""
    X, Y = course_data()
    m, lambd, lr, num_iterations = X.shape[1], 0.7, 0.5, 4
    model = nb.Sequential([Dense(2, 1), "sigmoid"], seed=0, backend=backend64)
    W, b = nb.to_numpy(model.params["0.W"]).T, nb.to_numpy(model.params["0.b"])[:, None]
    for _ in range(num_iterations):
        A = 1 / (1 + np.exp(-(W @ X + b)))
        W, b = W - lr * ((A - Y) @ X.T / m + lambd / m * W), b - lr * np.sum(A - Y) / m
    model.fit(X.T, np.ravel(Y), loss="bce", optimizer=nb.optim.SGD(lr=lr), verbose=0,
              epochs=num_iterations, batch_size=None, l2=lambd / m)  # fmt: skip
    np.testing.assert_allclose(nb.to_numpy(model.params["0.W"]).T, W, rtol=1e-12)
    np.testing.assert_allclose(nb.to_numpy(model.params["0.b"]), b[:, 0], rtol=1e-12)


def test_nielsens_l2_regularised_steps_are_fit_as_told(backend64):
    """network2.py's update on k outputs, w -> (1 - eta lmbda / n) w - eta/m sum dC/dw
    with C summed over the outputs, is the hint's SGD(lr=k * eta), l2=lmbda / (k * n)."""
    rng = np.random.default_rng(0)
    X, n, k, eta, lmbda = rng.normal(size=(20, 4)), 20, 5, 0.5, 5.0
    Y = np.eye(k)[rng.integers(0, k, 20)]
    model = nb.Sequential([Dense(4, k), "sigmoid"], seed=0, backend=backend64)
    W, b = nb.to_numpy(model.params["0.W"]), nb.to_numpy(model.params["0.b"])
    for rows in np.split(np.arange(n), 4):  # mini-batches of m = 5, in order
        A = 1 / (1 + np.exp(-(X[rows] @ W + b)))
        delta = A - Y[rows]  # cross-entropy through a sigmoid, summed over the outputs
        W = (1 - eta * lmbda / n) * W - eta / len(rows) * X[rows].T @ delta
        b = b - eta / len(rows) * delta.sum(0)
    model.fit(X, Y, loss="bce", optimizer=nb.optim.SGD(lr=k * eta), epochs=1, batch_size=5,
              shuffle=False, l2=lmbda / (k * n), verbose=0)  # fmt: skip
    np.testing.assert_allclose(nb.to_numpy(model.params["0.W"]), W, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(nb.to_numpy(model.params["0.b"]), b, rtol=1e-12, atol=1e-14)


def test_nielsens_softmax_steps_are_fit_with_his_eta_under_cross_entropy(backend64):
    """network3's softmax and log-likelihood: one term per sample, so SGD(lr=eta) and
    l2=lmbda / n, where the hint had said k * eta for every loss."""
    rng = np.random.default_rng(0)
    X, n, eta, lmbda = rng.normal(size=(12, 4)), 12, 0.5, 2.0
    labels = np.arange(n) % 3
    model = nb.Sequential([Dense(4, 3)], seed=0, backend=backend64)
    W, b = nb.to_numpy(model.params["0.W"]), nb.to_numpy(model.params["0.b"])
    Z = X @ W + b
    P = np.exp(Z - Z.max(1, keepdims=True))
    delta = P / P.sum(1, keepdims=True) - np.eye(3)[labels]
    W = (1 - eta * lmbda / n) * W - eta / n * X.T @ delta
    model.fit(X, labels, loss="cross_entropy", optimizer=nb.optim.SGD(lr=eta), epochs=1,
              batch_size=None, l2=lmbda / n, verbose=0)  # fmt: skip
    np.testing.assert_allclose(nb.to_numpy(model.params["0.W"]), W, rtol=1e-12, atol=1e-14)
