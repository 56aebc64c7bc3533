"""Edges of the scikit-learn estimators' input checks (nnbackend.sklearn.inputs) and
output heads (nnbackend.sklearn.heads) that a mutation run of both modules found no
test holding: each test fails under a mutant the rest of the suite let pass (the
comments name them)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import nnbackend as nb
from nnbackend.losses import MSE, BinaryCrossEntropy, SoftmaxCrossEntropy
from nnbackend.sklearn import MLPClassifier, MLPRegressor
from nnbackend.sklearn.heads import ClippedLogLoss, loss_for

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

RNG = np.random.default_rng(0)
X = RNG.normal(size=(60, 3))
LABELS = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.5)  # classes 0, 1, 2

# -log of float64's machine epsilon (2**-52): what a clipped probability costs
MINUS_LOG_EPS = 52 * math.log(2)


def value(loss, backend, pred, target) -> float:
    return float(nb.to_numpy(loss.forward(backend.asarray(pred), backend.asarray(target))))


def test_loss_for_wraps_only_what_several_outputs_need():
    """One output trains with the plain loss (in the clip, for a log loss); several
    logistic outputs sum over outputs, several identity ones average their value."""
    # kills heads 10 (one identity output wrapped), 14, 15, 18 (one logistic output
    # wrapped in SumOverOutputs)
    assert loss_for("identity", 1).config() == MSE(half=True).config()
    assert loss_for("identity", 3).config() == {
        "type": "SquaredErrorOverOutputs",
        "inner": MSE(half=True).config(),
    }
    bce = BinaryCrossEntropy(from_logits=True).config()
    assert loss_for("logistic", 1).config() == {"type": "ClippedLogLoss", "inner": bce}
    assert loss_for("logistic", 2).config() == {
        "type": "ClippedLogLoss",
        "inner": {"type": "SumOverOutputs", "inner": bce},
    }
    softmax = SoftmaxCrossEntropy(from_logits=True).config()
    assert loss_for("softmax", 3).config() == {"type": "ClippedLogLoss", "inner": softmax}


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_a_classifiers_model_counts_its_accuracy(backend, task):
    """``est.model_`` (a Sequential) evaluates accuracy through its head: the share of
    rows that ``predict`` gets right."""
    # kills heads 27 (has_accuracy not passed on: accuracy refused), 37 (count_correct
    # returning None) and 100 (a 1-D binary target read as labels by the clipped value,
    # on array-api-strict, which always clips)
    y = LABELS if task == "multiclass" else (LABELS > 0).astype(np.int64)
    est = MLPClassifier((6,), max_iter=20, random_state=0, backend=backend.name).fit(X, y)
    got = est.model_.evaluate(X, y, metrics=["accuracy"])["accuracy"]
    assert got == pytest.approx(np.mean(est.predict(X) == y), abs=1e-6)


def test_a_multi_output_model_says_targets_of_other_columns(backend):
    """Targets of other columns than the outputs are refused by the data checks, in
    their words, for a regressor's and a multi-label classifier's model alike."""
    # kills heads 28 (targets_like_outputs not passed on: no check of the columns)
    Y = np.stack([X[:, 0], X[:, 1]], axis=1)
    reg = MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, backend=backend.name).fit(X, Y)
    clf = MLPClassifier((4,), max_iter=2, backend=backend.name).fit(X, Y > 0)
    for model in (reg.model_, clf.model_):
        with pytest.raises(ValueError, match=r"y has shape \(60, 3\), but the model has 2 outputs"):
            model.evaluate(X, np.ones((60, 3)))


def test_logistic_outputs_far_from_0_cost_what_scikit_learn_rounds_them_to(backend64):
    """Two logits of 30 and 29 on 0 targets: scikit-learn's expit rounds 1 - p (about
    1e-13) to a few digits, and its loss is 29.50032..., not the exact 29.5."""
    # kills heads 59, 60 (logistic outputs read as class scores: 1 apart, so unsaturated)
    from scipy.special import expit
    from sklearn.neural_network._base import binary_log_loss

    pred, target = np.array([[30.0], [29.0]]), np.zeros((2, 1))
    want = binary_log_loss(target, expit(pred))
    assert abs(want - 29.5) > 1e-4  # the case in question
    got = value(ClippedLogLoss(BinaryCrossEntropy(from_logits=True)), backend64, pred, target)
    assert got == pytest.approx(want, rel=1e-12)


def test_a_label_below_eps_in_a_short_batch_is_clipped(backend64):
    """One row of 10 classes, its label's logit 35 below the other nine: p is
    1 / (1 + 9 e^35), under float64's eps, so it costs -log(eps) = 52 log 2."""
    # kills heads 69 (the bound's log(classes) taken of the rows: 1 row, log 1)
    pred = np.array([[0.0] + [35.0] * 9])
    assert math.log1p(9 * math.exp(35)) > MINUS_LOG_EPS  # unclipped, it would cost more
    loss = ClippedLogLoss(SoftmaxCrossEntropy(from_logits=True))
    got = value(loss, backend64, pred, np.array([0]))
    assert got == pytest.approx(MINUS_LOG_EPS, rel=1e-12)


def test_lists_train_and_predict_as_arrays_do():
    """Python lists are host data for scikit-learn's checks, not a device's arrays."""
    # kills inputs 4 (anything not NumPy's taken for a device array)
    options = dict(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        from_lists = MLPClassifier(**options).fit(X.tolist(), LABELS.tolist())
        from_arrays = MLPClassifier(**options).fit(X, LABELS)
    predicted = from_lists.predict(X.tolist())
    assert isinstance(predicted, np.ndarray)
    np.testing.assert_array_equal(from_lists.predict_proba(X), from_arrays.predict_proba(X))
    np.testing.assert_array_equal(predicted, from_arrays.predict(X))


def on(backend, array):
    """``array`` as the backend's own array, in its own dtype (complex stays complex)."""
    return backend.xp.asarray(array)


def test_device_data_is_refused_where_host_data_would_be(backend):
    """An array of any backend is checked as scikit-learn checks host data: no y, a 1-D
    or 3-D X, a complex X, a y of another length, and X of other features at predict."""
    # kills inputs 8 (no y: a TypeError of a 0-d array), 51 (no 2-D check), 53 (no
    # complex check), 20 (no length check), 38 (predict resets n_features_in_), 63 (no
    # features check)
    est = MLPClassifier((4,), max_iter=2, random_state=0)
    with pytest.raises(ValueError, match="requires y to be passed, but the target y is None"):
        est.fit(on(backend, X), None)
    for bad in (X[:, 0], X[:, :, None]):
        with pytest.raises(ValueError, match=r"Expected (a )?2D array|dim 3, while dim <= 2"):
            est.fit(on(backend, bad), LABELS)
    with pytest.raises(ValueError, match="Complex data not supported"):
        est.fit(on(backend, X + 1j), LABELS)
    with pytest.raises(ValueError, match=r"inconsistent numbers of samples: \[60, 59\]"):
        est.fit(on(backend, X), LABELS[:59])
    est.fit(on(backend, X), LABELS)
    said = "X has 2 features, but MLPClassifier is expecting 3 features as input"
    with pytest.raises(ValueError, match=said):
        est.predict(on(backend, X[:, :2]))
    assert est.n_features_in_ == 3


def test_string_labels_and_string_targets_with_device_X(backend):
    """Labels may be strings whatever X is; a regressor's targets must be numbers."""
    # kills inputs 19 (y's "numeric" asked of the classifier, not of the regressor)
    names = np.array(["low", "mid", "high"], dtype=object)[LABELS]
    clf = MLPClassifier((8,), max_iter=200, learning_rate_init=0.02, random_state=0)
    clf.fit(on(backend, X), names)
    assert list(clf.classes_) == ["high", "low", "mid"]
    assert set(nb.to_numpy(clf.predict(on(backend, X)))) <= {"high", "low", "mid"}
    reg = MLPRegressor(hidden_layer_sizes=(4,), max_iter=2)
    with pytest.raises(ValueError, match="could not convert string to float: 'mid'"):
        reg.fit(on(backend, X), names)


def test_training_goes_on_in_the_fitted_models_dtype(backend):
    """partial_fit and a warm start on float64 data go on in the float32 that the first
    fit chose (dtype=None follows only the first X), not in a new backend's dtype."""
    # kills inputs 14 (the fitted model's backend not passed on: chosen anew from X)
    est = MLPClassifier((4,), max_iter=2, random_state=0, warm_start=True)
    est.fit(backend.asarray(X, dtype="float32"), LABELS)
    as64 = nb.get_backend(backend.name, dtype="float64").asarray(X)
    est.partial_fit(as64, LABELS)
    est.fit(as64, LABELS)
    assert est.model_.backend.dtype_name == "float32"
    assert est.predict_proba(as64).dtype == backend.xp.float32


def test_a_fit_on_device_data_forgets_the_feature_names_of_the_last(backend):
    """A refit on an array (no column names) drops the names a DataFrame fit left: they
    would be the wrong ones. (No DataFrame library here: the names are set as one
    sets them.)"""
    # kills inputs 59 (feature_names_in_ kept)
    est = MLPClassifier((4,), max_iter=2, random_state=0).fit(X, LABELS)
    est.feature_names_in_ = np.array(["a", "b", "c"], dtype=object)
    est.fit(on(backend, X), LABELS)
    assert not hasattr(est, "feature_names_in_")


def test_targets_beside_device_X_are_checked_as_scikit_learn_checks_them(backend):
    """y goes through scikit-learn's own checks whatever X is: a list of labels is
    taken, complex or 3-D targets are refused."""
    # kills inputs 16 (y left unchecked: a list raised AttributeError, complex targets
    # were cast to their real part with a ComplexWarning, 3-D ones trained)
    clf = MLPClassifier((4,), max_iter=2, random_state=0).fit(on(backend, X), LABELS.tolist())
    assert list(clf.classes_) == [0, 1, 2]
    reg = MLPRegressor(hidden_layer_sizes=(4,), max_iter=2)
    with pytest.raises(ValueError, match="Complex data not supported"):
        reg.fit(on(backend, X), X[:, 0] + 1j)
    with pytest.raises(ValueError, match="Found array with dim 3"):
        reg.fit(on(backend, X), X[:, :, None])


def test_nan_in_device_X_is_refused_at_predict_too(backend):
    """A NaN in X is named at predict as at fit, not passed on as a row of NaNs."""
    # kills inputs 68 (no check of device X's values: NaN probabilities came back)
    est = MLPClassifier((4,), max_iter=2, random_state=0).fit(on(backend, X), LABELS)
    holed = X.copy()
    holed[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.predict_proba(on(backend, holed))


def test_device_data_trains_on_the_backend_it_is_named_for(backend):
    """backend= naming the backend that X lives on is no mismatch."""
    # kills inputs 73 (any named backend refused for device X)
    est = MLPClassifier((4,), max_iter=2, random_state=0, backend=backend.name)
    est.fit(on(backend, X), LABELS)
    assert est.model_.backend.name == backend.name
    assert backend.owns(est.predict_proba(on(backend, X)))


def test_one_hot_rows_cost_what_their_labels_cost_when_clipped(backend64):
    """One-hot rows (``est.model_.evaluate`` takes them) are read as rows, not labels:
    a label's logit 40 below the other's clips to -log(eps), as its label 0 does."""
    # kills heads 77, 78, 80, 81, 82 (2-D targets read as labels for the saturation
    # check) and 99, 101 (2-D targets taken as label indices by the clipped value)
    loss = ClippedLogLoss(SoftmaxCrossEntropy(from_logits=True))
    pred = np.array([[0.0, 40.0], [math.log(3), 0.0]])  # p of class 0: e^-40, then 3/4
    want = (MINUS_LOG_EPS + math.log(4 / 3)) / 2
    assert value(loss, backend64, pred, np.array([0, 0])) == pytest.approx(want, rel=1e-12)
    one_hot = np.array([[1.0, 0.0], [1.0, 0.0]])
    assert value(loss, backend64, pred, one_hot) == pytest.approx(want, rel=1e-12)


def test_a_numpy_validation_fraction_is_a_fraction():
    """validation_fraction=np.float32(0.1), as scikit-learn's MLP takes it (its
    train_test_split refused the NumPy scalar as test_size)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    y = (X[:, 0] > 0).astype(np.int64)
    est = MLPClassifier((4,), max_iter=3, early_stopping=True, n_iter_no_change=5,
                        validation_fraction=np.float32(0.1), random_state=0)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert len(est.validation_scores_) == 3


# --- mutants of the estimators' modules that survived (M72) -------------------------


def test_invscalings_power_t_is_scikit_learns():
    """A schedule of (t + 1) ** 0.5 whatever power_t said passed: every test took the
    default 0.5."""
    from sklearn import neural_network

    rng = np.random.default_rng(0)
    features, target = rng.normal(size=(128, 4)), rng.normal(size=128)
    options = dict(hidden_layer_sizes=(8,), solver="sgd", learning_rate="invscaling",
                   power_t=0.25, learning_rate_init=0.1, batch_size=64, shuffle=False,
                   max_iter=5, random_state=0, momentum=0.0)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPRegressor(**options, dtype="float64").fit(features, target)
        theirs = neural_network.MLPRegressor(**options).fit(features, target)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)


def test_a_regressors_string_targets_are_refused_for_host_and_device_X(backend):
    """Numbers written as strings trained as numbers for host X (scikit-learn's
    multi_output check keeps them) while device X refused them."""
    as_text = np.array([f"{v:.1f}" for v in X[:, 0]])
    for features in (X, on(backend, X)):
        with pytest.raises(ValueError, match="dtype='numeric' is not compatible with arrays"):
            MLPRegressor(hidden_layer_sizes=(4,), max_iter=2).fit(features, as_text)


def test_the_clipped_log_loss_sums_where_its_inner_loss_sums():
    """With a summing inner loss the clipped value was its mean (a quarter of it on four
    rows) while the unclipped one summed."""
    logits = np.array([[50.0, 0.0, 0.0], [0.2, 0.1, 0.0], [0.0, 0.3, 0.1], [0.1, 0.0, 0.4]])
    labels = np.array([1, 0, 1, 2])  # row 0 saturated and wrong: the clipped path
    summed, mean = (ClippedLogLoss(SoftmaxCrossEntropy(from_logits=True, reduction=r))
                    for r in ("sum", "mean"))  # fmt: skip
    assert float(summed.forward(logits, labels)) == pytest.approx(4 * mean.forward(logits, labels))


def test_the_estimators_take_strict_arrays_where_they_are_told_to():
    """What only torch's tests held: a model fitted on NumPy refuses strict X by name,
    backend="numpy" refuses strict X, "auto" trains where the arrays live, and
    dtype="float32" casts strict float64 X."""
    strict = nb.get_backend("strict", dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        on_host = MLPClassifier((4,), max_iter=2, random_state=0).fit(X, LABELS)
        with pytest.raises(nb.backend.BackendMismatchError, match=r"X is an array_api_strict"):
            on_host.predict(strict.asarray(X))
        with pytest.raises(nb.backend.BackendMismatchError, match=r"given backend='numpy'"):
            MLPClassifier((4,), max_iter=2, backend="numpy").fit(strict.asarray(X), LABELS)
        auto = MLPClassifier((4,), max_iter=2, backend="auto").fit(strict.asarray(X), LABELS)
        assert auto.model_.backend.name == "strict"
        narrow = MLPClassifier((4,), max_iter=2, dtype="float32").fit(strict.asarray(X), LABELS)
    assert narrow.predict_proba(strict.asarray(X)).dtype == strict.xp.float32
