"""CuPy's kernels checked where there is no GPU: every body of
``kernels_cupy.ELEMENTWISE`` is compiled for the host (``tests/cupy_on_host.py``), put
in the NumPy backend's kernel table in place of NumPy's own entries, and held to the
standard-only reference by the same checks ``tests/test_kernels.py`` runs on every
backend; the conv windows by ``tests/test_conv_layers.py``'s cases, bit for bit. On a
GPU the ``-m gpu`` tests run the same kernels through CuPy itself."""

from __future__ import annotations

import numpy as np
import pytest

import nnbackend as nb
from nnbackend.backend import kernels, kernels_cupy
from nnbackend.layers import im2col
from tests import cupy_on_host
from tests import test_kernels as checks
from tests.test_conv_layers import POOL_CASES, WINDOW_CASES

pytestmark = pytest.mark.skipif(
    cupy_on_host.CC is None, reason="no C compiler (cc) to build CuPy's kernels for the host"
)


@pytest.fixture(scope="module")
def on_host(tmp_path_factory):
    library = cupy_on_host.build(tmp_path_factory.mktemp("cupy_on_host"))
    return lambda name: cupy_on_host.HostKernel(library, name)


@pytest.fixture
def as_cupy(on_host, monkeypatch):
    """The NumPy backend, its kernel table CuPy's (compiled for the host), compared
    within rounding: CuPy's sigmoid is 0.5 tanh(x / 2) + 0.5, not 1 / (1 + exp(-x))."""
    table = kernels_cupy.table_from(on_host, np)
    build = kernels._build
    monkeypatch.setattr(kernels, "_tables", {})
    monkeypatch.setattr(
        kernels, "_build", lambda lib: {**build(None), **table} if lib == "numpy" else build(lib)
    )
    rounding = 64 * np.finfo(np.float64).eps
    monkeypatch.setattr(checks, "tolerance", lambda backend, sums=False: rounding)
    return nb.get_backend("numpy", dtype="float64")


def test_the_table_holds_cupys_entries(as_cupy):
    table = kernels.table(as_cupy.xp)
    assert table.relu is None and table.sgd_many is None  # CuPy has none of these
    assert type(table.sigmoid).__name__ == "HostKernel"
    assert table.softmax_xent_labels is not None  # the losses test takes labels through it


def test_activations(as_cupy, monkeypatch):
    for activation in ("sigmoid", "tanh", "relu"):
        checks.test_a_dense_layer_and_its_activation_in_one_call_match_their_reference(
            as_cupy, monkeypatch, activation
        )
    checks.test_activation_forward_matches_its_reference(as_cupy, "sigmoid")
    for layer in ("tanh", "sigmoid", "relu"):
        checks.test_activation_backward_matches_its_reference(as_cupy, layer)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_losses(as_cupy, reduction):
    for labels in (True, False):
        for classes in (4, 20):
            checks.test_softmax_cross_entropy_matches_its_reference(
                as_cupy, reduction, labels, classes
            )
    for label in (-1, 20):
        checks.test_a_label_out_of_range_is_a_row_of_zeros_as_in_the_reference(as_cupy, label)
    for ties in (False, True):
        checks.test_right_rows_counted_with_the_loss_match_the_reference(as_cupy, ties)
    checks.test_sigmoid_bce_matches_its_reference(as_cupy, reduction)


@pytest.mark.parametrize("kernel, make", checks.OPTIMIZER_CASES)
def test_optimizers(as_cupy, monkeypatch, kernel, make):
    # CuPy has no *_many kernels: its single-array ones update array by array
    checks.test_optimizer_update_matches_its_reference(
        as_cupy, monkeypatch, kernel, make, "array by array"
    )


def test_a_whole_fit(as_cupy):
    """The layers, loss, L2 and Adam over the flat buffer, every kernel in one fit."""
    checks.test_dense_gradients_written_into_a_buffer_match_its_reference(as_cupy, 5, 3)
    checks.test_a_fit_with_fused_kernels_ends_where_the_reference_does(as_cupy)


@pytest.mark.parametrize("shape, kernel, stride, padding", WINDOW_CASES)
def test_conv_windows(on_host, shape, kernel, stride, padding):
    gather, scatter = kernels_cupy.windows_from(on_host, np)
    x = np.random.default_rng(0).normal(size=shape)
    sizes = zip(shape[2:], kernel, stride, padding, strict=True)
    out = tuple(im2col.out_size(n, k, s, p) for n, k, s, p in sizes)
    cols = im2col.im2col(x, kernel, stride, padding)
    np.testing.assert_array_equal(gather(x, kernel, stride, padding), cols)
    dcols = np.random.default_rng(1).normal(size=cols.shape)
    want = im2col.col2im(dcols, shape, kernel, stride, padding, out)
    np.testing.assert_array_equal(scatter(dcols, shape, kernel, stride, padding, out), want)


@pytest.mark.parametrize("pool, stride", [*POOL_CASES, ((3, 2), (2, 3))])
def test_max_pool(on_host, pool, stride):
    """Ties (integer inputs), overlapping windows and ragged edges, bit for bit."""
    max_pool, backward = kernels_cupy.pooling_from(on_host, np)
    x = np.random.default_rng(0).integers(0, 3, (2, 3, 7, 6)).astype(float)
    layer = nb.layers.MaxPool2D(pool, stride=stride)
    with nb.backend.fast_paths(False):
        want_y = layer.forward(x)
        dy = np.random.default_rng(1).normal(size=want_y.shape)
        want_dx = layer.backward(dy)
    y, where = max_pool(x, layer.pool_size, layer.stride)
    np.testing.assert_array_equal(y, want_y)
    dx = backward(dy, x, where, layer.pool_size, layer.stride)
    np.testing.assert_array_equal(dx, want_dx)


def test_max_pool_passes_nan_on(on_host):
    """A window holding NaN gives NaN (as the slices' maximum does), and its gradient
    goes to the first NaN, as argmax picks it."""
    max_pool, backward = kernels_cupy.pooling_from(on_host, np)
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    x[0, 0, 0, 1] = x[0, 0, 1, 0] = x[0, 0, 3, 3] = np.nan
    y, where = max_pool(x, (2, 2), (2, 2))
    np.testing.assert_array_equal(y[0, 0], [[np.nan, 7.0], [13.0, np.nan]])
    np.testing.assert_array_equal(where[0, 0], [[1, 3], [3, 3]])
    dx = backward(np.ones_like(y), x, where, (2, 2), (2, 2))
    np.testing.assert_array_equal(np.argwhere(dx[0, 0]), [[0, 1], [1, 3], [3, 1], [3, 3]])
