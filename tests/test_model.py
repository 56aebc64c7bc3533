"""Sequential and fit: names, the tutorial moons workload, dtype, callbacks, moving,
host syncs, and clear errors."""

from __future__ import annotations

import copy
import gc
import pickle
import warnings

import numpy as np
import pytest
from sklearn.datasets import make_moons

import nnbackend as nb
from nnbackend.layers import BatchNorm, Dense, ReLU, Sigmoid, Softmax, Tanh
from nnbackend.losses import MSE, BinaryCrossEntropy, SoftmaxCrossEntropy
from tests.conftest import CPU_BACKEND_NAMES, HAVE_TORCH

# The moons tutorial: np.random.seed(0); make_moons(200, noise=0.20) is this data.
X_MOONS, Y_MOONS = make_moons(200, noise=0.20, random_state=0)


def tiny_net(backend, hidden=3, seed=0):
    return nb.Sequential([Dense(2, hidden), Tanh(), Dense(hidden, 2)], backend=backend, seed=seed)


def host(backend, array):
    """``array`` on the host: predict gives host NumPy for host data, a backend's array
    for a backend's."""
    return nb.to_numpy(array)


# --- parameters -------------------------------------------------------------------


def test_parameter_names_are_dotted_and_ordered(backend):
    model = tiny_net(backend)
    assert list(model.params) == ["0.W", "0.b", "2.W", "2.b"]
    assert model.decayed_names() == ["0.W", "2.W"]
    assert model.count_params() == 2 * 3 + 3 + 3 * 2 + 2
    assert model.summary().splitlines()[-1].startswith("total 17 parameters on Backend(")
    unbuilt = nb.Sequential([Dense(2, 3), Tanh(), Dense(3, 2)], build=False)
    assert unbuilt.count_params() == 0  # its rows add up to 17: the total said 0
    assert unbuilt.summary().splitlines()[-1].startswith("total 17 parameters (once built) on")
    model.forward(backend.asarray(X_MOONS))
    model.backward(backend.asarray(np.ones((200, 2))))
    assert list(model.grads) == list(model.params)


def test_params_are_assignable_and_checked(backend):
    model = tiny_net(backend)
    new = backend.asarray(np.zeros((2, 3)))
    model.params["0.W"] = new
    np.testing.assert_array_equal(host(backend, model.layers[0].params["W"]), np.zeros((2, 3)))
    model.fit(X_MOONS, Y_MOONS, loss=SoftmaxCrossEntropy(), optimizer=nb.optim.SGD(), verbose=0)
    np.testing.assert_array_equal(host(backend, new), np.zeros((2, 3)))  # a copy was kept
    with pytest.raises(ValueError, match=r"0.W is .*\(2, 3\); cannot assign .*\(3, 2\)"):
        model.params["0.W"] = backend.asarray(np.zeros((3, 2)))
    with pytest.raises(KeyError, match="no array named '1.W'"):
        model.params["1.W"] = new
    other = "strict" if backend.name != "strict" else "numpy"
    with pytest.raises(nb.BackendMismatchError):
        model.params["0.W"] = nb.get_backend(other).asarray(np.zeros((2, 3)))


def test_set_params_assigns_all_or_none(backend):
    model = tiny_net(backend)
    before = {name: nb.to_numpy(a).copy() for name, a in model.params.items()}
    good = backend.asarray(np.ones((2, 3)))
    for bad in ({"2.W": backend.asarray(np.ones((2, 3)))}, {"9.W": good}):
        with pytest.raises((ValueError, KeyError)):
            model.set_params({"0.W": good, **bad})
        for name, array in model.params.items():
            np.testing.assert_array_equal(nb.to_numpy(array), before[name])
    model.set_params({"0.W": good, "2.b": backend.asarray(np.full(2, 3.0))})
    np.testing.assert_array_equal(nb.to_numpy(model.params["0.W"]), np.ones((2, 3)))
    np.testing.assert_array_equal(nb.to_numpy(model.params["2.b"]), [3.0, 3.0])


def test_one_seed_gives_the_same_model_on_every_backend():
    weights = {
        name: [nb.to_numpy(a).tobytes() for a in tiny_net(nb.get_backend(name)).params.values()]
        for name in CPU_BACKEND_NAMES
    }
    assert len({tuple(w) for w in weights.values()}) == 1


def test_layer_sizes_must_chain():
    with pytest.raises(ValueError, match=r"gives 3 features but the next, Dense\(n_in=4"):
        nb.Sequential([Dense(2, 3), Tanh(), Dense(4, 2)])


# --- the tutorial workload --------------------------------------------------------


def test_one_layer_object_stands_in_one_place_only():
    # it keeps one forward's input for its backward: twice, the first place got the
    # second's gradients (17 % off numerical ones for a shared Tanh)
    tanh, dense = Tanh(), Dense(3, 3)
    with pytest.raises(ValueError, match=r"layer 3 is layer 1 again \(Tanh\(\)\)"):
        nb.Sequential([Dense(3, 3), tanh, Dense(3, 3), tanh])
    with pytest.raises(ValueError, match=r"layer 2 is layer 0 again \(Dense"):
        nb.Sequential([dense, "tanh", dense])


def test_a_layer_put_in_a_second_place_by_assignment_is_refused_at_fit(backend):
    """model.layers[4] = model.layers[2] (Keras's weight tying) trained with the second
    place's input for both gradients (0.2 off numerical ones), and nothing said."""
    model = nb.Sequential([Dense(2, 4), "tanh", Dense(4, 4), "tanh", Dense(4, 4), "tanh",
                           Dense(4, 2)], backend=backend, seed=0)  # fmt: skip
    model.layers[4] = model.layers[2]
    said = r"^layer 4 is layer 2 again \(Dense\(n_in=4, n_out=4"
    with pytest.raises(ValueError, match=said):
        model.fit(X_MOONS, Y_MOONS, loss="cross_entropy", optimizer="sgd", verbose=0)
    xb, yb = backend.asarray(X_MOONS[:8]), backend.asarray(Y_MOONS[:8])
    with pytest.raises(ValueError, match=said):
        model.train_step(xb, yb, SoftmaxCrossEntropy(), nb.optim.SGD(0.1))
    loss = SoftmaxCrossEntropy()  # the guide's hand loop: its backward, 0.04 off as well
    loss.forward(model.forward(xb), yb)
    with pytest.raises(ValueError, match=said):
        model.backward(loss.backward())
    with pytest.raises(ValueError, match=said):  # it pickled, and loaded as this error
        pickle.dumps(model)


def test_a_weightless_layer_of_a_live_model_is_refused_in_another(backend):
    """A shared Tanh kept the last forward's output of either model: interleaved, one
    model's backward took the other's (weights 0.69 off); a shared Dropout took the
    second model's backend. Once the first model is gone, the layer is free."""
    tanh = Tanh()
    first = nb.Sequential([Dense(2, 3), tanh, Dense(3, 2)], backend=backend, seed=0)
    with pytest.raises(ValueError, match=r"layer 1 \(Tanh\(\)\) is in another model already"):
        nb.Sequential([Dense(2, 3), tanh, Dense(3, 2)], backend=backend, seed=1)
    twin = first.copy()  # copies its layers: no clash
    assert twin.layers[1] is not tanh
    del first, twin
    gc.collect()
    nb.Sequential([Dense(2, 3), tanh, Dense(3, 2)], backend=backend, seed=1)


def test_copied_and_replaced_layers_are_claimed_by_their_model(backend):
    """A deep copy's or an unpickled model's layers, and a layer put in by
    model.layers[i] = ..., were no model's: another could take them in."""
    first = nb.Sequential([Dense(2, 3), Tanh(), Dense(3, 2)], backend=backend, seed=0)
    told = r"layer 1 \(Tanh\(\)\) is in another model already"
    for twin in (copy.deepcopy(first), pickle.loads(pickle.dumps(first))):
        with pytest.raises(ValueError, match=told):
            nb.Sequential([Dense(2, 3), twin.layers[1], Dense(3, 2)], backend=backend)
    second = nb.Sequential([Dense(2, 3), Tanh(), Dense(3, 2)], backend=backend, seed=1)
    second.layers[1] = first.layers[1]  # still the first's
    X = make_moons(20, random_state=0)[0]
    with pytest.raises(ValueError, match=told):
        second.fit(X, np.arange(20) % 2, loss="cross_entropy", optimizer="sgd", verbose=0)
    loss, sgd = SoftmaxCrossEntropy(), nb.optim.SGD()
    xb, yb = second.backend.asarray(X), second.backend.asarray(np.arange(20) % 2)
    with pytest.raises(ValueError, match=told):
        second.train_step(xb, yb, loss, sgd)
    second.layers[1] = free = Tanh()
    second.train_step(xb, yb, loss, sgd)  # claims it
    with pytest.raises(ValueError, match=told):
        nb.Sequential([Dense(2, 3), free, Dense(3, 2)], backend=backend)


@pytest.mark.parametrize("fused", [True, False])
def test_a_new_layer_put_in_place_of_one_is_built_by_the_next_fit(backend, fused):
    """A fresh head for a trained model: the next fit gave KeyError '2.W' (fused) or
    told to put the layer in a Sequential, which it was in. It is built as the model
    builds its layers, from the model's generator."""
    X, y = make_moons(40, random_state=0)
    model = nb.Sequential([Dense(2, 8), Tanh(), Dense(8, 2)], backend=backend, seed=0)
    fit = dict(loss="cross_entropy", optimizer="sgd", verbose=0)
    with nb.backend.fused(fused):
        model.fit(X, y, **fit)
        body = nb.to_numpy(model.params["0.W"]).copy()
        model.layers[2] = Dense(8, 2)
        twin = Dense(8, 2)
        twin.build(model.backend, copy.deepcopy(model.rng))
        model.fit(X, y, epochs=0, **fit)  # builds it, trains nothing
        np.testing.assert_array_equal(
            host(backend, model.params["2.W"]), host(backend, twin.params["W"])
        )
        np.testing.assert_array_equal(host(backend, model.params["0.W"]), body)
        history = model.fit(X, y, epochs=5, **fit)
    assert history["loss"][-1] < history["loss"][0]


def test_a_new_head_is_built_after_the_model_moves_and_its_copies_draw_it_alike(backend):
    """torch's order, a new head then model.to(...): every fit and train_step gave
    KeyError '2.W' (the move had marked the head as built); a copy drew the head from
    fresh entropy (two copies disagreed, and neither was the head the model drew); before
    a fit, predict told to put the head in a Sequential, where it was, and summary()'s
    total left it out."""
    X, y = make_moons(40, random_state=0)
    fit = dict(loss="cross_entropy", optimizer="sgd", verbose=0)
    model = nb.Sequential([Dense(2, 8), Tanh(), Dense(8, 2)], backend=backend, seed=0)
    model.fit(X, y, **fit)
    model.layers[2] = Dense(8, 3)
    assert model.summary().splitlines()[-1].startswith("total 51 parameters (27 of them once")
    for refused in (model.predict, lambda X: model.evaluate(X, y, loss="cross_entropy")):
        with pytest.raises(RuntimeError, match=r"^layer 2 \(Dense.*\) has no weights yet \(put in"):
            refused(X)
    copies = [model.copy(), model.copy()]
    with pytest.raises(RuntimeError, match=r"or the model made with build=False\): nb\.restore"):
        nb.Sequential.from_config(model.config(), backend=backend, build=False).predict(X)
    model.to(backend, dtype="float64")
    for each in [model, *copies]:
        each.fit(X, (y + (X[:, 0] > 1)).astype(int), epochs=0, **fit)  # builds the head
    heads = [host(backend, each.params["2.W"]).astype(np.float64) for each in [model, *copies]]
    np.testing.assert_array_equal(heads[1], heads[2])
    np.testing.assert_allclose(heads[0], heads[1], rtol=1e-6)  # drawn in float64 and float32
    assert model.fit(X, y, epochs=3, **fit)["loss"][-1] > 0


class _Centred(nb.layers.Layer):
    """A layer with running state and no weights: x less a kept mean, of 8 features."""

    def state_shapes(self):
        return {"mu": (8,)}

    def build(self, backend, rng):
        super().build(backend, rng)
        xp = backend.xp
        self.state["mu"] = xp.full((8,), 0.5, dtype=backend.dtype, device=backend.device)

    def forward(self, x, training=False):
        return x - self.state["mu"]

    def backward(self, dy, input_grad=True):
        return dy


class _Scaled(nb.layers.Layer):
    """A weight of its own that its param_shapes() leaves out."""

    def build(self, backend, rng):
        super().build(backend, rng)
        self.params["s"] = backend.xp.ones((1,), dtype=backend.dtype, device=backend.device)

    def forward(self, x, training=False):
        self._x = x
        return x * self.params["s"]

    def backward(self, dy, input_grad=True):
        xp = nb.backend.namespace_of(dy)
        self.grads["s"] = xp.reshape(xp.sum(self._x * dy), (1,))
        return dy * self.params["s"]


def test_layers_of_state_alone_or_undeclared_weights_are_built_and_copied(backend):
    """A built layer with running state and no weights is copied with its state; put in
    and moved, such a layer is built by the next fit, as is one whose weights its
    param_shapes() leaves out; an activation put in needs no building to predict."""
    X, y = make_moons(40, random_state=0)
    fit = dict(loss="cross_entropy", optimizer="sgd", verbose=0)
    model = nb.Sequential([Dense(2, 8), _Centred(), Dense(8, 2)], backend=backend, seed=0)
    twin = model.copy()
    np.testing.assert_array_equal(host(backend, twin.state["1.mu"]), [0.5] * 8)
    np.testing.assert_array_equal(twin.predict(X), model.predict(X))
    model.layers[1] = _Centred()
    model.to(backend)
    model.fit(X, y, **fit)
    assert list(model.state) == ["1.mu"]
    model.layers[1] = _Scaled()
    model.fit(X, y, **fit)
    assert "1.s" in model.params
    model.layers[1] = Tanh()
    assert model.predict(X).shape == (40,) and model.evaluate(X, y)["loss"] > 0


def test_a_copy_and_its_model_train_apart(backend):
    """A copy made in a callback to keep epoch 0's model shared the arrays of one whose
    layers were all built: it held the last epoch's weights when the fit ended."""
    X, y = make_moons(40, random_state=0)
    model = nb.Sequential([Dense(2, 8), BatchNorm(8), Tanh(), Dense(8, 2)], backend=backend, seed=0)
    kept = {}

    def keep_first(epoch, logs, model):
        if epoch == 0:
            kept["copy"], kept["arrays"] = model.copy(), {**model.copy_params()}
            kept["state"] = {k: host(backend, a).copy() for k, a in model.state.items()}

    fit = dict(loss="cross_entropy", optimizer="adam", verbose=0)
    model.fit(X, y, epochs=3, callbacks=[nb.callbacks.LambdaCallback(keep_first)], **fit)
    twin = kept["copy"]
    for name, a in kept["arrays"].items():
        np.testing.assert_array_equal(host(backend, twin.params[name]), host(backend, a))
    for name, a in kept["state"].items():
        np.testing.assert_array_equal(host(backend, twin.state[name]), a)
    before = {k: host(backend, a).copy() for k, a in model.params.items()}
    twin.fit(X, y, epochs=2, **fit)
    for name, a in before.items():
        np.testing.assert_array_equal(host(backend, model.params[name]), a)


def test_a_layer_no_other_model_holds_is_taken(backend):
    """Swapped between two live models, or taken from a model let go of (models are
    reference cycles: alive until the collector runs), a layer is in one model only;
    fit refused it as another's, or not, by when the collector had last run."""

    def net(seed):
        return nb.Sequential([Dense(2, 3), Tanh(), Dense(3, 2)], backend=backend, seed=seed)

    X, y = make_moons(20, random_state=0)
    a, b = net(0), net(1)
    a.layers[1], b.layers[1] = b.layers[1], a.layers[1]
    old, new = net(2), net(3)
    new.layers[1] = old.layers[1]
    del old
    for model in (a, b, new):
        model.fit(X, y, loss="cross_entropy", optimizer="sgd", verbose=0)


def test_a_layer_of_another_model_is_not_built_again():
    # building it redrew the first model's weights, in silence
    trained = tiny_net("numpy")
    before = {k: v.copy() for k, v in trained.params.items()}
    with pytest.raises(ValueError, match=r"layer 0 \(Dense\(n_in=2.*already has weights"):
        nb.Sequential([trained.layers[0], Tanh(), Dense(3, 4)])
    for name, w in before.items():
        np.testing.assert_array_equal(trained.params[name], w)
    reused = nb.Sequential([Dense(2, 3), Tanh(), Dense(3, 4)], seed=1)  # the way instead
    reused.params["0.W"], reused.params["0.b"] = trained.params["0.W"], trained.params["0.b"]
    np.testing.assert_array_equal(reused.params["0.W"], before["0.W"])


def test_moons_tutorial_net_reaches_97_percent(backend):
    """2-3-2 tanh/softmax, L2 0.01, lr 0.01 on the summed loss, full batch (the tutorial)."""
    be = backend.with_dtype("float64") if backend.supports("float64") else backend
    model = tiny_net(be)
    history = model.fit(
        X_MOONS, Y_MOONS, loss=SoftmaxCrossEntropy(reduction="sum"), optimizer=nb.optim.SGD(0.01),
        l2=0.01, epochs=1500, batch_size=None, verbose=0,
    )  # fmt: skip
    assert history["accuracy"][-1] >= 0.97
    assert model.evaluate(X_MOONS, Y_MOONS)["accuracy"] >= 0.97
    # the tutorial's printed loss: (summed cross-entropy + L2 term) / 200
    assert history["loss"][0] > 0.3 and history["loss"][-1] < 0.075


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
def test_training_matches_torch_autograd_step_for_step(backend64):
    import torch

    model = tiny_net(backend64)
    start = {k: torch.tensor(nb.to_numpy(v), requires_grad=True) for k, v in model.params.items()}
    model.fit(
        X_MOONS, Y_MOONS, loss=SoftmaxCrossEntropy(reduction="sum"), optimizer=nb.optim.SGD(0.01),
        l2=0.01, epochs=20, batch_size=None, verbose=0,
    )  # fmt: skip
    X, y = torch.tensor(X_MOONS), torch.tensor(Y_MOONS)
    W1, b1, W2, b2 = start.values()
    for _ in range(20):
        logits = torch.tanh(X @ W1 + b1) @ W2 + b2
        loss = torch.nn.functional.cross_entropy(logits, y, reduction="sum")
        loss = loss + 0.01 / 2 * ((W1**2).sum() + (W2**2).sum())
        loss.backward()
        with torch.no_grad():
            for p in start.values():
                p -= 0.01 * p.grad
                p.grad = None
    for name, tensor in start.items():
        np.testing.assert_allclose(
            nb.to_numpy(model.params[name]), tensor.detach().numpy(), rtol=1e-10
        )


def test_float32_model_stays_float32(backend):
    model = tiny_net(backend)
    opt = nb.optim.Adam(0.01)
    history = model.fit(
        X_MOONS, Y_MOONS, loss=SoftmaxCrossEntropy(), optimizer=opt, epochs=2, verbose=0
    )
    f32 = backend.xp.float32
    arrays = [*model.params.values(), *model.grads.values(), *opt.state["m"].values()]
    assert all(a.dtype == f32 for a in arrays)
    assert model.predict_proba(backend.asarray(X_MOONS)).dtype == f32
    assert model.predict_proba(X_MOONS).dtype == np.float32
    assert isinstance(history["loss"][0], float)


def test_full_batch_and_per_sample_sgd_are_what_they_say(backend):
    loss, X, y = SoftmaxCrossEntropy(), X_MOONS[:8], Y_MOONS[:8]
    fitted, by_hand = tiny_net(backend), tiny_net(backend)
    fitted.fit(X, y, loss=loss, optimizer=nb.optim.SGD(0.1), batch_size=1, shuffle=False, verbose=0)
    opt = nb.optim.SGD(0.1)
    for i in range(8):
        by_hand.train_step(backend.asarray(X[i : i + 1]), backend.asarray(y[i : i + 1]), loss, opt)
    for name in fitted.params:
        np.testing.assert_array_equal(
            host(backend, fitted.params[name]), host(backend, by_hand.params[name])
        )

    fitted, by_hand = tiny_net(backend), tiny_net(backend)
    fitted.fit(X, y, loss=loss, optimizer=nb.optim.SGD(0.1), batch_size=None, verbose=0)
    by_hand.train_step(backend.asarray(X), backend.asarray(y), loss, nb.optim.SGD(0.1))
    for name in fitted.params:
        np.testing.assert_array_equal(
            host(backend, fitted.params[name]), host(backend, by_hand.params[name])
        )


def test_shuffled_batches_are_the_same_on_every_backend():
    losses = set()
    for name in CPU_BACKEND_NAMES:
        model = tiny_net(nb.get_backend(name, dtype="float64"))
        history = model.fit(
            X_MOONS, Y_MOONS, loss=SoftmaxCrossEntropy(), optimizer=nb.optim.SGD(0.5),
            epochs=3, batch_size=16, verbose=0,
        )  # fmt: skip
        losses.add(round(history["loss"][-1], 10))
    assert len(losses) == 1


def test_no_host_transfer_per_step(backend):
    """Metrics come to the host only at log points: 3 transfers for 800 steps here."""
    model = tiny_net(backend)
    with nb.count_host_transfers() as transfers:
        history = model.fit(
            X_MOONS, Y_MOONS, loss=SoftmaxCrossEntropy(), optimizer=nb.optim.SGD(0.1),
            epochs=40, batch_size=10, log_every=20, verbose=0,
        )  # fmt: skip
    assert transfers.count == 3  # epochs 0, 20 and 39
    assert len(history["loss"]) == 40  # reading them all needs no more
    assert transfers.count == 3


def test_a_long_fit_leaves_no_object_per_epoch_for_the_garbage_collector(backend):
    """History keeps flushed epochs as floats (which the collector does not track):
    tens of thousands of epochs must not leave tens of thousands of tracked objects,
    or the collector's full passes come again and again during the fit."""
    model = tiny_net(backend)
    options = dict(loss=SoftmaxCrossEntropy(), optimizer=nb.optim.SGD(0.1), verbose=0)
    model.fit(X_MOONS, Y_MOONS, epochs=2, **options)  # everything made once is made
    gc.collect()
    before = len(gc.get_objects())
    history = model.fit(X_MOONS, Y_MOONS, epochs=300, log_every=50, **options)
    gc.collect()
    assert len(gc.get_objects()) - before < 100  # not one (or more) for each epoch
    assert len(history["loss"]) == 300 and history.epochs == list(range(300))


def test_a_history_is_read_by_name_not_iterated():
    history = tiny_net("numpy").fit(X_MOONS, Y_MOONS, loss="cross_entropy", optimizer="sgd",
                                    epochs=2, verbose=0)  # fmt: skip
    assert len(history) == 2 and "loss" in history and "val_loss" not in history
    with pytest.raises(TypeError, match=r"read by metric name .*metrics are \['loss', 'acc"):
        list(history)  # it iterated history[0], history[1]: KeyError: 0


def test_a_history_hands_out_copies():
    history = tiny_net("numpy").fit(X_MOONS, Y_MOONS, loss="cross_entropy", optimizer="sgd",
                                    epochs=2, verbose=0)  # fmt: skip
    history["loss"].append(9.0)
    history.history["accuracy"].clear()
    history.epochs.append(9)
    assert len(history["loss"]) == len(history.history["accuracy"]) == 2
    assert history.epochs == [0, 1]


class StopAfter(nb.callbacks.Callback):
    """Stops the fit after epoch ``last`` without reading the logs; keeps what they
    showed then (their length and repr) and the logs themselves."""

    def __init__(self, last):
        self.last, self.seen = last, []

    def on_epoch_end(self, epoch, logs, model):
        self.seen.append((len(logs), repr(logs), logs))
        model.stop_training = epoch == self.last


def test_epochs_stopped_between_log_points_come_to_the_host_in_one_transfer(backend):
    """Epochs 1-6 stay on the device (no log point, no callback read them) until the
    History is read: then with one transfer. Their logs say so until then."""
    stopper = StopAfter(6)
    history = tiny_net(backend).fit(
        X_MOONS, Y_MOONS, loss="cross_entropy", optimizer="sgd", epochs=50, log_every=20,
        callbacks=[stopper], verbose=0,
    )  # fmt: skip
    assert stopper.seen[1][:2] == (2, "EpochLogs(epoch=1, (on device))")
    with nb.count_host_transfers() as transfers:
        losses = history["loss"]
    assert transfers.count == 1 and len(losses) == 7 and history.epochs == list(range(7))
    logs = stopper.seen[1][2]
    assert len(logs) == 2 and sorted(logs) == ["accuracy", "loss"] and logs["loss"] == losses[1]
    assert repr(logs) == f"EpochLogs(epoch=1, {dict(logs)})"


def test_a_history_names_its_metrics_before_they_come_to_the_host(backend):
    """An epoch's value is sum(weight * value) / samples, and its names are known
    before any of it came over (a resumed fit stopped before its first log point)."""
    from nnbackend.history import EpochLogs, History

    history = History(backend)
    parts = [(backend.asarray(3.0), 2), (backend.asarray(1.0), 2)]
    history.append(EpochLogs(5, {"loss": (parts, 4)}, backend))
    assert "loss" in history and "accuracy" not in history and len(history) == 1
    assert repr(history) == "History(1 epoch, metrics=['loss'], stop_reason=None)"
    assert history["loss"] == [2.0] and history.epochs == [5]


def test_binary_classifier_with_sigmoid_output(backend):
    model = nb.Sequential([Dense(2, 8), ReLU(), Dense(8, 1), Sigmoid()], backend=backend, seed=1)
    model.fit(X_MOONS, Y_MOONS, loss=BinaryCrossEntropy(), optimizer=nb.optim.Adam(0.05),
              epochs=60, batch_size=32, verbose=0)  # fmt: skip
    proba = host(backend, model.predict_proba(X_MOONS))
    assert proba.shape == (200, 1) and 0 <= proba.min() and proba.max() <= 1
    accuracy = (host(backend, model.predict(X_MOONS)) == Y_MOONS).mean()
    assert accuracy >= 0.95
    assert model.evaluate(X_MOONS, Y_MOONS)["accuracy"] == pytest.approx(accuracy)


def test_predict_and_evaluate_agree(backend):
    model = tiny_net(backend, hidden=8)
    model.fit(X_MOONS, Y_MOONS, loss=SoftmaxCrossEntropy(), optimizer=nb.optim.Adam(0.05),
              epochs=30, verbose=0)  # fmt: skip
    proba = host(backend, model.predict_proba(X_MOONS))
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    labels = host(backend, model.predict(X_MOONS, batch_size=64))
    np.testing.assert_array_equal(labels, proba.argmax(axis=1))
    result = model.evaluate(X_MOONS, Y_MOONS)
    assert result["accuracy"] == pytest.approx((labels == Y_MOONS).mean())
    assert result["accuracy"] > 0.95 and 0 < result["loss"] < 0.3


def test_validation_split_holds_out_the_last_rows_and_trains_on_the_rest(backend64):
    """The last quarter is scored, never trained on: the weights are those of a fit on
    the first three quarters alone, and val_loss is evaluate's on the last quarter."""
    settings = dict(loss="cross_entropy", optimizer="adam", epochs=2, batch_size=30, verbose=0)
    held, alone = (nb.Sequential([Dense(2, 8), Tanh(), Dense(8, 2)], backend=backend64, seed=0)
                   for _ in range(2))  # fmt: skip
    history = held.fit(X_MOONS, Y_MOONS, validation_split=0.25, **settings)
    alone.fit(X_MOONS[:150], Y_MOONS[:150], **settings)
    for name, value in alone.params.items():
        np.testing.assert_array_equal(nb.to_numpy(held.params[name]), nb.to_numpy(value))
    tail = held.evaluate(X_MOONS[150:], Y_MOONS[150:])
    assert history["val_loss"][-1] == pytest.approx(tail["loss"], rel=1e-12)


def test_validation_is_measured_a_batch_at_a_time(backend):
    """Validation takes no more rows at once than a step, unless validation_batch_size
    says otherwise: a conv net's whole validation set in one pass took 30 times a step's
    memory."""
    model = tiny_net(backend)
    seen = []
    forward = model.forward

    def counting_forward(X, training=True):
        seen.append((int(X.shape[0]), training))
        return forward(X, training=training)

    model.forward = counting_forward
    history = model.fit(X_MOONS, Y_MOONS, loss="cross_entropy", optimizer="sgd", epochs=1,
                        batch_size=16, validation_split=0.25, verbose=0)  # fmt: skip
    assert [n for n, training in seen if not training] == [16, 16, 16, 2]
    whole = model.evaluate(X_MOONS[150:], Y_MOONS[150:])
    assert history["val_loss"][-1] == pytest.approx(whole["loss"], rel=1e-6)
    assert history["val_accuracy"][-1] == whole["accuracy"]
    seen.clear()  # a dense net's few forwards may take more rows each
    again = model.fit(X_MOONS, Y_MOONS, loss="cross_entropy", optimizer="sgd", epochs=1,
                      batch_size=16, validation_split=0.25, validation_batch_size=50,
                      verbose=0)  # fmt: skip
    assert [n for n, training in seen if not training] == [50]
    whole = model.evaluate(X_MOONS[150:], Y_MOONS[150:])
    assert again["val_loss"][-1] == pytest.approx(whole["loss"], rel=1e-6)


def test_a_fits_seed_decides_its_shuffles(backend64):
    """Two models alike but for their generators' states train alike with one seed."""
    models = [nb.Sequential([Dense(2, 8), Tanh(), Dense(8, 2)], backend=backend64, seed=0)
              for _ in range(2)]  # fmt: skip
    models[1].rng.permutation(10)  # its generator moved on
    for model in models:
        model.fit(X_MOONS, Y_MOONS, loss="cross_entropy", optimizer="sgd", epochs=2,
                  batch_size=20, verbose=0, seed=5)  # fmt: skip
    for name, value in models[0].params.items():
        np.testing.assert_array_equal(nb.to_numpy(models[1].params[name]), nb.to_numpy(value))


def test_gradients_of_a_whole_model_with_l2(backend64):
    model = nb.Sequential(
        [Dense(2, 5), Tanh(), Dense(5, 4), Sigmoid(), Dense(4, 3)], backend=backend64, seed=2
    )
    labels = np.array([0, 1, 2, 1, 0, 2])
    errors = nb.gradcheck.check_gradients(model, SoftmaxCrossEntropy(), X_MOONS[:6], labels, l2=0.1)
    assert list(errors) == list(model.params)
    assert max(errors.values()) < 1e-6, errors


# --- callbacks --------------------------------------------------------------------


def test_early_stopping_restores_the_best_weights(backend):
    model = tiny_net(backend, hidden=8)
    fit = dict(loss=SoftmaxCrossEntropy(), optimizer=nb.optim.Adam(0.05), verbose=0)
    model.fit(X_MOONS, Y_MOONS, epochs=30, **fit)
    snapshots = {}
    keep = nb.callbacks.LambdaCallback(lambda e, logs, m: snapshots.setdefault(e, m.copy_params()))
    history = model.fit(
        X_MOONS, Y_MOONS, validation_data=(X_MOONS, 1 - Y_MOONS),  # learning makes this worse
        epochs=50, callbacks=[keep, nb.callbacks.EarlyStopping(patience=2)], **fit,
    )  # fmt: skip
    best = int(np.argmin(history["val_loss"]))
    assert len(history) == best + 3 < 50  # two epochs without improvement, then stop
    assert history.stop_reason == (
        f"early stop: val_loss did not improve for 2 epochs; best was epoch {best}"
    )
    for name, value in snapshots[best].items():
        np.testing.assert_array_equal(host(backend, model.params[name]), host(backend, value))


def test_early_stopping_needs_what_it_monitors():
    with pytest.raises(ValueError, match="monitors 'val_loss'.*pass validation_data"):
        tiny_net("numpy").fit(
            X_MOONS, Y_MOONS, loss=SoftmaxCrossEntropy(), optimizer=nb.optim.SGD(),
            callbacks=[nb.callbacks.EarlyStopping()], verbose=0,
        )  # fmt: skip


class Hits(nb.metrics.Metric):
    """Accuracy under a name without "acc" in it: EarlyStopping once took "min" for it."""

    name = "hits"
    greater_is_better = True

    def batch(self, out, target, loss):
        return loss.count_correct(out, target), 1


class Unsaid(Hits):
    name = "unsaid"
    greater_is_better = None


def test_early_stopping_asks_the_metric_which_way_it_improves(backend):
    model = tiny_net(backend, hidden=8)
    fit = dict(loss=SoftmaxCrossEntropy(), optimizer=nb.optim.Adam(0.05), verbose=0)
    model.fit(X_MOONS, Y_MOONS, epochs=30, **fit)
    history = model.fit(
        X_MOONS, Y_MOONS, validation_data=(X_MOONS, 1 - Y_MOONS),  # learning makes this worse
        epochs=50, metrics=[Hits()], callbacks=[nb.callbacks.EarlyStopping("val_hits", 2)],
        log_every=1, **fit,
    )  # fmt: skip
    best = int(np.argmax(history["val_hits"]))
    assert history.stop_reason.endswith(
        f"val_hits did not improve for 2 epochs; best was epoch {best}"
    )
    told = r"cannot tell whether 'val_unsaid' improves .* give mode='max' or mode='min'"
    with pytest.raises(ValueError, match=told):
        model.fit(
            X_MOONS, Y_MOONS, validation_data=(X_MOONS, Y_MOONS), metrics=[Unsaid()],
            callbacks=[nb.callbacks.EarlyStopping("val_unsaid")], **fit,
        )  # fmt: skip
    stopper = nb.callbacks.EarlyStopping("val_unsaid", mode="max")
    model.fit(X_MOONS, Y_MOONS, validation_data=(X_MOONS, Y_MOONS), metrics=[Unsaid()],
              callbacks=[stopper], **fit)  # fmt: skip
    assert stopper.direction == "max"


def diverging_fit(backend, **kwargs):
    model = nb.Sequential([Dense(2, 16), Dense(16, 1)], backend=backend, seed=0)
    return model.fit(X_MOONS, X_MOONS[:, :1] * 50, loss=MSE(), optimizer=nb.optim.SGD(lr=5.0),
                     epochs=400, batch_size=None, verbose=0, **kwargs)  # fmt: skip


QUIET_OVERFLOW = pytest.mark.filterwarnings(
    "ignore:overflow encountered", "ignore:invalid value encountered"
)


@QUIET_OVERFLOW
def test_nan_loss_stops_training_with_advice(backend):
    with pytest.warns(
        RuntimeWarning, match=r"loss became (nan|inf).*smaller learning rate \(it is 5\)"
    ):
        history = diverging_fit(backend)
    assert len(history) < 400
    assert "training stopped" in history.stop_reason
    assert "from_logits" not in history.stop_reason  # MSE has none to set


def test_nan_advice_names_from_logits_only_to_a_loss_of_probabilities(backend):
    """The advice told every loss to compute from logits (from_logits=True): MSE has no
    such option, and cross-entropy computes from logits by default."""
    for loss, told in ((SoftmaxCrossEntropy(), False), (SoftmaxCrossEntropy(False), True)):
        ends = [nb.layers.Softmax()] if told else []
        layers = [Dense(2, 4), NaNFromStep(2), Dense(4, 2), *ends]
        model = nb.Sequential(layers, backend=backend, seed=0)
        with pytest.warns(RuntimeWarning, match="loss became nan"):
            history = model.fit(X_MOONS, Y_MOONS, loss=loss, optimizer="sgd", epochs=3,
                                batch_size=None, verbose=0)  # fmt: skip
        assert ("from_logits=True" in history.stop_reason) is told, history.stop_reason


class NaNFromStep(Tanh):
    """A Tanh whose training forward gives NaN from its ``step``-th call on."""

    def __init__(self, step: int):
        super().__init__()
        self.step, self.calls = step, 0

    def forward(self, x, training=False):
        self.calls += training
        out = super().forward(x, training)
        return out * float("nan") if self.calls >= self.step else out


def test_a_loss_gone_nan_in_the_last_epoch_is_told_between_log_points(backend):
    """Epoch 4 of 5 is no log point of log_every=3: the check at the last epoch tells."""
    model = nb.Sequential([Dense(2, 4), NaNFromStep(5), Dense(4, 2)], backend=backend, seed=0)
    with pytest.warns(RuntimeWarning, match="training loss became nan by epoch 4"):
        history = model.fit(X_MOONS, Y_MOONS, loss=SoftmaxCrossEntropy(), optimizer="sgd",
                            epochs=5, batch_size=None, log_every=3, verbose=0)  # fmt: skip
    assert history.stop_reason.startswith("training loss became nan by epoch 4")


def test_nan_advice_gives_the_rate_in_use_and_outranks_early_stopping(backend):
    """The rate in the advice is the one in use when the loss went NaN; EarlyStopping,
    which stops on the same epoch, leaves the reason to TerminateOnNaN's."""
    jump = nb.callbacks.LambdaCallback(
        lambda epoch, logs, m: setattr(m.optimizer, "lr", 1e30) if epoch == 3 else None
    )
    stopper = nb.callbacks.EarlyStopping(monitor="loss", patience=0)
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning, match=r"it is 1e\+30\)"):
        history = tiny_net(backend).fit(
            X_MOONS, X_MOONS, loss="mse", optimizer=nb.optim.SGD(0.01), epochs=40,
            batch_size=None, verbose=0,
            callbacks=[nb.callbacks.TerminateOnNaN(every=1), stopper, jump],
        )  # fmt: skip
    assert history.stop_reason.startswith("training loss became"), history.stop_reason


@QUIET_OVERFLOW
def test_nan_loss_can_raise(backend):
    with pytest.raises(FloatingPointError, match="loss became"):
        diverging_fit(backend, callbacks=[nb.callbacks.TerminateOnNaN(every=1, raise_error=True)])


@QUIET_OVERFLOW
@pytest.mark.parametrize("raise_error", [False, True])
def test_ones_own_terminate_on_nan_stands_in_for_the_default(backend, raise_error):
    """The default check ran beside one's own: its warning came twice, and before the
    error that raise_error=True asked for instead."""
    own = nb.callbacks.TerminateOnNaN(every=1, raise_error=raise_error)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            history = diverging_fit(backend, log_every=1, callbacks=[own])
        except FloatingPointError:
            history = None
    said = [w for w in caught if "training loss became" in str(w.message)]
    assert (history is None) is raise_error and len(said) == 1 - raise_error


def test_a_stop_at_a_log_point_shows_its_epoch_once(capsys):
    history = tiny_net("numpy").fit(
        X_MOONS, Y_MOONS, loss="cross_entropy", optimizer="sgd", epochs=10, log_every=2,
        callbacks=[StopAfter(4)], verbose=2,
    )  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "epoch 0",
        "epoch 2",
        "epoch 4",
        history.stop_reason,
    ]


@QUIET_OVERFLOW
def test_a_nan_stop_is_said_once_with_verbose_on(capsys):
    """Its warning says why; the stop's reason printed after the lines said it again."""
    with pytest.warns(RuntimeWarning, match="training loss became") as said:
        nb.Sequential([Dense(2, 16), Dense(16, 1)], seed=0).fit(
            X_MOONS, X_MOONS[:, :1] * 50, loss=MSE(), optimizer=nb.optim.SGD(lr=5.0),
            epochs=400, batch_size=None, verbose=2,
        )  # fmt: skip
    assert len([w for w in said if "training loss became" in str(w.message)]) == 1
    out = capsys.readouterr().out
    assert "training loss became" not in out and "TerminateOnNaN stopped the fit at epoch" in out
    with warnings.catch_warnings():  # silenced, or said once already: the line still says it
        warnings.simplefilter("ignore", RuntimeWarning)
        nb.Sequential([Dense(2, 16), Dense(16, 1)], seed=0).fit(
            X_MOONS, X_MOONS[:, :1] * 50, loss=MSE(), optimizer=nb.optim.SGD(lr=5.0),
            epochs=400, batch_size=None, verbose=2,
        )  # fmt: skip
    assert "TerminateOnNaN stopped the fit at epoch" in capsys.readouterr().out


def test_epoch_hook_runs_every_n_epochs_and_at_the_end(backend):
    seen = []
    tiny_net(backend).fit(
        X_MOONS, Y_MOONS, loss=SoftmaxCrossEntropy(), optimizer=nb.optim.SGD(), epochs=25,
        verbose=0, callbacks=[nb.callbacks.LambdaCallback(lambda e, logs, m: seen.append(e), 10)],
    )  # fmt: skip
    assert seen == [0, 10, 20, 24]


def test_epoch_hook_runs_at_the_epoch_a_callback_stopped(backend):
    seen = []
    stop_at_13 = nb.callbacks.LambdaCallback(
        lambda epoch, logs, m: setattr(m, "stop_training", epoch == 13)
    )
    tiny_net(backend).fit(
        X_MOONS, Y_MOONS, loss=SoftmaxCrossEntropy(), optimizer=nb.optim.SGD(), epochs=25,
        verbose=0,
        callbacks=[stop_at_13, nb.callbacks.LambdaCallback(lambda e, logs, m: seen.append(e), 10)],
    )  # fmt: skip
    assert seen == [0, 10, 13]


def test_a_fit_after_an_early_stopped_one_runs_its_epochs(backend):
    model = tiny_net(backend)
    fit = dict(loss="cross_entropy", batch_size=None, verbose=0)
    stopper = nb.callbacks.EarlyStopping(monitor="loss", patience=2)
    # a rate too small to move float32 weights: the loss stays put, and an equal loss is
    # no improvement
    stopped = model.fit(X_MOONS, Y_MOONS, optimizer=nb.optim.SGD(1e-30), epochs=50,
                        callbacks=[stopper], **fit)  # fmt: skip
    assert len(stopped) == 3 and stopped.stop_reason.startswith("early stop")
    assert len(model.fit(X_MOONS, Y_MOONS, optimizer=nb.optim.SGD(0.1), epochs=5, **fit)) == 5


def test_callbacks_must_be_callbacks():
    for wrong, message in [
        (lambda e, logs, m: None, "LambdaCallback"),
        (nb.callbacks.EarlyStopping, r"a class: make one"),
    ]:
        with pytest.raises(TypeError, match=message):
            tiny_net(nb.get_backend("numpy")).fit(
                X_MOONS, Y_MOONS, loss="cross_entropy", optimizer="sgd", verbose=0,
                callbacks=[wrong],
            )  # fmt: skip


def test_validation_split_logs_validation_metrics(backend):
    history = tiny_net(backend).fit(
        X_MOONS, Y_MOONS, loss=SoftmaxCrossEntropy(), optimizer=nb.optim.Adam(0.05), epochs=20,
        validation_split=0.25, verbose=0,
    )  # fmt: skip
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert history["val_accuracy"][-1] > 0.8


def test_predict_on_a_single_value_says_what_it_wants(backend):
    with pytest.raises(ValueError, match="X is a single value; give an array of samples"):
        tiny_net(backend).predict(np.float64(1.0))  # an IndexError from the first layer


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
def test_tensors_that_autograd_tracks_are_taken_detached():
    # fit met torch's "functions with out=... don't support automatic differentiation",
    # and predict's answer carried the graph on
    import torch

    X = torch.tensor(X_MOONS, dtype=torch.float32)
    fit = dict(loss="cross_entropy", optimizer="sgd", epochs=3, verbose=0)
    plain, tracked = tiny_net("torch"), tiny_net("torch")
    plain.fit(X, Y_MOONS, **fit)
    tracked.fit(X.clone().requires_grad_(True), Y_MOONS, **fit)
    for name, w in plain.params.items():
        assert torch.equal(tracked.params[name], w), name
    out = tracked.predict_proba(X.clone().requires_grad_(True))
    assert not out.requires_grad and torch.equal(out, plain.predict_proba(X))


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
def test_a_hand_loop_and_the_other_ways_in_take_tracked_tensors_detached():
    """Batches, forward, backend.asarray and set_params passed a tensor that requires
    grad on: torch then tracked every weight it met (memory growing each step), and a
    later fit refused the in-place update of "a leaf Variable that requires grad"."""
    import torch

    X, y = torch.tensor(X_MOONS, dtype=torch.float32), torch.tensor(Y_MOONS)
    loss, plain, tracked = nb.losses.SoftmaxCrossEntropy(), tiny_net("torch"), tiny_net("torch")
    for model, inputs in ((plain, X), (tracked, X.clone().requires_grad_(True))):
        opt = nb.optim.SGD(0.1)
        for xb, yb in nb.data.Batches(inputs, y, model.backend, batch_size=50, rng=model.rng):
            out = model.forward(xb)
            loss.forward(out, yb)
            model.backward(loss.backward())
            opt.step(model.params, model.grads)
    for name, w in plain.params.items():
        assert not tracked.params[name].requires_grad and torch.equal(tracked.params[name], w)
    assert not tracked.forward(X.clone().requires_grad_(True)).requires_grad
    assert not tracked.backend.asarray(X.clone().requires_grad_(True)).requires_grad
    linear = torch.nn.Linear(2, 3)  # its weights are Parameters, which require grad
    tracked.set_params({"0.W": linear.weight.T, "0.b": linear.bias})
    tracked.fit(X, Y_MOONS, loss="cross_entropy", optimizer="sgd", verbose=0)
    assert linear.weight.grad is None and not tracked.params["0.W"].requires_grad


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_model_loaded_or_fitted_in_inference_mode_trains_outside_it(tmp_path, optimizer):
    """Its weights, running state, optimizer state and flat buffers were inference
    tensors: the next fit ended in "Inplace update to inference tensor outside
    InferenceMode is not allowed"."""
    import torch

    def net():
        return nb.Sequential([Dense(2, 4), BatchNorm(4), Tanh(), Dense(4, 2)], backend="torch",
                             seed=0)  # fmt: skip

    fit = dict(loss="cross_entropy", optimizer=optimizer, verbose=0)
    inside, outside = net(), net()
    with torch.inference_mode():
        inside.fit(X_MOONS, Y_MOONS, **fit)
    outside.fit(X_MOONS, Y_MOONS, **fit)
    inside.fit(X_MOONS, Y_MOONS, **fit)
    outside.fit(X_MOONS, Y_MOONS, **fit)
    for name, w in outside.params.items():
        assert torch.equal(inside.params[name], w), name
    nb.save(outside, tmp_path / "m.h5")
    with torch.inference_mode():
        loaded = nb.load(tmp_path / "m.h5", backend="torch")
    loaded.fit(X_MOONS, Y_MOONS, **fit)
    assert not any(w.is_inference() for w in [*loaded.params.values(), *loaded.state.values()])
    with torch.inference_mode():  # a hand loop's forward and step, and a compiled fit
        by_hand, compiled = (nb.load(tmp_path / "m.h5", backend="torch") for _ in range(2))
    out = by_hand.forward(by_hand.backend.asarray(X_MOONS[:8]))  # BatchNorm's state moves
    by_hand.backward(by_hand.backend.xp.ones_like(out))
    nb.optim.SGD(0.1).step(by_hand.params, by_hand.grads)
    compiled.fit(X_MOONS, Y_MOONS, compile="aot_eager", **fit)


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
def test_bfloat16_tensors_come_to_the_host_as_float32():
    """NumPy has no bfloat16: to_numpy, and with it fit's check of X for NaN, raised
    "Got unsupported ScalarType BFloat16" instead of naming the NaN."""
    import torch

    values = torch.tensor([[1.5, -2.25], [0.0, 3.0]], dtype=torch.bfloat16)
    host = nb.to_numpy(values)
    assert host.dtype == np.float32 and host.tolist() == [[1.5, -2.25], [0.0, 3.0]]
    values[0, 1] = float("nan")
    with pytest.raises(ValueError, match=r"X holds 1 NaN or inf values \(the first at index"):
        tiny_net("torch").fit(values, [0, 1], loss="cross_entropy", optimizer="sgd", verbose=0)


def test_validation_split_speaks_of_the_data_given():
    # it cut X and y apart first: "y has 0 targets but X has 2 samples", "X is empty"
    fit = dict(loss="cross_entropy", optimizer="sgd", verbose=0)
    with pytest.raises(ValueError, match="y has 8 targets but X has 10 samples"):
        tiny_net("numpy").fit(X_MOONS[:10], Y_MOONS[:8], validation_split=0.2, **fit)
    with pytest.raises(ValueError, match="validation_split=0.95 of 10 samples leaves none"):
        tiny_net("numpy").fit(X_MOONS[:10], Y_MOONS[:10], validation_split=0.95, **fit)


def test_verbose_2_prints_a_line_per_log(capsys):
    tiny_net("numpy").fit(X_MOONS, Y_MOONS, loss=SoftmaxCrossEntropy(), optimizer=nb.optim.SGD(),
                          epochs=4, log_every=2, verbose=2)  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["epoch 0", "epoch 2", "epoch 3"]
    assert "loss" in lines[0] and "accuracy" in lines[0]


def test_verbose_shows_the_epoch_that_ended_a_stopped_fit_and_why(capsys):
    """An early stop at epoch 6 of log_every=20: the lines stopped at epoch 0, and the
    stop was not said."""
    history = tiny_net("numpy").fit(
        X_MOONS, Y_MOONS, loss="cross_entropy", optimizer="sgd", epochs=50, log_every=20,
        callbacks=[StopAfter(6)], verbose=2,
    )  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["epoch 0", "epoch 6", history.stop_reason]
    assert history.stop_reason == "StopAfter stopped the fit at epoch 6"
    assert lines[1].startswith(f"epoch 6: loss {history['loss'][6]:.4f}, accuracy ")


# --- moving between backends ------------------------------------------------------


def test_to_moves_weights_and_optimizer_state(backend):
    model = tiny_net("numpy")
    opt = nb.optim.Adam(0.01)
    fit = dict(loss=SoftmaxCrossEntropy(), epochs=3, batch_size=50, shuffle=False, verbose=0)
    model.fit(X_MOONS, Y_MOONS, optimizer=opt, **fit)
    before = {k: np.array(v) for k, v in model.params.items()}
    model.to(backend)
    assert model.backend is backend
    for name, value in model.params.items():
        backend.check_array(value)
        np.testing.assert_array_equal(host(backend, value), before[name])
    for arrays in opt.state.values():
        for value in arrays.values():
            backend.check_array(value)
    model.fit(X_MOONS, Y_MOONS, optimizer=opt, **fit)  # keeps training there
    reference = tiny_net("numpy")
    reference_opt = nb.optim.Adam(0.01)
    reference.fit(X_MOONS, Y_MOONS, optimizer=reference_opt, **fit)
    reference.fit(X_MOONS, Y_MOONS, optimizer=reference_opt, **fit)
    for name in model.params:
        np.testing.assert_allclose(
            host(backend, model.params[name]), reference.params[name], atol=1e-5
        )


# --- bad input --------------------------------------------------------------------


def test_input_from_another_backend_is_refused():
    model = tiny_net("numpy")
    with pytest.raises(nb.BackendMismatchError, match="array_api_strict.*'numpy' backend"):
        model.forward(nb.get_backend("strict").asarray(X_MOONS))
    with pytest.raises(nb.BackendMismatchError):
        model.predict(nb.get_backend("strict").asarray(X_MOONS))


@pytest.mark.parametrize("which", ["X", "y"])
def test_fit_and_evaluate_name_the_array_of_another_backend(which):
    """X or y of another library is named as such ("y is a ..."), not as "the data"."""
    model = tiny_net("numpy")
    strict = nb.get_backend("strict")
    X = strict.asarray(X_MOONS) if which == "X" else X_MOONS
    y = strict.asarray(Y_MOONS) if which == "y" else Y_MOONS
    match = f"^{which} is an array_api_strict"
    with pytest.raises(nb.BackendMismatchError, match=match):
        model.fit(X, y, loss="cross_entropy", optimizer="sgd", epochs=1, verbose=0)
    with pytest.raises(nb.BackendMismatchError, match=match):
        model.evaluate(X, y, loss="cross_entropy")


def test_input_of_another_dtype_is_refused(backend):
    model = tiny_net(backend)
    x64 = backend.xp.asarray(X_MOONS, device=backend.device)  # float64, not the model's float32
    with pytest.raises(TypeError, match="dtype float64.*model computes in float32") as refused:
        model.forward(x64)
    code = str(refused.value).split("convert it with ")[1].split(", or pass")[0]
    X = eval(code, {"model": model, "X": x64})  # noqa: S307 - the hint, as written
    assert tuple(model.forward(X).shape) == (len(X_MOONS), 2)  # it named an unbound backend


@pytest.mark.parametrize(
    "X, y, message",
    [
        (X_MOONS, Y_MOONS + 1, r"labels from 1 to 2.*2 outputs.*0..1. Labels 1..n\? Use y - 1"),
        (X_MOONS, Y_MOONS[:150], "y has 150 targets but X has 200 samples"),
        (np.where(np.arange(400).reshape(200, 2) == 33, np.nan, X_MOONS), Y_MOONS,
         r"X holds 1 NaN or inf values \(the first at index \(16, 1\)\)"),
        (X_MOONS[:0], Y_MOONS[:0], "X is empty"),
        (np.ones((200, 3)), Y_MOONS, r"takes samples of 2 features, but X has shape \(200, 3\)"),
        (np.ones((200, 1, 2)), Y_MOONS, r"Flatten images with X.reshape\(len\(X\), -1\)"),
        (np.ones((200, 2, 2)), Y_MOONS, r"\(samples of shape \(2, 2\)\)\.$"),  # 4 values, not 2
        (X_MOONS, Y_MOONS + 0.5, "integer class labels"),
    ],
)  # fmt: skip
def test_bad_training_data_gets_a_clear_error(X, y, message):
    model = tiny_net("numpy")
    with pytest.raises(ValueError, match=message):
        model.fit(X, y, loss=SoftmaxCrossEntropy(), optimizer=nb.optim.SGD(), verbose=0)


def test_bad_data_already_on_the_device_is_caught_too(backend):
    model = tiny_net(backend)
    fit = dict(loss=SoftmaxCrossEntropy(), optimizer=nb.optim.SGD(), verbose=0)
    X_nan = backend.asarray(np.where(np.arange(400).reshape(200, 2) == 33, np.nan, X_MOONS))
    with pytest.raises(
        ValueError, match=r"X holds 1 NaN or inf values \(the first at index \(16, 1\)\)"
    ):
        model.fit(X_nan, backend.asarray(Y_MOONS), **fit)
    with pytest.raises(ValueError, match="labels from 0 to 2, but the model has 2 outputs"):
        model.fit(backend.asarray(X_MOONS), backend.asarray(Y_MOONS * 2), **fit)
    huge = backend.asarray(np.full((200, 2), 3e38))  # finite, though its sum overflows
    model.fit(huge, backend.asarray(Y_MOONS), epochs=0, **fit)  # checked, and accepted


# --- what goes in and what comes out ------------------------------------------------


def test_dtype_float64_is_one_argument(backend):
    model = nb.Sequential([Dense(2, 3), "tanh", Dense(3, 2)], backend=backend, dtype="float64")
    assert model.backend.dtype_name == "float64" and model.backend.name == backend.name
    assert {str(a.dtype).rsplit(".", 1)[-1] for a in model.params.values()} == {"float64"}
    model.loss = SoftmaxCrossEntropy()  # what predict_proba's softmax comes from
    assert model.predict_proba(X_MOONS[:5]).dtype == np.float64
    with pytest.raises(ValueError, match="dtype must be 'float32' or 'float64'"):
        nb.Sequential([Dense(2, 2)], dtype="float16")


def test_lists_go_in_wherever_arrays_do(backend):
    X, y = X_MOONS[:40].tolist(), Y_MOONS[:40].tolist()
    model = tiny_net(backend)
    history = model.fit(X, y, loss="cross_entropy", optimizer="adam", epochs=2, verbose=0)
    assert len(history) == 2
    assert model.evaluate(X, y) == model.evaluate(np.array(X), np.array(y))
    labels = model.predict(X)
    assert isinstance(labels, np.ndarray) and labels.dtype == np.int64 and labels.shape == (40,)
    with pytest.raises(ValueError, match=r"X's samples differ in shape: .* X\[1\] has \(1,\)"):
        model.fit([[1.0, 2.0], [3.0]], [0, 1], loss="cross_entropy", optimizer="sgd")
    # NumPy makes one object of a generator or a set: the error spoke of strings
    for rows in ((row for row in X), iter(X), map(list, X), dict(enumerate(X)).values()):
        with pytest.raises(TypeError, match=r"X is a \w+, which NumPy cannot read as rows"):
            model.fit(rows, y, loss="cross_entropy", optimizer="sgd")
    with pytest.raises(TypeError, match=r"X is a set, which NumPy cannot read as rows"):
        model.predict({1.0, 2.0})


def test_host_in_host_out_device_in_device_out(backend):
    """As scikit-learn users expect, host data gives host NumPy; the backend's arrays
    give the backend's arrays (no copy back from a GPU)."""
    model = tiny_net(backend)
    model.fit(X_MOONS, Y_MOONS, loss="cross_entropy", optimizer="adam", epochs=2, verbose=0)
    on_device = backend.asarray(X_MOONS)
    for method in (model.predict, model.predict_proba):
        host_out, device_out = method(X_MOONS), method(on_device)
        assert isinstance(host_out, np.ndarray)
        assert isinstance(device_out, backend.array_types) and device_out.device == backend.device
        np.testing.assert_array_equal(host_out, backend.to_numpy(device_out))
    assert isinstance(model(on_device), backend.array_types)  # forward: the backend only


def test_copy_is_independent(backend):
    model = tiny_net(backend)
    twin = model.copy(dtype="float64")
    assert twin.backend.dtype_name == "float64" and model.backend.dtype_name == "float32"
    for name, value in model.params.items():
        np.testing.assert_array_equal(nb.to_numpy(twin.params[name]), nb.to_numpy(value))
    twin.fit(X_MOONS, Y_MOONS, loss="cross_entropy", optimizer="sgd", verbose=0)
    assert all(not np.array_equal(nb.to_numpy(twin.params[n]), nb.to_numpy(v))
               for n, v in model.params.items())  # fmt: skip
    assert model.optimizer is None and len(model.grads) == 0


def test_copies_of_a_seeded_model_train_alike(backend):
    """A copy takes the model's generator state: its shuffles and Dropout masks are the
    model's, so two copies trained alike end alike (and as the model would)."""
    layers = [Dense(2, 16), ReLU(), nb.layers.Dropout(0.3), Dense(16, 2)]
    model = nb.Sequential(layers, backend=backend, seed=3)
    twins = [model.copy(), model.copy()]
    for net in (model, *twins):
        net.fit(X_MOONS, Y_MOONS, loss="cross_entropy", optimizer="sgd", epochs=3,
                batch_size=16, verbose=0)  # fmt: skip
    for twin in twins:
        for name, value in model.params.items():
            np.testing.assert_array_equal(nb.to_numpy(twin.params[name]), nb.to_numpy(value))


def test_a_copy_or_a_pickle_holds_no_batch(backend):
    """What the last forward kept for backward (the batch's inputs, the conv's columns,
    the pooling's outputs) stays behind: a pickle of a trained conv net is about its
    weights' size, and a copy shares no array with the model."""
    import pickle

    rng = np.random.default_rng(0)
    X, y = rng.random((200, 1, 12, 12)), rng.integers(0, 3, 200)
    layers = [nb.layers.Conv2D(1, 4, 3), ReLU(), nb.layers.MaxPool2D(2), nb.layers.Flatten(),
              Dense(100, 3)]  # fmt: skip
    model = nb.Sequential(layers, backend=backend, seed=0)
    model.fit(X, y, loss="cross_entropy", optimizer="sgd", epochs=1, batch_size=200, verbose=0)
    weights = sum(nb.to_numpy(v).nbytes for v in model.params.values())
    assert len(pickle.dumps(model)) < 2 * weights + 30_000  # 1.2 MB with the last batch
    twin = model.copy()
    held = {id(a) for layer in model.layers for a in vars(layer).values()}
    assert not any(id(a) in held for layer in twin.layers for a in vars(layer).values()
                   if isinstance(a, backend.array_types))  # fmt: skip
    # nor its loss, which keeps the last batch's gradient for backward (a copy trained
    # in another thread took the model's), nor the list of its metrics
    assert type(twin.loss) is type(model.loss) and twin.loss is not model.loss
    assert not vars(twin.loss).keys() - vars(nb.losses.SoftmaxCrossEntropy()).keys()
    assert twin.metrics is not model.metrics and len(twin.metrics) == len(model.metrics)


def test_a_copy_takes_a_loss_of_ones_own_that_deepcopy_cannot_copy(backend):
    """A loss holding a module (self.xp = np) made copy() raise "cannot pickle 'module'
    object", and with it check_gradients of a model fitted with it: the copy's loss is
    a shallow copy, its settings shared, its last batch's arrays left behind."""

    class ModuleHoldingMSE(nb.losses.MSE):
        def __init__(self):
            super().__init__()
            self.library = np

    model = nb.Sequential([Dense(2, 1)], backend=backend, seed=0)
    y = X_MOONS[:, :1]
    model.fit(X_MOONS, y, loss=ModuleHoldingMSE(), optimizer="sgd", verbose=0)
    twin = model.copy()
    assert twin.loss is not model.loss and twin.loss.library is np
    assert twin.evaluate(X_MOONS, y) == model.evaluate(X_MOONS, y)
    # a loss that can be deep-copied is, its settings too: the copy's changes stay its own
    weighted = nb.losses.MSE()
    weighted.weights = np.ones(2)
    model.fit(X_MOONS, y, loss=weighted, optimizer="sgd", verbose=0)
    model.copy().loss.weights[0] = 99.0
    assert weighted.weights.tolist() == [1.0, 1.0]
    errors = nb.gradcheck.check_gradients(model, "mse", X_MOONS[:8], y[:8])
    assert max(errors.values()) < 1e-6


def test_a_float64_model_moved_or_copied_by_name_stays_float64(backend64):
    # a backend named without a dtype took that backend's default, float32: the copy's
    # weights were rounded, against copy's docstring
    model = tiny_net(backend64)
    weights = {k: nb.to_numpy(v).copy() for k, v in model.params.items()}
    for name in CPU_BACKEND_NAMES:
        twin = model.copy(backend=name)
        assert twin.backend.dtype_name == "float64", name
        for k, w in weights.items():
            np.testing.assert_array_equal(nb.to_numpy(twin.params[k]), w)
        assert model.copy(backend=name, dtype="float32").backend.dtype_name == "float32"
        assert model.to(name).backend.dtype_name == "float64"
        assert model.copy(backend=nb.get_backend(name)).backend.dtype_name == "float32"


# --- a loss that takes probabilities, fed raw scores ---------------------------------


def test_bce_after_a_dense_layer_is_an_error_that_says_what_to_do(backend):
    """BinaryCrossEntropy() takes probabilities; a net ending in Dense without Sigmoid
    used to train to accuracy 0.5 in silence. fit, evaluate and check_gradients refuse."""
    model = nb.Sequential([Dense(2, 8), ReLU(), Dense(8, 1)], backend=backend, seed=0)
    expected = (
        r"BinaryCrossEntropy\(reduction='mean', from_logits=False\) takes probabilities in "
        r"\[0, 1\], but the model ends in Dense\(.*\), whose outputs can be any real number: "
        r"use BinaryCrossEntropy\(from_logits=True\) .* or add a Sigmoid\(\) layer at the end"
    )
    with pytest.raises(ValueError, match=expected):
        model.fit(X_MOONS, Y_MOONS, loss=BinaryCrossEntropy(), optimizer="sgd", verbose=0)
    with pytest.raises(ValueError, match=expected):
        model.evaluate(X_MOONS, Y_MOONS, loss="bce")
    with pytest.raises(ValueError, match=expected):
        nb.gradcheck.check_gradients(model, "bce", X_MOONS[:4], Y_MOONS[:4])
    relu_last = nb.Sequential([Dense(2, 1), ReLU()], backend=backend)
    with pytest.raises(ValueError, match=r"ends in ReLU\(\), whose outputs lie in \[0, inf\]"):
        relu_last.fit(X_MOONS, Y_MOONS, loss="bce", optimizer="sgd", verbose=0)
    softmax_probs = SoftmaxCrossEntropy(from_logits=False)
    with pytest.raises(ValueError, match=r"or add a Softmax\(\) layer at the end"):
        tiny_net(backend).fit(X_MOONS, Y_MOONS, loss=softmax_probs, optimizer="sgd", verbose=0)
    fixed = model.fit(X_MOONS, Y_MOONS, loss=BinaryCrossEntropy(from_logits=True),
                      optimizer=nb.optim.Adam(0.05), epochs=60, verbose=0)  # fmt: skip
    assert fixed["accuracy"][-1] > 0.85  # not the 0.5 it got with the probabilities loss


class Doubled(nb.layers.Layer):
    """A user's layer that does not say its output range: 2x."""

    def forward(self, x, training=True):
        return 2 * x

    def backward(self, dy, input_grad=True):
        return 2 * dy


def test_a_last_layer_that_does_not_say_is_probed_once(backend):
    raw = nb.Sequential([Dense(2, 1), Doubled()], backend=backend, seed=0)
    with pytest.raises(ValueError, match=r"the model gives outputs from -\d.* to \d"):
        raw.fit(X_MOONS, Y_MOONS, loss="bce", optimizer="sgd", verbose=0)
    squashed = nb.Sequential([Dense(2, 1), Sigmoid(), Doubled(), Sigmoid()], backend=backend)
    squashed.layers[-1].output_range = None  # as if it were a user's layer too
    with nb.count_host_transfers() as transfers:
        squashed.fit(X_MOONS, Y_MOONS, loss="bce", optimizer="sgd", epochs=2, log_every=2,
                     verbose=0)  # fmt: skip
    assert transfers.count == 1 + 1 + 1  # the probe, the data check, the one log


def test_a_loss_from_logits_after_a_sigmoid_warns(backend):
    model = nb.Sequential([Dense(2, 1), Sigmoid()], backend=backend, seed=0)
    with pytest.warns(UserWarning, match=r"takes raw scores \(logits\) and applies the sigmoid"):
        model.fit(X_MOONS, Y_MOONS, loss=BinaryCrossEntropy(from_logits=True), optimizer="sgd",
                  verbose=0)  # fmt: skip


# --- what predict and accuracy give beyond one label per row -------------------------


def multilabel_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4))
    return X, (X[:, :3] > 0).astype(np.float64)


def test_multilabel_accuracy_is_the_share_of_outputs_right(backend):
    X, Y = multilabel_data()
    model = nb.Sequential([Dense(4, 16), ReLU(), Dense(16, 3)], backend=backend, seed=0)
    history = model.fit(
        X, Y, loss=BinaryCrossEntropy(from_logits=True), optimizer="adam", epochs=5, verbose=0
    )
    labels = model.predict(X)
    assert labels.shape == (120, 3) and set(np.unique(labels)) <= {0, 1}
    share = float(np.mean(labels == Y))
    assert model.evaluate(X, Y)["accuracy"] == pytest.approx(share, rel=1e-6)  # float32 sums
    assert 0 < history["accuracy"][-1] <= 1


@pytest.mark.parametrize(
    "loss, bias",
    [(BinaryCrossEntropy(from_logits=True), [1e-8]), (SoftmaxCrossEntropy(), [0.0, 1e-8])],
)
def test_predict_decides_as_the_accuracy_counts(backend, loss, bias):
    """A logit of 1e-8 is class 1 to the accuracy (above 0, the largest), but its float32
    sigmoid is 0.5 and its softmax row [0.5, 0.5]: predict said 0 from those."""
    model = nb.Sequential([Dense(2, len(bias))], backend=backend)
    xp = model.backend.xp
    model.params["0.W"] = xp.zeros_like(model.params["0.W"])
    model.params["0.b"] = model.backend.asarray(np.array(bias, dtype=np.float32))
    model.loss = loss
    ones = np.ones(4, dtype=np.int64)
    assert model.evaluate(X_MOONS[:4], ones)["accuracy"] == 1.0
    np.testing.assert_array_equal(model.predict(X_MOONS[:4]), ones)


def test_a_regression_predicts_its_outputs(backend):
    X, Y = multilabel_data()
    model = nb.Sequential([Dense(4, 8), Tanh(), Dense(8, 1)], backend=backend, seed=0)
    model.fit(X, Y[:, :1] * 3.5, loss=MSE(), optimizer="adam", epochs=2, verbose=0)
    np.testing.assert_array_equal(model.predict(X), model.predict_proba(X))
    assert model.predict(X).dtype.kind == "f"


def trained_by_hand(backend, layers, loss, epochs=20):
    """A model trained by the loop the README writes by hand: no fit, so no model.loss."""
    model = nb.Sequential(layers, backend=backend, seed=0)
    opt = nb.optim.Adam(0.05)
    for _ in range(epochs):
        for xb, yb in nb.data.Batches(X_MOONS, Y_MOONS, model.backend, 50, rng=model.rng):
            loss.forward(model.forward(xb), yb)
            model.backward(loss.backward())
            opt.step(model.params, model.grads)
    return model


@pytest.mark.parametrize("outputs", [1, 3])
def test_an_activation_put_on_after_a_logits_fit_is_warned_of_at_predict(backend, outputs):
    """Keras's deployment habit, a Sigmoid or Softmax appended after training on logits:
    predict and predict_proba squashed twice (every label 1, probabilities of 0.5 to
    0.73) without a word, where evaluate warns."""
    last, loss = (Sigmoid(), BinaryCrossEntropy(from_logits=True)) if outputs == 1 else (
        Softmax(), SoftmaxCrossEntropy())  # fmt: skip
    model = nb.Sequential([Dense(2, 8), Tanh(), Dense(8, outputs)], backend=backend, seed=0)
    model.fit(X_MOONS, Y_MOONS % outputs, loss=loss, optimizer="adam", epochs=2, verbose=0)
    model.layers.append(last)
    said = rf"takes raw scores \(logits\) .* the model already ends in {type(last).__name__}"
    for predict in (model.predict, model.predict_proba):
        with pytest.warns(UserWarning, match=said):
            predict(X_MOONS[:4])


def test_predict_proba_without_a_loss_says_to_set_it(backend, tmp_path):
    """predict_proba gave the raw logits of a model no fit trained, and predict split one
    logit at 0.5 (its boundary is 0): both now say to set model.loss, and with it set
    give probabilities and the right labels, also after save and load."""
    loss = BinaryCrossEntropy(from_logits=True)
    model = trained_by_hand(backend, [Dense(2, 8), Tanh(), Dense(8, 1)], loss)
    told = (
        r"the model has no loss to turn its outputs into probabilities \(it was not trained "
        r"by fit.*model.loss = nb.losses.BinaryCrossEntropy\(from_logits=True\).*or train it"
    )
    forwards = []
    model.forward = lambda *args, **kw: forwards.append(args)  # said before any forward
    with pytest.raises(ValueError, match="predict_proba: " + told):
        model.predict_proba(X_MOONS)
    with pytest.raises(ValueError, match="predict: " + told):
        model.predict(X_MOONS)
    assert forwards == []
    del model.forward
    model.loss = loss
    logits = host(backend, model(backend.asarray(X_MOONS)))[:, 0]
    proba = model.predict_proba(X_MOONS)[:, 0]
    np.testing.assert_allclose(proba, 1 / (1 + np.exp(-logits)), rtol=1e-5)
    labels = model.predict(X_MOONS)
    np.testing.assert_array_equal(labels, logits > 0)
    assert (labels == Y_MOONS).mean() > 0.8
    nb.save(model, tmp_path / "m.h5")
    again = nb.load(tmp_path / "m.h5", backend=backend)
    assert again.loss.config() == loss.config()
    np.testing.assert_array_equal(again.predict_proba(X_MOONS)[:, 0], proba)


def test_without_a_loss_probabilities_and_argmax_need_no_link(backend):
    """A last layer that gives [0, 1] is taken as it is; several raw outputs still have
    an argmax, though no probabilities."""
    bce = BinaryCrossEntropy()
    squashed = trained_by_hand(backend, [Dense(2, 8), Tanh(), Dense(8, 1), Sigmoid()], bce, 5)
    outputs = host(backend, squashed(backend.asarray(X_MOONS)))
    np.testing.assert_array_equal(squashed.predict_proba(X_MOONS), outputs)
    np.testing.assert_array_equal(squashed.predict(X_MOONS), outputs[:, 0] > 0.5)
    two = trained_by_hand(backend, [Dense(2, 8), Tanh(), Dense(8, 2)], SoftmaxCrossEntropy(), 5)
    scores = host(backend, two(backend.asarray(X_MOONS)))
    np.testing.assert_array_equal(two.predict(X_MOONS), scores.argmax(axis=1))
    softmax = nb.Sequential([Dense(2, 8), Tanh(), Dense(8, 2), Softmax()], backend=backend)
    outputs = host(backend, softmax(backend.asarray(X_MOONS)))
    np.testing.assert_array_equal(softmax.predict_proba(X_MOONS), outputs)
    with pytest.raises(ValueError, match=r"predict_proba: the model has no loss .* Dense,"):
        two.predict_proba(X_MOONS)


# --- fit refuses up front what would fail or go wrong later --------------------------


def test_a_last_batch_too_small_for_batchnorm_is_refused_before_any_step(backend):
    X, y = make_moons(33, random_state=0)
    model = nb.Sequential([Dense(2, 8), nb.layers.BatchNorm(8), ReLU(), Dense(8, 2)],
                          backend=backend, seed=0)  # fmt: skip
    before = {k: nb.to_numpy(v).copy() for k, v in model.params.items()}
    with pytest.raises(ValueError, match=r"last batch of each epoch would hold 1 row\(s\) \(33"):
        model.fit(X, y, loss="cross_entropy", optimizer="sgd", batch_size=32, verbose=0)
    for name, W in model.params.items():
        np.testing.assert_array_equal(nb.to_numpy(W), before[name])
    model.fit(X, y, loss="cross_entropy", optimizer="sgd", batch_size=11, verbose=0)


class PairwiseTanh(Tanh):
    """A layer of the user's own written when min_batch was a number in the class:
    the check failed with "'int' object is not callable"."""

    min_batch = 2


def test_a_layer_s_min_batch_may_still_be_a_number():
    X, y = make_moons(33, random_state=0)
    model = nb.Sequential([Dense(2, 8), PairwiseTanh(), Dense(8, 2)], seed=0)
    with pytest.raises(
        ValueError, match=r"hold 1 row\(s\).*PairwiseTanh needs batches of at least 2"
    ):
        model.fit(X, y, loss="cross_entropy", optimizer="sgd", batch_size=32, verbose=0)


def test_a_replaced_layer_s_weights_are_the_ones_model_params_names(backend, tmp_path):
    """model.params kept its index of the old layer's arrays (rebuilt only when the
    count changed): nb.save wrote the old weights, and L2 skipped an appended layer."""
    X, y = make_moons(40, random_state=0)
    model = nb.Sequential([Dense(2, 8), ReLU(), Dense(8, 2)], backend=backend, seed=0)
    fit = dict(loss="cross_entropy", optimizer="sgd", epochs=2, verbose=0)
    model.fit(X, y, **fit)
    assert len(model.params) == 4  # the index is built
    new = Dense(8, 2)
    new.build(model.backend, model.rng)
    model.layers[2] = new
    assert model.params["2.W"] is new.params["W"]  # at once, before any fit
    drawn = nb.to_numpy(new.params["W"]).copy()
    model.fit(X, y, **fit)
    assert model.params["2.W"] is new.params["W"]
    assert not np.array_equal(nb.to_numpy(new.params["W"]), drawn)  # the new one trained
    nb.save(model, tmp_path / "m.h5")
    again = nb.load(tmp_path / "m.h5", backend=backend)
    np.testing.assert_array_equal(nb.to_numpy(again.predict(X)), nb.to_numpy(model.predict(X)))
    model.layers.append(Dense(2, 2))
    model.layers[-1].build(model.backend, model.rng)
    assert model.decayed_names() == ["0.W", "2.W", "3.W"]


def test_a_replaced_last_layer_gives_the_model_its_outputs_at_once(backend):
    """The chain's shapes were worked out once, when the model was made: after
    ``model.layers[2] = Dense(8, 3)`` it still said 2 outputs, and fit refused labels 0-2."""
    X, y = make_moons(30, random_state=0)
    model = nb.Sequential([Dense(2, 8), ReLU(), Dense(8, 2)], backend=backend, seed=0)
    model.fit(X, y, loss="cross_entropy", optimizer="sgd", verbose=0)
    model.layers[2] = Dense(8, 3)
    assert (model.n_outputs, model.output_shape) == (3, (3,))
    assert "(3,)" in model.summary().splitlines()[-2]  # the last layer's line
    model.fit(X, np.arange(30) % 3, loss="cross_entropy", optimizer="sgd", verbose=0)
    assert nb.to_numpy(model.predict_proba(X)).shape == (30, 3)
    model.layers[2] = Dense(5, 3)
    with pytest.raises(ValueError, match=r"layer 1, ReLU\(\), gives 8 features but the next"):
        _ = model.output_shape


@pytest.mark.parametrize("how", ["fit", "train_step"])
def test_a_replaced_layer_starts_without_the_old_one_s_optimizer_state(backend, how):
    """Adam's moments are kept by name: a new layer at index 2 took up the moments of
    the one it replaced, as if it had trained with them."""
    X, y = make_moons(30, random_state=0)
    loss = SoftmaxCrossEntropy()

    def replaced(forget_by_hand):
        model = nb.Sequential([Dense(2, 8), ReLU(), Dense(8, 2)], backend=backend, seed=0)
        optimizer = nb.optim.Adam(0.01)
        model.fit(X, y, loss=loss, optimizer=optimizer, epochs=2, verbose=0)
        new = Dense(8, 2)
        new.build(model.backend, nb.Generator(5))
        model.layers[2] = new
        if forget_by_hand:  # what a new optimizer of the same step count would hold
            for arrays in optimizer.state.values():
                del arrays["2.W"], arrays["2.b"]
        if how == "fit":
            with pytest.raises(ValueError, match="labels"):  # refused, with another optimizer
                model.fit(X, y + 5, loss=loss, optimizer="sgd", verbose=0)
            model.fit(X, y, loss=loss, optimizer=optimizer, batch_size=None, shuffle=False,
                      verbose=0)  # fmt: skip
        else:
            xb = model.backend.asarray(X, dtype=model.backend.dtype_name)
            model.train_step(xb, model.backend.asarray(y), loss, optimizer)
        assert optimizer.state["m"]["2.W"].shape == (8, 2)  # made anew for the new layer
        return {k: nb.to_numpy(v).copy() for k, v in model.params.items()}

    got, want = replaced(False), replaced(True)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_a_layer_put_in_between_leaves_a_checkpoint_that_loads(backend, tmp_path):
    """The optimizer's state is kept by index: after an insert it named weights the
    model no longer had, and the checkpoint was refused on load."""
    X, y = make_moons(30, random_state=0)
    model = nb.Sequential([Dense(2, 8), Dense(8, 2)], backend=backend, seed=0)
    optimizer = nb.optim.Momentum(0.1)
    model.fit(X, y, loss="cross_entropy", optimizer=optimizer, verbose=0)
    model.layers.insert(1, Tanh())
    model.fit(X, y, loss="cross_entropy", optimizer=optimizer, verbose=0,
              checkpoint=tmp_path / "m.h5")  # fmt: skip
    again, loaded, _ = nb.load(tmp_path / "m.h5", backend=backend, with_optimizer=True)
    assert list(loaded.state["v"]) == ["0.W", "0.b", "2.W", "2.b"]
    np.testing.assert_array_equal(nb.to_numpy(again.predict(X)), nb.to_numpy(model.predict(X)))


def test_a_summary_shows_a_broken_chain_up_to_its_break(backend, tmp_path):
    model = nb.Sequential([Dense(2, 6), Tanh(), Dense(6, 2)], backend=backend, seed=0)
    model.layers[2] = Dense(5, 2)
    rows = model.summary().splitlines()
    assert rows[3].split()[-2:] == ["(6,)", "0"] and rows[4].split()[-2:] == ["?", "12"]
    with pytest.raises(ValueError, match="has no weights yet: it was put in after"):
        nb.save(model, tmp_path / "never.h5")
    assert not (tmp_path / "never.h5").exists()


def test_batchnorm_over_images_trains_a_last_batch_of_one_image(backend):
    """Over images the statistics are over rows and pixels: one 4x4 image has 16
    values a channel (torch's BatchNorm2d takes it); only rows of features need 2."""
    images = np.random.default_rng(0).normal(size=(33, 1, 6, 6))
    labels = np.arange(33) % 2
    layers = [nb.layers.Conv2D(1, 2, 3), nb.layers.BatchNorm(2), ReLU(),
              nb.layers.Flatten(), Dense(32, 2)]  # fmt: skip
    model = nb.Sequential(layers, backend=backend, seed=0)
    history = model.fit(images, labels, loss="cross_entropy", optimizer="sgd",
                        batch_size=32, epochs=2, verbose=0)  # fmt: skip
    assert len(history) == 2 and all(np.isfinite(history["loss"]))
    one_pixel = [nb.layers.Conv2D(1, 2, 6), nb.layers.BatchNorm(2), ReLU(),
                 nb.layers.Flatten(), Dense(2, 2)]  # fmt: skip
    with pytest.raises(ValueError, match=r"hold 1 row\(s\).*BatchNorm needs batches of at least 2"):
        nb.Sequential(one_pixel, backend=backend, seed=0).fit(
            images, labels, loss="cross_entropy", optimizer="sgd", batch_size=32, verbose=0
        )


def test_float64_values_past_float32s_range_are_refused(backend):
    X, y = make_moons(40, random_state=0)
    X[5, 0] = 1e39  # finite in float64, inf once cast
    model = nb.Sequential([Dense(2, 4), Tanh(), Dense(4, 2)], backend=backend, seed=0)
    if model.backend.dtype_name != "float32":
        pytest.skip("a float64 model holds it")
    past = r"beyond float32's range \(the first at index \(5, 0\)"
    for on_device in (True, False):  # False: batches cast one by one (data past the GPU)
        with pytest.raises(ValueError, match=past):
            model.fit(X, y, loss="cross_entropy", optimizer="sgd", verbose=0, on_device=on_device)
    for predicting in (model.predict, model.predict_proba):  # it answered, from an inf
        with pytest.raises(ValueError, match=past):
            predicting(X)
    X[5, 0] = 3.4e38  # within float32's range
    assert model.predict(X).shape == (40,)


def test_validation_data_takes_lists_and_must_be_a_pair(backend):
    X, y = make_moons(40, random_state=0)
    model = nb.Sequential([Dense(2, 4), Tanh(), Dense(4, 2)], backend=backend, seed=0)
    fit = dict(loss="cross_entropy", optimizer="sgd", verbose=0)
    history = model.fit(X, y, validation_data=[X.tolist(), y.tolist()], **fit)
    assert "val_loss" in history.history
    for bad in (X, (X, y, y)):
        with pytest.raises(ValueError, match="validation_data is a pair"):
            model.fit(X, y, validation_data=bad, **fit)


def test_fit_takes_one_callback_alone_and_checks_the_checkpoint_folder_first(tmp_path):
    X, y = make_moons(40, random_state=0)
    model = nb.Sequential([Dense(2, 4), Tanh(), Dense(4, 2)], seed=0)
    fit = dict(loss="cross_entropy", optimizer="sgd", verbose=0, epochs=3)
    seen = []
    record = nb.callbacks.LambdaCallback(lambda epoch, logs, model: seen.append(epoch))
    model.fit(X, y, callbacks=record, **fit)
    assert seen == [0, 1, 2]
    with pytest.raises(TypeError, match="callbacks is a list of callbacks"):
        model.fit(X, y, callbacks=3, **fit)
    before = nb.to_numpy(model.params["0.W"]).copy()
    with pytest.raises(FileNotFoundError, match="its folder does not exist"):
        model.fit(X, y, checkpoint=tmp_path / "no" / "run.h5", **fit)
    np.testing.assert_array_equal(nb.to_numpy(model.params["0.W"]), before)  # no epoch ran
    with pytest.raises(ValueError, match="TopKAccuracy k"):
        nb.metrics.TopKAccuracy(0)


def test_predicting_no_rows_gives_no_labels(backend):
    model = tiny_net(backend)
    model.loss = SoftmaxCrossEntropy()
    empty = np.empty((0, 2))
    assert model.predict(empty).shape == (0,)
    assert model.predict_proba(empty).shape == (0, 2)


def test_labels_in_a_column_are_told_to_be_one_dimensional(backend):
    X, y = make_moons(40, random_state=0)
    model = tiny_net(backend)
    told = r"shape \(40, 1\), read as one-hot rows .* pass them 1-D: np\.ravel\(y\)"
    with pytest.raises(ValueError, match=told):
        model.fit(X, y.reshape(-1, 1), loss="cross_entropy", optimizer="sgd", verbose=0)


# --- what predict, evaluate and fit's checks give at their edges ----------------------


def test_predict_in_batches_smaller_than_the_features_gives_every_row(backend):
    """Rows were counted along the wrong axis of X: 100 rows of 3 features in batches of 2
    came back as 3 labels."""
    X, y = make_moons(100, random_state=0)
    X = np.hstack([X, X[:, :1]])  # 3 features
    model = nb.Sequential([Dense(3, 4), Tanh(), Dense(4, 2)], backend=backend, seed=0)
    model.fit(X, y, loss="cross_entropy", optimizer="adam", verbose=0)
    np.testing.assert_array_equal(model.predict(X, batch_size=2), model.predict(X))
    np.testing.assert_allclose(model.predict_proba(X, batch_size=7), model.predict_proba(X),
                               rtol=1e-6)  # fmt: skip


def test_a_logit_of_exactly_0_is_class_0_for_predict_and_the_accuracy(backend):
    """A model of zero weights: every logit is 0, which neither side of 0 claims but
    the accuracy counts as 0; predict must say the same."""
    X, y = make_moons(20, random_state=0)
    model = nb.Sequential([Dense(2, 1, init="zeros")], backend=backend, seed=0)
    model.loss = BinaryCrossEntropy(from_logits=True)
    np.testing.assert_array_equal(model.predict(X), np.zeros(20))
    accuracy = model.evaluate(X, y.astype(float), metrics=["accuracy"])["accuracy"]
    assert accuracy == float(np.mean(y == 0))


def test_fit_takes_no_callbacks_and_evaluate_the_fit_s_metrics(backend):
    X, y = make_moons(20, random_state=0)
    model = nb.Sequential([Dense(2, 2)], backend=backend, seed=0)
    model.fit(X, y, loss="cross_entropy", optimizer="sgd", verbose=0, callbacks=None)
    Y = np.stack([X[:, 0], X[:, 1] * 2], axis=1)
    model.fit(X, Y, loss="mse", optimizer="sgd", verbose=0, metrics=["mae"])
    assert sorted(model.evaluate(X, Y)) == ["loss", "mae"]


class HardSigmoid(nb.layers.Layer):
    """clip(x / 4 + 0.5, 0, 1), with no output_range of its own: fit probes it."""

    def forward(self, x, training=False):
        self._inside = (x > -2) & (x < 2)
        return self.backend.xp.clip(x / 4 + 0.5, 0.0, 1.0)

    def backward(self, dy, input_grad=True):
        return dy * self.backend.xp.astype(self._inside, dy.dtype) / 4

    def output_shape(self, input_shape):
        return input_shape


def test_what_fit_says_of_the_last_layer_against_a_loss_of_probabilities(backend):
    """Tanh's [-1, 1] is refused before training; probed outputs that reach exactly 1.0
    are probabilities; the probe changes no running statistic; MSE warns of nothing."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 3)), rng.integers(0, 2, (64, 1)).astype(float)
    bce, fit = BinaryCrossEntropy(), dict(optimizer="sgd", verbose=0)
    tanh_end = nb.Sequential([Dense(3, 1), Tanh()], backend=backend, seed=0)
    with pytest.raises(ValueError, match=r"takes probabilities in \[0, 1\]"):
        tanh_end.fit(X, y, loss=bce, **fit)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        saturated = nb.Sequential([Dense(3, 1), HardSigmoid()], backend=backend, seed=0)
        saturated.fit(100 * X, y, loss=bce, **fit)  # outputs of exactly 0 and 1
        nb.Sequential([Dense(3, 1)], backend=backend, seed=0).fit(X, y, loss="mse", **fit)
        probed = nb.Sequential([Dense(3, 4), nb.layers.BatchNorm(4), Dense(4, 1), HardSigmoid()],
                               backend=backend, seed=0)  # fmt: skip
        probed.fit(X, y, loss=bce, epochs=0, **fit)
    assert float(backend.xp.max(backend.xp.abs(probed.state["1.running_mean"]))) == 0.0


@pytest.mark.parametrize(
    "features, length, advice",
    [
        (1, 10, "Make it a column: X.reshape(-1, 1)."),
        (4, 4, "a batch of one: X.reshape(1, -1)."),
        (4, 10, "(samples of shape ())."),
    ],  # fmt: skip
)
def test_one_dimensional_X_gets_the_advice_that_fits_its_length(features, length, advice):
    """10 values for a model of 4 features are neither a column nor one sample."""
    with pytest.raises(ValueError) as refused:
        nb.Sequential([Dense(features, 1)]).predict(np.zeros(length))
    assert str(refused.value).endswith(advice)


class Projection(nb.layers.Layer):
    """A fixed random projection drawn in a build that does not call super().build()."""

    builds = 0

    def build(self, backend, rng):
        Projection.builds += 1
        self._P = rng.normal((2, 2), backend=backend)

    def forward(self, x, training=False):
        return x @ self._P

    def backward(self, dy, input_grad=True):
        return dy @ self._P.T


def test_a_layer_whose_build_skips_super_is_built_once(backend):
    """Looked unbuilt (no backend) to the check for new layers, it was built again,
    with new draws, at every fit and train_step."""
    Projection.builds = 0
    model = nb.Sequential([Projection(), Dense(2, 2)], backend=backend, seed=0)
    drawn = host(backend, model.layers[0]._P).copy()
    X, y = make_moons(20, random_state=0)
    model.fit(X, y, loss="cross_entropy", optimizer="sgd", verbose=0)
    model.train_step(model.backend.asarray(X, dtype=model.backend.dtype_name),
                     model.backend.asarray(y), SoftmaxCrossEntropy(), nb.optim.SGD())  # fmt: skip
    assert Projection.builds == 1
    np.testing.assert_array_equal(host(backend, model.layers[0]._P), drawn)


def test_a_new_layer_is_built_before_fit_probes_the_outputs(backend):
    """A layer of unknown output range last: fit's probe ran the new, unbuilt layer."""
    X, y = make_moons(20, random_state=0)
    model = nb.Sequential([Dense(2, 4), Tanh(), Dense(4, 1), HardSigmoid()], backend=backend)
    model.layers[2] = Dense(4, 1)
    model.fit(X, y.astype(float), loss=BinaryCrossEntropy(), optimizer="sgd", verbose=0)
    assert model.params["2.W"].shape == (4, 1)
