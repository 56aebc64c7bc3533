"""MNIST from the four IDX files (.gz or raw) or one Keras-layout ``mnist.npz``."""

from __future__ import annotations

import io
import math
import tokenize
import zipfile
import zlib
from pathlib import Path

import numpy as np

from nnbackend.checks import boolean
from nnbackend.datasets.files import (
    DataNotFoundError,
    expanded,
    looked_in,
    not_a_file,
    reject_file,
    search_dirs,
)
from nnbackend.datasets.idx import IDX_IMAGES, IDX_LABELS, IdxFile
from nnbackend.datasets.pixels import MAX_IMAGE_RATIO, check_image_count, scaled_pixels
from nnbackend.datasets.toy import one_hot
from nnbackend.h5safe import printable

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
MNIST_NPZ = "mnist.npz"
MNIST_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
MNIST_CLASSES = 10
#: the most bytes one array of an mnist.npz may hold (MNIST's images: 47 MB)
MAX_NPZ_BYTES = 1 << 30
#: deflate gives at most ~1032 bytes per stored byte; images get MAX_IMAGE_RATIO
MAX_ZIP_RATIO = 1100
MAX_NPY_HEADER = 10_000  # numpy's own limit on a header it parses


def _not_found(dirs: list[Path]) -> DataNotFoundError:
    gz = ", ".join(f"{name}.gz" for name in MNIST_FILES.values())
    return DataNotFoundError(
        "MNIST",
        "mnist",
        looked_in(dirs, _missing_idx),
        wanted=(
            f"It needs the four IDX files (each .gz or uncompressed):\n  {gz}\n"
            f"or one {MNIST_NPZ} with keys {', '.join(MNIST_NPZ_KEYS)} (Keras layout)."
        ),
        how="load_mnist(path='that/folder') (or path='.../mnist.npz')",
        source=(
            "Get the IDX files from http://yann.lecun.com/exdb/mnist/ or its mirror\n"
            "https://ossci-datasets.s3.amazonaws.com/mnist/ (same file names), or mnist.npz\n"
            "from https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz."
        ),
    )


def _find_idx(folder: Path, name: str) -> Path | None:
    """The uncompressed file if present, else the .gz, else None."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _missing_idx(folder: Path) -> list[str]:
    unpacked = [
        f"{MNIST_NPZ} (a folder: an unzipper unpacked the archive, which load_mnist reads "
        "whole; download it again and keep it as it came)"
    ]
    given = folder.name == MNIST_NPZ  # path='.../mnist.npz', the folder an unzipper made
    return (unpacked if given or (folder / MNIST_NPZ).is_dir() else []) + [
        f"{n}[.gz]{not_a_file(folder, n, f'{n}.gz')}"
        for n in MNIST_FILES.values()
        if _find_idx(folder, n) is None
    ]


def _locate_mnist(path):
    """The .npz file, or a dict of the four IDX paths, or FileNotFoundError."""
    if path is not None and Path(path).suffix == ".npz" and expanded(path).is_file():
        return expanded(path)
    reject_file(path, "MNIST (other than an .npz)")
    dirs = search_dirs(path, "mnist")
    for folder in dirs:
        found = {key: _find_idx(folder, name) for key, name in MNIST_FILES.items()}
        if all(found.values()):
            return found
        if (folder / MNIST_NPZ).is_file():
            return folder / MNIST_NPZ
    raise _not_found(dirs)


def _check_split(n_images: int, n_labels: int, images_src: Path, labels_src: Path) -> None:
    """Images and labels of one split agree and are not empty."""
    if n_images != n_labels:
        raise ValueError(
            f"{images_src} holds {n_images} images but {labels_src} holds "
            f"{n_labels} labels; the two do not belong together"
        )
    if n_images == 0:
        raise ValueError(f"{images_src}: the dataset is empty (0 images)")


def _check_sides(shape: tuple, src, train_shape: tuple, train_src) -> None:
    """The test images are of the training images' size: a model takes one."""
    if shape[1:] != train_shape[1:]:
        raise ValueError(
            f"{src} holds images of {shape[1:]} pixels but {train_src} of "
            f"{train_shape[1:]}; the two do not belong together"
        )


def _read_mnist_idx(files: dict[str, Path]) -> list[np.ndarray]:
    """Four IDX paths -> [train_images, train_labels, test_images, test_labels] (uint8).
    Both headers of a split are checked against each other before either body is read."""
    arrays = []
    for split in ("train", "test"):
        images_src, labels_src = files[f"{split}_images"], files[f"{split}_labels"]
        with IdxFile(images_src, IDX_IMAGES) as images, IdxFile(labels_src, IDX_LABELS) as labels:
            check_image_count(images.shape, images_src, "its header")
            _check_split(images.shape[0], labels.shape[0], images_src, labels_src)
            if arrays:
                _check_sides(images.shape, images_src, arrays[0].shape, files["train_images"])
            arrays += [images.read(), _checked_labels(labels.read(), labels_src)]
    return arrays


def _read_mnist_npz(path: Path) -> list[np.ndarray]:
    """mnist.npz -> [x_train, y_train, x_test, y_test], each member's header and size
    checked before its data is read (``np.load`` would allocate what a header declares)."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = {name.removesuffix(".npy"): name for name in archive.namelist()}
            missing = [k for k in MNIST_NPZ_KEYS if k not in members]
            if missing:
                raise ValueError(
                    f"{path}: missing key(s) {', '.join(missing)} (has "
                    f"{printable(', '.join(sorted(members)[:10])) or 'none'}); an MNIST .npz needs "
                    f"{', '.join(MNIST_NPZ_KEYS)} (Keras layout)"
                )
            arrays = []
            for split in ("train", "test"):
                arrays += _npz_split(path, archive, members[f"x_{split}"], members[f"y_{split}"])
    # zipfile answers a broken archive with any of these, depending on where it breaks
    except (
        OSError,
        EOFError,
        zipfile.BadZipFile,
        zlib.error,
        NotImplementedError,
        RuntimeError,  # a member flagged as encrypted
        tokenize.TokenError,  # an .npy header whose brackets do not close
        UnicodeDecodeError,  # a member's name flagged UTF-8 that is not
    ) as err:
        if isinstance(err, FileNotFoundError | PermissionError):
            raise
        raise ValueError(f"{path}: not a readable .npz file ({printable(str(err))})") from err
    for i, split in ((0, "train"), (2, "test")):
        x, y = arrays[i], arrays[i + 1]
        if x.ndim != 3 or y.ndim != 1:
            raise ValueError(
                f"{path}: x_{split} {x.shape} and y_{split} {y.shape} should be "
                "(N, rows, cols) images and (N,) labels"
            )
        _check_split(x.shape[0], y.shape[0], f"{path}: x_{split}", f"y_{split}")
        arrays[i + 1] = _checked_labels(y, path, f"y_{split}")
    _check_sides(arrays[2].shape, f"{path}: x_test", arrays[0].shape, "x_train's")
    return arrays


def _npz_split(path: Path, archive: zipfile.ZipFile, x_name: str, y_name: str) -> list:
    """[images, labels] of one split; the labels' header must declare them 1-D, and no
    more of them than there are images, before their data is read. 1-D is checked first:
    one-hot labels (N, 10) are a shape to name, not a count to compare."""

    def images_within_bounds(shape):
        check_image_count(shape, path, x_name)

    x = _npz_member(path, archive, x_name, images_within_bounds, MAX_IMAGE_RATIO)
    n = x.shape[0] if x.ndim else 1

    def one_per_image(shape):
        if len(shape) != 1:
            raise ValueError(
                f"{path}: {y_name} has shape {shape}; labels should be (N,) digits 0..9, "
                "not one-hot rows"
            )
        if shape[0] > n:
            raise ValueError(f"{path}: {y_name} declares {shape} labels for {n} images")

    return [x, _npz_member(path, archive, y_name, one_per_image, MAX_ZIP_RATIO)]


def _npz_member(path: Path, archive: zipfile.ZipFile, name: str, check_shape, max_ratio: int):
    """One .npy member: its header read and checked (dtype numeric, ``check_shape`` of its
    shape, size within bounds and equal to what the archive stores) before its data.
    Its declared size may be at most ``max_ratio`` times what the archive stores."""
    info = archive.getinfo(name)
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):  # numpy's two
        raise ValueError(f"{path}: member {name} is compressed otherwise than numpy writes")
    # what the archive's directory says is stored is trusted no further than the file
    stored = min(info.compress_size, Path(path).stat().st_size)
    if info.file_size > MAX_NPZ_BYTES or info.file_size > max_ratio * max(stored, 1):
        raise ValueError(
            f"{path}: member {name} claims {info.file_size} bytes ({stored} "
            f"stored, at most {max_ratio} times that allowed), more than an MNIST .npz "
            "holds; it is damaged or crafted"
        )
    with archive.open(info) as member:
        try:
            shape, fortran, dtype = _npy_header(member)
        # numpy parses the header with ast.literal_eval, which a crafted one (thousands
        # of nested signs or brackets) sends past its parser's limits
        except (ValueError, SyntaxError, MemoryError, RecursionError) as err:
            raise ValueError(
                f"{path}: member {name} is not a plain .npy array "
                f"({printable(str(err) or type(err).__name__)})"
            ) from None
        if dtype.hasobject or dtype.kind not in "biuf":
            raise ValueError(f"{path}: {name} holds {dtype} values; MNIST holds numbers")
        if not all(type(n) is int and n >= 0 for n in shape):  # numpy takes any in a header
            raise ValueError(f"{path}: {name} declares the shape {shape!r}; it is damaged")
        check_shape(shape)
        count = math.prod(shape)
        if count * dtype.itemsize != info.file_size - member.tell():
            raise ValueError(
                f"{path}: {name} declares {shape} {dtype} but stores "
                f"{info.file_size - member.tell()} bytes; it is damaged"
            )
        data = member.read(count * dtype.itemsize)
    if len(data) != count * dtype.itemsize:  # a stream that ends early, its CRC still matching
        raise ValueError(
            f"{path}: {name} stores {len(data)} of the {count * dtype.itemsize} bytes "
            "its header declares; the file is truncated or damaged"
        )
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")


def _npy_header(member) -> tuple:
    """(shape, fortran_order, dtype) of the .npy file ``member``, versions 1.0 and 2.0.
    The header's length is checked before the header is read: numpy reads and decodes
    all it declares (a gigabyte) before its own limit of 10,000 bytes."""
    version = np.lib.format.read_magic(member)
    if version not in ((1, 0), (2, 0)):
        raise ValueError(f".npy format version {version[0]}.{version[1]} is not read here")
    wanted = 2 if version == (1, 0) else 4
    size = member.read(wanted)
    if len(size) < wanted:
        raise ValueError(f"a truncated header ({len(size)} of the {wanted} bytes of its length)")
    length = int.from_bytes(size, "little")
    if length > MAX_NPY_HEADER:
        raise ValueError(f"a header of {length} bytes (at most {MAX_NPY_HEADER})")
    header = io.BytesIO(size + member.read(length))
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(header)
    return np.lib.format.read_array_header_2_0(header)


def _checked_labels(labels: np.ndarray, src: Path, what: str = "labels") -> np.ndarray:
    """Labels as int64 digits 0..9: integers, or floats that are whole numbers."""
    if labels.dtype.kind == "f" and not np.isfinite(labels).all():
        raise ValueError(f"{src}: {what} hold NaN or infinite values; labels must be digits 0..9")
    if labels.dtype.kind == "b":  # True is not a digit one means for sure
        raise ValueError(f"{src}: {what} hold booleans; labels must be digits 0..9")
    fractions = labels[labels != np.round(labels)] if labels.dtype.kind == "f" else []
    if len(fractions):
        raise ValueError(
            f"{src}: {what} hold fractions such as {fractions[0]}; labels must be digits 0..9"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= MNIST_CLASSES):
        raise ValueError(f"{src}: {what} must be digits 0..9, found {labels.min()}..{labels.max()}")
    return labels.astype(np.int64)


def _mnist_images(images: np.ndarray, flatten: bool, src: Path, what: str) -> np.ndarray:
    """(N, rows, cols) pixels -> float32 in [0, 1]: (N, rows*cols) when flattened, else
    channels-first images of one channel, (N, 1, rows, cols). Integers are 0..255 and
    divided by 255; floats must already lie in [0, 1]."""
    X = scaled_pixels(images, src, what)
    return X.reshape(X.shape[0], -1) if flatten else X[:, None, :, :]


def _mnist_labels(labels: np.ndarray, as_one_hot: bool) -> np.ndarray:
    """(N,) int64 -> itself, or float32 (N, 10) one-hot."""
    return one_hot(labels, MNIST_CLASSES) if as_one_hot else labels


def load_mnist(path=None, *, flatten: bool = True, one_hot: bool = False):
    """MNIST from the four IDX files (.gz or raw) or one Keras-layout ``mnist.npz``.

    ``path``: a folder holding the files directly or in ``mnist/``, or the .npz
    itself; by default ``$NNBACKEND_DATA`` (the same rule). When a folder holds both,
    the IDX files win, and an uncompressed IDX file wins over its .gz. Raises
    ``DataNotFoundError`` (a FileNotFoundError) saying where it looked.
    Returns ``((X_train, y_train), (X_test, y_test))``: X float32 in [0, 1], (N, 784),
    or (N, 1, 28, 28) with ``flatten=False``; y int64 (N,), or float32 (N, 10) with
    ``one_hot=True``. N is 60000 for train and 10000 for test.
    """
    flatten, one_hot = boolean(flatten, "flatten"), boolean(one_hot, "one_hot")
    found = _locate_mnist(path)
    arrays = _read_mnist_npz(found) if isinstance(found, Path) else _read_mnist_idx(found)
    x_train, y_train, x_test, y_test = arrays
    if isinstance(found, Path):  # errors name the .npz's member
        train, test = (found, "pixels of x_train"), (found, "pixels of x_test")
    else:
        train, test = (found["train_images"], "images"), (found["test_images"], "images")
    return (
        (_mnist_images(x_train, flatten, *train), _mnist_labels(y_train, one_hot)),
        (_mnist_images(x_test, flatten, *test), _mnist_labels(y_test, one_hot)),
    )
