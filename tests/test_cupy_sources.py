"""CuPy's kernels checked where there is no GPU: every body of
``kernels_cupy.ELEMENTWISE`` is compiled for the host (``tests/cupy_on_host.py``), put
in the NumPy backend's kernel table in place of NumPy's own entries, and held to the
standard-only reference by the same checks ``tests/test_kernels.py`` runs on every
backend; the image layers' kernels (``kernels_cupy_images``: convolution, max pooling)
against the standard layers, the windows and pooling bit for bit. On a GPU the
``-m gpu`` tests run the same kernels through CuPy itself."""

from __future__ import annotations

import numpy as np
import pytest

import nnbackend as nb
from nnbackend.backend import fastpaths, kernels, kernels_cupy, kernels_cupy_images
from nnbackend.layers import im2col
from tests import cupy_on_host
from tests import test_conv_layers as conv_checks
from tests import test_data as data_checks
from tests import test_kernels as checks
from tests import test_losses as loss_checks
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
    assert table.softmax_xent_counted is not None  # the losses test takes labels through it


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
        for classes in (4, 20, 80):  # 80: CuPy's row reductions, not a thread per row
            checks.test_softmax_cross_entropy_matches_its_reference(
                as_cupy, reduction, labels, classes
            )
    for label in (-1, 20):
        checks.test_a_label_out_of_range_is_a_row_of_zeros_as_in_the_reference(as_cupy, label)
    for classes in (5, 80):
        for ties in (False, True):
            checks.test_right_rows_counted_with_the_loss_match_the_reference(as_cupy, ties, classes)
        checks.test_counted_rows_at_nan_and_masked_logits(as_cupy, classes)
        for targets in ("labels", "one-hot"):
            masked = loss_checks.test_a_masked_class_adds_nothing_to_the_loss
            masked(as_cupy, classes, targets, fused=True)
    checks.test_sigmoid_bce_matches_its_reference(as_cupy, reduction)
    checks.test_sigmoid_bce_keeps_a_confident_right_answer(as_cupy)
    for shape in ((30,), (30, 1), (30, 3)):
        checks.test_right_outputs_counted_with_bce_match_the_reference(as_cupy, shape)


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
    """CuPy's columns, laid out by kernel offset first, hold the reference's, bit for bit."""
    x = np.random.default_rng(0).normal(size=shape)
    sizes = zip(shape[2:], kernel, stride, padding, strict=True)
    out = tuple(im2col.out_size(n, k, s, p) for n, k, s, p in sizes)
    cols = im2col.im2col(x, kernel, stride, padding)  # (N, C*kh*kw, L)
    by_offset = np.transpose(cols, (1, 0, 2)).reshape(cols.shape[1], -1)
    n, c, h, w = shape
    args = (h, w, *out, *kernel, *stride, *padding, n, c)
    np.testing.assert_array_equal(on_host("im2col")(x, *args, np.empty_like(by_offset)), by_offset)
    dcols = np.random.default_rng(1).normal(size=cols.shape)
    want = im2col.col2im(dcols, shape, kernel, stride, padding, out)
    dcols = np.ascontiguousarray(np.transpose(dcols, (1, 0, 2)).reshape(by_offset.shape))
    np.testing.assert_array_equal(on_host("col2im")(dcols, *args, np.empty(shape)), want)


@pytest.mark.parametrize("shape, kernel, stride, padding", WINDOW_CASES)
@pytest.mark.parametrize("activation", ["linear", "relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("bias", [True, False])
def test_convolution(on_host, shape, kernel, stride, padding, activation, bias):
    """CuPy's convolution and its backward against Conv2D's standard path and the
    activation's layer; the weight gradients written into the given views, or made."""
    conv2d, backward = kernels_cupy_images.convolution_from(on_host, np)
    be = nb.get_backend("numpy", dtype="float64")
    layer = nb.layers.Conv2D(shape[1], 4, kernel, stride=stride, padding=padding, bias=bias)
    layer.build(be, nb.Generator(0))
    if bias:
        layer.params["b"] = np.random.default_rng(2).normal(size=4)
    act = nb.layers.get(activation)
    x = np.random.default_rng(0).normal(size=shape)
    with nb.backend.fast_paths(False):
        want_y = act.forward(layer.forward(x))
        dy = act.backward(np.random.default_rng(1).normal(size=want_y.shape))
        want = {"dx": layer.backward(dy), **layer.grads}
    W, b = layer.params["W"], layer.params.get("b")
    y, saved = conv2d(x, W, b, stride, padding, activation)
    np.testing.assert_allclose(y, want_y, rtol=1e-13, atol=1e-13)
    views = {"W": np.empty_like(W), **({"b": np.empty(4)} if bias else {})}
    for out in (views, {}):
        dx, dW, db = backward(dy, saved, W, stride, padding, bias, True, out)
        assert dW is out.get("W", dW) and db is out.get("b", db)
        np.testing.assert_allclose(dx, want["dx"], rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(dW, want["W"], rtol=1e-13, atol=1e-13)
        if bias:
            np.testing.assert_allclose(db, want["b"], rtol=1e-13, atol=1e-13)
        else:
            assert db is None
    assert backward(dy, saved, W, stride, padding, bias, False, {})[0] is None


@pytest.mark.parametrize("pool, stride", [*POOL_CASES, ((3, 2), (2, 3))])
def test_max_pool(on_host, pool, stride):
    """Ties (integer inputs), overlapping windows and ragged edges, bit for bit."""
    max_pool, backward = kernels_cupy_images.pooling_from(on_host, np)
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
    max_pool, backward = kernels_cupy_images.pooling_from(on_host, np)
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    x[0, 0, 0, 1] = x[0, 0, 1, 0] = x[0, 0, 3, 3] = np.nan
    y, where = max_pool(x, (2, 2), (2, 2))
    np.testing.assert_array_equal(y[0, 0], [[np.nan, 7.0], [13.0, np.nan]])
    np.testing.assert_array_equal(where[0, 0], [[1, 3], [3, 3]])
    dx = backward(np.ones_like(y), x, where, (2, 2), (2, 2))
    np.testing.assert_array_equal(np.argwhere(dx[0, 0]), [[0, 1], [1, 3], [3, 1], [3, 3]])


def test_a_conv_net_fit(as_cupy, on_host, monkeypatch):
    """CuPy's kernels for the image layers in a whole fit (the convolution fused with its
    ReLU, max pooling, gradients into the flat buffer, the accuracy counted by the
    loss), against the standard path with nothing fused."""
    conv2d, conv2d_backward = kernels_cupy_images.convolution_from(on_host, np)
    max_pool, max_pool_backward = kernels_cupy_images.pooling_from(on_host, np)
    natives = {
        "conv2d": conv2d, "conv2d_backward": conv2d_backward, "max_pool": max_pool,
        "max_pool_backward": max_pool_backward,
        "conv2d_act": lambda x, W, b, stride, padding, name: conv2d(x, W, b, stride, padding, name),
    }  # fmt: skip
    for name, function in natives.items():
        monkeypatch.setitem(fastpaths._NATIVE, (name, "numpy"), function)
    conv_checks.test_a_conv_net_fit_gives_the_same_with_and_without_fast_paths("numpy")


def test_take_rows(on_host, monkeypatch):
    """A batch's rows of X and of y in one kernel: labels or float targets, y as wide as
    X's rows or wider, X of any sample shape; refused (None) for y of a third dtype.
    The kernel writes y's rows and nothing past them. Then in Batches, as CuPy takes
    them: the batches of the two takes, every one from the kernel."""
    take_rows = kernels_cupy.rows_from(on_host, np)
    rng = np.random.default_rng(3)
    X, index = rng.normal(size=(10, 2, 3)), rng.permutation(10)[:4]
    ys = (np.arange(10) * 7, rng.normal(size=(10, 6)), rng.normal(size=(10, 2, 7)))
    for y in ys:
        xb, yb = take_rows(X, y, index)
        np.testing.assert_array_equal(xb, X[index])
        np.testing.assert_array_equal(yb, y[index])
    assert take_rows(X, np.arange(10, dtype=np.int32), index) is None
    y = ys[2]
    guarded = np.full(4 * 14 + 5, np.nan)  # the batch's rows, then 5 that stay NaN
    on_host("take_rows_targets")(X, index, y, 6, 14, np.empty((4, 2, 3)), guarded)
    np.testing.assert_array_equal(guarded[:56].reshape(4, 2, 7), y[index])
    assert np.isnan(guarded[56:]).all()
    calls = []
    counted = lambda X, y, index: calls.append(1) or take_rows(X, y, index)  # noqa: E731
    monkeypatch.setitem(fastpaths._NATIVE, ("take_rows", "numpy"), counted)
    data_checks.test_same_seed_same_batches_on_every_backend_and_path(True)
    assert len(calls) == 2 * 4  # NumPy's two passes (host arrays are its own) of 4 batches


# --- edges a mutation run of kernels_cupy.py found open ---------------------------------


def test_take_rows_refuses_samples_of_no_values(on_host):
    """X with no values per sample is refused (None), so that the caller takes y itself:
    the kernel's threads run one per value of X, and none would copy y's rows."""
    take_rows = kernels_cupy.rows_from(on_host, np)
    rng = np.random.default_rng(0)
    index = rng.permutation(10)[:4]
    for y in (np.arange(10) * 3, rng.normal(size=(10, 2))):
        assert take_rows(np.empty((10, 0)), y, index) is None
        assert take_rows(np.empty((10, 3, 0)), y, index) is None


def test_take_rows_takes_samples_of_one_value(on_host):
    """X of one value per sample (one thread per row) still goes through the kernel, y
    of any width copied whole by that one thread."""
    take_rows = kernels_cupy.rows_from(on_host, np)
    rng = np.random.default_rng(1)
    X, index = rng.normal(size=(10, 1)), rng.permutation(10)[:5]
    for y in (np.arange(10) * 3, rng.normal(size=(10, 4)), rng.normal(size=(10, 1))):
        taken = take_rows(X, y, index)
        assert taken is not None
        np.testing.assert_array_equal(taken[0], X[index])
        np.testing.assert_array_equal(taken[1], y[index])


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_dense_act_returns_the_activated_layer(on_host, activation):
    """``dense_act`` itself gives act(x @ W + b) (a Dense layer that gets None back falls
    back to its unfused path, so a model's outputs alone cannot tell)."""
    dense_act = kernels_cupy.table_from(on_host, np)["dense_act"]
    rng = np.random.default_rng(2)
    x, W, b = rng.normal(size=(7, 5)), rng.normal(size=(5, 4)), rng.normal(size=4)
    z = x @ W + b
    want = {"sigmoid": 1 / (1 + np.exp(-z)), "tanh": np.tanh(z), "relu": np.maximum(z, 0)}
    got = dense_act(x, W, b, activation)
    assert got is not None
    np.testing.assert_allclose(got, want[activation], rtol=1e-13, atol=1e-15)


def test_bce_counts_every_output_of_a_one_dimensional_batch(on_host):
    """(batch,) logits: each output is a row of its own, so the count is of right
    outputs, as the loss's standard ``count_correct`` has it; the loss and gradient too."""
    counted = kernels_cupy.table_from(on_host, np)["sigmoid_bce_counted"]
    rng = np.random.default_rng(4)
    z, t = rng.normal(size=30), rng.integers(0, 2, 30).astype(float)
    loss, grad, right = counted(z, t, 0.5)
    want = np.sum((z > 0) == (t > 0.5))
    assert 0 < want < 30 and float(right) == want
    reference = nb.losses.BinaryCrossEntropy(from_logits=True)
    assert float(reference.count_correct(z, t)) == want
    losses = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
    np.testing.assert_allclose(loss, 0.5 * losses.sum(), rtol=1e-13)
    np.testing.assert_allclose(grad, 0.5 * (1 / (1 + np.exp(-z)) - t), rtol=1e-13, atol=1e-15)
