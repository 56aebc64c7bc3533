"""Edges of Sequential, its flat buffer, prediction and the schedules that a mutation
run of model.py, flat.py, prediction.py and schedules.py found no test holding: each
test fails under a mutant that the rest of the suite let pass."""

from __future__ import annotations

import re

import numpy as np
import pytest

import nnbackend as nb
from nnbackend.flat import FlatArrays
from nnbackend.layers import Conv2D, Dense, Dropout

X = np.random.default_rng(0).normal(size=(16, 3))
Y = (X[:, 0] > 0).astype(np.int64)


def host(a) -> np.ndarray:
    return nb.to_numpy(a)


def test_the_model_says_its_inputs_and_outputs_where_a_dense_layer_fixes_them():
    dense = nb.Sequential([Dense(3, 4), "relu", Dense(4, 2)], seed=0)
    assert (dense.n_inputs, dense.n_outputs) == (3, 2)
    conv = nb.Sequential([Conv2D(1, 2, 3)], input_shape=(1, 5, 5), seed=0)
    assert (conv.n_inputs, conv.n_outputs) == (None, None)  # images: no one width
    activation = nb.Sequential(["relu"], seed=0)  # takes any width: no shape at all
    assert (activation.n_inputs, activation.n_outputs) == (None, None)


def test_forward_trains_unless_told_not_to(backend):
    model = nb.Sequential([Dense(4, 4), Dropout(0.5)], backend=backend, seed=0)
    x = backend.asarray(np.ones((8, 4)))
    assert (host(model.forward(x)) == 0).any()  # Dropout drops, by default
    assert not (host(model.forward(x, training=False)) == 0).any()


def test_backward_gives_the_inputs_gradient(backend64):
    """dL/dx of L = sum(out), against central differences; fit asks for none."""
    model = nb.Sequential([Dense(3, 4), "tanh", Dense(4, 2)], backend=backend64, seed=0)
    x = X[:5]
    out = model.forward(backend64.asarray(x))
    dx = host(model.backward(backend64.xp.ones_like(out)))
    h, numerical = 1e-6, np.zeros_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = h
        up, down = (host(model(backend64.asarray(x + s))).sum() for s in (step, -step))
        numerical[index] = (up - down) / (2 * h)
    np.testing.assert_allclose(dx, numerical, atol=1e-8)


@pytest.mark.parametrize("shape", [(5, 1), (2,), (1, 2), (5, 2, 1)])
def test_backward_refuses_a_dy_not_of_the_outputs_shape(backend, shape):
    """A (5, 1), (2,) or (1, 2) dy for (5, 2) outputs broadcast through the layers into
    wrong gradients, with no error; the refusal comes before any gradient is written."""
    model = nb.Sequential([Dense(3, 4), "sigmoid", Dense(4, 2)], backend=backend, seed=0)
    out = model.forward(backend.asarray(X[:5]))
    model.backward(backend.xp.ones_like(out))
    before = {name: host(g).copy() for name, g in model.grads.items()}
    with pytest.raises(
        ValueError, match=rf"output, \(5, 2\), but dy has shape {re.escape(str(shape))}"
    ):
        model.backward(backend.asarray(np.ones(shape)))
    for name, g in model.grads.items():
        np.testing.assert_array_equal(host(g), before[name])


def test_train_step_checks_its_batch_and_builds_a_put_in_layer(backend):
    loss, opt = nb.losses.SoftmaxCrossEntropy(), nb.optim.SGD(0.1)
    model = nb.Sequential([Dense(3, 2)], backend=backend, seed=0)
    wrong = backend.with_dtype("float64").asarray(X)  # a float32 model's batch in float64
    with pytest.raises(TypeError, match="float64"):
        model.train_step(wrong, backend.asarray(Y), loss, opt)
    model.layers[0] = Dense(3, 2)
    model.train_step(backend.asarray(X), backend.asarray(Y), loss, opt)
    assert sorted(model.params) == ["0.W", "0.b"]


def test_a_move_leaves_the_old_backends_gradients_behind():
    model = nb.Sequential([Dense(3, 2)], seed=0)
    out = model.forward(model.backend.asarray(X))
    model.backward(model.backend.xp.ones_like(out))
    assert len(model.grads) == 2
    model.to("strict")
    assert len(model.grads) == 0


def test_from_config_builds_and_refuses_what_is_no_sequential():
    config = nb.Sequential([Dense(3, 2)], seed=0).config()
    assert nb.Sequential.from_config(config).count_params() == 8
    with pytest.raises(ValueError):
        nb.Sequential.from_config({**config, "type": "Other"})
    with pytest.raises(ValueError):
        nb.Sequential.from_config({"type": "Sequential", "layers": None})


def test_flat_arrays_keep_the_spare_room_after_the_buffer():
    flat = FlatArrays(np, {"a": (2, 3)}, np.float32, "cpu", spare=5)
    assert (flat.buffer.shape[0], flat.spare.shape[0], flat.whole.shape[0]) == (6, 5, 11)


def test_weights_of_two_dtypes_keep_theirs_through_a_fit():
    """The flat buffer, of one dtype, is not laid over weights of two."""
    model = nb.Sequential([Dense(3, 4), "tanh", Dense(4, 2)], seed=0)
    model.layers[2].params["b"] = np.zeros(2, dtype=np.float64)
    model.fit(X, Y, loss="cross_entropy", optimizer="sgd", epochs=1, verbose=0)
    assert {name: str(a.dtype) for name, a in model.params.items()} == {
        "0.W": "float32", "0.b": "float32", "2.W": "float32", "2.b": "float64",
    }  # fmt: skip


def test_the_next_fit_keeps_the_flat_buffer_and_its_views(backend):
    model = nb.Sequential([Dense(3, 4), "tanh", Dense(4, 2)], backend=backend, seed=0)
    fit = dict(loss="cross_entropy", optimizer=nb.optim.Adam(0.01), epochs=1, verbose=0)
    model.fit(X, Y, **fit)
    weight = model.params["0.W"]
    model.fit(X, Y, **fit)
    assert model.params["0.W"] is weight  # bound once: not laid out again


def test_a_probability_of_one_half_is_not_above_the_threshold(backend):
    model = nb.Sequential([Dense(3, 1), "sigmoid"], backend=backend, seed=0)
    model.params["0.W"] = backend.xp.zeros((3, 1), dtype=backend.dtype)
    model.params["0.b"] = backend.xp.zeros((1,), dtype=backend.dtype)
    assert host(model.predict(X)).tolist() == [0] * len(X)


def test_predictions_run_in_evaluation_mode_and_in_batches(backend):
    model = nb.Sequential([Dense(3, 8), Dropout(0.5), Dense(8, 2)], backend=backend, seed=0)
    model.loss = nb.losses.SoftmaxCrossEntropy()
    logits = host(model(backend.asarray(X)))
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(host(model.predict_proba(X)), softmax, rtol=1e-5)
    whole = host(model.predict(X[:6]))
    np.testing.assert_array_equal(host(model.predict(X[:6], batch_size=4)), whole)
    assert whole.shape == (6,)


def test_the_schedules_defaults():
    assert nb.optim.StepDecay(1.0, 10)(10) == pytest.approx(0.1)  # factor 0.1
    assert nb.optim.ExponentialDecay(1.0, 0.5)(1) == pytest.approx(0.5)  # every step
    assert nb.optim.InverseTimeDecay(1.0, 1.0)(1) == pytest.approx(0.5)  # every step
    assert nb.optim.InverseTimeDecay(0.1, decay_rate=0)(1000) == 0.1  # no decay: taken


def test_predict_in_batches_that_do_not_divide_the_backends_own_rows(backend):
    """The last batch's slice ran past the end, which array-api-strict refuses: host X
    and batch sizes that divide the rows worked, strict's own X at batch_size=4 did not."""
    X, y = nb.datasets.make_moons(10, noise=0.2, seed=0)
    model = nb.Sequential([Dense(2, 4), "tanh", Dense(4, 2)], backend=backend, seed=0)
    model.fit(X, y, loss="cross_entropy", optimizer="adam", epochs=1, verbose=0)
    rows = backend.asarray(X)
    whole = nb.to_numpy(model.predict_proba(rows))
    in_fours = nb.to_numpy(model.predict_proba(rows, batch_size=4))
    np.testing.assert_allclose(in_fours, whole, rtol=10 * np.finfo(whole.dtype).eps)
    labels = nb.to_numpy(model.predict(rows, batch_size=4))
    np.testing.assert_array_equal(labels, nb.to_numpy(model.predict(rows)))


# --- loops written by hand ------------------------------------------------------------


def hand_batch(backend):
    return backend.asarray(X[:8]), backend.asarray(Y[:8])


def test_train_step_refuses_an_optimizer_that_stepped_another_model(backend):
    """train_step never asked whose the optimizer was (fit and step do): a second model
    went on with the first's Adam step count, its first step 0.074 where a fresh Adam's
    is 0.1, and a hand step on a third model took the first's moments by name."""
    xb, yb = hand_batch(backend)
    a, b, c = (nb.Sequential([Dense(3, 2)], backend=backend, seed=s) for s in (0, 1, 2))
    loss, opt = nb.losses.SoftmaxCrossEntropy(), nb.optim.Adam(0.1)
    a.train_step(xb, yb, loss, opt)
    with pytest.raises(ValueError, match=r"has taken 1 steps for another model"):
        b.train_step(xb, yb, loss, opt)
    loss.forward(c.forward(xb, training=True), yb)
    c.backward(loss.backward())
    with pytest.raises(ValueError, match=r"has taken 1 steps for another model"):
        opt.step(c.params, c.grads)


def test_a_step_given_the_gradients_first_is_refused_and_counts_nothing(backend):
    """opt.step(model.grads, model.params) "updated" the gradients from the weights: a
    hundred steps, and the loss never moved."""
    xb, yb = hand_batch(backend)
    model = nb.Sequential([Dense(3, 2)], backend=backend, seed=0)
    loss, opt = nb.losses.SoftmaxCrossEntropy(), nb.optim.SGD(0.1)
    loss.forward(model.forward(xb, training=True), yb)
    model.backward(loss.backward())
    with pytest.raises(TypeError, match=r"takes the weights first: opt.step\(model.params, model"):
        opt.step(model.grads, model.params)
    assert opt.iterations == 0


def test_train_step_takes_a_losss_name_and_a_number_for_l2_as_fit_does(backend):
    """A loss's name was "'str' object has no attribute 'forward'", l2=0.01 "'float'
    object has no attribute 'penalty'"; the step equals fit's."""
    xb, yb = backend.asarray(X[:8], dtype="float64"), backend.asarray(Y[:8])
    by_hand = nb.Sequential([Dense(3, 2)], backend=backend, seed=0, dtype="float64")
    by_fit = nb.Sequential([Dense(3, 2)], backend=backend, seed=0, dtype="float64")
    by_hand.train_step(xb, yb, "cross_entropy", nb.optim.SGD(0.1), l2=0.01)
    by_fit.fit(X[:8], Y[:8], loss="cross_entropy", optimizer=nb.optim.SGD(0.1), l2=0.01,
               batch_size=None, verbose=0)  # fmt: skip
    np.testing.assert_allclose(host(by_hand.params["0.W"]), host(by_fit.params["0.W"]), rtol=1e-12)
    with pytest.raises(TypeError, match=r"an optimizer made once, before the loop: opt = nb.optim"):
        by_hand.train_step(xb, yb, "cross_entropy", "sgd")


def test_the_move_hint_for_a_list_runs_and_a_gradient_of_none_is_told_how_to_skip(backend):
    """A list was told nb.to_numpy(x), which refuses lists; model.grads[name] = None (to
    freeze a weight, as in torch) was told to "move it" to the backend."""
    model = nb.Sequential([Dense(2, 2)], backend=backend, seed=0)
    x = [[0.5, -0.5], [1.0, 2.0]]
    with pytest.raises(nb.backend.BackendMismatchError, match="is a builtins.list") as told:
        model.forward(x)
    hint = re.search(r"e\.g\. (.+?), or pass", str(told.value))[1]
    assert model.forward(eval(hint, {"nb": nb, "x": x})).shape == (2, 2)
    xb, yb = backend.asarray(np.asarray(x)), backend.asarray(np.array([0, 1]))
    model.train_step(xb, yb, "cross_entropy", nb.optim.SGD(0.1))
    with pytest.raises(TypeError, match=r"cannot be None; to leave 0.W alone") as told:
        model.grads["0.W"] = None
    before = host(model.params["0.W"]).copy()
    rest = eval(re.search(r"opt.step\(model.params, (.+)\)$", str(told.value))[1], {"model": model})
    nb.optim.SGD(0.1).step(model.params, rest)
    np.testing.assert_array_equal(host(model.params["0.W"]), before)


def test_a_backward_after_an_evaluate_with_the_same_loss_says_so(backend):
    xb, yb = hand_batch(backend)
    model = nb.Sequential([Dense(3, 2)], backend=backend, seed=0)
    loss = nb.losses.SoftmaxCrossEntropy()
    loss.forward(model.forward(xb, training=True), yb)
    model.evaluate(X[:8], Y[:8], loss=loss)
    with pytest.raises(AttributeError, match="an evaluate with this loss between them"):
        model.backward(loss.backward())


def test_an_optimizer_restored_into_a_new_model_trains_it_by_hand(tmp_path):
    """nb.restore loaded the state for the new model but left the optimizer the old
    one's: train_step was refused, with a hint to do what restore had just done (and
    before that refusal, the restored state was dropped as another model's)."""
    xb, yb = X[:8], Y[:8]
    old, opt = nb.Sequential([Dense(3, 2)], seed=0), nb.optim.Adam(0.01)
    old.train_step(xb.astype(np.float32), yb, "cross_entropy", opt)
    path = nb.save(old, tmp_path / "c.h5", optimizer=opt, epoch=0)
    again, again_opt, _ = nb.load(path, with_optimizer=True)
    again.train_step(xb.astype(np.float32), yb, "cross_entropy", again_opt)
    new = nb.Sequential([Dense(3, 2)], seed=1)
    nb.restore(new, path, opt)
    new.train_step(xb.astype(np.float32), yb, "cross_entropy", opt)
    for name in again.params:
        np.testing.assert_array_equal(host(new.params[name]), host(again.params[name]))


def test_a_refused_train_step_leaves_the_optimizers_state_alone():
    """The refusal came after the state was cast to the refused model's dtype: a float64
    run's Adam came back rounded to float32."""
    a = nb.Sequential([Dense(3, 2)], seed=0, dtype="float64")
    b = nb.Sequential([Dense(3, 2)], seed=1)
    opt = nb.optim.Adam(0.01)
    a.train_step(X[:8], Y[:8], "cross_entropy", opt)
    before = {name: host(v).copy() for name, v in opt.state["v"].items()}
    with pytest.raises(ValueError, match="another model"):
        b.train_step(X[:8].astype(np.float32), Y[:8], "cross_entropy", opt)
    for name, v in opt.state["v"].items():
        assert v.dtype == np.float64 and np.array_equal(host(v), before[name])


@pytest.mark.parametrize("given", [None, nb.optim.Adam, "adam"])
def test_train_steps_optimizer_hint_runs_as_written(given):
    model = nb.Sequential([Dense(3, 2)], seed=0)
    with pytest.raises(TypeError, match="made once, before the loop") as info:
        model.train_step(X[:8].astype(np.float32), Y[:8], "cross_entropy", given)
    made = eval(re.search(r"opt = (.+?), say", str(info.value))[1], {"nb": nb})
    assert isinstance(made, nb.optim.Optimizer)


@pytest.mark.parametrize("l2", [True, "0.01", nb.losses.L2])
def test_train_step_refuses_an_l2_that_is_no_number_before_the_step(l2):
    """A bool, a string or the class went through to a bare AttributeError or TypeError
    after the forward and backward had run."""
    model = nb.Sequential([Dense(3, 2)], seed=0)
    with pytest.raises(TypeError, match=r"l2 is a number .* or an nb.losses.L2, not"):
        model.train_step(X[:8].astype(np.float32), Y[:8], "cross_entropy", nb.optim.SGD(0.1), l2=l2)


def test_a_step_given_the_weights_for_gradients_is_refused():
    """opt.step(model.params, model.params) (a typo) would do W -= lr * W in silence."""
    model = nb.Sequential([Dense(3, 2)], seed=0)
    before = host(model.params["0.W"]).copy()
    with pytest.raises(TypeError, match="takes the weights first"):
        nb.optim.SGD(0.1).step(model.params, model.params)
    np.testing.assert_array_equal(host(model.params["0.W"]), before)


def test_train_steps_hint_makes_the_optimizer_a_class_or_a_config_names():
    """A class was told nb.optim.Adam(0.01), another algorithm; only a name or a config,
    made at each step, is told it would keep no state."""
    model = nb.Sequential([Dense(3, 2)], seed=0)
    xb, yb = X[:8].astype(np.float32), Y[:8]
    cases = ((nb.optim.SGD, nb.optim.SGD), ({"type": "rmsprop", "lr": 0.1}, nb.optim.RMSProp))
    for given, kind in cases:
        with pytest.raises(TypeError, match="made once, before the loop") as info:
            model.train_step(xb, yb, "cross_entropy", given)
        assert type(eval(re.search(r"opt = (.+?), say", str(info.value))[1], {"nb": nb})) is kind
        assert ("made at each step" in str(info.value)) is isinstance(given, dict)


def test_none_given_as_a_weight_or_an_input_is_called_none():
    model = nb.Sequential([Dense(3, 2)], seed=0)
    with pytest.raises(nb.backend.BackendMismatchError, match=r"^0.W is None, not an array$"):
        model.params["0.W"] = None
    with pytest.raises(nb.backend.BackendMismatchError, match=r"is None, not an array$"):
        model.forward(None)


def test_train_steps_hint_for_a_class_needing_arguments_is_a_call_that_works():
    from nnbackend.fit_options import step_arguments

    class Mine(nb.optim.SGD):
        def __init__(self, lr, decay):
            super().__init__(lr)

    for kind, told in ((Mine, "opt = Mine(...)"), (nb.optim.Optimizer, "nb.optim.Adam(0.01)")):
        with pytest.raises(TypeError, match=re.escape(told)):
            step_arguments("mse", kind, None)


def test_evaluate_given_the_fit_s_loss_keeps_the_fit_s_metrics():
    """The same loss by name (or a new object) dropped the fit's metrics for the
    default ones: none for a regression, top_2_accuracy lost for a classifier."""
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(50, 3)), rng.normal(size=(50, 2))
    model = nb.Sequential([Dense(3, 2)], seed=0)
    model.fit(X, Y, loss="mse", optimizer="sgd", metrics=["mae"], verbose=0)
    assert model.evaluate(X, Y, loss="mse") == model.evaluate(X, Y)
    assert set(model.evaluate(X, Y, loss=nb.losses.MSE())) == {"loss", "mae"}
    labels = np.arange(50) % 3
    classifier = nb.Sequential([Dense(3, 3)], seed=0)
    classifier.fit(X, labels, loss="cross_entropy", optimizer="sgd", verbose=0,
                   metrics=["accuracy", nb.metrics.TopKAccuracy(2)])  # fmt: skip
    assert set(classifier.evaluate(X, labels, loss="cross_entropy")) == {
        "loss",
        "accuracy",
        "top_2_accuracy",
    }
    quiet = nb.Sequential([Dense(3, 3)], seed=0)
    quiet.fit(X, labels, loss="cross_entropy", optimizer="sgd", verbose=0, metrics=[])
    assert set(quiet.evaluate(X, labels, loss="cross_entropy")) == {"loss"}  # as asked
    onehot = np.eye(3)[labels]  # the fit's accuracy does not take MSE: MSE's default, none
    assert set(classifier.evaluate(X, onehot, loss="mse")) == {"loss"}


def test_evaluate_with_a_classifying_loss_after_a_regression_fit_reports_accuracy():
    """The regression fit's metrics (none) were kept for a loss of another kind."""
    X = np.random.default_rng(0).normal(size=(40, 4)).astype("float32")
    y = (X[:, 0] > 0).astype("int64")
    model = nb.Sequential([Dense(4, 2)], seed=0)
    assert "accuracy" in model.evaluate(X, y, loss="cross_entropy")  # before any fit
    model.fit(X, np.eye(2, dtype="float32")[y], loss="mse", optimizer="sgd", verbose=0)
    assert "accuracy" in model.evaluate(X, y, loss="cross_entropy")


def test_predict_under_mse_gives_labels_where_the_model_ends_in_a_sigmoid():
    """Mutation run: the docstring's 'unless the last layer gives [0, 1]' held no test."""
    model = nb.Sequential([Dense(3, 1), nb.layers.Sigmoid()], seed=0)
    model.loss = nb.losses.MSE()
    got = model.predict(np.array([[5.0, 5.0, 5.0], [-5.0, -5.0, -5.0]]))
    assert got.dtype == np.int64 and got.shape == (2,)
    probability = model.predict_proba(np.array([[5.0, 5.0, 5.0], [-5.0, -5.0, -5.0]]))[:, 0]
    np.testing.assert_array_equal(got, (probability > 0.5).astype(np.int64))


def test_a_backward_after_predict_says_to_call_forward():
    """Mutation run: predict's output shape left behind told a dy shape that could not work."""
    model = nb.Sequential([Dense(3, 2)], seed=0)
    model.forward(model.backend.asarray(np.ones((2, 3), dtype=np.float32)))
    model.loss = nb.losses.SoftmaxCrossEntropy()
    model.predict(np.ones((5, 3)))
    with pytest.raises(AttributeError, match=r"call forward\(x\) before backward"):
        model.backward(model.backend.asarray(np.ones((2, 2), dtype=np.float32)))
