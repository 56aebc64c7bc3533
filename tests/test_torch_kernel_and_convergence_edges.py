"""Edges of torch's fused kernels (nnbackend.backend.kernels_torch) and of the
scikit-learn estimators' schedule (nnbackend.sklearn.convergence) that a mutation run
found no test holding: each test fails under a mutant the rest of the suite let pass
(the comments name them)."""

from __future__ import annotations

import types

import array_api_compat
import array_api_compat.numpy
import numpy as np
import pytest
from sklearn import neural_network

import nnbackend as nb
from nnbackend.backend import kernels
from nnbackend.sklearn import MLPRegressor
from tests.test_kernels import entry, normal


@pytest.mark.parametrize("n_in, n_out", [(80, 3), (80, 32)])
def test_a_tall_narrow_weight_gradient_lands_in_the_flat_buffer(backend, n_in, n_out):
    """A Dense layer of 64 inputs or more and 2 to 32 outputs (torch's CPU takes its dW
    as the transpose of dy.T @ x) writes dW = x.T @ dy into the buffer it was handed,
    with the numbers NumPy's float64 product gives."""
    # kills kernels_torch 37 (None returned) and 38 (the product not written into out)
    entry(backend, "matmul_into")
    layer = nb.layers.Dense(n_in, n_out)
    layer.build(backend, nb.Generator(0))
    x, dy = normal(backend, (7, n_in)), normal(backend, (7, n_out), seed=1)
    layer.forward(x)
    size = n_in * n_out
    buffer = backend.xp.zeros((size + n_out,), dtype=backend.dtype, device=backend.device)
    W = backend.xp.reshape(buffer[:size], (n_in, n_out))
    layer.grad_buffers = {"W": W, "b": buffer[size:]}
    layer.backward(dy)
    want = nb.to_numpy(x).astype(np.float64).T @ nb.to_numpy(dy).astype(np.float64)
    assert layer.grads["W"] is W
    np.testing.assert_allclose(nb.to_numpy(buffer[:size]).reshape(n_in, n_out), want,
                               rtol=1e-5, atol=1e-5)  # fmt: skip


def test_the_innermost_fused_block_decides():
    """A fused block inside another rules inside it, for ``enabled()`` and for the
    table; the outer block's choice comes back after it."""
    # kills kernels 8 and 16 (_forced[-1] -> _forced[0]: the outermost block ruled)
    xp = nb.get_backend("numpy").xp
    for outer in (True, False):
        with nb.backend.fused(outer):
            with nb.backend.fused(not outer):
                assert kernels.enabled() is (not outer)
                assert (kernels.table(xp).softmax_xent is not None) is (not outer)
            assert kernels.enabled() is outer
            assert (kernels.table(xp).softmax_xent is not None) is outer


def test_each_library_is_known_by_its_namespace():
    """NumPy (itself or array-api-compat's), torch and a namespace named cupy are
    each found as their library; array-api-strict is none."""
    # kills kernels 28 (only nnbackend's NumPy namespace), 34, 35 (CuPy not found)
    # and 36-38 (torch not found)
    assert kernels._library(np) == "numpy"
    assert kernels._library(array_api_compat.numpy) == "numpy"
    assert kernels._library(types.ModuleType("cupy")) == "cupy"
    assert kernels._library(nb.get_backend("strict").xp) is None
    torch = pytest.importorskip("torch")
    assert kernels._library(array_api_compat.array_namespace(torch.zeros(1))) == "torch"


def test_torch_gets_its_fused_kernels(backend):
    """On torch every entry but the NumPy and CuPy only ones is torch's own."""
    # kills kernels 36-38 (torch's tests then skipped every kernel)
    if not backend.name.startswith("torch"):
        pytest.skip("torch only")
    table = kernels.table(backend.xp)
    missing = {"softmax_xent_labels", "softmax_xent_counted", "sigmoid_bce_counted"}
    assert {n for n in kernels.NAMES if getattr(table, n) is None} == missing


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_dense_act_called_directly_gives_the_activated_product(backend, activation):
    """The table's ``dense_act`` returns act(x @ W + b) itself (a None would send the
    Dense layer back to its unfused forward without a word)."""
    # kills kernels_torch 26 and 28 (None returned: the fusion silently off)
    dense_act = entry(backend, "dense_act")
    x, W, b = (
        normal(backend, (7, 5)),
        normal(backend, (5, 4), seed=1),
        normal(backend, (4,), seed=2),
    )
    z = nb.to_numpy(x).astype(np.float64) @ nb.to_numpy(W) + nb.to_numpy(b)
    want = {"sigmoid": 1 / (1 + np.exp(-z)), "tanh": np.tanh(z), "relu": np.maximum(z, 0)}
    got = dense_act(x, W, b, activation)
    assert got is not None
    np.testing.assert_allclose(nb.to_numpy(got), want[activation], rtol=1e-5, atol=1e-6)


def test_the_loss_kernels_scale_their_gradient_by_any_factor(backend):
    """``softmax_xent`` and ``sigmoid_bce`` multiply value and gradient by ``scale``,
    whatever it is: at 2, the gradient is 2 (softmax(z) - onehot) and 2 (sigmoid(z) - t)."""
    # kills kernels_torch 17 and 23 (the gradient left unscaled at a scale of exactly 2)
    softmax_xent, sigmoid_bce = (
        entry(backend, "softmax_xent"),
        entry(backend, "sigmoid_bce"),
    )
    z = normal(backend, (6, 3))
    zz = nb.to_numpy(z).astype(np.float64)
    onehot = np.eye(3)[[0, 1, 2, 0, 1, 2]]
    p = np.exp(zz - zz.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    value, grad = softmax_xent(z, backend.asarray(onehot), 2.0)
    assert float(nb.to_numpy(value)) == pytest.approx(-2 * np.sum(onehot * np.log(p)), rel=1e-5)
    np.testing.assert_allclose(nb.to_numpy(grad), 2 * (p - onehot), rtol=1e-5, atol=1e-6)
    t = (zz > 0.3).astype(np.float64)
    value, grad = sigmoid_bce(z, backend.asarray(t), 2.0)
    s = 1 / (1 + np.exp(-zz))
    bce = -np.sum(t * np.log(s) + (1 - t) * np.log(1 - s))
    assert float(nb.to_numpy(value)) == pytest.approx(2 * bce, rel=1e-5)
    np.testing.assert_allclose(nb.to_numpy(grad), 2 * (s - t), rtol=1e-5, atol=1e-6)


RNG = np.random.default_rng(0)
X = RNG.normal(size=(30, 3))
TARGET = X[:, 0] - 0.5 * X[:, 1]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_adaptive_sgd_stops_where_scikit_learn_does_just_above_the_floor():
    """A learning rate of 1.5e-6 is above the 1e-6 floor: the first stall divides it by
    5 (to 3e-7) and training goes on; the second stops it, at epoch 5, as in
    scikit-learn's MLPRegressor."""
    # kills convergence 3 (the floor moved to 2e-6: it stopped at the first stall)
    kw = dict(hidden_layer_sizes=(4,), solver="sgd", learning_rate="adaptive",
              learning_rate_init=1.5e-6, n_iter_no_change=1, tol=1e9, max_iter=20,
              random_state=0)  # fmt: skip
    theirs = neural_network.MLPRegressor(**kw).fit(X, TARGET)
    ours = MLPRegressor(**kw).fit(X, TARGET)
    assert theirs.n_iter_ == 5
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.model_.optimizer.lr == pytest.approx(3e-7, rel=1e-12)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_loss_is_the_last_epochs_loss_after_fit_and_partial_fit():
    """``loss_`` is the last entry of ``loss_curve_``, as in scikit-learn, and a
    ``partial_fit`` moves it to its own epoch's loss."""
    # kills convergence 16 (loss_ never set)
    est = MLPRegressor(hidden_layer_sizes=(4,), max_iter=3, random_state=0).fit(X, TARGET)
    assert len(est.loss_curve_) == 3 and est.loss_ == est.loss_curve_[-1]
    est.partial_fit(X, TARGET)
    assert len(est.loss_curve_) == 4 and est.loss_ == est.loss_curve_[-1]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_learning_rate_schedules_are_for_sgd_only():
    """Adam ignores ``learning_rate`` (scikit-learn's rule): "invscaling" trains as
    "constant" does, and the step size stays ``learning_rate_init``."""
    # kills convergence 26 (invscaling applied to Adam's step size too)
    curves = []
    for schedule in ("constant", "invscaling"):
        est = MLPRegressor(hidden_layer_sizes=(4,), solver="adam", learning_rate=schedule,
                           learning_rate_init=0.01, max_iter=4, random_state=0)  # fmt: skip
        est.fit(X, TARGET)
        assert est.model_.optimizer.lr == 0.01
        curves.append(est.loss_curve_)
    assert curves[0] == curves[1]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_loss_that_only_equals_the_best_is_not_a_stall_at_tol_zero():
    """With tol=0, a loss equal to the best so far (a step of 1e-300 leaves every weight
    as it was) is no worse: no stall is counted and training runs to max_iter, as in
    scikit-learn."""
    # kills convergence 41 (loss >= best - tol: equality counted as a stall)
    kw = dict(hidden_layer_sizes=(4,), solver="sgd", learning_rate_init=1e-300,
              momentum=0.0, tol=0.0, n_iter_no_change=2, max_iter=8, shuffle=False,
              batch_size=30, random_state=0)  # fmt: skip
    theirs = neural_network.MLPRegressor(**kw).fit(X, TARGET)
    ours = MLPRegressor(**kw).fit(X, TARGET)
    assert theirs.n_iter_ == 8
    assert ours.n_iter_ == 8 and len(set(ours.loss_curve_)) == 1
