"""The edges of what fit, predict and History take and say: tuples and lists that are
no one array (samples that differ, a function's whole result, a generator), the
rows-of-targets and X.T hints where they must not show, a History read by an index
or a name it never recorded, the Keras input_shape hint where its channels do not fit."""

from __future__ import annotations

import numpy as np
import pytest

import nnbackend as nb
from nnbackend.data import as_array
from nnbackend.layers import Conv2D, Dense, Flatten


def test_a_ragged_first_sample_is_not_reported_as_shape_none():
    """_shape_of gives None for a ragged sample: the message must not say 'shape None'."""
    data = [[[1.0, 2.0], [3.0]], [[1.0, 2.0], [3.0, 4.0]]]
    with pytest.raises(ValueError, match=r"^X cannot be read as an array \(") as caught:
        as_array(data)
    assert "None" not in str(caught.value)


@pytest.mark.parametrize(
    "n, said",
    [
        (4, r"^X is a tuple of 4 arrays \(shapes \(6, 2\), \(6,\), \(2,\), \(2,\)\).*unpack"),
        (5, r"^X's samples differ in shape: X\[0\] has shape \(6, 2\), X\[1\] has \(6,\)"),
    ],
)
def test_a_tuple_of_four_arrays_is_a_result_and_of_five_is_samples(n, said):
    parts = (np.zeros((6, 2)), np.zeros(6), np.zeros(2), np.zeros(2), np.zeros(3))[:n]
    with pytest.raises(ValueError, match=said):
        as_array(parts)


def test_a_tuple_of_list_rows_with_one_short_is_named_as_samples():
    """A tuple of CSV rows (lists), one short: samples, not a function's result."""
    with pytest.raises(
        ValueError,
        match=r"^X's samples differ in shape: X\[0\] has shape \(2,\), X\[1\] has \(1,\)",
    ):
        as_array(([0.1, 0.2], [0.3]))


def test_a_list_mixing_an_array_and_none_is_not_named_as_samples():
    """A part with no shape (None) is no sample of some shape: not 'has shape ()'."""
    with pytest.raises(ValueError, match=r"^X cannot be read as an array \("):
        as_array([np.zeros((3, 2)), None])


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_np_matrix_comes_back_a_plain_ndarray():
    """as_array's contract: np.matrix (from .todense()) comes back a plain ndarray."""
    out = as_array(np.asmatrix(np.zeros((3, 2))))
    assert type(out) is np.ndarray and out.shape == (3, 2)


def test_a_sparse_matrix_is_told_to_be_made_dense():
    import scipy.sparse as sp

    with pytest.raises(TypeError, match=r"X is a sparse csr_matrix: give it dense, X\.toarray\(\)"):
        as_array(sp.csr_matrix(np.eye(3)))


def _fit(model, X, y, **options):
    options = dict(loss="mse", optimizer="sgd", epochs=1, verbose=0) | options
    return model.fit(X, y, **options)


@pytest.mark.parametrize("backend", ["numpy", "strict"])
def test_one_hot_targets_count_their_rows_for_the_transpose_hint(backend):
    """Three samples of five features, one-hot y of 3 rows and 5 classes: y counts 3
    samples (its length), not 5 (its columns), so no X.T is advised."""
    import nnbackend as nb
    from nnbackend.layers import Dense, Tanh

    X3 = np.arange(15.0).reshape(3, 5)
    y3 = np.eye(5)[[0, 1, 4]]
    model = nb.Sequential([Dense(3, 4), Tanh(), Dense(4, 5)], backend=backend, seed=0)
    with pytest.raises(ValueError, match=r"takes samples of 3 features") as caught:
        _fit(model, X3, y3)
    assert "X.T" not in str(caught.value)


@pytest.mark.parametrize("backend", ["numpy", "strict"])
def test_a_single_value_as_y_is_named(backend):
    import nnbackend as nb
    from nnbackend.layers import Dense

    model = nb.Sequential([Dense(2, 1)], backend=backend, seed=0)
    with pytest.raises(ValueError, match=r"y has a single value"):
        _fit(model, np.zeros((4, 2)), np.float64(3.0))


@pytest.mark.parametrize("backend", ["numpy", "strict"])
def test_a_fit_on_a_single_sample_runs(backend):
    import nnbackend as nb
    from nnbackend.layers import Dense

    model = nb.Sequential([Dense(2, 1)], backend=backend, seed=0)
    history = _fit(model, np.ones((1, 2)), np.ones(1))
    assert len(history["loss"]) == 1


@pytest.mark.parametrize("backend", ["numpy", "strict"])
@pytest.mark.parametrize("shape", [(3, 64), (1, 10)])
def test_only_a_row_of_as_many_targets_as_samples_is_told_to_reshape(backend, shape):
    """y (3, 64) or (1, 10) for 64 samples is no row of 64 targets: reshape(-1) would
    not fix it."""
    import nnbackend as nb
    from nnbackend.layers import Dense

    model = nb.Sequential([Dense(2, 1)], backend=backend, seed=0)
    with pytest.raises(ValueError, match=rf"y has {shape[0]} targets but X has 64") as caught:
        _fit(model, np.zeros((64, 2)), np.zeros(shape))
    assert "reshape(-1)" not in str(caught.value)


def test_a_backends_array_comes_back_as_it_is():
    """as_array's contract: a backend's array (array-api-strict's) is kept, not copied
    to host NumPy."""
    import array_api_strict as xs

    a = xs.asarray([[1.0, 2.0]])
    assert as_array(a) is a


def test_none_and_a_number_are_left_to_the_checks_that_name_them_and_a_generator_is_refused():
    """None and 5.0 come back as NumPy makes them (fit's checks then say 'X is None',
    'X is a single value'); a generator is refused here, in words about it."""
    assert as_array(None).dtype == object and as_array(5.0).shape == ()
    with pytest.raises(TypeError, match=r"^X is a generator, which NumPy cannot read as rows"):
        as_array(x for x in range(3))


@pytest.mark.parametrize("backend", ["numpy", "strict"])
def test_a_history_of_epochs_0_says_so_and_odd_keys_get_no_validation_hint(backend):
    X, y = np.zeros((4, 2)), np.zeros(4)
    model = nb.Sequential([Dense(2, 1)], backend=backend, seed=0)
    empty = model.fit(X, y, loss="mse", optimizer="sgd", epochs=0, verbose=0)
    with pytest.raises(KeyError, match=r"'loss': this fit ran no epochs \(epochs=0\)"):
        empty["loss"]
    history = model.fit(X, y, loss="mse", optimizer="sgd", epochs=1, verbose=0)
    with pytest.raises(KeyError, match=r"0: this fit recorded \[.loss.\]"):
        history[0]
    with pytest.raises(KeyError) as caught:
        history["variance"]
    assert "validation" not in str(caught.value)


@pytest.mark.parametrize("backend", ["numpy", "strict"])
def test_an_input_shape_with_its_channels_at_both_ends_gets_no_keras_hint(backend):
    """(3, 8, 3) for 3 channels may be either layout: no channels-first hint is given."""
    layers = [Conv2D(3, 4, 5), Flatten(), Dense(4, 2)]
    with pytest.raises(ValueError, match=r"^input_shape does not fit layer 0") as caught:
        nb.Sequential(layers, input_shape=(3, 8, 3), backend=backend, seed=0)
    assert "input_shape=(" not in str(caught.value)
