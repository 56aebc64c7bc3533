"""Edges of the optimizers, the flat buffer and the initialisers that a mutation run of
optim.py, optim_base.py, flat.py and init.py found no test holding: each test fails
under a mutant the rest of the suite let pass."""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pytest

import nnbackend as nb
import nnbackend.optim_base
from nnbackend import optim
from nnbackend.backend.kernels import table

GRAD = np.array([5.0, -5.0, 0.5])


def clipped(grad):
    return nb.backend.namespace_of(grad).clip(grad, min=-1.0, max=1.0)


class ClippedSGD(optim.SGD):
    """SGD of the gradient clipped to [-1, 1], written in ``update`` alone."""

    def update(self, params, name, grad, lr):
        super().update(params, name, clipped(grad), lr)


class ClippedMomentum(optim.Momentum):
    """Momentum of the gradient clipped to [-1, 1], written in ``update`` alone."""

    def update(self, params, name, grad, lr):
        super().update(params, name, clipped(grad), lr)


class ApplyClippedAdam(optim.Adam):
    """Adam of the gradient clipped to [-0.01, 0.01], written in ``apply`` alone."""

    def apply(self, kernels, params, name, grad, lr):
        xp = nb.backend.namespace_of(grad)
        super().apply(kernels, params, name, xp.clip(grad, min=-0.01, max=0.01), lr)


def every_kernel(xp) -> SimpleNamespace:
    """The backend's kernel table, with NumPy stand-ins for the optimizer kernels it
    lacks (NumPy's has no sgd, momentum or multi-array ones; torch's has them all)."""

    def sgd(p, g, lr):
        p -= lr * g

    def momentum(p, v, g, lr, mu):
        v *= mu
        v -= lr * g
        p += v

    kernels = dict(vars(table(xp)))
    adam = kernels["adam"]
    more = {
        "sgd": sgd,
        "momentum": momentum,
        "sgd_many": lambda ps, gs, lr: [sgd(p, g, lr) for p, g in zip(ps, gs, strict=True)],
        "momentum_many": lambda ps, vs, gs, lr, mu: [
            momentum(p, v, g, lr, mu) for p, v, g in zip(ps, vs, gs, strict=True)
        ],
    }
    if adam is not None:  # array-api-strict's table has none to repeat
        more["adam_many"] = lambda ps, ms, vs, gs, *hyper: [
            adam(p, m, v, g, *hyper) for p, m, v, g in zip(ps, ms, vs, gs, strict=True)
        ]
    return SimpleNamespace(**{**kernels, **{k: f for k, f in more.items() if not kernels[k]}})


def stepped(backend, opt, grad, steps=1):
    """The weight ``w`` (zeros) after ``steps`` steps of ``opt`` with ``grad``."""
    params = {"w": backend.asarray(np.zeros_like(grad))}
    for _ in range(steps):
        opt.step(params, {"w": backend.asarray(grad)})
    return backend.to_numpy(params["w"])


@pytest.fixture(params=["as is", "every kernel"])
def kernels(request, monkeypatch):
    """The step's kernel table as the backend has it, and with every optimizer kernel:
    the second holds NumPy to what only torch's table would otherwise test."""
    if request.param == "every kernel":
        monkeypatch.setattr(nnbackend.optim_base, "table", every_kernel)
    return request.param


def test_rmsprop_refuses_a_rho_of_1():
    """rho = 1 never forgets: h stays at 0 and every step divides by eps alone."""
    with pytest.raises(ValueError, match=r"rho must be a finite number in \[0, 1\), got 1.0"):
        optim.RMSProp(rho=1.0)


def test_an_sgd_subclass_that_rewrites_update_alone_runs_it(backend, kernels):
    """The one-call update (torch's sgd_many: the torch backend, or the table with every
    kernel) must not go around a rewritten ``update``: the gradient would go unclipped."""
    got = stepped(backend, ClippedSGD(lr=0.1), GRAD)
    np.testing.assert_allclose(got, [-0.1, 0.1, -0.05], rtol=1e-6)


def test_a_momentum_subclass_that_rewrites_update_alone_runs_it(backend, kernels):
    """As for SGD: v = 0.9 v - 0.1 clip(g) twice gives v = -0.19 clip(g), and the weight
    -0.29 clip(g); the fused momentum kernels would have stepped the raw gradient."""
    got = stepped(backend, ClippedMomentum(lr=0.1, momentum=0.9), GRAD, steps=2)
    np.testing.assert_allclose(got, [-0.29, 0.29, -0.145], rtol=1e-6)


def test_an_adam_subclass_that_rewrites_apply_alone_runs_it(backend, kernels):
    """torch's adam_many (or the table with every kernel) must not go around a rewritten
    ``apply``: the moments would see the raw gradient 5.0, not the clipped 0.01."""
    opt = ApplyClippedAdam(lr=0.001)
    stepped(backend, opt, np.array([5.0, 5.0]), steps=3)
    want = (1 - 0.999**3) * 0.01**2  # v = b2 v + (1 - b2) g**2, three times from 0
    v = backend.to_numpy(opt.state["v"]["w"])
    np.testing.assert_allclose(v, [want, want], rtol=1e-5)
    m = backend.to_numpy(opt.state["m"]["w"])
    np.testing.assert_allclose(m, [(1 - 0.9**3) * 0.01] * 2, rtol=1e-5)


class RowBias(nb.layers.Layer):
    """``x + b``, whose backward keeps the batch axis of b's gradient: (1, n), not (n,)."""

    def __init__(self, n: int = 2):
        super().__init__()
        self.n = n

    def param_shapes(self):
        return {"b": (self.n,)}

    def build(self, backend, rng):
        super().build(backend, rng)
        self.params["b"] = backend.xp.zeros((self.n,), dtype=backend.dtype)

    def forward(self, x, training=True):
        return x + self.params["b"]

    def backward(self, dy, input_grad=True):
        self.grads["b"] = self.backend.xp.sum(dy, axis=0, keepdims=True)
        return dy


def test_fit_refuses_a_gradient_of_another_shape_than_its_weight(backend):
    """Unchecked, the flat buffer would take the (1, 2) gradient into the (2,) view,
    broadcast, and the fit train on without a word."""
    model = nb.Sequential([nb.layers.Dense(3, 2), RowBias(2)], backend=backend, seed=0)
    X, y = np.ones((4, 3)), np.zeros((4, 2))
    with pytest.raises(ValueError, match=r"the gradient of '1.b' has shape \(1, 2\), its par"):
        model.fit(X, y, loss="mse", optimizer=optim.SGD(0.1), epochs=1, verbose=0)


def test_every_weight_starts_at_a_multiple_of_16_elements_of_the_flat_buffer(backend):
    """flat.py's ALIGN promise, held to the number itself: the test in test_flat reads
    the module's own constant, which any value passes."""
    if not backend.has_views:
        pytest.skip(f"{backend.name} promises no views")
    model = nb.Sequential(
        [nb.layers.Dense(4, 5), "tanh", nb.layers.Dense(5, 7), nb.layers.Dense(7, 3)],
        backend=backend, seed=1,
    )  # fmt: skip
    X, y = np.ones((8, 4)), np.arange(8) % 3
    model.fit(X, y, loss="cross_entropy", optimizer=optim.SGD(0.1), epochs=1, verbose=0)
    flat, xp = model._flat, backend.xp
    buffer = flat.params.buffer
    buffer[...] = xp.arange(int(buffer.shape[0]), dtype=buffer.dtype)
    starts = [int(nb.to_numpy(xp.reshape(w, (-1,))[0])) for w in model.params.values()]
    assert len(set(starts)) == 6 and all(start % 16 == 0 for start in starts)


def test_load_state_dict_refuses_a_step_count_past_2_to_the_53():
    """Past 2**53 the bias correction's float step count stops counting."""
    state = {"type": "Adam", "iterations": 2**60, "slots": {"m": {}, "v": {}}}
    with pytest.raises(ValueError, match=r"iterations must be between 0 and 9007199254740992"):
        optim.Adam().load_state_dict(state)


@pytest.mark.parametrize("lr", [0, 0.0])
def test_a_saved_rate_of_0_comes_back_as_an_int_or_a_float(lr):
    """A used-up rate saved as the int 0 (JSON's "lr": 0) loads as 0.0 does."""
    opt = optim.from_config({"type": "SGD", "lr": lr})
    assert type(opt) is optim.SGD and opt.lr == 0.0 and type(opt.lr) is float


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4)])
def test_an_initializer_asks_for_fans_of_a_weight_not_2d(backend, shape):
    """A (5,) weight is told to give fans, not Python's 'not enough values to unpack'."""
    said = f"a weight of shape {shape} has no fan-in and fan-out of its own: give fans="
    with pytest.raises(ValueError, match=re.escape(said)):
        nb.init.He()(shape, nb.Generator(0), backend)


def test_a_normal_of_std_0_gives_zeros_and_a_negative_std_is_refused(backend):
    """std 0 (every weight 0) is allowed, as NumPy's normal allows it; -0.1 is no spread."""
    w = nb.init.Normal(0.0)((3, 2), nb.Generator(0), backend)
    np.testing.assert_array_equal(backend.to_numpy(w), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"Normal std must be a finite number at least 0"):
        nb.init.Normal(-0.1)


def test_keras_sgd_with_momentum_is_told_the_momentum_class():
    """Keras's SGD(learning_rate=0.1, momentum=0.9) is told the class that has it."""
    said = r"nb\.optim\.Momentum\(lr=0\.1, momentum=0\.9\) is SGD with it"
    with pytest.raises(TypeError, match=said):
        optim.SGD(learning_rate=0.1, momentum=0.9)
