"""The edges of what fit, predict and History take and say: tuples and lists that are
no one array (samples that differ, a function's whole result, a generator), the
rows-of-targets and X.T hints where they must not show, a History read by an index
or a name it never recorded, the Keras input_shape hint where its channels do not fit."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import nnbackend as nb
from nnbackend.backend import namespace_of
from nnbackend.data import as_array
from nnbackend.hint_code import flattened
from nnbackend.layers import Conv2D, Dense, Flatten, Layer
from nnbackend.loss_base import Loss
from nnbackend.plot import _drawable


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
    said = f"{shape[0]} targets" if shape[0] > 1 else f"one row of {shape[1]} targets"
    with pytest.raises(ValueError, match=rf"y has {said} but X has 64") as caught:
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


def test_batches_of_x_and_y_are_told_how_to_join_them_and_the_told_way_trains():
    """A loader's (x, y) batches, as Keras and PyTorch users pass them: the generator's
    hint (np.asarray(list(...))) failed on them with NumPy's "inhomogeneous shape", and
    their list got NumPy's words alone."""
    X, y = nb.datasets.make_moons(20, seed=0)

    def loader():
        return ((X[i : i + 5], y[i : i + 5]) for i in range(0, 20, 5))

    model = nb.Sequential([Dense(2, 2)], seed=0)
    fit = functools.partial(model.fit, loss="cross_entropy", optimizer="sgd", verbose=0)
    told = r"np.concatenate\(\[xb for xb, _ in batches\]\); y = np.concatenate"
    with pytest.raises(TypeError, match=r"pairs = list\(\.\.\.\), and pass that: the error"):
        fit(loader(), None)  # samples or batches: the list's error tells which
    with pytest.raises(
        ValueError, match=rf"^X is a list of 4 \(x, y\) batches: nnbackend takes .*{told}"
    ):
        fit(list(loader()), None)
    batches = list(loader())
    X_joined = np.concatenate([xb for xb, _ in batches])
    y_joined = np.concatenate([yb for _, yb in batches])
    np.testing.assert_array_equal(X_joined, X)
    assert len(fit(X_joined, y_joined, epochs=1).history["loss"]) == 1


def test_pairs_that_are_samples_or_a_loaders_two_sets_are_told_so():
    """Every pair of arrays was called a batch: samples (x of 4 features, y of 2
    targets) were told to concatenate, which flattened them, and a loader's whole
    ((X_train, y_train), (X_test, y_test)) to join the test set into training."""
    pairs = [(np.full(4, i, dtype=float), np.full(2, i, dtype=float)) for i in range(6)]
    with pytest.raises(ValueError, match=r"6 \(x, y\) samples: .*stack them first") as info:
        as_array(pairs)
    told = str(info.value).split("stack them first: ")[1]
    X, y = (eval(line.split(" = ")[1], {"np": np, "pairs": pairs}) for line in told.split("; "))
    assert X.shape == (6, 4) and y.shape == (6, 2) and X[5, 0] == y[5, 1] == 5
    data = ((np.zeros((9, 3)), np.zeros(9)), (np.zeros((4, 3)), np.zeros(4)))
    with pytest.raises(ValueError, match=r"for a loader's \(train, test\) sets, unpack them"):
        nb.Sequential([Dense(3, 2)], seed=0).predict(data)


def test_an_image_and_its_label_are_samples_and_triples_no_pairs():
    """x with rows of its own beside a label is a sample (stack); (x, y, weight) triples
    are no pairs (the pairs' hint unpacks two)."""
    pairs = [(np.zeros((28, 28)), 3), (np.zeros((28, 28)), 5), (np.zeros((28, 28)), 1)]
    with pytest.raises(ValueError, match="stack them first"):
        as_array(pairs, "X")
    triples = [(np.zeros((n, 2)), np.zeros(n), np.ones(n)) for n in (4, 3)]
    with pytest.raises(ValueError, match="cannot be read as an array"):
        as_array(triples, "X")


def test_rows_of_two_channels_with_their_own_y_are_features():
    """Tuples of two arrays of one shape are a sample's channels where y is given apart
    (zip of two arrays of rows): NumPy stacks them, and fit trains (a pre-check that
    took them for (x, y) pairs refused them, told to overwrite y)."""
    rng = np.random.default_rng(0)
    X = list(zip(rng.random((8, 3)), rng.random((8, 3)), strict=True))
    assert as_array(X).shape == (8, 2, 3)
    model = nb.Sequential([Flatten(), Dense(6, 2)], seed=0)
    model.fit(X, np.arange(8) % 2, loss="cross_entropy", optimizer="adam", verbose=0)


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


# How the targets' error tells a user to make y 1-D depends on y's library: NumPy,
# array-api-strict and np.matrix are told np.ravel(y) (strict arrays have no reshape
# method; a matrix stays a row), while torch and CuPy arrays are told y.reshape(-1),
# which keeps them on their device. Only the class's module is read, so stand-in classes
# named as those libraries' are enough here.


def _named(module: str):
    return type("Tensor", (), {"__module__": module})()


@pytest.mark.parametrize("module", ["torch", "cupy", "cupy._core.core", "torch.nn"])
def test_device_arrays_are_told_their_own_reshape(module):
    assert flattened(_named(module), "y") == "y.reshape(-1)"


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
@pytest.mark.parametrize("make", [np.asarray, np.asmatrix])  # made in the test, whose
def test_host_arrays_are_told_np_ravel(make):  # filter then hides the matrix's warning
    array = make(np.zeros((1, 3)))
    assert flattened(array, "y") == "np.ravel(y)"
    assert flattened(_named("array_api_strict._array_object"), "y") == "np.ravel(y)"


# A loss of one's own that does not take targets of the outputs' shape (its
# ``targets_like_outputs`` left False) trains a model of image outputs on targets of
# another shape: here one number a sample against the mean of a conv layer's map. Only
# the built-in losses whose targets are the outputs' shape (MSE, BCE) have y's samples
# checked against the model's output shape.


class MeanOfMap(Loss):
    """Squared error of each sample's mean output against one number a sample."""

    def forward(self, pred, target):
        xp = namespace_of(pred)
        n = pred.shape[0]
        flat = xp.reshape(pred, (n, -1))
        self._size = flat.shape[1]
        self._shape = pred.shape
        diff = xp.mean(flat, axis=1) - target
        self._diff, self._xp = diff, xp
        return xp.mean(diff**2)

    def backward(self):
        xp, diff = self._xp, self._diff
        n = diff.shape[0]
        grad = 2 * diff / (n * self._size)
        return xp.broadcast_to(xp.reshape(grad, (n, 1, 1, 1)), self._shape) * 1


def test_an_own_loss_takes_targets_of_another_shape_than_image_outputs():
    model = nb.Sequential([nb.layers.Conv2D(1, 1, 3, padding=1)], input_shape=(1, 8, 8),
                          backend="numpy", seed=0)  # fmt: skip
    X = np.random.default_rng(0).normal(size=(32, 1, 8, 8))
    y = X.mean(axis=(1, 2, 3))
    history = model.fit(X, y, loss=MeanOfMap(), optimizer="sgd", batch_size=8, verbose=0)
    assert np.isfinite(history["loss"][-1])


# A Conv2D of c input channels given a 2-D input_shape: (c, w) with w != c reads as
# channels first with no width ("(3, 32) has no width"), while a square (c, c) is as
# likely a c x c image without its channels and is told the whole (channels, height,
# width) input_shape, (c, c, c).


def test_a_square_input_shape_is_told_the_full_input_shape():
    with pytest.raises(ValueError, match=r"input_shape=\(3, 3, 3\)$") as caught:
        nb.Sequential([Conv2D(3, 4, 3)], input_shape=(3, 3), backend="numpy", seed=0)
    assert "has no width" not in str(caught.value)


def test_channels_first_without_width_is_said_so():
    with pytest.raises(ValueError, match=r"\(3, 32\) has no width$"):
        nb.Sequential([Conv2D(3, 4, 3)], input_shape=(3, 32), backend="numpy", seed=0)


# What predict drops after its pass is a layer's private arrays (its last batch), never
# a public array attribute of a layer of one's own (a fixed mask, or the outputs it
# records for the user to look at). And image_grid draws colour images as they are when
# they are integers (0..255) and scales a constant float image outside [0, 1] to zeros,
# not to NaN.


class Masked(Layer):
    """Multiplies by a fixed public mask."""

    def __init__(self):
        super().__init__()
        self.mask = np.array([1.0, 0.0])

    def forward(self, x, training=True):
        self._x = x
        self.activations = x * self.mask  # public: kept for the user to look at
        return self.activations

    def backward(self, dy, input_grad=True):
        return dy * self.mask


def test_predict_keeps_a_layers_public_arrays():
    model = nb.Sequential([Dense(2, 2), Masked()], backend="numpy", seed=0)
    model.predict(np.ones((3, 2)))
    assert isinstance(model.layers[1].mask, np.ndarray)
    assert model.layers[1].activations.shape == (3, 2)
    assert not hasattr(model.layers[1], "_x")  # the batch it kept is dropped


def test_integer_colour_images_are_drawn_as_they_are():
    image = np.arange(12, dtype=np.uint8).reshape(2, 2, 3) * 20
    np.testing.assert_array_equal(_drawable(image, True), image)


def test_a_constant_float_colour_image_outside_unit_range_is_drawn_as_zeros():
    drawn = _drawable(np.full((2, 2, 3), 2.5), True)
    assert np.isfinite(drawn).all() and (drawn == 0).all()


# Advice names the right thing. A logits loss after Sigmoid -> pooling is told to drop
# the Sigmoid (the layer that squashes), not the pooling layer at the end. EarlyStopping
# monitoring a 'val_*' name the fit does not record, in a fit that has validation data,
# is not told to pass validation data (it has some: the name is what is wrong).


def test_a_logits_loss_after_sigmoid_and_pooling_is_told_to_drop_the_sigmoid():
    X = np.random.default_rng(0).normal(size=(8, 1, 4, 4))
    pooled = nb.Sequential([nb.layers.Conv2D(1, 1, 1), nb.layers.Sigmoid(),
                            nb.layers.GlobalAvgPool2D()], backend="numpy", seed=0)  # fmt: skip
    with pytest.warns(UserWarning, match=r"drop Sigmoid\(\), or pass from_logits=False"):
        pooled.fit(X, np.arange(8) % 2, loss=nb.losses.BinaryCrossEntropy(from_logits=True),
                   optimizer="sgd", verbose=0)  # fmt: skip


def test_an_unrecorded_val_name_with_validation_data_is_not_told_to_add_validation():
    X, y = nb.datasets.make_moons(64, noise=0.2, seed=0)
    model = nb.Sequential([nb.layers.Dense(2, 2)], backend="numpy", seed=0)
    stop = nb.callbacks.EarlyStopping(monitor="val_no_such_metric")
    with pytest.raises(ValueError, match="val_no_such_metric") as caught:
        model.fit(X, y, loss="cross_entropy", optimizer="sgd", epochs=2, verbose=0,
                  validation_split=0.25, callbacks=[stop])  # fmt: skip
    assert "validation_data" not in str(caught.value)


def test_a_val_alias_without_validation_data_is_told_to_add_validation():
    """'val_acc' names accuracy by an alias, but with no validation data even its own
    name, 'val_accuracy', is not recorded: the fix is the validation data (and the
    name, said with it); 'val_accuracy' itself is told only the validation data."""
    X, y = nb.datasets.make_moons(64, noise=0.2, seed=0)
    model = nb.Sequential([nb.layers.Dense(2, 2)], backend="numpy", seed=0)
    for monitor, also in (("val_acc", ", and monitor='val_accuracy'"), ("val_accuracy", "")):
        stop = nb.callbacks.EarlyStopping(monitor=monitor)
        with pytest.raises(ValueError, match="pass validation_data or validation_split") as caught:
            model.fit(X, y, loss="cross_entropy", optimizer="sgd", epochs=2, verbose=0,
                      callbacks=[stop])  # fmt: skip
        assert str(caught.value).endswith(f"validation_split{also}")


def test_hints_for_validation_data_write_it_as_code(backend):
    """fit's validation data is named "validation X" and "validation y" in words; the
    hints wrote code of those words too (np.ravel(validation y), validation X[None]),
    or told the training data's X.T and X.transpose(0, 3, 1, 2)."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 4)), rng.integers(0, 2, 20)
    dense = nb.Sequential([Dense(4, 2)], backend=backend, seed=0)
    images = rng.normal(size=(6, 3, 8, 8))
    conv = nb.Sequential([Conv2D(3, 3, 3, padding=1)], backend=backend, seed=0)
    cases = [
        (dense, X, y, (X, y[None]), r"np\.ravel\(y_val\)$"),
        (dense, X, y, (X.T, y), r"pass X_val\.T\.$"),
        (conv, images, images, (images.transpose(0, 2, 3, 1), images), r"Use X_val\.transpose"),
        (conv, images, images, (images, images.transpose(0, 2, 3, 1)), r"Use y_val\.transpose"),
        (conv, images, images, (images[0], images[:1]), r"batch of one: X_val\[None\]$"),
    ]
    for model, X_fit, y_fit, validation, hint in cases:
        loss = "cross_entropy" if model is dense else "mse"
        with pytest.raises(ValueError, match=hint):
            model.fit(X_fit, y_fit, loss=loss, optimizer="sgd", validation_data=validation)


@pytest.mark.parametrize("shape", [(28, 28), (28, 28, 1), (14, 14, 4)])
def test_one_image_for_a_model_of_rows_is_told_to_become_one_row(shape, backend):
    """One picture for a net of 784 inputs was told X.reshape(len(X), -1), which makes
    28 rows of 28 and fails again, or nothing at all for a grey (28, 28)."""
    model = nb.Sequential([Dense(784, 3)], backend=backend, seed=0)
    image = np.random.default_rng(0).random(shape)
    with pytest.raises(
        ValueError, match=r"A single image\? Give it as one row: X\.reshape\(1, -1\)\.$"
    ):
        model.predict(image)
    assert nb.to_numpy(model.predict(image.reshape(1, -1))).shape == (1,)


@pytest.mark.parametrize(
    ("n", "batch_size", "said"),
    [
        (4, 1, r"^batch_size=1 gives batches of 1 row\(s\), .* choose batch_size=2 or more$"),
        (
            1,
            None,
            r"^the fit trains on 1 sample\(s\) \(X's, less any validation_split\), .* or more$",
        ),
    ],
)
def test_batchnorm_told_of_batches_all_too_small_is_not_told_to_drop_samples(
    n, batch_size, said, backend
):
    """With batch_size=1, or one sample, every batch holds one row: the hint, "drop 1
    sample(s)" from "the last batch", left one-row batches (or no data) behind."""
    model = nb.Sequential([Dense(2, 4), nb.layers.BatchNorm(4), Dense(4, 2)], backend=backend)
    X, y = np.random.default_rng(0).normal(size=(n, 2)), np.arange(n) % 2
    with pytest.raises(ValueError, match=said):
        model.fit(X, y, loss="cross_entropy", optimizer="sgd", batch_size=batch_size, verbose=0)


@pytest.mark.parametrize("path", ["ck_{epoch:02d}.h5", "best_{val_loss:.2f}.h5", "run_{epoch}.h5"])
def test_a_keras_template_for_a_checkpoint_path_is_refused(path, tmp_path, backend):
    """ModelCheckpoint("ck_{epoch:02d}.h5"), Keras's way to keep each epoch's, wrote one
    file named with the braces: nothing said the template was not filled in."""
    model = nb.Sequential([Dense(2, 2)], backend=backend, seed=0)
    X, y = np.zeros((4, 2)), np.array([0, 1, 0, 1])
    said = r"=.* holds a template field: a fit keeps one checkpoint file"
    with pytest.raises(ValueError, match="^checkpoint" + said):  # fit's own option named
        model.fit(X, y, loss="cross_entropy", optimizer="sgd", checkpoint=tmp_path / path)
    with pytest.raises(ValueError, match="^ModelCheckpoint path" + said):
        nb.callbacks.ModelCheckpoint(str(tmp_path / path))
    assert list(tmp_path.iterdir()) == []
    nb.callbacks.ModelCheckpoint(tmp_path / "{a b}.h5")  # braces as a name's own are kept


def test_one_hot_targets_as_columns_are_told_to_transpose(backend):
    """The course's one-hot Y of (classes, samples) was told only that its 3 targets do
    not match 6 samples; X laid out so is told X.T."""
    model = nb.Sequential([Dense(4, 5), Dense(5, 3)], backend=backend, seed=0)
    X, Y = np.zeros((6, 4)), np.eye(3)[[0, 1, 2, 0, 1, 2]]
    fit = dict(loss="cross_entropy", optimizer="sgd", verbose=0)
    with pytest.raises(ValueError, match=r"samples as columns \(outputs x samples\)\? Pass y\.T$"):
        model.fit(X, Y.T, **fit)
    with pytest.raises(ValueError, match=r"Pass y_val\.T$"):
        model.fit(X, Y, validation_data=(X, Y.T), **fit)
    model.fit(X, Y.T.T, **fit)


def test_rows_zipped_from_numpy_columns_are_features_not_xy_pairs():
    """list(zip(a, b)) of two NumPy columns holds rows of NumPy scalars (each has a
    shape, ()): the pairs' pre-check called them (x, y) samples, where fit trained."""
    a = np.arange(5.0)
    assert as_array(list(zip(a, -a, strict=True))).shape == (5, 2)


@pytest.mark.parametrize("given", [list, lambda pairs: zip(*zip(*pairs, strict=True), strict=True)])
def test_nielsens_pairs_of_column_vectors_are_told_a_stack_that_trains(given):
    """network.py's data: (x, y) of (784, 1) and (10, 1) column vectors, a zip in
    Python 3. The stack told gave X of (N, 784, 1), refused in turn; a zip was told to
    concatenate, which made one long column."""
    X = np.random.default_rng(0).normal(size=(12, 3))
    labels = (X[:, 0] > 0).astype(int)
    pairs = [
        (x.reshape(-1, 1), np.eye(2)[t].reshape(-1, 1)) for x, t in zip(X, labels, strict=True)
    ]
    model = nb.Sequential([Dense(3, 2)], seed=0)
    fit = functools.partial(model.fit, loss="mse", optimizer="sgd", verbose=0)
    data = given(pairs)
    if not isinstance(data, list):
        with pytest.raises(TypeError, match=r"pairs = list\(\.\.\.\), and pass that"):
            fit(data, None)
        data = list(given(pairs))  # as told
    with pytest.raises(ValueError, match="stack them first") as told:
        fit(data, None)
    scope = {"np": np, "pairs": data}
    exec(str(told.value).split("stack them first: ", 1)[1], scope)  # noqa: S102 - the hint's code
    assert scope["X"].shape == (12, 3) and scope["y"].shape == (12, 2)
    np.testing.assert_array_equal(scope["X"], X)
    fit(scope["X"], scope["y"], epochs=1)


def test_pairs_given_to_evaluate_or_as_validation_data_get_fits_hint():
    """evaluate(test_data) was Python's "missing 1 required positional argument: 'y'",
    validation_data=test_data "is a pair (X_val, y_val), got 12 items"."""
    X = np.random.default_rng(0).normal(size=(12, 3))
    labels = (X[:, 0] > 0).astype(int)
    pairs = [(x.reshape(-1, 1), t) for x, t in zip(X, labels, strict=True)]
    model = nb.Sequential([Dense(3, 2)], seed=0)
    model.fit(X, labels, loss="cross_entropy", optimizer="sgd", verbose=0)
    with pytest.raises(ValueError, match=r"^X is a list of 12 \(x, y\) samples: .*np\.ravel\(x\)"):
        model.evaluate(pairs)
    with pytest.raises(TypeError, match=r"^y is None: give targets y, one per sample of X"):
        model.evaluate(X)
    with pytest.raises(ValueError, match=r"^validation_data is a list of 12 \(x, y\) samples"):
        model.fit(X, labels, loss="cross_entropy", optimizer="sgd", validation_data=pairs)
    assert set(model.evaluate(X, labels)) == {"loss", "accuracy"}


def test_an_x_y_tuple_given_as_x_is_told_to_pass_them_apart():
    """evaluate((X_test, y_test)), Keras's validation habit, was told about standardize."""
    X = np.random.default_rng(0).normal(size=(12, 4))
    labels = np.arange(12) % 2
    model = nb.Sequential([Dense(4, 2)], seed=0)
    with pytest.raises(
        ValueError, match=r"unpack it first, as in X, y = data, then pass them apart"
    ):
        model.evaluate((X, labels), loss="cross_entropy")
    with pytest.raises(ValueError, match=r"as in X, mean, std = nb\.datasets\.standardize\(X\)"):
        model.evaluate(nb.datasets.standardize(X), loss="cross_entropy")  # three: not a pair


def test_a_negative_seed_for_batches_is_told_at_least_0():
    with pytest.raises(ValueError, match=r"a seed, an int of at least 0, not -1"):
        nb.data.Batches(np.zeros((10, 2)), np.zeros(10), "numpy", batch_size=4, rng=-1)


def test_pairs_of_column_x_and_int_labels_are_told_a_stack_that_trains():
    X = np.random.default_rng(0).normal(size=(40, 3))
    labels = (X[:, 0] > 0).astype(int)
    pairs = [(x.reshape(-1, 1), t) for x, t in zip(X, labels, strict=True)]
    model = nb.Sequential([Dense(3, 2)], seed=0)
    with pytest.raises(ValueError, match="stack them first") as told:
        model.fit(pairs, None, loss="cross_entropy", optimizer="sgd", verbose=0)
    scope = {"np": np, "pairs": pairs}
    exec(str(told.value).split("stack them first: ", 1)[1], scope)  # noqa: S102 - the hint's code
    assert scope["X"].shape == (40, 3) and scope["y"].shape == (40,)


def test_image_pairs_with_a_trailing_channel_are_stacked_whole():
    pairs = [(np.zeros((4, 4, 1)), 0)] * 3
    model = nb.Sequential([nb.layers.Flatten(), Dense(16, 2)], seed=0)
    with pytest.raises(ValueError, match=r"np\.stack\(\[x for x, _ in pairs\]\)"):
        model.fit(pairs, None, loss="cross_entropy", optimizer="sgd", verbose=0)


def test_a_zip_or_a_triple_as_validation_data_is_told_what_to_give():
    """validation_data=zip(...), Nielsen's test data in Python 3, was "is a pair (X_val,
    y_val), got zip"."""
    X = np.random.default_rng(0).normal(size=(12, 3))
    labels = (X[:, 0] > 0).astype(int)
    model = nb.Sequential([Dense(3, 2)], seed=0)
    fit = functools.partial(model.fit, X, labels, loss="cross_entropy", optimizer="sgd", verbose=0)
    with pytest.raises(TypeError, match=r"pairs = list\(\.\.\.\)"):
        fit(validation_data=zip([x.reshape(-1, 1) for x in X], labels, strict=True))
    with pytest.raises(ValueError, match=r"is a pair \(X_val, y_val\), got 3 items"):
        fit(validation_data=(X.tolist(), labels.tolist(), labels.tolist()))


@pytest.mark.parametrize("parts", ["scalar", "mean", "triple"])
def test_only_an_x_y_pair_is_told_to_pass_them_apart(parts):
    X = np.random.default_rng(0).normal(size=(12, 4))
    labels = np.arange(12) % 2
    data = {"scalar": (X, np.array(1.0)), "mean": (X, X.mean(0)), "triple": (X, labels, labels)}
    model = nb.Sequential([Dense(4, 2)], seed=0)
    with pytest.raises(ValueError, match="not one array") as told:
        model.fit(data[parts], labels, loss="cross_entropy", optimizer="sgd", verbose=0)
    assert "X, y = data" not in str(told.value)


@pytest.mark.parametrize(
    ("given", "said"),
    [
        (lambda X, labels: [X, labels, np.ones(12)], r"is a pair \(X_val, y_val\), got 3 items"),
        (
            lambda X, labels: [(X[0], 0), (X[1], 1)],
            r"^validation_data is a list of 2 \(x, y\) samples",
        ),
    ],
)
def test_validation_data_lists_are_told_what_they_hold(given, said):
    """A list of three was told its samples differ in shape; two (x, y) samples were
    read as (X_val, y_val): NumPy's "inhomogeneous"."""
    X = np.random.default_rng(0).normal(size=(12, 4))
    labels = np.arange(12) % 2
    model = nb.Sequential([Dense(4, 2)], seed=0)
    fit = functools.partial(model.fit, X, labels, loss="cross_entropy", optimizer="sgd", verbose=0)
    with pytest.raises(ValueError, match=said):
        fit(validation_data=given(X, labels))
    fit(validation_data=[X[:2].tolist(), labels[:2].tolist()])  # a pair as a list: taken
