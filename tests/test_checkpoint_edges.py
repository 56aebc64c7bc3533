"""Checkpoints at their edges, each test killing a mutation no other test noticed:
files older or plainer than today's, states that cannot be written, limits the walk
over a crafted file must keep, and descriptors a save must give back."""

from __future__ import annotations

import gc
import json
import os

import h5py
import numpy as np
import pytest

import nnbackend as nb
from nnbackend import atomic, h5safe
from nnbackend.h5text import MAX_JSON_DEPTH, parse_json, write_text
from nnbackend.io import CheckpointError
from nnbackend.layers import Dense, ReLU

X, Y = nb.datasets.make_moons(40, noise=0.2, seed=0)


def trained(tmp_path, **save):
    model = nb.Sequential([Dense(2, 4), ReLU(), Dense(4, 2)], seed=0)
    optimizer = nb.optim.Momentum(0.1)
    model.fit(X, Y, loss="cross_entropy", optimizer=optimizer, epochs=1, verbose=0)
    path = tmp_path / "m.h5"
    nb.save(model, path, optimizer=optimizer, **save)
    return model, optimizer, path


def test_a_plain_save_is_not_stopped_and_loads_with_its_optimizer(tmp_path):
    model, optimizer, path = trained(tmp_path, epoch=1)
    with h5py.File(path) as f:
        assert f["training"].attrs["stopped"] == 0 and f.attrs["saved_from"] == b"numpy"
    loaded, again, epoch = nb.load(path, with_optimizer=True)
    assert nb.load(path).optimizer.state_dict()["iterations"] == optimizer.iterations
    assert epoch == 1 and isinstance(again, nb.optim.Momentum)
    history = model.fit(X, Y, loss="cross_entropy", optimizer=nb.optim.Momentum(0.1),
                        epochs=3, verbose=0, checkpoint=path, resume=True)  # fmt: skip
    assert history.epochs == [2]


@pytest.mark.parametrize("drop", ["training", "training/stopped"])
def test_a_file_without_training_or_its_stopped_mark_loads(tmp_path, drop):
    """Files of before ``stopped`` (or with no training group) load: epoch as saved or
    None, not stopped."""
    model, _, path = trained(tmp_path, epoch=1)
    with h5py.File(path, "a") as f:
        if drop == "training":
            del f["training"]
        else:
            del f["training"].attrs["stopped"]
    saved = nb.io.restore_checkpoint(model, path)
    assert saved.epoch == (None if drop == "training" else 1) and not saved.stopped


@pytest.mark.parametrize("epoch", [-1, 2.9, True])
def test_an_epoch_that_is_not_a_count_is_refused(tmp_path, epoch):
    model = nb.Sequential([Dense(2, 2)], seed=0)
    with pytest.raises((TypeError, ValueError), match="epoch"):
        nb.save(model, tmp_path / "m.h5", epoch=epoch)
    assert not (tmp_path / "m.h5").exists()


def test_the_largest_epoch_a_save_writes_loads(tmp_path):
    model, _, path = trained(tmp_path, epoch=2**53)
    assert nb.load(path, with_optimizer=True)[2] == 2**53


def test_an_optimizer_that_stepped_some_weights_saves_and_loads(tmp_path):
    """A weight left without a gradient (frozen) has no slot: the file holds some of the
    model's arrays, which an optimizer's state may."""
    model = nb.Sequential([Dense(2, 4), ReLU(), Dense(4, 2)], seed=0)
    optimizer = nb.optim.Momentum(0.1)
    grads = {"2.W": model.backend.xp.ones((4, 2), dtype=model.backend.dtype)}
    optimizer.step(dict(model.params), grads)
    nb.save(model, tmp_path / "m.h5", optimizer=optimizer)
    _, again, _ = nb.load(tmp_path / "m.h5", with_optimizer=True)
    assert list(again.state["v"]) == ["2.W"]


class NotFinite(nb.callbacks.Callback):
    def get_state(self):
        return {"best": float("inf")}


def test_a_state_that_json_cannot_hold_is_refused_before_a_write(tmp_path):
    """Saved with Infinity, it made a file no load could read."""
    model, optimizer, path = trained(tmp_path)
    before = path.read_bytes()
    with pytest.raises(ValueError, match=r"its get_state\(\) sets state\['best'\] to inf; a file"):
        nb.save(model, path, optimizer=optimizer, callbacks={"NotFinite": NotFinite().get_state()})
    assert path.read_bytes() == before


def test_two_callbacks_of_one_class_resume(tmp_path):
    path = tmp_path / "m.h5"
    stops = [nb.callbacks.EarlyStopping(patience=9), nb.callbacks.EarlyStopping("loss", 9)]
    model = nb.Sequential([Dense(2, 4), ReLU(), Dense(4, 2)], seed=0)
    fit = dict(loss="cross_entropy", optimizer="sgd", verbose=0, validation_split=0.25,
               checkpoint=path, log_every=1)  # fmt: skip
    model.fit(X, Y, epochs=2, callbacks=stops, **fit)
    with h5py.File(path) as f:
        assert sorted(f["callbacks"]) == ["EarlyStopping", "EarlyStopping.1"]
    again = [nb.callbacks.EarlyStopping(patience=9), nb.callbacks.EarlyStopping("loss", 9)]
    history = model.fit(X, Y, epochs=3, callbacks=again, resume=True, **fit)
    assert history.epochs == [2] and again[1].monitor == "loss"


def test_a_monitor_that_is_not_a_name_is_refused_at_once():
    with pytest.raises(TypeError, match="monitor"):
        nb.callbacks.EarlyStopping(monitor=0)


def test_links_past_the_limit_are_refused_before_any_is_followed(tmp_path, monkeypatch):
    """An external link after the limit was never looked at when the count stopped."""
    monkeypatch.setattr(h5safe, "MAX_LINKS", 50)
    path = tmp_path / "many.h5"
    with h5py.File(path, "w") as f:
        for i in range(60):
            f[f"g{i:02d}"] = np.zeros(1)
        f["zz"] = h5py.ExternalLink("elsewhere.h5", "/data")
    with pytest.raises(CheckpointError, match="more than 50 links"):
        nb.load(path)


def test_json_nested_past_the_limit_behind_closed_lists_is_refused():
    text = "[" + "[]," * 300 + "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH + "]"
    with pytest.raises(ValueError, match=f"nested deeper than {MAX_JSON_DEPTH}"):
        parse_json("x.h5", text, "config", ValueError)


def open_descriptors() -> set[str]:
    """The files this process holds open (none where there is no /proc to list), after
    a collection: a file another test left to the garbage collector closes now, not in
    the middle of a count."""
    gc.collect()
    return set(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else set()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="no /proc here")
def test_saves_give_back_every_descriptor(tmp_path, monkeypatch):
    model, optimizer, path = trained(tmp_path)
    before = open_descriptors()
    for _ in range(20):
        nb.save(model, path, optimizer=optimizer)
    assert open_descriptors() <= before

    def disk_full(fd, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic, "_write_some", disk_full)
    for _ in range(20):
        with pytest.raises(OSError):
            nb.save(model, path, optimizer=optimizer)
    assert open_descriptors() <= before


@nb.register
class _WarmupRate(nb.schedules.Schedule):
    """A schedule of one's own that keeps an attribute worked out from its arguments."""

    def __init__(self, lr, warmup=4):
        self.lr, self.warmup = lr, warmup
        self.slope, self.half = lr / warmup, warmup // 2

    def __call__(self, step):
        return self.slope * min(step + 1, self.warmup)


def _with_saved_schedule_attribute(path, **attributes) -> None:
    """The file as older versions wrote it: their config() saved every attribute."""
    with h5py.File(path, "a") as f:
        config = parse_json(path, f["optimizer"].attrs["config"].decode(), "optimizer", ValueError)
        config["lr"].update(attributes)
        write_text(f["optimizer"], "config", json.dumps(config))


@pytest.mark.parametrize(
    "saved, loads",
    [
        (dict(slope=0.008), True),
        (dict(slope=0.5), False),
        (dict(slope=0.008, half=5), True),
        (dict(slope=0.008, half=99), False),  # one of two that says something else
    ],
)
def test_a_schedule_saved_with_an_attribute_worked_out_from_its_arguments(
    backend, tmp_path, saved, loads
):
    """Such a file was refused whole, its weights too ("unexpected keyword argument
    'slope'"); it loads where the arguments work the attribute out to the saved value,
    and stays refused where they do not (the file says something else)."""
    model = nb.Sequential([Dense(2, 2)], backend=backend, seed=0)
    optimizer = nb.optim.Adam(_WarmupRate(0.08, warmup=10))
    model.fit(X, Y, loss="cross_entropy", optimizer=optimizer, epochs=2, batch_size=10, verbose=0)
    path = tmp_path / "run.h5"
    nb.save(model, path, optimizer=optimizer, epoch=1)
    _with_saved_schedule_attribute(path, **saved)
    if not loads:
        with pytest.raises(CheckpointError, match=r"unexpected keyword argument '(slope|half)'"):
            nb.load(path, backend=backend)
        return
    again, optimizer_again, epoch = nb.load(path, backend=backend, with_optimizer=True)
    assert (epoch, optimizer_again.iterations, optimizer_again.lr.warmup) == (1, 8, 10)
    assert optimizer_again.current_lr() == optimizer.current_lr() == 0.08 / 10 * 9
    np.testing.assert_array_equal(
        nb.to_numpy(again.params["0.W"]), nb.to_numpy(model.params["0.W"])
    )


def test_an_older_schedule_config_with_a_bad_argument_is_still_refused_as_such():
    """The retry without the worked-out keys fails too: the first refusal is raised."""
    config = {"type": "StepDecay", "lr": "fast", "step_size": 2, "gamma": 0.5, "worked": 1}
    with pytest.raises(ValueError, match=r"unexpected keyword argument 'worked'"):
        nb.schedules.StepDecay.from_config(config)
