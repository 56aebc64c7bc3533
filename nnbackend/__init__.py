"""nnbackend: neural networks from scratch on the Array API standard.

One source runs on NumPy, CuPy (CUDA), PyTorch and array-api-strict; the backend is
picked at run time:

    import nnbackend as nb
    nb.set_backend("cupy")              # or NNBACKEND=cupy, or --backend cupy

    model = nb.Sequential([nb.layers.Dense(2, 3), nb.layers.Tanh(), nb.layers.Dense(3, 2)])
    model.fit(X, y, loss="cross_entropy", optimizer=nb.optim.SGD(lr=0.1))

    nb.set_num_threads(1)               # tiny nets on a shared CPU: one thread is faster
"""

from nnbackend import (
    callbacks,
    cli,
    data,
    datasets,
    distributed,
    functional,
    gradcheck,
    init,
    layers,
    losses,
    metrics,
    optim,
    plot,
    registry,
    training,
)
from nnbackend.backend import (
    Backend,
    BackendMismatchError,
    BackendUnavailableError,
    Generator,
    available_backends,
    count_host_transfers,
    get_backend,
    get_num_threads,
    limit_threads,
    reset_backend,
    set_backend,
    set_num_threads,
    to_numpy,
    use_backend,
)
from nnbackend.history import History
from nnbackend.io import CheckpointError, NotFiniteError, load, restore, save
from nnbackend.model import Sequential
from nnbackend.registry import register

__version__ = "0.1.0"


def __getattr__(name: str):
    """``nb.sklearn`` and ``nb.testing`` load on first use: importing nnbackend does not
    import scikit-learn, nor the checkers."""
    if name in ("sklearn", "testing"):
        import importlib

        return importlib.import_module(f"nnbackend.{name}")
    raise AttributeError(f"module 'nnbackend' has no attribute {name!r}")


__all__ = [
    "Backend",
    "BackendMismatchError",
    "BackendUnavailableError",
    "CheckpointError",
    "Generator",
    "History",
    "NotFiniteError",
    "Sequential",
    "available_backends",
    "callbacks",
    "cli",
    "count_host_transfers",
    "data",
    "datasets",
    "distributed",
    "functional",
    "get_backend",
    "get_num_threads",
    "gradcheck",
    "init",
    "layers",
    "limit_threads",
    "load",
    "losses",
    "metrics",
    "optim",
    "plot",
    "register",
    "registry",
    "reset_backend",
    "restore",
    "save",
    "set_backend",
    "set_num_threads",
    "to_numpy",
    "training",
    "use_backend",
]
