"""An optimizer's state: copies on loading, shapes against the weights, and which
model the state belongs to."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import nnbackend as nb
from nnbackend.layers import Dense

RNG = np.random.default_rng(0)
X, LABELS = RNG.normal(size=(64, 6)), RNG.integers(0, 3, 64)
FIT = dict(loss="cross_entropy", batch_size=16, verbose=0)


def net(backend, outputs=3):
    return nb.Sequential([Dense(6, 8), "tanh", Dense(8, outputs)], backend=backend, seed=1)


def host(opt):
    return {s: {n: nb.to_numpy(a).copy() for n, a in opt.state[s].items()} for s in opt.slots}


@pytest.mark.parametrize("fused", [True, False])
def test_a_loaded_state_is_a_copy(backend64, fused):
    """Training the optimizer that loaded a state leaves the one it came from as it was
    (weight by weight, updates are in place; a flat step lays the state out anew)."""
    model = net(backend64)
    first = nb.optim.Adam(0.01)
    model.fit(X, LABELS, optimizer=first, **FIT)
    before = host(first)
    second = nb.optim.Adam(0.01)
    second.load_state_dict(first.state_dict())
    loaded = host(second)
    with nb.backend.fused(fused):
        model.copy().fit(X, LABELS, optimizer=second, **FIT)
    after = host(first)
    for slot in before:
        for name in before[slot]:
            assert np.array_equal(loaded[slot][name], before[slot][name])
            assert np.array_equal(after[slot][name], before[slot][name])
            assert not np.array_equal(nb.to_numpy(second.state[slot][name]), before[slot][name])


def test_state_of_another_kind_with_the_same_slot_names_is_refused(backend):
    """AdaGrad's h is a running sum, RMSProp's an average: the names matched, so one
    loaded into the other and trained on without a word."""
    model, adagrad = net(backend), nb.optim.AdaGrad(0.01)
    model.fit(X, LABELS, optimizer=adagrad, **FIT)
    with pytest.raises(ValueError, match="the state is AdaGrad's; RMSProp cannot take it"):
        nb.optim.RMSProp(0.01).load_state_dict(adagrad.state_dict())
    nb.optim.AdaGrad(0.01).load_state_dict(adagrad.state_dict())  # its own kind takes it


def test_an_optimizer_given_back_its_saved_state_goes_on_from_it(backend):
    """Going back to a saved point with the same optimizer object (set_params and
    load_state_dict, as a search over rates might) trains as a fresh optimizer given
    that state: the flat step must see that its state buffers were replaced."""
    fit = dict(FIT, epochs=1, seed=0)
    model, optimizer = net(backend), nb.optim.Adam(0.01)
    model.fit(X, LABELS, optimizer=optimizer, **fit)
    weights, state = model.copy_params(), copy.deepcopy(optimizer.state_dict())
    model.fit(X, LABELS, optimizer=optimizer, **fit)  # on past the saved point
    model.set_params(weights)
    optimizer.load_state_dict(state)
    model.fit(X, LABELS, optimizer=optimizer, **fit)
    fresh, fresh_optimizer = net(backend), nb.optim.Adam(0.01)
    fresh.set_params(weights)
    fresh_optimizer.load_state_dict(state)
    fresh.fit(X, LABELS, optimizer=fresh_optimizer, **fit)
    for name, W in fresh.params.items():
        np.testing.assert_array_equal(nb.to_numpy(model.params[name]), nb.to_numpy(W), name)


@pytest.mark.parametrize("fused", [True, False])
def test_a_float64_state_loaded_for_a_float32_model_takes_its_dtype(backend, fused):
    """The state was moved only where its library differed: strict then failed with
    float32 weights minus float64 moments, and the other backends kept float64 state
    on one path and made it float32 on the flat one."""
    wide = nb.Sequential(
        [Dense(6, 8), "tanh", Dense(8, 3)], backend=backend.name, dtype="float64", seed=1
    )
    first = nb.optim.Adam(0.01)
    wide.fit(X, LABELS, optimizer=first, **FIT)
    second = nb.optim.Adam(0.01)
    second.load_state_dict(first.state_dict())
    narrow = wide.copy(dtype="float32")
    with nb.backend.fused(fused):
        narrow.fit(X, LABELS, optimizer=second, **FIT)
    for slot in second.slots:
        for name, a in second.state[slot].items():
            assert a.dtype == narrow.backend.xp.float32, (slot, name)


@pytest.mark.parametrize("flat", [True, False])
def test_state_of_a_weight_of_another_shape_is_refused(backend64, flat):
    """An optimizer stepped for one model, then for one whose "2.W" has another shape,
    outside fit: one error naming the weight and both shapes, flat step or not."""
    opt = nb.optim.Adam(0.01)
    for outputs in (1, 3):
        model = net(backend64, outputs)
        step = model.step_function(nb.losses.get("mse"), opt, flat=flat)
        targets = backend64.asarray(np.zeros((64, outputs)))
        if outputs == 1:
            step(backend64.asarray(X), targets)
            continue
        with pytest.raises(ValueError, match=r"Adam holds state 'm' of weight '2.W' with "
                           r"shape \(8, 1\), but the weight has shape \(8, 3\): this "
                           r"optimizer's state is another model's. Give each model an "
                           r"optimizer of its own \(a new nb.optim.Adam"):  # fmt: skip
            step(backend64.asarray(X), targets)


@pytest.mark.parametrize("same_shapes", [True, False])
def test_fit_refuses_an_optimizer_that_trained_another_model(backend, same_shapes):
    """Moments and step count kept for one model are not silently another's, even where
    every shape agrees, and even once the first model is gone."""
    opt = nb.optim.Adam(0.01)
    net(backend).fit(X, LABELS, optimizer=opt, **FIT)  # the model is dropped at once
    other = net(backend, 3 if same_shapes else 4)
    with pytest.raises(ValueError, match="has taken 4 steps for another model.*new nb.optim"):
        other.fit(X, LABELS, optimizer=opt, **FIT)
    assert opt.iterations == 4


def test_plain_sgd_at_a_fixed_rate_may_train_one_model_after_another(backend):
    opt = nb.optim.SGD(0.1)  # no state and no schedule: nothing to inherit
    for _ in range(3):
        net(backend).fit(X, LABELS, optimizer=opt, **FIT)
    assert opt.iterations == 12
    scheduled = nb.optim.SGD(nb.optim.ExponentialDecay(0.1, 0.5, 10))
    net(backend).fit(X, LABELS, optimizer=scheduled, **FIT)
    with pytest.raises(ValueError, match="has taken 4 steps for another model"):
        net(backend).fit(X, LABELS, optimizer=scheduled, **FIT)  # its place in the decay


def test_fits_of_one_model_go_on_and_a_copy_of_the_state_may_move(backend):
    """The same model goes on with its optimizer; a loaded state, or a copied
    optimizer, belongs to the next model that fits."""
    model, opt = net(backend), nb.optim.Adam(0.01)
    model.fit(X, LABELS, optimizer=opt, **FIT)
    model.fit(X, LABELS, optimizer=opt, **FIT)
    assert opt.iterations == 8
    loaded = nb.optim.Adam(0.01)
    loaded.load_state_dict(opt.state_dict())
    model.copy().fit(X, LABELS, optimizer=loaded, **FIT)
    copied = pickle.loads(pickle.dumps(opt))
    model.copy().fit(X, LABELS, optimizer=copied, **FIT)
    assert loaded.iterations == copied.iterations == 12


FUNCTION = r"is a plain function, which a checkpoint cannot hold: use a built-in schedule"


def test_a_learning_rate_function_cannot_be_saved(tmp_path):
    """nb.save says why (it said "Object of type function is not JSON serializable"),
    and fit with a checkpoint says so before its first step, not after an epoch."""
    model, opt = net("numpy"), nb.optim.SGD(lambda t: 0.1 / (1 + t))
    with pytest.raises(TypeError, match=FUNCTION):
        nb.save(model, tmp_path / "saved.h5", optimizer=opt)
    before = {k: np.array(v) for k, v in model.params.items()}
    saver = nb.callbacks.ModelCheckpoint(tmp_path / "ckpt.h5")
    for options in ({"checkpoint": tmp_path / "ckpt.h5"}, {"callbacks": [saver]}):
        with pytest.raises(TypeError, match=FUNCTION):
            model.fit(X, LABELS, optimizer=opt, epochs=2, **options, **FIT)
    assert opt.iterations == 0 and not list(tmp_path.iterdir())
    for k, v in model.params.items():
        np.testing.assert_array_equal(v, before[k])
    model.fit(X, LABELS, optimizer=opt, **FIT)  # without a checkpoint, as before
    assert opt.iterations == 4


@pytest.mark.parametrize("target", ["float64", "torch", "strict:device2"])
def test_a_hand_loop_s_state_follows_a_model_moved_without_it(backend, target):
    """model.to(...) without optimizer= left Adam's moments behind: float32 beside
    float64 weights (strict refused to add them), arrays of the old library, or of the
    old device."""
    if target == "torch":
        pytest.importorskip("torch")
    if target.startswith("strict") and backend.name != "strict":
        pytest.skip("a move between array-api-strict's devices")
    where, dtype = (backend, "float64") if target == "float64" else (target, None)

    def loop(move_optimizer: bool):
        model, opt = net(backend), nb.optim.Adam(0.01)
        loss = nb.losses.SoftmaxCrossEntropy()
        for epoch in range(2):
            if epoch == 1:
                model.to(where, dtype, optimizer=opt if move_optimizer else None)
            for xb, yb in nb.data.Batches(X, LABELS, model.backend, batch_size=16, rng=model.rng):
                loss.forward(model.forward(xb), yb)
                model.backward(loss.backward())
                opt.step(model.params, model.grads)
        return model, opt

    moved, moved_opt = loop(move_optimizer=True)
    left, left_opt = loop(move_optimizer=False)
    for name, w in moved.params.items():
        np.testing.assert_array_equal(nb.to_numpy(left.params[name]), nb.to_numpy(w))
    state = left_opt.state["m"]["0.W"]
    assert nb.backend.backend_of(state) == left.backend and state.dtype == left.backend.dtype


def test_an_optimizer_moved_by_name_is_told_to_move_with_its_model():
    """optimizer.to("strict") raised AttributeError: 'str' object has no attribute
    'asarray'."""
    optimizer = nb.optim.Adam()
    with pytest.raises(TypeError, match=r"takes a Backend, not 'strict': model\.to\('strict', "):
        optimizer.to("strict")
    assert optimizer.to(nb.get_backend("strict")) is optimizer


def test_save_refuses_the_state_of_another_model_s_optimizer(tmp_path):
    """fit refused an optimizer that had stepped for another model; nb.save wrote its
    state as this model's, and the load handed fit an optimizer it then took."""
    X, y = nb.datasets.make_moons(64, noise=0.2, seed=0)
    first, second = (nb.Sequential([nb.layers.Dense(2, 4), "tanh", nb.layers.Dense(4, 2)],
                                   seed=seed) for seed in (0, 1))  # fmt: skip
    opt = nb.optim.Adam(0.01)
    first.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"has taken 2 steps for another model"):
        nb.save(second, tmp_path / "b.h5", optimizer=opt)
    assert not (tmp_path / "b.h5").exists()
    nb.save(first, tmp_path / "a.h5", optimizer=opt)  # its own: saved
