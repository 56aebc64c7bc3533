"""check_gradients checks a float64 copy of the model: float32 central differences
cannot tell a bug from rounding, and the model itself must come out untouched."""

from __future__ import annotations

import numpy as np
import pytest

import nnbackend as nb
from nnbackend.gradcheck import check_gradients, check_layer, check_loss
from nnbackend.layers import Dense, Sigmoid, Tanh

X, Y = nb.datasets.make_moons(6, seed=0)


def net(backend):
    return nb.Sequential([Dense(2, 4), Tanh(), Dense(4, 1), Sigmoid()], backend=backend, seed=3)


def test_a_float32_model_is_checked_in_float64_on_a_copy(backend):
    model = net(backend)
    before = {name: nb.to_numpy(value).copy() for name, value in model.params.items()}
    errors = check_gradients(model, "bce", X, Y, l2=0.1)
    assert set(errors) == {"0.W", "0.b", "2.W", "2.b"}
    assert max(errors.values()) < 1e-7  # float64's accuracy, not float32's 1e-2
    assert model.backend.dtype_name == "float32" and len(model.grads) == 0
    for name, value in model.params.items():
        np.testing.assert_array_equal(nb.to_numpy(value), before[name])


def test_checking_in_float32_warns_and_says_how(backend):
    with pytest.warns(UserWarning, match=r"gradient check in float32: .* too coarse"):
        errors = check_gradients(net(backend), "bce", X, Y, dtype=None, h=1e-3)
    assert max(errors.values()) > 1e-6  # what the warning is about
    layer = Tanh()
    with pytest.warns(UserWarning, match=r"with_dtype\('float64'\)"):
        check_layer(layer, backend.asarray(X))
    with pytest.warns(UserWarning, match="gradient check in float32"):
        check_loss(nb.losses.MSE(), backend.asarray(X), backend.asarray(X * 0))


def test_float64_arrays_raise_no_warning(backend64, recwarn):
    check_layer(Tanh(), backend64.asarray(X))
    check_gradients(net(backend64), "bce", X, Y)
    assert not [w for w in recwarn if "float32" in str(w.message)]


def test_a_gradient_that_is_truly_zero_passes(backend):
    # BatchNorm takes the batch mean away, so the bias before it has no gradient: its
    # rounding (1e-17, 1e-12 on torch) over itself read as a relative error of 1.0
    model = nb.Sequential([Dense(2, 4), nb.layers.BatchNorm(4), Tanh(), Dense(4, 2)],
                          backend=backend, seed=0)  # fmt: skip
    errors = check_gradients(model, "cross_entropy", X, Y)
    assert max(errors.values()) < 1e-7, errors


def test_a_wrong_gradient_beside_a_zero_one_still_fails():
    analytic, numerical = np.zeros(3), np.array([0.0, 1e-6, 0.0])
    assert nb.gradcheck.relative_error(analytic, numerical) == pytest.approx(1e-2)
    assert nb.gradcheck.relative_error(analytic + 1e-12, numerical * 0) < 1e-7
    assert nb.gradcheck.relative_error(1e4 * numerical, 2e4 * numerical) == pytest.approx(1 / 3)


def test_check_layer_checks_dropout_with_the_same_masks(backend64):
    layer = nb.layers.Dropout(0.5)
    layer.build(backend64, nb.Generator(0))
    x = backend64.asarray(np.random.default_rng(0).standard_normal((4, 5)))
    assert check_layer(layer, x)["x"] < 1e-9  # it raised: Dropout draws from a generator


def test_check_gradients_checks_a_model_with_dropout(backend):
    # each evaluation draws the masks of the first: without that, every error was 1.0
    layers = [Dense(2, 8), Tanh(), nb.layers.Dropout(0.5), Dense(8, 2)]
    model = nb.Sequential(layers, backend=backend, seed=0)
    assert max(check_gradients(model, "cross_entropy", X, Y).values()) < 1e-7


@pytest.mark.parametrize(
    "labels, outputs, says",
    [
        ([0, 1, 2, 3, 1, 0], 3, r"y holds labels from 0 to 3, but the model has 3 outputs"),
        ([0, 1, 0, 1, 1, 0], 1, r"cross-entropy needs one output per class"),
        ([0, 1, 2], 3, r"y has 3 targets but X has 6 samples"),
    ],
)
def test_targets_fit_would_refuse_are_refused_not_reported_as_a_bug(backend, labels, outputs, says):
    """Labels past the last class gave errors of 0.1-0.3 and one output for
    cross-entropy 1.0: a wrong gradient by the module's own measure, for wrong data."""
    model = nb.Sequential([Dense(2, 4), Tanh(), Dense(4, outputs)], backend=backend, seed=0)
    with pytest.raises(ValueError, match=says):
        check_gradients(model, "cross_entropy", X, np.array(labels))
    with pytest.raises(ValueError, match=r"y holds 1 NaN or inf values"):
        check_gradients(net(backend), "bce", X, np.where(np.arange(6) == 2, np.nan, Y))


class SeenDropout(nb.layers.Dropout):
    """Dropout that notes the mode of every forward (in a list its copies share)."""

    modes: list = []

    def forward(self, x, training=True, rng=None):
        self.modes.append(training)
        return super().forward(x, training=training, rng=rng)


class SeenTanh(Tanh):
    def forward(self, x, training=True):
        SeenDropout.modes.append(training)
        return super().forward(x, training=training)


def test_the_checks_run_the_training_forward_that_backward_differentiates(backend64):
    """Dropout's masks and BatchNorm's batch statistics are in the training forward
    alone: a check in inference mode checked a function no fit differentiates."""
    SeenDropout.modes.clear()
    x = backend64.asarray(np.random.default_rng(0).standard_normal((4, 5)))
    for layer in (SeenDropout(0.5), SeenTanh()):
        layer.build(backend64, nb.Generator(0))
        check_layer(layer, x)
    model = nb.Sequential([Dense(2, 4), SeenDropout(0.5), Dense(4, 2)], backend=backend64)
    check_gradients(model, "cross_entropy", X, Y)
    assert len(SeenDropout.modes) > 40 and set(SeenDropout.modes) == {True}


def test_a_gradient_of_another_shape_is_refused_not_broadcast(backend64):
    """A (1, 3) gradient for a (3,) weight broadcast against the numerical one: the check
    said 1e-11, and fit then refused the same layer."""
    from nnbackend.gradcheck import relative_error

    a, n = backend64.asarray(np.ones((1, 3))), backend64.asarray(np.ones(3))
    with pytest.raises(ValueError, match=r"shape \(1, 3\), but .* has \(3,\)"):
        relative_error(a, n)
    assert relative_error(n, n) == 0.0


class SquaredError:
    """A loss whose backward forgets the (n, 1) shape of its predictions."""

    def forward(self, pred, target):
        self.d = pred - target
        return nb.backend.namespace_of(pred).sum(self.d**2)

    def backward(self):
        return 2 * self.d[:, 0]


def test_check_loss_names_pred_in_a_gradient_of_another_shape(backend64):
    """The message read "the gradient of what it is the gradient of has shape ..."."""
    pred = backend64.asarray(np.ones((4, 1)))
    with pytest.raises(ValueError, match=r"^the gradient of pred has shape \(4,\), but pred has"):
        check_loss(SquaredError(), pred, backend64.asarray(np.zeros((4, 1))))


class Transposed(Dense):
    def backward(self, dy, input_grad=True):
        dx = super().backward(dy, input_grad)
        self.grads["W"] = self.grads["W"].T
        return dx


def test_check_layer_names_the_weight_of_a_gradient_of_another_shape(backend64):
    layer = Transposed(3, 2)
    layer.build(backend64, nb.Generator(0))
    with pytest.raises(ValueError, match=r"^the gradient of W has shape \(2, 3\), but W has"):
        check_layer(layer, backend64.asarray(np.ones((4, 3))))


class RunningCentre(nb.layers.Layer):
    """g * (x - m), where a training forward first moves m, a running mean, towards x's:
    its backward is exact, but each evaluation of a gradient check moved m again."""

    def __init__(self, n: int = 3, momentum: float = 0.9):
        super().__init__()
        self.n, self.momentum = n, float(momentum)

    def param_shapes(self):
        return {"g": (self.n,)}

    def state_shapes(self):
        return {"mean": (self.n,)}

    def build(self, backend, rng):
        super().build(backend, rng)
        xp, where = backend.xp, dict(dtype=backend.dtype, device=backend.device)
        self.params["g"] = xp.full((self.n,), 1.5, **where)
        self.state["mean"] = xp.zeros((self.n,), **where)

    def forward(self, x, training=True):
        xp, self._training = nb.backend.namespace_of(x), training
        if training:
            moved = self.momentum * self.state["mean"] + (1 - self.momentum) * xp.mean(x, axis=0)
            self.state["mean"] = moved
        self._centred = x - self.state["mean"]
        return self.params["g"] * self._centred

    def backward(self, dy, input_grad=True):
        xp = nb.backend.namespace_of(dy)
        self.grads["g"] = xp.sum(dy * self._centred, axis=0)
        if not input_grad:
            return None
        d = dy * self.params["g"]
        return d - (1 - self.momentum) * xp.mean(d, axis=0, keepdims=True) if self._training else d

    def config(self):
        return {**super().config(), "n": self.n, "momentum": self.momentum}


def test_the_gradient_checks_hold_a_running_state_fixed(backend64):
    """A correct layer failed with relative error 1, and check_gradients blamed the Dense
    after it: the running mean drifted into the differences (and into check_layer's
    repeat row, whose forwards moved it further)."""
    from nnbackend.testing import check_layer as check_layer_everywhere

    X = np.random.default_rng(0).normal(size=(5, 3))
    model = nb.Sequential([RunningCentre(3), Dense(3, 1)], backend=backend64, seed=0)
    assert max(check_gradients(model, "mse", X, X[:, 0]).values()) < 1e-6
    layer = RunningCentre(3)
    layer.build(backend64, nb.Generator(0))
    assert max(check_layer(layer, backend64.asarray(X)).values()) < 1e-6
    check_layer_everywhere(lambda: RunningCentre(3), (5, 3), backends=[backend64.name])


class CentredInPlace(nb.layers.Layer):
    """x - m, where a training forward moves m in place: a held state must be a copy."""

    def build(self, backend, rng):
        super().build(backend, rng)
        self.state["m"] = backend.xp.zeros((3,), dtype=backend.dtype)

    def state_shapes(self):
        return {"m": (3,)}

    def forward(self, x, training=True):
        self._training = training
        if training:
            m = self.state["m"]
            m[...] = 0.9 * m + 0.1 * np.mean(x, axis=0)
        return x - self.state["m"]

    def backward(self, dy, input_grad=True):
        return dy - 0.1 * np.mean(dy, axis=0) if self._training else dy


def test_a_state_moved_in_place_is_held_fixed_too():
    backend = nb.get_backend("numpy", dtype="float64")
    layer = CentredInPlace()
    layer.build(backend, nb.Generator(0))
    x = backend.asarray(np.random.default_rng(0).normal(size=(5, 3)))
    assert max(check_layer(layer, x).values()) < 1e-6
