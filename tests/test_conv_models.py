"""Image models: shapes checked along the chain, summary, data checks, training a small
conv net, BatchNorm's running state, Dropout's device masks, checkpoints and resuming."""

from __future__ import annotations

import functools
import json
import re

import array_api_strict
import h5py
import numpy as np
import pytest

import nnbackend as nb
from nnbackend.layers import (
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    MaxPool2D,
    ReLU,
)
from nnbackend.losses import SoftmaxCrossEntropy
from nnbackend.shapes import layer_text
from tests.conftest import CPU_BACKEND_NAMES


def bars(n: int = 48, size: int = 6, seed: int = 0):
    """Images (n, 1, size, size) holding one vertical (label 0) or horizontal (label 1)
    bar, plus a little noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.normal(0, 0.1, (n, 1, size, size)).astype(np.float32)
    where = rng.integers(0, size, n)
    for i in range(n):
        if y[i]:
            X[i, 0, where[i], :] += 1
        else:
            X[i, 0, :, where[i]] += 1
    return X, y


X_BARS, Y_BARS = bars()


def conv_net(backend="numpy", seed=0, dropout=0.25, input_shape=(1, 6, 6)):
    layers = [
        Conv2D(1, 4, 3, padding=1),
        BatchNorm(4),
        ReLU(),
        MaxPool2D(2),
        Flatten(),
        Dropout(dropout),
        Dense(36, 2),
    ]
    return nb.Sequential(layers, backend=backend, seed=seed, input_shape=input_shape)


FIT = dict(loss=SoftmaxCrossEntropy(), batch_size=8, verbose=0)


# --- shapes along the chain -------------------------------------------------------


def test_shapes_follow_the_chain():
    model = conv_net()
    assert model.input_shape == (1, 6, 6)
    assert model.output_shape == (2,) and model.n_outputs == 2 and model.n_inputs is None
    deep = nb.Sequential(
        [Conv2D(3, 8, (3, 5), stride=2, padding=(1, 2)), ReLU(), AvgPool2D(3, stride=1),
         GlobalAvgPool2D(), Dense(8, 4)],
        input_shape=(3, 9, 10),
    )  # fmt: skip
    assert nb.shapes.chain_shapes(deep.layers, deep.input_shape) == [
        (8, 5, 5), (8, 5, 5), (8, 3, 3), (8,), (4,)
    ]  # fmt: skip


@pytest.mark.parametrize(
    "layers, input_shape, message",
    [
        (
            [Conv2D(1, 4, 3), Flatten(), Dense(100, 2)],
            (1, 6, 6),
            r"layer 1, Flatten\(\), gives 64 features but the next, Dense\(n_in=100.* takes "
            r"100 features, not 64 \(layer 2\)",
        ),
        (
            [Conv2D(3, 4, 3)],
            (1, 6, 6),
            r"input_shape does not fit layer 0: Conv2D\(in_channels=3.* takes 3 channels",
        ),
        ([Conv2D(1, 4, 5)], (1, 3, 3), r"kernel does not fit in a 3x3 input padded by \(0, 0\)"),
        (
            [Conv2D(1, 4, 3), Dense(64, 2)],
            (1, 6, 6),
            r"takes 64 features, not samples of shape \(4, 4, 4\) \(put a Flatten\(\) before it\)",
        ),
        ([MaxPool2D(4)], (1, 3, 3), r"MaxPool2D.*window does not fit in a 3x3 input"),
        ([BatchNorm(3)], (4, 2, 2), r"BatchNorm\(num_features=3.* takes samples of shape \(3,\)"),
        ([Dense(4, 3), BatchNorm(4)], (4,), r"gives 3 features but the next, BatchNorm\(num_feat"),
        ([Conv2D(1, 2, 3)], (36,), r"takes images, samples of shape \(channels, height, width"),
        ([Dense(2, 2)], (0, 3), r"input_shape must hold positive sizes"),
    ],
)
def test_a_chain_that_does_not_fit_is_refused_when_built(layers, input_shape, message):
    with pytest.raises(ValueError, match=message):
        nb.Sequential(layers, input_shape=input_shape)


def test_without_input_shape_the_check_starts_at_the_first_dense():
    model = nb.Sequential([Conv2D(1, 4, 3), ReLU(), Flatten(), Dense(64, 2), Dense(2, 3)])
    assert model.input_shape is None and model.output_shape == (3,)
    with pytest.raises(ValueError, match=r"gives 2 features but the next, Dense\(n_in=3"):
        nb.Sequential([Conv2D(1, 4, 3), Flatten(), Dense(64, 2), Dense(3, 1)])


def test_summary_shows_output_shapes_in_aligned_columns():
    model = conv_net()
    lines = model.summary().splitlines()
    header, rows = lines[0], lines[1:-1]
    assert header.split() == ["#", "layer", "output", "shape", "params"]
    assert rows[0].split(None, 1) == ["input", "(1, 6, 6)"]
    shape_at, end = header.index("output shape"), len(header)
    expected = ["(4, 6, 6)", "(4, 6, 6)", "(4, 6, 6)", "(4, 3, 3)", "(36,)", "(36,)", "(2,)"]
    counts = [4 * 9 + 4, 8, 0, 0, 0, 0, 36 * 2 + 2]
    for row, shape, count, layer in zip(rows[1:], expected, counts, model.layers, strict=True):
        assert row[shape_at:].startswith(shape)  # every shape starts in the same column
        assert row.endswith(str(count)) and len(row) == end  # counts end in the last
        assert f"  {type(layer).__name__}(" in row
    assert "Conv2D(in_channels=1, out_channels=4, kernel_size=(3, 3), padding=(1, 1))  " in lines[2]
    assert "Dropout(rate=0.25)" in lines[7] and "Dense(n_in=36, n_out=2)  " in lines[8]
    assert lines[-1].startswith(f"total {model.count_params()} parameters")
    unknown = nb.Sequential([Conv2D(1, 4, 3), Flatten(), Dense(64, 2)]).summary().splitlines()
    assert unknown[1].split()[-2:] == ["?", "40"] and unknown[3].split()[-2:] == ["(2,)", "130"]


def test_a_summary_line_leaves_out_the_arguments_at_their_defaults():
    plain = "Conv2D(in_channels=1, out_channels=30, kernel_size=(5, 5))"
    assert layer_text(Conv2D(1, 30, 5)) == plain
    assert layer_text(Conv2D(1, 30, 5, stride=2, init="lecun")) == (
        "Conv2D(in_channels=1, out_channels=30, kernel_size=(5, 5), stride=(2, 2), "
        "init={'name': 'lecun'})"
    )
    assert layer_text(MaxPool2D(2)) == "MaxPool2D()" and layer_text(ReLU()) == "ReLU()"
    assert layer_text(MaxPool2D(3, stride=1)) == "MaxPool2D(pool_size=(3, 3), stride=(1, 1))"
    # a pool's default stride is its pool size: 2 is shown beside 3, 3 is not
    assert layer_text(MaxPool2D(3, stride=2)) == "MaxPool2D(pool_size=(3, 3), stride=(2, 2))"
    assert layer_text(AvgPool2D(3, stride=3)) == "AvgPool2D(pool_size=(3, 3))"

    built = []

    class Scaled(ReLU):  # a layer of one's own: its constructor is not run again
        def __init__(self, factor):
            super().__init__()
            built.append(factor)

    layer = Scaled(2.0)
    assert layer_text(layer) == repr(layer) and built == [2.0]


def test_images_of_the_wrong_shape_get_a_clear_error():
    model = conv_net()
    loss, opt = SoftmaxCrossEntropy(), nb.optim.SGD()
    with pytest.raises(ValueError, match=r"Reshape it: X.reshape\(len\(X\), 1, 6, 6\)"):
        model.fit(X_BARS[:, 0], Y_BARS, loss=loss, optimizer=opt, verbose=0)
    with pytest.raises(ValueError, match=r"Reshape them: X.reshape\(len\(X\), 1, 6, 6\)\.$"):
        model.fit(X_BARS.reshape(48, -1), Y_BARS, loss=loss, optimizer=opt, verbose=0)
    with pytest.raises(ValueError, match=r"takes samples of shape \(1, 6, 6\) \(input_shape\)"):
        model.forward(np.zeros((2, 1, 5, 5), np.float32))
    layer = Conv2D(3, 2, 3)
    layer.build(nb.get_backend("numpy"), nb.Generator(0))
    with pytest.raises(ValueError, match=r"expects input of shape \(batch, 3, height, width\)"):
        layer.forward(np.zeros((2, 1, 5, 5), np.float32))


def test_images_a_model_without_input_shape_cannot_take_are_named_before_a_step():
    """A conv net whose Dense fixes its input only at the end: 20x20 images where 16x16
    were meant failed at the first step, in Dense, with no word of the images."""
    model = nb.Sequential([Conv2D(3, 4, 3), ReLU(), MaxPool2D(2), Flatten(), Dense(196, 2)])
    assert model.input_shape is None
    fit = dict(loss="cross_entropy", optimizer="sgd", verbose=0)
    y = np.zeros(8, dtype=int)
    with pytest.raises(ValueError, match=r"X \(samples of shape \(3, 20, 20\)\) does not go "
                       r"through the model: layer 3, Flatten\(\), gives 324 features"):  # fmt: skip
        model.fit(np.zeros((8, 3, 20, 20)), y, **fit)
    with pytest.raises(ValueError, match=r"X \(samples of shape \(1, 16, 16\)\) does not fit "
                       r"layer 0: Conv2D.* takes 3 channels"):  # fmt: skip
        model.predict(np.zeros((2, 1, 16, 16)))
    with pytest.raises(ValueError, match=r"validation X \(samples of shape \(3, 3, 3\)\)"):
        model.fit(np.zeros((8, 3, 16, 16)), y, validation_data=(np.zeros((2, 3, 3, 3)), y[:2]),
                  **fit)  # fmt: skip
    assert model.fit(np.zeros((8, 3, 16, 16)), y, **fit)["loss"][0] > 0


@pytest.mark.parametrize("stacked", [(3, 4, 1, 8, 8), (3, 4, 8, 8, 1)])
def test_batches_stacked_in_one_array_are_told_to_join_them(stacked):
    """(batches, batch, C, H, W): the rows-of-pixels hint said X.reshape(len(X), 1,
    16, 48), mosaics the model then took without a word."""
    model = nb.Sequential([Conv2D(1, 2, 3), ReLU(), GlobalAvgPool2D(), Dense(2, 2)], seed=0)
    X = np.random.default_rng(0).normal(size=stacked)
    with pytest.raises(ValueError, match="batches stacked in one array") as info:
        model.predict(X)
    code = str(info.value).split("Join them: ")[1].split(" (and y")[0]
    joined = eval(code)
    images = (
        X.reshape(12, 1, 8, 8) if stacked[2] == 1 else X.reshape(12, 8, 8, 1).transpose(0, 3, 1, 2)
    )
    assert np.array_equal(joined, images) and model.predict(joined).shape == (12,)


def test_a_channel_axis_is_no_stack_of_batches_and_rows_stack_too():
    """(6, 1, 28, 28) and (6, 3, 28, 28) for samples of (28, 28) were told to join into
    6 and 18 samples; stacked rows, (5, 10, 4) for rows of 4, were told nothing."""
    model = nb.Sequential([Flatten(), Dense(784, 10)], input_shape=(28, 28), seed=0)
    with pytest.raises(ValueError, match=r"Reshape it: X\.reshape\(len\(X\), 28, 28\)\.$"):
        model.predict(np.zeros((6, 1, 28, 28)))
    with pytest.raises(ValueError, match=r"\(samples of shape \(3, 28, 28\)\)\.$"):
        model.predict(np.zeros((6, 3, 28, 28)))
    rows = nb.Sequential([Dense(4, 3)], input_shape=(4,), seed=0)
    with pytest.raises(ValueError, match=r"Join them: X\.reshape\(-1, 4\) \(and y"):
        rows.predict(np.zeros((5, 10, 4)))


def test_stacks_are_told_apart_from_channels_by_the_samples_shape():
    """Four images a stack, (3, 4, 1, 8, 8), for samples of (1, 8, 8) were told to join
    only without input_shape; four channels before (28, 28) samples are RGBA images, five
    rows a stack are a stack; samples of another shape are not told to join."""
    X = np.zeros((3, 4, 1, 8, 8))
    for kw in ({}, {"input_shape": (1, 8, 8)}):
        model = nb.Sequential(
            [Conv2D(1, 2, 3), ReLU(), GlobalAvgPool2D(), Dense(2, 2)], seed=0, **kw
        )
        with pytest.raises(ValueError, match=r"Join them: X\.reshape\(-1, 1, 8, 8\)"):
            model.predict(X)
    grey = nb.Sequential([Flatten(), Dense(784, 10)], input_shape=(28, 28), seed=0)
    with pytest.raises(ValueError, match=r"\(samples of shape \(4, 28, 28\)\)\.$"):
        grey.predict(np.zeros((6, 4, 28, 28)))
    with pytest.raises(ValueError, match=r"Join them: X\.reshape\(-1, 28, 28\)"):
        grey.predict(np.zeros((6, 5, 28, 28)))
    colour = nb.Sequential([Conv2D(1, 2, 3), Flatten(), Dense(2 * 26 * 26, 2)],
                           input_shape=(1, 28, 28), seed=0)  # fmt: skip
    with pytest.raises(ValueError) as told:
        colour.predict(np.zeros((4, 10, 2, 28, 28)))
    assert "Join them" not in str(told.value)


def test_stacked_batches_are_told_to_join_where_the_model_has_input_shape():
    """The README's CNN is built with input_shape: its check gave no hint at all."""
    model = nb.Sequential([Conv2D(1, 2, 3), Flatten(), Dense(2 * 26 * 26, 2)],
                          input_shape=(1, 28, 28), seed=0)  # fmt: skip
    X = np.zeros((4, 10, 1, 28, 28))
    with pytest.raises(ValueError, match=r"Join them: X\.reshape\(-1, 1, 28, 28\) \(and y") as told:
        model.predict(X)
    joined = eval(str(told.value).split("Join them: ")[1].split(" (and")[0])  # noqa: S307
    assert model.predict(joined).shape == (40,)


@pytest.mark.parametrize(
    "given, sample", [((100, 1, 28, 28), (1, 28, 28)), ((9, 28, 28, 3), (3, 28, 28))]
)
def test_an_input_shape_with_its_batch_axis_is_told_to_drop_it(given, sample):
    layers = [Conv2D(sample[0], 2, 3), Flatten(), Dense(2 * 26 * 26, 2)]
    with pytest.raises(ValueError, match=re.escape(f"without the batch axis: {sample}")):
        nb.Sequential(layers, input_shape=given)
    assert nb.Sequential(layers, input_shape=sample).input_shape == sample


def test_a_layer_of_ones_own_that_says_no_shape_stops_the_walk():
    """It keeps Layer.output_shape (the same shape) and flattens: the walk took it at its
    word and refused a model that trains."""

    class MyFlatten(nb.layers.Layer):
        def forward(self, x, training=True):
            self.shape = x.shape
            return nb.backend.namespace_of(x).reshape(x, (x.shape[0], -1))

        def backward(self, dy, input_grad=True):
            return nb.backend.namespace_of(dy).reshape(dy, self.shape)

    model = nb.Sequential([Conv2D(1, 2, 3), ReLU(), MyFlatten(), Dense(72, 2)], seed=0)
    X, y = np.random.default_rng(0).normal(size=(6, 1, 8, 8)), np.array([0, 1] * 3)
    history = model.fit(X, y, loss="cross_entropy", optimizer="sgd", verbose=0)
    assert np.isfinite(history["loss"][0]) and model.predict(X).shape == (6,)
    with pytest.raises(ValueError, match=r"X \(samples of shape \(3, 8, 8\)\) does not fit "
                       "layer 0"):  # fmt: skip
        model.predict(np.zeros((2, 3, 8, 8)))  # the layers before it are still walked


@pytest.mark.parametrize(
    ("X", "hint"),
    [
        (np.zeros((3, 8, 8)), r"through the model\. A single sample\? .*: X\[None\]$"),
        (np.zeros((5, 192)), r"transpose\(0, 3, 1, 2\); .* X.reshape\(len\(X\), 3, 8, 8\)$"),
        (np.zeros((5, 8, 8)), r"one channel \(grey\), not 3: give each 3 alike \(np\.repeat\("
                              r"X\[:, None\], 3, axis=1\)\), or train a model whose first layer "
                              r"is Conv2D\(1, \.\.\.\) on X\[:, None\]$"),
    ],
)  # fmt: skip
def test_images_a_model_cannot_place_get_the_layers_own_channels(X, hint):
    """Without input_shape the hint was always X.reshape(len(X), 1, 28, 28): MNIST's,
    whatever the layer's channels, and nothing for one image without its batch axis."""
    model = nb.Sequential([Conv2D(3, 4, 5), ReLU(), Flatten(), Dense(64, 2)], seed=0)
    with pytest.raises(ValueError, match=hint):
        model.predict(X)
    gray = nb.Sequential([Conv2D(1, 4, 5), Flatten()], seed=0)
    with pytest.raises(ValueError, match=r"X.reshape\(len\(X\), 1, 28, 28\)$"):
        gray.predict(np.zeros((5, 784)))
    with pytest.raises(ValueError, match=r"images of one channel need that axis: X\[:, None\]$"):
        gray.predict(np.zeros((5, 28, 28)))


def test_global_average_pooling_refuses_an_image_of_no_pixels():
    """An image of 0 rows gave NaN outputs and a NaN loss, with NumPy's warning alone."""
    model = nb.Sequential([GlobalAvgPool2D(), Dense(3, 2)], seed=0)
    with pytest.raises(ValueError, match=r"GlobalAvgPool2D\(\): an image of 0x5 pixels has no"):
        model.fit(np.zeros((2, 3, 0, 5)), np.array([0, 1]), loss="cross_entropy",
                  optimizer="sgd", verbose=0)  # fmt: skip
    with pytest.raises(ValueError, match=r"an image of 4x0 pixels has no mean"):
        model.forward(model.backend.asarray(np.zeros((2, 3, 4, 0))))


def test_one_image_and_channels_last_get_their_hints_everywhere():
    model = nb.Sequential([Conv2D(1, 2, 3), Flatten(), Dense(2 * 26 * 26, 2)],
                          input_shape=(1, 28, 28))  # fmt: skip
    with pytest.raises(ValueError, match=r"A single sample\? .* X.reshape\(1, 1, 28, 28\)"):
        model.predict(np.zeros((28, 28)))  # one MNIST image as it comes
    colour = nb.Sequential([Conv2D(3, 2, 3), Flatten(), Dense(72, 2)], input_shape=(3, 8, 8))
    with pytest.raises(ValueError, match=r"channels-last image\? Use X.transpose\(2, 0, 1\)"):
        colour.predict(np.zeros((8, 8, 3)))  # "X.reshape(1, 3, 8, 8)" scrambled its pixels
    with pytest.raises(ValueError, match=r"\(input_shape\), but its input has shape "
                       r"\(4, 28, 28, 1\)\. Channels last\? Use X.transpose"):  # fmt: skip
        model.forward(model.backend.asarray(np.zeros((4, 28, 28, 1))))


# --- training ---------------------------------------------------------------------


def test_a_small_conv_net_learns_on_every_backend(backend):
    model = conv_net(backend, dropout=0.1)
    history = model.fit(X_BARS, Y_BARS, optimizer=nb.optim.Adam(0.02), epochs=15, **FIT)
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert model.evaluate(X_BARS, Y_BARS)["accuracy"] >= 0.95
    X_test, y_test = bars(seed=1)
    assert model.evaluate(X_test, y_test)["accuracy"] >= 0.9


def test_conv_layers_keep_float32(backend):
    model = conv_net(backend)
    opt = nb.optim.Adam(0.01)
    model.fit(X_BARS, Y_BARS, optimizer=opt, epochs=1, **FIT)
    arrays = [*model.params.values(), *model.grads.values(), *model.state.values()]
    assert all(a.dtype == backend.xp.float32 for a in arrays)


def test_whole_conv_net_gradients_match_numerical_ones(backend64):
    """Dropout included: check_gradients draws the same masks at every evaluation. (No
    bias before BatchNorm: its true gradient is 0, and a relative error of noise.)"""
    model = nb.Sequential(
        [Conv2D(1, 2, 3, padding=1, bias=False), BatchNorm(2), ReLU(), MaxPool2D(2),
         Flatten(), Dropout(0.3), Dense(8, 3)],
        backend=backend64, seed=0, input_shape=(1, 4, 4),
    )  # fmt: skip
    X = np.random.default_rng(0).normal(size=(3, 1, 4, 4))
    errors = nb.gradcheck.check_gradients(model, SoftmaxCrossEntropy(), X, np.array([0, 2, 1]))
    assert set(errors) == set(model.params)
    assert max(errors.values()) < 1e-6, errors


def small_conv_net(backend):
    """Conv2D (2 filters, 3x3) on 1x5x5 images, then Dense(18, 3): two weights that L2
    decays, two biases it leaves alone."""
    layers = [Conv2D(1, 2, 3), ReLU(), Flatten(), Dense(18, 3)]
    return nb.Sequential(layers, backend=backend, seed=0, input_shape=(1, 5, 5))


X_SMALL = np.random.default_rng(1).normal(size=(4, 1, 5, 5))
Y_SMALL = np.array([0, 2, 1, 2])


def test_l2_decays_the_conv_weights_and_not_their_bias(backend):
    model = small_conv_net(backend)
    assert model.decayed_names() == ["0.W", "3.W"]


def test_conv_net_gradients_with_l2_match_numerical_ones(backend64):
    model = small_conv_net(backend64)
    errors = nb.gradcheck.check_gradients(model, SoftmaxCrossEntropy(), X_SMALL, Y_SMALL, l2=0.5)
    assert set(errors) == set(model.params)
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("flat", [True, False])
def test_a_step_with_l2_adds_half_lambda_sum_of_squares_of_the_conv_and_dense_weights(
    backend64, flat
):
    """The step's loss is the plain loss + l2/2 (|conv W|^2 + |dense W|^2), and SGD moves
    each weight by -lr (dL/dW + l2 W), each bias by -lr dL/db alone (by hand, in float64;
    the flat buffer's one decay call and the per-weight one alike)."""
    lam, lr = 0.5, 0.1
    model = small_conv_net(backend64)
    loss = SoftmaxCrossEntropy()
    X, y = backend64.asarray(X_SMALL), backend64.asarray(Y_SMALL)
    before = {k: nb.to_numpy(v).copy() for k, v in model.params.items()}
    plain = backend64.to_float(loss.forward(model.forward(X, training=True), y))
    model.backward(loss.backward())
    grads = {k: nb.to_numpy(v).copy() for k, v in model.grads.items()}
    step = model.step_function(loss, nb.optim.SGD(lr), nb.losses.L2(lam), flat=flat)
    value, _ = step(X, y)
    squares = np.sum(before["0.W"] ** 2) + np.sum(before["3.W"] ** 2)
    assert backend64.to_float(value) == pytest.approx(plain + lam / 2 * squares, rel=1e-12)
    for name, W in before.items():
        decay = lam * W if name.endswith(".W") else 0.0
        want = W - lr * (grads[name] + decay)
        np.testing.assert_allclose(nb.to_numpy(model.params[name]), want, rtol=1e-12, atol=1e-15)


# --- BatchNorm --------------------------------------------------------------------


def test_batch_norm_evaluates_with_its_running_statistics(backend):
    model = conv_net(backend, dropout=0.0)
    model.fit(X_BARS, Y_BARS, optimizer=nb.optim.Adam(0.01), epochs=2, **FIT)
    state = {k: backend.to_numpy(v).copy() for k, v in model.state.items()}
    assert not np.allclose(state["1.running_mean"], 0)  # trained: the averages moved
    logits = model.predict_proba(X_BARS[:5])  # host in, host out
    model.evaluate(X_BARS, Y_BARS)
    for name, value in model.state.items():  # predict and evaluate leave them alone
        np.testing.assert_array_equal(backend.to_numpy(value), state[name])
    # by hand: the same layers, BatchNorm with the running statistics
    x = backend.asarray(X_BARS[:5])
    h = model.layers[0].forward(x, training=False)
    bn = model.layers[1]
    mean = backend.xp.reshape(bn.state["running_mean"], (1, -1, 1, 1))
    var = backend.xp.reshape(bn.state["running_var"], (1, -1, 1, 1))
    gamma = backend.xp.reshape(bn.params["gamma"], (1, -1, 1, 1))
    beta = backend.xp.reshape(bn.params["beta"], (1, -1, 1, 1))
    h = (h - mean) / backend.xp.sqrt(var + bn.eps) * gamma + beta
    for layer in model.layers[2:]:
        h = layer.forward(h, training=False)
    expected = backend.to_numpy(nb.functional.softmax(h))
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)


def test_validation_runs_in_eval_mode(backend):
    """Validating every epoch changes neither the running statistics nor the masks."""
    runs = []
    for validation in (None, (X_BARS[:16], Y_BARS[:16])):
        model = conv_net(backend)
        model.fit(X_BARS, Y_BARS, optimizer=nb.optim.Adam(0.01), epochs=3,
                  validation_data=validation, **FIT)  # fmt: skip
        runs.append({k: nb.to_numpy(v) for k, v in [*model.params.items(), *model.state.items()]})
    for name in runs[0]:
        np.testing.assert_array_equal(runs[0][name], runs[1][name])


def test_to_moves_the_running_statistics(backend):
    model = conv_net("numpy")
    model.fit(X_BARS, Y_BARS, optimizer=nb.optim.SGD(0.1), epochs=1, **FIT)
    before = {k: nb.to_numpy(v).copy() for k, v in model.state.items()}
    model.to(backend)
    for name, value in model.state.items():
        assert backend.owns(value)
        np.testing.assert_array_equal(backend.to_numpy(value), before[name])


def test_early_stopping_restores_the_running_statistics_with_the_weights(backend):
    model = conv_net(backend, dropout=0.0)
    stop = nb.callbacks.EarlyStopping("loss", patience=2)
    saved = {}

    def keep(epoch, logs, m):
        saved[epoch] = {k: nb.to_numpy(v).copy() for k, v in [*m.params.items(), *m.state.items()]}

    model.fit(X_BARS, Y_BARS, optimizer=nb.optim.SGD(5.0), epochs=8,
              callbacks=[stop, nb.callbacks.LambdaCallback(keep)], **FIT)  # fmt: skip
    assert stop.best_epoch is not None and stop.best_epoch < max(saved)
    for name, value in host_arrays(model).items():
        np.testing.assert_array_equal(value, saved[stop.best_epoch][name])


def test_batch_norm_refuses_a_batch_of_one_value_per_channel():
    layer = BatchNorm(3)
    layer.build(nb.get_backend("numpy"), nb.Generator(0))
    with pytest.raises(ValueError, match="more than one value per channel.*batches of 2"):
        layer.forward(np.ones((1, 3), np.float32))
    assert layer.forward(np.ones((1, 3), np.float32), training=False).shape == (1, 3)


# --- Dropout ----------------------------------------------------------------------


def dropout_only(backend, rate=0.5, seed=3):
    return nb.Sequential([Dropout(rate)], backend=backend, seed=seed)


def masks(backend, steps: int = 3) -> list:
    model = dropout_only(backend)
    ones = model.backend.asarray(np.ones((20, 3, 4, 5), np.float32))
    return [nb.to_numpy(model.forward(ones, training=True)) for _ in range(steps)]


def test_one_seed_gives_the_same_masks_on_every_backend():
    drawn = {name: masks(name) for name in CPU_BACKEND_NAMES}
    assert not np.array_equal(drawn["numpy"][0], drawn["numpy"][1])  # fresh every step
    for name in CPU_BACKEND_NAMES[1:]:
        for got, want in zip(drawn[name], drawn["numpy"], strict=True):
            np.testing.assert_array_equal(got, want)


def test_masks_on_this_backend_are_numpys(backend):
    """The same, for each backend here, CuPy included where a GPU answers."""
    for got, want in zip(masks(backend), masks("numpy"), strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_dropout_drops_its_share_and_keeps_the_mean(rate):
    model = dropout_only("numpy", rate)
    y = model.forward(np.ones((1000, 100), np.float32), training=True)
    dropped = float((y == 0).mean())
    assert abs(dropped - rate) < 4 * np.sqrt(rate * (1 - rate) / y.size)
    assert set(np.unique(y)) == {0.0, np.float32(1 / (1 - rate))}
    assert abs(float(y.mean()) - 1) < 4 * np.sqrt(rate / (1 - rate) / y.size)
    dy = np.full(y.shape, 2.0, np.float32)
    np.testing.assert_array_equal(model.backward(dy), 2 * y)  # the same mask, backwards


def test_dropout_is_the_identity_when_not_training(backend):
    model = dropout_only(backend)
    x = nb.Generator(0).normal((4, 6), backend=backend)
    assert model.forward(x, training=False) is x
    assert model(x) is x
    assert model.layers[0].backward(x) is x


def test_dropout_needs_a_generator_to_train():
    layer = Dropout(0.5)
    with pytest.raises(ValueError, match=r"draws its masks from a generator.*rng=nb.Generator"):
        layer.forward(np.ones((2, 2), np.float32), training=True)
    assert layer.forward(np.ones((2, 2), np.float32), training=False).shape == (2, 2)
    with pytest.raises(
        ValueError,
        match=r"Dropout rate \(the share dropped\) must be a finite number in \[0, 1\), got 1.0",
    ):
        Dropout(1.0)


def transfers_and_copies(backend, batch_size, monkeypatch):
    """(device-to-host transfers, host-to-device copies) of one epoch of fit."""
    copies = []
    real = type(backend).asarray

    def counting(self, data, dtype=None):
        if not isinstance(data, self.array_types):
            copies.append(getattr(data, "shape", None))
        return real(self, data, dtype)

    model = conv_net(backend)
    X, y = backend.asarray(X_BARS), backend.asarray(Y_BARS)  # already on the device
    fit = {**FIT, "batch_size": batch_size}
    with monkeypatch.context() as patch:
        patch.setattr(type(backend), "asarray", counting)
        with nb.count_host_transfers() as transfers:
            model.fit(X, y, optimizer=nb.optim.Adam(0.01), epochs=1, **fit)
    return transfers.count, len(copies)


def test_dropout_and_batch_norm_make_no_host_copy_per_step(backend, monkeypatch):
    """2 steps or 12 steps: the same transfers (data checks and one log) and the same
    host-to-device copies (the epoch's shuffled order): none of them per step."""
    assert transfers_and_copies(backend, 24, monkeypatch) == transfers_and_copies(
        backend, 4, monkeypatch
    )


# --- checkpoints ------------------------------------------------------------------


@functools.cache
def trained_on_numpy():
    model = conv_net()
    opt = nb.optim.Adam(0.01)
    model.fit(X_BARS, Y_BARS, optimizer=opt, epochs=2, **FIT)
    return model, opt


def host_arrays(model):
    return {k: nb.to_numpy(v).copy() for k, v in [*model.params.items(), *model.state.items()]}


@pytest.mark.parametrize("target", CPU_BACKEND_NAMES)
def test_conv_checkpoints_load_on_every_backend(target, tmp_path):
    model, opt = trained_on_numpy()
    nb.save(model, tmp_path / "conv.h5", optimizer=opt, epoch=1)
    again = nb.load(tmp_path / "conv.h5", backend=target)
    assert again.config() == model.config() and again.input_shape == (1, 6, 6)
    expected = host_arrays(model)
    got = host_arrays(again)
    assert list(got) == list(expected) and "1.running_var" in got
    for name in expected:
        assert got[name].tobytes() == expected[name].tobytes(), name
    np.testing.assert_allclose(
        nb.to_numpy(again.predict_proba(X_BARS)), nb.to_numpy(model.predict_proba(X_BARS)),
        rtol=1e-5, atol=1e-6,
    )  # fmt: skip
    back = nb.load(nb.save(again, tmp_path / "back.h5"), backend="numpy")
    for name, value in host_arrays(back).items():
        assert value.tobytes() == expected[name].tobytes(), name


def test_checkpoint_holds_the_dropout_stream(tmp_path):
    model, _ = trained_on_numpy()
    nb.save(model, tmp_path / "conv.h5")
    with h5py.File(tmp_path / "conv.h5", "r") as f:
        saved = json.loads(f["training"].attrs["generator"])
    assert saved["philox"] == model.rng.state["philox"]
    assert saved["philox"]["counter"] > 0


def test_resume_with_dropout_and_batch_norm_is_bit_for_bit(backend, tmp_path):
    path = tmp_path / "run.h5"
    straight = conv_net(backend)
    straight.fit(X_BARS, Y_BARS, optimizer=nb.optim.Adam(0.01), epochs=4, **FIT)
    model = conv_net(backend)
    model.fit(X_BARS, Y_BARS, optimizer=nb.optim.Adam(0.01), epochs=2, checkpoint=path, **FIT)
    model = conv_net(backend, seed=123)  # another seed: everything comes from the file
    history = model.fit(X_BARS, Y_BARS, optimizer=nb.optim.Adam(0.01), epochs=4,
                        checkpoint=path, resume=True, **FIT)  # fmt: skip
    assert history.epochs == [2, 3]
    expected = host_arrays(straight)
    for name, value in host_arrays(model).items():
        assert value.tobytes() == expected[name].tobytes(), name
    assert model.rng.state == straight.rng.state


def test_a_sigmoid_before_pooling_and_flatten_is_seen_as_the_outputs_range(backend):
    """Pooling and Flatten keep their input's range, but only the last layer was asked:
    a logits loss after Sigmoid -> GlobalAvgPool2D trained without the warning a final
    Sigmoid gets (and to chance), and predict_proba took its probabilities for scores."""
    X = np.random.default_rng(0).normal(size=(8, 1, 4, 4))
    pooled = nb.Sequential([nb.layers.Conv2D(1, 1, 1), nb.layers.Sigmoid(),
                            nb.layers.GlobalAvgPool2D()], backend=backend, seed=0)  # fmt: skip
    with pytest.warns(UserWarning, match=r"already ends in Sigmoid\(\) then GlobalAvgPool2D"):
        pooled.fit(X, np.arange(8) % 2, loss=nb.losses.BinaryCrossEntropy(from_logits=True),
                   optimizer="sgd", verbose=0)  # fmt: skip
    flat = nb.Sequential([nb.layers.Conv2D(1, 1, 1), nb.layers.Sigmoid(), nb.layers.MaxPool2D(2),
                          nb.layers.Flatten()], backend=backend, seed=0)  # fmt: skip
    proba = nb.to_numpy(flat.predict_proba(X[:3]))
    assert proba.shape == (3, 4) and 0 <= proba.min() and proba.max() <= 1
    # trained with MSE (an autoencoder), predict gives the values, as for a Dense model:
    # labels come only from a model whose last layer gives probabilities
    flat.fit(X, np.random.default_rng(1).random((8, 4)), loss="mse", optimizer="sgd", verbose=0)
    values = nb.to_numpy(flat.predict(X[:2]))
    assert values.dtype == flat.backend.dtype_name and values.shape == (2, 4)
    layers = [nb.layers.Conv2D(1, 1, 1), nb.layers.Sigmoid(), nb.layers.Dropout(0.5)]
    dropped = nb.Sequential([*layers, nb.layers.Flatten()], backend=backend)
    said = r"ends in Dropout\(rate=0\.5\) then Flatten\(\), which scales .*the last Dense or Conv2D"
    with pytest.raises(ValueError, match=said):
        dropped.fit(X, np.zeros((8, 16)), loss="bce", optimizer="sgd", verbose=0)  # as last
    raw = nb.Sequential([nb.layers.Conv2D(1, 1, 1), nb.layers.MaxPool2D(2), nb.layers.Flatten()],
                        backend=backend, seed=0)  # fmt: skip
    said = r"ends in Conv2D\(.*\) then MaxPool2D\(.*\) then Flatten\(\), whose outputs"
    with pytest.raises(ValueError, match=said):
        raw.fit(X, np.zeros((8, 4)), loss="bce", optimizer="sgd", verbose=0)


def test_image_targets_that_do_not_fit_are_named_with_the_datas_shapes(backend):
    """A model of image outputs (a denoiser) given (N, 8, 8) targets for (N, 1, 8, 8)
    outputs failed at the first step, with a batch's shapes and no way out."""
    model = nb.Sequential([nb.layers.Conv2D(1, 1, 3, padding=1)], input_shape=(1, 8, 8),
                          backend=backend, seed=0)  # fmt: skip
    X = np.random.default_rng(0).normal(size=(64, 1, 8, 8))
    said = r"^y has samples of shape \(8, 8\), but the model gives \(1, 8, 8\): y\.reshape\(len"
    with pytest.raises(ValueError, match=said):
        model.fit(X, X[:, 0], loss="mse", optimizer="sgd", batch_size=10, verbose=0)
    with pytest.raises(ValueError, match=r"\(64,\), but the model gives \(1, 8, 8\): y\.reshape"):
        model.fit(X, X.reshape(64, 64), loss="mse", optimizer="sgd", batch_size=10, verbose=0)
    with pytest.raises(ValueError, match=r"shape \(\), but the model gives \(1, 8, 8\)$"):
        model.fit(X, np.zeros(64), loss="mse", optimizer="sgd", batch_size=10, verbose=0)
    history = model.fit(X, X, loss="mse", optimizer="sgd", batch_size=10, verbose=0)
    assert np.isfinite(history["loss"][0])
    # a model not given input_shape works its output shape out from X's; colour targets
    # laid out channels last are told to transpose (a reshape would scramble them)
    colour = nb.Sequential([nb.layers.Conv2D(3, 3, 3, padding=1)], backend=backend, seed=0)
    X3 = np.random.default_rng(1).normal(size=(20, 3, 8, 8))
    told = r"gives \(3, 8, 8\)\. Channels last\? Use y\.transpose\(0, 3, 1, 2\)\.$"
    with pytest.raises(ValueError, match=told):
        colour.fit(X3, X3.transpose(0, 2, 3, 1), loss="mse", optimizer="sgd", verbose=0)


def test_binary_accuracy_of_image_outputs_is_the_share_of_right_pixels(backend):
    """A sigmoid per pixel under BCE (a mask): the accuracy was the count of right pixels
    a sample (25.9 of 64), where it is the share, as for several outputs of a row."""
    X = np.random.default_rng(0).normal(size=(16, 1, 8, 8))
    mask = (X > 0).astype(np.float64)
    model = nb.Sequential([nb.layers.Conv2D(1, 1, 3, padding=1), nb.layers.Sigmoid()],
                          backend=backend, seed=0)  # fmt: skip
    model.fit(X, mask, loss="bce", optimizer="sgd", verbose=0)
    right = (nb.to_numpy(model.forward(model.backend.asarray(X), False)) > 0.5) == (mask > 0.5)
    assert model.evaluate(X, mask)["accuracy"] == pytest.approx(right.mean(), rel=1e-6)


class FlattenOfOnesOwn(nb.layers.Layer):
    """Flattens, and keeps Layer's default output_shape (the guide allows it)."""

    def forward(self, x, training=True):
        self._shape = tuple(x.shape)
        return nb.backend.namespace_of(x).reshape(x, (x.shape[0], -1))

    def backward(self, dy, input_grad=True):
        return nb.backend.namespace_of(dy).reshape(dy, self._shape)


def test_targets_are_not_held_to_a_shape_a_layer_of_ones_own_may_change(backend):
    """A reshaping last layer of one's own that keeps Layer.output_shape: the targets
    were held to the shape before it, and right ones refused."""
    model = nb.Sequential([nb.layers.Conv2D(1, 1, 3, padding=1), FlattenOfOnesOwn()],
                          backend=backend, seed=0)  # fmt: skip
    X = np.random.default_rng(0).normal(size=(16, 1, 8, 8))
    history = model.fit(X, X.reshape(16, 64), loss="mse", optimizer="sgd", verbose=0)
    assert np.isfinite(history["loss"][0])


def test_a_sigmoid_denoiser_under_mse_predicts_in_its_output_shape(backend):
    """Conv2D -> Sigmoid trained with MSE: predict's threshold dropped the channel axis
    meant for a (batch, 1) row (NumPy), or raised IndexError (strict)."""
    X = np.random.default_rng(0).random((8, 1, 8, 8))
    model = nb.Sequential([nb.layers.Conv2D(1, 1, 3, padding=1), nb.layers.Sigmoid()],
                          backend=backend, seed=0)  # fmt: skip
    with pytest.warns(UserWarning, match=r"predict\(X\) will give labels"):  # pixels' values
        model.fit(X, X, loss="mse", optimizer="sgd", verbose=0)
    assert nb.to_numpy(model.predict(X[:2])).shape == (2, 1, 8, 8)


def test_a_single_grey_image_is_told_to_become_a_batch_of_one(backend):
    """predict(X[0, 0]), one 28 x 28 digit, was told to reshape 28 rows of 28 pixels
    into images; rows of 784 pixels are still told that."""
    model = nb.Sequential([nb.layers.Conv2D(1, 2, 3), nb.layers.Flatten()], backend=backend)
    for side in (28, 16, 64):  # 16 and 64 rows of pixels would also fill square images
        with pytest.raises(ValueError, match=r"A single grey image\? .*: X\[None, None\]$"):
            model.predict(np.zeros((side, side)))
    with pytest.raises(ValueError, match=r"X\.reshape\(len\(X\), 1, 28, 28\)$"):
        model.predict(np.zeros((5, 784)))


@pytest.mark.parametrize("shape", [(64, 64, 3), (28, 28, 1), (8, 8, 3)])
def test_a_single_channels_last_image_is_told_to_transpose_into_a_batch_of_one(shape, backend):
    """predict(image) of one (H, W, C) photo, as PIL and Keras give it, was told to
    reshape rows of pixels into images (X.reshape(len(X), 3, 8, 8) for 64 rows of 3),
    or to add a channel axis, X[:, None]: either way a batch that is not the image."""
    model = nb.Sequential([nb.layers.Conv2D(shape[2], 2, 3), nb.layers.Flatten()], backend=backend)
    model.loss = nb.losses.MSE()  # a regression: predict gives the outputs as they are
    image = np.random.default_rng(0).random(shape)
    with pytest.raises(
        ValueError, match=r"channels-last image\? Use X\.transpose\(2, 0, 1\)\[None\]$"
    ):
        model.predict(image)
    batch = model.predict(image.transpose(2, 0, 1)[None])  # the hint, followed, is taken
    assert nb.to_numpy(batch).shape == (1, 2 * (shape[0] - 2) * (shape[1] - 2))


def test_flattened_colour_targets_are_told_no_reshape_that_may_scramble_them(backend):
    """Rows of 192 for (3, 8, 8) outputs may have been flattened channels last (PIL's,
    TensorFlow's): the channels-first reshape offered would scramble those silently."""
    model = nb.Sequential([nb.layers.Conv2D(3, 3, 3, padding=1)], backend=backend, seed=0)
    X = np.random.default_rng(0).normal(size=(16, 3, 8, 8))
    with pytest.raises(ValueError, match=r"\(192,\), but the model gives \(3, 8, 8\)$"):
        model.fit(X, X.transpose(0, 2, 3, 1).reshape(16, -1), loss="mse", optimizer="sgd")


@pytest.mark.parametrize("input_shape", [(3, 8, 8), None])
def test_rows_of_colour_pixels_are_told_both_orders_they_may_have_been_flattened_in(
    input_shape, backend
):
    """Rows of 192 for (3, 8, 8) images were told X.reshape(len(X), 3, 8, 8): rows
    flattened channels last, as load_catvnoncat() gives them, came out scrambled and
    trained without a word. The hint now says both orders; each, followed, is exact."""
    model = nb.Sequential([Conv2D(3, 2, 3), Flatten()], input_shape=input_shape, backend=backend)
    model.loss = nb.losses.MSE()
    images = np.random.default_rng(0).random((5, 3, 8, 8))
    last, first = images.transpose(0, 2, 3, 1).reshape(5, -1), images.reshape(5, -1)
    with pytest.raises(ValueError) as told:
        model.predict(last)
    hint = str(told.value)
    assert "X.reshape(len(X), 8, 8, 3).transpose(0, 3, 1, 2)" in hint
    assert hint.endswith("X.reshape(len(X), 3, 8, 8)" + ("." if input_shape else ""))
    expected = nb.to_numpy(model.predict(images))
    np.testing.assert_array_equal(
        nb.to_numpy(model.predict(last.reshape(5, 8, 8, 3).transpose(0, 3, 1, 2))), expected
    )
    np.testing.assert_array_equal(nb.to_numpy(model.predict(first.reshape(5, 3, 8, 8))), expected)


def _told_code(error) -> str:
    """The code a hint ends with: after its last "Use " or ": "."""
    text = str(error.value).rstrip(".")
    at = max(text.rfind("Use ") + len("Use "), text.rfind(": ") + len(": "))
    return text[at:]


@pytest.mark.parametrize("shape", [(28, 28), (8, 8, 3), (3, 8, 8)])
def test_a_single_images_hint_runs_as_written_on_its_own_library(shape, backend):
    """X[None] and X[None, None] are index errors on array-api-strict (all axes or
    ..., it asks), which has no transpose method either; torch's transpose swaps two
    axes, where X.transpose(2, 0, 1) was told."""
    channels = 1 if len(shape) == 2 else 3
    model = nb.Sequential([Conv2D(channels, 2, 3), Flatten()], backend=backend)
    model.loss = nb.losses.MSE()
    X = backend.asarray(np.random.default_rng(0).random(shape).astype(np.float32))
    with pytest.raises(ValueError, match="A single") as told:
        model.predict(X)
    batch = eval(_told_code(told), {"np": np, "array_api_strict": array_api_strict, "X": X})  # noqa: S307 - the library's own hint
    side = shape[1] - 2  # a 3 x 3 kernel's output
    assert nb.to_numpy(model.predict(batch)).shape == (1, 2 * side * side)


@pytest.mark.parametrize("given", ["list", "hdf5"])
def test_hints_for_a_list_or_an_hdf5_dataset_run_on_it(given, tmp_path):
    """NumPy reads them before the checks, and the hints wrote that array's methods:
    X.transpose(0, 3, 1, 2) and X[None], which a list and an h5py dataset lack."""
    images = np.random.default_rng(0).random((6, 8, 8, 3)).astype(np.float32)
    file = h5py.File(tmp_path / "images.h5", "w")
    file["X"], file["one"] = images, images[0]
    X, one = (images.tolist(), images[0].tolist()) if given == "list" else (file["X"], file["one"])
    model = nb.Sequential([Conv2D(3, 2, 3), ReLU(), GlobalAvgPool2D(), Dense(2, 2)], seed=0)
    y = np.array([0, 1] * 3)
    with pytest.raises(ValueError, match="Channels last") as told:
        model.fit(X, y, loss="cross_entropy", optimizer="sgd", verbose=0)
    fixed = eval(_told_code(told), {"np": np, "X": X})  # noqa: S307 - the library's own hint
    np.testing.assert_array_equal(fixed, images.transpose(0, 3, 1, 2))
    with pytest.raises(ValueError, match="A single channels-last image") as told:
        model.predict(one)
    batch = eval(_told_code(told), {"np": np, "X": one})  # noqa: S307 - the library's own hint
    assert model.predict(batch).shape == (1,)
    with pytest.raises(ValueError, match=r"Pass np\.asarray\(y\)\.T$") as told:
        nb.Sequential([Dense(4, 2)]).fit(
            np.zeros((3, 4)), np.eye(2, 3).tolist(), loss="cross_entropy", optimizer="sgd"
        )


def test_hints_for_a_list_hold_once_the_list_is_split_or_cast():
    """The rows validation_split keeps, integer targets cast to int64 and check_gradients'
    copy were no longer the list's: X.transpose(0, 3, 1, 2) and y.T were told again."""
    from nnbackend.gradcheck import check_gradients

    rng = np.random.default_rng(0)
    images = rng.random((10, 8, 8, 3)).tolist()
    net = nb.Sequential([Conv2D(3, 2, 3), Flatten(), Dense(72, 2)], seed=0)
    fit = dict(loss="cross_entropy", optimizer="sgd", epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"Use np\.transpose\(X, \(0, 3, 1, 2\)\)\.$"):
        net.fit(images, [0, 1] * 5, validation_split=0.2, **fit)
    columns = list(np.eye(3, dtype=np.uint8)[np.arange(10) % 3].T)  # (classes, samples)
    with pytest.raises(ValueError, match=r"Pass np\.asarray\(y\)\.T$"):
        nb.Sequential([Dense(4, 3)], seed=0).fit(rng.random((10, 4)), columns, **fit)
    integers = rng.integers(0, 5, (4, 8, 8, 3)).tolist()
    with pytest.raises(ValueError, match=r"Use np\.transpose\(X, \(0, 3, 1, 2\)\)\.$"):
        check_gradients(net, "cross_entropy", integers, [0, 1, 0, 1])


def test_hints_for_rows_or_one_image_in_a_list_run_on_the_list():
    """np.reshape(X, (X.shape[0], ...)) and X[None] fail on a list, which has neither."""
    model = nb.Sequential([Conv2D(1, 2, 3), Flatten()], seed=0)
    with pytest.raises(ValueError, match=r"Reshape them: np\.reshape\(X, \(len\(X\), 1, 8, 8\)\)"):
        model.predict(np.zeros((4, 64)).tolist())
    colour = nb.Sequential([Conv2D(3, 2, 3), Flatten()], seed=0)
    with pytest.raises(ValueError, match=r"batch of one: np\.asarray\(X\)\[None\]$"):
        colour.predict(np.zeros((3, 8, 8)).tolist())


def test_channels_last_targets_in_a_list_keep_the_lists_hint_after_validation_split():
    model = nb.Sequential([Conv2D(1, 2, 3, padding=1)], input_shape=(1, 8, 8), seed=0)
    with pytest.raises(ValueError, match=r"np\.transpose\(y, \(0, 3, 1, 2\)\)"):
        model.fit(np.zeros((10, 1, 8, 8)), np.zeros((10, 8, 8, 2)).tolist(), loss="mse",
                  optimizer="sgd", epochs=1, verbose=0, validation_split=0.2)  # fmt: skip


def test_a_forward_channels_last_hint_gives_what_forward_takes(backend):
    """On array-api-strict, np.transpose(X, ...) was told: a NumPy array, which the
    model's forward then refuses."""
    model = nb.Sequential([Conv2D(3, 2, 3), Flatten()], backend=backend, seed=0)
    images = np.random.default_rng(0).random((2, 3, 5, 5)).astype(np.float32)
    X = backend.asarray(images.transpose(0, 2, 3, 1))
    with pytest.raises(ValueError, match="Channels last") as told:
        model.forward(X)
    names = {"np": np, "array_api_strict": array_api_strict, "X": X}
    fixed = eval(_told_code(told), names)  # noqa: S307 - the library's own hint
    np.testing.assert_array_equal(nb.to_numpy(fixed), images)
    assert tuple(model.forward(fixed).shape) == (2, 18)


def test_a_batch_of_square_rows_is_told_the_rows_reshape_beside_the_single_image():
    """64 digits of 8 x 8, flattened: (64, 64), were told only that they might be one
    grey image, X[None, None], which then predicts one label for the 64."""
    model = nb.Sequential([Conv2D(1, 2, 3), Flatten()], seed=0)
    with pytest.raises(ValueError) as told:
        model.predict(np.zeros((64, 64)))
    assert "Reshape them: X.reshape(len(X), 1, 8, 8). A single grey image?" in str(told.value)


def test_an_image_targets_reshape_hint_runs_as_written(backend):
    """y.reshape(len(y), 1, 6, 6) was told for strict targets, which have no reshape
    method and no len."""
    X = np.random.default_rng(0).random((4, 1, 6, 6)).astype(np.float32)
    model = nb.Sequential(
        [Conv2D(1, 1, 3, padding=1), nb.layers.Sigmoid()], backend=backend, seed=0
    )
    y = backend.asarray(X[:, 0])
    with pytest.raises(ValueError, match=r"but the model gives \(1, 6, 6\): ") as told:
        model.fit(X, y, loss="mse", optimizer="sgd", verbose=0)
    fixed = eval(_told_code(told), {"np": np, "array_api_strict": array_api_strict, "y": y})  # noqa: S307 - the library's own hint
    assert tuple(fixed.shape) == X.shape
    with pytest.warns(UserWarning, match="predict_proba"):  # a sigmoid's pixels under MSE
        model.fit(X, fixed, loss="mse", optimizer="sgd", verbose=0)


def test_a_channels_last_batch_whose_height_is_its_channels_is_told_to_transpose(backend):
    """(5, 3, 4, 3) for (3, 3, 4) images: read as channels first by its second axis, it
    was told X.reshape(len(X), 3, 3, 4), which the model takes, its pixels scrambled."""
    model = nb.Sequential([Conv2D(3, 2, 3, padding=1), Flatten(), Dense(24, 2)],
                          input_shape=(3, 3, 4), backend=backend, seed=0)  # fmt: skip
    images = np.random.default_rng(0).normal(size=(5, 3, 3, 4))
    with pytest.raises(ValueError, match=r"Use X\.transpose\(0, 3, 1, 2\)\.$"):
        model.fit(
            images.transpose(0, 2, 3, 1),
            np.zeros(5, int),
            loss="cross_entropy",
            optimizer="sgd",
            verbose=0,
        )
    target = nb.Sequential([Conv2D(3, 3, 3, padding=1)], backend=backend, seed=0)
    with pytest.raises(ValueError, match=r"Use y\.transpose\(0, 3, 1, 2\)\.$"):
        target.fit(images, images.transpose(0, 2, 3, 1), loss="mse", optimizer="sgd")


@pytest.mark.parametrize("shape", [(6, 25), (6, 5, 5)])
def test_layer_0s_rows_hint_is_written_for_the_array_and_its_name(shape, backend):
    """Without input_shape, layer 0's hint for rows of pixels said X, in NumPy's words:
    of validation data it told the training data's fix, and on array-api-strict its
    X.reshape and X[:, None] fail."""
    model = nb.Sequential([Conv2D(1, 2, 3, padding=1), GlobalAvgPool2D(), Dense(2, 2)],
                          backend=backend, seed=0)  # fmt: skip
    images = np.arange(150.0).reshape(6, 1, 5, 5)
    X = backend.asarray(images.reshape(shape))
    with pytest.raises(ValueError) as told:
        model.fit(X, np.zeros(6, int), loss="cross_entropy", optimizer="sgd", verbose=0)
    fixed = eval(_told_code(told), {"np": np, "array_api_strict": array_api_strict, "X": X})  # noqa: S307 - the library's own hint
    np.testing.assert_array_equal(nb.to_numpy(fixed), images)
    with pytest.raises(ValueError, match=r"X_val(\.reshape\(len\(X_val\), 1, 5, 5\)|\[:, None\])$"):
        model.fit(
            images,
            np.zeros(6, int),
            validation_data=(images.reshape(shape), np.zeros(6, int)),
            loss="cross_entropy",
            optimizer="sgd",
            verbose=0,
        )


def test_a_fit_with_a_target_a_row_is_not_told_x_is_one_image(backend):
    """Rows of 20 pixels and a label each: fit offered X[None, None], one grey image,
    which the labels then refute."""
    model = nb.Sequential([Conv2D(1, 2, 3, padding=1), GlobalAvgPool2D(), Dense(2, 2)],
                          backend=backend, seed=0)  # fmt: skip
    with pytest.raises(ValueError) as told:
        model.fit(
            np.zeros((8, 20)), np.zeros(8, int), loss="cross_entropy", optimizer="sgd", verbose=0
        )
    assert "A single" not in str(told.value)
    model.loss = nb.losses.SoftmaxCrossEntropy()
    with pytest.raises(ValueError, match=r"A single grey image\?"):
        model.predict(np.zeros((8, 20)))  # no labels: it may be one image


def test_one_flattened_grey_image_is_told_its_reshape(backend):
    model = nb.Sequential([Conv2D(1, 2, 3, padding=1), Flatten(), Dense(72, 2)],
                          input_shape=(1, 6, 6), backend=backend, seed=0)  # fmt: skip
    model.loss = nb.losses.SoftmaxCrossEntropy()
    with pytest.raises(ValueError, match=r"flattened image\? .*: X\.reshape\(1, 1, 6, 6\)\.$"):
        model.predict(np.zeros(36))
    assert model.predict(np.zeros(36).reshape(1, 1, 6, 6)).shape == (1,)


def test_a_layer_order_mistake_is_not_told_to_reshape_x():
    """Flatten before Conv2D was told X.reshape(len(X), 1, 28, 28): the shape X had."""
    with pytest.raises(ValueError, match=r"not \(784,\) \(layer 1\)$") as info:
        nb.Sequential([Flatten(), Conv2D(1, 4, 3)], input_shape=(1, 28, 28))
    assert "reshape" not in str(info.value)


def test_batchnorm_on_images_of_no_pixels_is_told_so_not_to_grow_the_batch():
    """A batch of 4 images of 0x2 pixels was told to use batches of 2 or more."""
    model = nb.Sequential([BatchNorm(3)], seed=0)
    X = np.zeros((8, 3, 0, 2))
    with pytest.raises(ValueError, match=r"images of 0x2 pixels have nothing to normalise"):
        model.fit(X, X, loss="mse", optimizer="sgd", batch_size=4, verbose=0)
