"""Edges of the data-file readers (nnbackend.datasets: idx.py, pixels.py, catvnoncat.py)
that a mutation run of those modules found no test holding: each test fails under a
mutant the rest of the suite let pass (the comments name them).

The loaders read files into NumPy arrays whatever the backend, so these tests take no
backend fixture."""

from __future__ import annotations

import gzip
import io
import re
import zipfile

import h5py
import numpy as np
import pytest

from nnbackend import datasets
from nnbackend.datasets import idx
from nnbackend.datasets.idx import IDX_LABELS, IdxFile
from nnbackend.datasets.pixels import check_image_count
from tests.test_bad_inputs import write_npz
from tests.test_datasets import write_cat, write_idx, write_tiny_cat, write_tiny_mnist

LABELS_MAGIC = (0x801).to_bytes(4, "big")
IMAGES_MAGIC = (0x803).to_bytes(4, "big")


@pytest.fixture(autouse=True)
def _no_data_env(monkeypatch):
    """A user's $NNBACKEND_DATA must not change what these tests find."""
    monkeypatch.delenv(datasets.DATA_ENV_VAR, raising=False)


# --- IDX files -------------------------------------------------------------------------


def test_an_idx_header_may_declare_up_to_max_idx_bytes_and_no_more(tmp_path):
    """2**30 bytes declared pass the cap (and the header-only file is then too short);
    one byte more is refused by the cap itself."""
    # kills idx 6 and 8 (cap doubled), 9 (cap halved), 69 (> made >=)
    path = tmp_path / "labels"
    path.write_bytes(LABELS_MAGIC + (1 << 30).to_bytes(4, "big"))
    said = r"promises \(1073741824,\) = 1073741824 bytes of data but the file holds 0"
    with pytest.raises(ValueError, match=said):
        IdxFile(path, IDX_LABELS)
    path.write_bytes(LABELS_MAGIC + ((1 << 30) + 1).to_bytes(4, "big"))
    with pytest.raises(ValueError, match="1073741825 bytes of data, more than the 1073741824"):
        IdxFile(path, IDX_LABELS)


def padded_gz(magic: bytes, dims: tuple, body: bytes = b"") -> bytes:
    """An IDX file of ``dims`` gzipped, padded with zeros (which gzip skips) to 100 bytes."""
    packed = gzip.compress(magic + b"".join(n.to_bytes(4, "big") for n in dims) + body)
    assert len(packed) < 100
    return packed + bytes(100 - len(packed))


def test_a_gzipped_idx_file_may_declare_64_times_its_size_and_no_more(tmp_path):
    """A 100-byte .gz of images may declare 6400 bytes of pixels, which read back; 6401
    are refused before any is inflated."""
    # kills idx 79 (> made >=: exactly 64 times was refused)
    path = tmp_path / "images.gz"
    pixels = bytes(np.arange(6400, dtype=np.uint8) % 7)
    path.write_bytes(padded_gz(IMAGES_MAGIC, (1, 80, 80), pixels))
    with IdxFile(path, idx.IDX_IMAGES) as f:
        np.testing.assert_array_equal(f.read().ravel(), np.frombuffer(pixels, np.uint8))
    path.write_bytes(padded_gz(IMAGES_MAGIC, (1, 6401, 1)))
    with pytest.raises(ValueError, match="6401 bytes of data, over 64 times the 100 bytes"):
        IdxFile(path, idx.IDX_IMAGES)


def test_labels_sorted_by_class_load_gzipped(tmp_path):
    """10,000 labels in runs of one digit gzip to 69 bytes, past the images' 64 times:
    a per-class subset of MNIST was refused as "images do not compress that well".
    Labels may declare deflate's bound, 1100 times."""
    labels = np.repeat(np.arange(10, dtype=np.uint8), 1000)
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(LABELS_MAGIC + (10_000).to_bytes(4, "big") + labels.tobytes()))
    assert path.stat().st_size * 64 < 10_000
    with IdxFile(path, IDX_LABELS) as f:
        np.testing.assert_array_equal(f.read(), labels)
    path.write_bytes(padded_gz(LABELS_MAGIC, (110_001,)))
    told = "110001 bytes of data, over 1100 times the 100 bytes of the gzip file; no data does"
    with pytest.raises(ValueError, match=told):
        IdxFile(path, IDX_LABELS)


def test_a_whole_gzip_stream_shorter_than_its_header_says_is_refused(tmp_path, monkeypatch):
    """A valid .gz (its CRC matching) that holds 3 of the 5 label bytes its header
    declares ends the body early: refused, not read again for ever."""
    # kills idx 94 (the refusal dropped: the read loop never ended; here it stops at
    # the 100th read, so that such a mutant fails instead of hanging)

    class GzipFileThatCountsReads(gzip.GzipFile):
        reads = 0

        def readinto(self, buffer):
            GzipFileThatCountsReads.reads += 1
            assert self.reads < 100, "the body was read again and again after it ended"
            return super().readinto(buffer)

    monkeypatch.setattr(gzip, "GzipFile", GzipFileThatCountsReads)
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(LABELS_MAGIC + (5).to_bytes(4, "big") + bytes([1, 2, 3])))
    with (
        IdxFile(path, IDX_LABELS) as f,
        pytest.raises(
            ValueError, match=r"header promises \(5,\) = 5 bytes of data but the file holds 3"
        ),
    ):
        f.read()


def test_a_truncated_idx_header_is_called_truncated(tmp_path):
    """A header cut inside its dimensions is named as such: a raw one was called a file
    of -3 bytes, and a gzipped labels header of 2 of its 4 bytes read as 0 labels."""
    # kills idx 105 (< made >) and 106 (the refusal dropped)
    write_tiny_mnist(tmp_path, gz=False)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(IMAGES_MAGIC + bytes(5))
    said = r"t10k-images-idx3-ubyte: truncated IDX header \(5 of 12 bytes\)"
    with pytest.raises(ValueError, match=said):
        datasets.load_mnist(tmp_path)
    write_tiny_mnist(tmp_path / "gz")
    (tmp_path / "gz" / "train-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(LABELS_MAGIC + bytes(2))
    )
    with pytest.raises(ValueError, match=r"truncated IDX header \(2 of 4 bytes\)"):
        datasets.load_mnist(tmp_path / "gz")


def test_a_wrong_magic_number_says_which_kind_of_file_was_expected(tmp_path):
    """Labels where images belong are told 'expected 0x803 (images)', and the reverse."""
    # kills idx 40 (the two kinds swapped in the message)
    write_tiny_mnist(tmp_path, gz=False)
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros(3))
    with pytest.raises(ValueError, match=r"is 0x801, expected 0x803 \(images\)"):
        datasets.load_mnist(tmp_path)
    write_tiny_mnist(tmp_path, gz=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros((3, 2, 2)))
    with pytest.raises(ValueError, match=r"is 0x803, expected 0x801 \(labels\)"):
        datasets.load_mnist(tmp_path)


def test_idx_files_are_closed_after_reading_and_after_a_refusal(tmp_path, monkeypatch):
    """Every file the reader opens is closed again: after a load, and when a header is
    refused (a long-running process loading many files would run out of them)."""
    # kills idx 21 (not closed when the header is refused) and 24 (__exit__ closes nothing)
    opened = []

    def recording_open(*args, **kwargs):
        opened.append(open(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(idx, "open", recording_open, raising=False)
    write_tiny_mnist(tmp_path)
    datasets.load_mnist(tmp_path)
    assert len(opened) == 4 and all(f.closed for f in opened)
    opened.clear()
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(IMAGES_MAGIC))
    with pytest.raises(ValueError, match="IDX magic number is 0x803"):
        datasets.load_mnist(tmp_path)
    assert len(opened) == 4 and all(f.closed for f in opened)


# --- pixels ----------------------------------------------------------------------------


def test_image_bounds_take_10_million_images_and_a_gib_of_float32_and_no_more():
    """MAX_IMAGES (10,000,000) and MAX_PIXEL_BYTES (2**30) are both inclusive."""
    # kills pixels 9, 10, 21, 24 (the image count) and 1, 3, 4 (the pixel bytes)
    check_image_count((10_000_000, 1, 1), "file", "images")
    check_image_count((1, 1 << 14, 1 << 14), "file", "images")  # 2**28 pixels: 1 GiB
    with pytest.raises(ValueError, match="10000001 images, more than the 10000000"):
        check_image_count((10_000_001, 1, 1), "file", "images")
    said = "268451840 pixels, 1073807360 bytes as float32, more than the 1073741824 these loaders"
    with pytest.raises(ValueError, match=said):
        check_image_count((1, 1 << 14, (1 << 14) + 1), "file", "images")


def test_a_single_value_as_mnist_npz_images_is_a_value_error_naming_its_shape(tmp_path):
    """A 0-d x_train is refused as not (N, rows, cols), not an IndexError of shape[0]."""
    # kills pixels 20 (shape[0] read on an empty shape)
    path = write_npz(tmp_path / "mnist.npz", x_train=np.array(7, np.uint8), y_train=[1])
    with pytest.raises(ValueError, match=r"x_train \(\) and y_train \(1,\) should be \(N, rows"):
        datasets.load_mnist(path)


def test_integer_pixels_are_taken_in_0_255_and_refused_outside(tmp_path):
    """int16 pixels 1..255 (none 0) are divided by 255; 256 or -1 are refused."""
    # kills pixels 38, 39, 40, 42, 46, 48 (the range check on integer pixels)
    pixels = np.zeros((2, 28, 28), np.int16)
    pixels[0, 0, :3] = [255, 51, 1]
    pixels[pixels == 0] = 51
    (X, _), _ = datasets.load_mnist(write_npz(tmp_path / "mnist.npz", x_train=pixels))
    assert X.dtype == np.float32 and X.shape == (2, 784)
    assert X[0, 0] == 1.0 and X[0, 1] == np.float32(0.2) and X[1, 0] == np.float32(0.2)
    assert X[0, 2] == np.float32(1 / 255)
    for bad, says in ((256, "from 1 to 256"), (-1, "from -1 to 255")):
        pixels[1, 5, 5] = bad
        with pytest.raises(
            ValueError, match=f"mnist.npz: pixels of x_train hold integers {says}; pixels"
        ):
            datasets.load_mnist(write_npz(tmp_path / "mnist.npz", x_train=pixels))


def test_float_pixels_must_be_finite_and_already_in_0_1(tmp_path):
    """Floats in [0.5, 1] (none 0) are kept; NaN, -0.25 or 1.5 are refused."""
    # kills pixels 55 (NaN passed: NaN compares false both ways), 62 (negatives passed),
    # 64 (min > 0 refused) and 68 (the upper bound made 2)
    pixels = np.full((2, 28, 28), 0.5, np.float32)
    pixels[0, 0, 0] = 1.0
    (X, _), _ = datasets.load_mnist(write_npz(tmp_path / "mnist.npz", x_train=pixels))
    assert X[0, 0] == 1.0 and X[0, 1] == 0.5 and X.max() == 1.0 and X.min() == 0.5
    for bad, says in (
        (np.nan, "hold NaN or infinite values"),
        (-0.25, "are floats from -0.25 to 1; float pixels"),
        (1.5, "are floats from 0.5 to 1.5; float pixels"),
    ):
        changed = pixels.copy()
        changed[1, 3, 3] = bad
        with pytest.raises(ValueError, match=f"mnist.npz: pixels of x_train {says}"):
            datasets.load_mnist(write_npz(tmp_path / "mnist.npz", x_train=changed))


def test_boolean_pixels_are_refused_not_divided_by_255(tmp_path):
    """A binarised MNIST kept as bool would train on images of 0 and 1/255: refused,
    saying how to store it, as the cat files' booleans are."""
    pixels = np.zeros((2, 28, 28), bool)
    pixels[0, 0, 0] = True
    with pytest.raises(ValueError, match=r"pixels of x_train hold booleans; .*astype\('uint8'\)"):
        datasets.load_mnist(write_npz(tmp_path / "mnist.npz", x_train=pixels))
    with pytest.raises(ValueError, match="hold booleans"):
        datasets.pixels.scaled_pixels(pixels, "file", "images")


def test_a_bad_test_split_is_named_in_an_npz(tmp_path):
    """The training images are fine; the message names x_test, not "images"."""
    pixels = np.full((1, 28, 28), 300, np.int16)
    says = "mnist.npz: pixels of x_test hold integers from 300 to 300"
    with pytest.raises(ValueError, match=says):
        datasets.load_mnist(write_npz(tmp_path / "mnist.npz", x_test=pixels))


# --- cat files -------------------------------------------------------------------------


def rewrite_cat_test_file(folder, x, y):
    """Replace test_catvnoncat.h5 of a tiny cat folder by images ``x`` and labels ``y``."""
    with h5py.File(folder / "test_catvnoncat.h5", "w") as f:
        f["test_set_x"] = x
        f["test_set_y"] = y


def test_the_cat_folder_must_hold_both_files_and_the_missing_one_is_named(tmp_path):
    """A folder holding only the train file is passed over for catvnoncat/ beside it,
    which holds both; where neither has both, the message names only what is missing."""
    # kills catvnoncat 10 (any file made the folder) and 3 (present files called missing)
    write_tiny_cat(tmp_path / "catvnoncat")
    write_cat(tmp_path / "train_catvnoncat.h5", "train", n=6)
    (X, _), (X_test, _) = datasets.load_catvnoncat(tmp_path)
    assert (len(X), len(X_test)) == (4, 2)  # both from catvnoncat/
    (tmp_path / "catvnoncat" / "train_catvnoncat.h5").unlink()
    with pytest.raises(FileNotFoundError) as err:
        datasets.load_catvnoncat(tmp_path)
    lines = str(err.value).splitlines()
    assert f"  {tmp_path}: missing test_catvnoncat.h5" in lines
    assert f"  {tmp_path / 'catvnoncat'}: missing train_catvnoncat.h5" in lines


def test_a_cat_file_passed_as_path_is_refused(tmp_path):
    """Given a data file, the cat loader asks for its folder, as load_mnist does."""
    # kills catvnoncat 6 (the file was searched as a folder: 'files not found')
    write_tiny_cat(tmp_path)
    with pytest.raises(ValueError, match="is a file; for cat-vs-non-cat pass the folder"):
        datasets.load_catvnoncat(tmp_path / "train_catvnoncat.h5")


def test_cat_images_must_be_4d(tmp_path):
    """(N, H, W) images are refused, not flattened as if they had one channel."""
    # kills catvnoncat 33 (the refusal dropped)
    write_tiny_cat(tmp_path)
    rewrite_cat_test_file(tmp_path, np.zeros((2, 64, 64), np.uint8), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"test_set_x has shape \(2, 64, 64\), expected \(N, H"):
        datasets.load_catvnoncat(tmp_path)


@pytest.mark.parametrize("shape", [(1, 4096, 1, 1), (1, 1, 4096, 1), (1, 1, 1, 4096)])
def test_cat_image_sides_of_1_to_4096_are_taken(tmp_path, shape):
    """Every side, and the channels, may be 1 (a grey image) or MAX_SIDE (4096)."""
    # kills catvnoncat 16 and 17 (MAX_SIDE moved), 40 and 44 (a side of 1 refused),
    # 42 (a side of 4096 refused)
    write_tiny_cat(tmp_path)
    x = np.full(shape, 255, np.uint8)
    x.reshape(-1)[0] = 51
    rewrite_cat_test_file(tmp_path, x, np.array([1]))
    with h5py.File(tmp_path / "train_catvnoncat.h5", "w") as f:  # of the same size
        f["train_set_x"], f["train_set_y"] = x, np.array([1])
    _, (X, y) = datasets.load_catvnoncat(tmp_path)
    assert X.shape == (1, 4096) and y.tolist() == [1]
    assert X[0, 0] == np.float32(0.2) and (X[0, 1:] == 1.0).all()


@pytest.mark.parametrize("shape", [(1, 4097, 1, 1), (1, 1, 1, 4097), (1, 64, 0, 3)])
def test_cat_image_sides_beyond_4096_or_of_0_are_refused(tmp_path, shape):
    """A height, width or channel count outside 1..4096 is refused, each side alone."""
    # kills catvnoncat 16 (MAX_SIDE 4097), 39 (any side in range passed them all),
    # 45 (a side of 0 let through), 46 (the height not checked), 48 (the refusal dropped)
    write_tiny_cat(tmp_path)
    rewrite_cat_test_file(tmp_path, np.zeros(shape, np.uint8), np.array([1]))
    said = rf"test_set_x has shape {re.escape(str(shape))}; images are \(H, W, C\) of sides 1..4096"
    with pytest.raises(ValueError, match=said):
        datasets.load_catvnoncat(tmp_path)


def test_cat_labels_stored_as_one_row_are_read(tmp_path):
    """Labels (1, N), the tutorial's own layout after its reshape, read as (N,)."""
    # kills catvnoncat 57 and 58 (the (1, N) layout refused)
    write_tiny_cat(tmp_path, labels_shape=(1, 4))
    (X, y), _ = datasets.load_catvnoncat(tmp_path)
    assert X.shape == (4, 12288) and y.dtype == np.int64
    assert y.tolist() == [0, 1, 0, 1]


def test_a_cat_label_out_of_range_is_the_one_named(tmp_path):
    """The first label not 0 or 1 is named, not the first label that is not 0."""
    # kills catvnoncat 69 (the first label other than 0 was named: 1)
    write_tiny_cat(tmp_path)
    rewrite_cat_test_file(tmp_path, np.zeros((4, 64, 64, 3), np.uint8), np.array([0, 1, 7, 0]))
    with pytest.raises(ValueError, match=r"test_set_y holds 7; labels are 0 \(non-cat\) or 1"):
        datasets.load_catvnoncat(tmp_path)


def test_class_names_asked_of_cat_files_without_them_are_an_error(tmp_path):
    """return_classes=True where neither file holds list_classes is refused by name,
    not answered with None for the names; without it the images still load."""
    # kills catvnoncat 111 (the refusal dropped: None came back as the class names)
    write_cat(tmp_path / "train_catvnoncat.h5", "train", classes=False)
    write_cat(tmp_path / "test_catvnoncat.h5", "test", n=2, classes=False)
    with pytest.raises(
        ValueError, match=f"no list_classes dataset in the cat files under {tmp_path}"
    ):
        datasets.load_catvnoncat(tmp_path, return_classes=True)
    (X, _), (X_test, _) = datasets.load_catvnoncat(tmp_path)
    assert (len(X), len(X_test)) == (4, 2)


# --- the two splits, files that are not files, what a refusal says ------------------


def test_mnist_test_images_of_another_size_than_the_training_ones_are_refused(tmp_path):
    """20 x 20 test images beside 28 x 28 training ones loaded, and the model trained on
    one refused the other at evaluate, naming no file; refused from the header."""
    write_tiny_mnist(tmp_path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((2, 20, 20)), gz=True)
    said = r"t10k-images-idx3-ubyte.gz holds images of \(20, 20\) pixels but .*train-images"
    with pytest.raises(ValueError, match=said + r".* of \(28, 28\); the two do not belong"):
        datasets.load_mnist(tmp_path)
    path = write_npz(tmp_path / "mnist.npz", x_test=np.zeros((1, 20, 20), np.uint8))
    with pytest.raises(ValueError, match=r"mnist.npz: x_test holds images of \(20, 20\) pixels"):
        datasets.load_mnist(path)


def test_cat_test_images_of_another_size_than_the_training_ones_are_refused(tmp_path):
    write_tiny_cat(tmp_path)
    rewrite_cat_test_file(tmp_path, np.zeros((2, 32, 32, 3), np.uint8), np.array([0, 1]))
    said = r"test_catvnoncat.h5: test_set_x holds images of \(32, 32, 3\) but the training"
    with pytest.raises(datasets.CatFileError, match=said + r" file's are \(64, 64, 3\)"):
        datasets.load_catvnoncat(tmp_path)


@pytest.mark.parametrize("name", ["train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"])
def test_a_folder_named_like_a_data_file_is_called_a_folder_not_missing(tmp_path, name):
    """Some downloads unpack each file into a folder of its name: the user saw the name
    and was told it was missing."""
    write_tiny_mnist(tmp_path)
    (tmp_path / "train-images-idx3-ubyte.gz").unlink()
    (tmp_path / name).mkdir()
    said = rf"missing train-images-idx3-ubyte\[.gz\] \({re.escape(name)} is a folder, not a file"
    with pytest.raises(datasets.DataNotFoundError, match=said):
        datasets.load_mnist(tmp_path)
    write_tiny_cat(tmp_path / "cat")
    (tmp_path / "cat" / "test_catvnoncat.h5").unlink()
    (tmp_path / "cat" / "test_catvnoncat.h5").mkdir()
    with pytest.raises(datasets.DataNotFoundError, match=r"\(test_catvnoncat.h5 is a folder"):
        datasets.load_catvnoncat(tmp_path / "cat")


def test_an_unpacked_mnist_npz_is_called_a_folder(tmp_path):
    """An unzipper makes mnist.npz a folder of x_train.npy and the like: "move the file
    out of it" would not do; the archive is read whole."""
    (tmp_path / "mnist.npz").mkdir()
    with pytest.raises(datasets.DataNotFoundError, match=r"missing mnist.npz \(a folder: an"):
        datasets.load_mnist(tmp_path)


def test_boolean_labels_in_an_mnist_npz_are_refused(tmp_path):
    """A mask saved as y_train became the digits 0 and 1; boolean pixels were refused."""
    path = write_npz(tmp_path / "mnist.npz", y_train=np.array([True, False]))
    with pytest.raises(ValueError, match="mnist.npz: y_train hold booleans; labels must be digits"):
        datasets.load_mnist(path)


def test_a_refusal_names_the_value_it_found(tmp_path):
    """Labels of 2.5 were told "fractions such as 3.7", a pixel of 1.0000001 "from 0.5
    to 1" (past 1), and the split's count named the .npz twice, not its members."""
    path = write_npz(tmp_path / "mnist.npz", y_train=np.array([1.0, 2.5]))
    with pytest.raises(ValueError, match=r"y_train hold fractions such as 2.5; labels must"):
        datasets.load_mnist(path)
    x = np.full((2, 28, 28), 0.5, np.float32)
    x[0, 0, 0] = np.nextafter(np.float32(1), np.float32(2))
    with pytest.raises(ValueError, match=r"are floats from 0.5 to 1.0000001; float pixels"):
        datasets.load_mnist(write_npz(tmp_path / "mnist.npz", x_train=x))
    path = write_npz(tmp_path / "mnist.npz", y_train=np.array([1]))
    with pytest.raises(ValueError, match=r"mnist.npz: x_train holds 2 images but y_train holds 1"):
        datasets.load_mnist(path)


def test_a_cat_file_of_bad_pixels_raises_the_cat_file_error(tmp_path):
    """Pixels of 300 were a plain ValueError, which `except CatFileError` let through."""
    write_tiny_cat(tmp_path)
    rewrite_cat_test_file(tmp_path, np.full((2, 64, 64, 3), 300, np.int16), np.array([0, 1]))
    with pytest.raises(datasets.CatFileError, match=r"images hold integers from 300 to 300"):
        datasets.load_catvnoncat(tmp_path)


def test_an_idx_file_memory_cannot_hold_is_named(tmp_path, monkeypatch):
    """Bounded files may still outsize the free memory: NumPy's MemoryError named no file."""
    write_tiny_mnist(tmp_path)

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(idx.np, "empty", no_memory)
    with pytest.raises(MemoryError, match=r"train-images-idx3-ubyte.gz: its header declares"):
        datasets.load_mnist(tmp_path)


# --- where the loaders look first, and files cut short (M52) ------------------------


def test_a_blank_path_is_refused_not_told_that_the_variable_is_unset(tmp_path, monkeypatch):
    """path="" (os.environ.get("X", "")) was told "$NNBACKEND_DATA is not set", set or not."""
    monkeypatch.setenv(datasets.DATA_ENV_VAR, str(tmp_path))
    for load in (datasets.load_mnist, datasets.load_catvnoncat):
        for blank in ("", "  "):
            with pytest.raises(ValueError, match=rf"path='{blank}' names no folder: give a"):
                load(path=blank)


def test_a_npy_member_cut_inside_its_length_is_called_truncated(tmp_path):
    """It was "a header of 5 bytes (at most 10000)": refused for a size within the bound."""
    path = write_npz(tmp_path / "mnist.npz")
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members["y_train.npy"] = b"\x93NUMPY\x01\x00\x05"  # 1 of the 2 length bytes
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(ValueError, match=r"a truncated header \(1 of the 2 bytes of its length\)"):
        datasets.load_mnist(path)


def test_an_uncompressed_idx_file_wins_over_its_gz(tmp_path):
    write_tiny_mnist(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([7, 7]))
    (_, _), (_, y_test) = datasets.load_mnist(tmp_path)
    assert y_test.tolist() == [7, 7]


def test_idx_files_win_over_an_mnist_npz_and_the_folder_over_its_subfolder(tmp_path):
    write_tiny_mnist(tmp_path, n_train=3)
    write_npz(tmp_path / "mnist.npz")  # 2 training images
    write_tiny_mnist(tmp_path / "mnist", n_train=4)
    (X_train, _), _ = datasets.load_mnist(tmp_path)
    assert X_train.shape[0] == 3


def test_an_idx_header_one_byte_short_is_called_truncated(tmp_path):
    write_tiny_mnist(tmp_path, gz=False)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes((0x801).to_bytes(4, "big") + bytes(3))
    with pytest.raises(ValueError, match=r"truncated IDX header \(3 of 4 bytes\)"):
        datasets.load_mnist(tmp_path)


def test_complex_labels_in_an_npz_are_refused(tmp_path):
    """astype(int64) would drop the imaginary part."""
    path = write_npz(tmp_path / "mnist.npz", y_train=np.array([1 + 5j, 2 + 0j]))
    with pytest.raises(ValueError, match="complex"):
        datasets.load_mnist(path)


def test_the_toy_sets_take_their_shape_arguments(monkeypatch):
    from sklearn import datasets as sk

    X, _ = datasets.make_blobs(50, centers=2, cluster_std=0.05, seed=1)
    np.testing.assert_array_equal(
        X, sk.make_blobs(50, centers=2, cluster_std=0.05, random_state=1)[0]
    )
    X, y = datasets.make_circles(50, noise=0.0, factor=0.2, seed=1)
    np.testing.assert_allclose(np.hypot(*X[y == 1].T), 0.2)
    monkeypatch.setattr(sk, "make_blobs", lambda **kw: pytest.fail("drew before the bound"))
    with pytest.raises(ValueError, match="100000000 x 3"):  # the centres' 3 features
        datasets.make_blobs(10**8, centers=np.zeros((2, 3)))


def test_a_dangling_link_named_like_a_data_file_is_called_no_regular_file(tmp_path):
    write_tiny_mnist(tmp_path)
    (tmp_path / "train-images-idx3-ubyte.gz").unlink()
    (tmp_path / "train-images-idx3-ubyte.gz").symlink_to(tmp_path / "gone")
    said = r"\(train-images-idx3-ubyte.gz is there but is not a regular file\)"
    with pytest.raises(datasets.DataNotFoundError, match=said):
        datasets.load_mnist(tmp_path)


def test_a_cat_file_of_bad_pixels_raises_the_cat_file_error_as_images_too(tmp_path):
    write_tiny_cat(tmp_path)
    rewrite_cat_test_file(tmp_path, np.full((2, 64, 64, 3), 300, np.int16), np.array([0, 1]))
    with pytest.raises(datasets.CatFileError, match=r"images hold integers from 300 to 300"):
        datasets.load_catvnoncat(tmp_path, flatten=False)


def test_an_unpacked_mnist_npz_given_as_the_path_is_called_a_folder(tmp_path):
    """The form the error's own advice names, path='.../mnist.npz': it was searched as
    a folder of IDX files, and its mnist/ subfolder."""
    (tmp_path / "mnist.npz").mkdir()
    with pytest.raises(datasets.DataNotFoundError, match=r"mnist.npz \(a folder: an unzipper"):
        datasets.load_mnist(tmp_path / "mnist.npz")


def test_a_huge_float_pixel_is_shown_short():
    """1e300 was written out in 301 digits."""
    from nnbackend.datasets.pixels import scaled_pixels

    with pytest.raises(ValueError, match=r"are floats from 0 to 1e\+300; float pixels must"):
        scaled_pixels(np.array([[0.0, 1e300]]), "x.npy", "images")


def test_version_2_npy_members_are_read(tmp_path):
    path = write_npz(tmp_path / "mnist.npz")
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    for name, data in list(members.items()):
        out = io.BytesIO()
        np.lib.format.write_array(out, np.load(io.BytesIO(data)), version=(2, 0))
        members[name] = out.getvalue()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    (X_train, y_train), _ = datasets.load_mnist(path)
    assert X_train.shape == (2, 784) and y_train.tolist() == [1, 2]
