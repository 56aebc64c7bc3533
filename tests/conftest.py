"""Every test that takes ``backend`` (or ``backend64``) runs once per backend available
here: numpy and strict always, torch when it imports, cupy and torch:cuda where a CUDA
device answers them.
Those fixtures come from nnbackend's own pytest plugin (``nnbackend.testing.pytest_plugin``,
loaded through its entry point), the one users' test suites get too."""

from __future__ import annotations

import os
from pathlib import Path

import array_api_strict
import pytest

import nnbackend as nb
from nnbackend.backend import cuda_available, kernels
from nnbackend.testing import pytest_plugin
from nnbackend.testing.pytest_plugin import (  # noqa: F401 - the tests import them from here
    BACKEND_PARAMS,
    CPU_BACKEND_NAMES,
    CPU_BACKENDS,
    HAVE_TORCH,
)

# The real MNIST and cat files: ../shared/data beside the project, or $NNBACKEND_DATA.
DATA_DIR = Path(
    os.environ.get("NNBACKEND_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data"
)

#: what a user may have exported, that tests of the defaults must not see
USERS_SWITCHES = (
    "NNBACKEND", "NNBACKEND_FUSED", "NNBACKEND_FAST_PATHS", "NNBACKEND_MPI",
    "NNBACKEND_TIMEOUT", "NNBACKEND_MAX_STEPS",
)  # fmt: skip
HAVE_CUDA = cuda_available()

# array-api-strict at its strictest: the 2024.12 standard (what array-api-compat gives
# NumPy, CuPy and torch), without the parts a library may lack (shapes that depend on
# the data, as nonzero's; indexing by a boolean mask; the linalg and fft extensions)
STRICT_FLAGS = dict(
    api_version="2024.12", boolean_indexing=False, data_dependent_shapes=False,
    enabled_extensions=(),
)  # fmt: skip
array_api_strict.set_array_api_strict_flags(**STRICT_FLAGS)


def pytest_configure(config):
    """A checkout run without installing nnbackend has no entry point: load the plugin here."""
    manager = config.pluginmanager
    if not manager.has_plugin("nnbackend") and not manager.is_blocked("nnbackend"):
        manager.register(pytest_plugin, "nnbackend")


@pytest.fixture(autouse=True)
def _clean_backend_choice(monkeypatch):
    """No test sees another's set_backend, nor a user's switches: $NNBACKEND, and those
    the README tells of (NNBACKEND_FUSED=0 failed every flat-buffer test), with the
    fused kernels' switch read afresh."""
    for name in USERS_SWITCHES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(kernels, "_environment", [])
    nb.reset_backend()
    yield
    nb.reset_backend()


@pytest.fixture
def data_dir() -> Path:
    """../shared/data beside the project, or skip."""
    if not DATA_DIR.is_dir():
        pytest.skip(f"real data not found at {DATA_DIR}")
    return DATA_DIR
