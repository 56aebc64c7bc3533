"""Regression as a data scientist does it (targets of their own scale, a sigmoid on
targets scaled into [0, 1], scikit-learn's pipelines): when it goes wrong, the hint
names what fixes it, and following it works."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import make_friedman1
from sklearn.metrics import r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import nnbackend as nb
from nnbackend.layers import Dense
from nnbackend.sklearn import MLPRegressor


def linear_data():
    X = np.random.default_rng(0).normal(size=(200, 4))
    return X, X @ np.array([1.0, 2.0, 3.0, 4.0])


def test_a_regression_gone_nan_is_told_to_scale_its_targets(backend):
    """Targets in the thousands diverge whatever the inputs: the NaN message said only
    to lower the rate and check the inputs, which fit had already checked."""
    X, y = linear_data()
    model = nb.Sequential([Dense(4, 8), "relu", Dense(8, 1)], seed=0, backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the overflow on the way, and the NaN warning
        history = model.fit(X, y * 1000, loss="mse", optimizer="sgd", epochs=5, verbose=0)
    assert "and the targets' (standardise y too" in history.stop_reason
    big = y * 1000
    scaled = (big - big.mean()) / big.std()  # as told
    model = nb.Sequential([Dense(4, 8), "relu", Dense(8, 1)], seed=0, backend=backend)
    history = model.fit(X, scaled, loss="mse", optimizer="sgd", epochs=20, verbose=0)
    assert history.stop_reason is None and history["loss"][-1] < history["loss"][0] / 3


def test_the_estimators_divergence_names_the_target_transformer():
    """MLPRegressor's message, scikit-learn's, said StandardScaler: on X alone that
    turned a poor fit into a diverging one."""
    X, y = make_friedman1(300, n_features=8, noise=1, random_state=0)
    X = StandardScaler().fit_transform(X)
    est = MLPRegressor(hidden_layer_sizes=(16,), solver="sgd", learning_rate_init=0.01,
                       max_iter=20, random_state=0)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=r"TransformedTargetRegressor\(regressor, "):
            est.fit(X, y * 1000)
        told = TransformedTargetRegressor(est, transformer=StandardScaler()).fit(X, y * 1000)
    assert r2_score(y * 1000, told.predict(X)) > 0.5
    assert "TransformedTargetRegressor" not in nb.sklearn.MLPClassifier._non_finite


def test_a_sigmoid_fitted_to_values_warns_that_predict_gives_labels(backend):
    """Targets min-max scaled into [0, 1] under a sigmoid: predict thresholded them at
    0.5 and gave int64 labels in silence."""
    X, y = linear_data()
    y01 = (y - y.min()) / (y.max() - y.min())
    model = nb.Sequential([Dense(4, 8), "tanh", Dense(8, 1), "sigmoid"], seed=0, backend=backend)
    with pytest.warns(UserWarning, match=r"model.predict_proba\(X\) gives the outputs"):
        model.fit(X, y01, loss="mse", optimizer="adam", epochs=2, verbose=0)
    values = nb.to_numpy(model.predict_proba(X[:5]))
    assert values.dtype.kind == "f" and not np.isin(values, (0.0, 1.0)).all()
    labels = (y01 > 0.5).astype(np.float64)  # the tutorials' sigmoid neuron: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(X, labels, loss="mse", optimizer="adam", epochs=1, verbose=0)


def test_partial_fit_with_other_outputs_is_told_fit():
    """partial_fit was told warm_start=False, which partial_fit does not read."""
    X, y = linear_data()
    est = MLPRegressor(hidden_layer_sizes=(8,), random_state=0).partial_fit(X, y)
    with pytest.raises(ValueError, match=r"fitted with 1: fit\(X, y\) starts a new net"):
        est.partial_fit(X, np.stack([y, y], 1))
    est.set_params(max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # not converged in 3 epochs
        assert est.fit(X, np.stack([y, y], 1)).predict(X).shape == (200, 2)  # as told
    warm = MLPRegressor(hidden_layer_sizes=(8,), max_iter=2, warm_start=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # not converged in 2 epochs
        warm.fit(X, y)
    with pytest.raises(ValueError, match=r"fit it anew \(warm_start=False\)"):
        warm.fit(X, np.stack([y, y], 1))


def test_a_pipeline_of_scalers_on_both_sides_fits_targets_in_the_thousands():
    """The fix the message gives, in the pipeline a user builds: R2 on held-out rows."""
    X, y = make_friedman1(400, n_features=8, noise=1, random_state=0)
    pipe = TransformedTargetRegressor(
        make_pipeline(
            StandardScaler(), MLPRegressor(hidden_layer_sizes=(32,), max_iter=200, random_state=0)
        ),  # fmt: skip
        transformer=StandardScaler(),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.fit(X[:300], y[:300] * 1000)
    assert r2_score(y[300:] * 1000, pipe.predict(X[300:])) > 0.8


def test_boolean_targets_under_mse_and_a_sigmoid_fit_quietly(backend):
    """Booleans are 0 and 1: the check compared them with ints, which strict refuses
    (the fit raised before its first step)."""
    X, y = linear_data()
    targets = backend.asarray(y[:, None] > 0)
    model = nb.Sequential([Dense(4, 1), "sigmoid"], seed=0, backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(backend.asarray(X), targets, loss="mse", optimizer="sgd", verbose=0)


def test_a_classifier_gone_nan_is_not_told_to_standardise_its_labels():
    """BCE takes targets like its outputs too, but 0/1 labels standardised are refused."""
    X, y = linear_data()
    X, labels = X * 1e30, (y[:, None] > 0).astype(np.float64)
    model = nb.Sequential([Dense(4, 8), "relu", Dense(8, 1)], seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        history = model.fit(X, labels, loss=nb.losses.BinaryCrossEntropy(from_logits=True),
                            optimizer=nb.optim.SGD(lr=1e6), epochs=2, verbose=0)  # fmt: skip
    assert "training loss became" in history.stop_reason
    assert "targets" not in history.stop_reason


def test_partial_fit_under_warm_start_is_told_to_leave_it():
    """With warm_start=True, the fit(X, y) told refused the new outputs too."""
    X, y = linear_data()
    est = MLPRegressor(hidden_layer_sizes=(3,), max_iter=2, random_state=0, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    with pytest.raises(ValueError, match=r"fit it anew \(warm_start=False\)"):
        est.partial_fit(X, np.stack([y, y], 1))


def fits_quietly(model, targets, loss):
    X, _ = linear_data()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(X, targets, loss=loss, optimizer="sgd", epochs=1, verbose=0)


def test_the_labels_warning_is_for_outputs_in_0_1_under_mse_alone():
    """A plain regression, a sigmoid before a Flatten (whose predict gives values) and
    soft targets under bce are not warned."""
    X, y = linear_data()
    y01 = (y - y.min()) / (y.max() - y.min())
    fits_quietly(nb.Sequential([Dense(4, 1)], seed=0), y, "mse")
    flat = nb.Sequential([Dense(4, 1), "sigmoid", nb.layers.Flatten()], seed=0)
    fits_quietly(flat, y01, "mse")
    assert flat.predict(X[:3]).dtype.kind == "f"
    fits_quietly(nb.Sequential([Dense(4, 1), "sigmoid"], seed=0), np.clip(y01, 0.05, 0.95), "bce")


def test_a_softmax_before_bce_is_told_its_outputs_sum_to_1():
    """Multi-label tags under a softmax: never more than one predicted, in silence; the
    from_logits warning's "or pass from_logits=False" led there too."""
    rng = np.random.default_rng(0)
    X, tags = rng.normal(size=(20, 4)), (rng.random((20, 3)) < 0.6).astype(int)
    model = nb.Sequential([Dense(4, 3), "softmax"], seed=0)
    with pytest.warns(UserWarning, match=r"whose outputs sum to 1: .* end in Sigmoid\(\)"):
        model.fit(X, tags, loss="bce", optimizer="adam", epochs=1, verbose=0)
    with pytest.warns(UserWarning, match=r"drop Softmax\(\)$"):
        model.fit(X, tags, loss=nb.losses.BinaryCrossEntropy(from_logits=True),
                  optimizer="adam", epochs=1, verbose=0)  # fmt: skip
    sigmoid = nb.Sequential([Dense(4, 3), "sigmoid"], seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sigmoid.fit(X, tags, loss="bce", optimizer="adam", epochs=1, verbose=0)


def test_tag_ids_for_bce_are_told_the_binarizer_that_trains():
    """(0, 1), (1, 2), ...: two tag ids a sample were told Dense(..., 2), which then
    refused the values."""
    from sklearn.preprocessing import MultiLabelBinarizer

    X = np.random.default_rng(0).normal(size=(6, 4))
    ids = [(0, 1), (1, 2), (0, 2), (3, 4), (1, 4), (0, 3)]
    model = nb.Sequential([Dense(4, 5)], seed=0)
    logits = nb.losses.BinaryCrossEntropy(from_logits=True)
    with pytest.raises(ValueError, match=r"tag ids\? MultiLabelBinarizer\(classes=range\(5\)\)"):
        model.fit(X, ids, loss=logits, optimizer="adam", verbose=0)
    y = MultiLabelBinarizer(classes=range(5)).fit_transform(ids)  # as told
    model.fit(X, y, loss=logits, optimizer="adam", verbose=0)


def test_ragged_tag_lists_are_told_the_binarizer_that_trains():
    """[[1, 3], [2], [0, 1, 4]]: tag lists of differing lengths were told only that
    samples differ in shape (a list), "y.astype(float)" (an object array: it fails), or
    that y "cannot be read as an array" (tuples)."""
    from sklearn.preprocessing import MultiLabelBinarizer

    X = np.random.default_rng(0).normal(size=(3, 4))
    tags = [[1, 3], [2], [0, 1, 4]]
    model = nb.Sequential([Dense(4, 5), "sigmoid"], seed=0)
    told = r"\. Tag ids of each sample\? y = sklearn\.preprocessing\.MultiLabelBinarizer\(\)"
    for y in (tags, [tuple(t) for t in tags], np.array(tags, dtype=object)):
        with pytest.raises((ValueError, TypeError), match=told):
            model.fit(X, y, loss="bce", optimizer="adam", verbose=0)
    y = MultiLabelBinarizer().fit_transform(tags)  # as told
    model.fit(X, y, loss="bce", optimizer="adam", verbose=0)
    with pytest.raises(ValueError) as ragged_floats:
        model.fit(X[:2], [[1.5, 3.0], [2.0]], loss="bce", optimizer="adam", verbose=0)
    assert "MultiLabelBinarizer" not in str(ragged_floats.value)
    # NumPy's ints (np.flatnonzero's), a tuple of tuples, and validation targets too
    numpy_ints = [list(np.flatnonzero(row)) for row in y]
    for tags_given in (numpy_ints, tuple(tuple(t) for t in tags)):
        with pytest.raises((ValueError, TypeError), match=told):
            model.fit(X, tags_given, loss="bce", optimizer="adam", verbose=0)
    with pytest.raises(ValueError, match=r"y_val = sklearn\.preprocessing\.MultiLabelBinarizer"):
        model.fit(X, y, validation_data=(X, tags), loss="bce", optimizer="adam", verbose=0)
    mixed = np.empty(3, dtype=object)
    mixed[:] = [[0, 2], 1, [0, 1]]  # no tag lists all through: told as other objects
    with pytest.raises(TypeError, match=r"targets must be numbers: y\.astype\(float\) if they"):
        model.fit(X, mixed, loss="bce", optimizer="adam", verbose=0)
    with pytest.raises(ValueError) as ragged_features:  # ragged X is no tag list
        model.fit([[1, 2], [3], [4, 5]], y, loss="bce", optimizer="adam", verbose=0)
    assert "MultiLabelBinarizer" not in str(ragged_features.value)


def test_a_softmax_of_one_output_under_bce_is_refused():
    """Keras's Dense(1) + softmax + binary_crossentropy trained in silence, every
    prediction 1."""
    X, y = linear_data()
    model = nb.Sequential([Dense(4, 1), "softmax"], seed=0)
    with pytest.raises(ValueError, match=r"a softmax of one output, which is always 1"):
        model.fit(X, (y > 0).astype(float), loss="bce", optimizer="sgd", verbose=0)


def test_multi_hot_of_the_wrong_width_is_not_told_tag_ids():
    """MultiLabelBinarizer's own 0/1 output, one column short, was told to binarize
    again, which made every row the same."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4))
    model = nb.Sequential([Dense(4, 6), "sigmoid"], seed=0)
    for multi_hot in ((rng.random((40, 5)) > 0.5).astype(np.int64), rng.random((40, 5)) > 0.5):
        with pytest.raises(ValueError, match=r"give y of shape \(40, 6\)$"):
            model.fit(X, multi_hot, loss="bce", optimizer="sgd", verbose=0)


def test_the_softmax_warnings_are_binary_cross_entropys_alone():
    X, y = linear_data()
    model = nb.Sequential([Dense(4, 3), "softmax"], seed=0)
    onehot = np.eye(3)[(y > 0).astype(int) + (y > 2)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(X, onehot, loss="mse", optimizer="sgd", verbose=0)
    with pytest.warns(UserWarning, match=r"drop Softmax\(\), or pass from_logits=False$"):
        model.fit(X, onehot.argmax(1), loss="cross_entropy", optimizer="sgd", verbose=0)


def test_labels_under_bce_are_not_told_tag_ids():
    """1-D labels 0..2 for 3 outputs were told MultiLabelBinarizer, which refuses them."""
    X, y = linear_data()
    model = nb.Sequential([Dense(4, 3)], seed=0)
    with pytest.raises(ValueError) as told:
        model.fit(X, (y > 0).astype(int) + (y > 2), loss="bce", optimizer="sgd", verbose=0)
    assert "MultiLabelBinarizer" not in str(told.value) and "cross_entropy" in str(told.value)


def test_a_softmax_of_one_output_is_refused_under_mse_too():
    X, y = linear_data()
    model = nb.Sequential([Dense(4, 1), "softmax"], seed=0)
    with pytest.raises(
        ValueError, match=r"softmax of one output, which is always 1: .* no Softmax"
    ):
        model.fit(X, (y > 0).astype(float), loss="mse", optimizer="sgd", verbose=0)
