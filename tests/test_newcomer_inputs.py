"""What a newcomer hands the library in the first hour, from a walk through the README
and the guides: data in the forms other tools give it (np.matrix from ``.todense()``, a
masked array, a sparse matrix, a function's whole tuple, the course's samples-as-columns
layout, a Keras input_shape), a History read by a name the fit did not record, and a
script run again without ``resume=True``. Each got NumPy's words, or none, before."""

from __future__ import annotations

import os
import warnings

import h5py
import numpy as np
import pytest
import scipy.sparse as sp

import nnbackend as nb
from nnbackend.layers import Conv2D, Dense, Flatten, Sigmoid, Tanh

X, Y = nb.datasets.make_moons(64, noise=0.2, seed=0)


def net(backend) -> nb.Sequential:
    return nb.Sequential([Dense(2, 4), Tanh(), Dense(4, 2)], backend=backend, seed=0)


def fit(model, X, y, **options) -> nb.History:
    options = dict(loss="cross_entropy", optimizer="adam", epochs=1, verbose=0) | options
    return model.fit(X, y, **options)


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
@pytest.mark.parametrize("kind", ["matrix", "masked"])
def test_ndarray_subclasses_train_as_plain_arrays(backend, kind):
    """np.matrix and a masked array with nothing masked trained on strict but failed in
    the loss on NumPy: 'operands could not be broadcast together with shapes (32,2)
    (1,32) (32,2)' (a matrix keeps every product 2-D)."""
    data = np.asmatrix(X) if kind == "matrix" else np.ma.masked_array(X)
    runs = []
    for inputs in (X, data):
        model = net(backend)
        history = fit(model, inputs, Y, epochs=2, batch_size=16)
        runs.append((history["loss"], model.evaluate(inputs, Y)["loss"]))
    assert runs[1] == runs[0]


def test_masked_entries_and_sparse_input_are_named(backend):
    """A masked entry trained on its hidden value without a word; a sparse matrix was
    told to go through np.asarray(list(...)), which gave an object array."""
    masked = np.ma.masked_array(X)
    masked[3, 0] = np.ma.masked
    with pytest.raises(ValueError, match=r"X is a masked array with masked entries: fill"):
        fit(net(backend), masked, Y)
    with pytest.raises(TypeError, match=r"X is a sparse csr_matrix: .* X\.toarray\(\)"):
        fit(net(backend), sp.csr_matrix(X), Y)
    # validation data's hints write X_val, which runs, not "validation X.toarray()"
    with pytest.raises(ValueError, match=r"validation X is a masked .*\(X_val\.filled\(value\)\)"):
        fit(net(backend), X, Y, validation_data=(masked, Y))
    with pytest.raises(TypeError, match=r"validation X is a sparse .* dense, X_val\.toarray\(\)$"):
        fit(net(backend), X, Y, validation_data=(sp.csr_matrix(X), Y))


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_a_sparse_torch_tensor_is_told_to_densify_everywhere():
    """fit and evaluate trained and scored on a sparse torch tensor, then predict failed
    in torch ("Cannot access storage of SparseTensorImpl"), a sparse y at its min."""
    torch = pytest.importorskip("torch")
    X, y = torch.tensor(nb.datasets.make_moons(50, seed=0)[0]), torch.arange(50) % 2
    model = nb.Sequential([Dense(2, 4), Tanh(), Dense(4, 2)], backend="torch", seed=0)
    for sparse in (X.to_sparse(), X.to_sparse_csr()):
        told = r"^X is a sparse torch tensor: give it dense, X\.to_dense\(\)$"
        with pytest.raises(TypeError, match=told):
            fit(model, sparse, y)
        with pytest.raises(TypeError, match=told):
            model.predict(sparse)
    with pytest.raises(TypeError, match=r"^y is a sparse torch tensor: give it dense, y\.to_dense"):
        fit(model, X, y.to_sparse())
    estimator = nb.sklearn.MLPClassifier((4,), backend="torch")
    with pytest.raises(TypeError, match=r"^X is a sparse torch tensor"):
        estimator.fit(X.to_sparse(), y)
    estimator.partial_fit(X, y, classes=[0, 1])  # then predict's X reached the net
    for method in (estimator.predict, estimator.predict_proba, estimator.predict_log_proba):
        with pytest.raises(TypeError, match=told):
            method(X.to_sparse_csr())
    assert len(fit(model, X.to_sparse().to_dense(), y)) == 1  # as told


class Samples:
    """A dataset of (x, y) samples by index, as torch's TensorDataset is."""

    def __init__(self, X, y):
        self.X, self.y = X, y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return self.X[i], self.y[i]


def test_a_dataset_of_samples_is_told_as_a_loader_is(backend):
    """A TensorDataset met NumPy's "inhomogeneous shape after 2 dimensions"; a list of
    it is told how to stack its samples, which trains."""
    X, y = nb.datasets.make_moons(20, seed=0)
    with pytest.raises(TypeError, match=r"^X is a Samples, which NumPy cannot read as rows: .*"):
        fit(net(backend), Samples(X, y), None)
    with pytest.raises(ValueError, match=r"X is a list of 20 \(x, y\) samples") as told:
        fit(net(backend), list(Samples(X, y)), None)
    pairs = list(Samples(X, y))
    names = {"np": np, "pairs": pairs}
    exec(str(told.value).split("stack them first: ")[1], names)  # noqa: S102
    assert len(fit(net(backend), names["X"], names["y"])) == 1


def test_a_tuple_of_arrays_given_as_x_is_told_to_unpack(backend):
    """X = standardize(X) keeps the mean and std too: NumPy's 'inhomogeneous shape'."""
    whole = nb.datasets.standardize(X)
    model = net(backend)
    said = r"X is a tuple of 3 arrays \(shapes \(64, 2\), \(2,\), \(2,\)\), not one.*unpack it"
    with pytest.raises(ValueError, match=said):
        fit(model, whole, Y)
    with pytest.raises(ValueError, match=said):
        model.predict(whole)
    assert model.predict(whole[0]).shape == (64,)


def test_samples_laid_out_as_columns_are_told_to_transpose(backend):
    """The course's layout, X (features, samples) and Y (1, samples), was refused with
    no word of what to do."""
    model = nb.Sequential([Dense(2, 1), Sigmoid()], backend=backend, seed=0)
    with pytest.raises(ValueError, match=r"has shape \(2, 64\).*pass X\.T"):
        fit(model, X.T, Y, loss="bce", optimizer="sgd")
    with pytest.raises(ValueError, match=r"has shape \(2, 64\).*pass X\.T"):
        model.predict(X.T)
    told = r"^y has one row of 64 targets but X has 64 samples: .*Pass it 1-D: np\.ravel\(y\)$"
    with pytest.raises(ValueError, match=told):
        fit(model, X, Y.reshape(1, -1), loss="bce", optimizer="sgd")
    # the course's softmax layout, one-hot Y as (classes, samples), was told nothing
    softmax = nb.Sequential([Dense(2, 3)], backend=backend, seed=0)
    with pytest.raises(ValueError, match=r"has shape \(2, 64\).*pass X\.T\.$"):
        fit(softmax, X.T, nb.datasets.one_hot(Y, 3).T)


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
@pytest.mark.parametrize("form", ["ndarray", "matrix", "list", "backend's own"])
def test_the_row_of_targets_hint_makes_each_form_of_row_1d(backend, form):
    """It said y.reshape(-1): strict arrays have no such method, a matrix stays a row
    after it, and a list has neither."""
    model = nb.Sequential([Dense(2, 1), Sigmoid()], backend=backend, seed=0)
    row = {"ndarray": Y.reshape(1, -1), "matrix": np.matrix(Y), "list": [Y.tolist()]}.get(
        form, backend.asarray(Y.reshape(1, -1), dtype=backend.dtype_name)
    )
    with pytest.raises(ValueError, match=r"a row of 64 targets\? Pass it 1-D: ") as info:
        fit(model, X, row, loss="bce", optimizer="sgd")
    advice = str(info.value).rpartition("Pass it 1-D: ")[2]
    flat = eval(advice, {"np": np, "y": row})  # what the message says to do
    history = fit(model, X, flat, loss="bce", optimizer="sgd")
    assert len(history["loss"]) == 1 and np.isfinite(history["loss"][0])


@pytest.mark.parametrize("shape", [(8, 8, 3), (8, 8)])
def test_a_keras_style_input_shape_is_told_its_channels_first_form(backend, shape):
    """input_shape=(28, 28, 1) was 'takes 1 channels, not samples of shape (28, 28, 1)';
    (28, 28) was told to give X an axis the user never passed."""
    channels = shape[2] if len(shape) == 3 else 1
    layers = [Conv2D(channels, 4, 3), Flatten(), Dense(4 * 6 * 6, 2)]
    with pytest.raises(ValueError, match=rf"input_shape=\({channels}, 8, 8\)$"):
        nb.Sequential(layers, input_shape=shape, backend=backend, seed=0)
    model = nb.Sequential(layers, input_shape=(channels, 8, 8), backend=backend, seed=0)
    params = 4 * channels * 9 + 4 + 144 * 2 + 2
    assert model.count_params() == params


def test_an_input_shape_error_tells_no_fix_for_data_and_sees_a_missing_width(backend):
    """input_shape=(28, 28) was told X[:, None] (of data no one had passed) beside the
    input_shape fix; a channels-first (3, 32) was told input_shape=(3, 3, 32)."""
    with pytest.raises(ValueError, match=r"not \(8, 8\)\. input_shape is .*\(1, 8, 8\)$") as caught:
        nb.Sequential([Conv2D(1, 4, 3)], input_shape=(8, 8), backend=backend, seed=0)
    assert "X[" not in str(caught.value) and "X.reshape" not in str(caught.value)
    with pytest.raises(ValueError, match=r"\(channels, height, width\): \(3, 32\) has no width$"):
        nb.Sequential([Conv2D(3, 4, 3)], input_shape=(3, 32), backend=backend, seed=0)
    with pytest.raises(ValueError, match=r"images of one channel need that axis: X\[:, None\]$"):
        nb.Sequential([Conv2D(1, 4, 3)], backend=backend, seed=0).predict(np.zeros((2, 8, 8)))


def test_a_metric_the_fit_did_not_record_is_named_with_those_it_did(backend):
    """history["val_loss"] of a fit without validation, or Keras's old "acc", was a bare
    KeyError; EarlyStopping's and curves' same mistake was explained."""
    history = fit(net(backend), X, Y, epochs=2)
    assert len(history["loss"]) == 2
    recorded = r"this fit recorded \['loss', 'accuracy'\]"
    with pytest.raises(KeyError, match=rf"'val_loss': {recorded}; for 'val_\*' pass validation"):
        history["val_loss"]
    with pytest.raises(KeyError, match=rf"'acc': {recorded}; 'acc' is recorded by its own"):
        history["acc"]


def test_a_fit_without_resume_warns_that_it_replaces_an_earlier_runs_checkpoint(backend, tmp_path):
    """A script run again without resume=True replaced the earlier run's checkpoint at
    its first save, without a word (the guide said such a fit lost nothing)."""
    path = tmp_path / "run.h5"
    fit(net(backend), X, Y, epochs=3, checkpoint=path)
    assert nb.load(path, with_optimizer=True)[2] == 2
    advice = r"holds epoch 2 of an earlier run, .*resume=True with epochs above 3 to go on"
    with pytest.warns(UserWarning, match=advice):
        fit(net(backend), X, Y, epochs=1, checkpoint=path)
    assert nb.load(path, with_optimizer=True)[2] == 0  # replaced, as the warning said
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a resume replaces nothing it does not go on from
        fit(net(backend), X, Y, epochs=2, checkpoint=path, resume=True)
    assert nb.load(path, with_optimizer=True)[2] == 1


def test_the_replace_warnings_advice_goes_on_from_the_checkpoint(backend, tmp_path):
    """It said "pass resume=True to go on from it", and the same call with resume=True
    trained nothing: the file held the last of its epochs."""
    path = tmp_path / "run.h5"
    fit(net(backend), X, Y, epochs=2, checkpoint=path)
    with pytest.warns(UserWarning, match="resume=True with epochs above 2") as caught:
        fit(net(backend), X, Y, epochs=2, checkpoint=path)
    assert caught[0].filename == __file__
    resumed = fit(net(backend), X, Y, epochs=3, checkpoint=path, resume=True)  # the advice
    assert len(resumed["loss"]) == 1 and nb.load(path, with_optimizer=True)[2] == 2
    nb.save(net(backend), path)  # saved outside a fit: no epoch to go on from
    with pytest.warns(UserWarning, match=r"holds an earlier checkpoint, .* keep it$"):
        fit(net(backend), X, Y, checkpoint=path)


def test_a_model_fitted_again_replaces_its_own_checkpoint_without_a_warning(backend, tmp_path):
    """Fitting the same model again (Keras's way to train on) warned that it replaced
    an earlier run's checkpoint: the file was its own last save, which it holds."""
    path, model = tmp_path / "run.h5", net(backend)
    fit(model, X, Y, epochs=2, checkpoint=path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit(model, X, Y, epochs=2, checkpoint=path)
        nb.save(model, path)
        fit(model, X, Y, checkpoint=path)
    fit(net(backend), X, Y, checkpoint=tmp_path / "other.h5")
    (tmp_path / "other.h5").replace(path)  # another model's file now
    with pytest.warns(UserWarning, match="holds epoch 0 of an earlier run"):
        fit(model, X, Y, checkpoint=path)


def test_a_fit_that_saves_nothing_does_not_warn_it_replaces_a_checkpoint(backend, tmp_path):
    """A fit refused for its data, or of no epochs, warned that it replaced the file it
    then left alone."""
    path = tmp_path / "run.h5"
    fit(net(backend), X, Y, checkpoint=path)
    before = path.read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="NaN"):
            fit(net(backend), np.full_like(X, np.nan), Y, checkpoint=path)
        with pytest.raises(ValueError, match="class labels"):
            fit(net(backend), X, Y + 0.5, checkpoint=path)
        fit(net(backend), X, Y, epochs=0, checkpoint=path)
    assert path.read_bytes() == before


def test_a_structured_array_is_told_how_to_become_columns(backend):
    """np.genfromtxt(..., names=True) gives one: it was called strings, and the advised
    X.astype(float) fails on it."""
    from numpy.lib.recfunctions import structured_to_unstructured

    table = np.zeros(len(X), dtype=[("x1", "f8"), ("x2", "f8")])
    table["x1"], table["x2"] = X[:, 0], X[:, 1]
    said = (
        r"X is a structured array \(fields x1, x2\).*structured_to_unstructured\(np\.asarray\(X\)\)"
    )
    with pytest.raises(TypeError, match=said):
        fit(net(backend), table, Y)
    with pytest.raises(TypeError, match=said):
        net(backend).predict(table)
    columns = fit(net(backend), structured_to_unstructured(table), Y)["loss"]
    assert columns == fit(net(backend), X, Y)["loss"]


def test_samples_of_differing_shapes_are_named_not_taken_for_a_functions_tuple(backend):
    """A list of samples with one of another length was told to 'unpack' it, in a
    message listing every sample's shape (6 KB for 1000 samples)."""
    rows = [np.asarray(x) for x in X]
    rows[40] = rows[40][:1]
    said = r"^X's samples differ in shape: X\[0\] has shape \(2,\), X\[40\] has \(1,\); every"
    with pytest.raises(ValueError, match=said) as caught:
        fit(net(backend), rows, Y)
    assert len(str(caught.value)) < 120


def test_a_fit_replacing_a_stopped_runs_checkpoint_is_told_how_to_keep_it(backend, tmp_path):
    """A resume of a run EarlyStopping ended says resume=False starts afresh; that fit's
    warning then said only 'pass resume=True', which trains nothing."""
    path = tmp_path / "run.h5"
    stop = nb.callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=10.0)
    fit(net(backend), X, Y, epochs=20, checkpoint=path, callbacks=[stop])
    resumed = fit(net(backend), X, Y, epochs=20, checkpoint=path, resume=True)
    assert len(resumed) == 0 and "resume=False starts afresh" in resumed.stop_reason
    with pytest.warns(UserWarning, match="replaces at its first save: .*name another file to keep"):
        history = fit(net(backend), X, Y, epochs=2, checkpoint=path)
    assert len(history["loss"]) == 2


def test_a_history_of_no_epochs_says_so_rather_than_ask_for_validation(backend, tmp_path):
    """A finished run resumed (the guide's always-resume=True restart) returns a History
    of no epochs; its "val_loss" asked for the validation data the fit was given."""
    path = tmp_path / "run.h5"
    first = fit(net(backend), X, Y, epochs=2, validation_split=0.25, checkpoint=path)
    assert len(first["val_loss"]) == 2
    again = fit(net(backend), X, Y, epochs=2, validation_split=0.25, checkpoint=path, resume=True)
    with pytest.raises(KeyError, match=r"'val_loss': this fit ran no epochs \(nothing left"):
        again["val_loss"]


def test_resume_without_a_checkpoint_path_is_refused_before_training(backend):
    """resume=True with no checkpoint= would retrain from epoch 0 and save nothing."""
    model = net(backend)
    before = {name: nb.to_numpy(w).copy() for name, w in model.params.items()}
    with pytest.raises(ValueError, match=r"^resume=True needs checkpoint=<path> to resume from"):
        fit(model, X, Y, epochs=2, resume=True)
    for name, w in model.params.items():
        np.testing.assert_array_equal(nb.to_numpy(w), before[name])


def test_an_input_shape_that_is_not_keras_style_gets_no_channels_first_hint(backend):
    """The hint is for (H, W, C) and (H, W) only: a channels-first shape of the wrong
    channel count, or a Dense model's, is told what its layer takes, nothing more."""
    layers = [Conv2D(3, 4, 3), Flatten(), Dense(4 * 6 * 6, 2)]
    with pytest.raises(ValueError, match=r"^input_shape does not fit layer 0: .*\)$") as caught:
        nb.Sequential(layers, input_shape=(4, 8, 8), backend=backend, seed=0)
    assert "input_shape=(" not in str(caught.value)
    said = r"takes 2 features, not samples of shape \(3, 5\) \(put a Flatten\(\) before it\)$"
    with pytest.raises(ValueError, match=said):
        nb.Sequential([Dense(2, 4), Dense(4, 2)], input_shape=(3, 5), backend=backend, seed=0)


def test_no_transpose_hint_where_y_counts_the_rows(backend):
    """Three samples of five features for a model of three: X.T was advised, which y's
    three targets then refused; the model's width is what is wrong."""
    X3, y3 = np.arange(15.0).reshape(3, 5), np.zeros(3)
    model = nb.Sequential([Dense(3, 4), Tanh(), Dense(4, 1)], backend=backend, seed=0)
    with pytest.raises(ValueError, match=r"takes samples of 3 features") as caught:
        fit(model, X3, y3, loss="mse", optimizer="sgd")
    assert "X.T" not in str(caught.value)
    with pytest.raises(ValueError, match=r"pass X\.T\.$"):  # five samples as columns
        fit(model, X3, np.zeros(5), loss="mse", optimizer="sgd")


def test_a_grey_image_among_colour_ones_is_named_and_a_pair_is_told_to_unpack(backend):
    """Parts of differing ndim were all taken for a function's tuple (one grey image
    among five colour ones was told to unpack standardize's result), and parts of one
    ndim for samples (a loader's (X, one-hot y) pair)."""
    images = [np.zeros((8, 8, 3))] * 5 + [np.zeros((8, 8))]
    with pytest.raises(ValueError, match=r"^X's samples differ in shape: .*X\[5\] has \(8, 8\)"):
        fit(net(backend), images, Y[:6])
    pair = (X, nb.datasets.one_hot(Y, 3))
    with pytest.raises(
        ValueError, match=r"tuple of 2 arrays \(shapes \(64, 2\), \(64, 3\)\).*unpack"
    ):
        fit(net(backend), pair, Y)
    with pytest.raises(ValueError, match=r"y is a tuple of 2 arrays .*unpack it"):
        fit(net(backend), X, (Y[:40], Y[40:]))  # y=(y_train, y_test): not samples


def test_a_list_of_rows_with_one_short_names_it(backend):
    """A CSV row missing a field got NumPy's 'inhomogeneous shape after 1 dimensions'."""
    rows = X.tolist()
    rows[40] = rows[40][:1]
    said = r"^X's samples differ in shape: X\[0\] has shape \(2,\), X\[40\] has \(1,\)"
    with pytest.raises(ValueError, match=said):
        fit(net(backend), rows, Y)


def test_an_hdf5_compound_dataset_is_given_advice_that_works_on_it(backend, tmp_path):
    """structured_to_unstructured(X) fails on an h5py Dataset (it has no .view)."""
    import h5py
    from numpy.lib.recfunctions import structured_to_unstructured

    table = np.zeros(len(X), dtype=[("x1", "f8"), ("x2", "f8")])
    table["x1"], table["x2"] = X[:, 0], X[:, 1]
    with h5py.File(tmp_path / "table.h5", "w") as f:
        dataset = f.create_dataset("X", data=table)
        with pytest.raises(TypeError, match=r"structured_to_unstructured\(np\.asarray\(X\)\)"):
            fit(net(backend), dataset, Y)
        np.testing.assert_array_equal(structured_to_unstructured(np.asarray(dataset)), X)


class _DeviceRow:
    """A sample on a GPU as CuPy's arrays are: a shape, and no implicit copy to NumPy."""

    shape = (2,)

    def __len__(self):
        return 2

    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed")


def test_a_list_of_samples_numpy_cannot_fetch_is_named_in_the_librarys_words(backend):
    """One shape, but not NumPy's to read: a list of GPU arrays (a TypeError), or of
    array-api-strict's second device (a RuntimeError, which escaped in its own words)."""
    with pytest.raises(ValueError, match=r"^X cannot be read as an array \(Implicit conversion"):
        fit(net(backend), [_DeviceRow() for _ in range(4)], Y[:4])
    import array_api_strict as xs

    rows = [xs.asarray(x, device=xs.Device("device1")) for x in X[:8]]
    with pytest.raises(ValueError, match=r"^X cannot be read as an array \(.*device1"):
        fit(net(backend), rows, Y[:8])


def test_the_course_layout_with_y_as_a_row_is_told_to_transpose(backend):
    """X (features, samples) with Y (1, samples): y's length, 1, was read as its number
    of samples, and the X.T hint held back."""
    model = nb.Sequential([Dense(2, 1), Sigmoid()], backend=backend, seed=0)
    with pytest.raises(ValueError, match=r"has shape \(2, 64\).*pass X\.T\.$"):
        fit(model, X.T, Y.reshape(1, -1), loss="bce", optimizer="sgd")


def test_a_list_of_a_few_differing_samples_is_not_told_to_unpack(backend):
    """A list (no function returns one) of three images, one grey, was told to unpack
    it as standardize's (X, mean, std)."""
    images = [np.zeros((3, 8, 8)), np.zeros((3, 8, 8)), np.zeros((1, 8, 8))]
    layers = [Conv2D(3, 2, 3), Flatten(), Dense(72, 2)]
    model = nb.Sequential(layers, input_shape=(3, 8, 8), backend=backend, seed=0)
    said = r"^X's samples differ in shape: X\[0\] has shape \(3, 8, 8\), X\[2\] has \(1, 8, 8\)"
    with pytest.raises(ValueError, match=said):
        model.predict(images)


def test_a_checkpoint_rewritten_in_place_by_another_run_is_warned_of(backend, tmp_path):
    """Another run's file copied over the model's own last save in place (cp keeps the
    inode; here of the very same size) is no longer that save: the fit warns."""
    path = tmp_path / "run.h5"
    model = net(backend)
    fit(model, X, Y, checkpoint=path)
    for seed in range(1, 40):  # another run's file of the very same size
        other = tmp_path / f"other{seed}.h5"
        fit(nb.Sequential([Dense(2, 4), Tanh(), Dense(4, 2)], backend=backend, seed=seed),
            X, Y, checkpoint=other)  # fmt: skip
        if other.stat().st_size == path.stat().st_size:
            break
    assert other.stat().st_size == path.stat().st_size
    inode = os.stat(path).st_ino
    with open(path, "r+b") as file:  # in place: the same inode
        file.write(other.read_bytes())
        file.truncate()
    assert os.stat(path).st_ino == inode
    with pytest.warns(UserWarning, match="holds epoch 0 of an earlier run"):
        fit(model, X, Y, checkpoint=path)


def test_a_checkpoint_of_an_unreadable_epoch_is_called_an_earlier_checkpoint(backend, tmp_path):
    """A damaged /training (stopped = 7) is "an earlier checkpoint": no resume=True from
    an epoch the file does not hold (a resume from it would be refused)."""
    path = tmp_path / "run.h5"
    fit(net(backend), X, Y, checkpoint=path)
    with h5py.File(path, "r+") as f:
        f["training"].attrs["stopped"] = 7  # neither 0 nor 1: damaged
    with pytest.warns(UserWarning) as caught:
        fit(net(backend), X, Y, checkpoint=path)
    said = [str(w.message) for w in caught]
    assert any("holds an earlier checkpoint" in m for m in said), said
    assert not any("resume=True" in m for m in said), said


def test_the_hints_for_values_that_are_not_numbers_run_as_written(backend):
    """A list was told X.astype(float), validation data "validation y = np.unique(...)",
    which is no Python, and a list of dicts (records) a cast that fails on dicts."""
    X, y = nb.datasets.make_moons(8, seed=0)
    strings = [[str(a), str(b)] for a, b in X]
    # records whose keys come in another order (JSON from two sources): by key, not place
    records = [
        {"x1": a, "x2": b} if i % 2 == 0 else {"x2": b, "x1": a} for i, (a, b) in enumerate(X)
    ]
    cases = [
        (dict(X=strings), r"np\.asarray\(X\)\.astype\(float\) if they are"),
        (dict(X=records), r"keys = sorted\(X\[0\]\); X = np\.array\(\[\[row\[k\] for k in keys\]"),
        (dict(validation_data=(X, y.astype(str))), r", y_val = enc\.transform\(y_val\) "),
        (dict(validation_data=(X.astype(str), y)), r"X_val\.astype\(float\) if they are"),
    ]
    for given, told in cases:
        data = given.pop("X", X)
        with pytest.raises(TypeError, match=told) as refused:
            fit(net(backend), data, y, **given)
        if "validation_data" not in given:  # the fix, run on the list as given
            code = str(refused.value).split(": ", 1)[-1].split(" if they are")[0]
            names = {"np": np, "X": data}
            exec(code if "keys" in code else f"X = {code}", names)  # noqa: S102
            np.testing.assert_array_equal(names["X"], X)
            assert fit(net(backend), names["X"], y)["loss"][0] > 0
