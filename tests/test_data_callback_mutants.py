"""Edges of the batches, callbacks' keys and EarlyStopping's state that a mutation run of
data.py, callbacks.py and callback_base.py found no test holding: each test fails under a
mutant the rest of the suite let pass."""

from __future__ import annotations

import json
import math
import warnings
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

import nnbackend as nb
from nnbackend.layers import Dense, Tanh

X, Y = nb.datasets.make_moons(40, noise=0.35, seed=1)
VALIDATION = nb.datasets.make_moons(40, noise=0.35, seed=2)
MONITORS = ("val_loss", "loss", "accuracy")


def three_stoppers_fit(path, resume: bool = False, epochs: int = 3):
    """A fit with an EarlyStopping on each of MONITORS (none stops it), saved each epoch."""
    model = nb.Sequential([Dense(2, 8), Tanh(), Dense(8, 2)], seed=0)
    stoppers = [nb.callbacks.EarlyStopping(monitor=m, patience=100) for m in MONITORS]
    model.fit(
        X, Y, loss="cross_entropy", optimizer=nb.optim.Adam(0.05), epochs=epochs, batch_size=8,
        validation_data=VALIDATION, callbacks=stoppers, checkpoint=path, resume=resume,
        log_every=1, verbose=0,
    )  # fmt: skip
    return stoppers


def test_three_callbacks_of_one_class_are_saved_under_three_keys(tmp_path):
    """Keys counted only to 1 would save the third EarlyStopping over the second, as
    "EarlyStopping.1": the resume would give the "loss" one the "accuracy" one's state,
    warn that it watched another value, and start it afresh."""
    path = tmp_path / "run.h5"
    three_stoppers_fit(path)
    with h5py.File(path, "r") as f:
        keys = sorted(f["callbacks"])
        watched = [json.loads(f["callbacks"][k].attrs["state"])["monitor"] for k in keys]
    assert keys == ["EarlyStopping", "EarlyStopping.1", "EarlyStopping.2"]
    assert watched == list(MONITORS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stoppers = three_stoppers_fit(path, resume=True, epochs=5)
    assert not [w for w in caught if "watched" in str(w.message)]
    assert [s.monitor for s in stoppers] == list(MONITORS)
    assert all(s.best_epoch is not None for s in stoppers)  # each carried its own best on


def test_early_stopping_saves_a_best_never_set_as_none():
    """A best of inf (no finite value seen yet: a first epoch of NaN) is saved as None:
    as inf, JSON would write Infinity, which set_state refuses as not finite."""
    model = nb.Sequential([Dense(2, 1)], seed=0)
    fit = SimpleNamespace(metrics=["loss"], rises={"loss": False})
    stopper = nb.callbacks.EarlyStopping(monitor="loss", patience=3)
    stopper.on_train_begin(model, fit)
    stopper.on_epoch_end(0, {"loss": math.nan}, model)
    state = stopper.get_state()
    assert state["best"] is None and state["wait"] == 1
    again = nb.callbacks.EarlyStopping(monitor="loss", patience=3)
    again.on_train_begin(model, fit)
    again.set_state(json.loads(json.dumps(state)))
    assert again.best == math.inf and again.wait == 1 and again.best_epoch is None


def test_early_stopping_refuses_a_negative_min_delta():
    """A min_delta of -0.5 would count a value 0.5 worse than the best as better, and
    its weights as the best to put back."""
    with pytest.raises(ValueError, match="min_delta"):
        nb.callbacks.EarlyStopping(monitor="loss", min_delta=-0.5)


@pytest.mark.parametrize("on_device", [True, False])
@pytest.mark.parametrize("dtype", ["uint8", "int64"])
@pytest.mark.parametrize("width", ["float32", "float64"])
def test_batches_of_integer_data_come_in_the_models_float_dtype(backend, dtype, on_device, width):
    """Without the cast, on the device (the whole set placed at once) or on the host
    (each batch cast on its way), batches of uint8 pixels or int64 counts would come as
    integers: a hand loop's forward would meet integers where the weights are floats."""
    backend = backend.with_dtype(width)
    data = np.arange(24, dtype=dtype).reshape(12, 2)
    batches = nb.data.Batches(
        data, np.arange(12) % 2, backend, batch_size=4, shuffle=False, on_device=on_device
    )
    assert batches.on_device is on_device
    model = nb.Sequential([Dense(2, 3)], backend=backend, seed=0)
    seen = []
    for xb, _ in batches:
        assert xb.dtype == backend.dtype and tuple(xb.shape) == (4, 2)
        out = model.forward(xb)
        assert out.dtype == backend.dtype and tuple(out.shape) == (4, 3)
        seen.append(backend.to_numpy(xb))
    np.testing.assert_array_equal(np.concatenate(seen), data.astype(width))


def test_a_batch_size_past_the_rows_gives_one_batch_of_them_all():
    """A batch_size of 100 for 6 rows is 6: BatchNorm's smallest-batch check and the
    step's thread count read it."""
    batches = nb.data.Batches(np.ones((6, 2)), None, "numpy", batch_size=100)
    assert batches.batch_size == 6 and len(batches) == 1 and not batches.shuffle
    shapes = [tuple(xb.shape) for xb, _ in batches]
    assert shapes == [(6, 2)]


@pytest.mark.parametrize(
    "x_shape, t, x_code, t_code",
    [
        ((784, 1), np.zeros((10, 1)), "np.ravel(x)", "np.ravel(t)"),  # Nielsen's columns
        ((784, 1), 3, "np.ravel(x)", "t"),
        ((28, 28), 3, "x", "t"),  # images: np.ravel would make rows of them
        ((28, 28), np.zeros((10, 1)), "x", "np.ravel(t)"),
    ],
    ids=["columns", "column-and-label", "image-and-label", "image-and-column"],
)
def test_fit_on_pairs_says_ravel_only_for_column_vectors(x_shape, t, x_code, t_code):
    """Column vectors alone are told to ravel: taken for one, 28 x 28 images would be
    told to flatten for a model that may want them whole."""
    model = nb.Sequential([Dense(784, 10)], seed=0)
    pairs = [(np.zeros(x_shape), t) for _ in range(3)]
    with pytest.raises(ValueError) as info:
        model.fit(pairs, loss="cross_entropy", optimizer="sgd", verbose=0)
    assert "X is a list of 3 (x, y) samples" in str(info.value)
    assert f"X = np.stack([{x_code} for x, _ in pairs]);" in str(info.value)
    assert f"y = np.stack([{t_code} for _, t in pairs])" in str(info.value)
