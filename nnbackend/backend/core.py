"""``Backend``: one array library on one device with a default float dtype, and how
code picks one at run time.

    >>> import nnbackend as nb
    >>> be = nb.get_backend("numpy")          # or "strict", "torch", "torch:cuda", "cupy", "auto"
    >>> x = be.asarray([[1.0, 2.0]])          # host data -> this backend, in be.dtype
    >>> be.to_numpy(x * 2)                    # -> numpy.ndarray
    array([[2., 4.]], dtype=float32)

Choosing (first match wins): an explicit ``name`` argument, ``use_backend(...)``
blocks, ``set_backend(...)``, the ``NNBACKEND`` environment variable (read when a
backend is first asked for, so setting it late still works), then ``"numpy"``.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import array_api_compat
import numpy as np

from nnbackend.backend.dtypes import dtype_name, float_dtype_name, standard_name
from nnbackend.backend.errors import (
    BackendMismatchError,
    BackendUnavailableError,
    class_name,
    type_name,
)
from nnbackend.backend.libraries import MAKERS, cuda_available, torch_cuda_available
from nnbackend.backend.transfers import count_transfer

BACKEND_NAMES = ("numpy", "strict", "torch", "cupy", "auto")
"""The backends ``get_backend`` knows by name (``"torch:cuda"``: torch on a device)."""
ENV_VAR = "NNBACKEND"
"""The environment variable that names the backend of code that names none."""
_ENVIRONMENT = object()  # what _current_choice gives when $NNBACKEND names the backend
DEFAULT_BACKEND = "numpy"


@dataclass(frozen=True, eq=False)
class Backend:
    """One array library on one device, with a default float dtype.

    ``xp`` is the library's Array API namespace (array-api-compat's wrapped one for
    NumPy, CuPy and PyTorch); code that holds a Backend calls only ``xp``'s standard
    functions. Backends are cached: ``get_backend("numpy") is get_backend("numpy")``.
    """

    name: str
    xp: Any
    device: Any
    dtype: Any
    array_types: tuple
    _to_host: Callable[[Any], np.ndarray]

    def __repr__(self) -> str:
        return f"Backend({self.name!r}, dtype={self.dtype_name!r}, device={self.device!r})"

    def __reduce__(self):
        # a copy (pickle, deepcopy) is this machine's backend of the same name and dtype:
        # the namespace module inside cannot be pickled, and need not be
        return get_backend, (self.name, self.dtype_name)

    @property
    def dtype_name(self) -> str:
        return dtype_name(self.xp, self.dtype)

    @property
    def has_views(self) -> bool:
        """Whether a reshaped slice of a contiguous array shares its memory, so that
        writing into one writes into the other (NumPy, CuPy, torch). The standard leaves
        it open, and array-api-strict does not promise it."""
        return self.name.split(":")[0] in ("numpy", "cupy", "torch")

    @property
    def has_inference_mode(self) -> bool:
        """Whether arrays made inside the library's inference mode refuse in-place
        updates outside it (torch's ``torch.inference_mode()``)."""
        return self.name.split(":")[0] == "torch"

    def get_dtype(self, dtype=None):
        """``dtype`` (a name, or any library's dtype object: ``np.int64``, ``torch.int64``)
        as this backend's dtype object; ``None`` gives the default float."""
        return self.dtype if dtype is None else getattr(self.xp, standard_name(dtype))

    def with_dtype(self, dtype) -> Backend:
        """This backend with another default float dtype ("float32" or "float64", or
        that dtype of any library: ``np.float64``, ``torch.float64``)."""
        return get_backend(self.name, dtype=float_dtype_name(dtype))

    def moved_to(self, backend, dtype=None) -> Backend:
        """The backend ``backend`` names, in ``dtype``; by default a Backend's own dtype,
        and for a name this one's (a float64 model moved by name stays float64)."""
        if dtype is None and not isinstance(backend, Backend):
            dtype = self.dtype_name
        return get_backend(backend, dtype=dtype)

    def asarray(self, data, dtype=None):
        """Host data (NumPy array, list, scalar) as an array of this backend.

        Floats become this backend's float dtype unless ``dtype`` says otherwise;
        integers and booleans keep theirs. The cast is done on the host, with NumPy,
        so the same host data gives bit-identical arrays on every backend.
        """
        if isinstance(data, self.array_types) or is_device_array(data):
            self.check_array(data, "the data")
            data = detached(data)
            if dtype is None and self.xp.isdtype(data.dtype, "real floating"):
                dtype = self.dtype
            return (
                data if dtype is None else self.xp.astype(data, self.get_dtype(dtype), copy=False)
            )
        host = np.asarray(data)
        if dtype is None and host.dtype.kind == "f":
            dtype = self.dtype_name
        if dtype is not None:
            host = host.astype(dtype_name(self.xp, self.get_dtype(dtype)), copy=False)
        if not host.dtype.isnative:  # a file's big-endian integers: strict and torch refuse
            host = host.astype(host.dtype.newbyteorder("="))
        if self.name.startswith("torch"):
            return self._torch_from_host(host)
        return self.xp.asarray(host, device=self.device)

    def _torch_from_host(self, host: np.ndarray):
        """torch refuses NumPy's reversed strides (X[::-1]), which are copied; read-only
        memory (a memmap) it shares, warning of writes that nnbackend never makes into
        its data."""
        if any(step < 0 for step in host.strides):
            host = np.ascontiguousarray(host)
        if host.flags.writeable:  # catch_warnings would reset Python's warn-once memory
            return self.xp.asarray(host, device=self.device)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "The given NumPy array is not writable")
            return self.xp.asarray(host, device=self.device)

    def to_numpy(self, array) -> np.ndarray:
        """``array`` as a NumPy array on the host (may share memory on CPU backends).

        On a GPU this waits for the device: call it to log, not on every step.
        """
        self.check_array(array)
        count_transfer()
        return self._to_host(array)

    def to_float(self, array) -> float:
        """A 0-d array as a Python float (a host transfer, like ``to_numpy``)."""
        return float(self.to_numpy(array))

    def to_floats(self, arrays: list) -> list[float]:
        """Many 0-d arrays as Python floats, in order, with one host transfer: on a device
        they are stacked per dtype (losses are floats, counts integers), a few kernels per
        dtype; NumPy's are read one by one (no transfer, 15x faster than stacking)."""
        for value in arrays:
            self.check_array(value)
        if not arrays:
            return []
        if self.name == "numpy":
            count_transfer()
            return [float(a) for a in arrays]
        xp = self.xp
        by_dtype: dict = {}
        for value in arrays:
            by_dtype.setdefault(value.dtype, []).append(value)
        # one dtype for the one transfer: float64 where there is one, which holds counts
        # past 2**24 (and float32 losses) exactly
        common = xp.float64 if self.supports("float64") else self.dtype
        stacked = [xp.astype(xp.stack(group), common) for group in by_dtype.values()]
        host = self.to_numpy(xp.concat(stacked) if len(stacked) > 1 else stacked[0]).tolist()
        columns, start = {}, 0
        for dtype, group in by_dtype.items():
            columns[dtype] = iter(host[start : start + len(group)])
            start += len(group)
        return [next(columns[value.dtype]) for value in arrays]

    def owns(self, array) -> bool:
        return isinstance(array, self.array_types) and array.device == self.device

    def check_array(self, array, what: str = "array") -> None:
        """Raise a clear error unless ``array`` lives on this backend and device."""
        if array is None:
            raise BackendMismatchError(f"{what} is None, not an array")
        if not isinstance(array, self.array_types):
            given = type_name(array)
            # another library's array comes through the host; a list or a number as it is
            x = "nb.to_numpy(x)" if array_api_compat.is_array_api_obj(array) else "x"
            raise BackendMismatchError(
                f"{what} is {'an' if given[0] in 'aeiou' else 'a'} {given}, but this works on "
                f"the {self.name!r} backend ({class_name(self.array_types[0])}). Move it "
                f"first, e.g. nb.get_backend({self.name!r}, dtype={self.dtype_name!r})"
                f".asarray({x}), or pass host NumPy data to fit/predict/evaluate, which "
                "move it for you."
            )
        device = array.device
        if device != self.device:  # to_device is the standard's; torch and CuPy lack it
            raise BackendMismatchError(
                f"{what} is on device {device!r}, but this works on {self.device!r} "
                f"(backend {self.name!r}). Move it with array_api_compat.to_device(x, "
                f"nb.get_backend({self.name!r}).device), or build the model there."
            )

    def free_memory(self) -> int | None:
        """Free bytes on a GPU device; None on CPU backends (host memory is theirs)."""
        base = self.name.split(":")[0]
        if base == "cupy":
            return self.device.mem_info[0]
        if base == "torch" and self.device.type == "cuda":
            import torch

            return torch.cuda.mem_get_info(self.device)[0]
        return None

    def supports(self, dtype: str) -> bool:
        """Whether this backend's device has the dtype named (e.g. "float64")."""
        return dtype in device_dtypes(self.xp, self.device)


def detached(array):
    """``array`` out of autograd's sight (a torch tensor that requires grad; any other
    as it is): nnbackend makes its own gradients, and a tracked input made torch track
    every weight it met (memory growing each step) and refuse the in-place updates."""
    return array.detach() if getattr(array, "requires_grad", False) else array


_DEVICE_DTYPES: dict = {}  # (library, device) -> its dtypes


def device_dtypes(xp, device) -> dict:
    """The dtypes ``device`` has, asked once per library and device (torch answers by
    making an array of each dtype there)."""
    key = (xp.__name__, str(device))
    if key not in _DEVICE_DTYPES:
        found = xp.__array_namespace_info__().dtypes(device=device)
        if not found:  # a device that made no array: not kept, it may answer later
            return found
        _DEVICE_DTYPES[key] = found
    return _DEVICE_DTYPES[key]


def is_device_array(data) -> bool:
    """An array of some library other than NumPy (which ``asarray`` must not copy
    silently). A torch tensor is one, though it has no ``__array_namespace__``."""
    return array_api_compat.is_array_api_obj(data) and not isinstance(data, np.ndarray | np.generic)


# --- making backends --------------------------------------------------------------

_cache: dict[tuple, Backend] = {}
_building = threading.RLock()


def _parse(name: str) -> tuple[str, str | None]:
    if not isinstance(name, str):
        raise TypeError(f"a backend is named by a string such as 'numpy', not {name!r}")
    base, _, device = name.strip().partition(":")
    base = base.lower()
    if base != "strict":  # array-api-strict's device names ("CPU_DEVICE") keep their case
        device = device.lower()
    if base not in BACKEND_NAMES:
        raise ValueError(
            f"unknown backend {name!r}: choose one of {', '.join(BACKEND_NAMES)} "
            "(with a device where it has several, e.g. 'torch:cuda', 'cupy:1')"
        )
    return base, device or None


def _resolve(name: str, dtype: str | None) -> Backend:
    base, device = _parse(name)
    if base == "auto":
        base, device = _auto(device)
    dtype = float_dtype_name(dtype)
    key = (base, device, dtype)
    if key not in _cache:
        with _building:  # threads asking first get one Backend, as the cache promises
            if key not in _cache:
                _cache[key] = _build(base, device, dtype)
    return _cache[key]


def _auto(device: str | None) -> tuple[str, str | None]:
    """What "auto" stands for: torch on the GPU where torch has CUDA (nnbackend's steps
    ran faster there than on CuPy in every workload measured, with as many kernels:
    torch spends less host time on each), else CuPy where a CUDA device answers, else
    NumPy. ``device``: the GPU's number, as in "auto:1"."""
    if device is not None and not (device.isascii() and device.isdigit()):
        raise ValueError(f"'auto' takes a GPU's number ('auto:1'), not {device!r}")
    if torch_cuda_available():
        return "torch", "cuda" if device is None else f"cuda:{device}"
    if cuda_available():
        return "cupy", device
    return "numpy", None


def _build(base: str, device, dtype: str) -> Backend:
    xp, device_obj, array_types, to_host = MAKERS[base](device)
    name = base if device is None else f"{base}:{device}"
    has = device_dtypes(xp, device_obj)
    if "int64" not in has and "float32" in has:  # array-api-strict's no_x64
        raise ValueError(
            f"backend {name!r} on device {device_obj!r} has no int64, which nnbackend's "
            f"labels and indices take: use another device ({base!r} alone, say)"
        )
    if dtype not in has:
        raise ValueError(
            f"backend {name!r} on device {device_obj!r} has no {dtype}: use float32 "
            "(dtype='float32'; --dtype float32 on the command line)"
        )
    return Backend(name, xp, device_obj, getattr(xp, dtype), array_types, to_host)


# --- choosing the backend ---------------------------------------------------------

_chosen: list[Backend] = []  # set_backend's choice: at most one entry
_scoped: contextvars.ContextVar[tuple] = contextvars.ContextVar("nnbackend_scoped", default=())


def get_backend(name: str | Backend | None = None, dtype: str | None = None) -> Backend:
    """The backend to use: ``name`` if given, else the innermost ``use_backend``,
    else ``set_backend``'s, else ``$NNBACKEND``, else NumPy.

    ``dtype`` ("float32" or "float64") overrides the default float dtype.
    """
    if isinstance(name, Backend):
        return name if dtype is None else name.with_dtype(dtype)
    if name is None:
        name = _current_choice()
        if isinstance(name, Backend):
            return get_backend(name, dtype)
        if name is _ENVIRONMENT:
            return _from_environment(dtype)
    return _resolve(name, dtype)


def _from_environment(dtype: str | None) -> Backend:
    """The backend ``$NNBACKEND`` names; an error about it says where the name came from
    (the user may have named no backend at all)."""
    value = os.environ[ENV_VAR]
    dtype = float_dtype_name(dtype)  # the caller's mistake, not the variable's
    try:
        return _resolve(value, dtype)
    except (ValueError, BackendUnavailableError) as exc:
        raise type(exc)(f"{exc} (the backend was named by ${ENV_VAR}={value!r})") from exc


def _current_choice():
    """The innermost ``use_backend``'s Backend, else ``set_backend``'s, else where to look."""
    if _scoped.get():
        return _scoped.get()[-1]
    if _chosen:
        return _chosen[0]
    return _ENVIRONMENT if os.environ.get(ENV_VAR, "").strip() else DEFAULT_BACKEND


def set_backend(name: str | Backend, dtype: str | None = None) -> Backend:
    """Make ``name`` (or a ``Backend``) the one for code that does not name one. Returns it."""
    backend = get_backend(name, dtype)  # fail now, not at first use
    _chosen[:] = [backend]
    return backend


def reset_backend() -> None:
    """Forget ``set_backend``'s choice (the environment variable applies again)."""
    _chosen.clear()


@contextlib.contextmanager
def use_backend(name: str | Backend, dtype: str | None = None):
    """Use ``name`` (or a ``Backend``) inside a ``with`` block, then restore what was there."""
    backend = get_backend(name, dtype)
    token = _scoped.set(_scoped.get() + (backend,))
    try:
        yield backend
    finally:
        _scoped.reset(token)
