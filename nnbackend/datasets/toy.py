"""The tutorials' small data sets: scikit-learn's generators and digits, the four
people, and helpers for labels and scaling. All host NumPy.

scikit-learn is imported inside the functions that use it: it takes most of a second
to import, and the file loaders do not need it.
"""

from __future__ import annotations

import numbers

import numpy as np

from nnbackend.backend import Generator
from nnbackend.checks import boolean, finite_float, integer
from nnbackend.data import first_index


def make_moons(n_samples: int = 200, noise: float = 0.2, seed: int = 0):
    """Two interleaving half circles: X (n, 2) float64, y (n,) int64 in {0, 1}."""
    from sklearn import datasets as sk

    _check_draw(n_samples, noise, seed)
    X, y = sk.make_moons(n_samples=n_samples, noise=noise, random_state=seed)
    return X.astype(np.float64), y.astype(np.int64)


def make_circles(n_samples: int = 200, noise: float = 0.1, factor: float = 0.5, seed: int = 0):
    """A small circle inside a large one: X (n, 2) float64, y (n,) int64 in {0, 1}."""
    from sklearn import datasets as sk

    _check_draw(n_samples, noise, seed)
    X, y = sk.make_circles(n_samples=n_samples, noise=noise, factor=factor, random_state=seed)
    return X.astype(np.float64), y.astype(np.int64)


def make_blobs(
    n_samples: int = 200,
    centers: int | None = None,
    n_features: int = 2,
    cluster_std: float = 1.0,
    seed: int = 0,
):
    """Gaussian blobs: X (n, n_features) float64, y (n,) int64 in [0, centers).
    ``centers``: how many (3 where ``n_samples`` is a number), or their coordinates;
    ``n_samples`` a list of counts draws one blob of each."""
    from sklearn import datasets as sk

    features = n_features
    if isinstance(centers, numbers.Number):
        integer(centers, "centers", low=1, high=10**6)
    elif np.ndim(centers) == 2:  # the centres themselves: as many features as they have
        features = np.shape(centers)[1]
    _check_draw(n_samples, cluster_std, seed, spread="cluster_std", features=features)
    X, y = sk.make_blobs(
        n_samples=n_samples,
        centers=centers,
        n_features=n_features,
        cluster_std=cluster_std,
        random_state=seed,
    )
    return X.astype(np.float64), y.astype(np.int64)


def _check_draw(n_samples, noise, seed, spread: str = "noise", features: int = 2) -> None:
    """The library's words for a number scikit-learn would refuse (as ``random_state``),
    and no draw of 10**12 values before a MemoryError; a count or spread may be given
    per class (a list), a seed as None or a RandomState, a noise as None (none), as
    scikit-learn takes them."""
    if not isinstance(n_samples, tuple | list) and np.ndim(n_samples) != 1:
        total = integer(n_samples, "n_samples", low=1, high=10**8)
    else:  # per class: each a count, together one draw's
        counts = [integer(n, "each of n_samples", low=0, high=10**8) for n in n_samples]
        if not 1 <= (total := sum(counts)) <= 10**8:
            raise ValueError(f"n_samples must add up to 1 to 100000000, got {total}")
    if total * (features := integer(features, "n_features", low=1)) > 2 * 10**8:
        raise ValueError(
            f"n_samples x n_features may be at most 200000000 values, got {total} x {features}"
        )
    if isinstance(noise, numbers.Number):
        finite_float(noise, spread, low=0)
    elif noise is None and spread == "noise":  # scikit-learn's: no noise
        pass
    elif not (np.all(np.isfinite(np.asarray(noise, float))) and np.all(np.asarray(noise) >= 0)):
        raise ValueError(f"{spread} must be finite numbers of at least 0, got {noise!r}")
    if seed is not None and not isinstance(seed, np.random.RandomState):
        integer(seed, "seed", low=0, high=2**32 - 1)  # random_state takes no more


def _given_scale(mean, std, X):
    """The training set's mean and std, held to X's features and to X's dtype's range."""
    with np.errstate(over="ignore"):  # past float32's range: inf, refused below
        mean, std = np.asarray(mean, dtype=X.dtype), np.asarray(std, dtype=X.dtype)
    for name, values in (("mean", mean), ("std", std)):
        if values.shape not in ((), X.shape[1:]):
            raise ValueError(
                f"standardize's {name} has shape {values.shape}, X's samples {X.shape[1:]}: "
                "give the training set's, one value per feature"
            )
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and np.all(std >= 0)):
        raise ValueError(
            f"standardize's mean and std must be finite in {X.dtype}, and std at least 0"
        )
    return mean, std


def _unmasked(data, what: str, helper: str) -> np.ndarray:
    """``data`` as a NumPy array, a masked one refused where it masks entries:
    ``np.asarray`` drops the mask, and the values under it (a file's -999) pass as data."""
    if np.ma.is_masked(data):
        raise ValueError(
            f"{helper}: {what} is a masked array with masked entries: fill them "
            f"({what}.filled(value)) or drop those samples first"
        )
    return np.asarray(data)


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
    X float32 in [0, 1], (N, 64), or images (N, 1, 8, 8) with ``flatten=False``;
    y int64 (N,).
    """
    from sklearn import datasets as sk

    flatten = boolean(flatten, "load_digits flatten")
    finite_float(test_fraction, "load_digits test_fraction", low=0, high=1, high_open=True)
    digits = sk.load_digits()
    X = (digits.images / 16.0).astype(np.float32)  # pixels are 0..16
    X = X.reshape(X.shape[0], -1) if flatten else X[:, None, :, :]
    y = digits.target.astype(np.int64)
    return train_val_split(X, y, val_fraction=test_fraction, seed=seed)


# --- helpers -------------------------------------------------------------------------


def one_hot(y, n_classes: int | None = None, dtype="float32") -> np.ndarray:
    """Integer labels (N,) -> one-hot rows (N, n_classes) on the host.

    ``n_classes`` defaults to ``max(y) + 1``. Float labels are accepted when they hold
    whole numbers (1.0, not 1.5); bools are 0 and 1, as ``fit`` takes them.
    """
    y = _unmasked(y, "y", "one_hot")
    if y.dtype.kind == "b":
        y = y.astype(np.int64)
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
    n_classes = integer(n_classes, "one_hot n_classes", low=0)
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
    for given, name in ((X, "X"), (y, "y")):
        if np.ndim(given) == 0:  # y=None (train_test_split's X alone), or one value
            raise ValueError(f"train_val_split takes X and y of N rows each; {name} is {given!r}")
    X, y = _unmasked(X, "X", "train_val_split"), _unmasked(y, "y", "train_val_split")
    n = X.shape[0]
    if y.shape[0] != n:
        raise ValueError(f"X has {n} samples but y has {y.shape[0]}")
    val_fraction = finite_float(val_fraction, "val_fraction", low=0, high=1, high_open=True)
    if n == 0:
        raise ValueError("cannot split an empty dataset (0 samples)")
    n_val = round(n * val_fraction)
    if val_fraction > 0 and n_val in (0, n):
        raise ValueError(
            f"val_fraction={val_fraction} of {n} samples leaves "
            f"{'none to validate on' if n_val == 0 else 'none to train on'}: "
            "give a larger fraction, more samples, or 0 for no split"
        )
    order = Generator(seed).permutation(n)
    val, train = order[:n_val], order[n_val:]
    return (X[train], y[train]), (X[val], y[val])


def standardize(X, mean=None, std=None):
    """Scale each feature (column) to zero mean and unit standard deviation.

    X is (N, features). With ``mean`` and ``std`` left out they are computed from X;
    pass the training set's to scale a validation or test set the same way. A feature
    constant up to rounding (StandardScaler's bound) is left unscaled (std taken as 1).
    X that mean and std come from must be finite: impute NaN first.
    Returns ``(X_scaled, mean, std)``; mean and std have shape (features,).
    """
    if np.ndim(X) == 0:
        raise ValueError(f"standardize takes X of N rows, not one value ({X!r})")
    X = _unmasked(X, "X", "standardize")
    if X.dtype.kind != "f":
        X = X.astype(np.float64)
    if (mean is None) != (std is None):
        raise ValueError("pass both mean and std (from the training set), or neither")
    if mean is None:
        if X.shape[0] == 0:
            raise ValueError("cannot standardize an empty dataset (0 samples)")
        if not np.all(np.isfinite(X)):  # one NaN made its whole column NaN
            bad = ~np.isfinite(X)
            raise ValueError(
                f"standardize: X holds {int(bad.sum())} NaN or inf values (the first at index "
                f"{first_index(bad)}), which would make their columns' mean and std NaN: "
                "impute them first (sklearn.impute.SimpleImputer), or drop those samples"
            )
        # in float64: NumPy adds a column's rows one after another, and in float32 the
        # sum of half a million years drifts by years
        mean, std = X.mean(axis=0, dtype=np.float64), X.std(axis=0, dtype=np.float64)
        # a column constant up to rounding has a std of rounding (ten 0.1s: 1e-17),
        # which would scale a test value 0.1 away to 7e15; the bound on a float64
        # variance's rounding is scikit-learn's (StandardScaler's constant features)
        n, eps = X.shape[0], np.finfo(np.float64).eps
        var = std**2
        std = np.where(var <= n * eps * var + (n * mean * eps) ** 2, 0.0, std)
    else:
        mean, std = _given_scale(mean, std, X)
    mean, std = np.asarray(mean, dtype=X.dtype), np.asarray(std, dtype=X.dtype)
    std = np.where(std == 0, np.ones_like(std), std)
    return (X - mean) / std, mean, std
