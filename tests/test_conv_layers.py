"""The image layers, one table: shapes, numerical gradients (float64), agreement with
NumPy in float32, and with PyTorch's own conv2d, max_pool2d, avg_pool2d and
batch_norm (float64, 1e-10) at the odd sizes: stride 2 with padding, non-square
kernels, windows that do not divide the input, a batch of one, one channel."""

from __future__ import annotations

import numpy as np
import pytest

import nnbackend as nb
from nnbackend import layers as L
from nnbackend.backend import fastpaths
from nnbackend.gradcheck import check_layer, numerical_gradient, relative_error
from nnbackend.layers import im2col
from tests.conftest import HAVE_TORCH


class SeededDropout(L.Dropout):
    """Dropout drawing from a fresh Generator(5) at every forward: the same mask each
    time, so that numerical gradients see one function."""

    def forward(self, x, training=True, rng=None):
        return super().forward(x, training, rng=nb.Generator(5))


def torch_conv(**kw):
    return lambda t, x, p: t.nn.functional.conv2d(x, p["W"], p.get("b"), **kw)


def torch_batch_norm(t, x, p):
    mean, var = t.zeros(x.shape[1], dtype=x.dtype), t.ones(x.shape[1], dtype=x.dtype)
    return t.nn.functional.batch_norm(x, mean, var, p["gamma"], p["beta"], training=True)


# name -> (constructor, input shape, torch reference of the same maths or None)
LAYERS = {
    "Conv2D": (lambda: L.Conv2D(2, 3, 3), (2, 2, 5, 5), torch_conv()),
    "Conv2D-stride-2-padding-1": (
        lambda: L.Conv2D(2, 3, 3, stride=2, padding=1),
        (2, 2, 6, 5),
        torch_conv(stride=2, padding=1),
    ),
    "Conv2D-non-square": (
        lambda: L.Conv2D(2, 2, (2, 3), stride=(1, 2), padding=(1, 0)),
        (2, 2, 4, 7),
        torch_conv(stride=(1, 2), padding=(1, 0)),
    ),
    "Conv2D-one-channel-batch-1": (lambda: L.Conv2D(1, 2, 3), (1, 1, 5, 4), torch_conv()),
    "Conv2D-no-bias-xavier": (
        lambda: L.Conv2D(2, 2, 2, bias=False, init="xavier"),
        (2, 2, 3, 3),
        torch_conv(),
    ),
    "MaxPool2D": (
        lambda: L.MaxPool2D(2),
        (2, 2, 5, 5),  # 2x2 windows do not divide 5x5: the last row and column are left out
        lambda t, x, p: t.nn.functional.max_pool2d(x, 2),
    ),
    "MaxPool2D-overlapping": (
        lambda: L.MaxPool2D(3, stride=2),
        (2, 2, 7, 6),
        lambda t, x, p: t.nn.functional.max_pool2d(x, 3, stride=2),
    ),
    "MaxPool2D-non-square-batch-1": (
        lambda: L.MaxPool2D((2, 3)),
        (1, 1, 4, 7),
        lambda t, x, p: t.nn.functional.max_pool2d(x, (2, 3)),
    ),
    "AvgPool2D": (
        lambda: L.AvgPool2D(2),
        (2, 2, 5, 5),
        lambda t, x, p: t.nn.functional.avg_pool2d(x, 2),
    ),
    "AvgPool2D-overlapping": (
        lambda: L.AvgPool2D((3, 2), stride=(1, 2)),
        (2, 1, 5, 5),
        lambda t, x, p: t.nn.functional.avg_pool2d(x, (3, 2), stride=(1, 2)),
    ),
    "GlobalAvgPool2D": (L.GlobalAvgPool2D, (2, 3, 3, 4), lambda t, x, p: x.mean(dim=(2, 3))),
    "Flatten": (L.Flatten, (2, 3, 2, 2), lambda t, x, p: x.flatten(1)),
    "BatchNorm-rows": (lambda: L.BatchNorm(4), (6, 4), torch_batch_norm),
    "BatchNorm-images": (lambda: L.BatchNorm(2), (3, 2, 3, 3), torch_batch_norm),
    "BatchNorm-batch-1-images": (lambda: L.BatchNorm(2), (1, 2, 2, 3), torch_batch_norm),
    "Dropout": (lambda: SeededDropout(0.4), (2, 3, 2, 2), None),
}
TORCH_LAYERS = [name for name, entry in LAYERS.items() if entry[2] is not None]


def built(name: str, backend):
    layer = LAYERS[name][0]()
    layer.build(backend, nb.Generator(0))
    return layer


def sample_input(name: str, backend, seed: int = 1):
    return nb.Generator(seed).normal(LAYERS[name][1], std=2.0, backend=backend)


@pytest.mark.parametrize("name", LAYERS)
def test_shapes_and_gradient_keys(name, backend):
    layer = built(name, backend)
    x = sample_input(name, backend)
    y = layer.forward(x)
    assert tuple(y.shape) == (x.shape[0], *layer.output_shape(tuple(x.shape[1:])))
    assert y.dtype == backend.dtype
    dx = layer.backward(backend.xp.ones_like(y))
    assert tuple(dx.shape) == tuple(x.shape) and dx.dtype == backend.dtype
    assert set(layer.grads) == set(layer.params)
    for key, grad in layer.grads.items():
        assert grad.shape == layer.params[key].shape


@pytest.mark.parametrize("name", LAYERS)
def test_backward_matches_numerical_gradient(name, backend64):
    layer = built(name, backend64)
    errors = check_layer(layer, sample_input(name, backend64))
    assert set(errors) == {"x", *layer.params}
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("name", LAYERS)
def test_backward_leaves_its_argument_alone(name, backend):
    layer = built(name, backend)
    y = layer.forward(sample_input(name, backend))
    dy = nb.Generator(2).normal(tuple(y.shape), backend=backend)
    before = backend.to_numpy(dy).copy()
    layer.backward(dy)
    np.testing.assert_array_equal(backend.to_numpy(dy), before)


@pytest.mark.parametrize("name", LAYERS)
def test_float32_agrees_with_numpy(name, backend):
    reference = nb.get_backend("numpy")
    results = []
    for be in (backend, reference):
        layer = built(name, be)
        y = layer.forward(sample_input(name, be))
        dx = layer.backward(nb.Generator(2).normal(tuple(y.shape), backend=be))
        results.append([be.to_numpy(a) for a in (y, dx, *layer.grads.values())])
    tolerance = np.finfo(np.float32).eps * 100
    for got, want in zip(*results, strict=True):
        np.testing.assert_allclose(got, want, rtol=tolerance, atol=tolerance)


def torch_tensor(backend, a):
    import torch

    return torch.tensor(backend.to_numpy(a), dtype=torch.float64, requires_grad=True)


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
@pytest.mark.parametrize("name", TORCH_LAYERS)
def test_forward_and_gradients_match_torch(name, backend64):
    import torch

    layer = built(name, backend64)
    x = sample_input(name, backend64)
    y = layer.forward(x)
    dy = nb.Generator(2).normal(tuple(y.shape), backend=backend64)
    dx = layer.backward(dy)
    tx = torch_tensor(backend64, x)
    tparams = {k: torch_tensor(backend64, v) for k, v in layer.params.items()}
    ty = LAYERS[name][2](torch, tx, tparams)
    ty.backward(torch.tensor(backend64.to_numpy(dy)))
    close = dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(backend64.to_numpy(y), ty.detach().numpy(), **close)
    np.testing.assert_allclose(backend64.to_numpy(dx), tx.grad.numpy(), **close)
    for key, param in tparams.items():
        got = backend64.to_numpy(layer.grads[key])
        np.testing.assert_allclose(got, param.grad.numpy(), **close)


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


@pytest.mark.parametrize("name", LAYERS)
def test_config_round_trip(name):
    layer = LAYERS[name][0]()
    again = L.from_config(layer.config())
    assert type(again).__name__ in (type(layer).__name__, "Dropout")
    assert again.config() == layer.config()


@pytest.mark.parametrize("name", LAYERS)
def test_param_and_state_shapes_are_known_before_building(name):
    layer = LAYERS[name][0]()
    params, state = layer.param_shapes(), layer.state_shapes()
    layer.build(nb.get_backend("numpy"), nb.Generator(0))
    assert params == {k: tuple(v.shape) for k, v in layer.params.items()}
    assert state == {k: tuple(v.shape) for k, v in layer.state.items()}


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
]


@pytest.mark.parametrize("shape, kernel, stride, padding", WINDOW_CASES)
@pytest.mark.parametrize("backend_name", ["numpy", "torch"])
def test_native_im2col_and_col2im_are_the_standard_ones(
    backend_name, shape, kernel, stride, padding
):
    if backend_name == "torch" and not HAVE_TORCH:
        pytest.skip("torch is not installed")
    be = nb.get_backend(backend_name, dtype="float64")
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
    native = fastpaths.native("col2im", be.xp)
    if native is not None:
        got = native(dcols, shape, kernel, stride, padding, out)
        np.testing.assert_allclose(be.to_numpy(got), be.to_numpy(dx), rtol=1e-13, atol=1e-13)
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


@pytest.mark.parametrize("backend_name", ["numpy", "torch"])
def test_conv_layer_gives_the_same_with_and_without_fast_paths(backend_name):
    if backend_name == "torch" and not HAVE_TORCH:
        pytest.skip("torch is not installed")
    be = nb.get_backend(backend_name, dtype="float64")
    results = []
    for enabled in (True, False):
        with nb.backend.fast_paths(enabled):
            layer = L.Conv2D(2, 3, 3, stride=2, padding=1)
            layer.build(be, nb.Generator(0))
            y = layer.forward(nb.Generator(1).normal((2, 2, 7, 6), backend=be))
            dx = layer.backward(nb.Generator(2).normal(tuple(y.shape), backend=be))
            results.append([be.to_numpy(a) for a in (y, dx, layer.grads["W"])])
    for fast, standard in zip(*results, strict=True):
        np.testing.assert_allclose(fast, standard, rtol=1e-13, atol=1e-13)


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
