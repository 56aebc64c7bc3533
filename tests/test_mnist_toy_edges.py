"""Edges of the MNIST loader (nnbackend.datasets.mnist) and the toy sets and helpers
(nnbackend.datasets.toy) that a mutation run of those modules found no test holding:
each test fails under a mutant the rest of the suite let pass (the comments name them).

The loaders and helpers work on host NumPy whatever the backend, so these tests take
no backend fixture."""

from __future__ import annotations

import struct
import zipfile

import numpy as np
import pytest

from nnbackend import datasets
from tests.test_bad_inputs import write_npz


@pytest.fixture(autouse=True)
def _no_data_env(monkeypatch):
    """A user's $NNBACKEND_DATA must not change what these tests find."""
    monkeypatch.delenv(datasets.DATA_ENV_VAR, raising=False)


# --- mnist.npz -------------------------------------------------------------------------


def claim_size(path, name, size):
    """Make the zip's central directory say member ``name`` holds ``size`` bytes
    uncompressed (zipfile trusts the central directory, not the local header)."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    data = bytearray(path.read_bytes())
    entry = -1
    for _ in range(names.index(name) + 1):
        entry = data.index(b"PK\x01\x02", entry + 1)
    data[entry + 24 : entry + 28] = struct.pack("<I", size)
    path.write_bytes(bytes(data))


def rewrite_npz(path, compression, **members):
    """The members of ``path`` (bytes by name, some replaced) written again."""
    with zipfile.ZipFile(path) as plain:
        old = {name: plain.read(name) for name in plain.namelist()}
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in {**old, **members}.items():
            archive.writestr(name, data)
        return {info.filename: info.compress_size for info in archive.infolist()}


def test_an_npz_member_may_claim_one_gib_and_no_more(tmp_path):
    """MAX_NPZ_BYTES is 2**30: a member that says it inflates to exactly 1 GiB (and
    is stored large enough for the ratio bound) passes the size check and is refused
    later for its header; one byte more is refused as too large."""
    # kills mnist 7 and 9 (2 GiB allowed), 10 (512 MiB) and 126 (1 GiB itself refused)
    path = write_npz(tmp_path / "mnist.npz")
    with zipfile.ZipFile(path) as plain:
        labels = plain.read("y_train.npy")
    stored = 1_000_000  # 1100 times this is more than 1 GiB: only the cap can refuse
    rewrite_npz(path, zipfile.ZIP_STORED, **{"y_train.npy": labels + bytes(stored - len(labels))})
    claim_size(path, "y_train.npy", 1 << 30)
    with pytest.raises(ValueError, match=r"y_train.npy declares \(2,\) int64 but stores"):
        datasets.load_mnist(path)
    claim_size(path, "y_train.npy", (1 << 30) + 1)
    with pytest.raises(ValueError, match=r"member y_train.npy claims 1073741825 bytes"):
        datasets.load_mnist(path)


def test_npz_labels_may_claim_1100_times_what_is_stored_and_no_more(tmp_path):
    """Deflate gives at most ~1032 bytes per stored byte: a labels member may claim
    1100 times its compressed size, one byte more is called damaged or crafted."""
    # kills mnist 12 (1101 allowed), 13 (1099) and 128 (1100 itself refused)
    path = write_npz(tmp_path / "mnist.npz")
    sizes = rewrite_npz(path, zipfile.ZIP_DEFLATED)
    stored = sizes["y_train.npy"]
    claim_size(path, "y_train.npy", 1100 * stored)
    with pytest.raises(ValueError, match=r"y_train.npy declares \(2,\) int64 but stores"):
        datasets.load_mnist(path)
    claim_size(path, "y_train.npy", 1100 * stored + 1)
    with pytest.raises(ValueError, match=rf"claims {1100 * stored + 1} bytes \({stored} stored"):
        datasets.load_mnist(path)


@pytest.mark.parametrize("error", [PermissionError, FileNotFoundError])
def test_an_npz_that_cannot_be_opened_says_so_not_that_it_is_damaged(tmp_path, monkeypatch, error):
    """A file the user may not read (or one gone since it was found) keeps its own
    error: it is not called "not a readable .npz file", which says it is broken."""
    # kills mnist 71 (every OSError turned into that ValueError)
    path = write_npz(tmp_path / "mnist.npz")

    def refused(*args, **kwargs):
        raise error(13, "Permission denied" if error is PermissionError else "gone", str(path))

    monkeypatch.setattr(datasets.mnist.zipfile, "ZipFile", refused)
    with pytest.raises(error, match=str(path)):
        datasets.load_mnist(path)


def test_npz_images_and_labels_of_one_split_must_agree_in_number(tmp_path):
    """Two test images with one label, or a training split of no images at all, are
    refused by name (they were loaded as they stood: X and y of different lengths)."""
    # kills mnist 92 (the count check of the .npz's splits dropped)
    two_images = np.zeros((2, 28, 28), np.uint8)
    path = write_npz(tmp_path / "mnist.npz", x_test=two_images, y_test=np.array([7]))
    said = r"mnist.npz: x_test holds 2 images but y_test holds 1 labels"
    with pytest.raises(ValueError, match=said):
        datasets.load_mnist(path)
    empty = write_npz(tmp_path / "mnist.npz", x_train=np.zeros((0, 28, 28), np.uint8), y_train=[])
    with pytest.raises(ValueError, match=r"mnist.npz: x_train: the dataset is empty \(0 images\)"):
        datasets.load_mnist(empty)


def npy_version_2(array, header_length):
    """``array`` as a version 2.0 .npy file whose header (dict, spaces, newline) is
    ``header_length`` bytes long; version 2.0 gives the length in 4 bytes, not 2."""
    fields = {"descr": array.dtype.str, "fortran_order": False, "shape": array.shape}
    text = repr(fields).encode("latin1")
    text += b" " * (header_length - len(text) - 1) + b"\n"
    return b"\x93NUMPY\x02\x00" + struct.pack("<I", header_length) + text + array.tobytes()


def test_a_version_2_npy_member_with_a_header_of_10000_bytes_is_read(tmp_path):
    """numpy writes version 2.0 when a header outgrows 65,535 bytes and reads headers
    of up to 10,000 bytes: such a member is read, pixel for pixel; 10,001 is refused."""
    # kills mnist 183 (a 3-byte length), 190 (every 4-byte length refused), 193 (10000
    # refused) and 204 (version 2.0's header read as None)
    images = (np.arange(2 * 28 * 28) % 256).astype(np.uint8).reshape(2, 28, 28)
    path = write_npz(tmp_path / "mnist.npz")
    rewrite_npz(path, zipfile.ZIP_STORED, **{"x_train.npy": npy_version_2(images, 10_000)})
    (X_train, y_train), _ = datasets.load_mnist(path, flatten=False)
    np.testing.assert_array_equal(X_train[:, 0] * 255, images)
    assert y_train.tolist() == [1, 2]
    rewrite_npz(path, zipfile.ZIP_STORED, **{"x_train.npy": npy_version_2(images, 10_001)})
    said = r"x_train.npy is not a plain .npy array \(a header of 10001 bytes"
    with pytest.raises(ValueError, match=said):
        datasets.load_mnist(path)


# --- toy sets and helpers --------------------------------------------------------------


def test_the_generators_defaults_are_scikit_learns_sets_the_tutorials_use():
    """The tutorials lean on the defaults (make_moons(2000, seed=0) for noise 0.2,
    make_circles(200, seed=0) for noise 0.1 and factor 0.5, make_blobs(300, centers=3)
    for 2 features of std 1): each default set is scikit-learn's with those values."""
    # kills toy 0-3, 6-8, 10, 13-16, 19 and 20 (a default changed)
    from sklearn import datasets as sk

    X, y = datasets.make_moons()
    want_X, want_y = sk.make_moons(n_samples=200, noise=0.2, random_state=0)
    np.testing.assert_array_equal(X, want_X)
    np.testing.assert_array_equal(y, want_y)
    X, y = datasets.make_circles()
    want_X, want_y = sk.make_circles(n_samples=200, noise=0.1, factor=0.5, random_state=0)
    np.testing.assert_array_equal(X, want_X)
    np.testing.assert_array_equal(y, want_y)
    X, y = datasets.make_blobs()
    want_X, want_y = sk.make_blobs(
        n_samples=200, centers=3, n_features=2, cluster_std=1.0, random_state=0
    )
    np.testing.assert_array_equal(X, want_X)
    np.testing.assert_array_equal(y, want_y)


def test_load_digits_defaults_hold_out_a_fifth_by_seed_0_as_flat_rows():
    """load_digits() is load_digits(test_fraction=0.2, seed=0, flatten=True): 1438
    training and 359 test rows of 64 pixels (round(1797 * 0.2) = 359)."""
    # kills toy 40 (another default seed)
    (X_train, y_train), (X_test, y_test) = datasets.load_digits()
    assert X_train.shape == (1438, 64) and X_test.shape == (359, 64)
    (want_X, want_y), (want_X_test, _) = datasets.load_digits(0.2, seed=0, flatten=True)
    np.testing.assert_array_equal(X_train, want_X)
    np.testing.assert_array_equal(y_train, want_y)
    np.testing.assert_array_equal(X_test, want_X_test)


def test_train_val_split_defaults_hold_out_a_fifth_by_seed_0():
    """train_val_split(X, y) splits off round(10 * 0.2) = 2 rows, the same ones as
    seed=0 asked for by name."""
    # kills toy 93 and 94 (another default fraction or seed)
    X, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    (X_train, y_train), (X_val, y_val) = datasets.train_val_split(X, y)
    assert (len(y_train), len(y_val)) == (8, 2)
    (_, want_train), (_, want_val) = datasets.train_val_split(X, y, 0.2, seed=0)
    np.testing.assert_array_equal(y_train, want_train)
    np.testing.assert_array_equal(y_val, want_val)
    np.testing.assert_array_equal(X_val[:, 0], 2 * y_val)  # rows still with their labels


def test_a_val_fraction_of_0_keeps_every_sample_for_training():
    """val_fraction=0 is "no split" (the error message offers it): every row is kept
    for training, shuffled, and the validation set is empty."""
    # kills toy 102, 117 and 118 (a fraction of 0 refused)
    X, y = np.arange(12.0).reshape(6, 2), np.arange(6)
    (X_train, y_train), (X_val, y_val) = datasets.train_val_split(X, y, val_fraction=0.0)
    assert X_val.shape == (0, 2) and y_val.shape == (0,)
    assert sorted(y_train.tolist()) == [0, 1, 2, 3, 4, 5]
    np.testing.assert_array_equal(X_train[:, 1], 2 * y_train + 1)


def test_train_val_split_takes_lists_and_gives_arrays():
    """X and y as nested lists are split like arrays: NumPy rows come back, each
    still with its label."""
    # kills toy 95 (the lists kept: a list has no .shape)
    X = [[0.0, 0.0], [1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0]]
    (X_train, y_train), (X_val, y_val) = datasets.train_val_split(X, [0, 1, 2, 3, 4], 0.4)
    assert isinstance(X_train, np.ndarray) and isinstance(y_val, np.ndarray)
    assert (X_train.shape, X_val.shape) == ((3, 2), (2, 2))
    np.testing.assert_array_equal(X_train[:, 1], 10 * y_train)
    np.testing.assert_array_equal(X_val[:, 0], y_val)
    assert sorted([*y_train.tolist(), *y_val.tolist()]) == [0, 1, 2, 3, 4]


def test_standardize_scales_integer_features_as_floats():
    """Integer columns, here a list of them, are taken as float64: [1, 2, 3, 4] has
    mean 2.5 and std sqrt(1.25), not a mean truncated to 2."""
    # kills toy 127 (the list kept: it has no .dtype) and 129 (integers kept)
    X = [[1, 10], [2, 10], [3, 10], [4, 10]]
    Z, mean, std = datasets.standardize(X)
    assert Z.dtype == mean.dtype == std.dtype == np.float64
    np.testing.assert_allclose(mean, [2.5, 10.0], rtol=1e-15)
    np.testing.assert_allclose(std, [np.sqrt(1.25), 1.0], rtol=1e-15)
    np.testing.assert_allclose(Z[:, 0], np.array([-1.5, -0.5, 0.5, 1.5]) / np.sqrt(1.25))
    np.testing.assert_array_equal(Z[:, 1], 0.0)


def test_one_hot_takes_a_list_of_labels():
    """Labels (N,) may come as a plain list: [2, 0, 1] gives the rows of 2, 0 and 1."""
    # kills toy 53 (the list kept as it was: it has no .ndim)
    np.testing.assert_array_equal(datasets.one_hot([2, 0, 1]), [[0, 0, 1], [1, 0, 0], [0, 1, 0]])


def test_one_hot_of_no_labels_is_no_rows():
    """No labels give (0, n_classes) rows, and (0, 0) when n_classes is left to them:
    an empty batch is not an error."""
    # kills toy 72 and 87 (min and max of no labels raised) and 83 ((0, 1) rows)
    no_labels = np.zeros(0, np.int64)
    assert datasets.one_hot(no_labels, 3).shape == (0, 3)
    assert datasets.one_hot(no_labels).shape == (0, 0)


def test_one_hot_refuses_infinite_labels_as_not_whole_numbers():
    """An infinite label is refused as not a class label, in one_hot's words (it was
    an OverflowError from int(inf) when n_classes was left out)."""
    # kills toy 63 (only fractions were looked for: inf equals its own rounding)
    with pytest.raises(ValueError, match="one_hot expects integer class labels; found non-integer"):
        datasets.one_hot(np.array([0.0, np.inf]))


def test_standardize_takes_one_sample_and_refuses_none():
    """One sample is its own mean with zero spread (std taken as 1): it scales to 0.
    No samples have no statistics and are refused by name."""
    # kills toy 137 and 138 (the emptiness check asked of the wrong axis or count)
    # and 139 (no samples let through: a mean of nothing is NaN)
    Z, mean, std = datasets.standardize(np.array([[3.0, -4.0]]))
    np.testing.assert_array_equal(Z, [[0.0, 0.0]])
    np.testing.assert_array_equal(mean, [3.0, -4.0])
    np.testing.assert_array_equal(std, [1.0, 1.0])
    with pytest.raises(ValueError, match=r"cannot standardize an empty dataset \(0 samples\)"):
        datasets.standardize(np.zeros((0, 2)))


@pytest.mark.parametrize("y", [None, 3])
def test_train_val_split_of_no_y_says_so(y):
    """y=None (scikit-learn's train_test_split takes X alone) was an IndexError."""
    with pytest.raises(ValueError, match=f"X and y of N rows each; y is {y!r}"):
        datasets.train_val_split(np.zeros((10, 2)), y)
    with pytest.raises(ValueError, match="standardize takes X of N rows"):
        datasets.standardize(3.0)


def test_make_blobs_of_per_class_counts_draws_one_blob_each():
    """make_blobs([3, 4]) was refused by scikit-learn for the default centers=3."""
    X, y = datasets.make_blobs([3, 4], seed=0)
    assert np.bincount(y).tolist() == [3, 4] and X.shape == (7, 2)
    assert np.bincount(datasets.make_blobs(30, seed=0)[1]).tolist() == [10, 10, 10]


def test_the_helpers_refuse_masked_entries_that_np_asarray_would_unmask():
    """standardize, train_val_split and one_hot dropped a masked array's mask: a file's
    -999 for missing values became data (a std of 315 where the rest had 10), in a plain
    array that fit then took; a masked label 9 became a tenth class."""
    rng = np.random.default_rng(0)
    raw = rng.normal(50, 10, size=(20, 2))
    raw[::5, 1] = -999
    X, y = np.ma.masked_equal(raw, -999), np.arange(20) % 2
    told = r"masked array with masked entries: fill them \(X\.filled\(value\)\)"
    with pytest.raises(ValueError, match=rf"^standardize: X is a {told}"):
        datasets.standardize(X)
    with pytest.raises(ValueError, match=rf"^train_val_split: X is a {told}"):
        datasets.train_val_split(X, y)
    with pytest.raises(ValueError, match=r"^one_hot: y is a masked array with masked entries"):
        datasets.one_hot(np.ma.masked_equal(np.array([0, 1, 9, 1]), 9))
    unmasked = np.ma.masked_array(raw)  # nothing masked: its values, as a plain array
    np.testing.assert_array_equal(datasets.standardize(unmasked)[0], datasets.standardize(raw)[0])


def test_standardize_refuses_nan_where_its_column_would_become_nan():
    """One NaN made its column's mean and std NaN and every value of it NaN: fit then
    named 600 NaN from index (0, 2) where the data held one, at (3, 2)."""
    X = np.random.default_rng(0).normal(size=(200, 3))
    X[3, 2] = np.nan
    told = r"^standardize: X holds 1 NaN or inf values \(the first at index \(3, 2\)\), which"
    with pytest.raises(ValueError, match=told):
        datasets.standardize(X)
    with pytest.raises(ValueError, match=r"^standardize: X holds 1 NaN or inf values .*\(1, 0\)"):
        datasets.standardize(np.array([[1.0, 2.0], [np.inf, 3.0], [2.0, 4.0]]))  # inf: NaN too
    _, mean, std = datasets.standardize(np.nan_to_num(X))  # as told: the data, imputed
    Z, _, _ = datasets.standardize(X, mean, std)  # a given scale leaves NaN where it was
    assert np.argwhere(np.isnan(Z)).tolist() == [[3, 2]]


def test_a_fortran_ordered_npz_member_is_read_in_its_order(tmp_path):
    """np.savez of a transposed or Fortran-ordered array writes fortran_order: True;
    read in C order, every image's pixels would come back scrambled."""
    rng = np.random.default_rng(0)
    images = np.asfortranarray(rng.integers(0, 256, (6, 28, 28), dtype=np.uint8))
    path = write_npz(tmp_path / "mnist.npz", x_train=images, y_train=np.arange(6) % 10)
    (X, y), _ = datasets.load_mnist(path, flatten=False)
    np.testing.assert_array_equal(X[:, 0], images / np.float32(255))


def test_standardize_takes_one_mean_and_std_for_every_feature():
    Z, mean, std = datasets.standardize(np.array([[1.0, 3.0], [3.0, 5.0]]), mean=2.0, std=0.5)
    np.testing.assert_array_equal(Z, [[-2.0, 2.0], [2.0, 6.0]])
    assert (float(mean), float(std)) == (2.0, 0.5)


def test_train_val_split_is_pinned_for_a_seed():
    """ "The same split on every machine": seed 0 of 10 rows at 0.3 validates rows 4, 6, 2."""
    X, y = np.arange(10.0)[:, None], np.arange(10)
    (X_train, y_train), (X_val, y_val) = datasets.train_val_split(X, y, val_fraction=0.3)
    assert y_val.tolist() == [4, 6, 2] and sorted(y_train.tolist()) == [0, 1, 3, 5, 7, 8, 9]
    np.testing.assert_array_equal(X_val[:, 0], y_val)
