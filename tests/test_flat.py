"""The flat buffer (nnbackend.flat): where the backend has views, a fit keeps every
weight and gradient as a view into one buffer each and updates them in one call. It
must train to the very weights and optimizer state that per-weight updates reach,
keep names, checkpoints and copies as they were, and step aside where it cannot
help (array-api-strict, optimizers that are not element-wise)."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import nnbackend as nb
from nnbackend.backend import fused, namespace_of
from nnbackend.flat import ALIGN, FlatModel
from tests.conftest import HAVE_TORCH

OPTIMIZERS = {
    "sgd": lambda: nb.optim.SGD(lr=0.1),
    "momentum": lambda: nb.optim.Momentum(lr=0.05),
    "nesterov": lambda: nb.optim.Nesterov(lr=0.05),
    "adagrad": lambda: nb.optim.AdaGrad(lr=0.05),
    "rmsprop": lambda: nb.optim.RMSProp(lr=0.01),
    "adam": lambda: nb.optim.Adam(lr=0.01),
}


class RebindingMomentum(nb.optim.Optimizer):
    """Momentum as one first writes it, rebinding names (``W = W + v``), not in place."""

    slots = ("v",)
    elementwise = True

    def update(self, params, name, grad, lr):
        v = self._slot("v", name, grad)
        v[name] = 0.9 * v[name] - lr * grad
        params[name] = params[name] + v[name]


OPTIMIZERS["rebinding"] = lambda: RebindingMomentum(lr=0.05)
X = np.random.default_rng(0).normal(size=(60, 4))
Y = np.arange(60) % 3


def small_net(backend, seed=1):
    """Its third weight would lie at an odd offset unaligned (20 + 35): torch's CPU
    product into such a view rounds otherwise in float64."""
    return nb.Sequential(
        [nb.layers.Dense(4, 5), "tanh", nb.layers.Dense(5, 7), "relu", nb.layers.Dense(7, 3)],
        backend=backend, seed=seed,
    )  # fmt: skip


def per_weight(monkeypatch):
    """From here on, fits update weight by weight, as they do where no buffer is bound."""
    monkeypatch.setattr(FlatModel, "bind", classmethod(lambda cls, model, optimizer: None))


def trained(backend, make_optimizer, **options):
    model, optimizer = small_net(backend), make_optimizer()
    history = model.fit(X, Y, loss="cross_entropy", optimizer=optimizer, epochs=3,
                        batch_size=16, l2=0.01, verbose=0, seed=0, **options)  # fmt: skip
    host = {k: np.array(nb.to_numpy(v)) for k, v in model.params.items()}
    slots = {
        slot: {k: np.array(nb.to_numpy(v)) for k, v in arrays.items()}
        for slot, arrays in optimizer.state.items()
    }
    return model, host, slots, history["loss"]


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_flat_training_reaches_the_per_weight_weights_bit_for_bit(backend64, monkeypatch, name):
    model, weights, slots, losses = trained(backend64, OPTIMIZERS[name])
    if not backend64.has_views:
        assert model._flat is None  # array-api-strict promises no views: weight by weight
        return
    assert model._flat is not None
    per_weight(monkeypatch)
    _, want_weights, want_slots, want_losses = trained(backend64, OPTIMIZERS[name])
    assert list(weights) == list(want_weights)
    for k in weights:
        np.testing.assert_array_equal(weights[k], want_weights[k], err_msg=k)
    assert {s: list(a) for s, a in slots.items()} == {s: list(a) for s, a in want_slots.items()}
    for slot in slots:
        for k in slots[slot]:
            np.testing.assert_array_equal(slots[slot][k], want_slots[slot][k], err_msg=slot + k)
    # the L2 penalty is one dot product over the decayed weights: summed in another order
    np.testing.assert_allclose(losses, want_losses, rtol=1e-14)


def test_weights_and_gradients_are_views_into_one_buffer_each(backend):
    if not backend.has_views:
        pytest.skip(f"{backend.name} promises no views")
    model, *_ = trained(backend, OPTIMIZERS["adam"])
    flat, xp = model._flat, backend.xp
    size = int(flat.params.buffer.shape[0])
    flat.params.buffer[...] = xp.arange(size, dtype=flat.params.buffer.dtype)
    starts = [int(nb.to_numpy(xp.reshape(w, (-1,))[0])) for w in model.params.values()]
    assert all(start % ALIGN == 0 for start in starts)  # each view aligned
    flat.params.buffer[...] = 0.0
    for name in model.decayed_names():
        model.params[name][...] = 1.0  # in place: the view
    decayed = sum(int(np.prod(model.params[n].shape)) for n in model.decayed_names())
    assert float(nb.to_numpy(xp.sum(flat.decayed))) == decayed  # L2's prefix: those, zeros
    flat.params.buffer[...] = 2.0
    flat.grads.buffer[...] = 3.0
    assert all(np.all(nb.to_numpy(model.params[n]) == 2.0) for n in model.params)
    assert all(np.all(nb.to_numpy(model.grads[n]) == 3.0) for n in model.grads)
    opt_state = model.optimizer.state["m"]
    model.optimizer._flats["m"].buffer[...] = 4.0
    assert all(np.all(nb.to_numpy(opt_state[n]) == 4.0) for n in opt_state)


def test_a_weight_assigned_during_a_fit_is_trained_from(backend64, monkeypatch):
    """A callback's ``model.params[name] = W`` replaces the view: the next step copies
    W into the buffer and goes on from it, as per-weight updates would."""

    class Reset(nb.callbacks.Callback):
        def on_epoch_end(self, epoch, logs, model):
            if epoch == 0:
                model.params["2.W"] = model.backend.asarray(np.full((5, 7), 0.01))

    runs = []
    for flat in (True, False):
        if not flat:
            per_weight(monkeypatch)
        _, weights, *_ = trained(backend64, OPTIMIZERS["momentum"], callbacks=[Reset()])
        runs.append(weights)
    for k in runs[0]:
        np.testing.assert_array_equal(runs[0][k], runs[1][k], err_msg=k)


def test_layers_that_keep_their_own_gradients_are_copied_in(backend64, monkeypatch):
    """Conv2D and BatchNorm return new gradient arrays; Dense writes into the buffer."""

    def images_net():
        return nb.Sequential(
            [nb.layers.Conv2D(1, 2, 3), nb.layers.BatchNorm(2), "relu", nb.layers.Flatten(),
             nb.layers.Dense(2 * 4 * 4, 3)],
            backend=backend64, seed=2, input_shape=(1, 6, 6),
        )  # fmt: skip

    images = np.random.default_rng(3).normal(size=(20, 1, 6, 6))
    runs = []
    for flat in (True, False):
        if not flat:
            per_weight(monkeypatch)
        model = images_net()
        model.fit(images, Y[:20], loss="cross_entropy", optimizer="adam", epochs=2,
                  batch_size=8, verbose=0, seed=0)  # fmt: skip
        assert (model._flat is not None) == (flat and backend64.has_views)
        runs.append({k: np.array(nb.to_numpy(v)) for k, v in model.params.items()})
    for k in runs[0]:
        np.testing.assert_array_equal(runs[0][k], runs[1][k], err_msg=k)


class OwnGradsDense(nb.layers.Dense):
    """A Dense whose backward makes its own gradient arrays, put into ``grads``."""

    def backward(self, dy, input_grad=True):
        grads = {"W": self._x.T @ dy, "b": namespace_of(dy).sum(dy, axis=0)}
        self.grads.update(grads)
        return dy @ self.params["W"].T


class NewGradsDense(OwnGradsDense):
    """The same, handing its layer a new ``grads`` dict each time."""

    def backward(self, dy, input_grad=True):
        self.grads = {}
        return super().backward(dy, input_grad)


@pytest.mark.parametrize("flat", [True, False])
def test_a_layer_that_gives_itself_a_new_grads_dict_trains(backend64, monkeypatch, flat):
    """A step looked each layer's grads dict up once per fit, so a backward that made
    a new one left its weights untrained (as if frozen) weight by weight, and in the
    flat buffer the gradients of the backward before the fit stood in for every step's."""
    if not flat:
        per_weight(monkeypatch)
    runs = []
    for dense in (OwnGradsDense, NewGradsDense):
        model = nb.Sequential([dense(4, 5), "tanh", dense(5, 3)], backend=backend64, seed=1)
        model.backward(model.forward(backend64.asarray(X[:4])))  # grads of one's own, first
        model.fit(X, Y, loss="cross_entropy", optimizer="adam", epochs=2, batch_size=16,
                  verbose=0, seed=0)  # fmt: skip
        runs.append({k: np.array(nb.to_numpy(v)) for k, v in model.params.items()})
    for k in runs[0]:
        np.testing.assert_array_equal(runs[1][k], runs[0][k], err_msg=k)


def test_optimizers_that_may_read_across_weights_update_weight_by_weight(backend):
    class Clipped(nb.optim.SGD):  # reads the whole gradient of a weight: not flat
        def update(self, params, name, grad, lr):
            xp = backend.xp
            params[name] -= lr * grad / xp.maximum(xp.max(xp.abs(grad)), 1.0)

    class Halved(nb.optim.SGD):  # says it is element-wise: flat where there are views
        elementwise = True

        def update(self, params, name, grad, lr):
            params[name] -= 0.5 * lr * grad

    assert not Clipped().updates_flat() and Halved().updates_flat()
    assert not nb.optim.Optimizer().updates_flat()
    model = small_net(backend)
    assert FlatModel.bind(model, Clipped()) is None
    assert (FlatModel.bind(model, Halved()) is not None) == backend.has_views
    with fused(False):
        assert FlatModel.bind(small_net(backend), Halved()) is None


def test_copies_and_moves_do_not_write_into_the_buffer(backend64):
    """A copy (``model.copy()``) trains on arrays of its own, and a model moved to
    another backend leaves its old buffer behind."""
    model, *_ = trained(backend64, OPTIMIZERS["sgd"])
    if model._flat is None:
        pytest.skip(f"{backend64.name} binds no buffer")
    grads_before = np.array(nb.to_numpy(model._flat.grads.buffer))
    twin = model.copy()
    twin.fit(X, Y, loss="cross_entropy", optimizer="sgd", epochs=1, verbose=0)
    assert not copy.copy(model.layers[0]).grad_buffers  # what model.copy() starts from
    assert twin._flat.grads.buffer is not model._flat.grads.buffer
    np.testing.assert_array_equal(nb.to_numpy(model._flat.grads.buffer), grads_before)
    model.to("strict")
    assert model._flat is None
    model.fit(X, Y, loss="cross_entropy", optimizer="sgd", epochs=1, verbose=0)
    assert type(model.grads["0.W"]).__module__.startswith("array_api_strict")


def test_a_tall_narrow_weight_trains_bit_for_bit_alike_flat_or_not(backend64, monkeypatch):
    """A weight gradient of at least 16 rows and at most 32 columns, which torch's CPU
    takes as the transpose of dy.T @ x: the same product into the buffer or not."""
    rng = np.random.default_rng(0)
    X40, labels = rng.normal(size=(64, 40)), rng.integers(0, 3, 64)
    runs = []
    for flat in (True, False):
        if not flat:
            per_weight(monkeypatch)
        model = nb.Sequential([nb.layers.Dense(40, 20), "tanh", nb.layers.Dense(20, 3)],
                              backend=backend64, seed=1)  # fmt: skip
        model.fit(X40, labels, loss="cross_entropy", optimizer=nb.optim.SGD(0.1),
                  epochs=2, batch_size=32, verbose=0)  # fmt: skip
        assert (model._flat is not None) == (flat and backend64.has_views)
        runs.append({k: np.array(nb.to_numpy(v)) for k, v in model.params.items()})
    for k in runs[0]:
        np.testing.assert_array_equal(runs[0][k], runs[1][k], err_msg=k)


class FrozenBias(nb.layers.Dense):
    """A Dense layer whose backward leaves its bias without a gradient (frozen)."""

    def backward(self, dy, input_grad=True):
        dx = super().backward(dy, input_grad)
        del self.grads["b"]
        return dx


def test_gradients_kept_after_a_fit_are_not_overwritten_by_the_next_backward(backend):
    """The binding outlived the fit: each backward wrote into the same buffer views, so
    a hand-written loop that kept a batch's gradients saw them change."""
    loss = nb.losses.SoftmaxCrossEntropy()
    for trained in (None, "fit", "train_step"):
        model = small_net(backend)
        if trained == "fit":
            model.fit(X, Y, loss=loss, optimizer="adam", epochs=1, verbose=0)
        if trained == "train_step":
            xb, yb = backend.asarray(X[:8]), backend.asarray(Y[:8])
            model.train_step(xb, yb, loss, nb.optim.Adam())
        kept = []
        for rows in (slice(0, 8), slice(8, 16)):
            loss.forward(model.forward(backend.asarray(X[rows])), backend.asarray(Y[rows]))
            model.backward(loss.backward())
            kept.append(dict(model.grads))
            if rows.start == 0:
                first = {k: np.array(nb.to_numpy(v)) for k, v in kept[0].items()}
        assert all(kept[0][k] is not kept[1][k] for k in first), trained
        for k, v in first.items():
            np.testing.assert_array_equal(nb.to_numpy(kept[0][k]), v, err_msg=k)


class FrozenKernel(nb.layers.Dense):
    """A Dense layer whose backward leaves its decayed weight W without a gradient."""

    def backward(self, dy, input_grad=True):
        dx = super().backward(dy, input_grad)
        del self.grads["W"]
        return dx


def test_l2_leaves_a_frozen_weight_alone(backend64):
    """L2 added its gradient to every decayed weight's: one with none was a KeyError.
    The frozen weight still counts in the penalty, which is the loss's."""
    layers = [FrozenKernel(4, 8), "tanh", nb.layers.Dense(8, 3)]
    model = nb.Sequential(layers, backend=backend64, seed=1)
    start = {k: np.array(nb.to_numpy(v)) for k, v in model.params.items()}
    model.fit(X, Y, loss="cross_entropy", optimizer=nb.optim.SGD(0.1), epochs=1,
              batch_size=None, verbose=0, l2=0.5)  # fmt: skip
    np.testing.assert_array_equal(nb.to_numpy(model.params["0.W"]), start["0.W"])
    assert not np.array_equal(nb.to_numpy(model.params["2.W"]), start["2.W"])


def test_a_data_parallel_step_leaves_a_frozen_weight_alone(backend64, monkeypatch):
    """The distributed step adds L2 itself (the gradients lie apart with a frozen weight):
    it too was a KeyError. A world of one, whose sum is the message itself."""
    from nnbackend.distributed import parallel, world

    class Alone:
        def allreduce(self, message):
            return message

    monkeypatch.setattr(parallel, "engine_for", lambda world, backend: Alone())
    model = nb.Sequential([FrozenKernel(4, 8), "tanh", nb.layers.Dense(8, 3)],
                          backend=backend64, seed=1)  # fmt: skip
    start = {k: np.array(nb.to_numpy(v)) for k, v in model.params.items()}
    loss = nb.losses.SoftmaxCrossEntropy()
    step = parallel.DataParallel(world.World(), model, loss, nb.optim.SGD(0.1), [], 0.5)
    step.train_step(backend64.asarray(X), backend64.asarray(Y))
    np.testing.assert_array_equal(nb.to_numpy(model.params["0.W"]), start["0.W"])
    assert not np.array_equal(nb.to_numpy(model.params["2.W"]), start["2.W"])


def test_a_weight_left_without_a_gradient_is_not_trained_flat_or_not(backend64, monkeypatch):
    """A layer may leave a weight out of its gradients: that step then updates weight by
    weight, and the weight stays as it was, as on the per-weight path."""

    def fit():
        layers = [FrozenBias(4, 8), "tanh", nb.layers.Dense(8, 3)]
        model = nb.Sequential(layers, backend=backend64, seed=1)
        start = np.array(nb.to_numpy(model.params["0.b"]))
        model.fit(X, Y, loss="cross_entropy", optimizer=nb.optim.Adam(0.05), epochs=2,
                  batch_size=16, verbose=0, seed=0)  # fmt: skip
        np.testing.assert_array_equal(nb.to_numpy(model.params["0.b"]), start)
        return {k: np.array(nb.to_numpy(v)) for k, v in model.params.items()}

    flat = fit()
    per_weight(monkeypatch)
    for name, value in fit().items():
        np.testing.assert_array_equal(flat[name], value, err_msg=name)


class UndecayedDense(nb.layers.Dense):
    decayed = ()  # weights that L2 leaves alone


@pytest.mark.parametrize(
    "layers, outputs, l2",
    [
        (lambda: [nb.layers.Dense(3, 2, bias=False)], 2, None),  # one weight
        (lambda: [UndecayedDense(3, 2)], 2, 1.0),  # l2, but no weight it decays
        (lambda: [nb.layers.Dense(3, 4), nb.layers.BatchNorm(4)], 4, 0.1),  # BatchNorm's last
        (lambda: ["relu"], 3, None),  # no weights at all
    ],
    ids=["one-weight", "nothing-decayed", "batchnorm-last", "no-weights"],
)
def test_models_at_the_ends_of_the_layout_train_flat_as_weight_by_weight(
    backend64, monkeypatch, layers, outputs, l2
):
    """The first or last weight, an empty decayed prefix, no weight at all."""
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(32, 3)), rng.normal(size=(32, outputs))

    def fit():
        model = nb.Sequential(layers(), backend=backend64, seed=0, input_shape=(3,))
        model.fit(X, Y, loss="mse", optimizer=nb.optim.SGD(0.1), epochs=2, batch_size=8,
                  l2=l2, verbose=0, seed=0)  # fmt: skip
        return model, {k: nb.to_numpy(v).copy() for k, v in model.params.items()}

    model, flat = fit()
    assert (model._flat is not None) == (backend64.has_views and bool(flat))
    per_weight(monkeypatch)
    _, want = fit()
    assert list(flat) == list(want)
    for k in want:
        np.testing.assert_array_equal(flat[k], want[k], err_msg=k)


def fit_twice(backend, optimizer, between=lambda model: None, **options):
    """Two fits of ``small_net`` with one optimizer, ``between`` done to the model
    between them; the weights after."""
    model = small_net(backend)
    fit = dict(loss="cross_entropy", optimizer=optimizer, epochs=2, batch_size=16,
               verbose=0, seed=0, **options)  # fmt: skip
    model.fit(X, Y, **fit)
    between(model)
    model.fit(X, Y, **fit)
    return {k: nb.to_numpy(v).copy() for k, v in model.params.items()}


def assert_same_weights(got, want):
    assert list(got) == list(want)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_an_optimizer_that_rewrites_step_is_stepped_through_it(backend64, monkeypatch):
    """The flat step went around a subclass's own step (clipping the gradients, here)."""
    calls = []

    class ClippedSGD(nb.optim.SGD):
        def step(self, params, grads):
            calls.append(1)
            xp = namespace_of(next(iter(grads.values())))
            super().step(params, {k: xp.clip(g, -0.01, 0.01) for k, g in grads.items()})

    assert not ClippedSGD().updates_flat()
    got = fit_twice(backend64, ClippedSGD(1.0))
    assert len(calls) == 2 * 2 * 4  # 2 fits of 2 epochs of 4 batches
    per_weight(monkeypatch)
    assert_same_weights(got, fit_twice(backend64, ClippedSGD(1.0)))


def test_a_layer_l2_stops_decaying_trains_as_weight_by_weight(backend64, monkeypatch):
    """The binding and the optimizer's flat state kept the layout of the first fit,
    whose decayed weights lie first: L2 went on decaying the layer, and the momentum
    of one weight was added to another."""

    def stop_decaying(model):
        model.layers[2].decayed = ()

    got = fit_twice(backend64, nb.optim.Momentum(0.05), stop_decaying, l2=0.1)
    per_weight(monkeypatch)
    assert_same_weights(got, fit_twice(backend64, nb.optim.Momentum(0.05), stop_decaying, l2=0.1))


@pytest.mark.parametrize("target", ["numpy", "torch"])
def test_a_hand_loop_s_flat_state_follows_the_model_it_moved(target, monkeypatch):
    """``model.to`` without the optimizer: the flat step kept the state where it was,
    float32 beside float64 weights (or NumPy's beside torch's: an error)."""
    if target == "torch" and not HAVE_TORCH:
        pytest.skip("torch is not installed")
    loss = nb.losses.SoftmaxCrossEntropy()

    def run():
        model = nb.Sequential([nb.layers.Dense(4, 8), "tanh", nb.layers.Dense(8, 3)],
                              backend="numpy", dtype="float32", seed=0)  # fmt: skip
        optimizer = nb.optim.Momentum(0.1)
        for dtype in ("float32", "float64"):
            model.to(target if dtype == "float64" else "numpy", dtype=dtype)
            xb, yb = model.backend.asarray(X), model.backend.asarray(Y)
            for _ in range(2):
                model.train_step(xb, yb, loss, optimizer)
        velocity = optimizer.state["v"]["0.W"]
        assert type(velocity) is type(model.params["0.W"])
        assert velocity.dtype == model.params["0.W"].dtype
        return {k: nb.to_numpy(v).copy() for k, v in model.params.items()}

    got = run()
    per_weight(monkeypatch)
    assert_same_weights(got, run())


@pytest.mark.parametrize(
    "copier", [copy.deepcopy, lambda m: pickle.loads(pickle.dumps(m))], ids=["deepcopy", "pickle"]
)
def test_a_copy_of_a_fitted_model_trains_as_the_original(copier):
    """A copy that kept the fit's binding, its weights no longer views of the buffer,
    trained the buffer alone: its weights never moved, with no error."""
    X = np.random.default_rng(0).normal(size=(32, 2))
    y = (X[:, 0] > 0).astype(np.int64)
    settings = dict(loss="cross_entropy", optimizer="sgd", epochs=2, batch_size=8, verbose=0)
    model = nb.Sequential([nb.layers.Dense(2, 3), "tanh", nb.layers.Dense(3, 2)], seed=0)
    model.fit(X, y, **settings)
    twin = copier(model)
    model.fit(X, y, **settings)
    twin.fit(X, y, **settings)
    np.testing.assert_array_equal(nb.to_numpy(twin.params["0.W"]), nb.to_numpy(model.params["0.W"]))


def bias_free_net_trained(on: bool) -> np.ndarray:
    X = np.random.default_rng(0).normal(size=(32, 3))
    y = (X[:, 0] > 0).astype(np.int64)
    layers = [nb.layers.Dense(3, 4, bias=False), "relu", nb.layers.Dense(4, 2)]
    model = nb.Sequential(layers, backend="numpy", seed=0)
    with fused(on):
        model.fit(X, y, loss="cross_entropy", optimizer="sgd", epochs=2, batch_size=8, verbose=0)
    return nb.to_numpy(model.params["0.W"])


def test_a_bias_free_dense_before_relu_trains_as_unfused():
    """The fused Dense+activation kernel takes a bias: one without it is not fused."""
    np.testing.assert_allclose(bias_free_net_trained(True), bias_free_net_trained(False), rtol=1e-6)
    model = nb.Sequential([nb.layers.Dense(3, 2)], backend="numpy", seed=0)
    out = model.forward(model.backend.asarray(np.ones((4, 3))))
    assert model.backward(model.backend.xp.ones_like(out), input_grad=False) is None
