"""Edges of the scikit-learn estimators' schedule (nnbackend.sklearn.convergence) that
a mutation run found no test holding: each test fails under a mutant the rest of the
suite let pass (the comments name them).
Expected values are scikit-learn's own MLPClassifier/MLPRegressor run with the same
settings, or worked out by hand."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn import neural_network
from sklearn.exceptions import ConvergenceWarning

from nnbackend.sklearn import MLPClassifier, MLPRegressor
from tests.test_torch_kernel_and_convergence_edges import TARGET, X

STALLING = dict(hidden_layer_sizes=(4,), n_iter_no_change=1, tol=1e9, max_iter=20,
                random_state=0)  # fmt: skip


def separable(n: int = 100):
    """Two classes a margin of 4 apart along the first feature."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 2))
    y = (x[:, 0] > 0).astype(int)
    x[:, 0] += np.where(y == 1, 2.0, -2.0)
    return x, y


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("early_stopping", [True, False])
def test_verbose_lines_are_scikit_learns(capsys, early_stopping):
    """verbose=True prints scikit-learn's lines, word for word: each epoch's loss, the
    validation score, the stall that divides the learning rate and the one that stops."""
    # kills convergence 56, 57 (no validation score line), 95, 96 (no line for the stall that
    # divides the learning rate); fails too under 76, 97, 98, which other tests kill
    kw = dict(STALLING, solver="sgd", learning_rate="adaptive", learning_rate_init=1.5e-6,
              early_stopping=early_stopping, verbose=True)  # fmt: skip
    neural_network.MLPRegressor(**kw).fit(X, TARGET)
    theirs = capsys.readouterr().out
    MLPRegressor(**kw).fit(X, TARGET)
    ours = capsys.readouterr().out
    watched = "Validation score" if early_stopping else "Training loss"
    assert theirs.count(f"{watched} did not improve more than tol=") == 2
    assert theirs.count("Validation score: ") == (5 if early_stopping else 0)
    assert ours == theirs


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_validation_score_that_only_equals_the_best_is_not_a_stall_at_tol_zero():
    """With early_stopping and tol=0, a validation score equal to the best so far (a step
    of 1e-300 leaves every weight as it was) is no worse: training runs to max_iter, as
    in scikit-learn."""
    # kills convergence 59 (score <= best + tol: equality counted as a stall)
    kw = dict(hidden_layer_sizes=(4,), solver="sgd", learning_rate_init=1e-300,
              momentum=0.0, tol=0.0, n_iter_no_change=2, max_iter=8, shuffle=False,
              batch_size=27, early_stopping=True, random_state=0)  # fmt: skip
    theirs = neural_network.MLPRegressor(**kw).fit(X, TARGET)
    ours = MLPRegressor(**kw).fit(X, TARGET)
    assert theirs.n_iter_ == 8
    assert ours.n_iter_ == 8 and len(set(ours.validation_scores_)) == 1


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_early_stopping_keeps_the_first_epoch_that_reached_the_best_score():
    """Validation accuracy reaches 1.0 at epoch 2 and stays there: the weights kept are
    epoch 2's (those of a fit stopped there), not the last epoch's, as scikit-learn
    keeps the first best."""
    # fails under convergence 69 (score >= best: a later equal score took the best weights),
    # which other tests kill only through a different stop
    x, y = separable()
    kw = dict(hidden_layer_sizes=(4,), solver="sgd", learning_rate_init=0.1,
              early_stopping=True, n_iter_no_change=3, max_iter=50, random_state=0)  # fmt: skip
    theirs = neural_network.MLPClassifier(**kw).fit(x, y)
    ours = MLPClassifier(**kw).fit(x, y)
    assert theirs.validation_scores_ == [0.8, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert ours.validation_scores_ == theirs.validation_scores_
    at_epoch_2 = MLPClassifier(**{**kw, "max_iter": 2}).fit(x, y)
    for got, want in zip(
        ours.coefs_ + ours.intercepts_, at_epoch_2.coefs_ + at_epoch_2.intercepts_, strict=True
    ):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(ours.coefs_, theirs.coefs_, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_adaptive_sgd_at_the_floor_itself_stops_at_the_first_stall():
    """A learning rate of exactly 1e-6 is not above the floor: the first stall (epoch 3)
    stops training without dividing it, as in scikit-learn."""
    # kills convergence 88 (lr >= floor: 1e-6 divided once more)
    kw = dict(STALLING, solver="sgd", learning_rate="adaptive", learning_rate_init=1e-6)
    theirs = neural_network.MLPRegressor(**kw).fit(X, TARGET)
    ours = MLPRegressor(**kw).fit(X, TARGET)
    assert theirs.n_iter_ == 3
    assert ours.n_iter_ == 3 and ours.model_.optimizer.lr == 1e-6


def test_adam_stops_at_the_first_stall_whatever_learning_rate_says():
    """learning_rate="adaptive" is for sgd alone: Adam stops at its first stall (epoch 3)
    with its step size as given, as in scikit-learn."""
    # kills convergence 81 (Adam's step size divided by 5 and training gone on)
    kw = dict(STALLING, solver="adam", learning_rate="adaptive", learning_rate_init=0.01)
    theirs = neural_network.MLPRegressor(**kw).fit(X, TARGET)
    ours = MLPRegressor(**kw).fit(X, TARGET)
    assert theirs.n_iter_ == 3
    assert ours.n_iter_ == 3 and ours.model_.optimizer.lr == 0.01


def test_a_stop_at_the_last_epoch_allowed_is_convergence_without_a_warning():
    """A stall that stops training at epoch 3 of max_iter=3 is convergence: no
    ConvergenceWarning, as in scikit-learn (it warns only when max_iter cut training)."""
    # kills convergence 99, 100 (the stop not recorded: "Maximum iterations" warned)
    kw = dict(STALLING, solver="sgd", learning_rate_init=0.01, max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        theirs = neural_network.MLPRegressor(**kw).fit(X, TARGET)
        ours = MLPRegressor(**kw).fit(X, TARGET)
    assert theirs.n_iter_ == 3
    assert ours.n_iter_ == 3
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        MLPRegressor(**{**kw, "max_iter": 2}).fit(X, TARGET)


@pytest.mark.parametrize(
    "params",
    [
        dict(solver="sgd", momentum=0.5, nesterovs_momentum=False),
        dict(solver="sgd", momentum=0.5, nesterovs_momentum=True),
        dict(solver="adam", epsilon=1e-3, beta_1=0.8, beta_2=0.99),
    ],
)
def test_a_solver_s_own_settings_take_scikit_learn_s_steps(params):
    """A momentum or epsilon left at its default in the solver passed every other test."""
    from sklearn.datasets import load_digits

    from nnbackend.sklearn import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X, y = X[:300] / 16.0, y[:300]
    same = dict(hidden_layer_sizes=(8,), max_iter=3, learning_rate_init=0.01, random_state=0,
                shuffle=False, batch_size=100, **params)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPClassifier(backend="numpy", dtype="float64", **same).fit(X, y)
        theirs = neural_network.MLPClassifier(**same).fit(X, y)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)
