"""The array libraries one by one: how to import each, find its device, and copy its
arrays to the host; what to install when one is missing.

Each maker returns ``(xp, device, array_types, to_host)`` for a device name (or None
for the library's default device) and fails with ``BackendUnavailableError`` naming the
package to install, never with an ImportError from deep inside.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys

import numpy as np

from nnbackend.backend.errors import BackendUnavailableError
from nnbackend.backend.threads import apply_to_torch

# What to install for each backend, named in errors.
PACKAGES = {
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

# The distributions that provide each backend's package, for `python -m nnbackend info`.
DISTRIBUTIONS = {
    "numpy": ["numpy"],
    "strict": ["array-api-strict"],
    "torch": ["torch"],
    "cupy": ["cupy-cuda13x", "cupy-cuda12x", "cupy-cuda11x", "cupy"],
}


def import_package(backend: str):
    module, how = PACKAGES[backend]
    try:
        return importlib.import_module(module)
    except Exception as exc:
        if isinstance(exc, ModuleNotFoundError) and exc.name == module:
            raise BackendUnavailableError(
                f"backend {backend!r} needs the package {module!r}, which is not installed "
                f"({exc}). Install it with: {how}"
            ) from None
        # there, but it cannot load: a CUDA library or DLL missing (CuPy: an ImportError)
        raise BackendUnavailableError(
            f"backend {backend!r} needs the package {module!r}, which is installed but "
            f"failed to import ({type(exc).__name__}: {exc}). Reinstall it with: {how}"
        ) from exc


def make_numpy(device):
    from nnbackend.backend.numpy_fast import namespace as xp

    if device not in (None, "cpu"):
        raise ValueError(f"the numpy backend has only the device 'cpu', not {device!r}")
    return xp, "cpu", (np.ndarray, np.generic), np.asarray


def make_strict(device):
    strict = import_package("strict")
    try:
        device = strict.Device(device or "CPU_DEVICE")
    except ValueError:
        devices = ", ".join(map(repr, strict.__array_namespace_info__().devices()))
        raise ValueError(
            f"array-api-strict has no device {device!r} (names keep their case): it has "
            f"{devices}; leave the device out for its CPU_DEVICE"
        ) from None
    cpu = strict.Device("CPU_DEVICE")
    return strict, device, (strict._array_object.Array,), lambda a: np.asarray(a.to_device(cpu))


def make_torch(device):
    torch = import_package("torch")
    import array_api_compat.torch as xp

    apply_to_torch()

    name = "torch" if device is None else f"torch:{device}"  # as the user gave it
    if device is not None and device.isdigit():  # "torch:0": a GPU's number alone
        raise ValueError(
            f"torch knows no device {device!r}: for GPU {device}, use 'torch:cuda:{device}'"
        )
    try:
        device = torch.device(device or "cpu")
    except RuntimeError as exc:
        raise ValueError(f"torch knows no device {device!r} ({exc})") from None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"nnbackend runs torch on 'cpu' or 'cuda', not {device.type!r}")
    if device.type == "cpu" and device.index is not None:
        raise ValueError(f"torch's CPU has no index: use 'torch' (or 'torch:cpu'), not {device}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailableError(
            f"backend {name!r} asked for, but torch sees no CUDA device "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda}). "
            "Use 'torch' for the CPU, or install a CUDA build of torch on a machine with a GPU."
        )
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    if device.type == "cuda":
        check_gpu_number(name, device.index, torch.cuda.device_count())
    return xp, device, (torch.Tensor,), _torch_to_host


def _torch_to_host(a):
    """A tensor as NumPy; bfloat16, which NumPy lacks, as float32 (which holds it exactly)."""
    a = a.detach().cpu()
    return (a.float() if a.dtype == sys.modules["torch"].bfloat16 else a).numpy()


def make_cupy(device):
    cupy = import_package("cupy")
    reason = cupy_unusable_reason(cupy)
    if reason:
        raise BackendUnavailableError(
            f"backend 'cupy' asked for, but no CUDA device answers: {reason}. "
            "Ask for 'numpy' (or 'auto', which falls back to it: backend='auto', "
            "--backend auto), or check the GPU driver with nvidia-smi and that the "
            "cupy-cudaXXx wheel matches its CUDA version."
        )
    import array_api_compat.cupy as xp

    if device is None:  # CuPy's current GPU: 0, unless nb.distributed.init() chose this rank's
        return xp, cupy.cuda.Device(), (cupy.ndarray,), cupy.asnumpy
    try:
        index = int(device)
    except ValueError:
        raise ValueError(f"a CuPy device is a GPU number ('cupy:1'), not {device!r}") from None
    check_gpu_number(f"cupy:{device}", index, cupy.cuda.runtime.getDeviceCount())
    # CuPy makes arrays (zeros, empty: the flat buffers, the kernels' outputs) and runs
    # kernels on its current GPU, whatever device= says: "cupy:1" makes GPU 1 current
    cupy.cuda.runtime.setDevice(index)
    return xp, cupy.cuda.Device(index), (cupy.ndarray,), cupy.asnumpy


def check_gpu_number(name: str, index: int, count: int) -> None:
    """Refuse a GPU that is not there: CUDA itself fails only at the first array, and
    torch's dtypes probe then finds none (a missing float32 was the message)."""
    if not 0 <= index < count:
        raise BackendUnavailableError(
            f"backend {name!r} asks for GPU {index}, but this machine has {count} "
            f"(numbered 0 to {count - 1}); nnbackend info lists them"
        )


def cupy_unusable_reason(cupy) -> str | None:
    """Why CuPy cannot run here, or None. Checked up front: without a driver,
    ``import cupy`` works and only the first allocation fails."""
    try:
        if not cupy.cuda.is_available():
            return "cupy.cuda.is_available() is False (no GPU, or no/old NVIDIA driver)"
        cupy.zeros(1).sum().item()
    except Exception as exc:  # CUDARuntimeError and friends: report, never crash here
        return f"{type(exc).__name__}: {exc}"
    return None


def cuda_available() -> bool:
    """Whether CuPy is installed and a CUDA device answers."""
    try:
        import cupy
    except ImportError:
        return False
    return cupy_unusable_reason(cupy) is None


def torch_cuda_available() -> bool:
    """Whether torch is installed with CUDA and sees a device. Imports torch only where
    it is installed (a second or so, once)."""
    try:
        if importlib.util.find_spec("torch") is None:
            return False
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # a broken install (a CUDA library missing): "auto" looks further
        return False


def package_version(base: str) -> str | None:
    for dist in DISTRIBUTIONS[base]:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


MAKERS = {"numpy": make_numpy, "strict": make_strict, "torch": make_torch, "cupy": make_cupy}
