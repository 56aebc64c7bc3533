"""Datasets of the classic tutorials, as host NumPy arrays.

Rows are samples. Every loader returns NumPy arrays on the host; moving them to a
backend's device is the data loader's job, not this module's.

    from nnbackend import datasets
    X, y = datasets.make_moons(200, noise=0.2, seed=0)        # (200, 2) float64, (200,) int64
    (X_train, y_train), (X_test, y_test) = datasets.load_mnist()  # (60000, 784) float32 ...

MNIST and cat-vs-non-cat are read from files you already have: pass ``path=``, or set
``NNBACKEND_DATA`` to a folder holding ``mnist/`` and ``catvnoncat/`` (or the files
themselves). Nothing is downloaded.
"""

from __future__ import annotations

import gzip
import os
import zipfile
import zlib
from pathlib import Path

import h5py
import numpy as np

from nnbackend.backend import Generator

DATA_ENV_VAR = "NNBACKEND_DATA"

__all__ = [
    "DATA_ENV_VAR",
    "load_catvnoncat",
    "load_digits",
    "load_mnist",
    "load_people",
    "make_blobs",
    "make_circles",
    "make_moons",
    "one_hot",
    "standardize",
    "train_val_split",
]


# --- generated toy sets --------------------------------------------------------------
# scikit-learn is imported inside these functions: it takes most of a second to import,
# and the file loaders do not need it.


def make_moons(n_samples: int = 200, noise: float = 0.2, seed: int = 0):
    """Two interleaving half circles: X (n, 2) float64, y (n,) int64 in {0, 1}."""
    from sklearn import datasets as sk

    X, y = sk.make_moons(n_samples=n_samples, noise=noise, random_state=seed)
    return X.astype(np.float64), y.astype(np.int64)


def make_circles(n_samples: int = 200, noise: float = 0.1, factor: float = 0.5, seed: int = 0):
    """A small circle inside a large one: X (n, 2) float64, y (n,) int64 in {0, 1}."""
    from sklearn import datasets as sk

    X, y = sk.make_circles(n_samples=n_samples, noise=noise, factor=factor, random_state=seed)
    return X.astype(np.float64), y.astype(np.int64)


def make_blobs(
    n_samples: int = 200,
    centers: int = 3,
    n_features: int = 2,
    cluster_std: float = 1.0,
    seed: int = 0,
):
    """Gaussian blobs: X (n, n_features) float64, y (n,) int64 in [0, centers)."""
    from sklearn import datasets as sk

    X, y = sk.make_blobs(
        n_samples=n_samples,
        centers=centers,
        n_features=n_features,
        cluster_std=cluster_std,
        random_state=seed,
    )
    return X.astype(np.float64), y.astype(np.int64)


def load_people():
    """The four-person toy set of the "network from scratch" tutorial.

    Returns ``(X, y, names)``: X (4, 2) float64 = (weight - 135 lb, height - 66 in),
    y (4,) float64 with 1 = female, names a list of 4 str.
    """
    names = ["Alice", "Bob", "Charlie", "Diana"]
    X = np.array([[-2.0, -1.0], [25.0, 6.0], [17.0, 4.0], [-15.0, -6.0]])
    y = np.array([1.0, 0.0, 0.0, 1.0])
    return X, y, names


def load_digits(test_fraction: float = 0.2, seed: int = 0, flatten: bool = True):
    """scikit-learn's bundled 8x8 digits (1797 images), an offline stand-in for MNIST.

    Returns ``((X_train, y_train), (X_test, y_test))`` split by ``train_val_split``:
    X float32 in [0, 1], (N, 64) or (N, 8, 8) with ``flatten=False``; y int64 (N,).
    """
    from sklearn import datasets as sk

    digits = sk.load_digits()
    X = (digits.images / 16.0).astype(np.float32)  # pixels are 0..16
    if flatten:
        X = X.reshape(X.shape[0], -1)
    y = digits.target.astype(np.int64)
    return train_val_split(X, y, val_fraction=test_fraction, seed=seed)


# --- helpers -------------------------------------------------------------------------


def one_hot(y, n_classes: int | None = None, dtype="float32") -> np.ndarray:
    """Integer labels (N,) -> one-hot rows (N, n_classes) on the host.

    ``n_classes`` defaults to ``max(y) + 1``. Float labels are accepted when they hold
    whole numbers (1.0, not 1.5).
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"one_hot expects labels of shape (N,), got {y.shape}; pass y.reshape(-1)")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise ValueError("one_hot expects integer class labels; found non-integer values")
    elif y.dtype.kind not in "iu":
        raise ValueError(f"one_hot expects integer class labels, got dtype {y.dtype}")
    if y.size and y.min() < 0:
        raise ValueError(f"one_hot: labels must be >= 0, found {y.min()}")
    if n_classes is None:
        n_classes = int(y.max()) + 1 if y.size else 0
    if y.size and y.max() >= n_classes:
        raise ValueError(
            f"one_hot: label {y.max()} is out of range for n_classes={n_classes} "
            f"(labels must be in [0, {n_classes - 1}])"
        )
    return (y[:, None] == np.arange(n_classes)).astype(np.dtype(dtype))


def train_val_split(X, y, val_fraction: float = 0.2, seed: int = 0):
    """Shuffle with a seeded generator and split off ``round(N * val_fraction)`` samples.

    Returns ``((X_train, y_train), (X_val, y_val))``, rows taken along axis 0.
    The same seed gives the same split on every machine.
    """
    X, y = np.asarray(X), np.asarray(y)
    n = X.shape[0]
    if y.shape[0] != n:
        raise ValueError(f"X has {n} samples but y has {y.shape[0]}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if n == 0:
        raise ValueError("cannot split an empty dataset (0 samples)")
    n_val = round(n * val_fraction)
    order = Generator(seed).permutation(n)
    val, train = order[:n_val], order[n_val:]
    return (X[train], y[train]), (X[val], y[val])


def standardize(X, mean=None, std=None):
    """Scale each feature (column) to zero mean and unit standard deviation.

    X is (N, features). With ``mean`` and ``std`` left out they are computed from X;
    pass the training set's to scale a validation or test set the same way. A
    feature with zero std is left unscaled (std taken as 1).
    Returns ``(X_scaled, mean, std)``; mean and std have shape (features,).
    """
    X = np.asarray(X)
    if X.dtype.kind != "f":
        X = X.astype(np.float64)
    if (mean is None) != (std is None):
        raise ValueError("pass both mean and std (from the training set), or neither")
    if mean is None:
        if X.shape[0] == 0:
            raise ValueError("cannot standardize an empty dataset (0 samples)")
        mean, std = X.mean(axis=0), X.std(axis=0)
    mean = np.asarray(mean, dtype=X.dtype)
    std = np.asarray(std, dtype=X.dtype)
    std = np.where(std == 0, np.ones_like(std), std)
    return (X - mean) / std, mean, std


# --- finding files -------------------------------------------------------------------


def _search_dirs(path, subdir: str) -> list[Path]:
    """Where to look: ``path`` alone if given, else $NNBACKEND_DATA/subdir and $NNBACKEND_DATA."""
    if path is not None:
        return [Path(path)]
    root = os.environ.get(DATA_ENV_VAR)
    if not root:
        return []
    return [Path(root) / subdir, Path(root)]


def _looked_in(dirs: list[Path], missing_in) -> str:
    """One line per searched folder saying what was not there."""
    if not dirs:
        return f"  (no path was given and ${DATA_ENV_VAR} is not set)"
    lines = []
    for d in dirs:
        what = "does not exist" if not d.is_dir() else "missing " + ", ".join(missing_in(d))
        lines.append(f"  {d}: {what}")
    return "\n".join(lines)


def _reject_file(path, what: str) -> None:
    """``path`` must name a folder: a data file passed by mistake gets a clear error."""
    if path is not None and Path(path).is_file():
        raise ValueError(f"{path} is a file; for {what} pass the folder that holds the files")


# --- MNIST ---------------------------------------------------------------------------

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
        + _looked_in(dirs, _missing_idx)
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
    _reject_file(path, "MNIST (other than an .npz)")
    dirs = _search_dirs(path, "mnist")
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
    """uint8 (N, rows, cols) -> float32 in [0, 1], (N, rows*cols) when flattened."""
    if images.dtype.kind in "iu":
        X = images.astype(np.float32) / np.float32(255)
    else:
        X = images.astype(np.float32)  # float pixels are taken as already scaled
    return X.reshape(X.shape[0], -1) if flatten else X


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
    or (N, 28, 28) with ``flatten=False``; y int64 (N,), or float32 (N, 10) with
    ``one_hot=True``. N is 60000 for train and 10000 for test.
    """
    found = _locate_mnist(path)
    arrays = _read_mnist_npz(found) if isinstance(found, Path) else _read_mnist_idx(found)
    x_train, y_train, x_test, y_test = arrays
    return (
        (_mnist_images(x_train, flatten), _mnist_labels(y_train, one_hot)),
        (_mnist_images(x_test, flatten), _mnist_labels(y_test, one_hot)),
    )


# --- cat vs non-cat ------------------------------------------------------------------

CAT_FILES = {
    "train": ("train_catvnoncat.h5", "train_set_x", "train_set_y"),
    "test": ("test_catvnoncat.h5", "test_set_x", "test_set_y"),
}


def _cat_help(dirs: list[Path]) -> str:
    names = [name for name, _, _ in CAT_FILES.values()]

    def missing(folder):
        return [n for n in names if not (folder / n).is_file()]

    return (
        "cat-vs-non-cat files not found. Looked in:\n"
        + _looked_in(dirs, missing)
        + f"\nPut {' and '.join(names)} in a folder, then call\n"
        f"load_catvnoncat(path='that/folder'), or set {DATA_ENV_VAR} to a folder holding\n"
        "them in catvnoncat/ or directly.\n"
        "They are the datasets/ files of the deeplearning.ai course 'Neural Networks and\n"
        "Deep Learning' (Coursera), week 2 assignment 'Logistic Regression with a Neural\n"
        "Network mindset'."
    )


def _locate_cat(path) -> Path:
    """The folder holding both cat files, or FileNotFoundError."""
    _reject_file(path, "cat-vs-non-cat")
    dirs = _search_dirs(path, "catvnoncat")
    for folder in dirs:
        if all((folder / name).is_file() for name, _, _ in CAT_FILES.values()):
            return folder
    raise FileNotFoundError(_cat_help(dirs))


def _read_h5(path: Path, x_key: str, y_key: str):
    """One cat file -> (x uint8 (N, H, W, C), y (N,) int64, class names or None)."""
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in (x_key, y_key) if k not in f]
            if missing:
                raise ValueError(
                    f"{path}: missing dataset(s) {', '.join(missing)} "
                    f"(has {', '.join(f.keys()) or 'nothing'}); expected {x_key} and {y_key}"
                )
            x, y = f[x_key][()], f[y_key][()]
            classes = f["list_classes"][()] if "list_classes" in f else None
    except OSError as err:
        raise ValueError(
            f"{path}: not a readable HDF5 file ({err}); it is truncated or not the course "
            "file, download it again"
        ) from err
    if x.ndim != 4:
        raise ValueError(f"{path}: {x_key} has shape {x.shape}, expected (N, H, W, C)")
    n = x.shape[0]
    if n == 0:
        raise ValueError(f"{path}: the dataset is empty (0 images)")
    if y.shape not in {(n,), (n, 1), (1, n)}:
        raise ValueError(f"{path}: {y_key} has shape {y.shape}, expected ({n},) for {n} images")
    return x, y.reshape(n).astype(np.int64), classes


def _cat_images(x: np.ndarray, flatten: bool) -> np.ndarray:
    """uint8 (N, H, W, C) -> float32 / 255, flattened in the stored (H, W, C) order."""
    X = x.astype(np.float32) / np.float32(255)
    return X.reshape(X.shape[0], -1) if flatten else X


def load_catvnoncat(path=None, *, flatten: bool = True, return_classes: bool = False):
    """The cat-vs-non-cat images of the deeplearning.ai course (HDF5).

    ``path``: the folder holding train_catvnoncat.h5 and test_catvnoncat.h5; by default
    ``$NNBACKEND_DATA/catvnoncat`` or ``$NNBACKEND_DATA``.
    Returns ``((X_train, y_train), (X_test, y_test))``: X float32 in [0, 1], (N, 12288)
    flattened as the tutorial's ``x.reshape(N, -1) / 255``, or (N, 64, 64, 3) with
    ``flatten=False``; y int64 (N,), 1 = cat. N is 209 for train and 50 for test.
    With ``return_classes=True`` a third element holds the class names,
    ``['non-cat', 'cat']``.
    """
    folder = _locate_cat(path)
    splits, classes = [], None
    for name, x_key, y_key in CAT_FILES.values():
        x, y, file_classes = _read_h5(folder / name, x_key, y_key)
        splits.append((_cat_images(x, flatten), y))
        if classes is None:
            classes = file_classes
    if not return_classes:
        return tuple(splits)
    if classes is None:
        raise ValueError(f"no list_classes dataset in the cat files under {folder}")
    names = [c.decode() if isinstance(c, bytes) else str(c) for c in classes]
    return splits[0], splits[1], names
