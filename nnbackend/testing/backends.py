"""Which backends a check runs on, running a function on each, and proving that code
makes no device-to-host transfer.

    assert_backend_parity(lambda x: nb.functional.softmax(x), X)   # X: host NumPy
    with no_host_sync():
        model.train_step(xb, yb, loss, optimizer)
"""

from __future__ import annotations

import contextlib
import importlib.util

import numpy as np

from nnbackend.backend import (
    Backend,
    count_host_transfers,
    cuda_available,
    get_backend,
    to_numpy,
    torch_cuda_available,
)
from nnbackend.testing.report import ULPS, Report, close

#: array-api-strict's simulated devices: new arrays made without ``device=`` land on
#: the default one and then fail to mix; ``no_float64`` has no float64 at all.
STRICT_DEVICES = ("strict:device1", "strict:device2")
STRICT_NO_FLOAT64 = "strict:no_float64"


def available_names() -> list[str]:
    """numpy and strict always (strict when array-api-strict is installed), torch when it
    is installed, cupy and torch:cuda where a CUDA device answers them."""
    names = ["numpy"]
    for name, module in (("strict", "array_api_strict"), ("torch", "torch")):
        if importlib.util.find_spec(module) is not None:
            names.append(name)
    if cuda_available():
        names.append("cupy")
    if "torch" in names and torch_cuda_available():
        names.append("torch:cuda")
    return names


def resolve(backends="available", dtype: str = "float64") -> list[Backend]:
    """``backends`` ("available", or names / Backends) as Backends in ``dtype``; the
    first is the reference that the others are compared with."""
    names = available_names() if backends == "available" else backends
    if isinstance(names, str | Backend):
        names = [names]
    if not names:
        raise ValueError("backends is empty: name at least one, e.g. ['numpy', 'strict']")
    return [get_backend(name, dtype=dtype) for name in names]


def has_strict(backends: list[Backend]) -> bool:
    return any(b.name.split(":")[0] == "strict" for b in backends)


def to_host(result):
    """An array, or tuples, lists and dicts of arrays (and numbers), as NumPy arrays."""
    if isinstance(result, dict):
        return {k: to_host(v) for k, v in result.items()}
    if isinstance(result, list | tuple):
        return [to_host(v) for v in result]
    if isinstance(result, int | float | bool):
        return np.asarray(result)
    return np.array(to_numpy(result))  # a copy: later steps must not change it


def flatten(result, prefix: str = "result") -> dict[str, np.ndarray]:
    """``to_host``'s output as {"result[0]['W']": array, ...}, for comparing."""
    if isinstance(result, dict):
        items = {f"{prefix}[{k!r}]": v for k, v in result.items()}
    elif isinstance(result, list):
        items = {f"{prefix}[{i}]": v for i, v in enumerate(result)}
    else:
        return {prefix: result}
    return {name: a for key, v in items.items() for name, a in flatten(v, key).items()}


def compare(
    report: Report, check: str, backend: str, got: dict, want: dict, ulps, hint: str = ""
) -> None:
    """One row: every array of ``got`` against ``want`` (flattened results); ``hint``,
    the likely cause, joins a failure's detail."""
    if set(got) != set(want):
        report.add(check, backend, f"gives {sorted(got)} where the reference gives {sorted(want)}")
        return
    problems = [f"{k}: {p}" for k in want if (p := close(got[k], want[k], ulps)) is not None]
    problems += [hint] if problems and hint else []
    report.add(check, backend, "; ".join(problems) or None, f"within {ulps} ulps")


def assert_backend_parity(
    fn, *host_args, backends="available", dtype: str = "float64", ulps: float = ULPS
) -> dict:
    """Run ``fn(*args)`` on every backend, the host (NumPy) arguments moved there first
    (floats in ``dtype``), and compare the results (arrays, numbers, or lists, tuples
    and dicts of them) with the first backend's, to ``ulps`` units in the last place of
    each array's largest finite value (inf and NaN must be in the same places). Raises
    ``CheckFailed`` with a table of what differed where; returns {backend name: result
    on the host}.
    """
    chosen = resolve(backends, dtype)
    report = Report(f"assert_backend_parity({getattr(fn, '__name__', fn)})")
    results = {}
    for backend in chosen:
        with report.checking("runs", backend.name):
            args = [  # copies: numpy's would be the caller's own, for the next backend
                backend.asarray(np.array(a)) if isinstance(a, np.ndarray) else a for a in host_args
            ]
            results[backend.name] = to_host(fn(*args))
    reference = chosen[0].name
    if reference in results:
        want = flatten(results[reference])
        for name, result in results.items():
            if name != reference:
                compare(report, "parity", name, flatten(result), want, ulps)
    report.raise_if_failed()
    return results


class HostSyncError(AssertionError):
    """A device-to-host transfer happened inside ``no_host_sync()``."""


@contextlib.contextmanager
def no_host_sync():
    """Fail when nnbackend copies an array to the host inside the block (on a GPU each
    such copy waits for the device). It counts the seam's transfers, ``to_numpy`` and
    ``to_float`` on every backend; a ``float(x)`` or ``x.get()`` of your own goes
    around the seam and is not seen. On NumPy, ``nb.to_numpy`` of an array cannot tell
    the model's arrays from host data and is not counted (``backend.to_numpy`` is): run
    such a check on "strict" or "torch", where every array is the backend's.

        with nb.testing.no_host_sync():
            model.train_step(xb, yb, loss, optimizer)
    """
    with count_host_transfers() as transfers:
        yield transfers
    if transfers.count:
        raise HostSyncError(
            f"{transfers.count} device-to-host transfer(s) inside no_host_sync(): something "
            "called to_numpy/to_float (or float() of a device array through the seam). "
            "Keep values on the device (a 0-d array) and read them after the block."
        )
