"""The seam's errors, and the names of array types that its messages show."""

from __future__ import annotations


class BackendUnavailableError(RuntimeError):
    """The backend's package is missing, or it has no device to run on."""


class BackendMismatchError(TypeError):
    """Arrays of two libraries or devices met in one call."""


def type_name(obj) -> str:
    """``numpy.ndarray``, ``torch.Tensor``, ...: the library and the class of ``obj``."""
    return class_name(type(obj))


def class_name(cls) -> str:
    return f"{cls.__module__.split('.')[0]}.{cls.__name__}"
