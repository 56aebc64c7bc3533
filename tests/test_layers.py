"""Every layer through ``nnbackend.testing.check_layer`` (gradients, backends, dtypes,
devices, arguments, config, saving, modes: one line per layer in ``LAYERS``), and
against torch's autograd of its own functions (conv2d, max_pool2d, avg_pool2d,
batch_norm, ...) for the same weights in float64. The image layers come at the odd
sizes: stride 2 with padding, non-square kernels, windows that do not divide the input,
a batch of one, one channel."""

from __future__ import annotations

import numpy as np
import pytest

import nnbackend as nb
from nnbackend import layers as L
from nnbackend.testing import check_layer
from tests.conftest import HAVE_TORCH

N_IN = 4
ROWS = (6, N_IN)

# A new layer needs one line here: its id, how to make it, the shape of an input batch.
LAYERS = {
    "Dense": (lambda: L.Dense(N_IN, 3), ROWS),
    "Dense-no-bias": (lambda: L.Dense(N_IN, 3, bias=False), ROWS),
    "Dense-he": (lambda: L.Dense(N_IN, 5, init="he"), ROWS),
    "Sigmoid": (L.Sigmoid, ROWS),
    "Tanh": (L.Tanh, ROWS),
    "ReLU": (L.ReLU, ROWS),
    "LeakyReLU": (lambda: L.LeakyReLU(0.1), ROWS),
    "Softmax": (L.Softmax, ROWS),
    "Identity": (L.Identity, ROWS),
    "Conv2D": (lambda: L.Conv2D(2, 3, 3), (2, 2, 5, 5)),
    "Conv2D-stride-2-padding-1": (lambda: L.Conv2D(2, 3, 3, stride=2, padding=1), (2, 2, 6, 5)),
    "Conv2D-non-square": (
        lambda: L.Conv2D(2, 2, (2, 3), stride=(1, 2), padding=(1, 0)),
        (2, 2, 4, 7),
    ),
    "Conv2D-width-padding": (
        lambda: L.Conv2D(2, 2, (3, 2), stride=(2, 1), padding=(0, 2)),
        (1, 2, 5, 7),
    ),
    # windows that overlap down the rows alone: their gradients add (col2im's overlap test)
    "Conv2D-rows-overlap": (lambda: L.Conv2D(1, 2, (3, 1), stride=(2, 1)), (2, 1, 7, 5)),
    "Conv2D-one-channel-batch-1": (lambda: L.Conv2D(1, 2, 3), (1, 1, 5, 4)),
    "Conv2D-no-bias-xavier": (lambda: L.Conv2D(2, 2, 2, bias=False, init="xavier"), (2, 2, 3, 3)),
    "Conv2D-1x1": (lambda: L.Conv2D(3, 4, 1), (2, 3, 4, 5)),
    "Conv2D-to-1x1": (lambda: L.Conv2D(2, 3, 4), (2, 2, 4, 4)),
    # 2x2 windows do not divide 5x5: the last row and column are left out
    "MaxPool2D": (lambda: L.MaxPool2D(2), (2, 2, 5, 5)),
    "MaxPool2D-overlapping": (lambda: L.MaxPool2D(3, stride=2), (2, 2, 7, 6)),
    "MaxPool2D-non-square-batch-1": (lambda: L.MaxPool2D((2, 3)), (1, 1, 4, 7)),
    "AvgPool2D": (lambda: L.AvgPool2D(2), (2, 2, 5, 5)),
    "AvgPool2D-overlapping": (lambda: L.AvgPool2D((3, 2), stride=(1, 2)), (2, 1, 5, 5)),
    "AvgPool2D-rows-overlap": (lambda: L.AvgPool2D((3, 1), stride=(2, 1)), (2, 1, 7, 5)),
    "MaxPool2D-to-1x1": (lambda: L.MaxPool2D(2), (2, 3, 2, 2)),
    "AvgPool2D-to-1x1": (lambda: L.AvgPool2D(2), (2, 3, 2, 2)),
    "GlobalAvgPool2D": (L.GlobalAvgPool2D, (2, 3, 3, 4)),
    "Flatten": (L.Flatten, (2, 3, 2, 2)),
    "Flatten-rows-already": (L.Flatten, (3, 4)),
    "BatchNorm-rows": (lambda: L.BatchNorm(4), (6, 4)),
    "BatchNorm-images": (lambda: L.BatchNorm(2), (3, 2, 3, 3)),
    "BatchNorm-settings": (lambda: L.BatchNorm(4, momentum=0.5, eps=0.01), (6, 4)),  # in config
    "BatchNorm-images-batch-1": (lambda: L.BatchNorm(2), (1, 2, 2, 3)),
    "Dropout": (lambda: L.Dropout(0.4), (2, 3, 2, 2)),
}


@pytest.mark.parametrize("name", LAYERS)
def test_layer_passes_every_check_on_every_backend(name):
    check_layer(*LAYERS[name])


def torch_conv(**kw):
    return lambda t, x, p: t.nn.functional.conv2d(x, p["W"], p.get("b"), **kw)


def torch_pool(name, *args, **kw):
    return lambda t, x, p: getattr(t.nn.functional, name)(x, *args, **kw)


def torch_batch_norm(t, x, p):
    mean, var = t.zeros(x.shape[1], dtype=x.dtype), t.ones(x.shape[1], dtype=x.dtype)
    return t.nn.functional.batch_norm(x, mean, var, p["gamma"], p["beta"], training=True)


def dense(t, x, p):
    return x @ p["W"] + p["b"] if "b" in p else x @ p["W"]


# name -> the same function written with torch (tensors x and params p)
TORCH = {
    "Dense": dense,
    "Dense-no-bias": dense,
    "Dense-he": dense,
    "Sigmoid": lambda t, x, p: t.sigmoid(x),
    "Tanh": lambda t, x, p: t.tanh(x),
    "ReLU": lambda t, x, p: t.relu(x),
    "LeakyReLU": lambda t, x, p: t.nn.functional.leaky_relu(x, 0.1),
    "Softmax": lambda t, x, p: t.softmax(x, dim=-1),
    "Identity": lambda t, x, p: x,
    "Conv2D": torch_conv(),
    "Conv2D-stride-2-padding-1": torch_conv(stride=2, padding=1),
    "Conv2D-non-square": torch_conv(stride=(1, 2), padding=(1, 0)),
    "Conv2D-width-padding": torch_conv(stride=(2, 1), padding=(0, 2)),
    "Conv2D-one-channel-batch-1": torch_conv(),
    "Conv2D-no-bias-xavier": torch_conv(),
    "Conv2D-1x1": torch_conv(),
    "Conv2D-to-1x1": torch_conv(),
    "MaxPool2D-to-1x1": torch_pool("max_pool2d", 2),
    "AvgPool2D-to-1x1": torch_pool("avg_pool2d", 2),
    "Flatten-rows-already": lambda t, x, p: x.flatten(1),
    "MaxPool2D": torch_pool("max_pool2d", 2),
    "MaxPool2D-overlapping": torch_pool("max_pool2d", 3, stride=2),
    "MaxPool2D-non-square-batch-1": torch_pool("max_pool2d", (2, 3)),
    "AvgPool2D": torch_pool("avg_pool2d", 2),
    "AvgPool2D-overlapping": torch_pool("avg_pool2d", (3, 2), stride=(1, 2)),
    "GlobalAvgPool2D": lambda t, x, p: x.mean(dim=(2, 3)),
    "Flatten": lambda t, x, p: x.flatten(1),
    "BatchNorm-rows": torch_batch_norm,
    "BatchNorm-images": torch_batch_norm,
    "BatchNorm-images-batch-1": torch_batch_norm,
}


def built(name: str, backend):
    layer = LAYERS[name][0]()
    layer.build(backend, nb.Generator(0))
    return layer


def sample_input(name: str, backend, scale: float = 2.0):
    return nb.Generator(1).normal(LAYERS[name][1], std=scale, backend=backend)


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
@pytest.mark.parametrize("name", TORCH)
def test_forward_and_gradients_match_torch_autograd(name, backend64):
    import torch

    layer = built(name, backend64)
    x = sample_input(name, backend64)
    y = layer.forward(x)
    dy = nb.Generator(2).normal(tuple(y.shape), backend=backend64)
    dx = layer.backward(dy)

    def tensor(a):
        return torch.tensor(backend64.to_numpy(a), dtype=torch.float64, requires_grad=True)

    tx = tensor(x)
    tparams = {k: tensor(v) for k, v in layer.params.items()}
    ty = TORCH[name](torch, tx, tparams)
    ty.backward(torch.tensor(backend64.to_numpy(dy)))
    np.testing.assert_allclose(backend64.to_numpy(y), ty.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(backend64.to_numpy(dx), tx.grad.numpy(), rtol=1e-12, atol=1e-14)
    for key, param in tparams.items():
        got = backend64.to_numpy(layer.grads[key])
        np.testing.assert_allclose(got, param.grad.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
@pytest.mark.parametrize("name", ["ReLU", "LeakyReLU"])
def test_the_kink_at_zero_has_torch_s_gradient(name, backend64):
    """Exact zeros reach activations (after padding, or a ReLU before): at 0 torch's
    gradient is relu's 0 and leaky_relu's alpha, the left side's."""
    import torch

    x = np.array([[-1.0, 0.0, 1.0]])
    layer = {"ReLU": L.ReLU(), "LeakyReLU": L.LeakyReLU(0.1)}[name]
    layer.build(backend64, nb.Generator(0))
    layer.forward(backend64.asarray(x))
    dx = backend64.to_numpy(layer.backward(backend64.asarray(np.ones_like(x))))
    tx = torch.tensor(x, requires_grad=True)
    activation = torch.nn.functional.relu if name == "ReLU" else torch.nn.functional.leaky_relu
    (activation(tx) if name == "ReLU" else activation(tx, 0.1)).sum().backward()
    np.testing.assert_array_equal(dx, tx.grad.numpy())


def test_the_kink_at_zero_takes_the_left_side_s_gradient(backend64):
    """torch's values, written out: the test above needs torch, which CI lacks."""
    x = backend64.asarray(np.array([[-1.0, 0.0, 1.0]]))
    for layer, expected in ((L.ReLU(), [[0.0, 0.0, 1.0]]), (L.LeakyReLU(0.1), [[0.1, 0.1, 1.0]])):
        layer.build(backend64, nb.Generator(0))
        layer.forward(x)
        dx = layer.backward(backend64.asarray(np.ones((1, 3))))
        np.testing.assert_array_equal(backend64.to_numpy(dx), expected)


def test_softmax_is_over_the_last_axis_of_any_rank(backend64):
    layer = L.Softmax()
    layer.build(backend64, nb.Generator(0))
    x = np.random.default_rng(0).normal(size=(2, 3, 4))
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    y = backend64.to_numpy(layer.forward(backend64.asarray(x)))
    np.testing.assert_allclose(y, e / e.sum(axis=-1, keepdims=True), rtol=1e-12)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_s_input_gradient_holds_gamma(backend64, training):
    """check_layer checks gradients at the built weights, where gamma is 1: a backward
    leaving gamma out passed every test but torch's."""
    b, bn = backend64, L.BatchNorm(3)
    bn.build(b, nb.Generator(0))
    bn.params["gamma"] = b.asarray(np.array([0.5, 2.0, -1.5]))
    running = {"running_mean": np.array([0.1, -0.2, 0.3]), "running_var": np.array([0.5, 2, 3])}
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))

    def loss(x):
        bn.state.update({k: b.asarray(v.copy()) for k, v in running.items()})  # held still
        return float(np.sum(b.to_numpy(bn.forward(b.asarray(x), training=training)) * w))

    loss(x)
    dx = b.to_numpy(bn.backward(b.asarray(w)))
    numerical = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = 1e-6
        numerical[i] = (loss(x + step) - loss(x - step)) / 2e-6
    np.testing.assert_allclose(dx, numerical, rtol=1e-6, atol=1e-8)


def test_batch_norm_keeps_a_constant_channel_s_variance_zero(backend64):
    """A channel constant over the batch (a dead ReLU's) has variance 0, not 1."""
    bn = L.BatchNorm(2)
    bn.build(backend64, nb.Generator(0))
    x = np.array([[3.0, 1.0], [3.0, 2.0], [3.0, 3.0], [3.0, 4.0]])
    bn.forward(backend64.asarray(x), training=True)
    expected = [0.9 * 1 + 0.1 * 0, 0.9 * 1 + 0.1 * np.var(x[:, 1], ddof=1)]
    np.testing.assert_allclose(backend64.to_numpy(bn.state["running_var"]), expected)


def test_dense_layout_and_default_init(backend):
    layer = built("Dense", backend)
    assert tuple(layer.params["W"].shape) == (N_IN, 3)  # rows are samples: x @ W
    np.testing.assert_array_equal(backend.to_numpy(layer.params["b"]), np.zeros(3, np.float32))
    # LeCun: randn / sqrt(fan_in), drawn from the host generator with seed 0
    expected = np.random.default_rng(0).standard_normal((N_IN, 3)) / np.sqrt(N_IN)
    np.testing.assert_array_equal(backend.to_numpy(layer.params["W"]), expected.astype(np.float32))


class ScaledTanh(L.Tanh):
    """LeCun's 1.7159 tanh(2x / 3): a subclass that rewrites Tanh's forward and backward."""

    def forward(self, x, training=True):
        self._t = nb.functional.tanh(x * (2 / 3))
        return 1.7159 * self._t

    def backward(self, dy, input_grad=True):
        return dy * (1.7159 * 2 / 3) * (1 - self._t * self._t)


def test_a_subclass_that_rewrites_forward_is_not_fused_with_dense(backend64):
    # the kernel table computes Dense + Tanh in one call; a subclass's own forward must
    # still run (it was bypassed: plain tanh, 0.13 off)
    model = nb.Sequential([L.Dense(3, 2), ScaledTanh()], backend=backend64, seed=0)
    X = np.random.default_rng(0).standard_normal((4, 3))
    W, b = (nb.to_numpy(model.params[k]) for k in ("0.W", "0.b"))
    out = nb.to_numpy(model.forward(backend64.asarray(X)))
    np.testing.assert_allclose(out, 1.7159 * np.tanh((X @ W + b) * 2 / 3), rtol=1e-13)
    errors = nb.gradcheck.check_gradients(model, "mse", X, np.zeros((4, 2)))
    assert max(errors.values()) < 1e-7


class NamesTanhAgain(ScaledTanh):
    fused_activation = "tanh"  # but ScaledTanh's forward runs


class NamesReLU(L.Tanh):
    fused_activation = "relu"  # but Tanh's forward runs


@pytest.mark.parametrize("kind", [NamesTanhAgain, NamesReLU, L.Tanh, L.ReLU, L.Sigmoid])
def test_dense_fuses_an_activation_only_as_its_own_forward_computes_it(backend64, kind):
    model = nb.Sequential([L.Dense(3, 2), kind()], backend=backend64, seed=0)
    x = backend64.asarray(np.random.default_rng(0).standard_normal((4, 3)))
    one_by_one = model.layers[1].forward(model.layers[0].forward(x))
    np.testing.assert_allclose(
        nb.to_numpy(model.forward(x)), nb.to_numpy(one_by_one), rtol=1e-12, atol=1e-15
    )


class ScaledDense(L.Dense):
    """A Dense layer of its own: twice the product, its gradients twice as well."""

    def forward(self, x, training=True):
        return 2 * super().forward(x, training)

    def backward(self, dy, input_grad=True):
        return super().backward(2 * dy, input_grad)


def test_a_dense_layer_that_rewrites_forward_is_not_fused_by_its_base(backend64):
    """Dense fuses its own product with the activation after it; a subclass's forward
    must run (its backward does), fused kernels or not, and its gradients are right."""
    model = nb.Sequential([ScaledDense(3, 4), L.Tanh(), L.Dense(4, 2)], backend=backend64, seed=0)
    x = backend64.asarray(np.random.default_rng(0).standard_normal((5, 3)))
    with nb.backend.fused(False):
        want = nb.to_numpy(model.forward(x))
    np.testing.assert_allclose(nb.to_numpy(model.forward(x)), want, rtol=1e-12, atol=1e-15)
    errors = nb.gradcheck.check_gradients(
        model, nb.losses.MSE(), np.random.default_rng(1).standard_normal((5, 3)), np.zeros((5, 2))
    )
    assert max(errors.values()) < 1e-6


@pytest.mark.parametrize(
    "init, std",
    [
        ("normal", 0.01),
        ("lecun", 1 / np.sqrt(400)),
        ("xavier", np.sqrt(2 / 700)),
        ("he", np.sqrt(2 / 400)),
    ],
)
def test_initialisers_have_their_spread(init, std):
    layer = L.Dense(400, 300, init=init)
    layer.build(nb.get_backend("numpy"), nb.Generator(0))
    W = layer.params["W"]
    assert abs(W.std() / std - 1) < 0.01
    assert abs(W.mean()) < 0.01 * std


@pytest.mark.parametrize(
    "init, std",
    [("lecun", 1 / np.sqrt(16 * 9)), ("xavier", np.sqrt(2 / (16 * 9 + 32 * 9))),
     ("he", np.sqrt(2 / (16 * 9)))],
)  # fmt: skip
def test_a_kernels_fans_hold_its_window(init, std):
    """A conv kernel (32, 16, 3, 3) feeds each output from 16 * 9 inputs and each input
    to 32 * 9 outputs: those are its fans, not its first two sizes."""
    layer = L.Conv2D(16, 32, 3, init=init)
    layer.build(nb.get_backend("numpy"), nb.Generator(0))
    W = layer.params["W"]
    assert abs(W.std() / std - 1) < 0.02


def test_an_initialiser_called_on_a_kernel_asks_for_its_fans():
    he = nb.init.He()
    with pytest.raises(ValueError, match=r"shape \(8, 3, 3, 3\) has no fan-in .* give fans="):
        he((8, 3, 3, 3), nb.Generator(0), nb.get_backend("numpy"))  # "too many values to unpack"
    kernel = he((8, 3, 3, 3), nb.Generator(0), nb.get_backend("numpy"), fans=(27, 72))
    assert abs(kernel.std() / np.sqrt(2 / 27) - 1) < 0.2


def test_dense_says_what_shape_it_wanted():
    layer = built("Dense", nb.get_backend("numpy"))
    with pytest.raises(
        ValueError, match=r"Dense\(n_in=4.*expects input of shape \(batch, 4\), got \(6, 5\)"
    ):
        layer.forward(np.ones((6, 5), np.float32))


def test_flatten_takes_a_batch_of_no_rows(backend):
    # a rank's share of a batch smaller than the ranks: reshape(x, (0, -1)) raised
    x = backend.asarray(np.ones((0, 2, 3, 3), np.float32))
    assert tuple(L.Flatten().forward(x).shape) == (0, 18)


def test_flatten_wants_a_batch_of_samples(backend):
    with pytest.raises(ValueError, match=r"Flatten takes a batch .* got shape \(3,\)"):
        L.Flatten().forward(backend.asarray(np.ones(3, np.float32)))  # was (3, 1)


@pytest.mark.parametrize(
    "layer, shape",
    [(L.Dense(2, 3), (1, 2)), (L.Conv2D(1, 2, 3), (1, 1, 4, 4)), (L.BatchNorm(2), (3, 2))],
)
def test_unbuilt_layers_say_how_to_build_them(layer, shape):
    with pytest.raises(RuntimeError, match="no weights yet: put it in a Sequential"):
        layer.forward(np.ones(shape, np.float32))


def test_unknown_layer_config_is_refused():
    with pytest.raises(ValueError, match="unknown layer type 'Conv9D'"):
        L.from_config({"type": "Conv9D"})


# --- the edges of what the layers take (each was a change no test caught) ------------


@pytest.mark.parametrize(
    "make, said",
    [
        (lambda: L.Conv2D(1, 1, 0), "Conv2D needs kernel_size and stride of at least 1"),
        (lambda: L.Conv2D(1, 1, 3, stride=0), "got kernel_size=3, stride=0"),
        (lambda: L.Conv2D(1, 1, (3, 2), padding=(3, 3)), r"padding from 0 to kernel_size, got"),
        (lambda: L.Conv2D(1, 1, 3, padding=-1), r"got kernel_size=3, stride=1, padding=-1"),
        (lambda: L.MaxPool2D(0), "MaxPool2D needs pool_size and stride of at least 1"),
        (lambda: L.MaxPool2D(0, stride=1), "MaxPool2D needs pool_size and stride of at least 1"),
        (lambda: L.AvgPool2D(2, stride=0), "got pool_size=2, stride=0"),
        (lambda: L.BatchNorm(3, momentum=1.0), r"momentum must be a finite number in \[0, 1\)"),
        (lambda: L.BatchNorm(3, eps=0.0), "eps must be a finite number above 0, got 0.0"),
    ],
)
def test_settings_just_outside_their_range_are_refused(make, said):
    """momentum=1 never moved the running averages; eps=0 gave NaN on a constant
    channel; a window or stride of 0 divided by zero; a border of zeros wider than the
    kernel adds outputs of zeros alone (a 2 KB checkpoint of padding 100000 asked for
    149 GiB at its first forward)."""
    with pytest.raises(ValueError, match=said):
        make()


@pytest.mark.parametrize("shape", [(4, 5), (4, 1, 2, 2), (4, 3, 5)])
def test_batch_norm_names_an_input_of_the_wrong_channels(backend, shape):
    """(4, 1, 2, 2) into BatchNorm(3) broadcast to a (4, 3, 2, 2) output."""
    layer = L.BatchNorm(3)
    layer.build(backend, nb.Generator(0))
    with pytest.raises(ValueError, match=r"expects input of shape \(batch, 3\) or"):
        layer.forward(backend.asarray(np.ones(shape)))


def test_batch_norm_trains_on_two_values_a_channel(backend):
    """What min_batch asks for: two rows give -1 and 1 in every channel."""
    layer = L.BatchNorm(3)
    layer.build(backend, nb.Generator(0))
    out = backend.to_numpy(layer.forward(backend.asarray([[1.0, 2.0, 3.0], [3.0, 6.0, 9.0]])))
    np.testing.assert_allclose(out, [[-1, -1, -1], [1, 1, 1]], atol=1e-4)


def test_dropout_as_its_message_says_to_call_it_alone(backend):
    """Unbuilt, with a generator of one's own; training by default; rate 0 needs none."""
    x = backend.asarray(np.ones((100, 10)))
    kept = backend.to_numpy(L.Dropout(0.5).forward(x, rng=nb.Generator(0)))
    assert set(np.unique(kept)) == {0.0, 2.0} and 0.4 < (kept == 0).mean() < 0.6
    np.testing.assert_array_equal(backend.to_numpy(L.Dropout(0.0).forward(x)), 1.0)


@pytest.mark.parametrize("padding, told", [("same", r"padding=\(1, 1\)"), ("VALID", "padding=0")])
def test_conv_padding_by_keras_word_is_told_the_number(padding, told):
    """ "same" and "valid" were "padding must be an int or a pair", with no way forward."""
    with pytest.raises(TypeError, match=f"zeros added on each side: {told}"):
        L.Conv2D(1, 8, 3, padding=padding)
    assert L.Conv2D(1, 8, 3, padding=1).padding == (1, 1)
    with pytest.raises(TypeError, match="at stride 1: an even kernel loses a row or column"):
        L.Conv2D(1, 8, 4, padding="same")  # (1, 1) turns 8 x 8 into 7 x 7
