"""Datasets: toy generators, helpers, the real MNIST and cat files, and broken files."""

from __future__ import annotations

import functools
import gzip
import shutil

import h5py
import numpy as np
import pytest
from sklearn.datasets import load_digits as sk_load_digits

from nnbackend import datasets
from nnbackend.datasets import standardize
from tests.conftest import DATA_DIR

MNIST_NAMES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]
# From ../shared/data/README.md.
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(autouse=True)
def _no_data_env(monkeypatch):
    """A user's $NNBACKEND_DATA must not change what these tests find."""
    monkeypatch.delenv(datasets.DATA_ENV_VAR, raising=False)


# --- writing small files ---------------------------------------------------------------


def write_idx(path, array, magic=None, gz=False):
    """Write ``array`` (uint8) as an IDX file; ``magic`` defaults to 0x800 + ndim."""
    array = np.asarray(array, dtype=np.uint8)
    magic = 0x800 + array.ndim if magic is None else magic
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    data = header + array.tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


def write_tiny_mnist(folder, n_train=3, n_test=2, gz=True):
    """Four IDX files of random 28x28 images; returns the uint8 arrays written."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = [
        rng.integers(0, 256, (n_train, 28, 28)),
        rng.integers(0, 10, n_train),
        rng.integers(0, 256, (n_test, 28, 28)),
        rng.integers(0, 10, n_test),
    ]
    for name, array in zip(MNIST_NAMES, arrays, strict=True):
        write_idx(folder / (name + ".gz" if gz else name), array, gz=gz)
    return [a.astype(np.uint8) for a in arrays]


def write_cat(path, split, n=4, labels_shape=None, classes=True):
    """A small cat-style HDF5 file with keys ``{split}_set_x`` / ``{split}_set_y``."""
    x = np.random.default_rng(1).integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
    y = np.arange(n, dtype=np.int64) % 2
    with h5py.File(path, "w") as f:
        f[f"{split}_set_x"] = x
        f[f"{split}_set_y"] = y.reshape(labels_shape or (n,))
        if classes:
            f["list_classes"] = np.array([b"non-cat", b"cat"])
    return x, y


def write_tiny_cat(folder, **kwargs):
    folder.mkdir(parents=True, exist_ok=True)
    write_cat(folder / "train_catvnoncat.h5", "train", **kwargs)
    write_cat(folder / "test_catvnoncat.h5", "test", n=2)


# --- toy sets --------------------------------------------------------------------------


def test_make_moons_is_reproducible_by_seed():
    X, y = datasets.make_moons(100, noise=0.2, seed=3)
    X2, y2 = datasets.make_moons(100, noise=0.2, seed=3)
    X3, _ = datasets.make_moons(100, noise=0.2, seed=4)
    assert X.shape == (100, 2) and X.dtype == np.float64
    assert y.shape == (100,) and y.dtype == np.int64
    assert set(np.unique(y)) == {0, 1}
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(X, X3)


@pytest.mark.parametrize(
    "make, n_classes",
    [(datasets.make_circles, 2), (functools.partial(datasets.make_blobs, centers=4), 4)],
)
def test_circles_and_blobs_shapes_and_labels(make, n_classes):
    X, y = make(n_samples=60, seed=0)
    assert X.shape == (60, 2) and X.dtype == np.float64
    assert y.dtype == np.int64
    np.testing.assert_array_equal(np.unique(y), np.arange(n_classes))


def test_load_people_is_the_tutorial_table():
    X, y, names = datasets.load_people()
    assert names == ["Alice", "Bob", "Charlie", "Diana"]
    np.testing.assert_array_equal(X, [[-2, -1], [25, 6], [17, 4], [-15, -6]])
    np.testing.assert_array_equal(y, [1, 0, 0, 1])
    assert X.dtype == np.float64 and y.dtype == np.float64


def _sorted_rows(X, y):
    rows = np.column_stack([X.reshape(len(X), -1), y])
    return rows[np.lexsort(rows.T[::-1])]


def test_load_digits_split_is_a_partition_of_all_1797():
    (X_train, y_train), (X_test, y_test) = datasets.load_digits(test_fraction=0.2, seed=0)
    assert len(X_train) + len(X_test) == 1797
    assert (len(X_train), len(X_test)) == (1438, 359)
    assert X_train.shape[1:] == (64,) and X_train.dtype == np.float32
    assert y_train.dtype == np.int64
    assert X_train.min() == 0.0 and X_train.max() == 1.0
    # Disjoint and complete: together they are every sample exactly once.
    digits = sk_load_digits()
    together = _sorted_rows(np.concatenate([X_train, X_test]), np.concatenate([y_train, y_test]))
    everything = _sorted_rows((digits.data / 16).astype(np.float32), digits.target)
    np.testing.assert_array_equal(together, everything)


def test_load_digits_seed_and_flatten():
    (a, ya), _ = datasets.load_digits(seed=1)
    (b, yb), _ = datasets.load_digits(seed=1, flatten=False)
    (c, _), _ = datasets.load_digits(seed=2)
    assert b.shape == (1438, 1, 8, 8)
    np.testing.assert_array_equal(a, b.reshape(len(b), -1))
    np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a, c)


# --- helpers ---------------------------------------------------------------------------


def test_one_hot_values_and_argmax_round_trip():
    y = np.array([2, 0, 1, 2])
    Y = datasets.one_hot(y)
    np.testing.assert_array_equal(Y, [[0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    assert Y.dtype == np.float32
    assert datasets.one_hot(y, 5, dtype="float64").shape == (4, 5)
    np.testing.assert_array_equal(datasets.one_hot(np.array([1.0, 0.0])), [[0, 1], [1, 0]])
    # bool labels, which fit takes as 0 and 1, were refused as "dtype bool"
    np.testing.assert_array_equal(datasets.one_hot(np.array([True, False])), [[0, 1], [1, 0]])
    assert datasets.one_hot(np.array([False]), 2).tolist() == [[1, 0]]


@pytest.mark.parametrize(
    "y, n_classes, message",
    [
        ([0, -1, 2], None, ">= 0"),
        ([0, 3], 3, "out of range"),
        ([0.5, 1.0], None, "non-integer"),
        (["a", "b"], None, "integer"),
        ([[0], [1]], None, "shape"),
    ],
)
def test_one_hot_rejects_bad_labels(y, n_classes, message):
    with pytest.raises(ValueError, match=message):
        datasets.one_hot(np.array(y), n_classes)


def test_train_val_split_sizes_pairs_and_seed():
    X = np.arange(20).reshape(10, 2)
    y = np.arange(10) * 10
    (X_tr, y_tr), (X_va, y_va) = datasets.train_val_split(X, y, val_fraction=0.3, seed=5)
    assert (len(X_tr), len(X_va)) == (7, 3)
    np.testing.assert_array_equal(X_tr[:, 0] * 5, y_tr)  # rows still paired with labels
    np.testing.assert_array_equal(X_va[:, 0] * 5, y_va)
    assert sorted(np.concatenate([y_tr, y_va])) == list(y)
    (_, y_tr2), _ = datasets.train_val_split(X, y, val_fraction=0.3, seed=5)
    np.testing.assert_array_equal(y_tr, y_tr2)


@pytest.mark.parametrize(
    "X, y, fraction, message",
    [
        (np.zeros((4, 2)), np.zeros(3), 0.2, "4 samples but y has 3"),
        (np.zeros((4, 2)), np.zeros(4), 1.0, r"\[0, 1\)"),
        (np.zeros((0, 2)), np.zeros(0), 0.2, "empty"),
        (np.zeros((40, 2)), np.zeros(40), 0.01, "0.01 of 40 samples leaves none to validate on"),
        (np.zeros((1, 2)), np.zeros(1), 0.6, "0.6 of 1 samples leaves none to train on"),
    ],
)
def test_train_val_split_rejects(X, y, fraction, message):
    with pytest.raises(ValueError, match=message):
        datasets.train_val_split(X, y, val_fraction=fraction)


def test_standardize_uses_training_statistics():
    rng = np.random.default_rng(0)
    X = rng.normal(3.0, 5.0, (50, 3))
    X[:, 2] = 7.0  # a constant feature
    Z, mean, std = datasets.standardize(X)
    np.testing.assert_allclose(Z[:, :2].mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(Z[:, :2].std(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(Z[:, 2], 0.0)  # zero std: shifted, not divided by 0
    assert std[2] == 1.0
    X_test = rng.normal(3.0, 5.0, (4, 3))
    Z_test, _, _ = datasets.standardize(X_test, mean, std)
    np.testing.assert_allclose(Z_test, (X_test - mean) / std)
    Z32, _, _ = datasets.standardize(X.astype(np.float32))
    assert Z32.dtype == np.float32
    with pytest.raises(ValueError, match="both mean and std"):
        datasets.standardize(X, mean=mean)


def test_standardize_float32_columns_of_many_rows_far_from_zero():
    """NumPy adds a column of a matrix one row after another: in float32, half a
    million years (1990-2020) came out with mean 1999.6 and std 10.45."""
    years = np.random.default_rng(0).integers(1990, 2021, (500_000, 2)).astype(np.float32)
    Z, mean, std = datasets.standardize(years)
    assert Z.dtype == mean.dtype == np.float32
    true = years.astype(np.float64)
    np.testing.assert_allclose(mean, true.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(std, true.std(axis=0), rtol=1e-5)
    np.testing.assert_allclose(Z.astype(np.float64).mean(axis=0), 0.0, atol=1e-4)


# --- real MNIST ------------------------------------------------------------------------
# The big arrays are compared with np.array_equal: assert_array_equal takes seconds on them.


@pytest.fixture(scope="module")
def mnist():
    """The real MNIST, loaded once for this module and freed after it (about 220 MB)."""
    if not DATA_DIR.is_dir():
        pytest.skip(f"real data not found at {DATA_DIR}")
    return datasets.load_mnist(DATA_DIR / "mnist")


def test_real_mnist_shapes_values_and_label_counts(mnist):
    (X_train, y_train), (X_test, y_test) = mnist
    assert X_train.shape == (60000, 784) and X_test.shape == (10000, 784)
    assert X_train.dtype == np.float32 and y_train.dtype == np.int64
    assert X_train.min() == 0.0 and X_train.max() == 1.0
    np.testing.assert_array_equal(np.bincount(y_train), MNIST_TRAIN_COUNTS)
    np.testing.assert_array_equal(np.bincount(y_test), MNIST_TEST_COUNTS)
    np.testing.assert_array_equal(y_train[:10], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4])
    np.testing.assert_array_equal(y_test[:10], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9])
    # Pixels are whole multiples of 1/255.
    assert np.array_equal(X_test * 255, np.round(X_test * 255))


def test_raw_mnist_copy_reads_the_same_unflattened_one_hot(mnist, data_dir, tmp_path):
    for name in MNIST_NAMES:
        with gzip.open(data_dir / "mnist" / f"{name}.gz") as src:
            (tmp_path / name).write_bytes(src.read())
    (X_train, y_train), (X_test, y_test) = datasets.load_mnist(
        tmp_path, flatten=False, one_hot=True
    )
    assert X_train.shape == (60000, 1, 28, 28) and y_train.shape == (60000, 10)
    assert y_train.dtype == np.float32
    assert np.array_equal(X_train.reshape(60000, -1), mnist[0][0])
    assert np.array_equal(X_test.reshape(10000, -1), mnist[1][0])
    np.testing.assert_array_equal(y_train.argmax(axis=1), mnist[0][1])
    np.testing.assert_array_equal(y_test.argmax(axis=1), mnist[1][1])
    np.testing.assert_array_equal(y_test.sum(axis=1), 1.0)


def test_mnist_npz_round_trip(mnist, tmp_path):
    (X_train, y_train), (X_test, y_test) = mnist

    def to_uint8(X):
        return np.round(X * 255).astype(np.uint8).reshape(len(X), 28, 28)

    np.savez(
        tmp_path / "mnist.npz",
        x_train=to_uint8(X_train),
        y_train=y_train.astype(np.uint8),
        x_test=to_uint8(X_test),
        y_test=y_test.astype(np.uint8),
    )
    loaded = datasets.load_mnist(tmp_path / "mnist.npz")
    for got, want in zip((*loaded[0], *loaded[1]), (X_train, y_train, X_test, y_test), strict=True):
        assert got.dtype == want.dtype
        assert np.array_equal(got, want)


# --- real cat vs non-cat ---------------------------------------------------------------


def test_real_catvnoncat(data_dir):
    folder = data_dir / "catvnoncat"
    (X_train, y_train), (X_test, y_test), classes = datasets.load_catvnoncat(
        folder, return_classes=True
    )
    assert X_train.shape == (209, 12288) and X_test.shape == (50, 12288)
    assert X_train.dtype == np.float32 and y_train.dtype == np.int64
    assert 0.0 <= X_train.min() and X_train.max() <= 1.0
    assert np.bincount(y_train).tolist() == [137, 72]
    assert np.bincount(y_test).tolist() == [17, 33]
    assert classes == ["non-cat", "cat"]
    # The tutorial's own flattening: stored (N, 64, 64, 3) order, divided by 255.
    with h5py.File(folder / "train_catvnoncat.h5", "r") as f:
        tutorial = f["train_set_x"][()].reshape(209, -1) / 255
    np.testing.assert_allclose(X_train, tutorial, rtol=1e-6)
    (images, _), _ = datasets.load_catvnoncat(folder, flatten=False)
    assert images.shape == (209, 3, 64, 64)  # channels first, for conv layers
    assert images.flags.c_contiguous
    np.testing.assert_array_equal(images.transpose(0, 2, 3, 1).reshape(209, -1), X_train)


def test_cat_found_through_the_environment_variable(data_dir, monkeypatch):
    monkeypatch.setenv(datasets.DATA_ENV_VAR, str(data_dir))  # looks in $DIR/catvnoncat
    (X_train, _), (X_test, _) = datasets.load_catvnoncat()
    assert (len(X_train), len(X_test)) == (209, 50)


def test_cat_labels_stored_as_column_and_classes_only_in_test(tmp_path):
    # The layout of another public copy: labels (N, 1), no list_classes in train.
    folder = tmp_path / "catvnoncat"
    write_tiny_cat(folder, labels_shape=(4, 1), classes=False)
    (X, y), _, classes = datasets.load_catvnoncat(folder, return_classes=True)
    assert X.shape == (4, 12288)
    np.testing.assert_array_equal(y, [0, 1, 0, 1])
    assert classes == ["non-cat", "cat"]


# --- finding the files -----------------------------------------------------------------


@pytest.mark.parametrize("where", ["mnist", "."])
def test_mnist_found_through_the_environment_variable(tmp_path, monkeypatch, where):
    written = write_tiny_mnist(tmp_path / where)
    monkeypatch.setenv(datasets.DATA_ENV_VAR, str(tmp_path))
    (X_train, y_train), (X_test, y_test) = datasets.load_mnist()
    np.testing.assert_array_equal(X_train * 255, written[0].reshape(3, -1))
    np.testing.assert_array_equal(y_train, written[1])
    np.testing.assert_array_equal(y_test, written[3])


def test_a_leading_tilde_is_the_home_folder(tmp_path, monkeypatch):
    """--data=~/data and NNBACKEND_DATA="~/data" reach the loaders unexpanded (no shell
    expands them): they were reported missing as "~/data: does not exist"."""
    written = write_tiny_mnist(tmp_path / "data" / "mnist")
    monkeypatch.setenv("HOME", str(tmp_path))
    (X_train, _), _ = datasets.load_mnist("~/data")
    np.testing.assert_array_equal(X_train * 255, written[0].reshape(3, -1))
    monkeypatch.setenv(datasets.DATA_ENV_VAR, "~/data/mnist")
    (_, y_train), _ = datasets.load_mnist()
    np.testing.assert_array_equal(y_train, written[1])
    images = written[0]
    np.savez(tmp_path / "mnist.npz", x_train=images, y_train=[3, 4, 5], x_test=images[:1],
             y_test=[6])  # fmt: skip
    (_, y_train), _ = datasets.load_mnist("~/mnist.npz")
    assert y_train.tolist() == [3, 4, 5]
    with pytest.raises(FileNotFoundError, match="~nobody-here-at-all/data: does not exist"):
        datasets.load_mnist("~nobody-here-at-all/data")
    write_tiny_cat(tmp_path)  # a file named under ~ is a file, not a folder looked in
    with pytest.raises(ValueError, match="train_catvnoncat.h5 is a file"):
        datasets.load_catvnoncat("~/train_catvnoncat.h5")


def test_mnist_npz_found_in_a_folder(tmp_path):
    images = np.arange(2 * 28 * 28).reshape(2, 28, 28).astype(np.uint8)
    np.savez(tmp_path / "mnist.npz", x_train=images, y_train=[3, 4], x_test=images, y_test=[5, 6])
    (X_train, y_train), (_, y_test) = datasets.load_mnist(tmp_path, flatten=False)
    assert X_train.shape == (2, 1, 28, 28)
    assert np.array_equal(X_train[:, 0] * 255, images)
    assert y_train.tolist() == [3, 4] and y_test.tolist() == [5, 6]


@pytest.mark.parametrize("load", [datasets.load_mnist, datasets.load_catvnoncat])
def test_no_path_and_no_environment_variable(load):
    with pytest.raises(FileNotFoundError) as err:
        load()
    message = str(err.value)
    assert "NNBACKEND_DATA" in message and "is not set" in message
    assert "path=" in message
    expected = ["train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "mnist.npz"]
    if load is datasets.load_catvnoncat:
        expected = ["train_catvnoncat.h5", "test_catvnoncat.h5", "deeplearning.ai"]
    for name in expected:
        assert name in message


def test_missing_folder_and_missing_files_are_named(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        datasets.load_mnist(tmp_path / "nowhere")
    write_tiny_mnist(tmp_path / "mnist")
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    monkeypatch.setenv(datasets.DATA_ENV_VAR, str(tmp_path))
    with pytest.raises(FileNotFoundError) as err:
        datasets.load_mnist()
    message = str(err.value)
    assert f"{tmp_path / 'mnist'}: missing t10k-labels-idx1-ubyte[.gz]" in message
    assert f"{tmp_path}: missing train-images-idx3-ubyte[.gz]" in message  # not in the folder
    mnist_line = next(line for line in message.splitlines() if f"{tmp_path / 'mnist'}:" in line)
    assert "train-images-idx3-ubyte[.gz]" not in mnist_line  # that one is in mnist/
    with pytest.raises(FileNotFoundError, match="test_catvnoncat.h5"):
        datasets.load_catvnoncat(tmp_path)


def test_a_data_file_passed_as_path_is_refused(tmp_path):
    write_tiny_mnist(tmp_path)
    with pytest.raises(ValueError, match="pass the folder"):
        datasets.load_mnist(tmp_path / "train-images-idx3-ubyte.gz")


# --- broken MNIST files ----------------------------------------------------------------


def test_idx_wrong_magic_number(tmp_path):
    write_tiny_mnist(tmp_path, gz=False)
    shutil.copy(tmp_path / "train-labels-idx1-ubyte", tmp_path / "train-images-idx3-ubyte")
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte: IDX magic number is 0x801"):
        datasets.load_mnist(tmp_path)


def test_idx_truncated_raw_file(tmp_path):
    write_tiny_mnist(tmp_path, gz=False)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte: header promises .* truncated"):
        datasets.load_mnist(tmp_path)


def test_idx_truncated_gzip_file(tmp_path):
    write_tiny_mnist(tmp_path, gz=True)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.gz: broken gzip"):
        datasets.load_mnist(tmp_path)


def test_idx_images_and_labels_disagree(tmp_path):
    write_tiny_mnist(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(5), gz=True)
    with pytest.raises(ValueError) as err:
        datasets.load_mnist(tmp_path)
    message = str(err.value)
    assert "t10k-images-idx3-ubyte.gz holds 2 images" in message
    assert "t10k-labels-idx1-ubyte.gz holds 5 labels" in message


def test_idx_labels_that_are_not_digits(tmp_path):
    write_tiny_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", [1, 12, 3], gz=True)
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte.gz: labels must be digits"):
        datasets.load_mnist(tmp_path)


def test_idx_empty_dataset(tmp_path):
    write_tiny_mnist(tmp_path, n_train=0)
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.gz: the dataset is empty"):
        datasets.load_mnist(tmp_path)


def test_npz_missing_key(tmp_path):
    images = np.zeros((2, 28, 28), np.uint8)
    np.savez(tmp_path / "mnist.npz", x_train=images, y_train=[0, 1], x_test=images)
    with pytest.raises(ValueError, match=r"mnist.npz: missing key\(s\) y_test"):
        datasets.load_mnist(tmp_path / "mnist.npz")


def test_npz_that_is_not_an_npz(tmp_path):
    (tmp_path / "mnist.npz").write_text("not a zip archive\n")
    with pytest.raises(ValueError, match=r"mnist.npz: not a readable .npz"):
        datasets.load_mnist(tmp_path / "mnist.npz")


# --- broken cat files ------------------------------------------------------------------


def test_cat_file_that_is_not_hdf5(tmp_path):
    write_tiny_cat(tmp_path)
    (tmp_path / "test_catvnoncat.h5").write_text("this is a text file\n")
    with pytest.raises(ValueError, match=r"test_catvnoncat.h5: not a readable HDF5 file"):
        datasets.load_catvnoncat(tmp_path)


def test_cat_truncated_hdf5(tmp_path):
    write_tiny_cat(tmp_path)
    path = tmp_path / "train_catvnoncat.h5"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"train_catvnoncat.h5: not a readable HDF5.*truncated"):
        datasets.load_catvnoncat(tmp_path)


def test_cat_file_without_the_expected_datasets(tmp_path):
    write_tiny_cat(tmp_path)
    write_cat(tmp_path / "test_catvnoncat.h5", "train")  # train keys in the test file
    with pytest.raises(ValueError) as err:
        datasets.load_catvnoncat(tmp_path)
    message = str(err.value)
    assert "test_catvnoncat.h5: missing dataset(s) test_set_x, test_set_y" in message
    assert "has list_classes, train_set_x, train_set_y" in message


def test_cat_empty_dataset(tmp_path):
    write_tiny_cat(tmp_path)
    write_cat(tmp_path / "train_catvnoncat.h5", "train", n=0)
    with pytest.raises(ValueError, match=r"train_catvnoncat.h5: the dataset is empty"):
        datasets.load_catvnoncat(tmp_path)


def test_cat_labels_of_the_wrong_length(tmp_path):
    write_tiny_cat(tmp_path)
    with h5py.File(tmp_path / "test_catvnoncat.h5", "a") as f:
        del f["test_set_y"]
        f["test_set_y"] = np.zeros(3, np.int64)
    with pytest.raises(ValueError, match=r"test_set_y has shape \(3,\), expected \(2,\)"):
        datasets.load_catvnoncat(tmp_path)


def test_standardize_leaves_a_constant_feature_of_inexact_values_unscaled():
    """Ten 0.1s have a float64 std of about 1e-17, not 0: the column became all 1.0 and
    a test value 0.1 away was scaled to 7e15 (scikit-learn's scaler gives 0.1)."""
    X = np.column_stack([np.arange(10.0), np.full(10, 0.1)])
    Z, mean, std = datasets.standardize(X)
    assert std[1] == 1.0
    np.testing.assert_allclose(Z[:, 1], 0.0, atol=1e-15)
    scaled, _, _ = datasets.standardize(np.array([[4.5, 0.2]]), mean, std)
    np.testing.assert_allclose(scaled, [[0.0, 0.1]], atol=1e-15)


def test_standardize_leaves_a_column_constant_up_to_rounding_unscaled():
    """0.3 and 0.1 * 3 differ in their last place: a std of 4e-17, which scaled a test
    value 0.1 away to 2.5e15; a real spread, however small, is still scaled."""
    X = np.column_stack([np.arange(10.0), [0.3, 0.1 * 3] * 5])
    _, mean, std = datasets.standardize(X)
    assert std[1] == 1.0
    scaled, _, _ = datasets.standardize(np.array([[4.5, 0.4]]), mean, std)
    np.testing.assert_allclose(scaled, [[0.0, 0.1]], atol=1e-12)
    spread = np.column_stack([np.arange(10.0), 1.7e9 + np.arange(10) * 1e-3])
    assert 0 < datasets.standardize(spread)[2][1] < 1


def test_standardize_finds_the_constant_columns_scikit_learn_finds():
    """A spread of a few float32 units in the last place at 1e8 (8 apart: a std of 11)
    was left unscaled as constant, and so were timestamps 128 s apart; the bound on
    rounding is StandardScaler's, so the two scale the same columns."""
    from sklearn.preprocessing import StandardScaler

    steps = np.arange(10) % 5  # five values, the last four units apart
    columns = {
        "at 1e8, 8 apart": 1e8 + steps * 8,
        "timestamps 128 s apart": 1.7e9 + steps * 128,
        "one unit in the last place apart": 0.3 + steps % 2 * float(np.spacing(np.float32(0.3))),
        "ten 0.1s": np.full(10, 0.1),
    }
    for name, column in columns.items():
        X = np.column_stack([np.arange(10), column]).astype(np.float32)
        _, _, std = datasets.standardize(X)
        reference = StandardScaler().fit(X).scale_
        np.testing.assert_allclose(std, reference, rtol=1e-6, err_msg=name)
    Z, _, _ = datasets.standardize(columns["at 1e8, 8 apart"][:, None].astype(np.float32))
    assert np.std(Z.astype(np.float64)) == pytest.approx(1.0, rel=1e-5)


def test_standardize_judges_each_column_by_its_own_magnitude():
    """Nanometres beside metres (1e9 nm) and a feature varying by 1e-9 around 1.0 are
    data, each scaled to unit variance: rounding is a column's own, not the largest's."""
    X = np.array([[1e9, 0.0, 1.0], [2e9, 1e-9, 1.0 + 1e-9], [3e9, 2e-9, 1.0 + 2e-9]])
    scaled, _, std = datasets.standardize(X)
    assert np.all(std > 0)
    np.testing.assert_allclose(scaled.std(axis=0), 1.0, rtol=1e-6)


# standardize's rule for a constant feature is scikit-learn's StandardScaler bound (var
# <= n*eps*var + (n*mean*eps)**2, float64 eps): a column that varies only by a few units
# in its last place over n rows is constant (std taken as 1), while a column whose
# spread is small but well above that bound is scaled by its own std.


def test_a_column_of_a_few_ulps_of_spread_is_left_unscaled():
    base = 0.1
    column = base + np.arange(-4, 5) * np.spacing(base)  # 9 rows, +-4 ulps
    assert np.std(column) > base * np.finfo(np.float64).eps  # above one eps, below n eps
    scaled, _, std = standardize(column[:, None])
    assert std[0] == 1.0
    assert np.abs(scaled).max() < 1e-15


def test_a_small_but_real_spread_is_scaled_by_its_own_std():
    for base, step in ((1.0, 1e-14), (1000.0, 1e-4)):
        column = base + step * np.arange(10)
        scaled, _, std = standardize(column[:, None])
        np.testing.assert_allclose(std[0], np.std(column), rtol=1e-6)
        np.testing.assert_allclose(np.std(scaled), 1.0, rtol=1e-3)  # a unit spread


def test_a_blank_data_variable_is_unset(monkeypatch):
    """NNBACKEND_DATA=" " was searched as the folder " " (a blank NNBACKEND is unset)."""
    monkeypatch.setenv(datasets.DATA_ENV_VAR, " ")
    with pytest.raises(FileNotFoundError, match="is not set"):
        datasets.load_mnist()
