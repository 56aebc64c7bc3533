"""nnbackend: neural networks from scratch on the Array API standard.

One source runs on NumPy, CuPy (CUDA), PyTorch and array-api-strict; the backend is
picked at run time:

    import nnbackend as nb
    nb.set_backend("cupy")              # or NNBACKEND=cupy, or --backend cupy
"""

from nnbackend.backend import (
    Backend,
    BackendMismatchError,
    BackendUnavailableError,
    Generator,
    available_backends,
    count_host_transfers,
    get_backend,
    reset_backend,
    set_backend,
    to_numpy,
    use_backend,
)

__version__ = "0.1.0"

__all__ = [
    "Backend",
    "BackendMismatchError",
    "BackendUnavailableError",
    "Generator",
    "available_backends",
    "count_host_transfers",
    "get_backend",
    "reset_backend",
    "set_backend",
    "to_numpy",
    "use_backend",
]
