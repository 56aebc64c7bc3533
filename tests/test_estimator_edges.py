"""Edges of the scikit-learn estimators' shared base (nnbackend.sklearn.base): their
parameters, warm starts and early stopping, that a mutation run of base.py found no
test holding: each test fails under a mutant the rest of the suite let pass (the
comments name them)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn import neural_network
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from nnbackend.sklearn import MLPClassifier, MLPRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

RNG = np.random.default_rng(0)
X = RNG.normal(size=(60, 3))
LABELS = (X[:, 0] > 0).astype(np.int64)
TARGETS = X[:, 0] - 2 * X[:, 1]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("batch_size", 0),
        ("max_iter", 0),
        ("momentum", 1.5),
        ("validation_fraction", 1.0),
        ("beta_1", 1.0),
        ("beta_2", 1.0),
        ("n_iter_no_change", 0),
    ],
)
def test_a_value_out_of_scikit_learns_range_is_refused_before_training(name, value):
    """The parameter ranges are scikit-learn's: the first value outside each one is
    refused by name, as scikit-learn's own MLPClassifier refuses it."""
    # kills base 11 (batch_size=0), 15 (max_iter=0), 18 (momentum up to 2), 21
    # (validation_fraction up to 2), 24 (beta_1), 27 (beta_2), 31 (n_iter_no_change=0)
    est = MLPClassifier((3,), **{"max_iter": 2, name: value})
    with pytest.raises(InvalidParameterError, match=f"The '{name}' parameter of MLPClassifier"):
        est.fit(X, LABELS)
    assert not hasattr(est, "model_")


@pytest.mark.parametrize("nesterovs_momentum", [True, False])
def test_momentum_of_one_trains_as_in_scikit_learn(nesterovs_momentum):
    """momentum=1.0 is inside scikit-learn's range, and its MLP trains with it: so does
    this one (the optimizer refused it at the fit's start, after the checks passed)."""
    options = {"solver": "sgd", "momentum": 1.0, "nesterovs_momentum": nesterovs_momentum}
    theirs = neural_network.MLPClassifier((3,), max_iter=2, random_state=0, **options)
    ours = MLPClassifier((3,), max_iter=2, random_state=0, **options)
    for est in (theirs, ours):
        est.fit(X, LABELS)
        assert est.n_iter_ == 2 and np.isfinite(est.loss_curve_).all()


@pytest.mark.parametrize(
    ("sizes", "widths"),
    [(1, [1]), (3, [3]), ((1,), [1]), ((2, 1), [2, 1]), (np.array([4, 1]), [4, 1])],
)
def test_hidden_layers_of_one_unit_and_a_bare_int_are_taken(sizes, widths):
    """A hidden layer may have one unit; a bare int is one hidden layer of that many."""
    # kills base 7 (hidden_layer_sizes=1 refused), 99 (a bare int not made a list:
    # a TypeError), 112 (a layer of one unit refused)
    est = MLPRegressor(hidden_layer_sizes=sizes, batch_size=1, max_iter=1).fit(X, TARGETS)
    shapes = [(3, widths[0]), *zip(widths, [*widths[1:], 1], strict=True)]
    assert [W.shape for W in est.coefs_] == shapes
    assert est.n_layers_ == len(widths) + 2
    # kills base 10 (batch_size=1 refused): one epoch of 60 steps of one sample
    assert est.n_iter_ == 1 and est.t_ == 60


@pytest.mark.parametrize("sizes", [(4, 2.5), (4, True), [3.0]])
def test_a_hidden_layer_size_that_is_not_a_whole_number_is_refused(sizes):
    """2.5 units (or True, or 3.0) among whole numbers is refused, not rounded down."""
    # kills base 102 (all -> any: one whole number was enough)
    with pytest.raises(TypeError, match="hidden_layer_sizes must hold whole numbers of units"):
        MLPClassifier(sizes, max_iter=1).fit(X, LABELS)


def test_a_warm_start_keeps_the_best_loss_and_no_validation_scores(backend):
    """Without early stopping, a warm start goes on from the best loss so far (the
    second fit's flipped labels never reach it) and makes no validation scores."""
    # kills base 86, 88 (validation_scores_ made [] on a warm start), 93 (best_loss_
    # started again from inf on each warm start)
    est = MLPClassifier(
        (4,), max_iter=5, learning_rate_init=0.01, warm_start=True, random_state=0,
        backend=backend.name,
    )  # fmt: skip
    est.fit(X, LABELS)
    est.fit(X, 1 - LABELS)
    curve = est.loss_curve_
    assert len(curve) == 10
    assert min(curve[5:]) > min(curve[:5])
    assert est.best_loss_ == pytest.approx(min(curve[:5]), rel=1e-12)
    assert est.validation_scores_ is None and est.best_validation_score_ is None


def test_a_warm_start_with_early_stopping_goes_on_with_its_scores(backend):
    """With early stopping, a warm start appends to the validation scores, keeps the
    best one and has no best loss (scikit-learn's None)."""
    # kills base 87 (the scores started anew), 92, 94 (best_loss_ made inf)
    est = MLPClassifier(
        (4,), max_iter=3, early_stopping=True, warm_start=True, random_state=0,
        n_iter_no_change=50, backend=backend.name,
    )  # fmt: skip
    est.fit(X, LABELS)
    first = list(est.validation_scores_)
    est.fit(X, LABELS)
    scores = est.validation_scores_
    assert len(first) == 3 and len(scores) == 6 and scores[:3] == first
    assert est.best_validation_score_ == max(scores)
    assert est.best_loss_ is None


def test_early_stopping_holds_out_two_samples_but_not_one():
    """scikit-learn's floor: 10% of 20 samples (two) is a validation set, of 10 (one)
    is too small."""
    # kills base 129, 131 (two refused), 132, 133 (one accepted)
    est = MLPRegressor(hidden_layer_sizes=(3,), max_iter=2, early_stopping=True)
    assert len(est.fit(X[:20], TARGETS[:20]).validation_scores_) == 2
    with pytest.raises(ValueError, match="The validation set is too small"):
        est.fit(X[:10], TARGETS[:10])


def test_a_regressors_early_stopping_scores_what_scikit_learns_does(backend):
    """A regressor's held-out split is not stratified (its targets are not classes):
    the same seed holds out the same rows, and scores them the same, as
    scikit-learn's own MLPRegressor."""
    # kills base 145 (stratified on continuous targets: a ValueError from the split)
    est = MLPRegressor(
        hidden_layer_sizes=(4,), max_iter=3, early_stopping=True, random_state=0,
        backend=backend.name, dtype="float64",
    )  # fmt: skip
    ours = est.fit(X, TARGETS).validation_scores_
    theirs = neural_network.MLPRegressor(
        hidden_layer_sizes=(4,), max_iter=3, early_stopping=True, random_state=0
    ).fit(X, TARGETS)
    assert len(ours) == 3
    np.testing.assert_allclose(ours, theirs.validation_scores_, rtol=1e-8)


def convergence_warnings(fit) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit()
    return [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]


def test_only_a_fit_that_runs_out_of_iterations_warns_it_has_not_converged():
    """max_iter reached without converging: scikit-learn's ConvergenceWarning; a fit
    that stopped earlier, or a partial_fit (one epoch by design), warns nothing."""
    # kills base 182 (the warning on every fit and partial_fit)
    est = MLPClassifier((3,), max_iter=2, random_state=0)
    assert convergence_warnings(lambda: est.fit(X, LABELS)) == [
        "Stochastic Optimizer: Maximum iterations (2) reached and the optimization "
        "hasn't converged yet."
    ]
    assert convergence_warnings(lambda: est.partial_fit(X, LABELS)) == []
    stops = MLPClassifier((3,), max_iter=50, tol=10.0, n_iter_no_change=1, random_state=0)
    assert convergence_warnings(lambda: stops.fit(X, LABELS)) == []
    # the first epoch sets the best loss; the next two are not 10 below it, and two
    # epochs without improvement are more than n_iter_no_change=1: it stops after three
    assert stops.n_iter_ == 3


def test_a_batch_as_large_as_the_data_is_no_clipping():
    """batch_size equal to the number of samples is one whole batch, with no warning;
    one more is clipped, with scikit-learn's warning."""
    # kills base 206 (batch_size == n_samples warned of clipping)
    for size, clipped in [(60, False), (61, True)]:
        est = MLPRegressor(hidden_layer_sizes=(3,), batch_size=size, max_iter=1)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est.fit(X, TARGETS)
        said = [str(w.message) for w in caught if w.category is UserWarning]
        assert any("It is going to be clipped" in s for s in said) is clipped


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score", "coefs_"])
def test_an_unfitted_estimator_says_it_is_not_fitted(method):
    """predict, predict_proba, score and coefs_ before fit raise scikit-learn's
    NotFittedError, not an AttributeError about model_."""
    # kills base 216 (_outputs' check_is_fitted dropped), 227 (_dense_params')
    est = MLPClassifier()
    with pytest.raises(NotFittedError, match="This MLPClassifier instance is not fitted yet"):
        if method == "coefs_":
            est.coefs_  # noqa: B018
        elif method == "score":
            est.score(X, LABELS)
        else:
            getattr(est, method)(X)
