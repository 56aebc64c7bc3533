"""Edges of fit's data checks (nnbackend.data_checks) that a mutation run of
data_checks.py and fit_options.py found no test holding: each test fails under a
mutant the rest of the suite let pass (the comments name them)."""

from __future__ import annotations

import re

import array_api_strict
import numpy as np
import pytest

import nnbackend as nb
from nnbackend.data_checks import check_inputs, check_targets, checked_features
from nnbackend.fit_data import split_validation
from nnbackend.layers import Dense, Tanh

X, Y = nb.datasets.make_moons(12, noise=0.2, seed=0)


def net(backend="numpy", n_out=2):
    return nb.Sequential([Dense(2, 4), Tanh(), Dense(4, n_out)], backend=backend, seed=0)


def fit(model, X=X, y=Y, loss="cross_entropy", **options):
    options = {"optimizer": nb.optim.SGD(0.1), "verbose": 0, **options}
    return model.fit(X, y, loss=loss, **options)


def test_a_single_value_for_x_or_y_is_refused_by_name(backend):
    """A 0-d X or y is refused with fit's own words, not an IndexError of shape[0] (an
    X of one value was called empty: now in predict's words)."""
    # kills data_checks 4 (X.ndim == 0 dropped) and 38 (y.ndim == 0 dropped)
    with pytest.raises(ValueError, match=r"X is a single value; give an array of samples"):
        fit(net(backend), backend.asarray(np.array(3.0)), Y[:1])
    with pytest.raises(ValueError, match="y has a single value but X has 12 samples"):
        fit(net(backend), backend.asarray(X), backend.asarray(np.array(1)))


def test_check_inputs_reads_an_int_sample_shape_as_n_features():
    """The documented ``sample_shape=n`` means (n,): 3 features taken, 2 refused."""
    # kills data_checks 14 (the int left an int: tuple(3) raised a TypeError)
    check_inputs(np.ones((4, 3)), 3)
    with pytest.raises(ValueError, match=r"takes samples of 3 features, but X has shape \(4, 2\)"):
        check_inputs(np.ones((4, 2)), 3)
    with pytest.raises(ValueError, match=r"takes samples of 1 feature, but X has shape \(4, 2\)"):
        check_inputs(np.ones((4, 2)), 1)


def test_checked_features_gives_host_data_as_numpy_and_arrays_as_they_are(backend):
    """``checked_features`` (public) takes a list as NumPy rows; a backend's array comes
    back as the same object, not a copy."""
    # kills data_checks 178 (the list kept: its .ndim raised an AttributeError)
    got = checked_features([[1.0, 2.0], [3.0, 4.0]], sample_shape=(2,))
    assert isinstance(got, np.ndarray)
    np.testing.assert_array_equal(got, [[1.0, 2.0], [3.0, 4.0]])
    array = backend.asarray(np.ones((3, 2)))
    assert checked_features(array, sample_shape=(2,)) is array


def test_none_given_straight_to_the_checks_is_a_type_error_naming_it():
    """fit makes None an object array first; the public checks take None itself too."""
    # kills data_checks 189, 190, 191 (_is_none(None) false: an AttributeError of .dtype)
    with pytest.raises(TypeError, match="X is None: give the samples X, as an array"):
        check_inputs(None, None)
    with pytest.raises(TypeError, match="y is None: give targets y, one per sample of X"):
        check_targets(None, 3, 2)


def test_soft_rows_within_1e_3_of_a_sum_of_1_pass_and_further_are_refused(backend):
    """Cross-entropy rows may sum to 1 within 1e-3 (float16 sums), no further."""
    # kills data_checks 273 (the tolerance doubled to 2e-3)
    rows = np.eye(2)[Y]
    rows[3] = [0.5, 0.5 + 2**-11]  # 4.9e-4 off (exact in float32): taken
    fit(net(backend), y=backend.asarray(rows))
    rows[3] = [0.5, 0.5 + 2**-9]  # 1.95e-3 off: refused
    with pytest.raises(ValueError, match=r"rows that do not sum to 1 \(one is 0.00195312 off\)"):
        fit(net(backend), y=backend.asarray(rows))


def test_float_labels_of_whole_numbers_train_as_integer_ones(backend):
    """Labels 0., 1. as floats are class ids: they train to the int64 labels' weights."""
    # kills data_checks 279, 280 (every float y refused as non-integer labels)
    weights = []
    for labels in (Y, Y.astype(np.float64)):
        model = net(backend)
        fit(model, backend.asarray(X), backend.asarray(labels), epochs=2)
        weights.append({k: nb.to_numpy(v).copy() for k, v in model.params.items()})
    for name, w in weights[0].items():
        np.testing.assert_array_equal(weights[1][name], w)
    with pytest.raises(ValueError, match="y must hold integer class labels; found non-integer"):
        fit(net(backend), y=backend.asarray(Y + 0.5))


def test_negative_labels_are_refused(backend):
    """A label -1 (say, -1/+1 targets) lies outside 0..n-1 as one of n does."""
    # kills data_checks 289 (only the top label checked)
    with pytest.raises(ValueError, match=r"y holds labels from -1 to 1, but the model has 2 "):
        fit(net(backend), y=backend.asarray(2 * Y - 1))


@pytest.mark.parametrize(
    ("labels", "hinted"),
    [((1, 2), True), ((0, 2), False), ((3, 5), False), ((2, 3), False)],
)
def test_the_labels_1_to_n_hint_is_given_for_labels_1_to_n_alone(labels, hinted):
    """ "Use y - 1" is said where the labels run 1..n, not for any label past n - 1."""
    # kills data_checks 298, 299, 300, 304 (the hint's condition loosened)
    low, high = labels
    y = np.where(Y == 1, high, low)
    with pytest.raises(ValueError, match=rf"labels from {low} to {high}, but") as refused:
        fit(net(), y=y)
    assert ("Labels 1..n? Use y - 1." in str(refused.value)) is hinted


def test_check_targets_without_a_loss_takes_any_numbers_of_the_right_length():
    """No loss: no kind of target, no columns to match the outputs; the length still."""
    # kills data_checks 89 (the columns checked for loss=None: an AttributeError)
    check_targets(np.zeros(4), 4, 3)
    check_targets(np.full((4, 5), 7.5), 4, 3)
    with pytest.raises(ValueError, match="y has 4 targets but X has 5 samples: they must match"):
        check_targets(np.zeros(4), 5, 3)


def test_a_complex_array_of_any_backend_is_refused_as_complex(backend):
    """A complex X, NumPy's, strict's or torch's, is a TypeError saying so."""
    # kills data_checks 207 (complex_ unset: a NameError), 211 (a complex array of a
    # backend's called "strings or other objects")
    complex_X = backend.xp.asarray(np.ones((4, 2)) + 1j)
    with pytest.raises(TypeError, match=r"X holds \S*complex128 values; it must hold real"):
        check_inputs(complex_X, 2)
    with pytest.raises(TypeError, match=r"X holds \S*complex128 values; it must hold real"):
        fit(net(backend), complex_X, Y[:4])


def test_boolean_targets_of_any_backend_are_checked_as_0_and_1(backend):
    """Boolean one-hot rows and boolean labels train: the standard's min and max take no
    bools, so the checks count them as 0 and 1."""
    # kills data_checks 228 (bool rows' min on strict), 277 (bool labels' min on strict)
    rows = backend.xp.asarray(np.eye(2, dtype=bool)[Y])
    fit(net(backend), backend.asarray(X), rows)
    labels = backend.xp.asarray(Y.astype(bool))
    fit(net(backend), backend.asarray(X), labels)


def test_validation_data_and_validation_split_together_are_refused():
    """Both given: one would be dropped without a word; fit refuses before any step."""
    # kills data_checks 392 (the split taken, the validation_data given dropped)
    model = net()
    before = {k: nb.to_numpy(v).copy() for k, v in model.params.items()}
    with pytest.raises(ValueError, match="give validation_data or validation_split, not both"):
        fit(model, validation_data=(X[:4], Y[:4]), validation_split=0.25)
    for name, w in model.params.items():
        np.testing.assert_array_equal(nb.to_numpy(w), before[name])


@pytest.mark.parametrize(
    ("n", "fraction", "n_validation"),
    [(12, 0.01, 1), (12, 0.1, 1), (12, 0.25, 3), (2, 0.5, 1), (12, 0.3, 4)],  # 3.6: 4
)
def test_validation_split_holds_out_the_last_rounded_share_one_row_at_least(
    n, fraction, n_validation
):
    """round(fraction * n) rows, at least one, from the end; one row left to train on
    is enough."""
    # kills data_checks 415 (two rows at least), 416 (none at least), 420, 422 (a split
    # that leaves one row to train on refused)
    Xn, yn = X[:n], Y[:n]
    X_train, y_train, (X_val, y_val) = split_validation(Xn, yn, None, fraction)
    np.testing.assert_array_equal(X_train, Xn[: n - n_validation])
    np.testing.assert_array_equal(y_train, yn[: n - n_validation])
    np.testing.assert_array_equal(X_val, Xn[n - n_validation :])
    np.testing.assert_array_equal(y_val, yn[n - n_validation :])
    with pytest.raises(ValueError, match="validation_split=0.5 of 1 samples leaves none"):
        split_validation(X[:1], Y[:1], None, 0.5)


def test_validation_data_must_be_a_pair_not_any_two_rows():
    """An array of two rows is no (X_val, y_val) pair: refused, not split in two."""
    # kills data_checks 429 (any sequence of length 2 taken)
    with pytest.raises(ValueError, match="validation_data is a pair .*, got ndarray"):
        split_validation(X, Y, np.ones((2, 2)), 0.0)
    with pytest.raises(ValueError, match=r"validation_data is a pair .*, got 3 items"):
        split_validation(X, Y, (X, Y, Y), 0.0)
    _, _, (X_val, y_val) = split_validation(X, Y, [X[:3].tolist(), Y[:3].tolist()], 0.0)
    np.testing.assert_array_equal(X_val, X[:3])
    np.testing.assert_array_equal(y_val, Y[:3])


@pytest.mark.parametrize("value, said", [(1e300, "beyond float32's range"), (np.nan, "NaN")])
def test_a_bad_value_in_the_validation_rows_is_found_where_the_user_put_it(value, said):
    """validation_split: a value in the held-out rows was reported at its index in the
    held-out slice ((1, 1) for row 11: a training row, and fine); validation_data: one
    past float32's range was blamed on X, which was clean."""
    Xbad = X.copy()
    Xbad[11, 1] = value
    with pytest.raises(ValueError, match=rf"X holds .*{said}.* \(the first at index \(11, 1\)"):
        fit(net(), Xbad, validation_split=0.25)
    with pytest.raises(ValueError, match=rf"^validation X holds .*{said}.*index \(11, 1\)"):
        fit(net(), validation_data=(Xbad, Y))
    Ybad = Y.astype(np.float64)
    Ybad[10] = np.nan
    with pytest.raises(ValueError, match=r"^y holds 1 NaN .* \(the first at index \(10,\)\)"):
        fit(net(n_out=1), y=Ybad, loss="mse", validation_split=0.25)


def test_a_single_value_with_a_validation_split_is_refused_by_name():
    """X of one value with validation_split raised an IndexError of shape[0]."""
    with pytest.raises(ValueError, match="^X is a single value; give an array of samples"):
        fit(net(), np.array(1.0), Y[:1], validation_split=0.2)


@pytest.mark.parametrize(
    ("labels", "told"),
    [((0, 2), " 3 classes? End the model in Dense(..., 3)."),
     ((-1, 1), " Labels -1 and +1? Use (y + 1) // 2."),
     ((2, 3), "so labels must lie in 0..1.")],
)  # fmt: skip
def test_labels_past_the_outputs_are_told_the_fix_that_fits_them(labels, told):
    """Classes 0..2 for 2 outputs (a last layer too narrow) and -1/+1 labels were told
    only the range the labels must lie in."""
    low, high = labels
    with pytest.raises(ValueError) as refused:
        fit(net(), y=np.where(Y == 1, high, low))
    assert str(refused.value).endswith(told)
    if labels == (-1, 1):  # the fix, as written, trains
        y = np.where(Y == 1, high, low)
        assert fit(net(), y=eval(told.split("Use ")[1].rstrip("."), {"y": y}))  # noqa: S307


@pytest.mark.parametrize(
    ("labels", "loss", "outputs"),
    [((-1, 1), "cross_entropy", 2), ((1, 2), "cross_entropy", 2), ((-1, 1), "bce", 1)],
)
def test_the_label_hints_run_on_a_list_of_labels(labels, loss, outputs):
    """(y + 1) // 2 and y - 1 were told for a list, which takes neither."""
    y = [labels[1] if v else labels[0] for v in Y]
    last = [Dense(4, 2)] if outputs == 2 else [Dense(4, 1), nb.layers.Sigmoid()]
    model = nb.Sequential([Dense(2, 4), nb.layers.Tanh(), *last], seed=0)
    with pytest.raises(ValueError, match=r"\? Use .*np\.asarray\(y\)") as refused:
        model.fit(X, y, loss=loss, optimizer="sgd", epochs=1, verbose=0)
    fixed = eval(str(refused.value).split("? Use ")[1].rstrip("."), {"np": np, "y": y})  # noqa: S307
    np.testing.assert_array_equal(np.asarray(fixed).ravel(), Y)


def test_bces_label_hint_names_the_validation_targets():
    model = nb.Sequential([Dense(2, 1), nb.layers.Sigmoid()], seed=0)
    with pytest.raises(ValueError, match=re.escape("Use (y_val + 1) / 2.")):
        model.fit(X, Y, validation_data=(X, 2 * Y - 1), loss="bce", optimizer="sgd", verbose=0)


def test_labels_minus_one_zero_one_are_not_told_to_halve():
    """(y + 1) // 2 made classes -1 and 0 one class, and the fit trained on it unsaid."""
    y = np.where(Y == 1, 1, -1) * (np.arange(len(Y)) % 3 > 0)  # -1, 0 and 1
    with pytest.raises(ValueError, match=r" 3 classes\? Use y \+ 1, and end the model in Dense"):
        fit(net(), y=y)


def test_float_targets_for_a_classifying_loss_are_told_the_losses_that_take_them():
    X, _ = nb.datasets.make_moons(64, noise=0.2, seed=0)
    model = nb.Sequential([nb.layers.Dense(2, 2)], seed=0)
    said = r"non-integer values. Regression targets: loss='mse'; probabilities of one label"
    with pytest.raises(ValueError, match=said):
        model.fit(X, X[:, 0], loss="cross_entropy", optimizer="adam", verbose=0)


def test_bce_targets_just_above_1_are_refused():
    """Mutation run: the tests' targets were far out (-1, 2); 1.2 passed a bound of 1.5."""
    model = nb.Sequential([Dense(3, 1), nb.layers.Sigmoid()], seed=0)
    y = np.array([0.0, 1.0, 1.2, 0.0])
    with pytest.raises(ValueError, match=r"from 0 to 1\.2"):
        model.fit(np.ones((4, 3)), y, loss="bce", optimizer="sgd", verbose=0)


def test_the_first_bad_value_is_the_one_named():
    """Mutation run: with one NaN in each test, the last one could be named as first."""
    X = np.zeros((4, 3))
    X[1, 0] = X[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"the first at index \(1, 0\)"):
        check_inputs(X, (3,))


def test_one_hot_columns_for_cross_entropy_are_told_the_reshape_that_trains(backend):
    """(N, k, 1) one-hot columns (Nielsen's targets) reached the loss at the first step,
    which quoted a batch's shape and told "(10,) integer labels" of the batch size."""
    X = np.random.default_rng(0).normal(size=(40, 8))
    model = nb.Sequential([nb.layers.Dense(8, 5)], backend=backend, seed=0)
    columns = model.backend.asarray(np.eye(5)[np.arange(40) % 5][:, :, None])
    with pytest.raises(
        ValueError, match=r"^y has shape \(40, 5, 1\): .* rows \(40, k\), one per sample: "
    ) as told:
        model.fit(X, columns, loss="cross_entropy", optimizer="sgd", verbose=0)
    code = str(told.value).rsplit(": ", 1)[1]
    rows = eval(code, {"y": columns, "np": np, "array_api_strict": array_api_strict})  # noqa: S307
    model.fit(X, rows, loss="cross_entropy", optimizer="sgd", verbose=0)


def test_a_label_map_for_cross_entropy_is_not_told_a_reshape_into_rows():
    """A label per pixel reshaped to (N, H * W) would be read as one-hot rows of H * W
    classes: cross-entropy takes one label per sample."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(8, 16)), rng.integers(0, 3, size=(8, 4, 4))
    model = nb.Sequential([nb.layers.Dense(16, 3)], seed=0)
    with pytest.raises(ValueError, match=r"one per sample: a label map is not taken$"):
        model.fit(X, y, loss="cross_entropy", optimizer="sgd", verbose=0)


@pytest.mark.parametrize(
    ("shape", "told"),
    [((40, 1, 3), r"y\.reshape\(len\(y\), -1\)$"), ((40, 1, 1), r"np\.ravel\(y\)$")],
)
def test_targets_with_a_singleton_axis_are_told_the_fix_that_fits(shape, told):
    """One-hot (N, 1, k) was told "a label map is not taken"; labels (N, 1, 1) a
    reshape to (N, 1), refused in turn."""
    X = np.random.default_rng(0).normal(size=(40, 4))
    labels = np.arange(40) % 3
    y = (np.eye(3)[labels] if shape[2] == 3 else labels).reshape(shape)
    model = nb.Sequential([nb.layers.Dense(4, 3)], seed=0)
    with pytest.raises(ValueError, match=told) as error:
        model.fit(X, y, loss="cross_entropy", optimizer="sgd", verbose=0)
    fixed = eval(str(error.value).rsplit(": ", 1)[1], {"y": y, "np": np})  # noqa: S307
    model.fit(X, fixed, loss="cross_entropy", optimizer="sgd", verbose=0)


def test_targets_beyond_the_models_float_range_are_refused_as_x_is(backend):
    """A float64 target of 1e39 became inf in a float32 model: evaluate gave a loss of
    inf, a fit NaN weights (told to lower its learning rate), a validation set inf."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(32, 3)), rng.normal(size=32)
    y[5] = 1e39
    model = nb.Sequential([Dense(3, 1)], backend=backend, seed=0)
    before = {k: nb.to_numpy(w).copy() for k, w in model.params.items()}
    told = r"holds values beyond float32's range \(the first at index \(5,\)\): scale them"
    for run in (
        lambda: model.evaluate(X, y, loss="mse"),
        lambda: fit(model, X, y, loss="mse"),
        lambda: fit(model, X, y, loss="mse", validation_split=0.5),
    ):
        with pytest.raises(ValueError, match=rf"^y {told}"):
            run()
    with pytest.raises(ValueError, match=rf"^validation y {told}"):
        fit(model, X, y * 0, loss="mse", validation_data=(X, y))
    for name, w in model.params.items():
        np.testing.assert_array_equal(nb.to_numpy(w), before[name])
    wide = nb.Sequential([Dense(3, 1)], backend=backend, seed=0, dtype="float64")
    assert np.isfinite(wide.evaluate(X, y, loss="mse")["loss"])  # as told: float64 holds it


def test_float_class_labels_score_as_integer_ones(backend):
    """Labels 0.0, 1.0, 2.0 are cast to int64 for the loss on every path: evaluate's
    host batches gave "1-D targets must be integer class labels" without the cast."""
    model = net(backend, n_out=3)
    labels = np.arange(12) % 3
    want = model.evaluate(X, labels, loss="cross_entropy", batch_size=5)
    assert model.evaluate(X, labels.astype(float), loss="cross_entropy", batch_size=5) == want


def test_fit_seed_sets_the_shuffling():
    """fit(seed=) reseeds the shuffling generator: two seeds, two orders of batches."""
    ends = {}
    for seed in (1, 2, 1):
        model = net()
        fit(model, epochs=2, batch_size=4, seed=seed)
        ends.setdefault(seed, []).append(nb.to_numpy(model.params["0.W"]))
    np.testing.assert_array_equal(ends[1][0], ends[1][1])
    assert not np.array_equal(ends[1][0], ends[2][0])


def test_a_softmax_fitted_under_mse_predicts_one_class_a_sample():
    """Its outputs sum to 1: tested against 0.5 as 0/1 columns, 20 of 30 rows named no
    class; predict gives the argmax, as categorical_accuracy counts it."""
    rng = np.random.default_rng(0)
    Xs, labels = rng.normal(size=(30, 4)), rng.integers(0, 3, 30)
    model = nb.Sequential([Dense(4, 3), nb.layers.Softmax()], seed=0)
    fit(model, Xs, np.eye(3)[labels], loss="mse", epochs=1)
    predicted = model.predict(Xs)
    assert predicted.shape == (30,)
    soft = rng.dirichlet(np.ones(3), 30)  # other values than 0 and 1: the warning says so
    with pytest.warns(UserWarning, match=r"predict\(X\) will give labels \(one class a sample"):
        fit(model, Xs, soft, loss="mse", epochs=1)
    np.testing.assert_array_equal(predicted, model.predict_proba(Xs).argmax(axis=1))
