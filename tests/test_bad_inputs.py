"""Inputs that used to give silent wrong results or raw errors (findings 6 and 7 of the
hardening review), each now with a clear error or a documented result."""

from __future__ import annotations

import functools
import gzip
import io
import json
import math
import os
import re
import struct
import subprocess
import sys
import textwrap
import zipfile
import zlib

import h5py
import numpy as np
import pytest
from sklearn.preprocessing import LabelEncoder

import nnbackend as nb
from nnbackend import datasets, h5child
from nnbackend.datasets.idx import MAX_IDX_BYTES
from nnbackend.layers import Dense, LeakyReLU, Tanh
from nnbackend.losses import MSE, BinaryCrossEntropy, SoftmaxCrossEntropy
from tests.conftest import HAVE_TORCH
from tests.test_datasets import write_cat, write_idx, write_tiny_cat, write_tiny_mnist

ROOT = os.path.dirname(os.path.dirname(__file__))
X, Y = nb.datasets.make_moons(40, noise=0.2, seed=0)


@pytest.fixture(autouse=True)
def _no_data_env(monkeypatch):
    monkeypatch.delenv(datasets.DATA_ENV_VAR, raising=False)


def net(backend="numpy", n_out=2):
    return nb.Sequential([Dense(2, 4), Tanh(), Dense(4, n_out)], backend=backend, seed=0)


def fit(model, X=X, y=Y, loss=None, **options):
    options = {"optimizer": nb.optim.SGD(0.1), "verbose": 0, **options}
    return model.fit(X, y, loss=loss or SoftmaxCrossEntropy(), **options)


# --- fit's options ----------------------------------------------------------------


@pytest.mark.parametrize(
    "option, value, error, message",
    [
        ("l2", -1, ValueError, "l2 must be a finite number at least 0, got -1"),
        ("l2", math.nan, ValueError, "l2 must be a finite number"),
        ("on_device", "yes", ValueError, "on_device must be one of True, False, 'auto'"),
        ("on_device", 1, ValueError, "on_device must be one of"),
        ("batch_size", 2.7, TypeError, r"batch_size \(None for full batch\) must be an integer"),
        ("batch_size", 0, ValueError, "must be at least 1, got 0"),
        ("batch_size", True, TypeError, "must be an integer, not True"),
        ("epochs", -1, ValueError, "epochs must be between 0 and 9007199254740992"),
        ("epochs", 2**63, ValueError, "epochs must be between 0 and 9007199254740992"),
        ("epochs", 2.0, TypeError, "epochs must be an integer"),
        ("validation_split", 1.5, ValueError, r"validation_split must be .* in \[0, 1\)"),
        ("validation_batch_size", 0, ValueError, r"validation_batch_size \(None: batch_size\)"),
        ("verbose", 5, ValueError, "verbose must be between 0 and 2"),
        ("log_every", 0, ValueError, "log_every must be at least 1"),
        ("seed", -1, ValueError, "seed must be at least 0"),
        # str() of it raised Python's 4300-digit limit in place of the message
        pytest.param(
            "seed",
            -(10**5000),
            ValueError,
            "must be at least 0, got a negative integer of",
            id="seed-of-5000-digits",
        ),
        ("resume", "yes", TypeError, "resume must be True or False"),
        ("shuffle", "no", TypeError, "shuffle must be True or False"),
    ],
)
def test_fit_options_are_checked_before_training(option, value, error, message):
    model = net()
    before = model.copy_params()
    with pytest.raises(error, match=message):
        fit(model, **{option: value})
    for name, array in model.params.items():
        np.testing.assert_array_equal(array, before[name])  # nothing trained


def test_predict_batch_size_is_checked():
    with pytest.raises(TypeError, match="batch_size .* must be an integer, not 2.7"):
        net().predict(X, batch_size=2.7)


# --- data given to fit, evaluate and predict --------------------------------------


def test_complex_inputs_are_refused_not_cut_to_their_real_part(backend):
    model = net(backend)
    complex_X = X + 1j
    with pytest.raises(TypeError, match="X holds complex128 values; it must hold real numbers"):
        fit(model, complex_X)
    with pytest.raises(TypeError, match="X holds complex128 values"):
        model.predict(complex_X)
    with pytest.raises(TypeError, match="y holds complex128 values"):
        fit(model, X, Y + 0j, loss=MSE())
    with pytest.raises(TypeError, match="X holds <U1 values"):
        fit(model, np.full((40, 2), "a"))


@pytest.mark.parametrize(
    "labels",
    [np.array(["cat", "dog"])[Y], np.array([b"cat", b"dog"])[Y], np.array(["cat", 7], object)[Y]],
)
def test_labels_that_are_not_numbers_are_told_how_to_encode_them(backend, labels):
    model = net(backend)
    before = model.copy_params()
    told = (
        rf"y holds {re.escape(str(labels.dtype))} values \(strings or other objects\), but "
        r"class labels must be integer ids 0..n-1: encode every set by the training labels' "
        r"classes, enc = sklearn.preprocessing.LabelEncoder\(\).fit\(y_train\), y = "
        r"enc.transform\(y\) \(enc.inverse_transform names predictions\), or use "
        r"nnbackend.sklearn.MLPClassifier"
    )
    with pytest.raises(TypeError, match=told):
        fit(model, X, labels)
    with pytest.raises(TypeError, match=told):
        model.evaluate(X, labels, loss="cross_entropy")
    for name, array in model.params.items():
        np.testing.assert_array_equal(nb.to_numpy(array), nb.to_numpy(before[name]))
    assert model.loss is None and model.optimizer is None  # a refused fit sets neither
    if labels.dtype != object:  # as told: the ids train
        enc = LabelEncoder().fit(labels)
        assert len(fit(model, X, enc.transform(labels))) == 1


def test_string_validation_labels_are_told_the_training_classes():
    """A validation or test set without one class, encoded by its own np.unique as the
    hint said, scored a net right on every sample at 0 accuracy."""
    model = net("numpy")
    names = np.array(["fraud", "ok"])[Y]
    enc = LabelEncoder().fit(names)
    fit(model, X, enc.transform(names), epochs=50)
    ok = names == "ok"
    with pytest.raises(TypeError, match=r"y_val = enc.transform\(y_val\)"):
        fit(model, X, enc.transform(names), validation_data=(X[ok], names[ok]))
    with pytest.raises(TypeError, match=r"y = enc.transform\(y\)"):
        model.evaluate(X[ok], names[ok])
    right = model.evaluate(X[ok], enc.transform(names[ok]), metrics=["accuracy"])
    own = model.evaluate(X[ok], np.unique(names[ok], return_inverse=True)[1], metrics=["accuracy"])
    assert right["accuracy"] >= 0.8 and own["accuracy"] == pytest.approx(1 - right["accuracy"])


def test_missing_targets_and_string_features_say_what_is_wrong(backend):
    model = net(backend)
    with pytest.raises(TypeError, match="y is None: give targets y, one per sample of X"):
        fit(model, X, None)
    with pytest.raises(TypeError, match="y is None"):
        model.evaluate(X, None, loss="cross_entropy")
    for call in (lambda: fit(model, None), lambda: model.predict(None)):
        with pytest.raises(TypeError, match="X is None: give the samples X, as an array"):
            call()
    numbers_as_text = np.array([f"{v:.2f}" for v in Y * 0.5])  # regression targets, as text
    with pytest.raises(TypeError, match=r"targets must be numbers: y.astype\(float\)") as raised:
        fit(net(backend, 1), X, numbers_as_text, loss=MSE())
    assert "class labels" not in str(raised.value)
    told = r"X holds <U1 values \(strings or other objects\), but features must be numbers"
    with pytest.raises(TypeError, match=told) as raised:
        fit(model, np.full((40, 2), "a"))
    assert "sklearn" not in str(raised.value)
    with pytest.raises(TypeError, match=told):
        model.predict(np.full((40, 2), "a"))
    numbers_as_objects = X.astype(object)  # as told, .astype(float) is all they need
    with pytest.raises(TypeError, match=r"features must be numbers: X.astype\(float\) if they"):
        fit(model, numbers_as_objects)
    assert len(fit(model, numbers_as_objects.astype(float))) == 1
    with pytest.raises(TypeError, match=r"y holds complex128 .*\(for complex data, pass the real"):
        fit(model, X, Y + 0j, loss=MSE())


@pytest.mark.parametrize(
    "targets, message",
    [
        (np.where(Y == 1, 2, 0), "values from 0 to 2, but this loss takes 0/1 labels"),
        (np.where(Y == 1, 1, -1), r"from -1 to 1.*Labels -1/\+1\? Use \(y \+ 1\) / 2"),
    ],
)
def test_bce_targets_outside_0_1_are_refused(backend, targets, message):
    for from_logits in (True, False):
        with pytest.raises(ValueError, match=message):
            fit(net(backend, 1), X, targets, loss=BinaryCrossEntropy(from_logits=from_logits))
        with pytest.raises(ValueError, match=message):
            net(backend, 1).evaluate(X, targets, loss=BinaryCrossEntropy(from_logits=from_logits))


def test_bce_soft_targets_in_0_1_still_train(backend):
    history = fit(
        net(backend, 1),
        X,
        np.where(Y == 1, 0.9, 0.1),
        loss=BinaryCrossEntropy(from_logits=True),
        epochs=3,
    )
    assert all(v > 0 for v in history["loss"])  # the loss of soft targets stays positive


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "uint32", "uint64", "int8", "bfloat16"])
def test_torch_labels_of_any_number_type_train_as_int64_ones_do(dtype):
    """The target checks took torch's min of uint16-64 (torch has none) and NumPy's
    copy of bfloat16 (NumPy has none): both failed inside the check."""
    import torch

    X_torch = torch.asarray(X, dtype=torch.float32)
    for loss, n_out in ((SoftmaxCrossEntropy(), 2), (BinaryCrossEntropy(from_logits=True), 1)):
        labels = Y if n_out == 2 else Y[:, None]
        weights = []
        for y in (torch.asarray(labels), torch.asarray(labels).to(getattr(torch, dtype))):
            model = net("torch", n_out)
            fit(model, X_torch, y, loss=loss, epochs=2)
            weights.append({k: nb.to_numpy(v).copy() for k, v in model.params.items()})
        for name, w in weights[0].items():
            np.testing.assert_array_equal(weights[1][name], w)


def test_dropout_after_the_probabilities_is_refused(backend):
    # its training outputs reached 1.17, clipped with gradients of 1 / eps: losses of 4.2
    # where the net without it had 0.33
    layers = [Dense(2, 8), Tanh(), Dense(8, 1), nb.layers.Sigmoid(), nb.layers.Dropout(0.5)]
    model = nb.Sequential(layers, backend=backend, seed=0)
    with pytest.raises(ValueError, match=r"ends in Dropout.*leave \[0, 1\].*computes the outputs"):
        fit(model, X, Y, loss=BinaryCrossEntropy())
    layers = [Dense(2, 8), Tanh(), Dense(8, 1), nb.layers.Sigmoid(), nb.layers.Dropout(0.0)]
    fit(
        nb.Sequential(layers, backend=backend, seed=0), X, Y, loss=BinaryCrossEntropy()
    )  # passes all


def test_one_hot_rows_outside_0_1_are_refused(backend):
    onehot = np.eye(2)[Y] * 2
    with pytest.raises(ValueError, match="from 0 to 2, but this loss takes one-hot rows"):
        fit(net(backend), X, onehot)


@pytest.mark.parametrize("rows", ["several labels", "no label"])
def test_cross_entropy_rows_must_sum_to_1(backend, rows):
    # softmax - target is the gradient of rows that sum to 1 only: a multi-hot or empty
    # row trained 0.23 off the numerical gradient
    onehot = np.eye(2)[Y]
    onehot[3] = [1, 1] if rows == "several labels" else [0, 0]
    with pytest.raises(ValueError, match=r"rows that do not sum to 1 \(one is 1 off\).*'bce'"):
        fit(net(backend), X, onehot)
    slightly_off = np.eye(2)[Y]
    slightly_off[3] = [0.5, 0.51]  # the check takes rows within 1e-3 of 1 (float16 sums)
    with pytest.raises(ValueError, match=r"rows that do not sum to 1 \(one is 0.01 off\)"):
        fit(net(backend), X, slightly_off)
    unsigned = onehot.astype(np.uint8)  # an empty row's sum less 1 wraps in uint8/uint64
    with pytest.raises(ValueError, match=r"rows that do not sum to 1 \(one is 1 off\)"):
        fit(net(backend), X, unsigned)
    soft = np.where(np.eye(2)[Y] == 1, 0.9, 0.1)
    for good in (soft, np.eye(2, dtype=bool)[Y], np.eye(2, dtype=np.uint8)[Y]):
        fit(net(backend), X, good)  # soft rows and boolean or integer one-hot rows train


@pytest.mark.parametrize("shape", [(6, 5), (3, 2, 4, 4)])
def test_every_nan_or_inf_is_found_and_huge_finite_data_passes(backend, shape):
    """The check's first pass is one sum of every element: each bad element,
    wherever it is, still ends in an error; finite data whose sum overflows does not."""
    from nnbackend.data_checks import check_finite

    for bad_value in (np.nan, np.inf, -np.inf):
        for index in np.ndindex(*shape):
            a = np.ones(shape)
            a[index] = bad_value
            with pytest.raises(ValueError, match=rf"X holds 1 NaN .*{re.escape(str(index))}"):
                check_finite(backend.asarray(a, dtype="float32"), "X")
    check_finite(backend.asarray(np.full(shape, 3e38), dtype="float32"), "X")


def test_predict_on_nan_rows_is_an_error_not_class_0(backend):
    model = net(backend)
    bad = X.copy()
    bad[7, 1] = np.nan
    with pytest.raises(ValueError, match=r"X holds 1 NaN or inf .*\(7, 1\).*impute them first"):
        model.predict(bad)
    with pytest.raises(ValueError, match="X holds 1 NaN or inf"):
        model.predict_proba(backend.asarray(bad))
    bad[7, 1] = np.inf
    with pytest.raises(ValueError, match="NaN or inf"):
        model.predict(bad)
    np.testing.assert_array_equal(  # finite rows: the same answers as before
        nb.to_numpy(model.predict(X[:7])), nb.to_numpy(model.predict(X))[:7]
    )


def unchanged(model, before) -> bool:
    """Whether ``model``'s weights are still ``before`` (``copy_params()``): nothing trained."""
    return all(
        np.array_equal(nb.to_numpy(a), nb.to_numpy(before[k])) for k, a in model.params.items()
    )


@pytest.mark.parametrize(
    "outputs, loss, targets, message",
    [
        (
            lambda: [Dense(4, 3), "sigmoid"], "bce", Y,
            r"y has shape \(40,\), but the model has 3 outputs: binary cross-entropy takes one "
            r"output per 0/1 target: end the model in Dense\(\.\.\., 1\) \(\+ Sigmoid, or "
            r"from_logits=True\), or use loss='cross_entropy' for 3 classes, or give y of "
            r"shape \(40, 3\) for multi-label",
        ),
        (
            lambda: [Dense(4, 1)], BinaryCrossEntropy(from_logits=True), np.eye(2)[Y],
            r"y has shape \(40, 2\), but the model has 1 output: binary cross-entropy takes "
            r"one output per 0/1 target: end the model in Dense\(\.\.\., 2\), or give y 1-D",
        ),
        (
            lambda: [Dense(4, 2)], "mse", Y,
            r"y has shape \(40,\), but the model has 2 outputs: MSE takes one target column "
            r"per output: end the model in Dense\(\.\.\., 1\), or give y of shape \(40, 2\)",
        ),
        (
            lambda: [Dense(4, 1)], "mse", np.stack([Y, Y, Y], axis=1),
            r"MSE takes one target column per output: end the model in Dense\(\.\.\., 3\)",
        ),
    ],
)  # fmt: skip
def test_targets_that_do_not_fit_the_outputs_are_refused_before_any_step(
    backend, outputs, loss, targets, message
):
    """Said by the loss at the first step, with a batch's shapes and no advice, before."""
    model = nb.Sequential([Dense(2, 4), Tanh(), *outputs()], backend=backend, seed=0)
    before = model.copy_params()
    with pytest.raises(ValueError, match=message):
        fit(model, X, targets, loss=loss)
    with pytest.raises(ValueError, match=message):
        model.evaluate(X, targets, loss=loss)
    assert unchanged(model, before)


def test_targets_that_fit_the_outputs_still_train(backend):
    for n_out, targets in ((1, Y), (1, Y[:, None]), (2, np.eye(2)[Y])):
        for loss in (MSE(), BinaryCrossEntropy(from_logits=True)):
            assert len(fit(net(backend, n_out), X, targets, loss=loss)) == 1


def test_cross_entropy_on_one_output_says_to_give_one_per_class(backend):
    model = net(backend, n_out=1)
    before = model.copy_params()
    told = (
        r"cross-entropy needs one output per class, but the model has 1 output: end it in "
        r"Dense\(\.\.\., 2\) for two classes .* use loss='bce' with a Sigmoid output \(or "
        r"BinaryCrossEntropy\(from_logits=True\)\)"
    )
    for targets in (Y, np.zeros_like(Y), Y[:, None]):
        with pytest.raises(ValueError, match=told):
            fit(model, X, targets)
        with pytest.raises(ValueError, match=told):
            model.evaluate(X, targets, loss="cross_entropy")
    assert unchanged(model, before)


def test_a_refused_fit_leaves_the_model_as_it_was(backend, tmp_path):
    """Given a seed, a refused fit had already reseeded the model's generator; resumed,
    it had already loaded the checkpoint's weights (the data and the callbacks are
    checked first now)."""
    path = tmp_path / "run.h5"
    trained = net(backend)
    fit(trained, checkpoint=path, seed=1)  # a checkpoint of other weights
    model = net(backend)
    before, draws = model.copy_params(), model.rng.state
    with pytest.raises(ValueError, match=r"y has shape \(40, 3\)"):
        fit(model, y=np.eye(3)[Y], seed=5, checkpoint=path, resume=True)
    with pytest.raises(ValueError, match="EarlyStopping monitors 'val_loss'"):  # a callback's
        fit(model, seed=5, checkpoint=path, resume=True, callbacks=nb.callbacks.EarlyStopping())
    assert unchanged(model, before)
    assert model.rng.state == draws
    # the step made for the refused fit had bound the layers to its gradient buffer
    assert not any("grad_buffers" in vars(layer) for layer in model.layers)
    fit(model, checkpoint=path, resume=True)  # the one epoch is done: its weights loaded
    assert unchanged(model, trained.copy_params())


def test_an_empty_model_is_refused():
    with pytest.raises(ValueError, match=r"Sequential got no layers: a model needs at least one"):
        nb.Sequential([])
    with pytest.raises(ValueError, match="Sequential got no layers"):
        nb.Sequential.from_config({"layers": []})


# --- the shape of what predict and evaluate are given --------------------------------


def test_rows_with_a_target_each_are_not_told_they_are_one_sample(backend):
    """X of (3, 1) for 3 features, with 3 labels: told "A single sample? X.reshape(1, -1)",
    which then met "y has 3 targets but X has 1 samples"."""
    model = nb.Sequential([Dense(3, 2)], backend=backend, seed=0)
    column, labels = np.array([[0.1], [0.2], [0.3]]), np.array([0, 1, 1])
    with pytest.raises(ValueError) as told:
        fit(model, column, labels)
    assert str(told.value) == (
        "the model takes samples of 3 features, but X has shape (3, 1) (samples of shape (1,))."
    )
    with pytest.raises(ValueError, match=r"A single sample\? .* X\.reshape\(1, -1\)\.$"):
        fit(model, column, labels[:1])  # one target: one sample, as told
    assert len(fit(model, column.reshape(1, -1), labels[:1])) == 1


def test_one_sample_is_told_to_become_a_batch_of_one(backend):
    model = net(backend)
    fit(model)
    for one in (X[0], backend.asarray(X[0])):  # strict arrays have no reshape method
        strict = type(one).__module__.startswith("array_api_strict")
        told = (
            r"the model takes samples of 2 features, but X has shape \(2,\) \(samples of shape "
            r"\(\)\)\. A single sample\? Give it as a batch of one: "
            + (
                r"array_api_strict\.reshape\(X, \(1, -1\)\)\.$"
                if strict
                else r"X.reshape\(1, -1\)\.$"
            )
        )
        for predicting in (model.predict, model.predict_proba):
            with pytest.raises(ValueError, match=told):
                predicting(one)
    with pytest.raises(ValueError, match=r"batch of one: X.reshape\(1, -1\)\.$"):
        model.evaluate(X[0], Y[:1])
    assert model.predict(X[0].reshape(1, -1)).shape == (1,)
    with pytest.raises(ValueError, match=r"takes samples of 2 features, but X has shape \(40, 3\)"):
        model.predict(np.ones((40, 3)))  # not the first layer's own error, with its repr
    column = nb.Sequential([Dense(1, 2)], backend=backend)
    with pytest.raises(ValueError, match=r"1 feature, .* Make it a column: X.reshape\(-1, 1\)"):
        fit(column, X[:, 0])


@pytest.mark.parametrize("input_shape", [None, (3, 6, 6)])
def test_channels_last_images_are_told_to_be_transposed(backend, input_shape):
    """Whichever check finds them: fit's, where the model knows its input shape (which
    said "Reshape it", scrambling the pixels), else the layers' chain of shapes."""
    model = nb.Sequential(
        [nb.layers.Conv2D(3, 2, 3), nb.layers.Flatten(), Dense(32, 2)],
        backend=backend, seed=0, input_shape=input_shape,
    )  # fmt: skip
    images = np.random.default_rng(0).normal(size=(40, 6, 6, 3))
    before = model.copy_params()
    # the layer's check sees a batch: 32 rows of the 40
    told = r"of shape \(6, 6, 3\)" if input_shape is None else r"has shape \(40, 6, 6, 3\)"
    told += r".*Channels last\? Use X.transpose\(0, 3, 1, 2\)\.$"
    with pytest.raises(ValueError, match=told) as raised:
        fit(model, images)
    assert "Reshape" not in str(raised.value)
    for checking in (model.predict, lambda x: model.evaluate(x, Y, loss="cross_entropy")):
        with pytest.raises(ValueError, match=told):
            checking(images)
    assert unchanged(model, before)
    assert len(fit(model, images.transpose(0, 3, 1, 2))) == 1
    if input_shape is not None:  # transposing (40, 8, 8, 3) would not fit (3, 6, 6)
        with pytest.raises(ValueError, match=r"has shape \(40, 8, 8, 3\)") as raised:
            fit(model, np.zeros((40, 8, 8, 3)))
        assert "transpose" not in str(raised.value)


# --- losses called directly -------------------------------------------------------


@pytest.mark.parametrize(
    "loss",
    [
        MSE(),
        SoftmaxCrossEntropy(),
        BinaryCrossEntropy(),
        BinaryCrossEntropy(from_logits=True),
        SoftmaxCrossEntropy(from_logits=False),
    ],
)
def test_an_empty_batch_is_a_clear_error(backend, loss):
    xp = backend.xp
    pred = xp.zeros((0, 2), dtype=backend.dtype, device=backend.device)
    target = xp.zeros((0,), dtype=xp.int64, device=backend.device)
    if not isinstance(loss, SoftmaxCrossEntropy):
        pred, target = pred[:, :1], xp.zeros((0, 1), dtype=backend.dtype, device=backend.device)
    with pytest.raises(ValueError, match="the batch is empty"):
        loss.forward(pred, target)


@pytest.mark.parametrize(
    "loss", [BinaryCrossEntropy(), SoftmaxCrossEntropy(from_logits=False), MSE()]
)
def test_integer_predictions_are_a_clear_error(backend, loss):
    xp = backend.xp
    pred = xp.asarray([[1], [0]], device=backend.device)
    target = xp.asarray([1, 0], device=backend.device)
    with pytest.raises(TypeError, match="predictions must be floating point, got .*int64"):
        loss.forward(pred, target)


# --- constructors ------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: Dense(0, 3), ValueError, "Dense n_in must be at least 1, got 0"),
        (lambda: Dense(2, -1), ValueError, "Dense n_out must be at least 1"),
        (lambda: Dense(2.0, 3), TypeError, "Dense n_in must be an integer, not 2.0"),
        (lambda: Dense("2", 3), TypeError, "Dense n_in must be an integer"),
        (lambda: Dense(2, 3, bias="yes"), TypeError, "Dense bias must be True or False"),
        (lambda: LeakyReLU("nan"), TypeError, "LeakyReLU alpha must be a real number"),
        (lambda: LeakyReLU(math.nan), ValueError, "LeakyReLU alpha must be a finite number"),
        (lambda: nb.init.Normal(math.inf), ValueError, "Normal std must be a finite number"),
        (lambda: nb.optim.SGD(lr=math.inf), ValueError, "learning rate must be a finite number"),
        (lambda: nb.optim.SGD(lr=math.nan), ValueError, "learning rate must be a finite number"),
        (lambda: nb.optim.SGD(lr="0.1"), TypeError, "learning rate must be a real number"),
        (lambda: nb.optim.Adam(beta1=1.0), ValueError, r"beta1 must be .* in \[0, 1\)"),
        (lambda: nb.optim.Adam(eps=0), ValueError, "eps must be a finite number above 0"),
        (lambda: nb.optim.Momentum(momentum=1.5), ValueError, "momentum must be"),
        (lambda: nb.optim.RMSProp(rho=-0.1), ValueError, "rho must be"),
        (lambda: nb.optim.StepDecay(0.1, 0), ValueError, "step_size must be at least 1"),
        (lambda: nb.optim.ExponentialDecay(0.1, 0.5, decay_steps=0), ValueError, "decay_steps"),
        (lambda: nb.optim.InverseTimeDecay(0.1, -1), ValueError, "decay_rate must be"),
        (lambda: MSE(half="yes"), TypeError, "MSE half must be True or False"),
        (lambda: BinaryCrossEntropy(from_logits="false"), TypeError, "from_logits must be True"),
        (lambda: nb.losses.L2(-0.1), ValueError, "reg_lambda must be .* at least 0"),
        (lambda: nb.callbacks.EarlyStopping(patience=-1), ValueError, "patience must be at least"),
        (lambda: nb.callbacks.EarlyStopping(min_delta=math.nan), ValueError, "min_delta"),
        (lambda: nb.callbacks.EarlyStopping(mode="best"), ValueError, "mode must be one of"),
        (lambda: nb.callbacks.ModelCheckpoint("x.h5", every=0), ValueError, "every must be"),
        (lambda: nb.callbacks.LambdaCallback(print, every=0.5), TypeError, "every must be an int"),
        (lambda: nb.callbacks.TerminateOnNaN(raise_error="yes"), TypeError, "raise_error must be"),
        (lambda: nb.callbacks.LambdaCallback(0), TypeError, r"takes a function fn\(epoch, logs, m"),
        (
            lambda: nb.callbacks.LambdaCallback(lambda epoch, logs: None),
            TypeError,
            r"calls fn\(epoch, logs, model\), which .* cannot take: give it three parameters",
        ),
        (lambda: net().__class__([Dense(2, 2)], seed="0"), TypeError, "seed must be an int of"),
        (lambda: nb.Sequential([Dense(2, 2)], seed=-1), ValueError, "seed must be an int of"),
        (lambda: nb.Sequential([Dense(2, 2)], seed=True), TypeError, "seed must be an int of"),
        (lambda: nb.Generator(2.0), TypeError, "seed must be an int of at least 0"),
        (lambda: datasets.one_hot([0, 1, 2], n_classes=2.5), TypeError, "n_classes must be an"),
        (lambda: datasets.load_digits(test_fraction="0.2"), TypeError, "test_fraction must be"),
        (lambda: datasets.load_digits(flatten="no"), TypeError, "flatten must be True or False"),
        (
            lambda: datasets.train_val_split(np.zeros((5, 2)), np.zeros(5), val_fraction=None),
            TypeError,
            "val_fraction must be a real number, not None",
        ),
        (lambda: datasets.load_mnist("/nowhere", one_hot="no"), TypeError, "one_hot must be"),
        (lambda: datasets.load_catvnoncat("/nowhere", flatten=0), TypeError, "flatten must be"),
        (lambda: datasets.make_moons(True), TypeError, "n_samples must be an integer, not True"),
        (lambda: datasets.make_moons(10**12), ValueError, "n_samples must be between 1 and"),
        (lambda: datasets.make_circles(seed="0"), TypeError, "seed must be an integer, not '0'"),
        (lambda: datasets.make_blobs(cluster_std=math.nan), ValueError, "cluster_std must be"),
        (
            lambda: datasets.standardize(np.ones((3, 2)), np.zeros(2), -np.ones(2)),
            ValueError,
            "standardize's mean and std must be finite in float64, and std at least 0",
        ),
        (
            lambda: datasets.standardize(np.ones((3, 2), np.float32), [1e300, 0], [1, 1]),
            ValueError,
            "must be finite in float32",
        ),
        (
            lambda: datasets.standardize(np.ones((4, 3)), np.zeros((4, 1)), np.ones((4, 1))),
            ValueError,
            r"standardize's mean has shape \(4, 1\), X's samples \(3,\): give the training",
        ),
        (
            lambda: datasets.make_blobs(30, cluster_std=[1.0, np.nan, 1.0]),
            ValueError,
            r"cluster_std must be finite numbers of at least 0, got \[1.0, nan, 1.0\]",
        ),
        (
            lambda: datasets.make_moons((10**7, 10**8)),
            ValueError,
            "n_samples must add up to 1 to 100000000, got 110000000",
        ),
        (  # one by one: the sum alone let these through
            lambda: datasets.make_moons((10**12, 5 - 10**12)),
            ValueError,
            "each of n_samples must be between 0 and 100000000, got 1000000000000",
        ),
        (
            lambda: datasets.make_moons((-5, 10)),
            ValueError,
            "each of n_samples must be between 0 and 100000000, got -5",
        ),
        (lambda: datasets.make_moons((0, 0)), ValueError, "must add up to 1 to 100000000, got 0"),
        (lambda: datasets.make_moons(None), TypeError, "^n_samples must be an integer, not None"),
    ],
)
def test_bad_arguments_are_refused_when_given(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_good_arguments_near_the_checks_are_taken():
    """What scikit-learn, NumPy and Python take stays taken: a seed of None, a
    RandomState or a list of whole numbers; counts and spreads per class; a mean and
    std as lists; a decorated three-parameter callback; a large NumPy max_params."""
    assert datasets.make_moons(10, seed=None)[0].shape == (10, 2)
    assert datasets.make_moons(10, seed=np.random.RandomState(0))[0].shape == (10, 2)
    assert datasets.make_circles((5, 7), seed=0)[0].shape == (12, 2)
    assert datasets.make_blobs([5, 7, 3], centers=None, seed=0)[0].shape == (15, 2)
    assert datasets.make_blobs(np.array([5, 0]), centers=None, seed=0)[1].tolist() == [0] * 5
    assert datasets.make_blobs(30, centers=3, cluster_std=[1.0, 2.0, 0.5])[0].shape == (30, 2)
    rows = np.arange(6, dtype=np.float32).reshape(2, 3)
    scaled, mean, std = datasets.standardize(rows, [0.0, 0, 0], (1.0, 2, 1))
    assert scaled.tolist() == [[0.0, 0.5, 2.0], [3.0, 2.0, 5.0]] and std.dtype == np.float32
    expected = np.random.default_rng(np.random.SeedSequence([1, 2, 3])).permutation(5)
    np.testing.assert_array_equal(nb.Generator([1, 2, 3]).permutation(5), expected)

    def epoch_only(fn):
        @functools.wraps(fn)
        def called(epoch, logs, model):
            return fn(epoch, logs)

        return called

    seen = []
    report = epoch_only(lambda epoch, logs: seen.append(epoch))
    net().fit(X, Y, loss="cross_entropy", optimizer="sgd", verbose=np.bool_(False),
              callbacks=[nb.callbacks.LambdaCallback(report)])  # fmt: skip
    assert seen == [0]


def test_a_large_numpy_max_params_is_a_whole_number(tmp_path):
    """max_params=np.int64(2**62): 4 x it overflowed NumPy's int64 and refused a file
    of 6 weights."""
    nb.save(net(), tmp_path / "m.h5")
    assert nb.load(tmp_path / "m.h5", max_params=np.int64(2**62)).config() == net().config()


def test_a_fits_metrics_and_verbose_are_checked_or_taken(tmp_path):
    """metrics=0 or the Accuracy class itself get the library's words (not "'int' object
    is not iterable"); verbose=True and False are Keras's and scikit-learn's 1 and 0."""
    with pytest.raises(TypeError, match="metrics must be a list of names or Metric objects, not 0"):
        net().fit(X, Y, loss="cross_entropy", optimizer="sgd", verbose=0, metrics=0)
    with pytest.raises(TypeError, match="give a metric object"):
        net().fit(
            X, Y, loss="cross_entropy", optimizer="sgd", verbose=0, metrics=nb.metrics.Accuracy
        )
    for verbose in (True, False):
        assert (
            len(net().fit(X, Y, loss="cross_entropy", optimizer="sgd", verbose=verbose)["loss"])
            == 1
        )


def test_a_move_with_a_wrong_optimizer_is_refused_before_the_weights_move():
    """model.to(..., optimizer="adam") moved the weights, then failed on the string."""
    model = net()
    with pytest.raises(TypeError, match=r"to\(optimizer=\) takes the Optimizer that trains it"):
        model.to("strict", optimizer="adam")
    assert model.backend.name == "numpy"


def test_sequential_takes_build_as_a_flag():
    """build="no" was read as true and drew the weights; NumPy's bool is a flag."""
    for build in ("no", 0, None):
        with pytest.raises(TypeError, match="^build must be True or False"):
            nb.Sequential([nb.layers.Dense(2, 2)], build=build)
    assert not nb.Sequential([nb.layers.Dense(2, 2)], build=np.bool_(False)).params
    assert len(nb.Sequential([nb.layers.Dense(2, 2)], build=True).params) == 2


def test_a_copy_to_a_backend_named_by_a_falsy_non_string_is_refused():
    """model.copy(backend=0) was read as no backend (``or``) and copied to this one."""
    model = net()
    for backend in (0, False, ""):
        with pytest.raises((TypeError, ValueError), match="backend"):
            model.copy(backend=backend)
    assert model.copy(backend=None).backend is model.backend


def test_save_and_load_check_their_arguments(tmp_path):
    """The model first (arguments swapped), callbacks' states as a dict, flags as bools,
    max_params a whole number: a string was blamed on the file ("damaged"), and NaN
    turned the size guard off."""
    path, model = tmp_path / "m.h5", net()
    with pytest.raises(TypeError, match=r"nb.save\(model, path\) saves a model, not '"):
        nb.save(str(path), model)
    with pytest.raises(TypeError, match=r"callbacks is \{key: state\}"):
        nb.save(model, path, callbacks=[nb.callbacks.EarlyStopping()])
    with pytest.raises(TypeError, match="stopped must be True or False"):
        nb.save(model, path, stopped="no")
    assert not path.exists()
    nb.save(model, path)
    for bad in ("1000000", math.nan, 0):
        with pytest.raises((TypeError, ValueError), match=r"^max_params \(the most weights"):
            nb.load(path, max_params=bad)
        with pytest.raises((TypeError, ValueError), match=r"^max_params \(the most weights"):
            nb.restore(net(), path, max_params=bad)
    with pytest.raises(TypeError, match="with_optimizer must be True or False"):
        nb.load(path, with_optimizer="no")
    assert nb.load(path, max_params=np.int64(100)).config() == model.config()


@pytest.mark.parametrize("iterations", [-1, 2.5, "3", 2**60])
def test_optimizer_state_with_a_bad_counter_is_refused(iterations):
    opt = nb.optim.Adam()
    with pytest.raises((TypeError, ValueError), match="iterations must be"):
        opt.load_state_dict({"iterations": iterations, "slots": {"m": {}, "v": {}}})
    assert opt.iterations == 0


def test_optimizer_state_with_an_unknown_slot_is_refused():
    with pytest.raises(ValueError, match=r"Adam keeps no state named \['evil'\]"):
        nb.optim.Adam().load_state_dict({"iterations": 1, "slots": {"m": {}, "v": {}, "evil": {}}})


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
def test_a_torch_device_with_an_index_on_the_cpu_fails_at_once(monkeypatch):
    monkeypatch.setenv("NNBACKEND", "torch:cpu:0")
    with pytest.raises(
        ValueError, match=r"torch's CPU has no index: use 'torch' \(or 'torch:cpu'\)"
    ):
        nb.get_backend()
    with pytest.raises(ValueError, match="torch's CPU has no index"):
        net(backend=None)  # a model is never built on it, so no fit can fail later


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
def test_a_torch_device_given_by_number_is_told_its_name():
    with pytest.raises(
        ValueError, match=r"torch knows no device '0': for GPU 0, use 'torch:cuda:0'"
    ):
        nb.get_backend("torch:0")


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
def test_a_missing_cuda_device_is_named_as_it_was_asked_for():
    if nb.backend.torch_cuda_available():
        pytest.skip("torch sees a CUDA device here")
    for name in ("torch:cuda:0", "torch:cuda"):
        with pytest.raises(nb.BackendUnavailableError, match=rf"backend '{name}' asked for, but"):
            nb.get_backend(name)


# --- MNIST files ------------------------------------------------------------------


def write_npz(path, **arrays):
    base = {
        "x_train": np.zeros((2, 28, 28), np.uint8),
        "y_train": np.array([1, 2]),
        "x_test": np.zeros((1, 28, 28), np.uint8),
        "y_test": np.array([3]),
    }
    np.savez(path, **{**base, **arrays})
    return path


@pytest.mark.parametrize("key", ["test_set_x", "test_set_y"])
@pytest.mark.parametrize("kind", [bool, np.complex64, "S1"])
def test_cat_pixels_and_labels_of_no_number_type_are_named(tmp_path, key, kind):
    """Their dtype's kind was looked up in a table without it: 'damaged ('b')'."""
    write_tiny_cat(tmp_path)
    write_cat(tmp_path / "test_catvnoncat.h5", "test", n=4)
    with h5py.File(tmp_path / "test_catvnoncat.h5", "a") as f:
        shape = f[key].shape
        del f[key]
        f[key] = np.zeros(shape, dtype=kind)
    with pytest.raises(ValueError, match=f"{key} holds .* values, but integers or floats are"):
        datasets.load_catvnoncat(tmp_path)


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.array([1.0, np.nan]), "y_train hold NaN or infinite values"),
        (np.array([1.0, 3.7]), "y_train hold fractions such as 3.7"),
        (np.array([1, 10]), "y_train must be digits 0..9, found 1..10"),
        (np.array([-1, 2]), "y_train must be digits 0..9"),
        (np.array(["1", "2"]), "y_train.npy holds <U1 values"),
    ],
)
def test_mnist_npz_labels_are_checked(tmp_path, labels, message):
    path = write_npz(tmp_path / "mnist.npz", y_train=labels)
    with pytest.raises(ValueError, match=message):
        datasets.load_mnist(path)


def test_mnist_npz_float_labels_that_are_whole_numbers_are_taken(tmp_path):
    path = write_npz(tmp_path / "mnist.npz", y_train=np.array([1.0, 9.0]))
    (_, y), _ = datasets.load_mnist(path)
    assert y.dtype == np.int64 and y.tolist() == [1, 9]


def test_mnist_float_pixels_already_in_0_1_are_not_divided_again(tmp_path):
    pixels = np.linspace(0, 1, 2 * 28 * 28, dtype=np.float32).reshape(2, 28, 28)
    (X_train, _), _ = datasets.load_mnist(write_npz(tmp_path / "mnist.npz", x_train=pixels))
    np.testing.assert_array_equal(X_train, pixels.reshape(2, -1))
    with pytest.raises(ValueError, match="floats from 0 to 255; float pixels must already lie"):
        datasets.load_mnist(write_npz(tmp_path / "mnist.npz", x_train=pixels * 255))


def test_mnist_npz_pickled_objects_are_refused(tmp_path):
    path = write_npz(tmp_path / "mnist.npz", y_train=np.array([1, None], dtype=object))
    with pytest.raises(ValueError, match="y_train.npy (holds object|is not a plain)"):
        datasets.load_mnist(path)


def npz_with_a_lying_header(path, shape):
    """An .npz whose x_train header declares ``shape`` over 64 bytes of data."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|u1", "fortran_order": False, "shape": shape}
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x_train.npy", header.getvalue() + bytes(64))
        for key, array in (
            ("y_train", [1]),
            ("x_test", np.zeros((1, 28, 28), np.uint8)),
            ("y_test", [2]),
        ):
            member = io.BytesIO()
            np.save(member, np.asarray(array))
            archive.writestr(f"{key}.npy", member.getvalue())
    return path


def test_mnist_npz_with_a_header_larger_than_its_data(tmp_path):
    path = npz_with_a_lying_header(tmp_path / "mnist.npz", (100000, 28, 28))
    with pytest.raises(
        ValueError, match=r"x_train.npy declares \(100000, 28, 28\) uint8 but stores 64 bytes"
    ):
        datasets.load_mnist(path)


@pytest.mark.parametrize("shape", [(-1, -1, 1), (-2, -1, 64), (True, 8, 8)])
def test_mnist_npz_header_dimensions_must_be_counts(tmp_path, shape):
    """numpy reads any integers in a header: two negative ones multiply to a size that
    passed the check, and reshaping failed without the file's name."""
    path = npz_with_a_lying_header(tmp_path / "mnist.npz", shape)
    with pytest.raises(ValueError, match=r"mnist.npz: x_train.npy declares the shape .*damaged"):
        datasets.load_mnist(path)


def test_mnist_npz_header_that_nests_past_the_parser_is_refused(tmp_path):
    """numpy parses a header with ast.literal_eval: 7000 minus signs before a dimension
    raised a bare MemoryError from the parser."""
    text = "{'descr': '|u1', 'fortran_order': False, 'shape': (" + "-" * 7000 + "1, 28, 28), }"
    header = text.encode("latin1") + b"\n"
    member = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(784)
    path = write_npz(tmp_path / "mnist.npz")
    with zipfile.ZipFile(path) as plain:
        members = {name: plain.read(name) for name in plain.namelist()}
    members["x_train.npy"] = member
    with zipfile.ZipFile(path, "w") as archive:  # stored: the header is within its bounds
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(ValueError, match=r"mnist.npz: member x_train.npy is not a plain .npy"):
        datasets.load_mnist(path)


def _npz_with_member(path, member: bytes, *, name: str = "x_train.npy"):
    """write_npz's arrays, x_train's member replaced by ``member`` (stored)."""
    write_npz(path)
    with zipfile.ZipFile(path) as plain:
        members = {n: plain.read(n) for n in plain.namelist()}
    members["x_train.npy"] = member
    with zipfile.ZipFile(path, "w") as archive:
        for n, data in members.items():
            archive.writestr(name if n == "x_train.npy" else n, data)
    return path


@pytest.mark.parametrize(
    "member, says",
    [  # numpy read and decoded all a header declared (1 GiB) before its 10,000-byte limit
        (b"\x93NUMPY\x02\x00" + struct.pack("<I", 20_000) + b" " * 20_000,
         "a header of 20000 bytes .at most 10000."),
        (b"\x93NUMPY\x03\x00" + struct.pack("<I", 10) + b" " * 10,  # was numpy's KeyError
         ".npy format version 3.0 is not read here"),
    ],
    ids=["a-header-of-20000-bytes", "version-3"],
)  # fmt: skip
def test_mnist_npz_headers_numpy_reads_unbounded_or_not_at_all_are_named(tmp_path, member, says):
    path = _npz_with_member(tmp_path / "mnist.npz", member)
    with pytest.raises(ValueError, match=rf"x_train.npy is not a plain .npy array \({says}"):
        datasets.load_mnist(path)


def test_an_npz_member_name_flagged_utf8_that_is_not_is_a_bad_file(tmp_path):
    """zipfile's UnicodeDecodeError came out bare, without the file's name."""
    path = write_npz(tmp_path / "mnist.npz")
    data = bytearray(path.read_bytes())
    entry = data.index(b"PK\x01\x02")
    data[entry + 9] |= 0x08  # the general-purpose flags' UTF-8 bit (0x800, high byte)
    data[entry + 46] = 0xFF  # the name's first byte
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"mnist.npz: not a readable .npz file \('utf-8' codec"):
        datasets.load_mnist(path)


def test_mnist_npz_member_whose_stream_ends_early_is_refused(tmp_path):
    """A deflated member 100 bytes short, its CRC that of the short data and the zip's
    sizes claiming the full length: zipfile returns the short data without a word, and
    reshaping it failed without the file's name."""
    path = write_npz(tmp_path / "mnist.npz")
    with zipfile.ZipFile(path) as plain:
        members = {name: plain.read(name) for name in plain.namelist()}
    full = len(members["x_train.npy"])
    members["x_train.npy"] = members["x_train.npy"][:-100]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        offset = archive.getinfo("x_train.npy").header_offset
    data = bytearray(path.read_bytes())
    entry = data.index(b"PK\x01\x02")  # x_train.npy's central directory entry comes first
    for size_at in (offset + 22, entry + 24):  # its uncompressed size, local and central
        data[size_at : size_at + 4] = struct.pack("<I", full)
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=rf"x_train.npy stores {full - 100 - 128} of the "):
        datasets.load_mnist(path)


def test_mnist_npz_members_larger_than_the_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.mnist, "MAX_NPZ_BYTES", 1000)
    with pytest.raises(ValueError, match=r"member x_train.npy claims 1696 bytes"):
        datasets.load_mnist(write_npz(tmp_path / "mnist.npz"))


@pytest.mark.parametrize("shape", [(5, 0, 28), (5, 28, 0)])
@pytest.mark.parametrize("kind", ["idx", "npz"])
def test_images_without_pixels_are_refused_alike(tmp_path, shape, kind):
    """IDX files gave X of shape (5, 0); the two readers now refuse them in one wording."""
    images = np.zeros(shape, np.uint8)
    if kind == "idx":
        write_tiny_mnist(tmp_path, n_train=5, gz=False)
        write_idx(tmp_path / "train-images-idx3-ubyte", images)
        shown = "train-images-idx3-ubyte: its header"
    else:
        tmp_path = write_npz(tmp_path / "mnist.npz", x_train=images, y_train=np.arange(5))
        shown = "mnist.npz: x_train.npy"
    said = rf"{shown} declares {re.escape(str(shape))}: images without pixels; each image"
    with pytest.raises(ValueError, match=said):
        datasets.load_mnist(tmp_path)


def test_idx_raw_file_with_extra_bytes(tmp_path):
    write_tiny_mnist(tmp_path, gz=False)
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(ValueError, match="header promises .* the file holds 4"):
        datasets.load_mnist(tmp_path)


def test_idx_gzip_with_more_data_than_its_header(tmp_path):
    write_tiny_mnist(tmp_path)
    raw = gzip.decompress((tmp_path / "t10k-images-idx3-ubyte.gz").read_bytes())
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(raw + bytes(10)))
    with pytest.raises(ValueError, match="holds more data than its header's .* promises"):
        datasets.load_mnist(tmp_path)


def test_idx_header_declaring_too_much(tmp_path):
    write_tiny_mnist(tmp_path)
    header = (0x803).to_bytes(4, "big") + b"".join(
        n.to_bytes(4, "big") for n in (70000, 4000, 4000)
    )
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + bytes(100)))
    with pytest.raises(ValueError, match=f"more than the {MAX_IDX_BYTES} an IDX file may hold"):
        datasets.load_mnist(tmp_path)
    header = (0x803).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in (3, 2800, 2800))
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + bytes(100)))
    with pytest.raises(ValueError, match="images do not compress that well"):
        datasets.load_mnist(tmp_path)


def test_a_genuine_gzip_of_a_gigabyte_of_zeros_is_refused_before_it_is_inflated(tmp_path):
    """Deflate packs constant bytes ~1000:1, so a small, valid .gz can hold a huge body;
    images compress far less, and a file claiming more is refused from its header."""
    write_tiny_mnist(tmp_path)
    shape = (20000, 28, 28)  # 15.7 MB of zeros: about 15 KB of gzip
    header = (0x803).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in shape)
    packed = gzip.compress(header + bytes(math.prod(shape)))
    assert len(packed) * 500 < math.prod(shape)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(packed)
    with pytest.raises(ValueError, match="over 64 times the .* images do not compress"):
        datasets.load_mnist(tmp_path)


def test_idx_labels_count_is_checked_before_any_body_is_read(tmp_path, monkeypatch):
    write_tiny_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(5), gz=True)
    read = []
    monkeypatch.setattr(datasets.idx.IdxFile, "read", lambda self: read.append(self) or None)
    with pytest.raises(ValueError, match="holds 3 images but .* holds 5 labels"):
        datasets.load_mnist(tmp_path)
    assert read == []


# --- cat files --------------------------------------------------------------------


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.array([0, 2, 1, 0]), r"test_set_y holds 2; labels are 0 \(non-cat\) or 1 \(cat\)"),
        (np.array([0, -1, 1, 0]), "holds -1"),
        (np.array([0, 0.5, 1, 0]), "holds 0.5"),
        (np.array([0, np.nan, 1, 0]), "holds nan"),
    ],
)
def test_cat_labels_are_range_checked(tmp_path, labels, message):
    write_tiny_cat(tmp_path)
    write_cat(tmp_path / "test_catvnoncat.h5", "test", n=4)
    with h5py.File(tmp_path / "test_catvnoncat.h5", "a") as f:
        del f["test_set_y"]
        f["test_set_y"] = labels
    with pytest.raises(ValueError, match=message):
        datasets.load_catvnoncat(tmp_path)


def test_cat_float_pixels_in_0_1_are_not_divided_again(tmp_path):
    write_tiny_cat(tmp_path)
    x, _ = write_cat(tmp_path / "train_catvnoncat.h5", "train")
    with h5py.File(tmp_path / "train_catvnoncat.h5", "a") as f:
        del f["train_set_x"]
        f["train_set_x"] = x / np.float32(255)
    (X, _), _ = datasets.load_catvnoncat(tmp_path)
    np.testing.assert_array_equal(X, (x / np.float32(255)).reshape(4, -1))
    assert X.max() > 0.9


def test_cat_files_that_read_another_file_are_refused(tmp_path):
    secret = tmp_path / "secret.h5"
    with h5py.File(secret, "w") as f:
        f["x"] = np.full((4, 64, 64, 3), 77, np.uint8)
    folder = tmp_path / "cats"
    write_tiny_cat(folder)
    with h5py.File(folder / "train_catvnoncat.h5", "a") as f:
        del f["train_set_x"]
        f["train_set_x"] = h5py.ExternalLink(str(secret), "/x")
    with pytest.raises(ValueError, match="'train_set_x' is an external link"):
        datasets.load_catvnoncat(folder)
    with h5py.File(folder / "train_catvnoncat.h5", "a") as f:
        del f["train_set_x"]
        layout = h5py.VirtualLayout(shape=(4, 64, 64, 3), dtype="u1")
        layout[:] = h5py.VirtualSource(str(secret), "x", shape=(4, 64, 64, 3))
        f.create_virtual_dataset("train_set_x", layout)
    with pytest.raises(ValueError, match="'train_set_x' is virtual"):
        datasets.load_catvnoncat(folder)


def test_cat_images_declared_but_never_written(tmp_path):
    write_tiny_cat(tmp_path)
    with h5py.File(tmp_path / "train_catvnoncat.h5", "a") as f:
        del f["train_set_x"]
        f.create_dataset("train_set_x", shape=(4, 64, 64, 3), dtype="u1")
    with pytest.raises(ValueError, match="declares 49152 bytes but the file stores 0"):
        datasets.load_catvnoncat(tmp_path)


def test_names_from_data_files_are_escaped_in_messages(tmp_path):
    write_tiny_cat(tmp_path)
    with h5py.File(tmp_path / "train_catvnoncat.h5", "a") as f:
        f.move("train_set_x", "\x1b[32mOK\r\n")
    with pytest.raises(ValueError, match="missing dataset") as err:
        datasets.load_catvnoncat(tmp_path)
    assert str(err.value).isprintable() and r"has \x1b[32mOK\r\n, list_classes" in str(err.value)
    with zipfile.ZipFile(tmp_path / "mnist.npz", "w") as archive:
        archive.writestr("\x1b[2J.npy", b"")
    with pytest.raises(ValueError, match="missing key") as err:
        datasets.load_mnist(tmp_path / "mnist.npz")
    assert str(err.value).isprintable()


def test_cat_class_names_may_not_declare_more_than_a_few_bytes(tmp_path):
    """Two names of 1 MB each, compressed to nearly nothing, were read whole before
    their shape was checked."""
    write_tiny_cat(tmp_path)
    with h5py.File(tmp_path / "train_catvnoncat.h5", "a") as f:
        del f["list_classes"]
        names = np.array([b"non-cat" * 150_000, b"cat"], dtype="S1050000")
        f.create_dataset("list_classes", data=names, compression=9)
    with pytest.raises(ValueError, match=r"list_classes declares \(2,\) \|S1050000 .*4096 bytes"):
        datasets.load_catvnoncat(tmp_path, return_classes=True)
    (X, _), _ = datasets.load_catvnoncat(tmp_path)  # names not asked for are not read
    assert X.shape[1] == 12288


@pytest.mark.parametrize(
    "classes, message",
    [
        (np.bytes_(b"cat"), r"list_classes has shape \(\); it should hold the two"),
        (np.array([[b"non-cat", b"cat"]]), r"list_classes has shape \(1, 2\)"),
        (np.array([b"non-cat", b"cat", b"dog"]), r"list_classes has shape \(3,\)"),
        (
            np.array([b"non-cat", b"\xff\xfe"]),
            r"list_classes holds \[b'non-cat', b'\\xff\\xfe'\], which is not",
        ),
    ],
)
def test_cat_class_names_are_two_utf8_strings(tmp_path, classes, message):
    """A scalar b"cat" came back as ['99', '97', '116']; bytes not UTF-8 as a bare
    UnicodeDecodeError naming no file."""
    write_tiny_cat(tmp_path)
    with h5py.File(tmp_path / "train_catvnoncat.h5", "a") as f:
        del f["list_classes"]
        f["list_classes"] = classes
    with pytest.raises(ValueError, match=f"train_catvnoncat.h5: {message}"):
        datasets.load_catvnoncat(tmp_path, return_classes=True)


def test_cat_class_names_as_variable_length_strings_are_read_apart(tmp_path, monkeypatch):
    """h5py writes a list of str as variable-length strings (kept in the global heap):
    the names were refused as "object values, but strings are expected", and with them
    the whole file, class names asked for or not. They are read in the heap's child."""
    write_tiny_cat(tmp_path)
    with h5py.File(tmp_path / "train_catvnoncat.h5", "a") as f:
        del f["list_classes"]
        f.create_dataset("list_classes", data=["non-cat", "cät"], dtype=h5py.string_dtype())
    *_, classes = datasets.load_catvnoncat(tmp_path, return_classes=True)
    assert classes == ["non-cat", "cät"]
    monkeypatch.setattr(sys, "executable", "")  # no child: read here, after a warning
    monkeypatch.setattr(h5child, "_warned", [])
    with pytest.warns(RuntimeWarning, match="cannot start a child Python"):
        assert datasets.load_catvnoncat(tmp_path, return_classes=True)[2] == classes
    with h5py.File(tmp_path / "train_catvnoncat.h5", "a") as f:
        del f["list_classes"]
        f.create_dataset("list_classes", data=["non-cat", "c" * 5000], dtype=h5py.string_dtype())
    monkeypatch.undo()
    with pytest.raises(ValueError, match=r"strings of /list_classes are longer than 4096"):
        datasets.load_catvnoncat(tmp_path, return_classes=True)


# Images compress at most 64:1 (MNIST's about 5); deflate's limit, ~1000:1, let a 1.75 MB
# cat file or a 2 MB mnist.npz make the loaders take 9-10 GiB.


def test_cat_images_compressed_more_than_images_compress(tmp_path):
    write_tiny_cat(tmp_path)
    with h5py.File(tmp_path / "train_catvnoncat.h5", "a") as f:
        del f["train_set_x"]
        f.create_dataset("train_set_x", data=np.zeros((16, 64, 64, 3), "u1"), compression=9)
        assert f["train_set_x"].id.get_storage_size() * 64 < 16 * 64 * 64 * 3
    with pytest.raises(ValueError, match=r"stores \d+ \(compressed, at most 64 times that\)"):
        datasets.load_catvnoncat(tmp_path)


def test_a_cat_chunk_that_inflates_past_its_size_is_refused(tmp_path):
    """HDF5's deflate inflates a chunk's whole stream before it keeps a chunk's worth:
    a 1 MB file's chunk of 1 GiB of zeros took 14 s and 1 GiB (16 MiB here)."""
    write_tiny_cat(tmp_path)
    zeros = zlib.compressobj(9)
    bomb = zeros.compress(bytes(16 << 20)) + zeros.flush()
    with h5py.File(tmp_path / "train_catvnoncat.h5", "a") as f:
        del f["train_set_x"]
        x = f.create_dataset("train_set_x", (16, 64, 64, 3), "u1", chunks=(16, 64, 64, 3),
                             compression="gzip")  # fmt: skip
        x.id.write_direct_chunk((0, 0, 0, 0), bomb)
    with pytest.raises(ValueError, match=r"train_set_x has a compressed chunk that inflates past"):
        datasets.load_catvnoncat(tmp_path)


def test_cat_chunks_that_all_name_one_stored_chunk_are_refused(tmp_path):
    """The chunk index may point every entry at one compressed chunk: HDF5 then sums
    their sizes as stored, and a 0.3 MB file passed the 64:1 bound for 245 MB. What
    is stored is taken to be at most the file's size."""
    write_tiny_cat(tmp_path)
    path, chunk = tmp_path / "train_catvnoncat.h5", (100, 64, 64, 3)
    n = 2000  # 24.6 MB of pixels in 20 chunks; 20 x 1/64 of that declared stored
    claim = math.prod((n, 64, 64, 3)) // 64 // (n // 100) + 1
    payload = zlib.compress(bytes(math.prod(chunk)), 9)
    payload += bytes(claim - len(payload))  # zlib ignores what follows its stream's end
    with h5py.File(path, "w", libver="earliest") as f:
        x = f.create_dataset("train_set_x", (n, 64, 64, 3), "u1", chunks=chunk, compression="gzip")
        f["train_set_y"], f["list_classes"] = np.zeros(n, "i8"), np.array([b"non-cat", b"cat"])
        for i in range(n // 100):  # written last: the chunks are the file's tail
            x.id.write_direct_chunk((i * 100, 0, 0, 0), payload)
    with h5py.File(path, "r") as f:
        x = f["train_set_x"]
        offsets = [x.id.get_chunk_info(i).byte_offset for i in range(x.id.get_num_chunks())]
    data = bytearray(path.read_bytes())
    for offset in offsets[1:]:  # the index precedes the chunks: every entry names the first
        at = data.find(struct.pack("<Q", offset), 0, min(offsets))
        data[at : at + 8] = struct.pack("<Q", offsets[0])
    end = offsets[0] + len(payload)
    data = data[:end]  # the file ends after the one chunk; superblock 0's end address too
    data[40:48] = struct.pack("<Q", end)
    path.write_bytes(bytes(data))
    with h5py.File(path, "r") as f:
        assert f["train_set_x"].id.get_storage_size() * 64 >= f["train_set_x"].size  # the lie
    with pytest.raises(ValueError, match=r"train_set_x declares \d+ bytes but the file stores"):
        datasets.load_catvnoncat(tmp_path)


def test_h5pys_own_value_error_in_a_cat_file_names_the_file(tmp_path, monkeypatch):
    """A damaged object header makes h5py raise a ValueError of its own ("incorrect
    metadata checksum"): the cat loader let it out bare, without the file's name."""
    write_tiny_cat(tmp_path)

    def damaged(*args, **kwargs):
        raise ValueError("Unable to synchronously open group (incorrect metadata checksum)")

    monkeypatch.setattr(datasets.catvnoncat, "dataset_info", damaged)
    with pytest.raises(ValueError, match=r"train_catvnoncat.h5: .*incorrect metadata checksum"):
        datasets.load_catvnoncat(tmp_path)


def test_npz_members_compressed_otherwise_than_numpy_writes_are_refused(tmp_path):
    """bzip2 and lzma members: a zip directory may declare any stored size for them,
    which the 64:1 bound took at its word (a 1 kB file read 940 MB)."""
    path = write_npz(tmp_path / "mnist.npz")
    with zipfile.ZipFile(path) as plain:
        members = {name: plain.read(name) for name in plain.namelist()}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_BZIP2) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(ValueError, match="x_train.npy is compressed otherwise than numpy writes"):
        datasets.load_mnist(path)


def test_mnist_npz_images_compressed_more_than_images_compress(tmp_path):
    path = tmp_path / "mnist.npz"
    np.savez_compressed(
        path,
        x_train=np.zeros((200, 28, 28), np.uint8),
        y_train=np.zeros(200, np.uint8),
        x_test=np.zeros((1, 28, 28), np.uint8),
        y_test=np.zeros(1, np.uint8),
    )
    with pytest.raises(
        ValueError, match=r"x_train.npy claims 156928 bytes \(\d+ stored, at most 64"
    ):
        datasets.load_mnist(path)


def test_an_npz_directory_claiming_more_stored_than_the_file_holds_is_refused(tmp_path):
    """The zip directory's stored size of a member is trusted no further than the file's
    size: claimed 16 MB, the 64:1 bound passed images a 1 kB file inflates 160-fold."""
    path = tmp_path / "mnist.npz"
    np.savez_compressed(path, x_train=np.zeros((200, 28, 28), np.uint8),
                        y_train=np.zeros(200, np.uint8), x_test=np.zeros((1, 28, 28), np.uint8),
                        y_test=np.zeros(1, np.uint8))  # fmt: skip
    data = bytearray(path.read_bytes())
    entry = data.index(b"PK\x01\x02")  # the central directory's entries
    while data[entry + 46 : entry + 46 + len(b"x_train.npy")] != b"x_train.npy":
        entry = data.index(b"PK\x01\x02", entry + 4)
    data[entry + 20 : entry + 24] = struct.pack("<I", 16 << 20)  # its compressed size
    path.write_bytes(bytes(data))
    with zipfile.ZipFile(path) as archive:
        assert archive.getinfo("x_train.npy").compress_size == 16 << 20  # the lie
    told = rf"x_train.npy claims 156928 bytes \({len(data)} stored, at most 64"
    with pytest.raises(ValueError, match=told):
        datasets.load_mnist(path)


def test_mnist_npz_labels_are_not_read_past_the_images_count(tmp_path):
    path = write_npz(tmp_path / "mnist.npz", y_train=np.zeros(5, np.uint8))
    with pytest.raises(ValueError, match=r"y_train.npy declares \(5,\) labels for 2 images"):
        datasets.load_mnist(path)


@pytest.mark.parametrize("labels", [np.eye(10, dtype=np.uint8)[[1, 2]], np.array(1)])
def test_mnist_npz_labels_that_are_not_1d_are_named_by_shape(tmp_path, labels):
    """One-hot (2, 10) labels were refused as '(2, 10) labels for 2 images'."""
    path = write_npz(tmp_path / "mnist.npz", y_train=labels)
    shape = re.escape(str(labels.shape))
    with pytest.raises(
        ValueError, match=rf"y_train.npy has shape {shape}; labels should be \(N,\)"
    ):
        datasets.load_mnist(path)


@pytest.mark.parametrize("kind", ["cat", "idx", "npz"])
def test_images_whose_float32_pixels_pass_the_cap_are_refused_before_reading(
    tmp_path, monkeypatch, kind
):
    monkeypatch.setattr(datasets.pixels, "MAX_PIXEL_BYTES", 4 * 28 * 28)  # one MNIST image
    if kind == "cat":
        write_tiny_cat(tmp_path)
        load, shown = datasets.load_catvnoncat, "train_catvnoncat.h5: /train_set_x declares"
    elif kind == "idx":
        write_tiny_mnist(tmp_path)
        load, shown = datasets.load_mnist, "train-images-idx3-ubyte.gz: its header declares"
    else:
        tmp_path = write_npz(tmp_path / "mnist.npz")
        load, shown = datasets.load_mnist, "mnist.npz: x_train.npy declares"
    with pytest.raises(ValueError, match=f"{shown} .* bytes as float32, more than the 3136"):
        load(tmp_path)


def test_cat_float64_images_are_bounded_as_float32_pixels_only(tmp_path, monkeypatch):
    """The stored bytes were capped at MAX_PIXEL_BYTES as well, the float32 bound: a
    float64 file of more than half the allowed pixels was refused though they fit."""
    write_tiny_cat(tmp_path)
    pixels = np.linspace(0, 1, 4 * 64 * 64 * 3).reshape(4, 64, 64, 3)  # float64
    with h5py.File(tmp_path / "train_catvnoncat.h5", "a") as f:
        del f["train_set_x"]
        f["train_set_x"] = pixels
    monkeypatch.setattr(datasets.pixels, "MAX_PIXEL_BYTES", 4 * pixels.size)
    (X, _), _ = datasets.load_catvnoncat(tmp_path)
    np.testing.assert_array_equal(X, pixels.astype(np.float32).reshape(4, -1))
    monkeypatch.setattr(datasets.pixels, "MAX_PIXEL_BYTES", 4 * pixels.size - 1)
    with pytest.raises(ValueError, match=r"/train_set_x declares \(4, 64, 64, 3\): 49152 pixels"):
        datasets.load_catvnoncat(tmp_path)


def test_pixels_are_scaled_with_no_second_full_size_array():
    """astype, then dividing, then a transposed copy took 12 times the uint8 bytes."""
    import tracemalloc

    x = np.random.default_rng(0).integers(0, 256, (50, 64, 64, 3), dtype=np.uint8)
    tracemalloc.start()
    try:
        X = datasets.pixels.scaled_pixels(x, "file", "images", axes=(0, 3, 1, 2))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4.5 * x.nbytes
    assert X.flags.c_contiguous and X.shape == (50, 3, 64, 64)
    np.testing.assert_array_equal(X, (x.astype(np.float32) / np.float32(255)).transpose(0, 3, 1, 2))


# --- data files under a 1 GiB address-space cap ------------------------------------

LOAD_DATA_UNDER_A_1_GIB_CAP = textwrap.dedent(
    """
    import json, resource, sys
    from nnbackend import datasets
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    outcomes = []
    for kind, folder in json.loads(sys.argv[1]):
        try:
            (datasets.load_mnist if kind == "mnist" else datasets.load_catvnoncat)(folder)
            outcomes.append("loaded")
        except BaseException as exc:
            outcomes.append(type(exc).__name__ + ": " + str(exc)[:300])
    print(json.dumps(outcomes))
    """
)


def gzip_bomb(path, header: bytes, gigabytes: float) -> None:
    """A small .gz holding ``header`` and then ``gigabytes`` of zeros: gzip members of
    16 MiB each, concatenated (a reader sees one stream)."""
    chunk = 16 << 20
    member = gzip.compress(bytes(chunk), compresslevel=9)
    first = gzip.compress(header + bytes(chunk), compresslevel=9)
    path.write_bytes(first + member * int(gigabytes * (1 << 30) / chunk))


def test_small_files_cannot_force_huge_allocations(tmp_path):
    bomb = tmp_path / "bomb"  # a 2 MiB-ish .gz holding 2 GB behind an honest header
    write_tiny_mnist(bomb)
    header = (0x803).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in (3, 28, 28))
    gzip_bomb(bomb / "train-images-idx3-ubyte.gz", header, 2)
    assert (bomb / "train-images-idx3-ubyte.gz").stat().st_size < 4 << 20
    npz = tmp_path / "npz"
    npz.mkdir()
    npz_with_a_lying_header(npz / "mnist.npz", (10**9,))
    cat = tmp_path / "cat"
    write_tiny_cat(cat)
    with h5py.File(cat / "train_catvnoncat.h5", "a") as f:
        del f["train_set_x"]
        f.create_dataset("train_set_x", shape=(20000, 256, 256, 3), dtype="u1")  # 3.9 GB
    child = subprocess.run(
        [
            sys.executable,
            "-W",
            "ignore",
            "-c",
            LOAD_DATA_UNDER_A_1_GIB_CAP,
            json.dumps(
                [["mnist", str(bomb)], ["mnist", str(npz / "mnist.npz")], ["cat", str(cat)]]
            ),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"},
    )
    assert child.returncode == 0, child.stderr
    outcomes = json.loads(child.stdout)
    assert outcomes[0].startswith(f"ValueError: {bomb / 'train-images-idx3-ubyte.gz'}: holds more")
    assert outcomes[1].startswith(
        f"ValueError: {npz / 'mnist.npz'}: x_train.npy declares (1000000000,)"
    )
    assert outcomes[2].startswith(f"CatFileError: {cat / 'train_catvnoncat.h5'}: /train_set_x")


def test_broken_gzip_inside_the_body(tmp_path):
    write_tiny_mnist(tmp_path)
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(path.read_bytes())
    data[-6] ^= 0xFF  # the CRC of the data
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz: broken gzip data"):
        datasets.load_mnist(tmp_path)


def test_validation_data_is_named_as_such_in_errors():
    """Only the validation pair is wrong: the error says so, not "X" and "y"."""
    fit = dict(loss="cross_entropy", optimizer="sgd", epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"but validation X has shape \(40, 1\)"):
        net().fit(X, Y, validation_data=(X[:, :1], Y), **fit)
    with pytest.raises(ValueError, match="validation y has 5 targets but validation X has 40"):
        net().fit(X, Y, validation_data=(X, Y[:5]), **fit)


def test_predict_takes_the_backends_own_arrays_of_any_real_dtype_as_fit_does(backend):
    """float64 or integer arrays of the model's backend are cast, as fit casts them (a
    torch tensor made from float64 NumPy data is float64), not refused."""
    model = net(backend.name)
    model.fit(backend.asarray(X, dtype="float64"), Y, loss="cross_entropy", optimizer="sgd",
              epochs=1, verbose=0)  # fmt: skip
    want = model.predict(X)
    for data in (backend.asarray(X, dtype="float64"), backend.asarray(np.round(X * 4), "int64")):
        got = backend.to_numpy(model.predict(data))
        assert got.shape == want.shape
    np.testing.assert_array_equal(
        backend.to_numpy(model.predict(backend.asarray(X, "float64"))), want
    )


def test_boolean_labels_train_as_0_and_1(backend):
    """1-D bool labels for cross-entropy: the standard's min and max take no bools."""
    fit = dict(loss="cross_entropy", optimizer="sgd", epochs=2, verbose=0)
    on_bools = net(backend.name).fit(X, backend.asarray(Y == 1), **fit)
    on_ints = net(backend.name).fit(X, backend.asarray(Y.astype("int64")), **fit)
    assert on_bools["loss"] == on_ints["loss"]
