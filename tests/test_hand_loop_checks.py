"""A loop written by hand hands backward and step arrays of its own making: one of
another library, dtype or kind is refused by name before anything moves (a step had
updated the layers before the bad gradient, then failed in the library's words)."""

from __future__ import annotations

import numpy as np
import pytest

import nnbackend as nb
from nnbackend.layers import Dense


def net(backend):
    """A 2-4-2 net after one forward and its loss on 8 rows."""
    X = np.random.default_rng(0).normal(size=(8, 2))
    model = nb.Sequential([Dense(2, 4), "tanh", Dense(4, 2)], seed=0, backend=backend)
    loss = nb.losses.SoftmaxCrossEntropy()
    labels = model.backend.asarray(np.arange(8) % 2, dtype="int64")
    loss.forward(model.forward(model.backend.asarray(X)), labels)
    return model, loss


def weights(model) -> dict:
    return {k: nb.to_numpy(v).copy() for k, v in model.params.items()}


def test_backward_refuses_dy_of_another_library():
    model, loss = net("strict")
    with pytest.raises(nb.BackendMismatchError, match=r"dy, backward's dL/d\(output\), is a"):
        model.backward(nb.to_numpy(loss.backward()))


def test_backward_refuses_dy_of_another_float_dtype(backend):
    """On NumPy the weights' gradients, and Adam's slots after them, became float64."""
    model, loss = net(backend)
    xp = model.backend.xp
    with pytest.raises(TypeError, match=r"dy has dtype float64, the last forward's output float32"):
        model.backward(xp.astype(loss.backward(), xp.float64))


def test_backward_names_a_forgotten_call():
    model, loss = net("numpy")
    with pytest.raises(TypeError, match=r"call it, model.backward\(loss.backward\(\)\)"):
        model.backward(loss.backward)


def test_step_refuses_a_gradient_the_weight_cannot_take_before_any_update():
    model, loss = net("strict")
    model.backward(loss.backward())
    before = weights(model)
    grads = dict(model.grads)
    grads["2.W"] = model.backend.xp.astype(grads["2.W"], model.backend.xp.float64)
    optimizer = nb.optim.Adam(0.1)
    with pytest.raises(
        TypeError,
        match=r"the gradient of '2.W' is array_api_strict's float64, its weight \w+'s float32",
    ):
        optimizer.step(model.params, grads)
    assert all(np.array_equal(w, before[k]) for k, w in weights(model).items())
    assert optimizer.iterations == 0 and not any(optimizer.state.values())


def test_step_refuses_host_gradients_for_a_strict_model():
    """Clipped by hand with np.clip: NumPy's Adam kernel ran on strict's arrays."""
    model, loss = net("strict")
    model.backward(loss.backward())
    host = {k: np.clip(nb.to_numpy(g), -1, 1) for k, g in model.grads.items()}
    with pytest.raises(
        TypeError,
        match=r"the gradient of '0.W' is numpy's float32, its weight array_api_strict's float32",
    ):
        nb.optim.Adam(0.01).step(model.params, host)
    with pytest.raises(TypeError, match=r"the gradient of '0.W' is a list, not an array"):
        nb.optim.SGD(0.1).step(model.params, {"0.W": [[0.0] * 4] * 2})


def test_a_gradient_the_weight_takes_steps_as_before(backend64):
    """A float32 gradient for a float64 weight widens nothing: taken."""
    model, loss = net(backend64)
    model.backward(loss.backward())
    xp = model.backend.xp
    grads = {k: xp.astype(g, xp.float32) for k, g in model.grads.items()}
    before = weights(model)
    nb.optim.SGD(0.1).step(model.params, grads)
    for name, w in weights(model).items():
        expected = before[name] - 0.1 * nb.to_numpy(grads[name]).astype(np.float64)
        np.testing.assert_allclose(w, expected, rtol=1e-6)  # 0.1 * g in float32


def test_step_refuses_a_gradient_on_another_device_before_updating():
    """Same library and dtype, another device: the first layers moved, then it failed."""
    import array_api_strict as xp

    model, loss = net("strict")
    model.backward(loss.backward())
    before = weights(model)
    grads = dict(model.grads)
    grads["2.b"] = xp.asarray(nb.to_numpy(grads["2.b"]), device=xp.Device("device1"))
    with pytest.raises(TypeError, match=r"'2.b' is array_api_strict's float32 on .*device1"):
        nb.optim.SGD(0.1).step(model.params, grads)
    assert all(np.array_equal(w, before[k]) for k, w in weights(model).items())


def test_a_backward_after_moving_the_model_is_not_told_float32_is_not_float32():
    model, _ = net("numpy")
    model.to("strict")
    dy = model.backend.xp.ones((8, 2), dtype=model.backend.xp.float32)
    with pytest.raises(Exception) as err:
        model.backward(dy)
    assert "dy has dtype" not in str(err.value)


def replaced_head(opt, backend, n_out: int, init: str = "zeros"):
    """A 2-8-2 net fitted 5 steps with ``opt``, its head then replaced by a built
    Dense(8, n_out), and one hand forward and backward through the new head."""
    X, y = nb.datasets.make_moons(64, noise=0.2, seed=0)
    model = nb.Sequential([Dense(2, 8), "tanh", Dense(8, 2)], seed=0, backend=backend)
    model.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=5, batch_size=None, verbose=0)
    head = Dense(8, n_out, init=init)
    head.build(model.backend, model.rng)
    model.layers[2] = head
    loss = nb.losses.SoftmaxCrossEntropy()
    loss.forward(model.forward(model.backend.asarray(X)), model.backend.asarray(y))
    model.backward(loss.backward())
    return model


def test_a_hand_step_starts_a_replaced_layer_afresh_as_fit_does(backend64):
    """opt.step pushed the new head with the old head's velocity (fit's steps drop it):
    its first Momentum step moved it 0.0207, not lr * grad = 0.0175."""
    opt = nb.optim.Momentum(0.1, 0.9)
    model = replaced_head(opt, backend64, 2)
    grad = nb.to_numpy(model.grads["2.W"]).copy()
    opt.step(model.params, model.grads)
    np.testing.assert_allclose(nb.to_numpy(model.params["2.W"]), -0.1 * grad, rtol=1e-12)
    assert opt.iterations == 6  # the count goes on


def test_a_hand_step_after_a_wider_head_is_not_taken_for_another_models(backend):
    """Adam's state of the old (8, 2) head met the new (8, 3) one: "this optimizer's state
    is another model's", where fit and train_step take the same model."""
    opt = nb.optim.Adam(0.01)
    model = replaced_head(opt, backend, 3, init="lecun")
    before = nb.to_numpy(model.params["0.W"]).copy()
    opt.step(model.params, model.grads)
    assert opt.state["m"]["2.W"].shape == (8, 3)
    assert not np.array_equal(nb.to_numpy(model.params["0.W"]), before)


def hand_step(model, opt):
    out = model.forward(model.backend.asarray(np.ones((4, 2))))
    model.backward(model.backend.xp.ones_like(out))
    opt.step(model.params, model.grads)


def test_a_hand_step_after_a_layer_is_removed_or_appended_follows_the_model(tmp_path):
    """A removed layer's state goes with it (else a checkpoint of it would not restore
    into the model as it is now); an appended one is new to the optimizer."""
    model = nb.Sequential([Dense(2, 3), "relu", Dense(3, 3), Dense(3, 1)], seed=0)
    opt = nb.optim.Momentum(lr=0.1)
    hand_step(model, opt)
    del model.layers[2]
    hand_step(model, opt)
    assert sorted(opt.state["v"]) == ["0.W", "0.b", "2.W", "2.b"]
    path = nb.save(model, tmp_path / "m.h5", optimizer=opt)
    again = nb.Sequential([Dense(2, 3), "relu", Dense(3, 1)], seed=1)
    nb.restore(again, path, optimizer=nb.optim.Momentum(lr=0.1))
    model.layers.append(nb.layers.ReLU())
    hand_step(model, opt)
    assert opt.iterations == 3
