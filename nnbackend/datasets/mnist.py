"""MNIST from the four IDX files (.gz or raw) or one Keras-layout ``mnist.npz``."""

from __future__ import annotations

import gzip
import zipfile
import zlib
from pathlib import Path

import numpy as np

from nnbackend.datasets.files import DATA_ENV_VAR, looked_in, reject_file, search_dirs
from nnbackend.datasets.toy import one_hot

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
MNIST_NPZ = "mnist.npz"
MNIST_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
IDX_IMAGES, IDX_LABELS = 0x803, 0x801  # unsigned bytes, 3 and 1 dimensions
MNIST_CLASSES = 10


def _mnist_help(dirs: list[Path]) -> str:
    gz = ", ".join(f"{name}.gz" for name in MNIST_FILES.values())
    return (
        "MNIST files not found. Looked in:\n"
        + looked_in(dirs, _missing_idx)
        + "\nPut either the four IDX files (each .gz or uncompressed):\n"
        f"  {gz}\n"
        f"or one {MNIST_NPZ} with keys {', '.join(MNIST_NPZ_KEYS)} (Keras layout)\n"
        "in a folder, then call load_mnist(path='that/folder') (or path='.../mnist.npz'),\n"
        f"or set {DATA_ENV_VAR} to a folder holding them in mnist/ or directly.\n"
        "Get the IDX files from http://yann.lecun.com/exdb/mnist/ or its mirror\n"
        "https://ossci-datasets.s3.amazonaws.com/mnist/ (same file names), or mnist.npz\n"
        "from https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz."
    )


def _find_idx(folder: Path, name: str) -> Path | None:
    """The uncompressed file if present, else the .gz, else None."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _missing_idx(folder: Path) -> list[str]:
    return [f"{n}[.gz]" for n in MNIST_FILES.values() if _find_idx(folder, n) is None]


def _locate_mnist(path):
    """The .npz file, or a dict of the four IDX paths, or FileNotFoundError."""
    if path is not None and Path(path).suffix == ".npz" and Path(path).is_file():
        return Path(path)
    reject_file(path, "MNIST (other than an .npz)")
    dirs = search_dirs(path, "mnist")
    for folder in dirs:
        found = {key: _find_idx(folder, name) for key, name in MNIST_FILES.items()}
        if all(found.values()):
            return found
        if (folder / MNIST_NPZ).is_file():
            return folder / MNIST_NPZ
    raise FileNotFoundError(_mnist_help(dirs))


def _read_maybe_gzip(path: Path) -> bytes:
    """The file's bytes, gunzipped when they start with the gzip signature."""
    data = path.read_bytes()
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as err:
        raise ValueError(
            f"{path}: broken gzip data ({err}); the download is truncated or corrupt, "
            "delete it and download it again"
        ) from err


def _read_idx(path: Path, expected_magic: int) -> np.ndarray:
    """One IDX file (.gz or raw) -> uint8 array of the shape its header gives.

    ``expected_magic`` is 0x803 for images (N, rows, cols), 0x801 for labels (N,).
    """
    data = _read_maybe_gzip(path)
    if len(data) < 4:
        raise ValueError(f"{path}: only {len(data)} bytes, too short for an IDX header")
    magic = int.from_bytes(data[:4], "big")
    if magic != expected_magic:
        kind = "images" if expected_magic == IDX_IMAGES else "labels"
        raise ValueError(
            f"{path}: IDX magic number is {magic:#x}, expected {expected_magic:#x} ({kind}); "
            "is it the right file, or a damaged download?"
        )
    header = 4 + 4 * (magic & 0xFF)  # the low byte is the number of dimensions
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(data)} of {header} bytes)")
    shape = tuple(int.from_bytes(data[i : i + 4], "big") for i in range(4, header, 4))
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise ValueError(
            f"{path}: header promises {shape} = {expected} bytes of data but the file "
            f"holds {len(data) - header}; the file is truncated or damaged, download it again"
        )
    return np.frombuffer(data, dtype=np.uint8, count=expected, offset=header).reshape(shape)


def _check_split(images, labels, images_src: Path, labels_src: Path) -> None:
    """Images and labels of one split agree, are not empty, and labels are digits."""
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{images_src} holds {images.shape[0]} images but {labels_src} holds "
            f"{labels.shape[0]} labels; the two do not belong together"
        )
    if images.shape[0] == 0:
        raise ValueError(f"{images_src}: the dataset is empty (0 images)")
    if labels.min() < 0 or labels.max() >= MNIST_CLASSES:
        raise ValueError(
            f"{labels_src}: labels must be digits 0..9, found {labels.min()}..{labels.max()}"
        )


def _read_mnist_idx(files: dict[str, Path]) -> list[np.ndarray]:
    """Four IDX paths -> [train_images, train_labels, test_images, test_labels] (uint8)."""
    arrays = []
    for split in ("train", "test"):
        images_src, labels_src = files[f"{split}_images"], files[f"{split}_labels"]
        images = _read_idx(images_src, IDX_IMAGES)
        labels = _read_idx(labels_src, IDX_LABELS)
        _check_split(images, labels, images_src, labels_src)
        arrays += [images, labels]
    return arrays


def _read_mnist_npz(path: Path) -> list[np.ndarray]:
    """mnist.npz -> [x_train, y_train, x_test, y_test]."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = list(npz.files)
            arrays = [npz[k] for k in MNIST_NPZ_KEYS if k in keys]
    # np.load answers a non-.npz file with any of these, depending on its first bytes.
    except (OSError, EOFError, ValueError, TypeError, zipfile.BadZipFile, zlib.error) as err:
        raise ValueError(f"{path}: not a readable .npz file ({err})") from err
    missing = [k for k in MNIST_NPZ_KEYS if k not in keys]
    if missing:
        raise ValueError(
            f"{path}: missing key(s) {', '.join(missing)} (has {', '.join(keys) or 'none'}); "
            f"an MNIST .npz needs {', '.join(MNIST_NPZ_KEYS)} (Keras layout)"
        )
    for i, split in ((0, "train"), (2, "test")):
        x, y = arrays[i], arrays[i + 1]
        if x.ndim != 3 or y.ndim != 1:
            raise ValueError(
                f"{path}: x_{split} {x.shape} and y_{split} {y.shape} should be "
                "(N, rows, cols) images and (N,) labels"
            )
        _check_split(x, y, path, path)
    return arrays


def _mnist_images(images: np.ndarray, flatten: bool) -> np.ndarray:
    """uint8 (N, rows, cols) -> float32 in [0, 1]: (N, rows*cols) when flattened, else
    channels-first images of one channel, (N, 1, rows, cols)."""
    if images.dtype.kind in "iu":
        X = images.astype(np.float32) / np.float32(255)
    else:
        X = images.astype(np.float32)  # float pixels are taken as already scaled
    return X.reshape(X.shape[0], -1) if flatten else X[:, None, :, :]


def _mnist_labels(labels: np.ndarray, as_one_hot: bool) -> np.ndarray:
    """(N,) -> int64 (N,), or float32 (N, 10) one-hot."""
    y = labels.astype(np.int64)
    return one_hot(y, MNIST_CLASSES) if as_one_hot else y


def load_mnist(path=None, *, flatten: bool = True, one_hot: bool = False):
    """MNIST from the four IDX files (.gz or raw) or one Keras-layout ``mnist.npz``.

    ``path``: the folder holding the files, or the .npz itself; by default
    ``$NNBACKEND_DATA/mnist`` or ``$NNBACKEND_DATA``. When a folder holds both, the
    IDX files win, and an uncompressed IDX file wins over its .gz.
    Returns ``((X_train, y_train), (X_test, y_test))``: X float32 in [0, 1], (N, 784),
    or (N, 1, 28, 28) with ``flatten=False``; y int64 (N,), or float32 (N, 10) with
    ``one_hot=True``. N is 60000 for train and 10000 for test.
    """
    found = _locate_mnist(path)
    arrays = _read_mnist_npz(found) if isinstance(found, Path) else _read_mnist_idx(found)
    x_train, y_train, x_test, y_test = arrays
    return (
        (_mnist_images(x_train, flatten), _mnist_labels(y_train, one_hot)),
        (_mnist_images(x_test, flatten), _mnist_labels(y_test, one_hot)),
    )
