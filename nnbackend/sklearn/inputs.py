"""What the estimators are handed, checked and put on the backend that computes.

Host data (NumPy arrays, lists, DataFrames) goes through scikit-learn's own checks
(``validate_data``), so it is refused or converted as every scikit-learn estimator
does, feature names included. Arrays of a device library (CuPy, torch, array-api-strict)
are computed where they live: they are checked here with the standard's functions and
never copied to the host, and what the estimator returns for them is an array of
that library. Targets are small and go to the host, where scikit-learn reads labels.
"""

from __future__ import annotations

from array_api_compat import is_array_api_obj
from sklearn import get_config
from sklearn.utils.validation import check_array, check_consistent_length, validate_data

from nnbackend.backend import Backend, BackendMismatchError, backend_of, get_backend, to_numpy
from nnbackend.data import as_array, check_in_range
from nnbackend.data_checks import check_inputs

#: Float dtypes kept as they come (others become the first), as scikit-learn's MLP does.
FLOAT_DTYPES = ("float64", "float32")


def is_device(X) -> bool:
    """An array of some library other than NumPy, to be computed where it lives.

    (``nnbackend.data.is_foreign`` looks for ``__array_namespace__``, which torch
    tensors do not have; array-api-compat knows them.)"""
    return is_array_api_obj(X) and type(X).__module__.split(".")[0] != "numpy"


def fit_inputs(est, X, y, *, reset: bool, backend: Backend | None, y_numeric: bool):
    """``(X on the backend, y on the host, the backend)`` for ``fit``.

    ``backend``: the fitted model's, when training goes on (warm start, partial_fit);
    None to choose one from ``est.backend``/``est.dtype`` and X.
    """
    if y is None:
        raise ValueError(f"{type(est).__name__} requires y to be passed, but the target y is None.")
    if is_device(X):
        backend = backend or _device_backend(est, X)
        X = device_X(est, X, backend, reset=reset)
        y = check_array(
            to_numpy(y) if is_device(y) else y,
            ensure_2d=False,
            dtype="numeric" if y_numeric else None,
            input_name="y",
        )
        check_consistent_length(X, y)
        return X, y, backend
    X, y = validate_data(
        est, X, y, reset=reset, multi_output=True, y_numeric=y_numeric, dtype=FLOAT_DTYPES
    )
    if y_numeric:  # multi_output=True keeps strings: "0.5" trained as a number, where
        y = check_array(y, ensure_2d=False, dtype="numeric", input_name="y")  # device X's refused
    backend = backend or get_backend(est.backend, dtype=est.dtype or X.dtype.name)
    check_in_range(X, backend.dtype_name)  # 1e39 into float32: inf, then "NaN or inf in X"
    return backend.asarray(X, dtype=backend.dtype_name), y, backend


def predict_input(est, X, method: str):
    """X for a fitted ``est``'s ``method``, on its model's backend and in its dtype."""
    backend = est.model_.backend
    _check_same_namespace(est, X, method)
    if is_device(X):
        return device_X(est, X, backend, reset=False)
    X = validate_data(est, X, reset=False, dtype=FLOAT_DTYPES)
    check_in_range(X, backend.dtype_name)  # else inf, and NaN predictions
    return backend.asarray(X, dtype=backend.dtype_name)


def output(result, X):
    """``result`` (on the model's backend) as the caller should get it: an array of X's
    own library for device input, a NumPy array for host input."""
    return result if is_device(X) else to_numpy(result)


def read_only_copy(array):
    """``array`` as a NumPy copy an edit in place is refused on: it would not reach
    the array itself (``est.coefs_[0][:] = 0`` did nothing)."""
    copy = to_numpy(array).copy()
    copy.flags.writeable = False
    return copy


def device_X(est, X, backend: Backend, *, reset: bool):
    """A device array checked as ``validate_data`` checks host data, in the backend's dtype."""
    X = as_array(X, "X")  # a sparse tensor refused; one autograd tracks, detached
    backend.check_array(X, "X")
    xp = backend.xp
    if X.ndim != 2:
        raise ValueError(
            f"Expected a 2D array of samples, got an array of shape {tuple(X.shape)}. "
            "Reshape your data: X.reshape(-1, 1) for a single feature, "
            "X.reshape(1, -1) for a single sample."
        )
    if not xp.isdtype(X.dtype, ("real floating", "integral", "bool")):
        raise ValueError(f"Complex data not supported: X has dtype {X.dtype}")
    for count, what in ((X.shape[0], "sample"), (X.shape[1], "feature")):
        if count < 1:  # in check_array's words, as host data is told
            raise ValueError(
                f"Found array with 0 {what}(s) (shape={tuple(X.shape)}) while a minimum "
                f"of 1 is required by {type(est).__name__}."
            )
    if reset:
        est.n_features_in_ = X.shape[1]
        est.__dict__.pop("feature_names_in_", None)
    elif X.shape[1] != est.n_features_in_:
        raise ValueError(
            f"X has {X.shape[1]} features, but {type(est).__name__} is expecting "
            f"{est.n_features_in_} features as input."
        )
    if X.dtype != backend.dtype:
        check_in_range(X, backend.dtype_name)
        X = xp.astype(X, backend.dtype)
    check_inputs(X, None)
    return X


def _device_backend(est, X) -> Backend:
    """Where device data trains: where it lives (``backend`` None or "auto" follow it;
    another name is an error, not a silent copy), in ``est.dtype`` or X's float dtype."""
    own = backend_of(X)
    if est.backend not in (None, "auto") and not get_backend(est.backend).owns(X):
        raise BackendMismatchError(
            f"X is an array of backend {own.name!r}, but {type(est).__name__} was given "
            f"backend={est.backend!r}. Pass host data (nb.to_numpy(X)) to train on "
            f"{est.backend!r}, or backend=None to train where X lives."
        )
    dtype = est.dtype or _float_dtype_of(own, X)
    return get_backend(own.name, dtype=dtype)


def _float_dtype_of(backend: Backend, X) -> str:
    """X's float dtype; integers and booleans become float64 (float32 where the device
    has no float64), as scikit-learn turns them into float64."""
    xp = backend.xp
    if X.dtype == xp.float32:
        return "float32"
    return "float64" if backend.supports("float64") else "float32"


def _check_same_namespace(est, X, method: str) -> None:
    """With scikit-learn's ``array_api_dispatch`` on, everything follows the arrays fit
    was given: a predict on arrays of another library is an error there, as in
    scikit-learn. (Without it, host data is always accepted and comes back on the host.)"""
    if not get_config()["array_api_dispatch"]:
        return
    given = input_kind(X)
    if given != est._fit_input:
        raise ValueError(
            f"Inputs passed to {type(est).__name__}.{method}() must use the same namespace "
            "and the same device as those passed to fit() (array_api_dispatch is on): "
            f"fit() had {est._fit_input or 'NumPy'}, {method}() has {given or 'NumPy'}."
        )


def input_kind(X) -> str | None:
    """The backend name of device input, None for host data (what ``fit`` records)."""
    return backend_of(X).name if is_device(X) else None
