"""Arrays of unknown origin: which namespace and backend they belong to, and the
way any of them comes back to the host."""

from __future__ import annotations

import sys
from typing import Any

import array_api_compat
import numpy as np

from nnbackend.backend.core import Backend, get_backend
from nnbackend.backend.errors import BackendMismatchError, type_name

_namespace_by_type: dict[type, Any] = {}


def namespace_of(*arrays):
    """The Array API namespace of ``arrays``, which must all come from one library.

    Cached by type: a dictionary lookup, not ``array_namespace``'s full inspection,
    so layers may call it on every forward pass.
    """
    first = type(arrays[0])
    for other in arrays[1:]:
        if type(other) is not first and namespace_of(other) is not namespace_of(arrays[0]):
            raise BackendMismatchError(
                f"arrays of two backends met in one call: {type_name(arrays[0])} and "
                f"{type_name(other)}. Put both on one backend first, e.g. "
                "backend.asarray(nb.to_numpy(x))."
            )
    xp = _namespace_by_type.get(first)
    if xp is None:
        xp = _namespace_by_type[first] = _find_namespace(arrays[0])
    return xp


def _find_namespace(array):
    if isinstance(array, (np.ndarray, np.generic)):  # noqa: UP038 (torch.compile traces a tuple)
        from nnbackend.backend.numpy_fast import namespace

        return namespace
    try:
        return array_api_compat.array_namespace(array)
    except TypeError:
        raise BackendMismatchError(
            f"expected an array, got {type_name(array)}: wrap host data with "
            "backend.asarray(...) (or pass it to fit/predict, which do)"
        ) from None


def backend_of(array, dtype: str | None = None) -> Backend:
    """The backend that ``array`` belongs to (its library and device).

    ``dtype`` defaults to the array's own float dtype (else the default float)."""
    module = type(array).__module__.split(".")[0]
    if isinstance(array, np.ndarray | np.generic):
        name = "numpy"
    elif module == "array_api_strict":
        device = array.device._device
        name = "strict" if device == "CPU_DEVICE" else f"strict:{device}"
    elif module == "torch":
        name = "torch" if array.device.type == "cpu" else f"torch:{array.device}"
    elif module == "cupy":
        name = f"cupy:{array.device.id}"
    else:
        raise BackendMismatchError(f"{type_name(array)} is not an array of a known backend")
    if dtype is None:  # float16 and bfloat16 (no dtypes of the standard) take the default
        xp = namespace_of(array)
        own = [name for name in ("float32", "float64") if array.dtype == getattr(xp, name)]
        dtype = own[0] if own else None
    return get_backend(name, dtype=dtype)


def to_numpy(array) -> np.ndarray:
    """Any backend's array as a NumPy array (a device-to-host copy on a GPU)."""
    if isinstance(array, np.ndarray | np.generic):
        return np.asarray(array)
    return backend_of(array).to_numpy(array)


def host_memory(array) -> np.ndarray | None:
    """``array``'s own memory as a NumPy array (writing to one writes to the other), or
    None where it has none on the host: GPU arrays, and array-api-strict's, which keep
    theirs hidden. MPI sums such host arrays in place, with no copy."""
    if isinstance(array, np.ndarray):
        return array
    if type(array).__module__.split(".")[0] == "torch" and array.device.type == "cpu":
        return array.detach().numpy()
    return None


def holds_arrays(value) -> bool:
    """Whether ``value`` is an array, or a tuple holding one (what a layer or a loss
    kept of its last batch, which copies leave out)."""
    items = value if isinstance(value, tuple) else (value,)
    return any(array_api_compat.is_array_api_obj(item) for item in items)


def compact(array):
    """``array`` as a copy (pickle, deepcopy) should take it: a torch tensor cloned, for
    torch pickles a view's whole storage (each weight viewing a flat buffer wrote all of
    them), and multiprocessing's pickler moves a tensor's storage into shared memory,
    where a pool worker's fit wrote the model's own BatchNorm statistics in place."""
    return array.clone() if hasattr(array, "untyped_storage") else array


def made_in_inference_mode(array) -> bool:
    """Whether ``array`` is a tensor torch made inside ``torch.inference_mode()``, and
    the code now runs outside it, where torch refuses to update it in place."""
    if not getattr(array, "is_inference", lambda: False)():
        return False
    return not sys.modules["torch"].is_inference_mode_enabled()


def carried(array, backend: Backend):
    """``array`` (of any backend) on ``backend``, through the host: in its float dtype
    if float, else in its own."""
    host = to_numpy(array)
    return backend.asarray(host, dtype=backend.dtype_name if host.dtype.kind == "f" else None)
