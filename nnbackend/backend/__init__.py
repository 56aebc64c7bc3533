"""The seam between nnbackend and the array libraries.

Every other module speaks only the Array API standard. What the standard leaves out
is filled here, once:

    core.py        Backend (library + device + float dtype) and choosing one at run time
    dtypes.py      dtypes by the standard's names, from any library's dtype objects
    libraries.py   importing NumPy, array-api-strict, torch, CuPy; what to install
    arrays.py      the namespace and backend of an array; any array back to the host
    transfers.py   device-to-host copies, counted
    random.py      seeded draws that are the same on every backend
    philox.py      the counter-based generator behind the device draws
    fastpaths.py   native versions of standard-only code: conv windows, batch rows
    kernels.py     fused kernels for the training step's hot spots (kernels_numpy/_cupy/_torch)
    inventory.py   what works on this machine
    numpy_fast.py  the NumPy namespace with its hottest functions made lean
    threads.py     how many CPU threads NumPy's BLAS and torch use
    blas.py        which kernels NumPy's BLAS runs, and when the CPU has better ones
    cuda.py        NCCL, streams and events through CuPy, for summing across processes
"""

from nnbackend.backend.arrays import backend_of, host_memory, namespace_of, to_numpy
from nnbackend.backend.core import (
    BACKEND_NAMES,
    ENV_VAR,
    Backend,
    get_backend,
    reset_backend,
    set_backend,
    use_backend,
)
from nnbackend.backend.dtypes import DEFAULT_DTYPE, dtype_name
from nnbackend.backend.errors import BackendMismatchError, BackendUnavailableError
from nnbackend.backend.fastpaths import fast_paths
from nnbackend.backend.inventory import available_backends, describe_backends
from nnbackend.backend.kernels import fused
from nnbackend.backend.libraries import cuda_available, torch_cuda_available
from nnbackend.backend.random import Generator, as_generator
from nnbackend.backend.threads import get_num_threads, limit_threads, set_num_threads
from nnbackend.backend.transfers import count_host_transfers

__all__ = [
    "BACKEND_NAMES",
    "DEFAULT_DTYPE",
    "ENV_VAR",
    "Backend",
    "BackendMismatchError",
    "BackendUnavailableError",
    "Generator",
    "as_generator",
    "available_backends",
    "backend_of",
    "count_host_transfers",
    "cuda_available",
    "describe_backends",
    "dtype_name",
    "fast_paths",
    "fused",
    "get_backend",
    "get_num_threads",
    "host_memory",
    "limit_threads",
    "namespace_of",
    "reset_backend",
    "set_backend",
    "set_num_threads",
    "to_numpy",
    "torch_cuda_available",
    "use_backend",
]
