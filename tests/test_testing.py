"""nnbackend.testing catches the classic mistakes, each with a message that names it;
the pytest plugin works in a project of its own; a registered custom layer saves,
loads on another backend and resumes bit for bit."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import nnbackend as nb
from nnbackend import layers as L
from nnbackend import registry
from nnbackend.backend import namespace_of
from nnbackend.testing import (
    CheckFailed,
    HostSyncError,
    assert_backend_parity,
    check_layer,
    check_loss,
    check_optimizer,
    no_host_sync,
)
from tests.test_io import RowCounter

# --- deliberately wrong layers -------------------------------------------------------


class DoubledTanh(L.Tanh):
    """backward off by a factor of 2."""

    def backward(self, dy, input_grad=True):
        return 2 * super().backward(dy, input_grad)


class TransposedDense(L.Dense):
    """dW = dy.T @ x where x.T @ dy is right: the transposed gradient (square W)."""

    def backward(self, dy, input_grad=True):
        dx = super().backward(dy, input_grad)
        self.grads["W"] = dy.T @ self._x
        return dx


class InPlaceReLU(L.ReLU):
    """The classic from-scratch ReLU.backward: dout[mask] = 0 in the caller's array."""

    def forward(self, x, training=True):
        self._negative = x <= 0
        return namespace_of(x).where(self._negative, 0.0, x)

    def backward(self, dy, input_grad=True):
        dy[self._negative] = 0
        return dy


class Float64Scale(L.Layer):
    """Multiplies by a float64 constant: a float32 model turns float64."""

    def forward(self, x, training=True):
        xp = namespace_of(x)
        self._c = xp.asarray(3.0, dtype=xp.float64, device=x.device)
        return x * self._c

    def backward(self, dy, input_grad=True):
        return dy * self._c


class NumpyTanh(L.Tanh):
    """np.tanh inside a layer: NumPy arrays come out on other backends."""

    def forward(self, x, training=True):
        self._y = np.tanh(x)
        return self._y


class FirstLayerDense(L.Dense):
    """Leaves grads alone when asked for no dx, which fit asks of the first layer."""

    def backward(self, dy, input_grad=True):
        return super().backward(dy) if input_grad else None


class SummingDense(L.Dense):
    """Adds each backward's gradients to the last ones', as torch's .grad does."""

    def backward(self, dy, input_grad=True):
        last = dict(self.grads)
        dx = super().backward(dy, input_grad)
        for key, grad in last.items():
            self.grads[key] = self.grads[key] + grad
        return dx


def failure(make_layer, input_shape) -> str:
    with pytest.raises(CheckFailed) as caught:
        check_layer(make_layer, input_shape)
    return str(caught.value)


def test_a_backward_off_by_a_factor_is_caught():
    message = failure(DoubledTanh, (4, 3))
    assert "gradient" in message
    assert "d/dx: analytic vs numerical relative error 0.33" in message
    assert "the analytic gradient is 2 times the right one" in message


def test_a_transposed_gradient_is_caught():
    message = failure(lambda: TransposedDense(3, 3), (5, 3))
    assert "d/dW" in message and "the analytic gradient is the right one transposed" in message
    message = failure(lambda: TransposedDense(4, 3), (5, 4))  # not square: the shape says it
    assert "grads['W'] has shape (3, 4), not (4, 3) (transposed?)" in message


def test_a_backward_that_skips_or_sums_gradients_is_caught():
    """Both passed every row: one backward, with input_grad=True, gave the right
    gradients. In fit the first trained nothing in its first layer, the second's
    steps grew with every batch."""
    message = failure(lambda: FirstLayerDense(3, 2), (4, 3))
    assert "no grads['W'] with input_grad=False; no grads['b'] with input_grad=False" in message
    assert "each backward sets every grads[key] anew" in message
    message = failure(lambda: SummingDense(3, 2), (4, 3))
    assert "grads['W'] differs with input_grad=True" in message
    report = check_layer(lambda: L.Dense(3, 2), (4, 3), backends=["numpy"])
    assert ("repeat", "numpy") in {(row.check, row.backend) for row in report.rows}


class GammaLeftOut(L.BatchNorm):
    """backward as if gamma were 1, its value as built."""

    def backward(self, dy, input_grad=True):
        dx = super().backward(dy, input_grad)
        gamma = self.backend.xp.reshape(self.params["gamma"], (1, -1))
        return None if dx is None else dx / gamma


def test_a_backward_right_only_at_the_weights_as_built_is_caught():
    """BatchNorm's gamma is built 1: a backward that left it out passed every row."""
    message = failure(lambda: GammaLeftOut(3), (6, 3))
    assert "gradient" in message and "d/dx: analytic vs numerical relative error" in message
    report = check_layer(lambda: L.BatchNorm(3), (6, 3), backends=["numpy", "strict"])
    assert ("gradient", "strict") in {(row.check, row.backend) for row in report.rows}


def test_a_mutated_argument_is_caught():
    message = failure(InPlaceReLU, (6, 4))
    assert "unchanged" in message
    assert "changed its argument dy (by backward); work on a copy" in message


def test_a_float64_constant_in_a_float32_layer_is_caught():
    message = failure(Float64Scale, (4, 3))
    assert "y is float64, not float32" in message
    assert "a float64 constant leaks in" in message
    assert "strict:no_float64" in message  # where float64 does not exist at all
    with pytest.raises(CheckFailed) as caught:
        check_layer(Float64Scale, (4, 3), backends=["strict"], dtype="float32")
    float32 = next(r for r in caught.value.report.failures if r.check == "float32")
    assert float32.detail.startswith("y is float64, not float32")  # as on numpy and torch
    assert "a float64 constant leaks in" in float32.detail


class ScaledByK(L.Layer):
    """y = k x, with the base class's config(), which names the type alone: k is lost."""

    def __init__(self, k: float = 1.0):
        super().__init__()
        self.k = k

    def forward(self, x, training=True):
        return self.k * x

    def backward(self, dy, input_grad=True):
        return self.k * dy


def test_an_argument_that_config_leaves_out_is_caught():
    """Its config round trip agrees with itself, and no weight shows the loss: the
    outputs of the loaded layer do, and the config row names the setting lost."""
    message = failure(lambda: ScaledByK(3.0), (4, 3))
    assert "save/load" in message and "output" in message
    assert "nb.load builds the layer from config() and fills params and state" in message
    assert "from_config(config()) has k: 3.0 -> 1.0: config() leaves out an argument" in message


class BiasByTheMean(L.Dense):
    """db = mean(dy) over the batch where the sum is right: right at a batch of 1."""

    def backward(self, dy, input_grad=True):
        dx = super().backward(dy, input_grad)
        self.grads["b"] = namespace_of(dy).mean(dy, axis=0)
        return dx


def test_a_gradient_right_only_for_one_row_is_caught_at_a_batch_of_1():
    with pytest.raises(CheckFailed, match=r"gradient batch 2 +numpy +FAILED +d/db"):
        check_layer(lambda: BiasByTheMean(3, 2), (1, 3), backends=["numpy"])


class ScaledByNaN(ScaledByK):
    """A NaN in config(): nb.save refuses it, before any load."""

    def __init__(self, k: float = float("nan")):
        super().__init__(k)

    def config(self):
        return {**super().config(), "k": self.k}


def test_the_load_hint_is_for_what_fails_after_a_save():
    message = failure(ScaledByNaN, (4, 3))
    assert "save/load" in message and "sets config['layers'][0]['k'] to nan" in message
    assert "nb.load builds the layer" not in message


def test_the_batch_of_2_gradient_is_checked_in_float64():
    """In float32 its central differences failed a right layer (1.04 times)."""
    assert check_layer(L.GlobalAvgPool2D, (1, 2, 3, 3), dtype="float32", backends=["numpy"]).ok


class KeepsAnArrayAside(L.Layer):
    """A fixed array made in build() and kept as an attribute, which nb.load never makes."""

    def build(self, backend, rng):
        super().build(backend, rng)
        self.P = backend.xp.ones((3,), dtype=backend.dtype, device=backend.device)

    def forward(self, x, training=True):
        return x * self.P

    def backward(self, dy, input_grad=True):
        return dy * self.P


def test_an_array_kept_outside_params_and_state_is_told_where_to_go():
    """save/load raised AttributeError: no attribute 'P', and no more."""
    message = failure(KeepsAnArrayAside, (4, 3))
    assert "raised AttributeError" in message and "keep arrays in params or state" in message


class DropoutInTrainingOnly(L.Layer):
    """A setting used in training alone, left out of config(): no output shows it."""

    def __init__(self, momentum: float = 0.9):
        super().__init__()
        self.momentum = momentum

    def forward(self, x, training=True):
        return x

    def backward(self, dy, input_grad=True):
        return dy


class FocalWithoutGamma(nb.losses.MSE):
    """A loss whose config() leaves out its own argument (nb.load gave gamma=2.0)."""

    def __init__(self, gamma: float = 2.0, reduction: str = "mean", half: bool = False):
        super().__init__(reduction=reduction, half=half)
        self.gamma = gamma


class DecayedSGD(nb.optim.SGD):
    """An optimizer whose _hyper() leaves out weight_decay."""

    def __init__(self, lr=0.1, weight_decay: float = 0.01):
        super().__init__(lr)
        self.weight_decay = weight_decay


def test_a_setting_that_config_leaves_out_is_named_for_each_kind():
    """Settings no output shows (used in training alone, by a loss's or an optimizer's
    step) came back from a checkpoint as their defaults, and no check said so."""
    with pytest.raises(CheckFailed, match=r"has momentum: 0.5 -> 0.9: config\(\)"):
        check_layer(lambda: DropoutInTrainingOnly(0.5), (4, 3), backends=["numpy"])
    with pytest.raises(CheckFailed, match=r"has gamma: 3.0 -> 2.0: config\(\)"):
        check_loss(lambda: FocalWithoutGamma(3.0), (5, 1), np.arange(5.0), backends=["numpy"])
    with pytest.raises(
        CheckFailed, match=r"has weight_decay: 0.1 -> 0.01: config\(\) \(its _hyper"
    ):
        check_optimizer(lambda: DecayedSGD(0.1, 0.1), lambda w, g, s, t: w - 0.1 * g,
                        backends=["numpy"])  # fmt: skip


class WeightedMSE(nb.losses.MSE):
    """A tuple argument that config() leaves out (nb.load gave (1.0, 1.0))."""

    def __init__(self, weights=(1.0, 1.0), reduction: str = "mean", half: bool = False):
        super().__init__(reduction=reduction, half=half)
        self.weights = tuple(weights)


class DenseWithoutInit(L.Dense):
    """An initialiser that config() leaves out (nb.load gave lecun)."""

    def config(self):
        return {k: v for k, v in super().config().items() if k != "init"}


def test_a_tuple_or_an_initialiser_that_config_leaves_out_is_named():
    """Only plain settings (numbers, flags, names) were compared: a tuple or an object
    with a config() of its own came back as its default, and every row passed."""
    with pytest.raises(CheckFailed, match=r"has weights: \(1.0, 5.0\) -> \(1.0, 1.0\)"):
        check_loss(lambda: WeightedMSE((1.0, 5.0)), (5, 2), np.ones((5, 2)), backends=["numpy"])
    with pytest.raises(CheckFailed, match=r"has init: Normal\(std=0.3\) -> LeCun\(\)"):
        check_layer(lambda: DenseWithoutInit(3, 2, init=nb.init.Normal(0.3)), (4, 3),
                    backends=["numpy"])  # fmt: skip


@pytest.mark.filterwarnings("ignore:__array_wrap__:DeprecationWarning")
def test_a_numpy_call_that_breaks_on_strict_is_caught():
    message = failure(NumpyTanh, (4, 3))
    strict_row = next(line for line in message.splitlines() if line.startswith("runs     strict "))
    assert (
        "FAILED  raised TypeError: Expected Array or Python scalar; got <class 'numpy.nd"
        in strict_row
    )
    assert (
        "call only the Array API standard, through xp = namespace_of(x), never numpy" in strict_row
    )
    assert "strict:device1" in message
    assert " numpy " not in message  # on NumPy itself it works


def test_a_passing_layer_gives_a_table_of_every_check():
    report = check_layer(lambda: L.Dense(3, 2), (4, 3), backends=["numpy", "strict"])
    assert report.ok
    checks = {(row.check, row.backend) for row in report.rows}
    assert {("gradient", "numpy"), ("gradient", "strict"), ("parity", "strict")} <= checks
    assert {("save/load", "numpy -> strict"), ("float32", "strict:no_float64")} <= checks
    assert {("arrays", "strict:device1"), ("eval gradient", "numpy"), ("config", "-")} <= checks
    assert "save/load       numpy -> strict    ok" in str(report)


# --- losses and optimizers ------------------------------------------------------------


class HalfGradientMSE(nb.losses.MSE):
    def backward(self):
        return 0.5 * super().backward()


def test_check_loss_passes_a_right_loss_and_catches_a_wrong_gradient():
    labels = np.array([0, 2, 1, 1, 0])
    report = check_loss(nb.losses.SoftmaxCrossEntropy, (5, 3), labels, backends=["numpy", "strict"])
    assert report.ok and ("gradient", "strict") in {(r.check, r.backend) for r in report.rows}
    with pytest.raises(CheckFailed, match="the analytic gradient is 0.5 times the right one"):
        check_loss(HalfGradientMSE, (5, 1), np.arange(5.0), backends=["numpy"])


class AlwaysMeanGradient(nb.losses.MSE):
    """backward divides by the batch whatever ``reduction`` says."""

    def backward(self):
        grad = super().backward()
        return grad / grad.shape[0] if self.reduction == "sum" else grad


class AlwaysMeanValue(nb.losses.MSE):
    """forward averages whatever ``reduction`` says (its gradient follows it)."""

    def forward(self, pred, target):
        value = super().forward(pred, target)
        return value / pred.shape[0] if self.reduction == "sum" else value


def test_a_loss_that_does_not_read_its_reduction_is_caught():
    """With the default reduction every row passed; the other one was never run."""
    labels = np.arange(5.0)
    with pytest.raises(
        CheckFailed, match=r"reduction +numpy +FAILED +d/dpred.*0.2 times the right one"
    ):
        check_loss(AlwaysMeanGradient, (5, 1), labels, backends=["numpy"])
    with pytest.raises(CheckFailed, match=r"reduction +numpy +FAILED +.*with either reduction"):
        check_loss(AlwaysMeanValue, (5, 1), labels, backends=["numpy"])


class Float64GradientMSE(nb.losses.MSE):
    """Its gradient scaled by a float64 array: a float32 model's gradient turns float64."""

    def backward(self):
        grad = super().backward()
        return grad * namespace_of(grad).asarray(1.0, dtype=namespace_of(grad).float64)


def test_a_float64_constant_in_a_loss_is_named_as_in_a_layer():
    with pytest.raises(CheckFailed, match=r"float32 +numpy +FAILED .*a float64 constant leaks in"):
        check_loss(Float64GradientMSE, (5, 1), np.arange(5.0), backends=["numpy"])


class IntegerGradientMSE(nb.losses.MSE):
    """Its gradient rounded to integers: an int64 array where floats belong."""

    def backward(self):
        grad = super().backward()
        xp = namespace_of(grad)
        return xp.astype(xp.round(100 * grad), xp.int64)


class NoSumGradientMSE(nb.losses.MSE):
    """backward gives None with reduction="sum", the row that checks the other one."""

    def backward(self):
        return None if self.reduction == "sum" else super().backward()


def test_an_integer_or_missing_loss_gradient_is_named(backend):
    """An int64 gradient passed the arrays row (only float dtypes were compared) and a
    None from the other reduction failed that row as AttributeError: 'shape'."""
    labels = np.arange(5.0)
    with pytest.raises(CheckFailed) as caught:
        check_loss(IntegerGradientMSE, (5, 1), labels, backends=[backend.name])
    rows = {(r.check, r.backend): r.detail for r in caught.value.report.failures}
    assert rows[("arrays", backend.name)] == "backward() is int64, not float64"
    assert rows[("float32", backend.name)] == "backward() is int64, not float32"
    with pytest.raises(CheckFailed) as caught:
        check_loss(NoSumGradientMSE, (5, 1), labels, backends=[backend.name])
    [row] = caught.value.report.failures
    assert (row.check, row.backend) == ("reduction", backend.name)
    assert row.detail.startswith("backward() is a builtins.NoneType, not an array of ")


class IntegerGradientTanh(L.Tanh):
    """dx rounded to integers: a gradient no float model can step with."""

    def backward(self, dy, input_grad=True):
        dx = super().backward(dy, input_grad)
        xp = namespace_of(dx)
        return xp.astype(xp.round(100 * dx), xp.int64)


class FloatRowCounter(RowCounter):
    """Counts in floats what its integer_state says are integers: nb.load refuses it."""

    def build(self, backend, rng):
        super().build(backend, rng)
        self.state["rows"] = backend.xp.zeros((), dtype=backend.dtype, device=backend.device)


class UndeclaredRowCounter(RowCounter):
    """Counts in integers without naming them in integer_state: nb.load refuses it."""

    integer_state = frozenset()


class PlainIntRowCounter(RowCounter):
    """Counts in a Python int: no array at all."""

    def build(self, backend, rng):
        super().build(backend, rng)
        self.state["rows"] = 0


class HostRowCounter(RowCounter):
    """Counts on the host whatever the backend (a NumPy scalar after one forward)."""

    def build(self, backend, rng):
        super().build(backend, rng)
        self.state["rows"] = np.zeros((), dtype=np.int64)


def test_a_layer_s_integer_arrays_are_checked_against_integer_state(backend):
    """Integer arrays passed every arrays row: dx, and counts in state whether or not
    integer_state named them (a save's load then failed); a count that is no array of
    the backend is named as such, not a crash of the checker."""
    check_layer(RowCounter, (3, 4), backends=[backend.name])  # passes: its count is declared
    wanted = {
        IntegerGradientTanh: "dx is int64, not float64",
        FloatRowCounter: "state['rows'] is float64, not integers, as integer_state says",
        UndeclaredRowCounter: "state['rows'] is int64, not float64 (a count is kept as "
        "integers where integer_state names 'rows')",
        PlainIntRowCounter: f"state['rows'] is a builtins.int, not an array of {backend.name}",
        HostRowCounter: "state['rows'] is a numpy.int64, not an array of strict",
    }
    if backend.name != "strict":  # a NumPy array is one of numpy's and torch's
        del wanted[HostRowCounter]
    for make_layer, detail in wanted.items():
        with pytest.raises(CheckFailed) as caught:
            check_layer(make_layer, (3, 4), backends=[backend.name])
        rows = {(r.check, r.backend): r.detail for r in caught.value.report.failures}
        assert rows[("arrays", backend.name)] == detail


def adam_reference(w, g, state, t, lr=0.01, b1=0.9, b2=0.999, eps=1e-8):
    state["m"] = b1 * state.get("m", 0.0) + (1 - b1) * g
    state["v"] = b2 * state.get("v", 0.0) + (1 - b2) * g * g
    m_hat, v_hat = state["m"] / (1 - b1**t), state["v"] / (1 - b2**t)
    return w - lr * m_hat / (np.sqrt(v_hat) + eps)


def test_check_optimizer_holds_adam_to_its_formula():
    report = check_optimizer(lambda: nb.optim.Adam(0.01), adam_reference)
    moved = [r for r in report.rows if r.check == "moves"]
    assert moved and all(r.detail == "4 state arrays" for r in moved)


def test_check_optimizer_catches_a_step_that_is_not_the_formula():
    def without_bias_correction(w, g, state, t, lr=0.01, b1=0.9, b2=0.999, eps=1e-8):
        state["m"] = b1 * state.get("m", 0.0) + (1 - b1) * g
        state["v"] = b2 * state.get("v", 0.0) + (1 - b2) * g * g
        return w - lr * state["m"] / (np.sqrt(state["v"]) + eps)

    with pytest.raises(CheckFailed, match=r"formula +numpy step 1 +FAILED +0.W: differs by"):
        check_optimizer(lambda: nb.optim.Adam(0.01), without_bias_correction, backends=["numpy"])


def test_a_wrong_formula_is_not_blamed_on_the_elementwise_flag():
    """SGD is elementwise; checked against another formula, the flat rows fail too, and
    they told the user to unset the flag, the wrong fix."""
    with pytest.raises(CheckFailed) as caught:
        check_optimizer(lambda: nb.optim.SGD(0.1), lambda w, g, s, t: w + 0.1 * g,
                        backends=["numpy"])  # fmt: skip
    message = str(caught.value)
    assert "formula" in message and "flat" in message and "not elementwise" not in message


class VelocityOutsideSlots(nb.optim.Optimizer):
    """Momentum kept in a dict of its own: model.to and a checkpoint leave it behind."""

    def __init__(self, lr=0.1, momentum=0.9):
        super().__init__(lr)
        self.momentum, self._v = float(momentum), {}

    def update(self, params, name, grad, lr):
        v = self._v.get(name, 0 * grad)
        self._v[name] = self.momentum * v - lr * grad
        params[name] = params[name] + self._v[name]

    def _hyper(self):
        return {"momentum": self.momentum}


def momentum_reference(w, g, state, t, lr=0.1, mu=0.9):
    state["v"] = mu * state.get("v", 0.0) - lr * g
    return w + state["v"]


def test_state_kept_outside_the_slots_is_told_where_to_go():
    """The save/load row said only "differs by 3e+14 ulps", and on another backend
    the moves row was a bare TypeError."""
    for backends, row in ((["numpy", "strict"], "moves"), (["numpy"], "save/load: next step")):
        with pytest.raises(CheckFailed) as caught:
            check_optimizer(VelocityOutsideSlots, momentum_reference, backends=backends)
        message = str(caught.value)
        assert "formula" not in message  # the steps are right: only the state goes astray
        assert re.search(rf"{re.escape(row)} .*FAILED .*keep what an update carries", message)


class OwnRateSGD(nb.optim.Optimizer):
    """W -= self.lr * dW: right at a constant rate, deaf to a schedule's."""

    def update(self, params, name, grad, lr):
        params[name] -= self.lr * grad


def test_an_optimizer_that_ignores_the_rate_it_is_given_is_caught():
    with pytest.raises(CheckFailed, match=r"lr +numpy +FAILED +at a rate of 0 the step moved"):
        check_optimizer(lambda: OwnRateSGD(0.1), lambda w, g, s, t: w - 0.1 * g,
                        backends=["numpy"])  # fmt: skip


class NormalizedSGD(nb.optim.Optimizer):
    """W -= lr * dW / |dW|: the norm is of each weight, so not element-wise."""

    elementwise = True  # wrongly: the flat step takes the norm of every weight at once

    def update(self, params, name, grad, lr):
        xp = namespace_of(grad)
        params[name] -= lr * grad / xp.sqrt(xp.sum(grad * grad))


def normalized_sgd(w, g, state, t, lr=0.1):
    return w - lr * g / np.sqrt(np.sum(g * g))


def test_check_optimizer_runs_the_flat_step_of_an_elementwise_one():
    """Weight by weight the formula held; fit's one update of every weight did not."""
    with pytest.raises(CheckFailed) as caught:
        check_optimizer(lambda: NormalizedSGD(0.1), normalized_sgd, backends=["numpy", "strict"])
    message = str(caught.value)
    assert "flat   numpy step 1  FAILED  0.W: differs by" in message
    assert "(a norm, a mean) is not elementwise: leave it unset" in message
    assert "strict" not in message  # no views: weight by weight there, as in fit
    NormalizedSGD.elementwise = False
    try:
        check_optimizer(lambda: NormalizedSGD(0.1), normalized_sgd, backends=["numpy", "strict"])
    finally:
        NormalizedSGD.elementwise = True
    report = check_optimizer(lambda: nb.optim.Adam(0.01), adam_reference, backends=["numpy"])
    assert [r.backend for r in report.rows if r.check == "flat"] == [
        "numpy step 1",
        "numpy step 2",
        "numpy step 3",
    ]


class HalvedSGD(nb.optim.Optimizer):
    """W -= lr * dW * 0.5, its 0.5 made with no device: on the default one."""

    def update(self, params, name, grad, lr):
        params[name] -= lr * grad * namespace_of(grad).asarray(0.5, dtype=grad.dtype)


def test_check_optimizer_keeps_every_array_on_strict_s_devices():
    """It passed on the default device, then failed in a fit on any other."""

    def halved(w, g, state, t):
        return w - 0.05 * g

    with pytest.raises(CheckFailed) as caught:
        check_optimizer(lambda: HalvedSGD(0.1), halved, backends=["numpy", "strict"])
    message = str(caught.value)
    places = ["formula  strict:device1", "formula  strict:device2", "float32  strict:no_float64"]
    assert all(place in message for place in places)
    assert "Arrays from two different devices" in message and "device=x.device" in message
    assert "strict step 1" not in message  # the default device takes it


# --- parity and host syncs --------------------------------------------------------------


def test_backend_parity_compares_every_backend_with_the_first():
    X = np.random.default_rng(0).normal(size=(4, 3))
    results = assert_backend_parity(lambda x: nb.functional.softmax(x), X)
    assert set(results) >= {"numpy", "strict"}
    np.testing.assert_allclose(results["strict"], results["numpy"], rtol=1e-15)

    def differs_on_strict(x):
        return x * (2.0 if isinstance(x, np.ndarray) else 2.001)

    with pytest.raises(CheckFailed, match=r"parity +strict +FAILED +result: differs by"):
        assert_backend_parity(differs_on_strict, X, backends=["numpy", "strict"])


def test_no_host_sync_passes_a_train_step_and_fails_a_transfer(backend):
    model = nb.Sequential([L.Dense(3, 4), L.Tanh(), L.Dense(4, 2)], backend=backend, seed=0)
    xb = backend.asarray(np.ones((5, 3)))
    yb = backend.asarray(np.array([0, 1, 0, 1, 1]), dtype="int64")
    loss, optimizer = nb.losses.SoftmaxCrossEntropy(), nb.optim.Adam(0.01)
    with no_host_sync() as transfers:
        value, _ = model.train_step(xb, yb, loss, optimizer)
    assert transfers.count == 0
    with pytest.raises(HostSyncError, match="1 device-to-host transfer"), no_host_sync():
        backend.to_float(value)


# --- a registered custom layer, saved and resumed ------------------------------------


class Scale(L.Layer):
    """y = x * s, one weight per feature: a user's layer with parameters."""

    def __init__(self, n: int):
        super().__init__()
        self.n = n

    def build(self, backend, rng):
        super().build(backend, rng)
        self.params = {"s": backend.asarray(np.linspace(0.5, 1.5, self.n))}

    def param_shapes(self):
        return {"s": (self.n,)}

    def forward(self, x, training=True):
        self._x = x
        return x * self.params["s"]

    def backward(self, dy, input_grad=True):
        self.grads["s"] = namespace_of(dy).sum(dy * self._x, axis=0)
        return dy * self.params["s"]

    def config(self):
        return {"type": "Scale", "n": self.n}


def test_a_registered_custom_layer_saves_loads_elsewhere_and_resumes_bit_for_bit(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(registry.LAYERS, "_classes", dict(registry.LAYERS._classes))
    nb.register(Scale)
    check_layer(lambda: Scale(3), (4, 3))
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(32, 2)), rng.integers(0, 2, 32)

    def net(seed=0):
        return nb.Sequential([L.Dense(2, 3), Scale(3), L.Tanh(), L.Dense(3, 2)], seed=seed)

    fit = dict(loss="cross_entropy", batch_size=8, verbose=0)
    straight = net()
    straight.fit(X, y, optimizer=nb.optim.Adam(0.01), epochs=4, **fit)
    path = tmp_path / "scale.h5"
    net().fit(X, y, optimizer=nb.optim.Adam(0.01), epochs=2, checkpoint=path, **fit)
    on_strict = nb.load(path, "strict")
    assert isinstance(on_strict.layers[1], Scale)
    resumed = net(seed=7)
    history = resumed.fit(
        X, y, optimizer=nb.optim.Adam(0.01), epochs=4, checkpoint=path, resume=True, **fit
    )
    assert history.epochs == [2, 3]
    for name, value in straight.params.items():
        assert nb.to_numpy(resumed.params[name]).tobytes() == nb.to_numpy(value).tobytes()
    saved = nb.load(tmp_path / "scale.h5")  # epoch 4 now
    for name, value in saved.params.items():
        got = nb.to_numpy(nb.load(path, "strict").params[name])
        assert got.tobytes() == nb.to_numpy(value).tobytes()


# --- the plugin in a project of its own -----------------------------------------------


def test_the_plugin_gives_a_strange_project_the_backend_fixture(tmp_path):
    (tmp_path / "test_mine.py").write_text(
        textwrap.dedent(
            """
            import pytest

            def test_doubles(backend):
                x = backend.asarray([1.0, 2.0])
                assert backend.to_numpy(x * 2).tolist() == [2.0, 4.0]
                assert backend.dtype_name == "float32"

            def test_in_float64(backend64):
                assert backend64.dtype_name == "float64"

            @pytest.mark.gpu
            def test_marked():
                pass
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-rs", "--strict-markers", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    for name in ("numpy", "strict"):
        assert f"test_doubles[{name}] PASSED" in out
        assert f"test_in_float64[{name}] PASSED" in out
    assert "test_doubles[cupy] SKIPPED" in out or "test_doubles[cupy] PASSED" in out


class ForgetfulScale(L.Layer):
    """y = 2x; its backward lets go of the input it kept, as a layer may to save memory."""

    def forward(self, x, training=True):
        self._x = x
        return 2 * x

    def backward(self, dy, input_grad=True):
        x, self._x = self._x, None
        return 2 * dy + 0 * x  # reads what forward kept


def test_a_layer_that_lets_go_of_its_input_in_backward_passes():
    """The repeat row ran backward three times after one forward: it failed such a layer."""
    assert check_layer(ForgetfulScale, (4, 3), backends=["numpy", "strict"]).ok


def test_check_optimizer_draws_with_its_seed():
    """The formula's steps took the seed, the optimizer's weights and gradients seed 0."""
    for seed in (0, 1):
        check_optimizer(lambda: nb.optim.SGD(0.1), lambda w, g, s, t: w - 0.1 * g,
                        backends=["numpy", "strict"], seed=seed)  # fmt: skip


# --- dtype="float32": a float32 project's checks ----------------------------------------


@pytest.mark.parametrize(
    ("make_layer", "shape"),
    [(L.Tanh, (5, 3)), (lambda: L.BatchNorm(4), (5, 4)), (lambda: L.Conv2D(2, 3, 3), (2, 2, 5, 5))],
)
def test_built_in_layers_pass_check_layer_in_float32(make_layer, shape):
    """The gradient row took float32 central differences (h = 1e-5): a right Tanh was
    2.6e-2 off, BatchNorm 4e-2, past the 2e-2 allowed. It runs in float64 now."""
    report = check_layer(make_layer, shape, backends=["numpy", "strict"], dtype="float32")
    assert {r.backend for r in report.rows if r.check == "gradient"} == {"numpy", "strict"}


def test_a_float32_check_layer_still_catches_a_wrong_factor():
    with pytest.raises(CheckFailed, match="the analytic gradient is 2 times the right one"):
        check_layer(DoubledTanh, (4, 3), backends=["numpy"], dtype="float32")


def test_check_loss_passes_softmax_cross_entropy_in_float32_and_catches_a_half_gradient():
    labels = np.array([0, 2, 1, 1, 0, 2])
    check_loss(nb.losses.SoftmaxCrossEntropy, (6, 3), labels, backends=["numpy"], dtype="float32")
    with pytest.raises(CheckFailed, match="the analytic gradient is 0.5 times the right one"):
        check_loss(HalfGradientMSE, (5, 1), np.arange(5.0), backends=["numpy"], dtype="float32")


@pytest.mark.parametrize("backends", [["numpy"], ["strict"], ["torch"]])
def test_check_optimizer_in_float32_holds_sgd_and_adam_to_their_formulas(backends):
    """The flat row compared float32 weights with the float64 formula's and blamed the
    elementwise flag, for the built-in SGD itself."""
    if backends == ["torch"]:
        pytest.importorskip("torch")
    check_optimizer(lambda: nb.optim.SGD(0.1), lambda w, g, s, t: w - 0.1 * g,
                    backends=backends, dtype="float32")  # fmt: skip
    check_optimizer(lambda: nb.optim.Adam(0.01), adam_reference, backends=backends, dtype="float32")


def test_nb_testing_loads_on_first_use():
    """``nb.testing.check_layer``, as the docs and an error message write it, after a
    plain ``import nnbackend as nb`` (it was an AttributeError)."""
    code = (
        "import sys, nnbackend as nb; print('nnbackend.testing' in sys.modules); "
        "print(nb.testing.check_layer is nb.testing.layers.check_layer)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]


class Typo(nb.layers.Layer):
    def forward(self, x, training=True):
        return x * self.scale  # no such attribute

    def backward(self, dy, input_grad=True):
        return dy


def test_an_error_on_numpy_is_not_blamed_on_numpy():
    """Every error was told to call the standard, never numpy, on numpy itself too."""
    with pytest.raises(AssertionError) as told:
        nb.testing.check_layer(Typo, (2, 3), backends=["numpy", "strict"])
    rows = [line.split() for line in str(told.value).splitlines() if "'scale'" in line]
    on_numpy = [" ".join(row) for row in rows if row[0] == "runs" and row[1] == "numpy"]
    on_strict = [" ".join(row) for row in rows if row[0] == "runs" and row[1] == "strict"]
    assert on_numpy and not any("never numpy" in row for row in on_numpy)
    assert on_strict and all("never numpy" in row for row in on_strict)


class Mutating(nb.losses.MSE):
    def forward(self, pred, target):
        pred -= 1.0
        return super().forward(pred, target)


def test_check_loss_and_parity_leave_the_callers_arrays_alone():
    """On numpy, the backend's array was the caller's own: a loss that changes its
    argument changed the caller's pred, and the next backend's run saw it changed (a
    parity failure of 1e17 ulps that was not one)."""
    pred = np.linspace(-1, 1, 6).reshape(6, 1)
    before = pred.copy()
    with pytest.raises(AssertionError) as told:
        nb.testing.check_loss(Mutating, pred, np.zeros(6), backends=["numpy", "strict"])
    np.testing.assert_array_equal(pred, before)
    assert "parity" not in str(told.value)

    def doubled(x):
        x *= 2
        return x

    X = np.ones((2, 2))
    results = nb.testing.assert_backend_parity(doubled, X, backends=["numpy", "strict"])
    np.testing.assert_array_equal(X, np.ones((2, 2)))
    np.testing.assert_array_equal(results["strict"], 2 * np.ones((2, 2)))


def test_a_small_constant_weight_moves_by_a_tenth_of_itself():
    """A scale built 0.01 (under a sqrt) was moved by 0.1: negative, and a correct layer
    failed five rows."""
    from nnbackend.backend import Generator, get_backend
    from nnbackend.gradcheck import unconstant

    backend = get_backend("numpy", dtype="float64")
    layer = L.Dense(3, 50)
    layer.build(backend, Generator(0))
    layer.params["b"] = backend.xp.full((50,), 0.01)
    unconstant(layer, backend, Generator(4))
    b = nb.to_numpy(layer.params["b"])
    assert (b > 0).all() and 0 < np.abs(b - 0.01).max() < 0.01
    layer.params["b"] = backend.xp.zeros((50,))
    unconstant(layer, backend, Generator(4))
    assert np.unique(nb.to_numpy(layer.params["b"])).size == 50  # a zero moves too
