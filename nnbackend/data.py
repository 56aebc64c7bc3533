"""Getting training data onto the model's device, in mini-batches.

Data arrives as host NumPy arrays (or arrays already on the model's backend). When
it fits, the whole set is copied to the device once and batches are gathered there
(the fast path on a GPU); otherwise each batch is gathered on the host and copied.
Shuffling uses the seeded ``Generator`` on the host, so one seed gives the same
batches on every backend. What is checked of X and y before that: ``nnbackend.data_checks``.
"""

from __future__ import annotations

import math

import array_api_compat
import numpy as np

from nnbackend.backend import Backend, Generator, as_generator, get_backend, namespace_of, to_numpy
from nnbackend.backend.core import detached
from nnbackend.backend.fastpaths import native
from nnbackend.checks import boolean, one_of, positive_int
from nnbackend.hint_code import code_name, flattened, read_from, subject

#: On a GPU, keep the whole training set on the device when it takes less than this
#: share of the free device memory.
DEVICE_MEMORY_SHARE = 0.5


class Batches:
    """Iterate over ``(x_batch, y_batch)`` pairs on ``backend`` (a Backend, or its name).

    ``X``: (n, ...) samples; ``y``: (n, ...) targets, or None. ``batch_size=None``
    gives one batch of everything (full-batch gradient descent; no shuffling needed).
    ``shuffle``: a new order each pass, drawn from ``rng`` (an ``nb.Generator``, such as
    ``model.rng``, or a seed). ``on_device``: True, False, or "auto" (on the device when
    it fits). ``names``: what errors call X and y ("validation X", say).
    """

    def __init__(
        self,
        X,
        y,
        backend: Backend | str,
        batch_size: int | None = None,
        *,
        shuffle: bool = True,
        rng: Generator | None = None,
        y_dtype: str | None = None,
        on_device="auto",
        names: tuple[str, str] = ("X", "y"),
    ):
        x_name, y_name = names
        X = as_array(X, x_name)  # a list, as fit takes it; a tracked tensor, detached
        y = None if y is None else as_array(y, y_name)
        self.n = int(X.shape[0])
        if self.n == 0:
            raise ValueError(
                f"{x_name} is empty (shape {tuple(X.shape)}): there are no rows to batch"
            )
        if y is not None and int(y.shape[0]) != self.n:
            raise ValueError(
                f"{x_name} has {self.n} rows but {y_name} has {int(y.shape[0])}: give one "
                f"target per sample{_columns_hint(X, y, names)}"
            )
        self.backend = backend = _backend(backend)
        if batch_size is not None:
            batch_size = positive_int(batch_size, "batch_size (None for full batch)")
        self.batch_size = self.n if batch_size is None else min(batch_size, self.n)
        one_of(on_device, "on_device", (True, False, "auto"))
        self.shuffle = boolean(shuffle, "shuffle") and self.batch_size < self.n
        self.rng = rng if hasattr(rng, "permutation") else _generator(rng)
        # there already (a host array only in the model's dtype: else on_device decides)
        if backend.owns(X) and (X.dtype == backend.dtype or not is_host(X)):
            on_device = True
        self.on_device = _fits_on_device(backend, X, y) if on_device == "auto" else on_device
        self._X, self._y = _place(backend, X, y, y_dtype, self.on_device, x_name)
        self._y_dtype = y_dtype

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def __iter__(self):
        if self.batch_size == self.n and not self.shuffle:
            yield self._batch(None)
            return
        order = self.rng.permutation(self.n) if self.shuffle else np.arange(self.n)
        take, take_rows = _host_take, None
        if self.on_device:
            order = self.backend.asarray(order)
            xp = self.backend.xp
            take = native("take", xp) or xp.take
            take_rows = native("take_rows", xp) if self._y is not None else None
        for start in range(0, self.n, self.batch_size):
            index = order[start : min(start + self.batch_size, self.n)]
            yield self._batch(index, take, take_rows)

    def _batch(self, index, take=None, take_rows=None):
        X, y = self._X, self._y
        both = None if take_rows is None else take_rows(X, y, index)  # CuPy: one kernel
        if both is not None:
            X, y = both
        elif index is not None:
            X = take(X, index, axis=0)
            y = None if y is None else take(y, index, axis=0)
        if not self.on_device:
            X = self.backend.asarray(X, dtype=self.backend.dtype_name)
            y = None if y is None else self.backend.asarray(y, dtype=self._y_dtype)
        return X, y


def _host_take(a, index, axis=0):
    return np.take(a, index, axis=axis)


def _place(backend, X, y, y_dtype, on_device, x_name: str):
    """X (and y) as the batches will slice them: on the device, or left on the host."""
    if on_device:
        if _wider_float(X, backend.dtype_name):  # float64 data, a float32 model
            X = _without_overflow(_narrowed(backend, X), backend.dtype_name, x_name)
        X = backend.asarray(X, dtype=backend.dtype_name)
        y = None if y is None else backend.asarray(y, dtype=y_dtype)
    else:  # each batch is cast on its way
        check_in_range(X, backend.dtype_name, x_name)
    return X, y


def check_in_range(X, dtype: str, name: str = "X") -> None:
    """Refuse floats wider than ``dtype`` with values it cannot hold (they would become
    inf): the cast, to say where, only once two reductions have found one."""
    if _wider_float(X, dtype) and _past_range(X, dtype):
        with np.errstate(over="ignore"):
            _without_overflow(to_numpy(X).astype(dtype), dtype, name)


def _past_range(X, dtype: str) -> bool:
    """Whether some value of X lies past ``dtype``'s largest: two reductions, no copy
    (the batches cast X one at a time, when the whole would not fit on the device)."""
    if math.prod(X.shape) == 0:
        return False
    xp, top = namespace_of(X), float(np.finfo(dtype).max)
    return bool(xp.max(X) > top) or bool(xp.min(X) < -top)


def _narrowed(backend, X):
    """X cast to the backend's dtype where it is: on the host (no transfer, and fewer
    bytes to move after), or on the device. Overflow is reported by the caller (and
    not warned of by NumPy, here or under array-api-strict)."""
    with np.errstate(over="ignore"):
        return X.astype(backend.dtype_name) if is_host(X) else backend.asarray(X, backend.dtype)


def _wider_float(X, dtype: str) -> bool:
    """Whether X holds floats of more bits than ``dtype`` (float64 data, float32 model)."""
    xp = namespace_of(X)
    return is_float(xp, X) and xp.finfo(X.dtype).bits > np.finfo(dtype).bits


def _without_overflow(X, dtype: str, name: str = "X"):
    """X, just cast to ``dtype`` from finite data (an inf now is a value past its range),
    returned as it is if none is."""
    bad = not_finite(namespace_of(X), X)
    if bad is not None:
        raise ValueError(
            f"{name} holds values beyond {dtype}'s range (the first at index {first_index(bad)}): "
            "scale them, or build the model in float64"
        )
    return X


def _fits_on_device(backend: Backend, X, y) -> bool:
    free = backend.free_memory()
    if free is None:  # CPU backends: host memory is device memory
        return True
    needed = _nbytes(X, backend.dtype_name) + (0 if y is None else np.asarray(y).nbytes)
    return needed < DEVICE_MEMORY_SHARE * free


def _nbytes(X, dtype: str) -> int:
    return int(np.prod(X.shape)) * np.dtype(dtype).itemsize


def target_dtype(loss, y, backend) -> str:
    """The dtype targets train in: 1-D class labels stay int64, the rest take the
    backend's float dtype."""
    if loss.target_kind == "labels" and y.ndim == 1:
        return "int64"
    return backend.dtype_name


def _not_one_array(parts, what: str, exc: Exception) -> str:
    """Why a list or tuple of arrays or rows is no array: samples of differing shapes (a
    short CSV row, one grey image among colour ones: a list, or many), or a function's
    whole result, a tuple of a few arrays (standardize's (X, mean, std), a loader's (X, y))."""
    shapes = [_shape_of(part) for part in parts]
    odd = next((i for i, shape in enumerate(shapes) if shape != shapes[0]), None)
    if None in shapes or odd is None:  # ragged deeper down, or not NumPy's arrays (a GPU's)
        return f"{what} cannot be read as an array ({exc})"
    if isinstance(parts, list) or len(parts) > 4 or any(isinstance(p, list | tuple) for p in parts):
        rows = len(shapes[0]) > 1 and len({shape[1:] for shape in shapes}) == 1
        joined = f". Batches, the last one short? Join them: np.concatenate({what})" * rows
        return (
            f"{what}'s samples differ in shape: {what}[0] has shape {shapes[0]}, {what}[{odd}] "
            f"has {shapes[odd]}; every sample needs the same shape{joined}{tags_hint(parts, what)}"
        )
    pair = len(shapes) == 2 and all(shapes) and shapes[0][0] == shapes[1][0]
    example = "X, y = data, then pass them apart: fit(X, y)" if pair else (
        "X, mean, std = nb.datasets.standardize(X)")  # fmt: skip
    return (
        f"{what} is a {type(parts).__name__} of {len(parts)} arrays (shapes "
        f"{', '.join(map(str, shapes))}), not one array: unpack it first, as in {example}"
    )


def tags_hint(parts, what: str) -> str:
    """For targets that are lists of tag ids of differing lengths (multi-label data as
    scikit-learn's MultiLabelBinarizer takes it): how to make them 0/1 columns."""
    if not what.endswith("y") or not all(isinstance(part, list | tuple) for part in parts):
        return ""
    if not all(isinstance(tag, int | np.integer) for part in parts for tag in part):
        return ""
    name = code_name(what)
    return (
        f". Tag ids of each sample? {name} = sklearn.preprocessing.MultiLabelBinarizer()"
        f".fit_transform({name}) makes them 0/1 columns (classes=range(k) for k outputs)"
    )


def _shape_of(part) -> tuple | None:
    try:
        return tuple(part.shape) if hasattr(part, "shape") else np.shape(part)
    except ValueError:  # a ragged row of rows
        return None


def as_array(data, what: str = "X"):
    """``data`` as an array: arrays (host NumPy or a backend's) as they are; lists,
    tuples and other array-likes (a pandas DataFrame) as host NumPy arrays. A torch
    tensor that autograd tracks comes detached: nnbackend makes its own gradients, and
    torch refused the products written with ``out=`` on it."""
    if isinstance(data, np.ndarray) and type(data) is not np.ndarray:
        # np.matrix (scipy.sparse's .todense()) keeps every product 2-D, a masked
        # array its mask: both broke the kernels' out= products
        if np.ma.is_masked(data):
            raise ValueError(
                f"{what} is a masked array with masked entries: fill them "
                f"({code_name(what)}.filled(value)) or drop those samples first"
            )
        data = np.asarray(data)
    if str(getattr(data, "layout", "torch.strided")).startswith("torch.sparse"):  # COO, CSR, ...
        raise TypeError(
            f"{what} is a sparse torch tensor: give it dense, {code_name(what)}.to_dense()"
        )
    if isinstance(data, np.ndarray) or array_api_compat.is_array_api_obj(data):
        return detached(data)
    if hasattr(data, "toarray") and hasattr(data, "nnz"):  # scipy.sparse
        raise TypeError(
            f"{what} is a sparse {type(data).__name__}: give it dense, {code_name(what)}.toarray()"
        )
    try:
        array = read_from(data, np.asarray(data))
    except (ValueError, TypeError, RuntimeError) as exc:  # Runtime: torch's, strict's devices
        if _is_dataset(data):  # torch's TensorDataset: (x, y) samples NumPy cannot stack
            raise TypeError(_not_rows(data, what)) from None
        parts = data if isinstance(data, tuple | list) else ()
        if parts and all(_is_pair(part) for part in parts):
            raise ValueError(_pairs_hint(data, what)) from None
        if parts and all(
            hasattr(part, "shape") or isinstance(part, list | tuple) for part in parts
        ):
            raise ValueError(_not_one_array(parts, what, exc)) from None
        raise ValueError(f"{what} cannot be read as an array ({exc})") from None
    if array.ndim == 0 and array.dtype == object and data is not None:  # a generator, a set
        raise TypeError(_not_rows(data, what))
    return array


def _not_rows(data, what: str) -> str:
    return (
        f"{what} is a {type(data).__name__}, which NumPy cannot read as rows: give all "
        f"of it at once as an array or a list (np.asarray(list(...)), say); for one of "
        f"(x, y) pairs, make it a list, pairs = list(...), and pass that: the error then "
        "says how to stack samples or join batches"
    )


def _is_dataset(data) -> bool:
    """A dataset object of (x, y) samples by index (torch's ``TensorDataset``), not a list."""
    try:
        return not isinstance(data, tuple | list) and len(data) > 0 and _is_pair(data[0])
    except Exception:  # no length, or indexed otherwise: not one
        return False


_JOIN_BATCHES = (
    "X = np.concatenate([xb for xb, _ in batches]); y = np.concatenate([yb for _, yb in batches])"
)


def _is_pair(part) -> bool:
    """An (x, y) pair: a batch or a sample, as a Keras or PyTorch loader yields them."""
    return isinstance(part, tuple | list) and len(part) == 2 and hasattr(part[0], "shape")


def _pairs_hint(pairs, what: str) -> str:
    """How to make whole X and y of (x, y) pairs: batches (as many rows in x as in y)
    joined, samples stacked; two batches may be a loader's (train, test) sets."""
    shapes = [(tuple(x.shape), tuple(getattr(t, "shape", np.shape(t)))) for x, t in pairs]
    given = f"{what} is a {type(pairs).__name__} of {len(pairs)} (x, y)"
    if all(len(xs) > 1 and ts and xs[0] == ts[0] for xs, ts in shapes):  # rows of samples
        two = len(pairs) == 2  # ((X_train, y_train), (X_test, y_test)), say
        split = (
            "; or, for a loader's (train, test) sets, unpack them: (X, y), (X_test, y_test) = ..."
        )
        return (
            f"{given} batches: nnbackend takes whole arrays, X and y; join the batches "
            f"first: {_JOIN_BATCHES}{split * two}"
        )
    x_code, t_code = (
        f"np.ravel({name})" if all(len(s) == 2 and s[1] == 1 for s in side) else name
        for name, side in (("x", [xs for xs, _ in shapes]), ("t", [ts for _, ts in shapes]))
    )  # column vectors (Nielsen's (784, 1) and (10, 1)) as rows
    return (
        f"{given} samples: nnbackend takes whole arrays, X and y; stack them first: "
        f"X = np.stack([{x_code} for x, _ in pairs]); y = np.stack([{t_code} for _, t in pairs])"
    )


def is_host(X) -> bool:
    """Host data: a NumPy array, or a list or other array-like that is no library's
    array (a torch tensor, even on the CPU, is torch's)."""
    return isinstance(X, np.ndarray | np.generic) or not array_api_compat.is_array_api_obj(X)


def is_foreign(X) -> bool:
    """An array of some library's own (not host NumPy): the opposite of ``is_host``."""
    return not is_host(X)


# --- finiteness, shared with nnbackend.data_checks --------------------------------


def not_finite(xp, a) -> np.ndarray | None:
    """None where every element of ``a`` is finite, else where they are not (host bools).
    One reduction decides (its sum is finite, or some element is not, or it overflowed);
    only bad data pays for the mask."""
    with np.errstate(over="ignore", invalid="ignore"):  # an overflowing sum is an answer too
        if bool(to_numpy(xp.isfinite(xp.sum(a)))):
            return None
    bad = ~np.isfinite(to_numpy(a))
    return bad if bad.any() else None


def first_index(mask: np.ndarray) -> tuple[int, ...]:
    """The index of the first True entry of ``mask``, for an error to point at."""
    return tuple(int(i) for i in np.argwhere(mask)[0])


def is_float(xp, a) -> bool:
    """Whether ``a`` holds real floating-point numbers."""
    return xp.isdtype(a.dtype, "real floating")


def _columns_hint(X, y, names: tuple[str, str]) -> str:
    """For data laid out as samples in columns (the course's X of (features, m) and Y
    of (1, m)), how to make the samples rows, as fit's checks say it."""
    x_name, y_name = names
    x_code, row = f"{subject(X, code_name(x_name))}.T", y.ndim == 2 and y.shape[0] == 1
    if row and X.ndim == 2 and X.shape[1] == y.shape[1]:  # both: (features, m) and (1, m)
        return (
            f"; samples as columns? Samples are rows here: pass {x_code} and {flattened(y, y_name)}"
        )
    if row and y.shape[1] == X.shape[0]:
        return f"; a row of {y.shape[1]} targets? Pass it 1-D: {flattened(y, y_name)}"
    if X.ndim == 2 and X.shape[1] == y.shape[0]:
        return f"; samples as columns? Samples are rows here: pass {x_code}"
    return ""


def _backend(backend) -> Backend:
    """Batches' backend: a Backend, or its name. Chainer's iterator takes the batch size
    there: that is told where it goes."""
    if isinstance(backend, str):
        return get_backend(backend)
    if not isinstance(backend, Backend):
        raise TypeError(
            f"Batches(X, y, backend, batch_size=...) takes model.backend or a backend's "
            f"name third, not {backend!r}; the batch size goes by name, batch_size="
        )
    return backend


def _generator(rng) -> Generator:
    """``Batches``' shuffling generator from a seed (an int, as ``Sequential(seed=)``
    takes) or None (fresh entropy)."""
    try:
        return as_generator(rng)
    except (TypeError, ValueError) as exc:
        raise type(exc)(
            f"Batches(rng=) takes an nb.Generator (model.rng) or a seed, an int of at least "
            f"0, not {rng!r}"
        ) from None
