"""The estimators at their boundaries, as scikit-learn's behave there: a plateau at
tol=0, negative R² scores, weights made infinite by the last step, partial_fit's
epochs, a pickle naming a backend this version does not know."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from nnbackend.sklearn import MLPClassifier, MLPRegressor

RNG = np.random.default_rng(0)
X = RNG.normal(size=(60, 3))
LABELS = (X[:, 0] > 0).astype(np.int64)
TARGETS = X[:, 0] - 2 * X[:, 1]


def test_partial_fit_never_warns_of_max_iter():
    """scikit-learn's partial_fit runs one epoch and never says max_iter was reached."""
    est = MLPClassifier((4,), max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est.partial_fit(X, LABELS, classes=[0, 1])
        est.partial_fit(X, LABELS)


def test_early_stopping_keeps_the_best_of_negative_r2_scores():
    """The first held-out score is the best so far even when it is below 0 (R²)."""
    est = MLPRegressor(
        hidden_layer_sizes=(3,),
        max_iter=3,
        early_stopping=True,
        random_state=0,
        n_iter_no_change=50,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, TARGETS + 100.0)
    assert max(est.validation_scores_) < 0
    assert est.best_validation_score_ == max(est.validation_scores_)


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_score_refuses_infinite_predictions_as_scikit_learn():
    est = MLPRegressor(hidden_layer_sizes=(3,), max_iter=2, random_state=0, dtype="float32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, TARGETS)
    big = np.full((4, 3), 3e38)  # finite in float32; the predictions overflow to -inf
    with pytest.raises(ValueError, match="infinity"):
        est.score(big, TARGETS[:4])


@pytest.mark.filterwarnings("ignore:Got `batch_size` less than 1")  # 54 rows left to train
@pytest.mark.parametrize("early_stopping", [False, True])
def test_with_tol_0_an_equal_epoch_is_not_counted_as_no_improvement(early_stopping):
    """scikit-learn counts an epoch as no improvement only where the loss is above
    (the score below) the best by tol: with tol=0 a plateau of equal values goes on
    to max_iter, as scikit-learn's does."""
    est = MLPClassifier(
        (4,),
        max_iter=8,
        tol=0.0,
        n_iter_no_change=2,
        alpha=0.0,
        learning_rate_init=1e-300,
        shuffle=False,
        batch_size=60,
        early_stopping=early_stopping,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, LABELS)
    curve = est.validation_scores_ if early_stopping else est.loss_curve_
    assert len(set(curve)) == 1  # nothing moves: every epoch equals the first
    assert est.n_iter_ == 8


def test_a_pickle_of_a_backend_this_version_does_not_name_loads_onto_numpy():
    """A backend name that get_backend refuses with ValueError (unknown here, or a
    device without the model's dtype) falls back as an unavailable one does."""
    import pickle

    est = MLPClassifier((4,), max_iter=2, random_state=0, backend="numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, LABELS)
    blob = pickle.dumps(est)
    state = est.__getstate__()
    state["model_"]["backend"] = "jax"  # a name this nnbackend does not know
    loaded = MLPClassifier.__new__(MLPClassifier)
    with pytest.warns(UserWarning, match="'jax', which cannot run here"):
        loaded.__setstate__(state)
    assert loaded.model_.backend.name == "numpy" and loaded.backend is None
    np.testing.assert_array_equal(loaded.predict(X), pickle.loads(blob).predict(X))


def test_adaptive_stops_at_a_learning_rate_of_exactly_1e_6():
    """scikit-learn's adaptive sgd stops once the rate is <= 1e-6, not only below it."""
    kw = dict(
        hidden_layer_sizes=(4,),
        solver="sgd",
        learning_rate="adaptive",
        learning_rate_init=1e-6,
        tol=10.0,
        n_iter_no_change=1,
        max_iter=20,
        random_state=0,
    )
    est = MLPClassifier(**kw).fit(X, LABELS)
    assert est.n_iter_ == 3


def test_weights_made_infinite_by_the_last_step_are_refused_with_a_finite_loss():
    """One step of a huge learning rate: the epoch's loss (taken before the step) is
    finite, the weights after it are not; scikit-learn's error, not NaN predictions."""
    est = MLPRegressor(
        hidden_layer_sizes=(3,),
        solver="sgd",
        learning_rate_init=1e300,
        momentum=0.0,
        max_iter=1,
        batch_size=60,
        shuffle=False,
        random_state=0,
    )
    with pytest.raises(ValueError, match="non-finite parameter weights"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, TARGETS * 1e10)


def test_early_stopping_with_no_validation_fraction_names_it():
    """train_test_split's own error named its test_size, which the user never passed."""
    est = MLPClassifier((3,), max_iter=2, early_stopping=True, validation_fraction=0.0)
    with pytest.raises(ValueError, match="Increase 'validation_fraction'"):
        est.fit(X, LABELS)


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_early_stopping_on_one_sample_is_told_as_scikit_learn_tells_it(Estimator):
    """No validation_fraction helps one sample: told to increase it, scikit-learn's own
    estimator checks (check_fit2d_1sample) failed where its MLP passes."""
    from sklearn.utils.estimator_checks import check_fit2d_1sample

    with pytest.raises(ValueError, match=r"With n_samples=1, .* the resulting train set will"):
        Estimator(early_stopping=True).fit(np.ones((1, 3)), [1])
    check_fit2d_1sample(Estimator.__name__, Estimator(early_stopping=True))


def test_a_device_array_without_features_gets_scikit_learns_error():
    import array_api_strict as xps

    with pytest.raises(ValueError, match=r"Found array with 0 feature\(s\) \(shape=\(60, 0\)\)"):
        MLPClassifier((3,), max_iter=2, backend="strict").fit(xps.asarray(X[:, :0]), LABELS)


def test_early_stopping_holds_out_the_ceiling_of_the_fraction():
    """0.1 of 11 rows holds out 2, as scikit-learn's train_test_split: not too small."""
    X11 = X[:11]
    est = MLPRegressor(hidden_layer_sizes=(3,), max_iter=2, early_stopping=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        assert len(est.fit(X11, TARGETS[:11]).validation_scores_) == 2


def test_a_device_array_without_samples_gets_scikit_learns_error():
    import array_api_strict as xps

    with pytest.raises(ValueError, match=r"Found array with 0 sample\(s\) \(shape=\(0, 3\)\)"):
        MLPClassifier((3,), max_iter=2, backend="strict").fit(xps.asarray(X[:0]), LABELS[:0])
