"""Dtypes by the standard's names: the name of a library's dtype object, and what a
name or another library's dtype object means on a backend."""

from __future__ import annotations

import numpy as np

FLOAT_DTYPES = ("float32", "float64")
DEFAULT_DTYPE = "float32"
"""The float dtype of a backend asked for without one."""

STANDARD_DTYPES = (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float32", "float64", "complex64", "complex128",
)  # fmt: skip


def dtype_name(xp, dtype) -> str:
    """The standard's name of an ``xp`` dtype object ("float32", "int64", ...)."""
    for name in STANDARD_DTYPES:
        if getattr(xp, name, None) == dtype:
            return name
    raise ValueError(f"{dtype!r} is not a dtype of the Array API standard")


def standard_name(dtype) -> str:
    """The standard's name of a dtype given by name or as a dtype object of any library:
    "int64", ``np.int64``, ``np.dtype("int64")``, ``torch.int64``, strict's ``int64``."""
    name = dtype
    if not isinstance(dtype, str):
        name = np.dtype(dtype).name if _is_numpy_dtype(dtype) else str(dtype).rsplit(".", 1)[-1]
    if name not in STANDARD_DTYPES:
        raise ValueError(f"{dtype!r} is not a dtype of the Array API standard")
    return name


def float_dtype_name(dtype) -> str:
    """The name, "float32" or "float64", of a dtype given by name or as a dtype object."""
    if dtype is None:
        return DEFAULT_DTYPE
    try:
        name = standard_name(dtype)  # Python's float is NumPy's float64, as in asarray
    except ValueError:
        name = None
    if name not in FLOAT_DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64', not {dtype!r}")
    return name


def _is_numpy_dtype(dtype) -> bool:
    try:
        np.dtype(dtype)
    except (TypeError, ValueError):  # torch's, strict's; a dict or set
        return False
    return True
