"""Edges of the scikit-learn estimators' own heads (nnbackend.sklearn.classifier,
regressor and convert): the labels, ``classes_`` and probabilities, that a mutation
run of the three modules found no test holding: each test fails under a mutant the
rest of the suite let pass (the comments name them)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import neural_network
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning, NotFittedError

from nnbackend.sklearn import MLPClassifier, MLPRegressor, inputs

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 3))
LABELS = (X[:, 0] > 0).astype(np.int64)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_the_defaults_are_scikit_learns(cls):
    """Every parameter both estimators have defaults to scikit-learn's value; backend
    and dtype default to None, and lbfgs's max_fun is not offered."""
    # kills classifier 0, 1, 2, 5, 6, 7, 8, 9, 18, 19 and regressor 2, 3, 4, 6, 7, 8, 9,
    # 11 (a default moved off scikit-learn's)
    theirs = getattr(neural_network, cls.__name__)().get_params()
    ours = cls().get_params()
    assert ours.pop("backend") is None and ours.pop("dtype") is None
    assert theirs.pop("max_fun") == 15000
    assert ours == theirs


def flat_at_one_half(target, backend):
    """scikit-learn's fitted classifier of (X, target) with its output layer zeroed, so
    every output is the logistic of 0, exactly 1/2, and ours of the same net."""
    theirs = neural_network.MLPClassifier((3,), max_iter=3, random_state=0).fit(X, target)
    theirs.coefs_[-1][:] = 0.0
    theirs.intercepts_[-1][:] = 0.0
    return theirs, MLPClassifier.from_sklearn(theirs, backend=backend.name)


def test_a_binary_probability_of_one_half_predicts_the_first_class(backend):
    """As scikit-learn's LabelBinarizer, p = 1/2 is not above the threshold: the first
    class of ``classes_`` is predicted, not the second."""
    # kills classifier 80 (p >= 0.5 read as the second class)
    labels = np.where(LABELS == 1, "yes", "no")
    theirs, ours = flat_at_one_half(labels, backend)
    np.testing.assert_array_equal(ours.predict_proba(X), np.full((40, 2), 0.5))
    np.testing.assert_array_equal(ours.predict(X), np.full(40, "no"))
    np.testing.assert_array_equal(theirs.predict(X), np.full(40, "no"))


def test_a_multilabel_probability_of_one_half_predicts_no_label(backend):
    """For multi-label, an output of exactly 1/2 is a 0 in the indicator matrix."""
    # kills classifier 71 (p >= 0.5 read as the label set)
    target = np.stack([LABELS, 1 - LABELS, np.ones_like(LABELS)], axis=1)
    theirs, ours = flat_at_one_half(target, backend)
    np.testing.assert_array_equal(ours.predict_proba(X), np.full((40, 3), 0.5))
    np.testing.assert_array_equal(ours.predict(X), np.zeros((40, 3), dtype=np.int64))
    np.testing.assert_array_equal(theirs.predict(X), np.zeros((40, 3), dtype=np.int64))


def test_log_probabilities_are_the_log_of_one_half_for_a_flat_net(backend):
    """``predict_log_proba`` gives log p: log(1/2) in both columns of a flat binary
    net, as scikit-learn's does."""
    # kills classifier 99 (proba never computed: a NameError), 100 (None returned)
    theirs, ours = flat_at_one_half(LABELS, backend)
    got = ours.predict_log_proba(X)
    assert isinstance(got, np.ndarray) and got.shape == (40, 2)
    np.testing.assert_allclose(got, np.full((40, 2), -np.log(2.0)), rtol=1e-6)
    np.testing.assert_allclose(got, theirs.predict_log_proba(X), rtol=1e-6)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_a_column_of_targets_warns_as_scikit_learn_and_fits_as_one_output(cls):
    """y of shape (n, 1) is taken as 1-D, with scikit-learn's DataConversionWarning:
    predictions are 1-D, the same as from a fit on the 1-D y."""
    # kills classifier 121, 125, 127, 128 (the column kept), 129 (no warning) and
    # regressor 72, 76, 78, 79 (the column kept), 80 (no warning)
    y = LABELS if cls is MLPClassifier else X[:, 0] - X[:, 1]
    flat = cls(hidden_layer_sizes=(3,), max_iter=3, random_state=0).fit(X, y)
    with pytest.warns(DataConversionWarning, match="A column-vector y was passed"):
        column = cls(hidden_layer_sizes=(3,), max_iter=3, random_state=0).fit(X, y[:, None])
    assert column.n_outputs_ == 1 and column.predict(X).shape == (40,)
    np.testing.assert_array_equal(column.predict(X), flat.predict(X))


def test_a_first_multilabel_partial_fit_with_classes_learns_the_label_columns():
    """Multi-label targets give the classes from the indicator's columns, as
    scikit-learn's partial_fit does: predictions are (n, 3)."""
    # kills classifier 138 (the binarizer fitted on classes: a multi-class head)
    target = np.stack([LABELS, 1 - LABELS, np.ones_like(LABELS)], axis=1)
    est = MLPClassifier((3,), random_state=0).partial_fit(X, target, classes=[0, 1, 2])
    theirs = neural_network.MLPClassifier((3,), random_state=0)
    theirs.partial_fit(X, target, classes=[0, 1, 2])
    assert est.out_activation_ == theirs.out_activation_ == "logistic"
    np.testing.assert_array_equal(est.classes_, [0, 1, 2])
    assert est.predict(X).shape == (40, 3) and est.n_outputs_ == 3


@pytest.mark.parametrize("classes", [[0, 1], [0, 1, 2, 3]])
def test_a_multilabel_partial_fit_refuses_classes_that_do_not_name_its_columns(classes):
    """The first call took classes=[0, 1] for three columns, and the second, the same
    call, was refused as "not the same as on last call" (scikit-learn refuses both)."""
    target = np.stack([LABELS, 1 - LABELS, np.ones_like(LABELS)], axis=1)
    est = MLPClassifier((3,), random_state=0)
    for _ in range(2):  # a first call refused leaves the next a first call
        with pytest.raises(ValueError, match=r"does not name y's 3 label columns: give "
                           r"classes=\[0, 1, 2\]$"):  # fmt: skip
            est.partial_fit(X, target, classes=classes)
    assert not hasattr(est, "model_")


@pytest.mark.parametrize("multilabel_first", [True, False])
def test_a_warm_start_to_another_kind_of_target_says_to_fit_anew(multilabel_first):
    """1-D labels after a multi-label fit (or the other way) were told of the net's
    outputs and losses, advice an estimator's user cannot take."""
    target = np.stack([LABELS, 1 - LABELS], axis=1)
    first, then = (target, LABELS) if multilabel_first else (LABELS, target)
    est = MLPClassifier((3,), max_iter=2, random_state=0, warm_start=True)
    with pytest.warns(ConvergenceWarning):
        est.fit(X, first)
    kinds = ("multilabel-indicator", "binary")[:: 1 if multilabel_first else -1]
    said = rf"^y is {kinds[1]}, but this MLPClassifier was fitted on {kinds[0]} targets"
    for call in (est.fit, est.partial_fit):
        with pytest.raises(ValueError, match=said + r": fit it anew \(warm_start=False\)"):
            call(X, then)


def test_the_tags_say_multi_label_and_multi_output_targets():
    """The classifier says it takes multi-label targets, as scikit-learn's own does,
    and the regressor several outputs (which it fits: scikit-learn's tag says no)."""
    # kills classifier 184, 185 (multi_label left False), regressor 100, 101
    # (multi_output left False)
    theirs = neural_network.MLPClassifier().__sklearn_tags__()
    assert theirs.classifier_tags.multi_label is True
    assert MLPClassifier().__sklearn_tags__().classifier_tags.multi_label is True
    assert MLPRegressor().__sklearn_tags__().target_tags.multi_output is True
    assert MLPRegressor(hidden_layer_sizes=(3,), max_iter=2).fit(X, X[:, :2]).n_outputs_ == 2


def test_a_regressors_score_is_r2_of_its_predictions(backend):
    """A net whose output layer is zeroed predicts 0 everywhere: its R^2 is
    1 - sum(y^2) / sum((y - mean y)^2), for host arrays and the backend's own alike;
    X of other features is refused in scikit-learn's words."""
    # kills regressor 61 (None returned), 62 (X unchecked: a backend's matmul error)
    y = 1.0 + X[:, 0]
    theirs = neural_network.MLPRegressor(hidden_layer_sizes=(3,), max_iter=3, random_state=0)
    theirs.fit(X, y)
    theirs.coefs_[-1][:] = 0.0
    theirs.intercepts_[-1][:] = 0.0
    ours = MLPRegressor.from_sklearn(theirs, backend=backend.name)
    r2 = 1.0 - np.sum(y**2) / np.sum((y - y.mean()) ** 2)
    assert ours.score(X, y) == pytest.approx(r2, rel=1e-12)
    xp = backend.xp
    assert ours.score(xp.asarray(X), xp.asarray(y)) == pytest.approx(r2, rel=1e-12)
    with pytest.raises(ValueError, match="X has 2 features, but MLPRegressor is expecting 3"):
        ours.score(X[:, :2], y)


def test_a_warm_start_on_another_number_of_outputs_is_refused_by_name():
    """A fitted regressor goes on only with targets of its own number of columns: it
    says so, and what to do, before training."""
    # kills regressor 95 (the refusal dropped: the model's data checks said it instead)
    est = MLPRegressor(hidden_layer_sizes=(3,), max_iter=2, random_state=0).fit(X, X[:, 0])
    with pytest.raises(ValueError, match="y has 2 outputs, but this MLPRegressor was fitted"):
        est.partial_fit(X, X[:, :2])
    assert est.n_outputs_ == 1 and est.predict(X).shape == (40,)


def test_converting_an_unfitted_estimator_either_way_is_not_fitted_error():
    """to_sklearn and from_sklearn want a fitted estimator: an unfitted one is
    scikit-learn's NotFittedError, not an AttributeError of a missing weight."""
    # kills convert 16 (from_sklearn unchecked: an AttributeError of out_activation_)
    with pytest.raises(NotFittedError, match="This MLPClassifier instance is not fitted yet"):
        MLPClassifier().to_sklearn()
    with pytest.raises(NotFittedError, match="This MLPRegressor instance is not fitted yet"):
        MLPRegressor.from_sklearn(neural_network.MLPRegressor())


def test_from_sklearn_builds_the_net_in_the_dtype_asked_for(backend):
    """A net of no hidden layer comes over in its weights' float64 by default, and
    dtype="float32" makes float32 weights of them and probabilities in float32."""
    # kills convert 30 (dtype ignored: the net stayed float64), 31 (the second weight
    # matrix's dtype read: an IndexError for a net of one layer)
    theirs = neural_network.MLPClassifier((), max_iter=3, random_state=0).fit(X, LABELS)
    assert len(theirs.coefs_) == 1 and theirs.coefs_[0].dtype == np.float64
    same = MLPClassifier.from_sklearn(theirs, backend=backend.name)
    assert same.model_.backend.dtype_name == "float64"
    np.testing.assert_allclose(same.predict_proba(X), theirs.predict_proba(X), atol=1e-12)
    ours = MLPClassifier.from_sklearn(theirs, backend=backend.name, dtype="float32")
    assert ours.model_.backend.dtype_name == "float32" and ours.dtype == "float32"
    proba = ours.predict_proba(X)
    assert proba.dtype == np.float32
    np.testing.assert_allclose(proba, theirs.predict_proba(X), atol=1e-6)


def test_a_converted_estimator_predicts_with_array_api_dispatch_on(monkeypatch):
    """from_sklearn records that the net was given host data: with scikit-learn's
    array_api_dispatch on, NumPy X is then accepted and predicted as scikit-learn's."""
    # kills convert 42 (no record: an AttributeError of _fit_input)
    theirs = neural_network.MLPClassifier((3,), max_iter=3, random_state=0).fit(X, LABELS)
    ours = MLPClassifier.from_sklearn(theirs, backend="numpy")
    # the setting as the input checks read it (turning it on for real needs scipy's
    # array API support switched on before scipy is first imported)
    monkeypatch.setattr(inputs, "get_config", lambda: {"array_api_dispatch": True})
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


# --- what a conversion carries into the next epochs (M60) --------------------------


def test_a_converted_multi_output_regressor_trains_on_as_scikit_learns():
    """from_sklearn with one output's loss trained 3 outputs at a third of the gradient:
    the predictions right after the conversion were the same, a partial_fit 0.32 off."""
    from sklearn.datasets import make_regression

    X3, Y = make_regression(64, 4, n_targets=3, random_state=0)
    settings = dict(hidden_layer_sizes=(8,), solver="sgd", momentum=0.0, batch_size=64,
                    shuffle=False, max_iter=3, random_state=0)  # fmt: skip
    theirs = neural_network.MLPRegressor(**settings).fit(X3, Y)
    ours = MLPRegressor.from_sklearn(theirs)
    theirs.partial_fit(X3, Y)
    ours.partial_fit(X3, Y)
    np.testing.assert_allclose(ours.predict(X3), theirs.predict(X3), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(
    ("cls", "early", "name"),
    [(MLPRegressor, False, "best_loss_"), (MLPClassifier, True, "best_validation_score_")],
)
def test_conversions_carry_the_best_so_far_both_ways(cls, early, name):
    """Without it a warm start of the converted estimator crashed in scikit-learn, or
    here started its early stopping's count from -inf (kept worse weights)."""
    target = X[:, 0] if cls is MLPRegressor else LABELS
    ours = cls(hidden_layer_sizes=(4,), max_iter=5, early_stopping=early, random_state=0)
    ours.fit(X, target)
    theirs = ours.to_sklearn()
    assert getattr(theirs, name) == getattr(ours, name)
    assert getattr(cls.from_sklearn(theirs), name) == getattr(ours, name)
    theirs.set_params(warm_start=True, max_iter=2).fit(X, target)  # scikit-learn reads it


def test_conversions_carry_the_feature_names():
    ours = MLPRegressor(hidden_layer_sizes=(3,), max_iter=2, random_state=0).fit(X[:, :2], X[:, 2])
    ours.feature_names_in_ = np.array(["a", "b"], dtype=object)  # as a DataFrame's fit sets
    theirs = ours.to_sklearn()
    assert list(theirs.feature_names_in_) == ["a", "b"]
    assert list(MLPRegressor.from_sklearn(theirs).feature_names_in_) == ["a", "b"]


def test_a_later_partial_fit_refuses_fewer_classes_than_the_first():
    """scikit-learn refuses it; here only more classes were refused."""
    y = np.arange(40) % 3
    est = MLPClassifier((4,), random_state=0).partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="is not the same as on last call"):
        est.partial_fit(X[y < 2], y[y < 2], classes=[0, 1])
