"""Callbacks and checkpoints: the last checkpoint holds the weights ``fit`` returns,
EarlyStopping's state is saved and given back, and a run killed and resumed ends
exactly (bit for bit, on NumPy) where an uninterrupted one does."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import warnings

import h5py
import numpy as np
import pytest

import nnbackend as nb
from nnbackend.layers import Dense, Tanh

ROOT = os.path.dirname(os.path.dirname(__file__))
X, Y = nb.datasets.make_moons(40, noise=0.35, seed=1)
VALIDATION = nb.datasets.make_moons(40, noise=0.35, seed=2)
# With these, val_loss improves until epoch 25 (on NumPy), waits at 18-19 and 22, and the
# run stops after epoch 29 (patience 4). Checkpoints fall every 3 epochs.
FIT = dict(
    loss=nb.losses.SoftmaxCrossEntropy(),
    epochs=80,
    batch_size=8,
    validation_data=VALIDATION,
    verbose=0,
    log_every=3,
)
STOP = 29


def fresh(backend="numpy"):
    model = nb.Sequential([Dense(2, 32), Tanh(), Dense(32, 2)], backend=backend, seed=0)
    return model, nb.optim.Adam(0.05), nb.callbacks.EarlyStopping(patience=4)


def run(path=None, resume=False, extra=(), backend="numpy"):
    model, opt, stopper = fresh(backend)
    history = model.fit(
        X, Y, optimizer=opt, callbacks=[*extra, stopper], checkpoint=path, resume=resume, **FIT
    )
    return model, history


def host(model) -> dict:
    return {k: nb.to_numpy(v).copy() for k, v in model.params.items()}


def same(a: dict, b: dict) -> bool:
    return list(a) == list(b) and all(a[k].tobytes() == b[k].tobytes() for k in a)


def test_the_last_checkpoint_holds_the_best_weights_fit_returns(backend, tmp_path):
    path = tmp_path / "run.h5"
    model, history = run(path, backend=backend)
    stop = history.epochs[-1]
    best = int(np.argmin(history["val_loss"]))
    assert stop < 80 and history.stop_reason.endswith(f"best was epoch {best}")
    saved, _, epoch = nb.load(path, backend=backend, with_optimizer=True)
    assert epoch == stop
    assert same(host(saved), host(model))  # the best weights, restored before the save
    with h5py.File(path, "r") as f:
        assert f["training"].attrs["stopped"] == 1
        state = json.loads(f["callbacks/EarlyStopping"].attrs["state"])
        assert (state["best_epoch"], state["wait"], state["monitor"]) == (best, 4, "val_loss")
        np.testing.assert_array_equal(f["callbacks/EarlyStopping/0.W"][()], host(model)["0.W"])


def test_resuming_a_stopped_run_trains_no_more(tmp_path):
    path = tmp_path / "run.h5"
    finished, first = run(path)
    model, history = run(path, resume=True)
    assert history.epochs == [] and history.stop_reason == first.stop_reason
    assert same(host(model), host(finished))
    assert nb.load(path, with_optimizer=True)[2] == STOP  # and the file was left as it was
    model, opt, _ = fresh()  # without its EarlyStopping, the reason is still given
    history = model.fit(X, Y, optimizer=opt, checkpoint=path, resume=True, **FIT)
    assert history.stop_reason.startswith(f"nothing left to train: {path}: a callback")


def test_resuming_a_run_whose_epochs_ran_out_says_so(tmp_path, capsys):
    path = tmp_path / "run.h5"
    fit = {**FIT, "epochs": 3, "validation_data": None}
    model, opt, _ = fresh()
    model.fit(X, Y, optimizer=opt, checkpoint=path, **fit)
    model, opt, _ = fresh()
    history = model.fit(X, Y, optimizer=opt, checkpoint=path, resume=True, **{**fit, "verbose": 1})
    assert history.epochs == []
    assert "it holds epoch 2, the last of epochs=3 (epochs above 3 go on" in capsys.readouterr().out


@pytest.mark.parametrize("k", [10, 19, 22])  # EarlyStopping waiting 0, 2 and 1 epochs
def test_a_run_another_callback_stopped_resumes_where_it_stopped(tmp_path, k):
    """A stop for another reason (a job's time limit) is not the end of the run: the
    resumed fit trains the epochs left, as an uninterrupted run does. The checkpoint
    holds the last epoch's weights, though fit gave back EarlyStopping's best."""
    path = tmp_path / "run.h5"

    def stop_at(k):
        def stop(epoch, logs, model):
            model.stop_training = model.stop_training or epoch == k

        return nb.callbacks.LambdaCallback(stop)

    last = {}
    keep = nb.callbacks.LambdaCallback(lambda epoch, logs, model: last.update(host(model)))
    first_model, first = run(path, extra=[stop_at(k), keep])
    assert first.epochs[-1] == k  # and the History says why (it said None)
    assert first.stop_reason == f"LambdaCallback stopped the fit at epoch {k}"
    assert same(host(nb.load(path)), last)
    assert same(host(first_model), last) == (k == 10)  # waiting: the best put back
    with h5py.File(path, "r") as f:
        assert f["training"].attrs["stopped"] == 0
    model, rest = run(path, resume=True)
    straight, history = run()
    assert rest.epochs == list(range(k + 1, STOP + 1))
    assert rest.stop_reason == history.stop_reason
    assert same(host(model), host(straight))


def test_batch_norms_running_statistics_resume_too(tmp_path):
    """Half a run, saved, loaded and run on: BatchNorm's running mean and variance (state,
    not weights) and the weights end as in one run."""
    path = tmp_path / "run.h5"

    def fit(epochs, **options):
        layers = [Dense(2, 16), nb.layers.BatchNorm(16), Tanh(), Dense(16, 2)]
        model = nb.Sequential(layers, seed=0)
        settings = {**FIT, "epochs": epochs}
        model.fit(X, Y, optimizer=nb.optim.Adam(0.05), **settings, **options)
        return model

    straight = fit(12)
    fit(6, checkpoint=path)
    resumed = fit(12, checkpoint=path, resume=True)
    assert set(resumed.state) == {"1.running_mean", "1.running_var"}
    for store in ("params", "state"):
        want, got = getattr(straight, store), getattr(resumed, store)
        assert same({k: nb.to_numpy(v) for k, v in got.items()},
                    {k: nb.to_numpy(v) for k, v in want.items()})  # fmt: skip


def test_a_run_whose_epochs_ran_out_goes_on_with_more(tmp_path):
    """20 epochs (EarlyStopping waiting at the last), then resumed to 80: as 80 at once."""
    path = tmp_path / "run.h5"
    model, opt, stopper = fresh()
    settings = {**FIT, "epochs": 20}
    first = model.fit(X, Y, optimizer=opt, callbacks=[stopper], checkpoint=path, **settings)
    assert first.epochs[-1] == 19 and stopper.wait == 2
    model, rest = run(path, resume=True)
    straight, history = run()
    assert rest.epochs == list(range(20, STOP + 1))
    assert same(host(model), host(straight))


@pytest.mark.parametrize("patience", [0, 1])
def test_patience_stops_at_the_first_epoch_without_improvement(patience):
    """Patience 0 and 1 alike stop at the first epoch that does not improve; a run
    whose every epoch improved was not stopped, whatever the patience."""
    model = nb.Sequential([Dense(2, 4), Tanh(), Dense(4, 2)], seed=0)
    stopper = nb.callbacks.EarlyStopping(monitor="loss", patience=patience)
    history = model.fit(
        X, Y, loss="cross_entropy", optimizer="sgd", epochs=3, verbose=0, callbacks=[stopper]
    )
    assert np.all(np.diff(history["loss"]) < 0) and history.stop_reason is None
    stopper = nb.callbacks.EarlyStopping(monitor="loss", patience=patience, min_delta=10.0)
    history = model.fit(
        X, Y, loss="cross_entropy", optimizer="sgd", epochs=5, verbose=0, callbacks=[stopper]
    )
    assert history.epochs == [0, 1]
    # patience 0 stopped after one epoch that did not improve, and said 0
    assert history.stop_reason == "early stop: loss did not improve for 1 epoch; best was epoch 0"


def test_without_restoring_the_stopped_run_keeps_its_last_weights():
    """restore_best_weights=False: the run stops where the restoring one does, with the
    weights of its last epoch, those of a run of that many epochs and no callback."""
    model, opt, _ = fresh()
    stopper = nb.callbacks.EarlyStopping(patience=4, restore_best_weights=False)
    history = model.fit(X, Y, optimizer=opt, callbacks=[stopper], **FIT)
    assert history.epochs[-1] == STOP and stopper.best_epoch < STOP
    plain, opt, _ = fresh()
    plain.fit(X, Y, optimizer=opt, **{**FIT, "epochs": STOP + 1})
    assert same(host(model), host(plain))
    best, _ = run()
    assert not same(host(model), host(best))


def test_two_callbacks_of_one_class_get_their_own_states_back():
    first = nb.callbacks.EarlyStopping(patience=3, monitor="loss")
    second = nb.callbacks.EarlyStopping(patience=5, mode="max", monitor="val_accuracy")
    first.best, first.best_epoch, first.wait = 0.5, 2, 1
    second.best, second.best_epoch, second.wait = -0.75, 4, 3
    first.best_arrays = second.best_arrays = None
    states = json.loads(json.dumps(nb.callbacks.callback_states([first, second])))
    again = [
        nb.callbacks.EarlyStopping(patience=3, monitor="loss"),
        nb.callbacks.EarlyStopping(patience=5, mode="max", monitor="val_accuracy"),
    ]
    nb.callbacks.set_callback_states(again, states)
    assert [(c.best, c.best_epoch, c.wait) for c in again] == [(0.5, 2, 1), (-0.75, 4, 3)]


def test_a_callback_class_named_from_a_digit_saves_and_resumes(tmp_path):
    """type("3Phase", ...) made the key "3Phase", which every load refuses: a fit of it
    trained an epoch, and its save refused the name."""
    kept = type("3Phase", (nb.callbacks.EarlyStopping,), {})(monitor="loss", patience=9)
    X, y = nb.datasets.make_moons(32, seed=0)
    model = nb.Sequential([nb.layers.Dense(2, 2)], seed=0)
    fit = dict(loss="cross_entropy", optimizer="sgd", verbose=0, checkpoint=tmp_path / "c.h5")
    model.fit(X, y, epochs=1, callbacks=[kept], **fit)
    assert list(nb.callbacks.callback_states([kept])) == ["_3Phase"]
    assert len(model.fit(X, y, epochs=2, resume=True, callbacks=[kept], **fit).history["loss"]) == 1


KILLED_AND_RESUMED = textwrap.dedent(
    """
    import json, os, signal, sys
    import nnbackend as nb
    from tests.test_callbacks_in_checkpoints import run, host, same

    folder, kill_points = sys.argv[1], json.loads(sys.argv[2])
    straight, history = run()
    report = []
    for k in kill_points:
        path = os.path.join(folder, f"killed-at-{k}.h5")
        pid = os.fork()
        if pid == 0:  # the run that dies at epoch k, before that epoch's checkpoint
            def die(epoch, logs, model):
                if epoch == k:
                    os.kill(os.getpid(), signal.SIGKILL)
            run(path, extra=[nb.callbacks.LambdaCallback(die)])
            os._exit(3)  # never reached
        status = os.waitpid(pid, 0)[1]
        saved_epoch = nb.load(path, with_optimizer=True)[2]
        resumed, rest = run(path, resume=True)
        report.append({
            "k": k, "killed": os.WIFSIGNALED(status), "saved_epoch": saved_epoch,
            "same_weights": same(host(resumed), host(straight)),
            "epochs": rest.epochs, "same_reason": rest.stop_reason == history.stop_reason,
            "same_val_loss": rest["val_loss"] == history["val_loss"][-len(rest):],
        })
    print(json.dumps(report))
    """
)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_killed_and_resumed_equals_uninterrupted_bit_for_bit(tmp_path):
    kill_points = [2, 19, 28, STOP]  # before the best, while waiting, at the stop epoch
    child = subprocess.run(
        [sys.executable, "-c", KILLED_AND_RESUMED, str(tmp_path), json.dumps(kill_points)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"},
    )
    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout)
    assert [r["saved_epoch"] for r in report] == [0, 18, 27, 27]  # the last before k
    for r in report:
        assert r["killed"] and r["same_weights"] and r["same_reason"] and r["same_val_loss"], r
        assert r["epochs"] == list(range(r["saved_epoch"] + 1, STOP + 1)), r


def test_a_checkpoint_passed_among_the_callbacks_saves_after_the_others(tmp_path):
    """Listed before EarlyStopping, a ModelCheckpoint still saves its epoch's state."""
    path = tmp_path / "run.h5"
    model, opt, stopper = fresh()
    checkpoint = nb.callbacks.ModelCheckpoint(path, every=1)
    model.fit(X, Y, optimizer=opt, callbacks=[checkpoint, stopper], **{**FIT, "epochs": 20})
    with h5py.File(path, "r") as f:
        state = json.loads(f["callbacks/EarlyStopping"].attrs["state"])
    assert (state["best"], state["best_epoch"], state["wait"]) == (
        stopper.best,
        stopper.best_epoch,
        stopper.wait,
    )


class MyStop(nb.callbacks.EarlyStopping):
    """Saved under its own name, not "EarlyStopping"."""


def test_a_subclass_of_early_stopping_takes_only_whole_best_weights(tmp_path):
    """The file's reader asks for a whole copy by the key "EarlyStopping": a subclass's
    best weights with one array missing were taken, and put two epochs together."""
    path = tmp_path / "run.h5"
    model, opt, _ = fresh()
    model.fit(X, Y, optimizer=opt, callbacks=[MyStop(patience=4)], checkpoint=path, **FIT)
    with h5py.File(path, "r+") as f:
        del f["callbacks/MyStop/2.W"]
    model, opt, _ = fresh()
    with pytest.raises(nb.CheckpointError, match=r"best weights hold some .*not \['2.W'\]"):
        model.fit(X, Y, optimizer=opt, callbacks=[MyStop(patience=4)], checkpoint=path,
                  resume=True, **{**FIT, "epochs": FIT["epochs"] + 5})  # fmt: skip


def test_a_saved_state_that_makes_no_sense_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "run.h5"
    run(path, extra=[nb.callbacks.LambdaCallback(lambda e, logs, m: None)])
    with h5py.File(path, "r+") as f:
        f["training"].attrs["stopped"] = 0
        state = json.loads(f["callbacks/EarlyStopping"].attrs["state"])
        f["callbacks/EarlyStopping"].attrs["state"] = json.dumps({**state, "wait": -1})
    model, opt, stopper = fresh()
    before, state = host(model), model.rng.state
    with pytest.raises(nb.CheckpointError, match=r"run.h5: a callback's saved state .*wait"):
        model.fit(X, Y, optimizer=opt, callbacks=[stopper], checkpoint=path, resume=True, **FIT)
    # refused before the weights were read in: the model is as it was, its generator too
    assert same(host(model), before) and model.rng.state == state
    assert opt.iterations == 0 and not opt.state["m"]


def test_another_monitor_starts_afresh_with_a_warning(tmp_path):
    path = tmp_path / "run.h5"
    model, opt, _ = fresh()
    model.fit(
        X,
        Y,
        optimizer=opt,
        checkpoint=path,
        **{**FIT, "epochs": 6},
        callbacks=[nb.callbacks.EarlyStopping(monitor="val_accuracy")],
    )
    model, opt, stopper = fresh()
    with pytest.warns(RuntimeWarning, match="watched 'val_accuracy'.*starts afresh") as said:
        model.fit(
            X,
            Y,
            optimizer=opt,
            checkpoint=path,
            resume=True,
            callbacks=[stopper],
            **{**FIT, "epochs": 7},
        )
    assert stopper.best_epoch == 6  # only the epoch run here counted
    assert [w.filename for w in said] == [__file__]  # at this fit: not inside the library


def test_callback_state_round_trip():
    stopper = nb.callbacks.EarlyStopping(patience=3, mode="max", monitor="val_accuracy")
    stopper.best, stopper.best_epoch, stopper.wait, stopper.best_arrays = -0.75, 4, 2, None
    again = nb.callbacks.EarlyStopping(patience=3, mode="max", monitor="val_accuracy")
    again.set_state(json.loads(json.dumps(stopper.get_state())))
    assert (again.best, again.best_epoch, again.wait, again.best_arrays) == (-0.75, 4, 2, None)
    assert nb.callbacks.Callback().get_state() is None


def test_weights_gone_nan_after_the_loss_was_measured_are_not_saved(backend, tmp_path):
    """The logged loss is measured before each update, and other callbacks run before
    the checkpoint: the weights saved can be NaN while the epoch's loss is finite (an
    epoch's last update at too high a rate). That epoch is not saved: the good file
    stays, a warning says so, and resume goes on from it."""
    path = tmp_path / "run.h5"

    def spoil(epoch, logs, model):
        if epoch == 3:
            model.params["0.W"] = model.backend.xp.full_like(model.params["0.W"], float("nan"))

    model, opt, _ = fresh(backend)
    size = math.prod(model.params["0.W"].shape)  # every entry NaN
    with pytest.warns(RuntimeWarning, match=f"epoch 3 not saved: /weights/0.W holds {size} NaN"):
        model.fit(X, Y, loss="cross_entropy", optimizer=nb.optim.SGD(0.1), epochs=4,
                  batch_size=None, verbose=0, log_every=1, checkpoint=path,
                  callbacks=[nb.callbacks.LambdaCallback(spoil)])  # fmt: skip
    assert nb.load(path, with_optimizer=True)[2] == 2
    resumed, opt, _ = fresh(backend)
    history = resumed.fit(X, Y, loss="cross_entropy", optimizer=nb.optim.SGD(0.1), epochs=6,
                          batch_size=None, verbose=0, checkpoint=path, resume=True)  # fmt: skip
    assert history.epochs == [3, 4, 5]


def test_running_statistics_gone_nan_are_not_saved(backend, tmp_path):
    """BatchNorm's running variance is state, not a weight: NaN there alone (weights and
    loss finite) would make every prediction of the saved model NaN."""
    path = tmp_path / "run.h5"

    def spoil(epoch, logs, model):
        if epoch == 2:
            var = model.layers[1].state["running_var"]
            model.layers[1].state["running_var"] = model.backend.xp.full_like(var, float("nan"))

    layers = [Dense(2, 8), nb.layers.BatchNorm(8), Tanh(), Dense(8, 2)]
    model = nb.Sequential(layers, backend=backend, seed=0)
    with pytest.warns(
        RuntimeWarning, match="epoch 2 not saved: /state/1.running_var holds 8 NaN or infinite"
    ):
        model.fit(X, Y, loss="cross_entropy", optimizer=nb.optim.SGD(0.1), epochs=3,
                  batch_size=None, verbose=0, log_every=1, checkpoint=path,
                  callbacks=[nb.callbacks.LambdaCallback(spoil)])  # fmt: skip
    assert nb.load(path, with_optimizer=True)[2] == 1


def diverged_run(backend, path):
    """A fit at far too high a rate whose loss is NaN by its second epoch, which ends
    there (NaN loss and EarlyStopping at once): its weights are EarlyStopping's best,
    finite, its optimizer's velocities NaN."""
    X, Y = nb.datasets.make_moons(200, noise=0.2, seed=0)
    layers = [Dense(2, 64), "relu", Dense(64, 64), "relu", Dense(64, 2)]
    model = nb.Sequential(layers, backend=backend, seed=0)
    optimizer = nb.optim.Momentum(30.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(
            X, Y, loss="cross_entropy", optimizer=optimizer, epochs=20, verbose=0,
            validation_split=0.2, log_every=1, checkpoint=path,
            callbacks=[nb.callbacks.EarlyStopping(patience=1)],
        )  # fmt: skip
    said = [str(w.message) for w in caught]
    return model, optimizer, history, said


def test_an_optimizer_state_gone_nan_is_not_saved(backend, tmp_path):
    """EarlyStopping puts the best weights back after a NaN loss, but the optimizer's
    velocities stay NaN: that stopped save is refused (nb.load would refuse the file),
    and the last good checkpoint stays loadable."""
    path = tmp_path / "run.h5"
    model, optimizer, history, said = diverged_run(backend, path)
    last = len(history.epochs) - 1
    assert not math.isfinite(history["loss"][-1]) and last >= 1
    refused = [s for s in said if s.startswith(f"ModelCheckpoint: epoch {last} not saved")]
    assert refused and "/optimizer/v/0.W holds" in refused[0], said
    loaded, _, epoch = nb.load(path, with_optimizer=True)
    assert epoch == last - 1
    assert all(np.isfinite(nb.to_numpy(v)).all() for v in loaded.params.values())


def test_a_diverged_optimizer_is_refused_by_the_next_fit(backend, tmp_path):
    """The next fit with the same optimizer would turn the restored weights NaN at its
    first step: it is refused, the weights left alone; a new optimizer is taken."""
    model, optimizer, _, _ = diverged_run(backend, tmp_path / "run.h5")
    before = host(model)
    assert all(np.isfinite(w).all() for w in before.values())
    with pytest.raises(ValueError, match=r"state holds NaN or inf \(v\['0.W'\], .*new optimizer"):
        model.fit(X, Y, loss="cross_entropy", optimizer=optimizer, epochs=1, verbose=0)
    assert same(host(model), before)
    nb.save(model, tmp_path / "weights.h5", epoch=0)  # no optimizer's state to take up
    with pytest.raises(ValueError, match=r"state holds NaN or inf \(v\['0.W'\]"):
        model.fit(X, Y, loss="cross_entropy", optimizer=optimizer, epochs=2, verbose=0,
                  checkpoint=tmp_path / "weights.h5", resume=True)  # fmt: skip
    assert same(host(model), before)
    with warnings.catch_warnings():  # the run's own file replaces the state: taken
        warnings.simplefilter("ignore")  # (at its saved rate, 30, it diverges again)
        resumed = model.fit(X, Y, loss="cross_entropy", optimizer=optimizer, epochs=2,
                            verbose=0, checkpoint=tmp_path / "run.h5", resume=True)  # fmt: skip
    assert resumed.epochs == [1]
    with warnings.catch_warnings():  # its weights are huge: the loss may be NaN again
        warnings.simplefilter("ignore")
        history = model.fit(X, Y, loss="cross_entropy", optimizer=nb.optim.SGD(1e-9), verbose=0)
    assert history.epochs == [0]


def test_save_refuses_what_load_would_refuse_and_keeps_the_old_file(backend, tmp_path):
    """nb.save of a NaN weight or an infinite optimizer slot raises NotFiniteError
    naming the array, and writes nothing over the file already there."""
    path = tmp_path / "model.h5"
    model, optimizer, _ = fresh(backend)
    model.fit(X, Y, loss="cross_entropy", optimizer=optimizer, epochs=1, verbose=0)
    nb.save(model, path, optimizer=optimizer)
    good = path.read_bytes()
    optimizer.state["v"]["2.b"][1] = float("inf")
    with pytest.raises(nb.NotFiniteError, match=r"not saved .*/optimizer/v/2.b holds 1 NaN"):
        nb.save(model, path, optimizer=optimizer)
    nb.save(model, tmp_path / "weights only.h5")  # without the optimizer, nothing is wrong
    model.params["0.W"] = model.backend.xp.full_like(model.params["0.W"], float("nan"))
    with pytest.raises(nb.NotFiniteError, match=r"/weights/0.W holds 64 NaN"):
        nb.save(model, path)
    assert path.read_bytes() == good


def test_a_checkpoint_reads_the_loss_only_when_it_saves(backend, tmp_path, monkeypatch):
    saves = []
    monkeypatch.setattr(nb.callbacks.ModelCheckpoint, "_save", lambda *a, **k: saves.append(a))

    def transfers(**options):
        model, opt, _ = fresh(backend)
        with nb.count_host_transfers() as counted:
            model.fit(X, Y, loss="cross_entropy", optimizer=opt, epochs=40, batch_size=None,
                      verbose=0, log_every=10, **options)  # fmt: skip
        return counted.count

    assert transfers(checkpoint=tmp_path / "run.h5") == transfers()  # not one a epoch
    assert len(saves) == 5  # epochs 0, 10, 20, 30 and 39


def test_another_monitor_is_warned_of_once_a_distributed_job(monkeypatch):
    """Each rank of a distributed resume warned that EarlyStopping starts afresh."""
    from nnbackend.distributed import world

    saved = {"monitor": "val_accuracy", "mode": "max", "best": 0.5, "best_epoch": 1, "wait": 0}
    monkeypatch.setattr(nb.callbacks, "current", lambda: world.World(rank=1, size=2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nb.callbacks.EarlyStopping(monitor="loss").set_state(saved)  # rank 1: no warning
    monkeypatch.setattr(nb.callbacks, "current", lambda: world.World(rank=0, size=2))
    with pytest.warns(RuntimeWarning, match="starts afresh"):
        nb.callbacks.EarlyStopping(monitor="loss").set_state(saved)
