"""The cat-vs-non-cat images of the deeplearning.ai course, from its two HDF5 files."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from nnbackend.datasets.files import DATA_ENV_VAR, looked_in, reject_file, search_dirs

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
        + looked_in(dirs, missing)
        + f"\nPut {' and '.join(names)} in a folder, then call\n"
        f"load_catvnoncat(path='that/folder'), or set {DATA_ENV_VAR} to a folder holding\n"
        "them in catvnoncat/ or directly.\n"
        "They are the datasets/ files of the deeplearning.ai course 'Neural Networks and\n"
        "Deep Learning' (Coursera), week 2 assignment 'Logistic Regression with a Neural\n"
        "Network mindset'."
    )


def _locate_cat(path) -> Path:
    """The folder holding both cat files, or FileNotFoundError."""
    reject_file(path, "cat-vs-non-cat")
    dirs = search_dirs(path, "catvnoncat")
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
    """uint8 (N, H, W, C) -> float32 / 255: flattened in the stored (H, W, C) order (the
    tutorial's rows), or channels-first images (N, C, H, W) as conv layers take them."""
    X = x.astype(np.float32) / np.float32(255)
    if flatten:
        return X.reshape(X.shape[0], -1)
    return np.ascontiguousarray(X.transpose(0, 3, 1, 2))


def load_catvnoncat(path=None, *, flatten: bool = True, return_classes: bool = False):
    """The cat-vs-non-cat images of the deeplearning.ai course (HDF5).

    ``path``: the folder holding train_catvnoncat.h5 and test_catvnoncat.h5; by default
    ``$NNBACKEND_DATA/catvnoncat`` or ``$NNBACKEND_DATA``.
    Returns ``((X_train, y_train), (X_test, y_test))``: X float32 in [0, 1], (N, 12288)
    flattened as the tutorial's ``x.reshape(N, -1) / 255``, or channels-first images
    (N, 3, 64, 64) with ``flatten=False``; y int64 (N,), 1 = cat. N is 209 for train and
    50 for test.
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
