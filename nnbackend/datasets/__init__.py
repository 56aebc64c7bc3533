"""Datasets of the classic tutorials, as host NumPy arrays.

Rows are samples. Every loader returns NumPy arrays on the host; moving them to a
backend's device is the data loader's job, not this module's.

    from nnbackend import datasets
    X, y = datasets.make_moons(200, noise=0.2, seed=0)        # (200, 2) float64, (200,) int64
    (X_train, y_train), (X_test, y_test) = datasets.load_mnist()  # (60000, 784) float32 ...

MNIST and cat-vs-non-cat are read from files you already have, by one rule: pass
``path=`` (``--data`` on the command line), or set ``NNBACKEND_DATA``, to a folder
that holds the files directly or in ``mnist/`` / ``catvnoncat/``. Nothing is downloaded.
"""

from nnbackend.datasets.catvnoncat import CatFileError, load_catvnoncat
from nnbackend.datasets.files import DATA_ENV_VAR, DataNotFoundError
from nnbackend.datasets.mnist import load_mnist
from nnbackend.datasets.toy import (
    load_digits,
    load_people,
    make_blobs,
    make_circles,
    make_moons,
    one_hot,
    standardize,
    train_val_split,
)

__all__ = [
    "CatFileError",
    "DATA_ENV_VAR",
    "DataNotFoundError",
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
