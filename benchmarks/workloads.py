"""The six benchmark workloads: their shapes and hyper-parameters, their data, and the
shared starting weights.

Everything here is host NumPy. Each implementation moves what it needs to its own
device before its clock starts.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA_ENV = "NNBACKEND_DATA"
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"
QUICK_FACTOR = 20


@dataclass(frozen=True)
class Workload:
    number: int
    title: str
    dataset: str  # "moons", "mnist" or "cat"
    sizes: tuple[int, ...]  # layer widths, input first
    hidden: str  # hidden activation: "tanh", "sigmoid" or "relu"
    output: str  # "softmax" (+ cross-entropy) or "sigmoid" (+ binary cross-entropy)
    lr: float
    batch_size: int | None  # None: full batch, no shuffling
    epochs: int  # passes over the data; for a full batch, the number of steps
    n_samples: int
    dtype: str = "float32"
    reg_lambda: float = 0.0  # L2 on the weights (not the biases), added to the gradient
    loss_sum: bool = False  # gradient of the sum over samples rather than the mean
    # conv nets: images (channels, height, width) into Conv2D(filters, kernel x kernel,
    # no padding) -> ReLU -> MaxPool(pool) -> Flatten, then the Dense layers of `sizes`
    image: tuple[int, int, int] | None = None
    conv: tuple[int, int, int] | None = None  # (filters, kernel, pool)

    def conv_dims(self) -> tuple[int, int, int, int]:
        """(filters, channels * kernel**2, output height, output width) of the conv layer."""
        filters, kernel, _ = self.conv
        channels, height, width = self.image
        return filters, channels * kernel * kernel, height - kernel + 1, width - kernel + 1

    @property
    def steps(self) -> int:
        """Parameter updates in one training run."""
        if self.batch_size is None:
            return self.epochs
        return self.epochs * -(-self.n_samples // self.batch_size)

    def batch_rows(self) -> list[int]:
        """Rows of every batch of one epoch, in order (the last one may be short)."""
        if self.batch_size is None:
            return [self.n_samples]
        n, bs = self.n_samples, self.batch_size
        return [min(bs, n - i) for i in range(0, n, bs)]


WORKLOADS = {
    1: Workload(1, "moons 2-3-2 tanh, full batch, f64", "moons", (2, 3, 2), "tanh", "softmax",
                lr=0.01, batch_size=None, epochs=20000, n_samples=200, dtype="float64",
                reg_lambda=0.01, loss_sum=True),
    2: Workload(2, "MNIST 784-50-10 sigmoid, batch 100", "mnist", (784, 50, 10), "sigmoid",
                "softmax", lr=0.1, batch_size=100, epochs=1, n_samples=60000),
    3: Workload(3, "MNIST 784-256-256-10 relu, batch 128", "mnist", (784, 256, 256, 10), "relu",
                "softmax", lr=0.1, batch_size=128, epochs=1, n_samples=60000),
    4: Workload(4, "MNIST 784-1000-1000-10 relu, batch 512", "mnist", (784, 1000, 1000, 10),
                "relu", "softmax", lr=0.1, batch_size=512, epochs=1, n_samples=60000),
    5: Workload(5, "cat 12288-20-7-5-1 relu, full batch", "cat", (12288, 20, 7, 5, 1), "relu",
                "sigmoid", lr=0.0075, batch_size=None, epochs=2500, n_samples=209),
    6: Workload(6, "MNIST conv 30x5x5, pool 2, 100, 10, batch 100", "mnist", (4320, 100, 10),
                "relu", "softmax", lr=0.1, batch_size=100, epochs=1, n_samples=60000,
                image=(1, 28, 28), conv=(30, 5, 2)),
}  # fmt: skip


def quick(wl: Workload, factor: int = QUICK_FACTOR) -> Workload:
    """The workload scaled down ~factor times: fewer steps for a full batch, fewer
    samples (one shorter epoch) for mini-batches."""
    if wl.batch_size is None:
        return dataclasses.replace(wl, epochs=max(1, wl.epochs // factor))
    return dataclasses.replace(wl, n_samples=max(wl.batch_size, wl.n_samples // factor))


def warmup(wl: Workload) -> Workload:
    """A few steps of the workload, to run once untimed before the clock starts
    (thread pools, cuBLAS handles, CuPy kernel compilation): two full batches and one
    of the epoch's last batch's size, whose shapes would otherwise first come in a
    timed run."""
    if wl.batch_size is None:
        return dataclasses.replace(wl, epochs=min(wl.epochs, 3))
    last = wl.n_samples % wl.batch_size or wl.batch_size
    return dataclasses.replace(wl, n_samples=min(wl.n_samples, 2 * wl.batch_size + last))


@dataclass
class Data:
    """Host arrays for one workload: X (n, d) floats, or (n, C, H, W) images for a conv
    net; y (n,) int labels for softmax or (n, 1) floats for a sigmoid output; init the
    starting [(W, b), ...], a conv net's (W (F, C, k, k), b (F,)) first."""

    X: np.ndarray
    y: np.ndarray
    init: list[tuple[np.ndarray, np.ndarray]]
    note: str

    def head(self, n: int) -> Data:
        return Data(self.X[:n], self.y[:n], self.init, self.note)


def init_params(sizes, dtype, seed: int = 0, wl=None) -> list[tuple[np.ndarray, np.ndarray]]:
    """W ~ randn(n_in, n_out) / sqrt(n_in), b = 0, drawn on the host; for a conv
    workload ``wl`` first its kernel, randn(F, C, k, k) / sqrt(C * k * k)."""
    rng = np.random.default_rng(seed)
    params = []
    if wl is not None and wl.conv is not None:
        (filters, kernel, _), channels = wl.conv, wl.image[0]
        fan_in = channels * kernel * kernel
        W = rng.standard_normal((filters, channels, kernel, kernel)) / np.sqrt(fan_in)
        params.append((W.astype(dtype), np.zeros(filters, dtype=dtype)))
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        W = (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(dtype)
        params.append((W, np.zeros(n_out, dtype=dtype)))
    return params


def data_dir() -> Path:
    return Path(os.environ.get(DATA_ENV, DEFAULT_DATA_DIR))


def load(wl: Workload, seed: int = 0) -> Data:
    loaders = {"moons": load_moons, "mnist": load_mnist, "cat": load_cat}
    X, y, note = loaders[wl.dataset](wl.n_samples, wl.dtype, seed)
    if wl.image is not None:
        X = X.reshape(len(X), *wl.image)
    return Data(X, y, init_params(wl.sizes, wl.dtype, seed, wl), note)


def load_moons(n: int, dtype: str, seed: int = 0):
    from sklearn.datasets import make_moons

    X, y = make_moons(n, noise=0.20, random_state=seed)
    return X.astype(dtype), y.astype(np.int64), f"make_moons({n}, noise=0.20)"


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (.gz) as a uint8 array; MNIST images have 16 header bytes, labels 8."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_mnist(n: int, dtype: str, seed: int = 0):
    folder = data_dir() / "mnist"
    images = folder / "train-images-idx3-ubyte.gz"
    labels = folder / "train-labels-idx1-ubyte.gz"
    if images.exists() and labels.exists():
        X = read_idx(images)[:n].reshape(n, -1).astype(dtype) / np.asarray(255, dtype)
        y = read_idx(labels)[:n].astype(np.int64)
        return X, y, f"real MNIST, first {n} training images"
    rng = np.random.default_rng(seed)
    X = rng.random((n, 784), dtype=np.float32).astype(dtype)
    y = rng.integers(0, 10, n, dtype=np.int64)
    return X, y, f"RANDOM data of MNIST's shape ({folder} not found)"


def load_cat(n: int, dtype: str, seed: int = 0):
    path = data_dir() / "catvnoncat" / "train_catvnoncat.h5"
    if path.exists():
        import h5py

        with h5py.File(path, "r") as f:
            X = np.asarray(f["train_set_x"][:n])
            y = np.asarray(f["train_set_y"][:n])
        X = X.reshape(len(X), -1).astype(dtype) / np.asarray(255, dtype)
        return X, y.reshape(-1, 1).astype(dtype), f"real cat-vs-non-cat, {len(X)} images"
    rng = np.random.default_rng(seed)
    X = rng.random((n, 64 * 64 * 3), dtype=np.float32).astype(dtype)
    y = rng.integers(0, 2, (n, 1)).astype(dtype)
    return X, y, f"RANDOM data of the cat set's shape ({path} not found)"
