"""What works on this machine: the backends that import and have a device, with
their versions and devices (``python -m nnbackend info``)."""

from __future__ import annotations

from nnbackend.backend.core import Backend, _resolve
from nnbackend.backend.dtypes import DEFAULT_DTYPE
from nnbackend.backend.errors import BackendUnavailableError
from nnbackend.backend.libraries import package_version

KNOWN = ("numpy", "strict", "torch", "torch:cuda", "cupy")


def available_backends() -> list[str]:
    """Names of the backends that import and have a device here.

    "torch:cuda" is listed when torch sees a GPU; "cupy" when a CUDA device answers.
    """
    names = []
    for name in KNOWN:
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
    for name in KNOWN:
        row = {"backend": name, "package": package_version(name.split(":")[0])}
        try:
            backend = _resolve(name, DEFAULT_DTYPE)
        except (BackendUnavailableError, ValueError) as exc:
            row.update(available=False, reason=str(exc))  # what is wrong, and what to do
        else:
            row.update(
                available=True,
                device=_device_description(backend),
                dtype=backend.dtype_name,
                float64=backend.supports("float64"),
            )
        rows.append(row)
    return rows


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
