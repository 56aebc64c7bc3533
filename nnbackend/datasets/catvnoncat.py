"""The cat-vs-non-cat images of the deeplearning.ai course, from its two HDF5 files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnbackend.checks import boolean
from nnbackend.datasets.files import (
    DataNotFoundError,
    looked_in,
    not_a_file,
    reject_file,
    search_dirs,
)
from nnbackend.datasets.pixels import MAX_IMAGE_RATIO, check_image_count, scaled_pixels
from nnbackend.h5safe import dataset, dataset_info, open_untrusted, printable
from nnbackend.h5text import strings
from nnbackend.h5types import variable_string

CAT_FILES = {
    "train": ("train_catvnoncat.h5", "train_set_x", "train_set_y"),
    "test": ("test_catvnoncat.h5", "test_set_x", "test_set_y"),
}


def _not_found(dirs: list[Path]) -> DataNotFoundError:
    names = [name for name, _, _ in CAT_FILES.values()]

    def missing(folder):
        return [f"{n}{not_a_file(folder, n)}" for n in names if not (folder / n).is_file()]

    return DataNotFoundError(
        "cat-vs-non-cat",
        "catvnoncat",
        looked_in(dirs, missing),
        wanted=f"It needs {' and '.join(names)}.",
        how="load_catvnoncat(path='that/folder')",
        source=(
            "They are the datasets/ files of the deeplearning.ai course 'Neural Networks and\n"
            "Deep Learning' (Coursera), week 2 assignment 'Logistic Regression with a Neural\n"
            "Network mindset'."
        ),
    )


def _locate_cat(path) -> Path:
    """The folder holding both cat files, or FileNotFoundError."""
    reject_file(path, "cat-vs-non-cat")
    dirs = search_dirs(path, "catvnoncat")
    for folder in dirs:
        if all((folder / name).is_file() for name, _, _ in CAT_FILES.values()):
            return folder
    raise _not_found(dirs)


class CatFileError(ValueError):
    """A cat file's problem: its own class, so that h5py's ValueErrors, which name no
    file, are told apart and reported with the file's name (``h5safe``)."""


#: image sides and channels beyond this are not the course's files (64 x 64 x 3)
MAX_SIDE = 4096


def _read_h5(path: Path, x_key: str, y_key: str, with_classes: bool, sides: tuple | None):
    """One cat file -> (x (N, H, W, C), y (N,) int64 of 0/1, class names or None: read
    ``with_classes`` only). ``sides``: the (H, W, C) the images must have (the training
    file's), if any.

    Read as untrusted input (``nnbackend.h5safe``): no other file is followed, and every
    shape is checked before its data is read."""
    with open_untrusted(path, CatFileError, what="data file") as f:
        missing = [k for k in (x_key, y_key) if k not in f]
        if missing:
            raise CatFileError(
                f"{path}: missing dataset(s) {', '.join(missing)} "
                f"(has {printable(', '.join(sorted(f.keys())[:20])) or 'nothing'}); "
                f"expected {x_key} and {y_key}"
            )
        shape = dataset_info(path, f, x_key, CatFileError)[0]
        n = _check_image_shape(path, x_key, shape)
        if sides is not None and tuple(shape[1:]) != sides:
            raise CatFileError(
                f"{path}: {x_key} holds images of {tuple(shape[1:])} but the training "
                f"file's are {sides}; the two do not belong together"
            )
        # The shape checked above bounds the stored bytes too (values of at most 8 bytes,
        # so at most twice the float32 bound): a second cap on them disagreed with it
        x = dataset(
            path, f, x_key, CatFileError, shape=shape, kinds="iuf", max_ratio=MAX_IMAGE_RATIO
        )
        y = _read_labels(path, f, y_key, n)
        classes = _read_classes(path, f) if with_classes and "list_classes" in f else None
    return x, y, classes


def _check_image_shape(path: Path, x_key: str, shape: tuple) -> int:
    """The number of images, once ``shape`` is (N, H, W, C) with N > 0, sane sides, and
    float32 pixels within ``pixels.MAX_PIXEL_BYTES`` (``check_image_count``), the one
    bound on them whatever dtype the file stores."""
    if len(shape) != 4:
        raise CatFileError(f"{path}: {x_key} has shape {shape}, expected (N, H, W, C)")
    if shape[0] == 0:
        raise CatFileError(f"{path}: the dataset is empty (0 images)")
    if not all(1 <= side <= MAX_SIDE for side in shape[1:]):
        raise CatFileError(
            f"{path}: {x_key} has shape {shape}; images are (H, W, C) of sides 1..{MAX_SIDE}"
        )
    check_image_count(shape, path, f"/{x_key}", CatFileError)
    return shape[0]


def _read_labels(path: Path, f, y_key: str, n: int) -> np.ndarray:
    """Labels (n,), (n, 1) or (1, n) of 0 (non-cat) and 1 (cat), as int64 (n,)."""
    shape = dataset_info(path, f, y_key, CatFileError)[0]
    if shape not in {(n,), (n, 1), (1, n)}:
        raise CatFileError(f"{path}: {y_key} has shape {shape}, expected ({n},) for {n} images")
    y = dataset(path, f, y_key, CatFileError, kinds="iuf", shape=shape).reshape(n)
    if not np.isin(y, (0, 1)).all():
        bad = y[~np.isin(y, (0, 1))][0].item()
        raise CatFileError(f"{path}: {y_key} holds {bad!r}; labels are 0 (non-cat) or 1 (cat)")
    return y.astype(np.int64)


def _read_classes(path: Path, f) -> list[str]:
    """The two class names of ``list_classes``, [b'non-cat', b'cat'] in the course's
    files (or variable-length strings, as h5py writes a list of str), as str."""
    shape = dataset_info(path, f, "list_classes", CatFileError)[0]
    if shape != (2,):
        raise CatFileError(
            f"{path}: list_classes has shape {shape}; it should hold the two class "
            "names, non-cat and cat"
        )
    if variable_string(f["list_classes"].id.get_type()):
        return strings(path, f, "list_classes", CatFileError, max_chars=4096)
    names = dataset(path, f, "list_classes", CatFileError, kinds="S", max_bytes=4096)
    try:
        return [name.decode("utf-8") for name in names.tolist()]
    except UnicodeDecodeError:
        raise CatFileError(
            f"{path}: list_classes holds {names.tolist()!r}, which is not UTF-8 text"
        ) from None


def _cat_images(x: np.ndarray, flatten: bool, src: Path) -> np.ndarray:
    """(N, H, W, C) pixels -> float32 in [0, 1] (0..255 integers divided by 255, floats
    already in [0, 1] kept): flattened in the stored (H, W, C) order (the tutorial's
    rows), or channels-first images (N, C, H, W) as conv layers take them."""
    if flatten:
        return scaled_pixels(x, src, "images", error=CatFileError).reshape(x.shape[0], -1)
    return scaled_pixels(x, src, "images", axes=(0, 3, 1, 2), error=CatFileError)


def load_catvnoncat(path=None, *, flatten: bool = True, return_classes: bool = False):
    """The cat-vs-non-cat images of the deeplearning.ai course (HDF5).

    ``path``: a folder holding train_catvnoncat.h5 and test_catvnoncat.h5 directly or
    in ``catvnoncat/``; by default ``$NNBACKEND_DATA`` (the same rule). Raises
    ``DataNotFoundError`` (a FileNotFoundError) saying where it looked.
    Returns ``((X_train, y_train), (X_test, y_test))``: X float32 in [0, 1], (N, 12288)
    flattened as the tutorial's ``x.reshape(N, -1) / 255``, or channels-first images
    (N, 3, 64, 64) with ``flatten=False``; y int64 (N,), 1 = cat. N is 209 for train and
    50 for test.
    With ``return_classes=True`` a third element holds the class names,
    ``['non-cat', 'cat']``.
    """
    flatten = boolean(flatten, "flatten")
    return_classes = boolean(return_classes, "return_classes")
    folder = _locate_cat(path)
    splits, classes, sides = [], None, None
    for name, x_key, y_key in CAT_FILES.values():
        with_classes = return_classes and not classes
        x, y, file_classes = _read_h5(folder / name, x_key, y_key, with_classes, sides)
        sides = tuple(x.shape[1:])
        splits.append((_cat_images(x, flatten, folder / name), y))
        if classes is None:
            classes = file_classes
    if not return_classes:
        return tuple(splits)
    if classes is None:
        raise ValueError(f"no list_classes dataset in the cat files under {folder}")
    return splits[0], splits[1], classes
