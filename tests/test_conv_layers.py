"""The image layers beyond the table of tests/test_layers.py: BatchNorm's running
statistics and evaluation against torch, max pooling's ties, the conv kernel's layout,
and the native window code pinned to the standard-only one."""

from __future__ import annotations

import array
import collections

import numpy as np
import pytest

import nnbackend as nb
from nnbackend import layers as L
from nnbackend.backend import fastpaths
from nnbackend.gradcheck import numerical_gradient, relative_error
from nnbackend.layers import im2col
from tests.conftest import HAVE_CUDA, HAVE_TORCH

NO_TORCH = pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
NO_CUDA = pytest.mark.skipif(not HAVE_CUDA, reason="no CUDA device answers (CuPy)")
NATIVE_BACKENDS = [
    "numpy",  # im2col
    pytest.param("cupy", marks=[pytest.mark.gpu, NO_CUDA]),  # convolution, max pooling
    pytest.param("torch", marks=NO_TORCH),  # conv2d, max_pool2d
]


def torch_tensor(backend, a):
    import torch

    return torch.tensor(backend.to_numpy(a), dtype=torch.float64, requires_grad=True)


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 2, 5)])
def test_batch_norm_statistics_and_eval_match_torch(shape, backend64):
    """Running averages after two training batches (torch's momentum is 1 - ours), then
    evaluation with them: values and input gradient."""
    import torch

    layer = L.BatchNorm(3, momentum=0.8, eps=1e-3)
    layer.build(backend64, nb.Generator(0))
    layer.params["gamma"] = nb.Generator(3).normal((3,), backend=backend64)
    layer.params["beta"] = nb.Generator(4).normal((3,), backend=backend64)
    mean, var = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    gamma, beta = (torch_tensor(backend64, layer.params[k]) for k in ("gamma", "beta"))
    for seed in (1, 2):
        x = nb.Generator(seed).normal(shape, std=3.0, backend=backend64) + 1.0
        layer.forward(x, training=True)
        torch.nn.functional.batch_norm(
            torch_tensor(backend64, x).detach(), mean, var, gamma.detach(), beta.detach(),
            training=True, momentum=0.2, eps=1e-3,
        )  # fmt: skip
    close = dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(backend64.to_numpy(layer.state["running_mean"]), mean, **close)
    np.testing.assert_allclose(backend64.to_numpy(layer.state["running_var"]), var, **close)

    x = nb.Generator(5).normal(shape, backend=backend64)
    y = layer.forward(x, training=False)
    dy = nb.Generator(6).normal(shape, backend=backend64)
    dx = layer.backward(dy)
    tx = torch_tensor(backend64, x)
    ty = torch.nn.functional.batch_norm(tx, mean, var, gamma, beta, training=False, eps=1e-3)
    ty.backward(torch.tensor(backend64.to_numpy(dy)))
    np.testing.assert_allclose(backend64.to_numpy(y), ty.detach().numpy(), **close)
    np.testing.assert_allclose(backend64.to_numpy(dx), tx.grad.numpy(), **close)
    for key, param in (("gamma", gamma), ("beta", beta)):
        np.testing.assert_allclose(backend64.to_numpy(layer.grads[key]), param.grad, **close)


@pytest.mark.parametrize("shape", [(65536, 2), (64, 2, 32, 32)])
def test_batch_norm_in_float32_holds_many_values_far_from_zero(backend, shape):
    """A full batch of raw features near 10^4: NumPy adds a column's rows one after
    another, and a one-pass float32 mean of 65536 of them was off by 0.95 of a standard
    deviation (the output's mean -0.95, its std 0.32)."""
    layer = L.BatchNorm(2)
    layer.build(backend, nb.Generator(0))
    x = nb.Generator(1).normal(shape, backend=backend) + 10_000.0
    out = backend.to_numpy(layer.forward(x, training=True)).astype(np.float64)
    axes = (0,) if len(shape) == 2 else (0, 2, 3)
    np.testing.assert_allclose(out.mean(axis=axes), 0.0, atol=1e-3)
    np.testing.assert_allclose(out.std(axis=axes), 1.0, atol=1e-3)
    assert float(backend.xp.min(layer.state["running_var"])) >= 0.0


def test_a_constant_channel_has_a_variance_of_zero_not_below(backend):
    """Values of a channel all alike: its variance is 0 (in one pass, the first mean's
    error made it look like a spread), and rounding does not take it below."""
    layer = L.BatchNorm(4, momentum=0.0)  # the running variance is the batch's
    layer.build(backend, nb.Generator(0))
    channels = [6317.07108243, -9945.2299966, 7148.08553175, -9328.28849389]
    x = backend.asarray(np.full((1680, 4), channels))
    out = backend.to_numpy(layer.forward(x, training=True))
    assert np.all(np.abs(out) < 1e-3)
    assert float(backend.xp.min(layer.state["running_var"])) >= 0.0


def test_batch_norm_eval_backward_matches_numerical_gradient(backend64):
    layer = L.BatchNorm(2)
    layer.build(backend64, nb.Generator(0))
    layer.state["running_mean"] = backend64.asarray([0.5, -1.0])
    layer.state["running_var"] = backend64.asarray([2.0, 0.25])
    x = nb.Generator(1).normal((3, 2, 2, 2), backend=backend64)
    weights = nb.Generator(2).normal((3, 2, 2, 2), backend=backend64)

    def objective(_=None):
        return backend64.xp.sum(layer.forward(x, training=False) * weights)

    objective()
    dx = layer.backward(weights)
    assert relative_error(dx, numerical_gradient(objective, x)) < 1e-7
    for name in ("gamma", "beta"):
        grad = layer.grads[name]
        assert relative_error(grad, numerical_gradient(objective, layer.params[name])) < 1e-7


def test_conv_weights_are_laid_out_as_pytorch_and_drawn_with_he():
    layer = L.Conv2D(16, 32, (3, 5))
    layer.build(nb.get_backend("numpy"), nb.Generator(0))
    W = layer.params["W"]
    assert W.shape == (32, 16, 3, 5) and layer.params["b"].shape == (32,)
    assert abs(W.std() / np.sqrt(2 / (16 * 15)) - 1) < 0.03  # He: fan-in 16 * 3 * 5


# --- the native windows are the standard ones -------------------------------------

WINDOW_CASES = [  # input shape, kernel, stride, padding
    ((2, 3, 6, 6), (3, 3), (1, 1), (0, 0)),
    ((2, 2, 7, 5), (3, 3), (2, 2), (1, 1)),
    ((1, 1, 5, 8), (2, 3), (1, 2), (1, 0)),
    ((3, 2, 4, 4), (4, 4), (1, 1), (2, 2)),
    ((1, 2, 5, 7), (3, 2), (2, 1), (0, 2)),  # columns of zeros alone
    ((0, 2, 5, 5), (3, 3), (1, 1), (1, 1)),  # no rows: a rank's share of a small batch
]


@pytest.mark.parametrize("shape, kernel, stride, padding", WINDOW_CASES)
def test_native_im2col_is_the_standard_one(shape, kernel, stride, padding):
    """NumPy's (CuPy's columns, laid out otherwise: tests/test_cupy_sources.py)."""
    be = nb.get_backend("numpy", dtype="float64")
    x = nb.Generator(0).normal(shape, backend=be)
    sizes = zip(shape[2:], kernel, stride, padding, strict=True)
    out = tuple(im2col.out_size(n, k, s, p) for n, k, s, p in sizes)
    cols = im2col.im2col(x, kernel, stride, padding)
    native = fastpaths.native("im2col", be.xp)
    assert native is not None
    fast = native(x, kernel, stride, padding)
    np.testing.assert_array_equal(be.to_numpy(fast), be.to_numpy(cols))
    dcols = nb.Generator(1).normal(tuple(cols.shape), backend=be)
    dx = im2col.col2im(dcols, shape, kernel, stride, padding, out)
    # col2im is im2col's transpose: <im2col(x), dcols> == <x, col2im(dcols)>
    lhs = float(be.to_numpy(be.xp.sum(cols * dcols)))
    assert lhs == pytest.approx(float(be.to_numpy(be.xp.sum(x * dx))), rel=1e-12)


def test_fast_paths_can_be_turned_off(monkeypatch):
    xp = nb.get_backend("numpy").xp
    assert fastpaths.native("im2col", xp) is not None
    with nb.backend.fast_paths(False):
        assert fastpaths.native("im2col", xp) is None
    monkeypatch.setenv("NNBACKEND_FAST_PATHS", "0")
    assert fastpaths.native("im2col", xp) is None
    with nb.backend.fast_paths(True):
        assert fastpaths.native("im2col", xp) is not None
    assert fastpaths.native("im2col", nb.get_backend("strict").xp) is None


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize(
    "layer, says",
    [
        (L.Conv2D(1, 2, 3), r"Conv2D\(.*its \(3, 3\) kernel does not fit in a 2x5 input"),
        (L.Conv2D(1, 2, (2, 8), padding=(0, 1)), r"kernel does not fit in a 2x5 input padded"),
        (L.MaxPool2D(3), r"MaxPool2D\(.*its window does not fit in a 2x5 input"),
        (L.AvgPool2D((1, 6)), r"AvgPool2D\(.*its window does not fit in a 2x5 input"),
    ],
)
def test_an_input_too_small_for_the_window_is_refused(backend, layer, says, fast):
    """Not an empty output (strict, NumPy's pooling) or the library's own message."""
    layer.build(backend, nb.Generator(0))
    with nb.backend.fast_paths(fast), pytest.raises(ValueError, match=says):
        layer.forward(backend.asarray(np.zeros((2, 1, 2, 5))))


def test_window_sizes_take_numpys_integers_and_refuse_the_rest():
    """Sizes worked out with NumPy (np.int64) are ints; strings, floats and triples are not."""
    conv = L.Conv2D(2, 3, np.int64(3), stride=(np.int64(1), np.int64(2)), padding=(np.int32(1), 0))
    assert (conv.kernel_size, conv.stride, conv.padding) == ((3, 3), (1, 2), (1, 0))
    assert all(type(v) is int for v in conv.kernel_size + conv.stride + conv.padding)
    pool = L.MaxPool2D(np.array([2, 3]), stride=np.int64(1))  # a pair, and one size
    assert (pool.pool_size, pool.stride) == ((2, 3), (1, 1))
    assert all(type(v) is int for v in pool.pool_size + pool.stride)
    with pytest.raises(TypeError, match="kernel_size must be an integer, not '3'"):
        L.Conv2D(2, 3, "3")
    with pytest.raises(TypeError, match="stride must be an integer, not 1.5"):
        L.Conv2D(2, 3, 3, stride=1.5)
    with pytest.raises(
        TypeError, match=r"pool_size must be an int or a pair of ints, not \(2, 2, 2\)"
    ):
        L.MaxPool2D((2, 2, 2))
    for taken_apart in (b"\x02\x03", {2: "a", 3: "b"}, range(2, 4)):  # were (2, 3)
        with pytest.raises(TypeError, match="pool_size must be an int or a pair of ints, not "):
            L.MaxPool2D(taken_apart)
    for two in (collections.deque([2, 3]), array.array("i", [2, 3])):  # sequences of two
        assert L.MaxPool2D(two).pool_size == (2, 3)


@pytest.mark.parametrize("backend_name", NATIVE_BACKENDS)
def test_conv_layer_gives_the_same_with_and_without_fast_paths(backend_name):
    be = nb.get_backend(backend_name, dtype="float64")
    results = []
    for enabled in (True, False):
        with nb.backend.fast_paths(enabled):
            layer = L.Conv2D(2, 3, 3, stride=2, padding=1)
            layer.build(be, nb.Generator(0))
            y = layer.forward(nb.Generator(1).normal((2, 2, 7, 6), backend=be))
            dy = nb.Generator(2).normal(tuple(y.shape), backend=be)
            dx = layer.backward(dy)
            results.append([be.to_numpy(a) for a in (y, dx, layer.grads["W"], layer.grads["b"])])
            assert layer.backward(dy, input_grad=False) is None
    for fast, standard in zip(*results, strict=True):
        np.testing.assert_allclose(fast, standard, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("backend_name", NATIVE_BACKENDS)
def test_a_conv_net_fit_gives_the_same_with_and_without_fast_paths(backend_name):
    """The native convolution (with its activation, where CuPy fuses them), pooling and
    fused kernels in whole fits, against the standard path with nothing fused. Momentum,
    not Adam: Adam turns a rounding-sized gradient into a full step either way."""
    be = nb.get_backend(backend_name, dtype="float64")
    X = np.random.default_rng(5).normal(size=(40, 2, 9, 9))
    y = np.random.default_rng(6).integers(0, 3, 40)
    runs = []
    for on in (True, False):
        model = nb.Sequential(
            [L.Conv2D(2, 4, 3, padding=1), "relu", L.MaxPool2D(2), L.Flatten(),
             L.Dense(64, 3)],
            backend=be, seed=0, input_shape=(2, 9, 9),
        )  # fmt: skip
        with nb.backend.fused(on), nb.backend.fast_paths(on):
            history = model.fit(X, y, loss="cross_entropy", optimizer="momentum", epochs=3,
                                batch_size=16, verbose=0, seed=0)  # fmt: skip
            scores = model.predict_proba(X[:7])
        runs.append((model.copy_params(), history, scores))
    (fast_weights, fast_log, fast_scores), (weights, log, scores) = runs
    assert fast_log["accuracy"] == log["accuracy"]
    np.testing.assert_allclose(fast_log["loss"], log["loss"], rtol=1e-12)
    np.testing.assert_allclose(fast_scores, scores, rtol=1e-10, atol=1e-12)
    for name in weights:
        got, want = be.to_numpy(fast_weights[name]), be.to_numpy(weights[name])
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


POOL_CASES = [(2, None), (3, 1), ((2, 3), (1, 2))]  # pool_size, stride


@pytest.mark.parametrize("pool_size, stride", POOL_CASES)
@pytest.mark.parametrize("backend_name", NATIVE_BACKENDS[1:])
def test_native_max_pool_is_the_standard_one(backend_name, pool_size, stride):
    """torch's max_pool2d and CuPy's kernels, with their backward, against the window
    slices, ties and ragged edges included."""
    be = nb.get_backend(backend_name, dtype="float64")
    x = be.asarray(np.random.default_rng(0).integers(0, 3, (2, 3, 7, 6)).astype(float))
    results = []
    for enabled in (True, False):
        with nb.backend.fast_paths(enabled):
            layer = L.MaxPool2D(pool_size, stride=stride)
            y = layer.forward(x)
            dx = layer.backward(nb.Generator(1).normal(tuple(y.shape), backend=be))
            results.append([be.to_numpy(a) for a in (y, dx)])
    (y, dx), (want_y, want_dx) = results
    np.testing.assert_array_equal(y, want_y)
    # where windows overlap, an input's parts are added in another order
    np.testing.assert_allclose(dx, want_dx, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("pool_size, stride", [*POOL_CASES, ((3, 1), (2, 1))])
def test_pooling_gives_each_windows_largest_and_mean_as_numpy_does(pool_size, stride, backend):
    """Against NumPy's sliding windows: a maximum that skipped a window's second column
    passed every test without torch (its backward follows the same pick)."""
    x = np.random.default_rng(3).normal(size=(2, 3, 7, 6))
    stride = stride or pool_size
    rows, cols = (pool_size, pool_size) if isinstance(pool_size, int) else pool_size
    step = (stride, stride) if isinstance(stride, int) else stride
    windows = np.lib.stride_tricks.sliding_window_view(x, (rows, cols), axis=(2, 3))
    windows = windows[:, :, :: step[0], :: step[1]]
    for kind, want in [
        (L.MaxPool2D, windows.max(axis=(-2, -1))),
        (L.AvgPool2D, windows.mean(axis=(-2, -1))),
    ]:
        got = kind(pool_size, stride=stride).forward(backend.asarray(x))
        np.testing.assert_allclose(backend.to_numpy(got), want, rtol=1e-6, atol=1e-6)


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
@pytest.mark.parametrize("pool_size, stride", [(2, None), (3, 1)])
def test_max_pool_sends_the_gradient_to_the_first_of_equal_largest(pool_size, stride, backend64):
    """Integer inputs tie often (as ReLU's zeros do); PyTorch picks the first largest."""
    import torch

    x = backend64.asarray(np.random.default_rng(0).integers(0, 3, (2, 2, 6, 6)).astype(float))
    layer = L.MaxPool2D(pool_size, stride=stride)
    y = layer.forward(x)
    dy = nb.Generator(1).normal(tuple(y.shape), backend=backend64)
    dx = layer.backward(dy)
    tx = torch_tensor(backend64, x)
    ty = torch.nn.functional.max_pool2d(tx, pool_size, stride=stride)
    ty.backward(torch.tensor(backend64.to_numpy(dy)))
    np.testing.assert_array_equal(backend64.to_numpy(y), ty.detach().numpy())
    np.testing.assert_allclose(backend64.to_numpy(dx), tx.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["numpy", "strict"])
def test_batch_norm_running_statistics_follow_the_documented_rule(name):
    """running = momentum * running + (1 - momentum) * batch, with the unbiased variance
    (BatchNorm's docstring): held without torch too, whose test alone checked it (a
    swapped momentum or a biased variance passed every other)."""
    backend = nb.get_backend(name, dtype="float64")
    layer = nb.layers.BatchNorm(3, momentum=0.8)
    layer.build(backend, nb.Generator(0))
    rng = np.random.default_rng(1)
    mean, var = np.zeros(3), np.ones(3)
    for _ in range(2):
        x = rng.normal(2.0, 3.0, size=(4, 3, 2, 5))
        layer.forward(backend.asarray(x), training=True)
        mean = 0.8 * mean + 0.2 * x.mean(axis=(0, 2, 3))
        var = 0.8 * var + 0.2 * x.var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(nb.to_numpy(layer.state["running_mean"]), mean, rtol=1e-12)
    np.testing.assert_allclose(nb.to_numpy(layer.state["running_var"]), var, rtol=1e-12)
