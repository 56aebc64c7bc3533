"""Edges of the batches, the argument checks and the metrics that a mutation run of
data.py, checks.py, metrics.py and history.py found no test holding: each test fails
under a mutant the rest of the suite let pass (the comments name them)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nnbackend as nb
from nnbackend import checks
from nnbackend.data import Batches, is_foreign, is_host, target_dtype

X = np.arange(30, dtype=np.float64).reshape(10, 3)
Y = np.arange(10)


# --- data ------------------------------------------------------------------------------


def test_on_device_takes_true_false_or_auto_only(backend):
    """A misspelt on_device is refused, not taken for True."""
    # kills data.py:58 (the one_of check deleted)
    for wrong in ("yes", 1, None):
        with pytest.raises(ValueError, match="on_device must be one of True, False, 'auto'"):
            Batches(X, Y, backend, 4, y_dtype="int64", on_device=wrong)


def test_a_float64_device_array_is_cast_where_it_is_for_a_float32_model(backend):
    """A float64 array of the backend's own batches in float32, with the same values, on
    the device whatever on_device says; one past float32's range is refused."""
    # kills data.py:136-137 (_narrowed's device branch) and data.py:62 (`not is_host`)
    b32, X64 = backend.with_dtype("float32"), backend.with_dtype("float64").asarray(X)
    for on_device in (True, False):
        batches = Batches(X64, None, b32, 4, shuffle=False, on_device=on_device)
        assert batches.on_device is (on_device or not isinstance(X64, np.ndarray))
        got = [xb for xb, _ in batches]
        assert all(xb.dtype == b32.dtype for xb in got)
        np.testing.assert_array_equal(np.concatenate([nb.to_numpy(xb) for xb in got]), X)
    big = backend.with_dtype("float64").asarray(np.array([[0.0, 1.0], [2.0, 1e39]]))
    with pytest.raises(ValueError, match=r"X holds values beyond float32's range \(the first at"):
        Batches(big, None, b32, 1)


def test_soft_targets_of_a_labels_loss_train_as_floats(backend):
    """(batch, classes) targets of SoftmaxCrossEntropy (one-hot or smoothed rows) keep
    their fractions; only 1-D labels become int64."""
    # kills data.py:175 (`and y.ndim == 1` dropped: soft rows cast to int64, all 0)
    soft = np.array([[0.9, 0.05, 0.05], [0.05, 0.05, 0.9]])
    loss = nb.losses.SoftmaxCrossEntropy()
    assert target_dtype(loss, soft, backend) == backend.dtype_name
    assert target_dtype(loss, np.array([0, 2]), backend) == "int64"
    model = nb.Sequential([nb.layers.Dense(3, 3)], backend=backend, seed=0)
    model.loss = loss
    x = X[:2] / 30
    scores = nb.to_numpy(model(backend.asarray(x)))
    log_p = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
    want = -(soft * log_p).sum(axis=1).mean()
    assert model.evaluate(x, soft)["loss"] == pytest.approx(want, rel=1e-5)


def test_lists_are_host_data():
    """A list is no library's array: host data, as NumPy's arrays are."""
    # kills data.py:202 (`or not is_array_api_obj(X)` dropped)
    assert is_host([[1.0, 2.0]]) and is_host(np.ones(2)) and is_host(np.float64(1.0))
    assert not is_foreign([[1.0, 2.0]])
    assert is_foreign(nb.get_backend("strict").asarray(np.ones(2)))


# --- checks ----------------------------------------------------------------------------


def test_long_values_are_cut_to_80_characters_in_errors():
    """An error shows a value as its repr up to 80 characters, else its first 77 and
    "..."; an int of more than 256 bits by its size."""
    # kills checks.py:35 and checks.py:38 (the bounds, the cut, the "...")
    for text in ("x" * 78, "x" * 79):  # reprs of 80 and 81 characters
        with pytest.raises(ValueError) as info:
            checks.one_of(text, "mode", ("min",))
        shown = str(info.value).split(", not ")[1]
        assert shown == (repr(text) if len(text) == 78 else "'" + "x" * 76 + "...")
        assert len(shown) == 80
    with pytest.raises(TypeError, match=r"must be an integer, not 'abc'$"):
        checks.integer("abc", "n")
    with pytest.raises(ValueError, match=rf"got {2**255}$"):  # 256 bits, 77 digits
        checks.integer(2**255, "n", high=0)
    with pytest.raises(ValueError, match=r"got an integer of 257 bits$"):
        checks.integer(2**256, "n", high=0)
    with pytest.raises(ValueError, match=r"got a negative integer of 257 bits$"):
        checks.integer(-(2**256), "n", low=0)


def test_integer_bounds_are_inclusive_and_give_a_python_int():
    """integer's high is allowed (fit's verbose=2); NumPy integers come back as int."""
    # kills checks.py:45 (`int(value)` deleted) and checks.py:46 (`> high` -> `>= high`)
    assert checks.integer(2, "verbose", low=0, high=2) == 2
    with pytest.raises(ValueError, match="verbose must be between 0 and 2, got 3"):
        checks.integer(3, "verbose", low=0, high=2)
    got = checks.positive_int(np.int64(3), "n")
    assert got == 3 and type(got) is int


def test_finite_float_refuses_bools_and_gives_a_python_float():
    """True is no learning rate; NumPy floats and ints come back as float, and an int
    past float's range is refused as infinite, with its sign."""
    # kills checks.py:67 (bool let in), checks.py:70 (no float()), checks.py:72 (its sign)
    with pytest.raises(TypeError, match="lr must be a real number, not True"):
        checks.finite_float(True, "lr")
    for value in (np.float32(0.5), 1, np.int64(1)):
        got = checks.finite_float(value, "lr")
        assert type(got) is float and got == float(value)
    with pytest.raises(ValueError, match=r"alpha must be a finite number, got inf$"):
        checks.finite_float(10**400, "alpha")
    with pytest.raises(ValueError, match=r"alpha must be a finite number, got -inf$"):
        checks.finite_float(-(10**400), "alpha")


def test_finite_float_says_its_range_in_every_form():
    """The error names the bounds: none, one (open or closed), or both."""
    # kills checks.py:83-88 (_range's cases)
    cases = [
        ({}, "x must be a finite number, got nan"),
        ({"low": 0}, "x must be a finite number at least 0, got nan"),
        ({"low": 0, "low_open": True}, "x must be a finite number above 0, got nan"),
        ({"high": 1}, "x must be a finite number at most 1, got nan"),
        ({"high": 1, "high_open": True}, "x must be a finite number below 1, got nan"),
        ({"low": 0, "high": 1, "high_open": True}, r"x must be a finite number in [0, 1), got nan"),
    ]
    for bounds, message in cases:
        with pytest.raises(ValueError) as info:
            checks.finite_float(math.nan, "x", **bounds)
        assert str(info.value) == message
    assert checks.finite_float(1, "x", high=1) == 1.0  # a closed end is in


def test_boolean_takes_numpy_bools():
    """np.True_ (a comparison's result) is a bool to the checks, as boolean's docstring
    says; "yes" is not. NumPy 2 names the type bool, not bool_: every bool option
    (shuffle, resume, bias, restore_best_weights...) refused np.True_."""
    got = checks.boolean(np.bool_(True), "shuffle")
    assert got is True
    assert checks.boolean(np.bool_(False), "shuffle") is False
    with pytest.raises(TypeError, match="shuffle must be True or False, not 'yes'"):
        checks.boolean("yes", "shuffle")


def test_declared_is_false_where_nothing_in_the_classes_says():
    """A class with neither the flag nor one of the methods anywhere up its MRO has
    declared nothing."""
    # kills checks.py:31 (the final `return False` made True)

    class Plain:
        pass

    class Says:
        fast = True

        def step(self):
            pass

    class Rewrites(Says):
        def step(self):
            pass

    assert checks.declared(Plain, "fast", ("step",)) is False
    assert checks.declared(Says, "fast", ("step",)) is True
    assert checks.declared(Rewrites, "fast", ("step",)) is False


# --- metrics ---------------------------------------------------------------------------


def test_top_k_accuracy_answers_to_its_keras_names():
    """Keras's names for top-k accuracy give TopKAccuracy with its k of 5."""
    # kills metrics.py:84 (the aliases deleted)
    for name in (
        "top_k_accuracy",
        "top_k_categorical_accuracy",
        "sparse_top_k_categorical_accuracy",
    ):
        metric = nb.metrics.get(name)
        assert type(metric) is nb.metrics.TopKAccuracy and metric.name == "top_5_accuracy"


def test_top_k_accuracy_needs_class_scores_but_no_known_width():
    """TopKAccuracy is refused with a loss of float targets; a model whose width is not
    fixed (n_outputs None) cannot be checked against k and is let through."""
    # kills metrics.py:93 (the labels check deleted) and metrics.py:94 (the None test)
    metric = nb.metrics.TopKAccuracy(k=3)
    with pytest.raises(ValueError, match="top_3_accuracy needs class scores"):
        metric.check(nb.losses.MSE(), 10)
    metric.check(nb.losses.SoftmaxCrossEntropy(), None)
    with pytest.raises(ValueError, match="top_3_accuracy of a model with 3 classes is always 1"):
        metric.check(nb.losses.SoftmaxCrossEntropy(), 3)


def test_a_metric_of_ones_own_is_logged_under_metric_unless_named(backend):
    """A Metric subclass that sets no name is logged as "metric"; the base class's batch
    says it must be written."""
    # kills metrics.py:29 (the default name deleted) and metrics.py:44 (the raise deleted)

    class Half(nb.metrics.Metric):
        def batch(self, out, target, loss):
            return backend.xp.asarray(out.shape[0] / 2), 1  # 0.5 per sample

    model = nb.Sequential([nb.layers.Dense(3, 1)], backend=backend, seed=0)
    history = model.fit(X / 30, X[:, :1] / 30, loss="mse", optimizer="sgd", epochs=2,
                        batch_size=4, metrics=[Half()], verbose=0)  # fmt: skip
    assert history["metric"] == [0.5, 0.5]
    with pytest.raises(NotImplementedError):
        nb.metrics.Metric().batch(None, None, None)


def test_a_metric_may_not_take_the_loss_s_name():
    """A metric named "loss" would overwrite the loss in the History: fit refuses it."""
    # kills metrics.py:177 (`or "loss" in names` dropped)

    class Named(nb.metrics.Metric):
        name = "loss"

    with pytest.raises(ValueError, match="metrics must have distinct names other than 'loss'"):
        nb.metrics.for_fit([Named()], nb.losses.MSE(), 1)

    class Unnamed(nb.metrics.Metric):
        pass

    with pytest.raises(ValueError, match=r"\['metric', 'metric'\]: .*a name of its own \(name ="):
        nb.metrics.for_fit([Unnamed(), Unnamed()], nb.losses.MSE(), 1)
    with pytest.raises(ValueError, match=r"distinct names .*\['mae', 'mae'\]"):
        nb.metrics.for_fit(["mae", "mean_absolute_error"], nb.losses.MSE(), 1)


# --- history ---------------------------------------------------------------------------


def test_history_brings_over_the_epochs_a_stopped_fit_did_not_log():
    """A fit stopped between two logged epochs leaves epochs on the device; the whole
    history (history.history) brings them over as history["loss"] does."""
    # kills history.py:102 (history's flush deleted)

    class StopAtTwo(nb.callbacks.Callback):
        def on_epoch_end(self, epoch, logs, model):
            model.stop_training = epoch == 2

    model = nb.Sequential([nb.layers.Dense(3, 1)], seed=0)
    history = model.fit(X / 30, X[:, :1] / 30, loss="mse", optimizer="sgd", epochs=10,
                        log_every=5, callbacks=[StopAtTwo()], verbose=0)  # fmt: skip
    whole = history.history
    assert history.epochs == [0, 1, 2] and len(whole["loss"]) == 3
    assert whole == {"loss": history["loss"]}
    assert whole["loss"][2] < whole["loss"][0]  # it trained
