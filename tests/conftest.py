"""Every test that takes ``backend`` runs once per backend available here:
numpy and strict always, torch when it imports, cupy where a CUDA device answers."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

import nnbackend as nb
from nnbackend.backend import cuda_available

# The real MNIST and cat files: ../shared/data beside the project, or $NNBACKEND_DATA.
DATA_DIR = Path(
    os.environ.get("NNBACKEND_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data"
)

HAVE_TORCH = importlib.util.find_spec("torch") is not None
HAVE_CUDA = cuda_available()

BACKEND_PARAMS = [
    pytest.param("numpy", id="numpy"),
    pytest.param("strict", id="strict"),
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
            pytest.mark.skipif(not HAVE_CUDA, reason="no CUDA device answers (CuPy)"),
        ],
    ),
]
CPU_BACKENDS = [p for p in BACKEND_PARAMS if p.id != "cupy"]
# The CPU backends that actually run here, for tests that compare them with each other.
CPU_BACKEND_NAMES = ["numpy", "strict"] + (["torch"] if HAVE_TORCH else [])


@pytest.fixture(params=BACKEND_PARAMS)
def backend(request) -> nb.Backend:
    """The backend under test, float32."""
    return nb.get_backend(request.param)


@pytest.fixture
def backend64(backend) -> nb.Backend:
    """The backend under test, float64 (for gradient checks)."""
    return backend.with_dtype("float64")


@pytest.fixture(autouse=True)
def _clean_backend_choice(monkeypatch):
    """No test sees another's set_backend or a stray $NNBACKEND."""
    monkeypatch.delenv("NNBACKEND", raising=False)
    nb.reset_backend()
    yield
    nb.reset_backend()


@pytest.fixture
def data_dir() -> Path:
    """../shared/data beside the project, or skip."""
    if not DATA_DIR.is_dir():
        pytest.skip(f"real data not found at {DATA_DIR}")
    return DATA_DIR
