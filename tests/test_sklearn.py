"""nnbackend.sklearn: the estimators against scikit-learn's own MLP, on every backend.

scikit-learn's MLPClassifier/MLPRegressor are the reference: with the same seed, no
shuffling and full batches, both start from the same weights and take the same steps,
so weights, losses, iteration counts and validation scores agree to rounding.
"""

from __future__ import annotations

import copy
import io
import math
import pickle
import pickletools
import subprocess
import sys
import textwrap
import warnings

import joblib
import numpy as np
import pytest
import sklearn.neural_network as sk
from sklearn.base import clone
from sklearn.datasets import load_digits, make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import nnbackend as nb
from nnbackend.backend import replay
from nnbackend.sklearn import MLPClassifier, MLPRegressor, base, convergence, regressor
from tests.conftest import HAVE_TORCH

# One training step per 100 samples: every batch full, so alpha / batch_size is exactly
# scikit-learn's per-batch alpha / n_batch.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SAME_STEPS = dict(random_state=0, shuffle=False, batch_size=100, alpha=1e-3, dtype="float64")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:800] / 16.0, y[:800]


def regression_targets(X):
    """Two smooth functions of the pixels: a multi-output regression problem."""
    return np.stack([X[:, 10] * 2 + X[:, 20], X[:, 30] - X[:, 42] * X[:, 43]], axis=1)


def both(cls_name, **params):
    """(ours, scikit-learn's) estimators of one class name with the same parameters."""
    ours = {"MLPClassifier": MLPClassifier, "MLPRegressor": MLPRegressor}[cls_name]
    theirs = {k: v for k, v in params.items() if k not in ("backend", "dtype")}
    return ours(**params), getattr(sk, cls_name)(**theirs)


def max_weight_difference(a, b) -> float:
    pairs = zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_, strict=True)
    return max(float(np.abs(x - y).max()) for x, y in pairs)


# --- the same training as scikit-learn ---------------------------------------------------


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("task", ["multiclass", "binary", "multi-output"])
def test_training_takes_scikit_learns_steps(backend, digits, solver, task):
    X, y = digits
    cls_name, target = {
        "multiclass": ("MLPClassifier", y),
        "binary": ("MLPClassifier", np.where(y > 4, "big", "small")),
        "multi-output": ("MLPRegressor", regression_targets(X)),
    }[task]
    ours, theirs = both(
        cls_name,
        hidden_layer_sizes=(16, 8),
        solver=solver,
        max_iter=4,
        learning_rate_init=0.01,
        backend=backend.name,
        **SAME_STEPS,
    )
    ours.fit(X, target)
    theirs.fit(X, target)
    assert max_weight_difference(ours, theirs) < 1e-12
    assert ours.n_iter_ == theirs.n_iter_ == 4
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-12)
    method = "predict" if task == "multi-output" else "predict_proba"
    np.testing.assert_allclose(getattr(ours, method)(X), getattr(theirs, method)(X), rtol=1e-9)


@pytest.mark.parametrize("early_stopping", [False, True])
@pytest.mark.parametrize(
    "solver, learning_rate", [("adam", "constant"), ("sgd", "adaptive"), ("sgd", "invscaling")]
)
def test_stopping_rules_are_scikit_learns(digits, early_stopping, solver, learning_rate):
    X, y = digits  # early stopping keeps 720 of the 800 for training: 9 full batches of 80
    ours, theirs = both(
        "MLPClassifier",
        hidden_layer_sizes=(16,),
        solver=solver,
        learning_rate=learning_rate,
        learning_rate_init=0.05,
        max_iter=100,
        n_iter_no_change=4,
        tol=1e-3,
        early_stopping=early_stopping,
        **{**SAME_STEPS, "batch_size": 80},
    )
    ours.fit(X, y)
    theirs.fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.validation_scores_ == theirs.validation_scores_
    assert ours.best_validation_score_ == theirs.best_validation_score_
    assert max_weight_difference(ours, theirs) < 1e-9


@pytest.mark.parametrize("task, rate", [("multiclass", 0.5), ("binary", 2.0), ("multilabel", 2.0)])
def test_saturated_predictions_cost_what_scikit_learns_clipped_log_loss_says(backend, task, rate):
    """At a high rate some predictions saturate, and scikit-learn's log loss clips them
    to [eps, 1 - eps]: its loss_curve_ and best_loss_ (and so tol's verdicts) are those
    of the clipped probabilities, not of the logits (0.1 to 150 apart here), and of its
    logistic output's rounding near 1 (the tanh form of sigmoid: 1e-4 apart). NumPy's
    and torch's CPU arrays work the clipped value out only where a batch saturates;
    the others, always."""
    X, y = make_classification(n_samples=250, n_features=8, n_informative=5, n_classes=3,
                               random_state=0)  # fmt: skip
    y = {"multiclass": y, "binary": y > 0, "multilabel": np.stack([y > 0, y < 2], axis=1)}[task]
    steps = {**SAME_STEPS, "batch_size": 50, "alpha": 0.0}
    ours, theirs = both("MLPClassifier", hidden_layer_sizes=(10,), max_iter=100, solver="sgd",
                        learning_rate="invscaling", learning_rate_init=rate,
                        backend=backend.name, **steps)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(X, y)
        theirs.fit(X, y)
    # multilabel gradients p - t of outputs saturated near 1 keep ulps of p that torch's
    # and the standard's sigmoid round otherwise than scipy's, and that OpenBLAS's kernels
    # for another CPU (Haswell's, Sandybridge's against SkylakeX's) make otherwise in the
    # products before them: up to 4e-6 apart after 100 epochs
    close = 1e-9 if task != "multilabel" else 1e-5
    assert max_weight_difference(ours, theirs) < close
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=close)
    assert ours.best_loss_ == pytest.approx(theirs.best_loss_, rel=close)


@pytest.mark.parametrize("activation", ["logistic", "tanh", "identity"])
def test_every_activation_starts_and_steps_as_scikit_learns(digits, activation):
    """The logistic activation's first weights are drawn from a bound sqrt(2) times
    wider (scikit-learn's Glorot factor); the others from the same as relu's."""
    X, y = digits
    ours, theirs = both("MLPClassifier", hidden_layer_sizes=(16,), activation=activation,
                        max_iter=2, **SAME_STEPS)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(X, y)
        theirs.fit(X, y)
    assert max_weight_difference(ours, theirs) < 1e-12


def test_binary_early_stopping_holds_out_a_stratified_split_as_scikit_learn(digits):
    X, y = digits
    ours, theirs = both("MLPClassifier", hidden_layer_sizes=(8,), early_stopping=True,
                        max_iter=6, **{**SAME_STEPS, "batch_size": 80})  # fmt: skip
    labels = np.where(y == 3, "three", "other")  # 10 % of one class: a split that shows
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(X, labels)
        theirs.fit(X, labels)
    assert ours.validation_scores_ == theirs.validation_scores_
    assert max_weight_difference(ours, theirs) < 1e-12


def test_multi_output_regression_stops_where_scikit_learns_does(backend):
    """scikit-learn's tol is held to the squared error averaged over the outputs (its
    gradient sums them): 3 outputs stopped 48 epochs later when held to the sum."""
    X, Y = make_regression(n_samples=100, n_features=5, n_targets=3, random_state=0)
    ours, theirs = both(
        "MLPRegressor",
        hidden_layer_sizes=(10,),
        learning_rate_init=0.01,
        max_iter=1000,
        backend=backend.name,
        **SAME_STEPS,
    )
    ours.fit(X, Y / 100)
    theirs.fit(X, Y / 100)
    assert ours.n_iter_ == theirs.n_iter_ < 1000
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
    assert ours.best_loss_ == pytest.approx(theirs.best_loss_, rel=1e-9)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-7, atol=1e-9)


def test_the_held_out_split_is_scored_without_checking_it_again(digits, monkeypatch):
    """Early stopping scores the split it made itself: scikit-learn's input checks (and
    their feature-name warnings, for a DataFrame X) run once, not every epoch."""
    X, y = digits
    est = MLPClassifier(hidden_layer_sizes=(8,), early_stopping=True, max_iter=5)
    checked = []
    monkeypatch.setattr(base, "predict_input", lambda est, X, method: checked.append(method) or X)
    est.fit(X, y)
    assert len(est.validation_scores_) == 5 and checked == []
    est.predict(X)
    assert checked == ["predict"]


def test_partial_fit_and_warm_start_go_on_as_scikit_learns(digits):
    X, y = digits
    ours, theirs = both(
        "MLPClassifier", hidden_layer_sizes=(16,), warm_start=True, max_iter=3, **SAME_STEPS
    )
    for est in (ours, theirs):
        est.partial_fit(X[:400], y[:400], classes=np.arange(10))
        est.partial_fit(X[400:], y[400:])
        est.fit(X, y)  # warm start: three more epochs, a fresh optimizer
    assert ours.n_iter_ == theirs.n_iter_ == 3
    assert len(ours.loss_curve_) == len(theirs.loss_curve_) == 5
    assert ours.t_ == theirs.t_ == 3200
    assert max_weight_difference(ours, theirs) < 1e-12


def test_a_fit_that_diverges_says_so_in_scikit_learns_words_at_every_call(backend):
    """A far too high rate on unscaled targets: fit raises scikit-learn's "non-finite
    parameter weights", and so does each partial_fit after it (the optimizer's state,
    NaN, is refused before a step, in the same words)."""
    X, y = make_regression(n_samples=64, n_features=4, noise=1.0, random_state=0)
    est = MLPRegressor(hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=10.0,
                       max_iter=10, backend=backend.name)  # fmt: skip
    said = r"^Solver produced non-finite parameter weights\. The input data may contain large"
    for call in (est.fit, est.partial_fit, est.partial_fit):
        with pytest.raises(ValueError, match=said), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the NaN loss's own warning
            call(X, y * 1e10)


def test_a_fit_whose_loss_went_inf_with_finite_weights_is_refused(backend):
    """Two outputs at a rate of 0.5: the loss overflowed while the weights were still
    finite, the fit stopped there, and the estimator answered 1e200 as fitted."""
    X = np.random.RandomState(0).randn(100, 4)
    y = X @ np.array([1.0, 2.0, 3.0, 4.0])
    settings = dict(solver="sgd", learning_rate_init=0.5, max_iter=60, shuffle=False)
    est = MLPRegressor(hidden_layer_sizes=(6,), random_state=1, backend=backend.name, **settings)
    with pytest.raises(ValueError, match=r"^Solver produced non-finite parameter weights"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the inf loss's own warning
            est.fit(X, np.column_stack([y, -y]))


def test_early_stopping_keeps_its_best_epoch_past_a_diverging_one_as_scikit_learn(backend):
    """Validation predictions went inf in a later epoch: r2_score refused them ("Input
    contains infinity"), and then the inf loss did, where scikit-learn scores that epoch
    NaN and returns the best epoch's weights (a grid search lost its large rates)."""
    X, y = make_regression(200, 5, noise=1, random_state=0)
    params = dict(hidden_layer_sizes=(20,), solver="sgd", learning_rate_init=0.01,
                  max_iter=50, early_stopping=True, random_state=0)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (ConvergenceWarning, RuntimeWarning))  # overflows
        theirs = sk.MLPRegressor(**params).fit(X, y)
        ours = MLPRegressor(backend=backend.name, **params).fit(X, y)
    assert ours.best_validation_score_ == pytest.approx(theirs.best_validation_score_, rel=1e-9)
    assert ours.score(X, y) == pytest.approx(theirs.score(X, y), rel=1e-9)
    assert math.isnan(ours.validation_scores_[-1])
    finite = regressor._finite
    assert finite(np.array([-1.0, 2.0])) and finite(np.array([]))
    assert not any(finite(np.array([1.0, v])) for v in (np.inf, -np.inf, np.nan))


def test_a_classifiers_net_loads_in_a_process_that_never_imported_the_estimators(tmp_path):
    """nb.save(est.model_) names the estimators' own loss (ClippedLogLoss): nb.load in
    a fresh process finds it without `import nnbackend.sklearn` first, and the loaded
    net answers as the fitted one."""
    X, y = make_classification(n_samples=40, n_features=3, n_informative=2, n_redundant=0,
                               random_state=0)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0).fit(X, y)
    nb.save(est.model_, tmp_path / "net.h5")
    np.save(tmp_path / "X.npy", X)
    code = textwrap.dedent(f"""
        import sys, numpy as np, nnbackend as nb
        model = nb.load({str(tmp_path / "net.h5")!r})
        out = nb.to_numpy(model.predict(np.load({str(tmp_path / "X.npy")!r})))
        np.save({str(tmp_path / "out.npy")!r}, out)
        print(type(model.loss).__name__)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ClippedLogLoss"]
    expected = nb.to_numpy(est.model_.predict(X))
    assert np.load(tmp_path / "out.npy").tobytes() == expected.tobytes()


def test_a_warm_start_with_another_activation_uses_it_as_scikit_learn_does(digits):
    """scikit-learn applies a changed activation to the weights it has; to_sklearn then
    predicts alike too."""
    X, y = digits
    ours, theirs = both(
        "MLPClassifier", hidden_layer_sizes=(16,), warm_start=True, max_iter=3, **SAME_STEPS
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for est in (ours, theirs):
            est.fit(X, y)
            est.set_params(activation="tanh").fit(X, y)
    assert max_weight_difference(ours, theirs) < 1e-12
    proba = theirs.predict_proba(X)
    np.testing.assert_allclose(ours.predict_proba(X), proba, rtol=1e-9)
    np.testing.assert_allclose(ours.to_sklearn().predict_proba(X), proba, rtol=1e-9)


@pytest.mark.parametrize("incremental", [False, True], ids=["warm_start", "partial_fit"])
def test_new_hidden_layer_sizes_are_refused_where_the_fitted_net_trains_on(backend, incremental):
    """A warm start after set_params(hidden_layer_sizes=...) trained the old net on,
    while get_params() reported the new sizes (scikit-learn ignores a change of the
    same depth, and fails on another with "'NoneType' object has no attribute")."""
    X = np.random.RandomState(0).randn(60, 4)
    y = (X[:, 0] > 0).astype(int)
    est = MLPClassifier((5,), max_iter=2, random_state=0, warm_start=True, backend=backend.name)
    go_on = est.partial_fit if incremental else est.fit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
        before = [W.copy() for W in est.coefs_]
        for sizes in [(50, 20), (7,), (5, 3)]:  # a later layer of its own too
            with pytest.raises(ValueError, match=r"hidden_layer_sizes is .*fitted with \(5,\)"):
                est.set_params(hidden_layer_sizes=sizes)
                go_on(X, y)
            assert all(np.array_equal(a, b) for a, b in zip(est.coefs_, before, strict=True))
        est.set_params(hidden_layer_sizes=5).partial_fit(X, y)  # the same, as one number
    assert not np.array_equal(est.coefs_[0], before[0])


def test_a_warm_start_after_set_params_trains_where_backend_and_dtype_say(digits):
    """Changed by set_params, they were left unread: training went on in float64 on NumPy.
    The optimizer's state moves with the weights, as a copy moved by hand trains."""
    X, y = digits
    est = MLPClassifier((8,), max_iter=2, random_state=0, warm_start=True).fit(X, y)
    by_hand = pickle.loads(pickle.dumps(est))
    by_hand.model_.to("strict", dtype="float32", optimizer=by_hand.model_.optimizer)
    est.set_params(backend="strict", dtype="float32")
    for each in (est, by_hand):
        each.partial_fit(X, y)
    assert (est.model_.backend.name, est.model_.backend.dtype_name) == ("strict", "float32")
    assert est.predict_proba(X).dtype == np.float32
    np.testing.assert_array_equal(est.coefs_[0], by_hand.coefs_[0])
    est.set_params(backend=None, dtype=None).fit(X, y)  # None keeps the model where it is
    assert est.model_.backend.name == "strict" and est.coefs_[0].dtype == np.float32


def test_a_refused_partial_fit_leaves_the_model_where_it_was(digits):
    """The model moved where set_params said before the data was checked."""
    X, y = digits
    est = MLPClassifier((8,), random_state=0).partial_fit(X, y, classes=np.unique(y))
    est.set_params(dtype="float32")
    with pytest.raises(ValueError, match="features"):
        est.partial_fit(X[:, :10], y)
    assert est.model_.backend.dtype_name == "float64"


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
@pytest.mark.parametrize("incremental", [False, True])
def test_a_warm_start_on_device_data_stays_where_auto_put_it(digits, incremental):
    """backend="auto" was resolved anew at the second fit (to NumPy on a CPU), the model
    moved there, and then the torch X was refused."""
    import torch

    X, y = digits
    X = torch.asarray(X)
    est = MLPClassifier((8,), max_iter=2, random_state=0, backend="auto", warm_start=True)
    again = est.partial_fit if incremental else est.fit
    again(X, y, **({"classes": np.unique(y)} if incremental else {}))
    again(X, y)
    assert est.model_.backend.name == "torch"
    assert isinstance(est.predict(X), torch.Tensor)


def test_a_batch_larger_than_the_data_is_said_at_the_callers_line(digits):
    X, y = digits
    with pytest.warns(UserWarning, match="larger than sample size") as record:
        MLPClassifier((4,), batch_size=5000, max_iter=1, random_state=0).fit(X, y)
    assert record[0].filename == __file__


@pytest.mark.parametrize("early_stopping", [False, True])
def test_ctrl_c_in_fit_leaves_a_fitted_estimator_as_scikit_learns(
    monkeypatch, digits, early_stopping
):
    """scikit-learn's warns "Training interrupted by user." and keeps what the finished
    epochs made (the best weights, with early_stopping); ours raised KeyboardInterrupt."""
    X, y = digits
    epoch_end, kept = convergence.Convergence.on_epoch_end, {}

    def interrupted(rule, epoch, logs, model):
        epoch_end(rule, epoch, logs, model)
        kept["best"] = getattr(rule, "best_params", None)
        if epoch == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(convergence.Convergence, "on_epoch_end", interrupted)
    est = MLPClassifier((8,), max_iter=10, random_state=0, early_stopping=early_stopping)
    with pytest.warns(UserWarning, match="Training interrupted by user.") as record:
        try:
            est.fit(X, y)
        except KeyboardInterrupt:  # would stop the whole test run
            pytest.fail("fit let the KeyboardInterrupt through")
    assert record[0].filename == __file__
    assert est.n_iter_ == len(est.loss_curve_) == 3
    assert est.predict(X).shape == y.shape
    if early_stopping:
        np.testing.assert_array_equal(est.coefs_[0], nb.to_numpy(kept["best"]["0.W"]))


def test_partial_fit_takes_classes_by_name_alone(digits):
    """scikit-learn's third argument is sample_weight: here a third positional one is
    refused, not read as the classes."""
    X, y = digits
    est = MLPClassifier(hidden_layer_sizes=(4,), random_state=0)
    with pytest.raises(TypeError, match="positional"):
        est.partial_fit(X, y, np.arange(10))
    assert list(est.partial_fit(X, y, classes=np.arange(10)).classes_) == list(range(10))


def first_call_raises_or_warns(call, est):
    """What ``call(est)`` raised (its type) or warned (the first warning's class)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            call(est)
        except Exception as error:  # noqa: BLE001 - the kind of error is the answer
            return type(error)
    kinds = [w.category for w in caught if w.category is not ConvergenceWarning]
    return kinds[0] if kinds else None


@pytest.mark.parametrize(
    "case",
    [
        "warm start on fewer classes",
        "warm partial_fit on fewer classes",
        "partial_fit with other classes",
        "batch_size past the samples",
        "weights that overflow",
    ],
)
def test_the_same_refusals_and_warnings_as_scikit_learn(digits, case):
    X, y = digits
    few = y < 5
    calls = {
        "warm start on fewer classes": (
            dict(warm_start=True),
            lambda est: est.fit(X, y).fit(X[few], y[few]),
        ),
        "warm partial_fit on fewer classes": (
            dict(warm_start=True),
            lambda est: est.partial_fit(X[few], y[few], classes=np.arange(10)),
        ),
        "partial_fit with other classes": (
            {},
            lambda est: est.partial_fit(X, y, classes=np.arange(10)).partial_fit(
                X, y, classes=np.arange(11)
            ),
        ),
        "batch_size past the samples": (dict(batch_size=5000), lambda est: est.fit(X, y)),
        "weights that overflow": (
            dict(solver="sgd", learning_rate_init=1e6, momentum=0.0),
            lambda est: est.fit(X * 1e150, y),
        ),
    }
    params, call = calls[case]
    ours, theirs = both("MLPClassifier", hidden_layer_sizes=(4,), max_iter=2, random_state=0,
                        **params)  # fmt: skip
    with np.errstate(all="ignore"):
        want = first_call_raises_or_warns(call, theirs)
        got = first_call_raises_or_warns(call, ours)
    assert want is not None and got is want


def test_partial_fit_wants_classes_first():
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        MLPClassifier().partial_fit([[0.0], [1.0]], [0, 1])


@pytest.mark.parametrize("classes", [[0, 1], ["0", "1", "2"]])
def test_the_first_partial_fit_refuses_labels_outside_classes(digits, classes):
    """As scikit-learn: a label outside ``classes`` would train as a row of zeros."""
    X, y = digits
    est = MLPClassifier(hidden_layer_sizes=(4,))
    with pytest.raises(ValueError, match="`y` has classes not in `self.classes_`"):
        est.partial_fit(X, y % 3, classes=classes)
    assert not hasattr(est, "n_iter_")  # refused before any training


def test_a_first_partial_fit_that_failed_leaves_the_next_a_first_call(digits):
    """The refused call had set classes_ = [0, 1]: a retry without classes was taken as
    a later call and drew the classes from its own batch in silence."""
    X, y = digits
    est = MLPClassifier(hidden_layer_sizes=(4,), random_state=0)
    with pytest.raises(ValueError, match="`y` has classes not in `self.classes_`"):
        est.partial_fit(X, y % 3, classes=[0, 1])
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        est.partial_fit(X, y % 3)
    est.partial_fit(X, y % 3, classes=[0, 1, 2])  # the first call, given all the classes
    assert est.classes_.tolist() == [0, 1, 2] and est.n_iter_ == 1


def test_convergence_warning_when_max_iter_is_reached(digits):
    X, y = digits
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(2\) reached"):
        est = MLPClassifier((8,), max_iter=2, random_state=0).fit(X, y)
    assert est.n_iter_ == 2 and len(est.loss_curve_) == 2
    assert est.loss_curve_[1] < est.loss_curve_[0]


def test_verbose_prints_scikit_learns_lines(digits, capsys):
    X, y = digits
    MLPClassifier((8,), max_iter=30, tol=10.0, n_iter_no_change=1, verbose=True).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Iteration 1, loss = ")
    assert lines[-1] == (
        "Training loss did not improve more than tol=10.000000 for 1 consecutive epochs. Stopping."
    )


# --- labels, outputs and devices ----------------------------------------------------------


@pytest.mark.parametrize(
    "labels",
    [["cat", "dog", "eel"], [-3, 7, 100], [0.0, 2.0], [True, False]],
    ids=["strings", "sparse-ints", "floats", "bools"],
)
def test_any_label_type_comes_back(backend, labels):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 4))
    index = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5) * (len(labels) > 2)
    y = np.asarray(labels, dtype=object if isinstance(labels[0], str) else None)[index]
    est = MLPClassifier(
        (16,), max_iter=300, learning_rate_init=0.02, random_state=0, backend=backend.name
    ).fit(X, y)
    assert list(est.classes_) == sorted(set(labels))
    predicted = est.predict(X)
    assert predicted.dtype == est.classes_.dtype and set(predicted) <= set(labels)
    assert est.score(X, y) > 0.9
    proba = est.predict_proba(X)
    assert proba.shape == (90, len(labels))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(est.classes_[proba.argmax(axis=1)], predicted)


def test_multilabel_and_multioutput_shapes(backend, digits):
    X, y = digits
    Y = np.stack([y % 2, y > 4, y == 0], axis=1).astype(int)
    clf = MLPClassifier(
        (16,), max_iter=50, learning_rate_init=0.01, random_state=0, backend=backend.name
    )
    clf.fit(X, Y)
    reg = MLPRegressor(hidden_layer_sizes=(16,), max_iter=5, random_state=0, backend=backend.name)
    reg.fit(X, regression_targets(X))
    assert clf.predict(X).shape == (800, 3) and clf.predict_proba(X).shape == (800, 3)
    assert clf.score(X, Y) > 0.8
    assert reg.predict(X).shape == (800, 2)
    assert reg.fit(X, X[:, 10]).predict(X).shape == (800,)


def test_one_class_is_predicted_back(backend, digits):
    """y of one class trains one logistic output, as scikit-learn's; predict maps
    p > 0.5 to the only class there is (index 1 of one class was an IndexError)."""
    X, _ = digits
    y = np.full(len(X), 7)
    est = MLPClassifier((10,), max_iter=5, random_state=0, backend=backend.name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    proba = nb.to_numpy(est.predict_proba(X))
    assert proba.shape == (len(X), 2) and (proba[:, 1] > 0.5).any()  # the case in question
    assert set(est.predict(X).tolist()) == {7}


@pytest.mark.parametrize("half", ["float16", "bfloat16"])
def test_torch_half_precision_X_trains_as_host_float16_does(digits, half):
    """Half floats are no dtypes of the standard: finding X's backend asked for their
    name and failed. Host float16 trains in float64, as in scikit-learn; torch's too."""
    torch = pytest.importorskip("torch")
    X, y = digits
    X_half = torch.tensor(X).to(getattr(torch, half))
    X_host = X_half.to(torch.float32).numpy().astype(np.float16)  # the same values
    options = dict(hidden_layer_sizes=(16,), max_iter=5, random_state=0, shuffle=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        on_torch = MLPClassifier(**options).fit(X_half, torch.tensor(y))
        on_host = MLPClassifier(**options).fit(X_host, y)
        as_float32 = MLPClassifier(dtype="float32", **options).fit(X_half, torch.tensor(y))
    assert on_torch.model_.backend.dtype_name == "float64"
    assert as_float32.model_.backend.dtype_name == "float32"
    np.testing.assert_allclose(
        nb.to_numpy(on_torch.predict_proba(X_half)), on_host.predict_proba(X_host), atol=1e-12
    )


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_float64_values_past_float32_s_range_are_named_not_made_inf(backend, digits, cls):
    """A float32 estimator cast them to inf: fit then blamed "NaN or inf" in X, and a
    fitted one's predictions were NaN (Sequential refused both by name)."""
    X, y = digits
    X = X[:200]
    y = y[:200] if cls is MLPClassifier else regression_targets(X)
    big = X.copy()
    big[3, 5] = 1e39
    said = r"X holds values beyond float32's range \(the first at index \(3, 5\)\)"
    est = cls(hidden_layer_sizes=(8,), max_iter=2, dtype="float32", backend=backend.name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with pytest.raises(ValueError, match=said):
            est.fit(big, y)
        est.fit(X, y)
    with pytest.raises(ValueError, match=said):
        est.predict(big)
    if backend.name != "numpy":  # the same, as the backend's own float64 array
        device = nb.get_backend(backend.name, dtype="float64").asarray(big)
        with pytest.raises(ValueError, match=said):
            est.predict(device)


def test_device_arrays_in_give_device_arrays_out(backend, digits):
    X, y = digits
    xp = backend.xp
    X_dev, y_dev = backend.asarray(X, dtype="float32"), backend.asarray(y)
    est = MLPClassifier((16,), max_iter=20, learning_rate_init=0.01, random_state=0)
    est.fit(X_dev, y_dev)
    assert est.model_.backend.name == nb.backend.backend_of(X_dev).name
    assert est.model_.backend.dtype_name == "float32"  # dtype=None follows X
    predicted, proba = est.predict(X_dev), est.predict_proba(X_dev)
    assert backend.owns(predicted) and backend.owns(proba)
    assert proba.dtype == xp.float32 and tuple(proba.shape) == (800, 10)
    score = est.score(X_dev, y_dev)
    assert isinstance(score, float) and score == est.score(X, y) > 0.8
    host = est.predict(X)  # host data to a model on a device: host answers
    assert isinstance(host, np.ndarray)
    np.testing.assert_array_equal(host, nb.to_numpy(predicted))


def test_float_labels_come_back_as_they_were_on_a_device(backend, digits):
    """Float labels went to the device in the model's float32: 16777217.0 came back as
    16777216.0, a label y never had, and early stopping scored the held-out rows so."""
    X, y = digits
    y = y[:400] % 3
    labels = np.array([1.0, 2.0, 16777217.0])[y]  # in the order of y's classes
    X_dev = backend.asarray(X[:400], dtype="float32")
    est = MLPClassifier((8,), max_iter=5, random_state=0, dtype="float32")
    est.fit(X_dev, labels)
    predicted = nb.to_numpy(est.predict(X_dev))
    assert set(predicted) <= set(est.classes_) and 16777217.0 in set(predicted)
    np.testing.assert_array_equal(predicted, est.predict(nb.to_numpy(X_dev)))
    scores = []
    for y_fit in (labels, y):  # early stopping scores alike with float labels or ints
        kept = MLPClassifier((8,), max_iter=5, random_state=0, dtype="float32",
                             early_stopping=True, backend=backend.name)  # fmt: skip
        scores.append(kept.fit(X[:400], y_fit).validation_scores_)
    np.testing.assert_array_equal(scores[0], scores[1])


@pytest.mark.parametrize("kind", ["uint16", "uint32", "uint64", "int8"])
def test_labels_of_any_integer_dtype_come_back_on_the_device(backend, digits, kind):
    """torch indexes no uint16/32/64 array: predict, score and early stopping on a
    tensor failed in its index_select for such labels (a mask's, an encoder's)."""
    X, y = digits
    top = 2**40 if kind == "uint64" else 100  # past int32 where the dtype holds it
    labels = np.array([3, 7, top], dtype=kind)[y[:300] % 3]
    X_dev = backend.asarray(X[:300], dtype="float64")
    for stop in (False, True):
        est = MLPClassifier((8,), max_iter=3, random_state=0, early_stopping=stop)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X_dev, labels)
    predicted = est.predict(X_dev)
    assert backend.owns(predicted) and nb.to_numpy(predicted).dtype == kind
    np.testing.assert_array_equal(nb.to_numpy(predicted), est.predict(X[:300]))
    assert est.score(X_dev, labels) == est.score(X[:300], labels)


@pytest.mark.parametrize("first", [True, False])
def test_early_stopping_switched_between_fits_goes_on(digits, first):
    """A warm start or partial_fit with early_stopping switched since the first fit met
    counters that fit had not made: a TypeError after an epoch had changed the weights."""
    X, y = digits
    est = MLPClassifier((5,), max_iter=3, random_state=0, early_stopping=first,
                        warm_start=True).fit(X, y)  # fmt: skip
    est.set_params(early_stopping=not first)
    if first:  # partial_fit refuses early_stopping=True
        est.partial_fit(X, y)
    est.fit(X, y)
    assert len(est.loss_curve_) == 3 + first + 3  # fit, partial_fit's one epoch, fit
    if not first:
        assert len(est.validation_scores_) >= 1 and est.best_validation_score_ is not None
    else:
        assert est.best_loss_ is not None


def test_regression_targets_past_float32_are_named(digits):
    X, y = digits
    with pytest.raises(ValueError, match=r"y .*float32"):
        MLPRegressor(hidden_layer_sizes=(5,), max_iter=3, dtype="float32").fit(X, y * 1e39)


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
def test_device_arrays_of_another_backend_are_refused(digits):
    import torch

    X, y = digits
    with pytest.raises(nb.BackendMismatchError, match="backend=None to train where X lives"):
        MLPClassifier(backend="numpy").fit(torch.asarray(X), y)
    est = MLPClassifier((4,), max_iter=1, backend="strict").fit(X, y)
    with pytest.raises(nb.BackendMismatchError, match="torch.Tensor"):
        est.predict(torch.asarray(X))


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
def test_tensors_that_autograd_tracks_give_plain_predictions(digits):
    """predict_proba of a tensor that requires grad gave one with a grad_fn, which
    .numpy() refused; the fit and the predictions are those of the plain tensor."""
    import torch

    X, y = torch.asarray(digits[0][:200], dtype=torch.float32), torch.asarray(digits[1][:200])
    tracked = X.clone().requires_grad_(True)
    estimators = [MLPClassifier((8,), max_iter=3, random_state=0) for _ in range(2)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain, followed = estimators[0].fit(X, y), estimators[1].fit(tracked, y)
    proba = followed.predict_proba(tracked)
    assert not proba.requires_grad and torch.equal(proba, plain.predict_proba(X))


def test_sample_weight_is_refused_by_name(digits):
    X, y = digits
    with pytest.raises(TypeError, match="sample_weight"):
        MLPClassifier().fit(X, y, sample_weight=np.ones(len(y)))


def test_bad_parameters_say_what_is_allowed(digits):
    X, y = digits
    with pytest.raises(ValueError, match="'solver' parameter of MLPClassifier must be"):
        MLPClassifier(solver="lbfgs").fit(X, y)
    with pytest.raises(ValueError, match="hidden_layer_sizes must be > 0"):
        MLPClassifier(hidden_layer_sizes=(4, 0)).fit(X, y)
    for sizes in [(5.7,), (True,), ("8",)]:
        with pytest.raises(TypeError, match="whole numbers of units"):
            MLPClassifier(hidden_layer_sizes=sizes).fit(X, y)
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        MLPRegressor(early_stopping=True).partial_fit(X, y)


def test_model_is_a_sequential_that_saves_and_loads(digits, tmp_path):
    X, _ = digits
    est = MLPRegressor(hidden_layer_sizes=(8,), max_iter=2, random_state=0, solver="adam")
    est.fit(X, regression_targets(X))
    nb.save(est.model_, tmp_path / "net.h5", optimizer=est.model_.optimizer)
    model, optimizer, _ = nb.load(tmp_path / "net.h5", with_optimizer=True)
    assert model.loss.config() == est.model_.loss.config()
    assert model.loss.config()["type"] == "SquaredErrorOverOutputs"  # two outputs
    assert type(optimizer).__name__ == "EfficientAdam" and optimizer.iterations == 2 * 4
    expected = est.predict(X)
    np.testing.assert_allclose(nb.to_numpy(model.predict_proba(X)), expected, rtol=1e-6)


# --- in scikit-learn's machinery --------------------------------------------------------


def test_cross_val_score_equals_scikit_learns(digits):
    X, y = digits
    params = dict(
        hidden_layer_sizes=(16,),
        max_iter=10,
        learning_rate_init=0.02,
        random_state=0,
        shuffle=False,
        alpha=0.0,
    )
    ours = cross_val_score(MLPClassifier(**params, dtype="float64"), X, y, cv=4)
    theirs = cross_val_score(sk.MLPClassifier(**params), X, y, cv=4)
    np.testing.assert_array_equal(ours, theirs)
    assert ours.mean() > 0.75


def test_pipeline_in_grid_search_with_one_and_two_jobs(digits):
    X, y = digits
    pipe = make_pipeline(StandardScaler(), MLPClassifier((16,), max_iter=15, random_state=0))
    grid = {"mlpclassifier__learning_rate_init": [1e-3, 1e-2]}
    searches = []
    for n_jobs in (1, 2):
        search = GridSearchCV(pipe, grid, cv=3, n_jobs=n_jobs)
        searches.append(search.fit(X, y))
    one, two = searches
    np.testing.assert_array_equal(
        one.cv_results_["mean_test_score"], two.cv_results_["mean_test_score"]
    )
    assert one.best_params_ == two.best_params_ == {"mlpclassifier__learning_rate_init": 1e-2}
    assert one.best_score_ > 0.8
    assert isinstance(two.best_estimator_[-1].model_, nb.Sequential)
    np.testing.assert_array_equal(one.predict(X), two.predict(X))


def test_clone_keeps_parameters_and_drops_the_fit(digits):
    X, y = digits
    est = MLPRegressor(hidden_layer_sizes=(3,), max_iter=1, backend="strict", dtype="float32")
    est.fit(X, X[:, 5])
    fresh = clone(est)
    assert fresh.get_params() == est.get_params()
    assert not hasattr(fresh, "model_")


# --- scikit-learn's own estimator, both ways ------------------------------------------------


@pytest.mark.parametrize("task", ["multiclass", "binary", "multi-output"])
def test_to_sklearn_predicts_the_same(backend, digits, task):
    X, y = digits
    target = {"multiclass": y, "binary": y > 4, "multi-output": regression_targets(X)}[task]
    cls = MLPRegressor if task == "multi-output" else MLPClassifier
    ours = cls(
        hidden_layer_sizes=(16,),
        activation="tanh",
        max_iter=10,
        random_state=0,
        backend=backend.name,
    ).fit(X, target)
    theirs = ours.to_sklearn()
    assert type(theirs).__module__.startswith("sklearn.")
    assert theirs.get_params()["activation"] == "tanh" and theirs.n_iter_ == 10
    method = "predict" if task == "multi-output" else "predict_proba"
    np.testing.assert_allclose(getattr(ours, method)(X), getattr(theirs, method)(X), atol=1e-6)
    np.testing.assert_allclose(ours.predict(X > 0.5), theirs.predict(X > 0.5), atol=1e-6)


def test_an_early_stopped_net_goes_on_training_in_scikit_learn(digits):
    X, y = digits
    ours = MLPClassifier((8,), early_stopping=True, max_iter=4, random_state=0).fit(X, y)
    theirs = ours.to_sklearn().set_params(warm_start=True, max_iter=2)
    # a score its next epochs cannot beat: at the end scikit-learn puts back the best
    # weights it kept, which are the ones to_sklearn gave (else an AttributeError)
    theirs.best_validation_score_ = 2.0
    theirs.fit(X, y)
    assert theirs.n_iter_ == 2 and len(theirs.validation_scores_) == 6
    for mine, kept in zip(ours.coefs_, theirs.coefs_, strict=True):
        np.testing.assert_array_equal(kept, mine)  # the best of ours, put back


def test_from_sklearn_predicts_the_same(backend, digits):
    X, y = digits
    theirs = sk.MLPClassifier(
        (16,), activation="logistic", solver="lbfgs", max_iter=20, random_state=0
    ).fit(X, y)
    ours = MLPClassifier.from_sklearn(theirs, backend=backend.name)
    assert ours.solver == "adam" and ours.model_.backend.dtype_name == "float64"
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-6)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    ours.partial_fit(X, y)  # lbfgs kept no loss curve: training goes on from a new one
    assert len(ours.loss_curve_) == 1 and ours.n_iter_ == 1
    ours.set_params(warm_start=True, max_iter=2).fit(X, y)
    assert len(ours.loss_curve_) == 3
    poisson = sk.MLPRegressor(hidden_layer_sizes=(2,), loss="poisson", max_iter=1).fit(X, y)
    with pytest.raises(ValueError, match="output 'exp'"):
        MLPRegressor.from_sklearn(poisson)
    with pytest.raises(TypeError, match="takes a fitted sklearn.neural_network.MLPRegressor, not"):
        MLPRegressor.from_sklearn(theirs)  # it predicted probabilities as its values


class TunedClassifier(MLPClassifier):
    """An estimator of one's own, with a parameter of its own: scikit-learn has no class
    of its name, nor that parameter."""

    def __init__(self, hidden_layer_sizes=(100,), label_smoothing=0.0, **params):
        super().__init__(hidden_layer_sizes, **params)
        self.label_smoothing = label_smoothing


def test_a_subclass_converts_as_the_estimator_it_derives_from(digits):
    """Both ways looked scikit-learn's class up by the subclass's name (AttributeError)."""
    X, y = digits
    theirs = sk.MLPClassifier((8,), max_iter=5, random_state=0).fit(X, y)
    ours = TunedClassifier.from_sklearn(theirs)
    assert type(ours) is TunedClassifier
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-12)
    back = ours.to_sklearn()
    assert type(back) is sk.MLPClassifier
    np.testing.assert_array_equal(back.predict(X), theirs.predict(X))


# --- pickles ------------------------------------------------------------------------------


def test_pickle_joblib_and_deepcopy_round_trips_are_exact(backend, digits, tmp_path):
    X, y = digits
    est = MLPClassifier((16,), max_iter=3, random_state=0, backend=backend.name)
    est.fit(X, y)
    joblib.dump(est, tmp_path / "est.joblib")
    copies = [
        pickle.loads(pickle.dumps(est)),
        copy.deepcopy(est),
        joblib.load(tmp_path / "est.joblib"),
    ]
    for other in copies:
        assert other.model_.backend.name == est.model_.backend.name
        np.testing.assert_array_equal(other.predict_proba(X), est.predict_proba(X))
        assert other.loss_curve_ == est.loss_curve_
    # training goes on from the same optimizer state in the copy and the original
    for model in (copies[0], est):
        model.partial_fit(X, y)
    np.testing.assert_array_equal(copies[0].coefs_[0], est.coefs_[0])


def pickle_globals(data: bytes) -> set[str]:
    """The modules a pickle imports when loaded."""
    found, strings = set(), []
    for op, arg, _ in pickletools.genops(io.BytesIO(data)):
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(arg)
        elif op.name == "STACK_GLOBAL":
            found.add(strings[-2].split(".")[0])
        elif op.name == "GLOBAL":
            found.add(arg.split(" ")[0].split(".")[0])
    return found


@pytest.mark.parametrize("landing", ["numpy", "strict"])
def test_a_pickle_loaded_off_its_gpu_goes_on_training_where_it_loaded(digits, landing):
    """An estimator fitted with backend="cupy", unpickled where no GPU answers, loaded
    onto NumPy and predicted, but its partial_fit asked for CuPy again and failed; the
    warning's advice (nb.use_backend around the load, est.model_.to) did not help."""
    try:
        nb.backend.get_backend("cupy")
        pytest.skip("CuPy runs here")
    except nb.BackendUnavailableError:
        pass
    X, y = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = MLPClassifier((8,), max_iter=2, random_state=0).fit(X, y)
    state = est.__getstate__()
    state["backend"] = state["model_"]["backend"] = "cupy"  # as a GPU machine pickles it
    loaded = MLPClassifier.__new__(MLPClassifier)
    with nb.use_backend(landing), pytest.warns(UserWarning, match="loaded onto .*partial_fit"):
        loaded.__setstate__(state)
    assert loaded.get_params()["backend"] is None
    auto = MLPClassifier.__new__(MLPClassifier)
    with pytest.warns(UserWarning, match="loaded onto") as said:
        auto.__setstate__({**state, "backend": "auto"})  # "auto" chose CuPy: it chooses again
    assert auto.get_params()["backend"] == "auto" and said[0].filename == __file__
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    loaded.partial_fit(X, y)
    est.partial_fit(X, y)
    assert loaded.model_.backend.name == landing
    np.testing.assert_allclose(loaded.coefs_[0], est.coefs_[0], rtol=1e-6, atol=1e-9)


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
def test_device_trained_pickle_loads_where_its_library_is_missing(digits, tmp_path):
    """A model trained on torch (standing in for CuPy) holds host arrays and a backend
    name: it loads in a process where torch cannot be imported, onto NumPy."""
    X, y = digits
    est = MLPClassifier((16,), max_iter=3, random_state=0, backend="torch")
    est.fit(X, y)
    data = pickle.dumps(est)
    assert "torch" not in pickle_globals(data)
    (tmp_path / "est.pkl").write_bytes(data)
    np.save(tmp_path / "X.npy", X)
    script = textwrap.dedent(f"""
        import pickle, sys, warnings
        import numpy as np
        import importlib.abc
        class NoTorch(importlib.abc.MetaPathFinder):  # as if torch were not installed
            def find_spec(self, name, path, target=None):
                if name.split(".")[0] == "torch":
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        sys.meta_path.insert(0, NoTorch())
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est = pickle.loads(open({str(tmp_path / "est.pkl")!r}, "rb").read())
        print([str(w.message) for w in caught if "cannot run here" in str(w.message)])
        print(est.model_.backend.name, "torch" in sys.modules)
        X = np.load({str(tmp_path / "X.npy")!r})
        np.save({str(tmp_path / "proba.npy")!r}, est.predict_proba(X))
    """)
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert "trained on backend 'torch'" in out[0] and "loaded onto 'numpy'" in out[0]
    assert out[1] == "numpy False"
    np.testing.assert_allclose(np.load(tmp_path / "proba.npy"), est.predict_proba(X), atol=1e-6)


# --- on torch:cuda: the step recorded ----------------------------------------------------


@pytest.fixture
def stand_in(monkeypatch):
    """compile=True's CUDA graph, on every backend: tests/test_replay.py's stand-in."""
    from tests.test_replay import Rerun

    rerun = Rerun()

    def records_here(backend, model, optimizer):
        rerun.model, rerun.optimizer = model, optimizer
        return replay.replayable(model, optimizer)

    monkeypatch.setattr(replay, "records_here", records_here)
    monkeypatch.setattr(replay, "recorder_for", lambda backend: rerun)
    return rerun


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_where_the_step_replays_the_estimator_records_it_and_trains_as_eagerly(
    digits, stand_in, solver
):
    """800 digits in batches of 100, 5 epochs: 3 steps warm up, 1 is recorded, 36 replay
    (Adam's count on the device); the weights and losses are the eager fit's (a count
    read from the host instead is 1e-3 off: tests/test_replay.py)."""
    X, y = digits
    params = dict(hidden_layer_sizes=(16,), max_iter=5, random_state=0, solver=solver,
                  batch_size=100)  # fmt: skip
    with nb.backend.fused(False):  # both through the optimizer's update, weight by weight
        replayed = MLPClassifier(**params).fit(X, y)
        assert stand_in.calls == {"warm": 3, "record": 1, "replay": 36}
        monkeypatch = pytest.MonkeyPatch()
        monkeypatch.setattr(replay, "records_here", lambda backend, model, optimizer: False)
        eager = MLPClassifier(**params).fit(X, y)
        monkeypatch.undo()
    pairs = zip(
        replayed.coefs_ + replayed.intercepts_, eager.coefs_ + eager.intercepts_, strict=True
    )
    for got, want in pairs:  # Adam's rates from the count as a float: an ulp apart
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    assert replayed.loss_curve_ == pytest.approx(eager.loss_curve_, rel=1e-12)
    assert replayed.n_iter_ == eager.n_iter_ == 5


@pytest.mark.parametrize("rate", ["invscaling", "adaptive", "partial_fit"])
def test_a_rate_that_changes_between_epochs_keeps_the_eager_step(digits, stand_in, rate):
    """And so does a partial_fit call: its few steps would all be warm-up."""
    X, y = digits
    est = MLPClassifier(hidden_layer_sizes=(16,), max_iter=3, random_state=0, solver="sgd",
                        learning_rate="constant" if rate == "partial_fit" else rate,
                        batch_size=100)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        if rate == "partial_fit":
            est.partial_fit(X, y, classes=np.arange(10))
        else:
            est.fit(X, y)
    assert stand_in.calls == {"warm": 0, "record": 0, "replay": 0}


# --- importing ------------------------------------------------------------------------------


def test_importing_nnbackend_does_not_import_scikit_learn():
    script = (
        "import sys, nnbackend as nb; print('sklearn' in sys.modules); "
        "nb.sklearn.MLPClassifier; print('sklearn' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["False", "True"]


def test_alpha_trains_as_scikit_learns_where_the_samples_fill_whole_batches(digits):
    """What the README says of alpha: the same loss curve where every batch is full,
    a different one, at a large alpha, where the last batch holds one row (its penalty
    divided by 200 here, by 1 in scikit-learn)."""
    X, y = digits
    settings = dict(hidden_layer_sizes=(8,), alpha=3.0, max_iter=3, batch_size=200,
                    shuffle=False, random_state=0)  # fmt: skip
    for rows, alike in ((600, True), (601, False)):
        ours = MLPClassifier(**settings).fit(X[:rows], y[:rows]).loss_curve_
        theirs = sk.MLPClassifier(**settings).fit(X[:rows], y[:rows]).loss_curve_
        gap = max(abs(a - b) for a, b in zip(ours, theirs, strict=True))
        assert (gap < 1e-9) if alike else (gap > 1e-3), (rows, gap)


def test_coefs_and_intercepts_are_assigned_as_in_scikit_learn(digits):
    """est.coefs_ = [...] (pruning, one's own start) raised "property has no setter"."""
    X, y = digits
    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X, y)
    est.coefs_ = [np.zeros_like(W) for W in est.coefs_]
    est.intercepts_ = [np.zeros_like(b) for b in est.intercepts_]
    assert not any(W.any() for W in est.coefs_)
    np.testing.assert_allclose(est.predict_proba(X[:2]), 0.1)  # ten classes, all alike
    with pytest.raises(ValueError, match=r"0\.W is float64 \(64, 8\); cannot assign"):
        est.coefs_ = [np.zeros((3, 3)), np.zeros((8, 10))]
    with pytest.raises(ValueError, match="intercepts_ takes 2 arrays, one a layer, not 1"):
        est.intercepts_ = [np.zeros(8)]


def test_an_edit_in_place_of_coefs_is_refused_not_lost(backend, digits):
    """The copies took scikit-learn's ``est.coefs_[0][:, k] = 0`` and changed nothing;
    scikit-learn's own estimator, converted, still trains in place."""
    X, y = digits
    est = MLPClassifier((8,), max_iter=2, random_state=0, backend=backend.name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
        for held in (est.coefs_[0], est.intercepts_[-1]):
            with pytest.raises(ValueError, match="read-only"):
                held[:] = 0.0
        theirs = est.to_sklearn()
        theirs.coefs_[-1][:] = 0.0
        theirs.partial_fit(X, y)
    assert theirs.coefs_[-1].any() and est.coefs_[-1].any()
