"""Checks for layers, losses and optimizers, yours and the library's, on every backend.

    from nnbackend.testing import check_layer, check_loss, check_optimizer
    check_layer(lambda: Swish(beta=1.5), (4, 3))              # raises CheckFailed with a table
    check_loss(FocalLoss, (6, 3), labels)
    check_optimizer(lambda: AdamW(0.01), adamw_reference)
    assert_backend_parity(my_function, X)                     # the same on every backend
    with no_host_sync(): ...                                  # no device-to-host copy inside

The pytest plugin (``nnbackend.testing.pytest_plugin``, loaded by pytest when
nnbackend is installed) gives tests the ``backend`` and ``backend64`` fixtures.
"""

from nnbackend.testing.backends import (
    HostSyncError,
    assert_backend_parity,
    available_names,
    no_host_sync,
)
from nnbackend.testing.layers import check_layer
from nnbackend.testing.losses import check_loss
from nnbackend.testing.optimizers import check_optimizer
from nnbackend.testing.report import ULPS, CheckFailed, Report

__all__ = [
    "ULPS",
    "CheckFailed",
    "HostSyncError",
    "Report",
    "assert_backend_parity",
    "available_names",
    "check_layer",
    "check_loss",
    "check_optimizer",
    "no_host_sync",
]
