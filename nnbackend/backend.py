"""The seam between nnbackend and the array libraries.

Every other module speaks only the Array API standard. What the standard leaves out
is filled here, once: choosing a library at run time, moving arrays to and from the
host, seeded random numbers, and telling arrays of different libraries apart.

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
import importlib
import importlib.metadata
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

BACKEND_NAMES = ("numpy", "strict", "torch", "cupy", "auto")
ENV_VAR = "NNBACKEND"
DEFAULT_BACKEND = "numpy"
DEFAULT_DTYPE = "float32"

# What to install for each backend, named in errors.
_PACKAGES = {
    "numpy": ("numpy", "pip install numpy"),
    "strict": (
        "array_api_strict",
        "pip install array-api-strict  (or: pip install 'nnbackend[test]')",
    ),
    "torch": ("torch", "pip install torch  (or: pip install 'nnbackend[torch]')"),
    "cupy": (
        "cupy",
        "pip install 'nnbackend[gpu]' for CUDA 12, or pip install cupy-cuda13x for CUDA 13",
    ),
}

_STANDARD_DTYPES = (
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float32",
    "float64",
    "complex64",
    "complex128",
)


class BackendUnavailableError(RuntimeError):
    """The backend's package is missing, or it has no device to run on."""


class BackendMismatchError(TypeError):
    """Arrays of two libraries or devices met in one call."""


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

    @property
    def dtype_name(self) -> str:
        return dtype_name(self.xp, self.dtype)

    def get_dtype(self, dtype=None):
        """``dtype`` as this backend's dtype object; ``None`` gives the default float."""
        if dtype is None:
            return self.dtype
        if isinstance(dtype, str):
            return getattr(self.xp, dtype)
        return getattr(self.xp, np.dtype(dtype).name) if _is_numpy_dtype(dtype) else dtype

    def with_dtype(self, dtype) -> Backend:
        """This backend with another default float dtype ("float32" or "float64")."""
        name = dtype if isinstance(dtype, str) else dtype_name(self.xp, dtype)
        return get_backend(self.name, dtype=name)

    def asarray(self, data, dtype=None):
        """Host data (NumPy array, list, scalar) as an array of this backend.

        Floats become this backend's float dtype unless ``dtype`` says otherwise;
        integers and booleans keep theirs. The cast is done on the host, with NumPy,
        so the same host data gives bit-identical arrays on every backend.
        """
        if isinstance(data, self.array_types) or _is_device_array(data):
            self.check_array(data, "the data")
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
        return self.xp.asarray(host, device=self.device)

    def to_numpy(self, array) -> np.ndarray:
        """``array`` as a NumPy array on the host (may share memory on CPU backends).

        On a GPU this waits for the device: call it to log, not on every step.
        """
        self.check_array(array)
        _count_transfer()
        return self._to_host(array)

    def to_float(self, array) -> float:
        """A 0-d array as a Python float (a host transfer, like ``to_numpy``)."""
        return float(self.to_numpy(array))

    def owns(self, array) -> bool:
        return isinstance(array, self.array_types) and array.device == self.device

    def check_array(self, array, what: str = "array") -> None:
        """Raise a clear error unless ``array`` lives on this backend and device."""
        if not isinstance(array, self.array_types):
            raise BackendMismatchError(
                f"{what} is a {_type_name(array)}, but this works on the {self.name!r} backend "
                f"({_type_name_of(self.array_types[0])}). Move it first, e.g. "
                f"nb.get_backend({self.name!r}).asarray(nb.to_numpy(x)), or pass host NumPy "
                f"data to fit/predict/evaluate, which move it for you."
            )
        device = array.device
        if device != self.device:
            raise BackendMismatchError(
                f"{what} is on device {device!r}, but this works on {self.device!r} "
                f"(backend {self.name!r}). Move it with x.to_device(...) or build the model there."
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
        return dtype in _device_dtypes(self.xp, self.device)


def dtype_name(xp, dtype) -> str:
    """The standard's name of an ``xp`` dtype object ("float32", "int64", ...)."""
    for name in _STANDARD_DTYPES:
        if getattr(xp, name, None) == dtype:
            return name
    raise ValueError(f"{dtype!r} is not a dtype of the Array API standard")


def _is_numpy_dtype(dtype) -> bool:
    try:
        np.dtype(dtype)
    except TypeError:
        return False
    return True


def _device_dtypes(xp, device) -> dict:
    return xp.__array_namespace_info__().dtypes(device=device)


def _type_name(obj) -> str:
    return _type_name_of(type(obj))


def _type_name_of(cls) -> str:
    return f"{cls.__module__.split('.')[0]}.{cls.__name__}"


def _is_device_array(data) -> bool:
    """An array of some library other than NumPy (which ``asarray`` must not copy silently)."""
    return hasattr(data, "__array_namespace__") and not isinstance(data, np.ndarray | np.generic)


# --- making backends --------------------------------------------------------------


def _import(backend: str):
    module, how = _PACKAGES[backend]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendUnavailableError(
            f"backend {backend!r} needs the package {module!r}, which is not installed "
            f"({exc}). Install it with: {how}"
        ) from None


def _make_numpy(device):
    from nnbackend._numpy_compat import namespace as xp

    if device not in (None, "cpu"):
        raise ValueError(f"the numpy backend has only the device 'cpu', not {device!r}")
    return xp, "cpu", (np.ndarray, np.generic), np.asarray


def _make_strict(device):
    strict = _import("strict")
    device = strict.Device(device or "CPU_DEVICE")
    cpu = strict.Device("CPU_DEVICE")
    return strict, device, (strict._array_object.Array,), lambda a: np.asarray(a.to_device(cpu))


def _make_torch(device):
    torch = _import("torch")
    import array_api_compat.torch as xp

    device = torch.device(device or "cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailableError(
            "backend 'torch:cuda' asked for, but torch sees no CUDA device "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda}). "
            "Use 'torch' for the CPU, or install a CUDA build of torch on a machine with a GPU."
        )
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return xp, device, (torch.Tensor,), lambda a: a.detach().cpu().numpy()


def _make_cupy(device):
    cupy = _import("cupy")
    reason = _cupy_unusable_reason(cupy)
    if reason:
        raise BackendUnavailableError(
            f"backend 'cupy' asked for, but no CUDA device answers: {reason}. "
            "Use --backend numpy (or 'auto', which falls back to NumPy), or check the GPU "
            "driver with nvidia-smi and that the cupy-cudaXXx wheel matches its CUDA version."
        )
    import array_api_compat.cupy as xp

    return xp, cupy.cuda.Device(int(device or 0)), (cupy.ndarray,), cupy.asnumpy


def _cupy_unusable_reason(cupy) -> str | None:
    """Why CuPy cannot run here, or None. Checked up front: without a driver,
    ``import cupy`` works and only the first allocation fails."""
    try:
        if not cupy.cuda.is_available():
            return "cupy.cuda.is_available() is False (no GPU, or no/old NVIDIA driver)"
        cupy.zeros(1).sum().item()
    except Exception as exc:  # CUDARuntimeError and friends: report, never crash here
        return f"{type(exc).__name__}: {exc}"
    return None


_MAKERS = {"numpy": _make_numpy, "strict": _make_strict, "torch": _make_torch, "cupy": _make_cupy}
_cache: dict[tuple, Backend] = {}


def _parse(name: str) -> tuple[str, str | None]:
    base, _, device = name.strip().lower().partition(":")
    if base not in BACKEND_NAMES:
        raise ValueError(
            f"unknown backend {name!r}: choose one of {', '.join(BACKEND_NAMES)} "
            "(with a device where it has several, e.g. 'torch:cuda', 'cupy:1')"
        )
    return base, device or None


def _resolve(name: str, dtype: str | None) -> Backend:
    base, device = _parse(name)
    if base == "auto":
        base, device = ("cupy", device) if cuda_available() else ("numpy", None)
    dtype = dtype or DEFAULT_DTYPE
    key = (base, device, dtype)
    if key not in _cache:
        _cache[key] = _build(base, device, dtype)
    return _cache[key]


def _build(base: str, device, dtype: str) -> Backend:
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', not {dtype!r}")
    xp, device_obj, array_types, to_host = _MAKERS[base](device)
    name = base if device is None else f"{base}:{device}"
    if dtype not in _device_dtypes(xp, device_obj):
        raise ValueError(
            f"backend {name!r} on device {device_obj!r} has no {dtype}: use dtype='float32'"
        )
    return Backend(name, xp, device_obj, getattr(xp, dtype), array_types, to_host)


def cuda_available() -> bool:
    """Whether CuPy is installed and a CUDA device answers."""
    try:
        import cupy
    except ImportError:
        return False
    return _cupy_unusable_reason(cupy) is None


# --- choosing the backend ---------------------------------------------------------

_chosen: list[tuple[str, str | None]] = []  # set_backend's choice: at most one entry
_scoped: contextvars.ContextVar[tuple] = contextvars.ContextVar("nnbackend_scoped", default=())


def get_backend(name: str | Backend | None = None, dtype: str | None = None) -> Backend:
    """The backend to use: ``name`` if given, else the innermost ``use_backend``,
    else ``set_backend``'s, else ``$NNBACKEND``, else NumPy.

    ``dtype`` ("float32" or "float64") overrides the default float dtype.
    """
    if isinstance(name, Backend):
        return name if dtype is None else name.with_dtype(dtype)
    if name is None:
        name, chosen_dtype = _current_choice()
        dtype = dtype or chosen_dtype
    return _resolve(name, dtype)


def _current_choice() -> tuple[str, str | None]:
    if _scoped.get():
        return _scoped.get()[-1]
    if _chosen:
        return _chosen[0]
    return os.environ.get(ENV_VAR) or DEFAULT_BACKEND, None


def set_backend(name: str, dtype: str | None = None) -> Backend:
    """Make ``name`` the backend for code that does not name one. Returns it."""
    backend = _resolve(name, dtype)  # fail now, not at first use
    _chosen[:] = [(name, dtype)]
    return backend


def reset_backend() -> None:
    """Forget ``set_backend``'s choice (the environment variable applies again)."""
    _chosen.clear()


@contextlib.contextmanager
def use_backend(name: str, dtype: str | None = None):
    """Use ``name`` inside a ``with`` block, then restore what was there."""
    backend = _resolve(name, dtype)
    token = _scoped.set(_scoped.get() + ((name, dtype),))
    try:
        yield backend
    finally:
        _scoped.reset(token)


# --- arrays of unknown origin -----------------------------------------------------

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
                f"arrays of two backends met in one call: {_type_name(arrays[0])} and "
                f"{_type_name(other)}. Put both on one backend first, e.g. "
                "backend.asarray(nb.to_numpy(x))."
            )
    xp = _namespace_by_type.get(first)
    if xp is None and issubclass(first, np.ndarray | np.generic):
        from nnbackend._numpy_compat import namespace as xp

        _namespace_by_type[first] = xp
    if xp is None:
        import array_api_compat

        try:
            xp = array_api_compat.array_namespace(arrays[0])
        except TypeError:
            raise BackendMismatchError(
                f"expected an array, got {_type_name(arrays[0])}: wrap host data with "
                "backend.asarray(...) (or pass it to fit/predict, which do)"
            ) from None
        _namespace_by_type[first] = xp
    return xp


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
        raise BackendMismatchError(f"{_type_name(array)} is not an array of a known backend")
    if dtype is None:
        xp = namespace_of(array)
        own = dtype_name(xp, array.dtype)
        dtype = own if own in ("float32", "float64") else None
    return get_backend(name, dtype=dtype)


def to_numpy(array) -> np.ndarray:
    """Any backend's array as a NumPy array (a device-to-host copy on a GPU)."""
    if isinstance(array, np.ndarray | np.generic):
        return np.asarray(array)
    return backend_of(array).to_numpy(array)


# --- host transfers, counted ------------------------------------------------------


class TransferCounter:
    """How many device-to-host transfers nnbackend made while it was active."""

    def __init__(self):
        self.count = 0

    def __repr__(self) -> str:
        return f"TransferCounter(count={self.count})"


_counters: list[TransferCounter] = []


@contextlib.contextmanager
def count_host_transfers():
    """Count nnbackend's device-to-host transfers (each is a sync on a GPU).

    with nb.count_host_transfers() as transfers:
        model.fit(X, y, ...)
    print(transfers.count)
    """
    counter = TransferCounter()
    _counters.append(counter)
    try:
        yield counter
    finally:
        _counters.remove(counter)


def _count_transfer() -> None:
    for counter in _counters:
        counter.count += 1


# --- random numbers ---------------------------------------------------------------


class Generator:
    """Seeded random numbers drawn on the host with NumPy, then moved to a backend.

    One seed gives bit-identical numbers on every backend and device: the draw is
    float64 on the host, cast there to the dtype asked for, then copied over.

        rng = nb.Generator(0)
        W = rng.normal((2, 3), std=0.01)               # on the current backend
        order = rng.permutation(200)                   # host NumPy int64
    """

    def __init__(self, seed: int | None = None):
        self.seed = seed
        self._host = np.random.default_rng(seed)

    def __repr__(self) -> str:
        return f"Generator(seed={self.seed!r})"

    def normal(self, shape, std: float = 1.0, *, backend=None, dtype=None):
        """Normal(0, std**2) draws of ``shape`` on ``backend`` in ``dtype``."""
        return self._place(self._host.standard_normal(shape) * std, backend, dtype)

    def uniform(self, shape, low: float = 0.0, high: float = 1.0, *, backend=None, dtype=None):
        """Uniform draws in [low, high) of ``shape`` on ``backend`` in ``dtype``."""
        return self._place(self._host.uniform(low, high, shape), backend, dtype)

    def permutation(self, n: int) -> np.ndarray:
        """A random order of ``range(n)`` as a host NumPy int64 array."""
        return self._host.permutation(n)

    def host(self) -> np.random.Generator:
        """The NumPy generator underneath, for host-side draws of your own."""
        return self._host

    @property
    def state(self) -> dict:
        """The generator's state (JSON-serialisable), to save and resume."""
        return self._host.bit_generator.state

    @state.setter
    def state(self, value: dict) -> None:
        self._host.bit_generator.state = value

    @staticmethod
    def _place(host: np.ndarray, backend, dtype):
        backend = get_backend(backend)
        return backend.asarray(host, dtype=dtype or backend.dtype_name)


def as_generator(seed_or_rng) -> Generator:
    """A ``Generator`` from a seed, ``None`` (fresh entropy) or a Generator."""
    if isinstance(seed_or_rng, Generator):
        return seed_or_rng
    return Generator(seed_or_rng)


# --- what is installed ------------------------------------------------------------


def available_backends() -> list[str]:
    """Names of the backends that import and have a device here.

    "torch:cuda" is listed when torch sees a GPU; "cupy" when a CUDA device answers.
    """
    names = []
    for name in ("numpy", "strict", "torch", "torch:cuda", "cupy"):
        try:
            _resolve(name, DEFAULT_DTYPE)
        except (BackendUnavailableError, ValueError):
            continue
        names.append(name)
    return names


def describe_backends() -> list[dict]:
    """One row per backend nnbackend knows: whether it works here, its version,
    devices (GPU name and memory where there is one), and default dtype."""
    rows = []
    for name in ("numpy", "strict", "torch", "torch:cuda", "cupy"):
        row = {"backend": name, "package": _package_version(name.split(":")[0])}
        try:
            backend = _resolve(name, DEFAULT_DTYPE)
        except (BackendUnavailableError, ValueError) as exc:
            row.update(available=False, reason=str(exc).split(". ")[0])
        else:
            row.update(
                available=True,
                device=_device_description(backend),
                dtype=backend.dtype_name,
                float64=backend.supports("float64"),
            )
        rows.append(row)
    return rows


def _package_version(base: str) -> str | None:
    distributions = {
        "numpy": ["numpy"],
        "strict": ["array-api-strict"],
        "torch": ["torch"],
        "cupy": ["cupy-cuda13x", "cupy-cuda12x", "cupy-cuda11x", "cupy"],
    }[base]
    for dist in distributions:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _device_description(backend: Backend) -> str:
    base = backend.name.split(":")[0]
    if base == "cupy":
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(backend.device.id)
        free, total = backend.device.mem_info
        gpu = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        return f"cuda:{backend.device.id} {gpu}, {total / 2**30:.1f} GiB ({free / 2**30:.1f} free)"
    if base == "torch" and backend.device.type == "cuda":
        import torch

        props = torch.cuda.get_device_properties(backend.device)
        return f"{backend.device} {props.name}, {props.total_memory / 2**30:.1f} GiB"
    return str(backend.device)
