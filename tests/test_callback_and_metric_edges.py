"""Callbacks and metrics at their edges: a plateau is no improvement, a resume without
restoring puts back no weights, ModelCheckpoint's own every, one's own NaN check after
EarlyStopping, a metric's batch values refused with their reason, top-k's hint."""

from __future__ import annotations

from types import SimpleNamespace

import array_api_strict as xps
import pytest

import nnbackend as nb
from nnbackend.layers import Dense
from nnbackend.metrics import Accuracy, check_batch_value

X, Y = nb.datasets.make_blobs(40, centers=2, seed=0)


def test_a_plateau_is_no_improvement():
    model = nb.Sequential([Dense(2, 2)], seed=0)
    model.stop_training = False
    stopper = nb.callbacks.EarlyStopping(monitor="loss", patience=2)
    stopper.on_train_begin(model, SimpleNamespace(metrics=["loss"], rises={"loss": False}))
    for epoch in range(3):
        stopper.on_epoch_end(epoch, {"loss": 1.0}, model)
    assert model.stop_training and stopper.best_epoch == 0


def test_ones_own_nan_check_after_early_stopping_keeps_its_reason():
    stopper = nb.callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=10.0)
    history = nb.Sequential([Dense(2, 2)], seed=0).fit(
        X,
        Y,
        loss="cross_entropy",
        optimizer="sgd",
        epochs=5,
        verbose=0,
        callbacks=[stopper, nb.callbacks.TerminateOnNaN()],
    )
    assert history.stop_reason == "early stop: loss did not improve for 1 epoch; best was epoch 0"


def test_no_restoring_puts_back_no_best_weights_from_a_checkpoint():
    model = nb.Sequential([Dense(2, 2)], seed=0)
    model.stop_training = False
    fit = SimpleNamespace(metrics=["loss"], rises={"loss": False})
    saver = nb.callbacks.EarlyStopping(monitor="loss")  # restore_best_weights=True
    saver.on_train_begin(model, fit)
    saver.on_epoch_end(0, {"loss": 1.0}, model)
    saver.on_epoch_end(1, {"loss": 2.0}, model)  # wait 1, best weights of epoch 0 kept
    state = saver.get_state()
    name = next(iter(model.params))
    model.params[name] = model.params[name] + 1.0  # the weights moved on
    moved = nb.to_numpy(model.params[name]).copy()
    plain = nb.callbacks.EarlyStopping(monitor="loss", restore_best_weights=False)
    plain.on_train_begin(model, fit)
    plain.set_state(state)
    plain.on_train_end(model, nb.history.History(model.backend))
    assert (nb.to_numpy(model.params[name]) == moved).all()


def test_checkpoint_every_is_not_the_log_points(tmp_path):
    saved = []

    class Recording(nb.callbacks.ModelCheckpoint):
        def _save(self, model, epoch, stopped=False):
            saved.append(epoch)

    nb.Sequential([Dense(2, 2)], seed=0).fit(
        X,
        Y,
        loss="cross_entropy",
        optimizer="sgd",
        epochs=5,
        log_every=10,
        verbose=0,
        callbacks=[Recording(tmp_path / "run.h5", every=2)],
    )
    assert saved == [0, 2, 4]


def test_batch_values_refused_with_their_reason():
    out = xps.ones((4, 3))
    for part, said in [
        ((xps.sum(out), 4, 0), r"it returns a pair \(value, weight\)"),
        ((xps.asarray(1.0, device=xps.Device("device1")), 4), "its value is on .*device1"),
        ((xps.sum(out), -1.0), "its weight is -1.0"),
        ((xps.sum(out), float("nan")), "its weight is nan"),
    ]:
        with pytest.raises(TypeError, match=said):
            check_batch_value(Accuracy(), part, out)
    check_batch_value(Accuracy(), (xps.sum(out), 0), out)  # no rows: weight 0 is taken


def test_top_k_of_too_few_classes_suggests_a_k_that_works():
    X, y = nb.datasets.make_blobs(40, centers=5, seed=0)
    model = nb.Sequential([nb.layers.Dense(2, 5)], seed=0)
    with pytest.raises(ValueError, match=r"choose k < 5, e.g. nb.metrics.TopKAccuracy\(k=2\)"):
        model.fit(
            X,
            y,
            loss="cross_entropy",
            optimizer="sgd",
            verbose=0,
            metrics=[nb.metrics.TopKAccuracy(5)],
        )


def test_a_callback_shows_the_arguments_it_was_made_with():
    """A list of callbacks printed as <... object at 0x7f...>: now as the calls that
    make them again."""
    made = [
        nb.callbacks.EarlyStopping(monitor="loss", patience=3, mode="min"),
        nb.callbacks.TerminateOnNaN(every=2, raise_error=True),
        nb.callbacks.ModelCheckpoint("run.h5", every=5),
    ]
    assert repr(made[0]) == (
        "EarlyStopping(monitor='loss', patience=3, min_delta=0.0, mode='min', "
        "restore_best_weights=True)"
    )
    for callback in made:
        again = eval(repr(callback), vars(nb.callbacks))
        assert type(again) is type(callback) and vars(again) == vars(callback)

    class HalveOnPlateau(nb.callbacks.Callback):
        def __init__(self, patience=2, *args, **kwargs):
            self.patience = patience

    assert repr(HalveOnPlateau(4)) == "HalveOnPlateau(patience=4)"
    assert repr(nb.callbacks.Callback()) == "Callback()"
