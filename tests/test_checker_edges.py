"""Edges of nnbackend.testing's check_layer and of nnbackend.gradcheck that a mutation
run of testing/layers.py and gradcheck.py found no test holding: each test fails
under a mutant the rest of the suite let pass (the comments name them)."""

from __future__ import annotations

import re

import array_api_strict
import numpy as np
import pytest

import nnbackend as nb
from nnbackend import gradcheck
from nnbackend import layers as L
from nnbackend.backend import namespace_of
from nnbackend.gradcheck import check_gradients, check_loss, numerical_gradient, relative_error
from nnbackend.layers import Dense, Flatten, Sigmoid, Tanh
from nnbackend.testing import CheckFailed, check_layer
from nnbackend.testing.layers import gradient_problems


def host(a) -> np.ndarray:
    return nb.to_numpy(a)


# --- nnbackend.gradcheck ----------------------------------------------------------------

X, Y = nb.datasets.make_moons(6, seed=0)


def net(backend):
    return nb.Sequential([Dense(2, 4), Tanh(), Dense(4, 1), Sigmoid()], backend=backend, seed=3)


class DoubledWeightGradient(Dense):
    """dW twice the right one; dx and db right."""

    def backward(self, dy, input_grad=True):
        dx = super().backward(dy, input_grad)
        self.grads["W"] = 2 * self.grads["W"]
        return dx


def test_numerical_gradient_calls_progress_once_per_element(backend64):
    """d/dx sum(x**3) = 3 x**2, and ``progress`` ticks once for each of the 6 elements."""
    # kills gradcheck 20 (the progress call dropped)
    x = backend64.asarray(np.array([[1.0, -2.0, 0.5], [3.0, 0.0, -1.0]]))
    ticks = []
    grad = numerical_gradient(lambda v: backend64.xp.sum(v**3), x, progress=lambda: ticks.append(1))
    assert len(ticks) == 6
    np.testing.assert_allclose(host(grad), 3 * host(x) ** 2, rtol=1e-9, atol=1e-9)


def test_numerical_gradient_refuses_integers_and_warns_on_float32(backend64):
    """x = [1, 2, 3] as integers gave [49999, 150000, 249999] for d/dx sum(x**2) (x + h
    rounded back to x); float32 gave 0.1 % off in silence."""
    xp = backend64.xp
    ints = xp.asarray([1, 2, 3])
    with pytest.raises(TypeError, match=r"give float64 values \(.*float64\)\)$"):
        numerical_gradient(lambda v: xp.sum(v**2), ints)
    grad = numerical_gradient(lambda v: xp.sum(v**2), xp.astype(ints, xp.float64))
    np.testing.assert_allclose(host(grad), [2.0, 4.0, 6.0], rtol=1e-9)
    with pytest.warns(UserWarning, match="gradient check in float32"):
        numerical_gradient(lambda v: xp.sum(v**2), xp.astype(ints, xp.float32))


def test_numerical_gradient_refuses_a_dtype_outside_the_standard_with_its_hint():
    """float16 met "is not a dtype of the Array API standard", not what to give."""
    with pytest.raises(TypeError, match=r"which float16 cannot hold: give float64"):
        numerical_gradient(lambda v: float((v * v).sum()), np.array([1.0, 2.0], np.float16))


def test_relative_error_is_a_python_float_on_every_backend(backend64):
    """(3, 4) against (0, 0): |a - n| / (|a| + |n|) = 5 / 5 = 1; against (6, 8):
    5 / (5 + 10) = 1/3. A float, not a 0-d array of the backend (a format spec or a
    comparison with a float must take it on array-api-strict and torch too)."""
    # kills gradcheck 119 (_scalar gave arrays back as they were)
    a = backend64.asarray(np.array([3.0, 4.0]))
    for n, want in (([0.0, 0.0], 1.0), ([6.0, 8.0], 1 / 3)):
        error = relative_error(a, backend64.asarray(np.array(n)))
        assert isinstance(error, float) and error == pytest.approx(want, rel=1e-12)


def test_check_layer_checks_every_parameter_of_a_built_layer(backend64):
    """A Dense layer's W and b are checked beside x; a dW twice the right one has a
    relative error of |2a - a| / (|2a| + |a|) = 1/3, its right dx and db stay near 0."""
    # kills gradcheck 86 (grads never taken: NameError) and 87 (no parameter checked)
    x = backend64.asarray(np.random.default_rng(0).standard_normal((4, 3)))
    right = Dense(3, 2)
    right.build(backend64, nb.Generator(0))
    errors = gradcheck.check_layer(right, x)
    assert set(errors) == {"x", "W", "b"} and max(errors.values()) < 1e-7
    wrong = DoubledWeightGradient(3, 2)
    wrong.build(backend64, nb.Generator(0))
    errors = gradcheck.check_layer(wrong, x)
    assert errors["W"] == pytest.approx(1 / 3, rel=1e-6)
    assert errors["x"] < 1e-7 and errors["b"] < 1e-7


def test_check_gradients_refuses_inputs_fit_would_refuse():
    """An X of 3 features for a model of 2 is refused in fit's words, not run."""
    # kills gradcheck 43 (check_inputs dropped)
    with pytest.raises(ValueError, match=r"takes samples of 2 features, but X has shape \(6, 3\)"):
        check_gradients(net("numpy"), "bce", np.ones((6, 3)), Y)


def test_check_gradients_takes_host_lists():
    """X and y as Python lists are a host batch, as for fit."""
    # kills gradcheck 42 (as_array dropped: a list has no .shape)
    errors = check_gradients(net("numpy"), "bce", X.tolist(), Y.tolist())
    assert set(errors) == {"0.W", "0.b", "2.W", "2.b"} and max(errors.values()) < 1e-7


def test_check_gradients_refuses_outputs_outside_the_loss_range():
    """A model ending in a Dense then Flatten (which keeps the Dense's range) gives any
    real number, which binary cross-entropy cannot take: refused before any check."""
    # kills gradcheck 47 (the check of the outputs dropped)
    model = nb.Sequential([Dense(2, 4), Tanh(), Dense(4, 1), Flatten()], seed=3)
    said = r"takes probabilities in \[0, 1\], but the model ends in Dense\(.*\) then Flatten\(\)"
    with pytest.raises(ValueError, match=said):
        check_gradients(model, "bce", X, Y)


def test_check_gradients_on_a_device_without_float64_warns_and_checks_float32():
    """array-api-strict's no_float64 device cannot hold the float64 copy: the check
    warns and runs in float32 (errors of a few 1e-2), rather than failing to copy."""
    # kills gradcheck 102, 104, 105 (no fallback: the float64 copy raised)
    backend = nb.get_backend("strict:no_float64")
    with pytest.warns(UserWarning, match=r"has no float64: gradient check in float32"):
        errors = check_gradients(net(backend), "bce", X, Y)
    assert set(errors) == {"0.W", "0.b", "2.W", "2.b"} and max(errors.values()) < 0.1


def test_the_float32_warnings_point_at_the_callers_file(backend):
    """Each float32 warning names the file that called the check, not gradcheck.py
    (one frame short) or pytest's (one frame too far)."""
    # kills gradcheck 106, 107, 111, 112, 116, 117 (stacklevel off by one)
    x = backend.asarray(X)
    layer = Tanh()
    layer.build(backend, nb.Generator(0))
    with pytest.warns(UserWarning, match="gradient check in float32") as caught:
        check_gradients(net(backend), "bce", X, Y, dtype=None)
    with pytest.warns(UserWarning, match="gradient check in float32") as caught_too:
        check_gradients(net(nb.get_backend("strict:no_float64")), "bce", X, Y)
    with pytest.warns(UserWarning, match="gradient check in float32") as caught_also:
        gradcheck.check_layer(layer, x)
    with pytest.warns(UserWarning, match="gradient check in float32") as caught_last:
        check_loss(nb.losses.MSE(), x, x * 0)
    for record in (caught, caught_too, caught_also, caught_last):
        assert {w.filename for w in record} == {__file__}


# --- nnbackend.testing.check_layer ------------------------------------------------------


class SlightlyOffTanh(L.Tanh):
    """dx 1 + 3e-6 times the right one: a relative error of 3e-6 / (2 + 3e-6) = 1.5e-6."""

    def backward(self, dy, input_grad=True):
        return (1 + 3e-6) * super().backward(dy, input_grad)


def test_the_gradient_row_holds_float64_to_1e_6():
    """A gradient 1.5e-6 off (relative) fails; central differences themselves are some
    1e-10 off, so the documented 1e-6 is the line, not twice that."""
    # kills testing/layers 1 (the float64 tolerance doubled)
    with pytest.raises(CheckFailed, match=r"gradient +numpy +FAILED +d/dx: .* error 1.5e-06"):
        check_layer(SlightlyOffTanh, (4, 3), backends=["numpy"])


class RunningSum(L.Layer):
    """y = x; state["total"] += sum(x) in training. On array-api-strict the sum is
    taken twice (a backend-specific bug) while the outputs stay right."""

    def state_shapes(self):
        return {"total": ()}

    def build(self, backend, rng):
        super().build(backend, rng)
        self.state["total"] = backend.xp.zeros((), dtype=backend.dtype, device=backend.device)

    def forward(self, x, training=True):
        xp = namespace_of(x)
        if training:
            times = 2 if xp.__name__.startswith("array_api_strict") else 1
            self.state["total"] = self.state["total"] + times * xp.sum(x)
        return x

    def backward(self, dy, input_grad=True):
        return dy


def test_parity_compares_the_state_a_forward_leaves():
    """Outputs and gradients agree on both backends; the running total does not, and
    only the parity row, which compares state too, can see it."""
    # kills testing/layers 59 (the state left out of the results compared)
    with pytest.raises(CheckFailed) as caught:
        check_layer(RunningSum, (4, 3), backends=["numpy", "strict"])
    failed = {(row.check, row.backend) for row in caught.value.report.failures}
    assert failed == {("parity", "strict"), ("parity float32", "strict")}
    assert "state['total']: differs" in str(caught.value)


def test_a_layer_checked_only_where_there_is_no_float64_runs_in_float32():
    """On array-api-strict's no_float64 device the gradient row has no float64 twin to
    turn to: it checks float32 to its own tolerance rather than fail a right layer."""
    # kills testing/layers 84 and 85 (the float64 twin made where float64 is missing)
    # and 2 (the float32 tolerance, which the detail states, doubled)
    report = check_layer(L.Tanh, (4, 3), backends=["strict:no_float64"], dtype="float32")
    row = next(r for r in report.rows if r.check == "gradient")
    assert (row.backend, row.ok, row.detail) == (
        "strict:no_float64",
        True,
        "relative errors below 0.02",
    )


class Float64Count(L.Layer):
    """y = x, and a count of training batches kept as float64 whatever the layer's
    dtype (the count never meets x, so no output shows its dtype)."""

    def state_shapes(self):
        return {"count": ()}

    def build(self, backend, rng):
        super().build(backend, rng)
        xp = backend.xp
        self.state["count"] = xp.zeros((), dtype=xp.float64, device=backend.device)

    def forward(self, x, training=True):
        if training:
            self.state["count"] = self.state["count"] + 1.0
        return x

    def backward(self, dy, input_grad=True):
        return dy


def test_the_arrays_rows_hold_state_to_the_layers_dtype():
    """The float32 row reads every state array, not only y, dx and grads."""
    # kills testing/layers 143 (params and state left out of the arrays checked)
    with pytest.raises(CheckFailed, match=r"float32 +numpy +FAILED +state\['count'\] is float64"):
        check_layer(Float64Count, (4, 3), backends=["numpy"])


class ExtraGrad(L.Dense):
    """A right Dense that also leaves grads["x"], a key with no parameter."""

    def backward(self, dy, input_grad=True):
        dx = super().backward(dy, input_grad)
        self.grads["x"] = dx
        return dx


def test_a_gradient_with_no_parameter_is_named():
    """The optimizer steps params by grads' keys: one too many is named, not a KeyError."""
    # kills testing/layers 145 (a KeyError escaped check_layer) and 146 (it passed)
    with pytest.raises(CheckFailed, match=r"grads has keys \['W', 'b', 'x'\], params \['W', 'b'\]"):
        check_layer(lambda: ExtraGrad(3, 2), (4, 3), backends=["numpy"])


class CountsEveryCall(L.Layer):
    """y = x, counting calls in state, in evaluation too (torch's BatchNorm counts
    training batches only): no output or gradient shows it."""

    def state_shapes(self):
        return {"calls": ()}

    def build(self, backend, rng):
        super().build(backend, rng)
        xp = backend.xp
        self.state["calls"] = xp.zeros((), dtype=backend.dtype, device=backend.device)

    def forward(self, x, training=True):
        self.state["calls"] = self.state["calls"] + 1.0
        return x

    def backward(self, dy, input_grad=True):
        return dy


def test_a_state_that_evaluation_changes_fails_the_eval_row():
    """Only the eval row sees it, and says what happened."""
    # kills testing/layers 240 (the problem not noted), 243 (no eval row), 246 (always
    # ok), 319 and 320 (state compared by its keys alone)
    with pytest.raises(CheckFailed) as caught:
        check_layer(CountsEveryCall, (4, 3), backends=["numpy"])
    assert [(r.check, r.backend, r.detail) for r in caught.value.report.failures] == [
        ("eval", "numpy", "evaluation changed the layer's state")
    ]


class ZerosOffDevice(L.Layer):
    """y = 0 and dx = 0, right, but made without device=: on the default device."""

    def forward(self, x, training=True):
        return namespace_of(x).zeros(x.shape, dtype=x.dtype)

    def backward(self, dy, input_grad=True):
        return namespace_of(dy).zeros(dy.shape, dtype=dy.dtype)


def test_an_array_made_on_the_default_device_is_caught():
    """On array-api-strict's device1, device2 and no_float64, y and dx land on
    CPU_DEVICE; nothing mixes them with the input, so only the device check sees it."""
    # kills testing/layers 257, 258 (the device check dropped)
    with pytest.raises(CheckFailed) as caught:
        check_layer(ZerosOffDevice, (4, 3), backends=["numpy", "strict"])
    failed = {(r.check, r.backend) for r in caught.value.report.failures}
    assert failed == {
        ("arrays", "strict:device1"),
        ("arrays", "strict:device2"),
        ("float32", "strict:no_float64"),
    }
    assert (
        "y is on device array_api_strict.Device('CPU_DEVICE'), "
        "not array_api_strict.Device('device1')"
    ) in str(caught.value)
    row = next(r for r in caught.value.report.failures if r.backend == "strict:no_float64")
    assert "on device" in row.detail and "float64 constant" not in row.detail  # no dtype hint


def test_a_batch_of_one_on_a_device_without_float64_is_checked_in_float32():
    """The batch-of-two gradient row of a (1, n) input stays in float32 where the
    device has no float64 (it raised a backend error out of check_layer)."""
    report = check_layer(L.Tanh, (1, 3), backends=["strict:no_float64"], dtype="float32")
    row = next(r for r in report.rows if r.check == "gradient batch 2")
    assert (row.backend, row.ok) == ("strict:no_float64", True)


def test_a_gradient_a_hair_off_is_not_called_a_multiple_of_the_right_one():
    """A gradient 2 times the right one is named so; one 1 + 3e-6 times it (off by
    more than float64's tolerance, but no factor a mistake would make) is not called
    "1 times the right one"."""
    numerical = np.array([[0.5, -1.0], [2.0, 0.25]])
    doubled = gradient_problems("x", 2 * numerical, numerical, "float64")
    assert doubled[0].endswith("the analytic gradient is 2 times the right one")
    [hair] = gradient_problems("x", (1 + 3e-6) * numerical, numerical, "float64")
    assert hair == "d/dx: analytic vs numerical relative error 1.5e-06"


class FailsOnNumPy(L.Tanh):
    """Raises on NumPy, the first backend, and works elsewhere."""

    def forward(self, x, training=True):
        if isinstance(x, np.ndarray):
            raise RuntimeError("no NumPy here")
        return super().forward(x, training)


def test_a_layer_that_fails_on_the_first_backend_gets_a_report():
    """With no reference run there is no parity row, and the table says what failed."""
    # kills testing/layers 189 (parity read the missing reference: AttributeError)
    with pytest.raises(CheckFailed, match=r"runs +numpy +FAILED +raised RuntimeError: no NumPy"):
        check_layer(FailsOnNumPy, (4, 3), backends=["numpy", "strict"])


class HostTanh(L.Tanh):
    """tanh on the host: NumPy arrays come out of a torch layer."""

    def forward(self, x, training=True):
        self._y = np.tanh(nb.to_numpy(x))
        return self._y

    def backward(self, dy, input_grad=True):
        return dy * (1 - self._y**2)


@pytest.mark.filterwarnings("ignore:__array_wrap__:DeprecationWarning")
def test_a_numpy_array_out_of_a_torch_layer_is_named_as_such():
    """Named as a NumPy array, not as one on a "cpu" device other than torch's cpu."""
    # kills testing/layers 254, 255 (the type check dropped)
    pytest.importorskip("torch")
    with pytest.raises(CheckFailed, match=r"arrays +torch +FAILED +y is a numpy.ndarray, not an"):
        check_layer(HostTanh, (4, 3), backends=["numpy", "torch"])


class OffsetWeightGradient(L.Dense):
    """dW one more than the right one in every entry: neither a multiple of the right
    gradient nor its transpose."""

    def backward(self, dy, input_grad=True):
        dx = super().backward(dy, input_grad)
        self.grads["W"] = self.grads["W"] + 1.0
        return dx


def test_a_wrong_gradient_is_blamed_on_no_likely_mistake_when_none_fits():
    """A (4, 3) dW that is simply wrong gets the relative error alone: no "transposed"
    (it is not square), no "times the right one"."""
    # kills testing/layers 305 (any 2-d gradient called transposed); 310, 312 (a
    # non-square one compared with its transpose) and 317 (None for the list): a
    # "raised" row in place of the error
    with pytest.raises(CheckFailed) as caught:
        check_layer(lambda: OffsetWeightGradient(4, 3), (5, 4), backends=["numpy"])
    gradient = next(r for r in caught.value.report.failures if r.check == "gradient")
    assert gradient.detail.startswith("d/dW: analytic vs numerical relative error ")
    assert "times the right one" not in gradient.detail
    assert "transposed" not in gradient.detail and "raised" not in gradient.detail


class CountsStepsAside(L.Layer):
    """y = x in training; in evaluation y = (1 + steps) x, steps a count of training
    forwards kept as an attribute, not in state: a checkpoint loses it."""

    def __init__(self):
        super().__init__()
        self.steps = 0

    def forward(self, x, training=True):
        if training:
            self.steps += 1
            return x
        return (1 + self.steps) * x

    def backward(self, dy, input_grad=True):
        return dy


def test_save_load_compares_a_model_that_has_trained():
    """The saved model has run a training forward (as BatchNorm's running state moves),
    so what it keeps outside params and state shows in its outputs after a load."""
    # kills testing/layers 216, 217 (the forward before the save dropped, or in evaluation)
    with pytest.raises(CheckFailed) as caught:
        check_layer(CountsStepsAside, (4, 3), backends=["numpy"])
    failed = {(r.check, r.backend) for r in caught.value.report.failures}
    assert failed == {("save/load", "numpy -> numpy")}
    assert "output: differs" in str(caught.value)


class Residual(nb.layers.Layer):
    """x + Dense(x), the Dense built in build and kept: its forward never reads params."""

    def __init__(self, units: int = 3, bias: bool = True):
        super().__init__()
        self.units, self.bias, self.inner = units, bias, Dense(units, units, bias=bias)

    def param_shapes(self):
        return {"W": (self.units, self.units), **({"b": (self.units,)} if self.bias else {})}

    def build(self, backend, rng):
        super().build(backend, rng)
        self.inner.build(backend, rng)
        self.params = dict(self.inner.params)

    def forward(self, x, training=True):
        return x + self.inner.forward(x, training)

    def backward(self, dy, input_grad=True):
        dx = self.inner.backward(dy, True)
        self.grads.update(self.inner.grads)
        return dy + dx

    def config(self):
        return {**super().config(), "units": self.units, "bias": self.bias}


def test_check_layer_says_a_forward_that_keeps_its_own_weights_ignores_params():
    """A layer holding a Dense of its own trained in model.params while the output
    stayed the same (fit on NumPy puts new arrays there); check_layer's row said only
    'relative error 1'."""
    said = r"d/db: .*: the output does not change with params\['b'\]: forward computes with"
    with pytest.raises(CheckFailed, match=said):
        check_layer(Residual, (4, 3), backends=["numpy"])


class RoundedMSE(nb.losses.Loss):
    """A loss whose forward rounds its input: no gradient flows, which check_loss says."""

    def forward(self, pred, target):
        xp = namespace_of(pred)
        self._d = pred - target
        return xp.mean((xp.round(pred) - target) ** 2)

    def backward(self):
        return 2 * self._d / self._d.size


def test_check_loss_does_not_tell_a_loss_about_params():
    """The sentence for a layer's weight its forward ignores was said of a loss's pred."""
    from nnbackend.testing import check_loss

    with pytest.raises(CheckFailed) as info:
        check_loss(RoundedMSE, (4, 3), np.zeros((4, 3)), backends=["numpy"])
    assert "relative error" in str(info.value) and "params[" not in str(info.value)


def test_check_layer_names_a_weight_that_forward_reads_from_an_array_of_its_own():
    """Without a bias built at 0 (moved to a new array), every row passed: the central
    differences nudged the very array the inner Dense kept."""
    with pytest.raises(CheckFailed, match=r"does not change with params\['W'\]"):
        check_layer(lambda: Residual(3, bias=False), (5, 3), backends=["numpy"])


def test_check_layer_and_check_loss_refuse_integers_as_numerical_gradient_does(backend64):
    """check_layer nudged an integer x, rounded back: a right Dense's dx was 'wrong' at
    an error of 1.0."""
    layer = Dense(3, 2)
    layer.build(backend64, nb.Generator(0))
    with pytest.raises(TypeError, match=r"check_layer nudges x by h .* int64 cannot hold"):
        gradcheck.check_layer(layer, backend64.asarray(np.array([[1, 2, 3], [0, 1, 2]])))
    with pytest.raises(TypeError, match=r"give float64 values \(.*pred.*float64\)\)$"):
        check_loss(
            nb.losses.MSE(),
            backend64.asarray(np.array([[1, 2]])),
            backend64.asarray(np.ones((1, 2))),
        )


def test_the_dtype_hint_is_code_of_the_arrays_own_library(backend64):
    """The hint said xp.astype(x, xp.float64), xp a name of no user's code."""
    layer = Dense(4, 2)
    layer.build(backend64, nb.Generator(0))
    ints = backend64.asarray(np.arange(12).reshape(3, 4))
    with pytest.raises(TypeError, match=r"give float64 values \((.*)\)$") as told:
        gradcheck.check_layer(layer, ints)
    code = re.search(r"values \((.*)\)$", str(told.value)).group(1)
    scope = {"x": ints, "np": np, "array_api_strict": array_api_strict}
    if "torch" in code:
        scope["torch"] = pytest.importorskip("torch")
    assert gradcheck.check_layer(layer, eval(code, scope))["x"] < 1e-6  # noqa: S307
