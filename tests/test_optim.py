"""Optimizers against the textbook update rules (written here in NumPy) and torch.optim."""

from __future__ import annotations

import pickle
import re

import numpy as np
import pytest

import nnbackend as nb
from nnbackend import optim
from tests.conftest import HAVE_TORCH

STEPS = 4
LR = 0.1


def host_grads():
    rng = np.random.default_rng(3)
    return [rng.normal(size=(3, 2)) for _ in range(STEPS)]


def host_start():
    return np.random.default_rng(4).normal(size=(3, 2))


# The update rules as written in the papers and textbooks, one step at a time.
def textbook_sgd(w, grads):
    for g in grads:
        w = w - LR * g
    return w


def textbook_momentum(w, grads, mu=0.9):
    v = np.zeros_like(w)
    for g in grads:
        v = mu * v - LR * g
        w = w + v
    return w


def textbook_nesterov(w, grads, mu=0.9):
    # Sutskever et al.: look ahead by mu*v, take the gradient there (here: given), step.
    v = np.zeros_like(w)
    for g in grads:
        v_prev = v
        v = mu * v - LR * g
        w = w - mu * v_prev + (1 + mu) * v
    return w


def textbook_adagrad(w, grads, eps=1e-7):
    h = np.zeros_like(w)
    for g in grads:
        h = h + g * g
        w = w - LR * g / (np.sqrt(h) + eps)
    return w


def textbook_rmsprop(w, grads, rho=0.9, eps=1e-7):
    h = np.zeros_like(w)
    for g in grads:
        h = rho * h + (1 - rho) * g * g
        w = w - LR * g / (np.sqrt(h) + eps)
    return w


def textbook_adam(w, grads, b1=0.9, b2=0.999, eps=1e-8):
    m = v = np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        w = w - LR * m_hat / (np.sqrt(v_hat) + eps)
    return w


OPTIMIZERS = {
    "SGD": (lambda: optim.SGD(lr=LR), textbook_sgd),
    "Momentum": (lambda: optim.Momentum(lr=LR), textbook_momentum),
    "Nesterov": (lambda: optim.Nesterov(lr=LR), textbook_nesterov),
    "AdaGrad": (lambda: optim.AdaGrad(lr=LR), textbook_adagrad),
    "RMSProp": (lambda: optim.RMSProp(lr=LR), textbook_rmsprop),
    "Adam": (lambda: optim.Adam(lr=LR), textbook_adam),
}


def run(opt, backend, grads):
    params = {"w": backend.asarray(host_start())}
    for g in grads:
        opt.step(params, {"w": backend.asarray(g)})
    return params


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_update_rule_matches_the_textbook(name, backend64):
    make, textbook = OPTIMIZERS[name]
    params = run(make(), backend64, host_grads())
    expected = textbook(host_start(), host_grads())
    np.testing.assert_allclose(backend64.to_numpy(params["w"]), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    ("make", "textbook"), [(optim.Momentum, textbook_momentum), (optim.Nesterov, textbook_nesterov)]
)
def test_momentum_of_one_never_forgets_as_torchs_does(make, textbook, backend64):
    """momentum=1, which torch's and scikit-learn's SGD take: v sums every step's
    -lr dW; 1 + a hair is refused."""
    params = run(make(lr=LR, momentum=1.0), backend64, host_grads())
    expected = textbook(host_start(), host_grads(), mu=1.0)
    np.testing.assert_allclose(backend64.to_numpy(params["w"]), expected, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match=r"momentum must be a finite number in \[0, 1\], got 1.01"):
        make(momentum=1.01)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_state_is_keyed_by_name_and_lives_with_the_params(name, backend):
    opt = OPTIMIZERS[name][0]()
    params = run(opt, backend, [g.astype(np.float32) for g in host_grads()])
    assert params["w"].dtype == backend.xp.float32
    assert opt.iterations == STEPS
    for slot in opt.slots:
        state = opt.state[slot]["w"]
        backend.check_array(state)
        assert state.dtype == backend.xp.float32 and state.shape == params["w"].shape


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_matches_torch_optim(name):
    import torch

    reference = {
        "SGD": lambda p: torch.optim.SGD(p, lr=LR),
        "Momentum": lambda p: torch.optim.SGD(p, lr=LR, momentum=0.9),
        "Nesterov": lambda p: torch.optim.SGD(p, lr=LR, momentum=0.9, nesterov=True),
        "AdaGrad": lambda p: torch.optim.Adagrad(p, lr=LR, eps=1e-7),
        "RMSProp": lambda p: torch.optim.RMSprop(p, lr=LR, alpha=0.9, eps=1e-7),
        "Adam": lambda p: torch.optim.Adam(p, lr=LR),
    }[name]
    w = torch.tensor(host_start(), requires_grad=True)
    topt = reference([w])
    for g in host_grads():
        w.grad = torch.tensor(g)
        topt.step()
    params = run(OPTIMIZERS[name][0](), nb.get_backend("numpy", dtype="float64"), host_grads())
    np.testing.assert_allclose(params["w"], w.detach().numpy(), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(
    "schedule, expected",
    [
        (optim.StepDecay(1.0, step_size=10, gamma=0.5), [1.0, 1.0, 0.5, 0.25]),
        (optim.ExponentialDecay(1.0, decay_rate=0.5, decay_steps=10), [1.0, 0.5**0.9, 0.5, 0.25]),
        (optim.InverseTimeDecay(1.0, decay_rate=1.0, decay_steps=10), [1.0, 1 / 1.9, 0.5, 1 / 3]),
    ],
)
def test_schedules(schedule, expected):
    assert [schedule(step) for step in (0, 9, 10, 20)] == pytest.approx(expected)


def test_schedule_drives_the_step_size(backend64):
    opt = optim.SGD(lr=optim.StepDecay(1.0, step_size=1, gamma=0.5))
    params = {"w": backend64.asarray([0.0])}
    for _ in range(3):
        opt.step(params, {"w": backend64.asarray([1.0])})
    assert backend64.to_float(params["w"][0]) == -(1.0 + 0.5 + 0.25)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_config_round_trip(name):
    opt = OPTIMIZERS[name][0]()
    again = optim.from_config(opt.config())
    assert again.config() == opt.config()
    scheduled = optim.from_config(optim.SGD(lr=optim.StepDecay(0.1, 5)).config())
    assert scheduled.current_lr() == 0.1 and isinstance(scheduled.lr, optim.StepDecay)


def test_a_class_takes_its_own_whole_config():
    """``Adam.from_config(adam.config())`` said "unexpected keyword argument 'type'"."""
    adam = optim.Adam(0.02, beta1=0.8)
    assert optim.Adam.from_config(adam.config()).config() == adam.config()
    decay = optim.StepDecay(0.1, 5)
    assert optim.StepDecay.from_config(decay.config()).config() == decay.config()
    dense, mse = nb.layers.Dense(2, 3), nb.losses.MSE(half=True)
    assert nb.layers.Dense.from_config(dense.config()).config() == dense.config()
    assert nb.losses.MSE.from_config(mse.config()).config() == mse.config()
    with pytest.raises(ValueError, match=r"SGD.from_config was given the config of 'Adam'"):
        optim.SGD.from_config(adam.config())  # another class's: not taken as this one's


@pytest.mark.parametrize("make", [optim.SGD, optim.Momentum, optim.Adam])
def test_a_gradient_without_a_parameter_is_refused_before_any_update(backend, make):
    """Not half a step: the weight named first is left as it was, no state is made and
    the step is not counted, so a retry does not update it twice."""
    opt = make(0.1)
    w = backend.asarray(np.ones(2))
    with pytest.raises(KeyError, match="gradient 'b' has no parameter"):
        opt.step({"w": w}, {"w": backend.asarray(np.ones(2)), "b": backend.asarray(np.ones(2))})
    np.testing.assert_array_equal(backend.to_numpy(w), [1.0, 1.0])
    assert opt.iterations == 0 and all(not slot for slot in opt.state.values())


@pytest.mark.parametrize("make", [optim.SGD, optim.Adam])
def test_a_gradient_of_none_leaves_its_weight_as_torch_does(backend, make):
    """torch.optim skips a parameter whose grad is None; so does step (the others update)."""
    opt = make(0.1)
    frozen, trained = backend.asarray(np.ones(2)), backend.asarray(np.ones(2))
    opt.step({"frozen": frozen, "w": trained}, {"frozen": None, "w": backend.asarray(np.ones(2))})
    np.testing.assert_array_equal(backend.to_numpy(frozen), [1.0, 1.0])
    assert backend.to_numpy(trained)[0] < 1.0 and opt.iterations == 1


@pytest.mark.parametrize("make", [optim.SGD, optim.Adam])
def test_a_step_whose_every_gradient_is_none_changes_nothing(backend, make):
    opt = make(0.1)
    w = backend.asarray(np.ones(2))
    opt.step({"w": w}, {"w": None})  # a mutation that kept the Nones failed in the update
    np.testing.assert_array_equal(backend.to_numpy(w), [1.0, 1.0])
    assert opt.iterations == 0  # nothing stepped: Adam's bias correction would move on


@pytest.mark.parametrize("make", [optim.SGD, optim.Momentum, optim.Adam])
def test_a_gradient_of_another_shape_is_refused_before_any_update(backend, make):
    """It was broadcast into the weight: a 0-d gradient moved every element alike."""
    opt = make(0.1)
    w, b = backend.asarray(np.ones((3, 2))), backend.asarray(np.ones(2))
    grads = {"b": backend.asarray(np.ones(2)), "w": backend.asarray(np.ones(2))}
    with pytest.raises(
        ValueError, match=r"gradient of 'w' has shape \(2,\), its parameter \(3, 2\)"
    ):
        opt.step({"w": w, "b": b}, grads)
    np.testing.assert_array_equal(backend.to_numpy(b), [1.0, 1.0])
    assert opt.iterations == 0 and all(not slot for slot in opt.state.values())


def test_a_step_before_any_backward_is_not_counted(backend):
    """model.grads is empty until the first backward: the step did nothing, and counted
    (Adam's bias correction and a schedule then ran a step ahead)."""
    model = nb.Sequential([nb.layers.Dense(2, 3)], backend=backend, seed=0)
    opt = optim.Adam(0.1)
    opt.step(model.params, model.grads)
    assert opt.iterations == 0 and not opt.state["m"]


def test_a_model_whose_every_weight_is_frozen_fits_unchanged(backend):
    class Frozen(nb.layers.Dense):
        def backward(self, dy, input_grad=True):
            dx = super().backward(dy, input_grad)
            self.grads.clear()
            return dx

    model = nb.Sequential([Frozen(2, 1)], backend=backend, seed=0)
    before = backend.to_numpy(model.params["0.W"]).copy()
    X = np.random.default_rng(0).normal(size=(8, 2))
    model.fit(X, X[:, :1], loss="mse", optimizer="adam", epochs=2, batch_size=None, verbose=0)
    np.testing.assert_array_equal(backend.to_numpy(model.params["0.W"]), before)


def test_one_optimizer_stepping_two_models_by_hand_is_refused(backend):
    """Its state is kept by name: the second model's "0.W" took up the first's moments.
    fit refused this; a loop of one's own did not."""
    X = backend.asarray(np.random.default_rng(0).normal(size=(4, 2)))
    models = [nb.Sequential([nb.layers.Dense(2, 3)], backend=backend, seed=s) for s in (0, 1)]
    opt = optim.Momentum(0.1)
    for model in models:
        model.backward(model.forward(X))
    opt.step(models[0].params, models[0].grads)
    before = backend.to_numpy(models[1].params["0.W"])
    with pytest.raises(ValueError, match=r"has taken 1 steps for another model"):
        opt.step(models[1].params, models[1].grads)
    np.testing.assert_array_equal(backend.to_numpy(models[1].params["0.W"]), before)
    opt.step(models[0].params, models[0].grads)  # its own model goes on
    assert opt.iterations == 2


def test_a_layer_whose_backward_gives_a_wrong_shape_is_named_in_fit(backend):
    """A layer of one's own whose gradient is a 0-d sum: the flat buffer took it in
    broadcast (every weight moved alike), with no error."""

    class Scale(nb.layers.Layer):
        def __init__(self, n):
            super().__init__()
            self.n = n

        def param_shapes(self):
            return {"w": (self.n,)}

        def build(self, backend, rng):
            super().build(backend, rng)
            self.params["w"] = backend.asarray(np.ones(self.n))

        def forward(self, x, training=True):
            self._x = x
            return x * self.params["w"]

        def backward(self, dy, input_grad=True):
            xp = self.backend.xp
            self.grads["w"] = xp.sum(dy * self._x)  # should keep the features' axis
            return dy * self.params["w"]

    X = np.random.default_rng(0).normal(size=(8, 2))
    model = nb.Sequential([Scale(2), nb.layers.Dense(2, 1)], backend=backend, seed=0)
    with pytest.raises(ValueError, match=r"gradient of '0.w' has shape \(\), its parameter \(2,\)"):
        model.fit(X, X[:, :1], loss="mse", optimizer=optim.Momentum(0.1), epochs=1, verbose=0)


def test_a_state_saved_before_any_step_loads_and_to_returns_the_optimizer(backend):
    """An optimizer saved before its first step has 0 iterations: a bound of 1 refused it."""
    fresh = optim.Adam(0.01).state_dict()
    assert fresh["iterations"] == 0
    again = optim.Adam(0.01)
    again.load_state_dict(fresh)
    assert again.iterations == 0 and again.to(backend) is again


def test_a_schedule_class_for_a_rate_is_refused_at_once():
    with pytest.raises(TypeError, match=r"lr=StepDecay is a class; .* lr=StepDecay\(...\)"):
        optim.SGD(lr=optim.StepDecay)


class FixedRate(optim.SGD):
    lr = 0.25  # a rate of its own, a class attribute over the property

    def __init__(self):
        self.iterations, self.state = 0, {}


def test_a_rate_set_by_a_callback_is_checked_as_one_given_at_first():
    """``opt.lr = -0.05`` in a callback climbed the loss, silently, to 15.7."""
    X, y = nb.datasets.make_moons(40, noise=0.2, seed=0)

    class Negative(nb.callbacks.Callback):
        def on_epoch_end(self, epoch, logs, model):
            model.optimizer.lr = -0.05

    model = nb.Sequential([nb.layers.Dense(2, 4), "tanh", nb.layers.Dense(4, 2)], seed=0)
    with pytest.raises(ValueError, match="rate must be a finite number at least 0, got -0.05"):
        model.fit(X, y, loss="cross_entropy", optimizer="adam", epochs=2, verbose=0,
                  callbacks=[Negative()])  # fmt: skip
    opt = optim.SGD(0.1)
    with pytest.raises(TypeError, match="is a class"):
        opt.lr = optim.StepDecay
    opt.lr = 0.0  # a decay run out, set by a callback: the weights stay
    with pytest.raises(ValueError, match="above 0"):
        optim.SGD(0.0)  # given at first: a mistake
    opt.lr = 0.5
    assert opt.lr == 0.5 and opt.config()["lr"] == 0.5
    assert pickle.loads(pickle.dumps(FixedRate())).lr == 0.25
    old = pickle.loads(pickle.dumps(opt))  # as pickled when lr was a plain attribute
    old.__dict__["lr"] = old.__dict__.pop("_lr")
    assert pickle.loads(pickle.dumps(old)).lr == 0.5


def test_state_loaded_from_another_backend_follows_the_model(backend):
    """Adam's moments saved on NumPy, loaded into an optimizer for this backend's model:
    fit moves them, as model.to(..., optimizer=) would, and goes on as on NumPy."""
    X, y = nb.datasets.make_moons(40, noise=0.2, seed=0)

    def net(on):
        return nb.Sequential([nb.layers.Dense(2, 4), "tanh", nb.layers.Dense(4, 2)],
                             backend=on, seed=0)  # fmt: skip

    fit = dict(loss="cross_entropy", epochs=2, batch_size=10, verbose=0, shuffle=False)
    first, opt = net(nb.get_backend("numpy", dtype=backend.dtype_name)), optim.Adam(0.05)
    first.fit(X, y, optimizer=opt, **fit)
    model, moved = net(backend), optim.Adam(0.05)
    model.set_params({k: backend.asarray(nb.to_numpy(v)) for k, v in first.params.items()})
    moved.load_state_dict(opt.state_dict())
    model.fit(X, y, optimizer=moved, **fit)
    first.fit(X, y, optimizer=opt, **fit)
    for name, value in first.params.items():
        np.testing.assert_allclose(backend.to_numpy(model.params[name]), nb.to_numpy(value),
                                   rtol=1e-5, atol=1e-6)  # fmt: skip


def test_learning_rate_must_be_positive():
    with pytest.raises(ValueError, match="learning rate must be a finite number above 0"):
        optim.Adam(lr=0)


def test_a_subclass_that_rewrites_apply_is_called_for_each_parameter(backend):
    """The one-call update (torch's _foreach) must not skip a subclass's own apply."""

    class Counted(optim.SGD):
        def apply(self, kernels, params, name, grad, lr):
            self.seen.append(name)
            super().apply(kernels, params, name, grad, lr)

    opt = Counted(lr=0.5)
    opt.seen = []
    params = {"w": backend.asarray(np.ones(3)), "b": backend.asarray(np.ones(2))}
    opt.step(params, {"w": backend.asarray(np.ones(3)), "b": backend.asarray(np.ones(2))})
    assert opt.seen == ["w", "b"]
    np.testing.assert_allclose(nb.to_numpy(params["w"]), 0.5)


class ClippedAdam(optim.Adam):
    """Adam whose moments see the gradient clipped to [-0.01, 0.01]."""

    def moments(self, name, grad):
        xp = nb.backend.namespace_of(grad)
        return super().moments(name, xp.clip(grad, min=-0.01, max=0.01))


class UncorrectedAdam(optim.Adam):
    """Adam without bias correction, said through kernel_rates alone."""

    def kernel_rates(self, lr, t):
        return lr, 1.0


def textbook_adam_with(w, grads, clip=None, corrected=True, b1=0.9, b2=0.999, eps=1e-8):
    m = v = np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        g = g if clip is None else np.clip(g, -clip, clip)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        lr_t, root = (LR / (1 - b1**t), np.sqrt(1 - b2**t)) if corrected else (LR, 1.0)
        w = w - lr_t * m / (np.sqrt(v) / root + eps)
    return w


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize(
    "make, formula",
    [
        (ClippedAdam, lambda w, gs: textbook_adam_with(w, gs, clip=0.01)),
        (UncorrectedAdam, lambda w, gs: textbook_adam_with(w, gs, corrected=False)),
    ],
    ids=["moments", "kernel_rates"],
)
def test_an_adam_subclass_that_rewrites_one_part_runs_it_on_every_path(
    backend64, make, formula, fused
):
    """Rewriting ``moments`` (the fused kernels make their own: those are skipped) or
    ``kernel_rates`` alone (``update`` reads it too) means the same on every backend,
    fused kernels on or off, and through ``fit``'s flat step."""
    grads = [10 * g for g in host_grads()]
    with nb.backend.fused(fused):
        params = run(make(LR), backend64, grads)
    want = formula(host_start(), grads)
    np.testing.assert_allclose(backend64.to_numpy(params["w"]), want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("make", [ClippedAdam, UncorrectedAdam], ids=["moments", "kernel_rates"])
def test_an_adam_subclass_that_rewrites_one_part_is_the_same_in_a_flat_fit(backend64, make):
    """Said element-wise, the subclass's flat step (one buffer, fused kernels on) ends
    where its reference, weight by weight with fused kernels off, does."""

    class Flat(make):
        elementwise = True

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(32, 4)), rng.integers(0, 3, 32)
    weights = []
    for fused in (True, False):
        model = nb.Sequential([nb.layers.Dense(4, 5), "tanh", nb.layers.Dense(5, 3)],
                              backend=backend64, seed=1)  # fmt: skip
        with nb.backend.fused(fused):
            model.fit(X, y, loss="cross_entropy", optimizer=Flat(LR), batch_size=8, verbose=0)
            weights.append({k: backend64.to_numpy(v).copy() for k, v in model.params.items()})
    for k in weights[0]:
        np.testing.assert_allclose(weights[0][k], weights[1][k], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "make, text",
    [
        (lambda: optim.ExponentialDecay(0.1, 2.0), r"decay_rate \(a decay\) must be a finite"
                                                    r" number in \(0, 1\], got 2.0"),
        (lambda: optim.StepDecay(0.1, 1, gamma=2.0), r"gamma \(a decay\) must be a finite "
                                                      r"number in \(0, 1\], got 2.0"),
    ],
)  # fmt: skip
def test_a_decay_that_would_grow_is_refused(make, text):
    """A rate above 1 grew the learning rate until it overflowed (2.0 ** 2000)."""
    with pytest.raises(ValueError, match=text):
        make()
    assert optim.ExponentialDecay(0.1, 1.0)(2000) == 0.1
    assert optim.ExponentialDecay(0.1, 0.5)(10**6) == 0.0  # run out: no step, no error


@pytest.mark.parametrize("lr", [-0.5, float("nan"), float("inf")])
def test_a_learning_rate_function_is_checked_at_each_step(backend, lr):
    """A function's rate is taken as it comes, 0 included (a decay run out), but one
    below 0 (which climbed the loss in silence), NaN or inf stops the step."""
    rates = [0.5, 0.0, lr]
    opt = optim.SGD(lambda t: rates[t])
    params = {"w": backend.asarray(np.ones(2))}
    for _ in range(2):
        opt.step(params, {"w": backend.asarray(np.ones(2))})
    np.testing.assert_array_equal(nb.to_numpy(params["w"]), 0.5)
    with pytest.raises(ValueError, match=r"gave .* at step 2: a learning rate must be a finite "
                                         r"number, at least 0"):  # fmt: skip
        opt.step(params, {"w": backend.asarray(np.ones(2))})
    assert opt.iterations == 2
    np.testing.assert_array_equal(nb.to_numpy(params["w"]), 0.5)


class DecoupledAdam(nb.optim.Adam):
    """AdamW's decay written into ``update`` alone, as the extending guide shows."""

    def update(self, params, name, grad, lr):
        params[name] -= 0.1 * params[name]
        super().update(params, name, grad, lr)


def test_an_update_of_one_s_own_runs_with_the_fused_kernels_on_or_off(backend):
    """The fused Adam kernel knows nothing of a subclass's update: it must not stand in."""
    results = []
    for on in (True, False):
        with nb.backend.fused(on):
            params = {"w": backend.asarray(np.ones(3))}
            DecoupledAdam(lr=0.01).step(params, {"w": backend.asarray(np.full(3, 0.5))})
        results.append(nb.to_numpy(params["w"]))
    np.testing.assert_allclose(results[0], 0.9 - 0.01, rtol=1e-5)  # decayed, then Adam's 0.01
    np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.parametrize("gives", [None, "0.1", [0.1, 0.2]])
def test_a_schedule_that_gives_no_number_is_named_with_its_step(gives):
    """A function giving None or a string failed inside a comparison, naming neither
    the learning rate nor the step."""
    X, y = nb.datasets.make_moons(20, seed=0)
    model = nb.Sequential([nb.layers.Dense(2, 2)], seed=0)
    opt = optim.SGD(lambda step: gives)
    with pytest.raises(ValueError, match=rf"gave {re.escape(repr(gives))} at step 0: a learning"):
        model.fit(X, y, loss="cross_entropy", optimizer=opt, verbose=0)


def test_sgd_hints_momentum_only_where_momentum_takes_it():
    """SGD(momentum=-0.5) was told Momentum(lr=0.1, momentum=-0.5), which refuses it."""
    with pytest.raises(ValueError, match=r"momentum must be a finite number in \[0, 1\], got -0.5"):
        optim.SGD(0.1, momentum=-0.5)
    with pytest.raises(TypeError, match=r"nb.optim.Momentum\(lr=0.1, momentum=0.5\)") as info:
        optim.SGD(0.1, momentum=0.5)
    told = str(info.value).split("with no momentum: ")[1].split(" is SGD")[0]
    assert isinstance(eval(told, {"nb": nb}), optim.Momentum)


@pytest.mark.parametrize("state", [optim.Adam(), {}, {"iterations": 0}])
def test_load_state_dict_of_no_state_dict_says_what_it_takes(state):
    """new.load_state_dict(old) (not old.state_dict()) raised "'Adam' object is not
    subscriptable"; a dict without its keys a bare KeyError."""
    with pytest.raises(ValueError, match=r"takes what another optimizer's state_dict\(\) gives"):
        optim.Adam().load_state_dict(state)


def test_sgd_with_momentum_checks_the_rate_its_hint_passes_on():
    """SGD(lr=-1, momentum=0.9) was told Momentum(lr=-1, momentum=0.9), which refuses it."""
    with pytest.raises(ValueError, match="learning rate must be a finite number above 0"):
        optim.SGD(lr=-1, momentum=0.9)


def test_a_schedule_giving_many_rates_names_the_rate():
    opt = optim.SGD(lr=lambda step: np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="at step 0: a learning rate must be"):
        opt.current_lr()


@pytest.mark.parametrize("gives", [np.float64(0.05), np.float32(0.05), np.asarray(0.05)])
def test_a_schedule_of_numpy_numbers_trains_on_every_backend(backend, gives):
    """0.1 * np.exp(-step / 100) is a NumPy scalar: array-api-strict refused it in the
    update ("Expected Array or Python scalar"), naming no learning rate."""
    X, y = nb.datasets.make_moons(20, seed=0)
    rates = []
    for lr in (lambda step: gives, 0.05):
        model = nb.Sequential([nb.layers.Dense(2, 2)], seed=0, backend=backend)
        model.fit(X, y, loss="cross_entropy", optimizer=optim.SGD(lr), epochs=2, verbose=0)
        rates.append(nb.to_numpy(model.params["0.W"]))
    np.testing.assert_array_equal(rates[0], rates[1])
    assert type(optim.SGD(lambda step: gives).current_lr()) is float


def test_a_schedule_giving_one_rate_in_an_array_is_refused():
    """np.asarray([0.1]) passed the check and broadcast every update into its shape."""
    with pytest.raises(ValueError, match=r"gave array\(\[0.1\]\) at step 0: .* number \(one, "
                       r"not an array of shape \(1,\)\)"):  # fmt: skip
        optim.SGD(lr=lambda step: np.asarray([0.1])).current_lr()


def test_a_negative_numpy_scalar_rate_is_not_called_an_array():
    with pytest.raises(ValueError, match="at least 0") as refused:
        optim.SGD(lr=lambda step: np.float64(-0.1)).current_lr()
    assert "not an array" not in str(refused.value)
