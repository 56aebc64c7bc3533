"""The pytest plugin: a test that takes ``backend`` runs once per backend available.

pytest loads it by itself wherever nnbackend is installed (the ``pytest11`` entry
point ``nnbackend``); ``-p no:nnbackend`` turns it off.

    def test_my_layer(backend):  # numpy, strict, torch (if installed), cupy and torch:cuda (GPU)
        check_layer(MyLayer, (4, 3), backends=[backend.name])

``backend`` is float32, ``backend64`` the same backend in float64. Backends that
are not here are skipped with the reason; cupy and torch:cuda are marked ``gpu``
(``-m "not gpu"`` leaves them out). Loading this costs next to nothing: nnbackend,
torch and CuPy are imported only by the tests that ask for a backend.
"""

from __future__ import annotations

import importlib.util

import pytest

HAVE_STRICT = importlib.util.find_spec("array_api_strict") is not None
HAVE_TORCH = importlib.util.find_spec("torch") is not None
HAVE_CUPY = importlib.util.find_spec("cupy") is not None

BACKEND_PARAMS = [
    pytest.param("numpy", id="numpy"),
    pytest.param(
        "strict",
        id="strict",
        marks=pytest.mark.skipif(not HAVE_STRICT, reason="array-api-strict is not installed"),
    ),
    pytest.param(
        "torch",
        id="torch",
        marks=pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed"),
    ),
    pytest.param(
        "cupy",
        id="cupy",
        marks=[
            pytest.mark.gpu,
            pytest.mark.skipif(not HAVE_CUPY, reason="CuPy is not installed"),
        ],
    ),
    pytest.param(
        "torch:cuda",
        id="torch-cuda",
        marks=[
            pytest.mark.gpu,
            pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed"),
        ],
    ),
]
GPU_BACKEND_NAMES = ("cupy", "torch:cuda")
CPU_BACKENDS = [p for p in BACKEND_PARAMS if p.values[0] not in GPU_BACKEND_NAMES]
# The CPU backends that actually run here, for tests that compare them with each other.
CPU_BACKEND_NAMES = ["numpy"] + ["strict"] * HAVE_STRICT + ["torch"] * HAVE_TORCH


def pytest_configure(config) -> None:
    marker = "gpu: needs a CUDA device (CuPy or torch's CUDA build); skipped where none answers"
    config.addinivalue_line("markers", marker)


@pytest.fixture(params=BACKEND_PARAMS)
def backend(request):
    """The backend under test, float32."""
    import nnbackend as nb

    if request.param == "cupy" and not nb.backend.cuda_available():
        pytest.skip("no CUDA device answers (CuPy)")
    if request.param == "torch:cuda" and not nb.backend.torch_cuda_available():
        pytest.skip("torch sees no CUDA device")
    return nb.get_backend(request.param)


@pytest.fixture
def backend64(backend):
    """The backend under test, float64 (for gradient checks)."""
    return backend.with_dtype("float64")
