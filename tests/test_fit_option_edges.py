"""Edges of fit's options (fit_options.py), the History fit returns (history.py), the
pytest plugin (testing/pytest_plugin.py) and ``nnbackend info`` (__main__.py) that a
mutation run of those modules found no test holding: each test fails under a mutant
that the rest of the suite let pass (the comments name them)."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import nnbackend as nb
from nnbackend import __main__ as nb_main
from nnbackend.history import EpochLogs, History, to_floats
from nnbackend.layers import Dense
from nnbackend.testing import pytest_plugin

X = np.random.default_rng(0).normal(size=(12, 3))
Y = (X[:, 0] > 0).astype(np.int64)
FIT = dict(loss="cross_entropy", verbose=0)


def net(backend="numpy"):
    return nb.Sequential([Dense(3, 4), "tanh", Dense(4, 2)], backend=backend, seed=0)


# --- fit's options ------------------------------------------------------------------


def test_batch_size_none_trains_on_the_whole_set_a_step_an_epoch(backend):
    """batch_size=None is full-batch gradient descent: one step per epoch, 3 epochs 3."""
    # kills fit_options 2 (positive_int(None) for the full batch)
    optimizer = nb.optim.SGD(0.1)
    history = net(backend).fit(X, Y, optimizer=optimizer, epochs=3, batch_size=None, **FIT)
    assert optimizer.iterations == 3 and history.epochs == [0, 1, 2]


def test_callbacks_none_is_no_callbacks(backend):
    """callbacks=None, as callbacks=(): the fit runs every epoch."""
    history = net(backend).fit(X, Y, optimizer="sgd", epochs=2, callbacks=None, **FIT)
    assert history.epochs == [0, 1] and history.stop_reason is None


@pytest.mark.parametrize("callbacks", ["early_stopping", b"x"])
def test_a_string_for_callbacks_is_refused_as_a_whole(callbacks):
    """A name is not a list of callbacks: refused as it was given, not letter by letter."""
    model = net()
    before = model.copy_params()
    with pytest.raises(TypeError, match=f"callbacks is a list of callbacks, not {callbacks!r}"):
        model.fit(X, Y, optimizer="sgd", callbacks=callbacks, **FIT)
    for name, array in model.params.items():
        np.testing.assert_array_equal(array, before[name])


def test_a_checkpoint_in_no_folder_is_refused_by_the_options_name(tmp_path):
    """fit's own check names checkpoint=, the option given, not the ModelCheckpoint that
    fit makes of it (whose check says "ModelCheckpoint path=")."""
    # kills fit_options 29 and 30
    path = tmp_path / "no" / "run.h5"
    with pytest.raises(FileNotFoundError, match=r"^checkpoint='.*': its folder does not exist"):
        net().fit(X, Y, optimizer="sgd", checkpoint=path, **FIT)


def test_a_checkpoint_under_a_file_says_the_folder_is_a_file(tmp_path):
    """checkpoint="notes.txt/run.h5" where notes.txt is a file: its "folder" is a file,
    not missing (it said the folder does not exist)."""
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(FileNotFoundError, match=r"^checkpoint='.*': its folder is a file, not a"):
        net().fit(X, Y, optimizer="sgd", checkpoint=tmp_path / "notes.txt" / "run.h5", **FIT)


def test_callbacks_given_as_a_generator_or_an_iterator_all_run():
    """(c for c in [record]) and iter([record]) are as good as [record]: the callback
    sees every epoch (the check once used the generator up, and none ran)."""
    seen = []
    record = nb.callbacks.LambdaCallback(lambda epoch, logs, model: seen.append(epoch))
    for callbacks in ((c for c in [record]), iter([record])):
        seen.clear()
        net().fit(X, Y, optimizer="sgd", epochs=3, callbacks=callbacks, **FIT)
        assert seen == [0, 1, 2]


def test_a_callback_class_not_made_is_told_to_be_made():
    """[EarlyStopping] (the class) is refused with "make one"; an instance's wrong
    type (a function) without it."""
    fit = dict(X=X, y=Y, optimizer="sgd", **FIT)
    with pytest.raises(TypeError, match=r"holds EarlyStopping, a class: make one, EarlyStopping\("):
        net().fit(callbacks=[nb.callbacks.EarlyStopping], **fit)
    with pytest.raises(TypeError, match=r"callbacks holds <function .*>, which is no nnbackend"):
        net().fit(callbacks=[lambda epoch, logs, model: None], **fit)


def test_callbacks_with_only_fits_hooks_are_not_warned_of():
    """Only a hook fit never calls is warned of: EarlyStopping and a callback of one's own
    with on_epoch_end alone train without a warning."""
    # kills fit_options 69 (a warning, naming nothing, for every callback)

    class Record(nb.callbacks.Callback):
        def on_epoch_end(self, epoch, logs, model):
            pass

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        callbacks = [Record(), nb.callbacks.EarlyStopping("loss", patience=5)]
        history = net().fit(X, Y, optimizer="sgd", epochs=2, callbacks=callbacks, **FIT)
    assert history.epochs == [0, 1]


# --- the History fit returns ----------------------------------------------------------


def epoch_logs(backend, epoch, **metrics):
    """EpochLogs of ``metrics``: name -> ([(value, weight), ...], n)."""
    values = {
        name: ([(backend.asarray(value), weight) for value, weight in parts], n)
        for name, (parts, n) in metrics.items()
    }
    return EpochLogs(epoch, values, backend)


def test_an_epochs_value_is_its_weighted_sum_over_its_samples(backend):
    """loss (3*2 + 1*2) / 4 = 2, accuracy (0.5*3 + 1*1) / 4 = 0.625, and an epoch whose
    weights do not add up to n: 1*1 / 2 = 0.5 (the division is by n, not the weights)."""
    history = History(backend)
    history.append(epoch_logs(backend, 0, loss=([(3.0, 2), (1.0, 2)], 4),
                              accuracy=([(0.5, 3), (1.0, 1)], 4)))  # fmt: skip
    history.append(epoch_logs(backend, 1, loss=([(1.0, 1)], 2), accuracy=([(0.25, 4)], 4)))
    assert history.history == {"loss": [2.0, 0.5], "accuracy": [0.625, 0.25]}
    assert history["accuracy"] == [0.625, 0.25] and history.epochs == [0, 1]


def test_epochs_appended_after_a_read_join_the_columns_in_order(backend):
    """A read flushes the epochs so far; the next read brings only the new ones over, in
    one transfer, after the old, and the old are not counted twice."""
    history = History(backend)
    history.append(epoch_logs(backend, 3, loss=([(4.0, 1)], 1)))
    assert history["loss"] == [4.0]
    history.append(epoch_logs(backend, 4, loss=([(2.0, 1)], 1)))
    history.append(epoch_logs(backend, 5, loss=([(1.0, 2)], 1)))
    with nb.count_host_transfers() as transfers:
        assert history["loss"] == [4.0, 2.0, 2.0]
    assert transfers.count == 1
    with nb.count_host_transfers() as transfers:
        assert history.history == {"loss": [4.0, 2.0, 2.0]}
    assert transfers.count == 0  # nothing left on the device
    assert history.epochs == [3, 4, 5] and len(history) == 3


def test_a_history_of_no_epochs_is_empty_and_says_so(backend):
    """No epoch (a resumed fit with nothing left): no metric, 0 epochs, no transfer."""
    history = History(backend)
    with nb.count_host_transfers() as transfers:
        assert history.history == {} and history.epochs == [] and len(history) == 0
    assert transfers.count == 0
    assert "loss" not in history
    assert repr(history) == "History(0 epochs, metrics=[], stop_reason=None)"
    with pytest.raises(KeyError):
        history["loss"]


def test_a_historys_repr_counts_its_epochs_and_gives_the_stop_reason(backend):
    """One epoch, then two: "1 epoch", "2 epochs"; the metrics in the order recorded,
    the same before and after they came to the host."""
    history = History(backend)
    history.append(epoch_logs(backend, 0, loss=([(1.0, 1)], 1), mae=([(2.0, 1)], 1)))
    assert repr(history) == "History(1 epoch, metrics=['loss', 'mae'], stop_reason=None)"
    history.append(epoch_logs(backend, 1, loss=([(1.0, 1)], 1), mae=([(2.0, 1)], 1)))
    history.stop_reason = "early stop"
    assert repr(history) == "History(2 epochs, metrics=['loss', 'mae'], stop_reason='early stop')"
    history.flush()
    assert repr(history) == "History(2 epochs, metrics=['loss', 'mae'], stop_reason='early stop')"
    assert "mae" in history and "accuracy" not in history
    with pytest.raises(TypeError, match=r"its metrics are \['loss', 'mae'\]"):
        iter(history)


def test_epoch_logs_read_on_the_host_keep_their_names_and_values(backend):
    """Before a read: its names, its length, "(on device)"; after: the same names and
    length, the floats, and a repr that shows them."""
    logs = epoch_logs(backend, 7, loss=([(3.0, 1), (5.0, 1)], 4), accuracy=([(1.0, 2)], 2))
    assert sorted(logs) == ["accuracy", "loss"] and len(logs) == 2
    assert repr(logs) == "EpochLogs(epoch=7, (on device))"
    assert logs["loss"] == 2.0
    assert sorted(logs) == ["accuracy", "loss"] and len(logs) == 2
    assert dict(logs) == {"loss": 2.0, "accuracy": 1.0}
    assert repr(logs) == "EpochLogs(epoch=7, {'loss': 2.0, 'accuracy': 1.0})"


def test_logs_already_on_the_host_are_not_converted_again(backend):
    """to_floats over logs read before and logs not: one transfer, for the new ones."""
    old, new = (epoch_logs(backend, e, loss=([(float(e), 1)], 1)) for e in (1, 2))
    assert old["loss"] == 1.0
    with nb.count_host_transfers() as transfers:
        to_floats([old, new], backend)
    assert transfers.count == 1 and dict(old) == {"loss": 1.0} and dict(new) == {"loss": 2.0}
    with nb.count_host_transfers() as transfers:
        to_floats([old, new], backend)
    assert transfers.count == 0


# --- the pytest plugin ------------------------------------------------------------------


def importable(name):
    try:
        __import__(name)
    except ImportError:
        return False
    return True


PLUGIN_PROJECT = """
def test_doubles(backend):
    assert backend.to_numpy(backend.asarray([1.0, 2.0]) * 2).tolist() == [2.0, 4.0]
    assert backend.dtype_name == "float32"

def test_in_float64(backend64):
    assert backend64.dtype_name == "float64"
"""


def run_pytest(folder, *args):
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-rs", "-p", "no:cacheprovider", *args],
        cwd=folder, capture_output=True, text=True, timeout=300,
        env={**os.environ, "COLUMNS": "200"},  # skip reasons in full
    )  # fmt: skip
    return result.returncode, result.stdout + result.stderr


def test_the_plugin_runs_each_cpu_backend_here_and_skips_a_gpu_one_with_its_reason(tmp_path):
    """numpy and strict run, torch where it imports; cupy and torch:cuda are skipped,
    each with its own reason, where no GPU answers; -m "not gpu" leaves those two out."""
    # kills pytest_plugin 5, 8, 9, 10 here; 24 and 31 (a GPU backend always skipped) where
    # a GPU answers
    (tmp_path / "test_mine.py").write_text(PLUGIN_PROJECT)
    code, out = run_pytest(tmp_path)
    assert code == 0, out
    have_torch = importable("torch")
    for test in ("test_doubles", "test_in_float64"):
        assert f"{test}[numpy] PASSED" in out and f"{test}[strict] PASSED" in out
        assert (f"{test}[torch] PASSED" in out) == have_torch
    if not importable("cupy"):
        assert "test_doubles[cupy] SKIPPED (CuPy is not installed)" in out
    elif not nb.backend.cuda_available():
        assert "test_doubles[cupy] SKIPPED (no CUDA device answers (CuPy))" in out
    else:
        assert "test_doubles[cupy] PASSED" in out
    if not have_torch:
        assert "test_doubles[torch-cuda] SKIPPED (torch is not installed)" in out
    elif not nb.backend.torch_cuda_available():
        assert "test_doubles[torch-cuda] SKIPPED (torch sees no CUDA device)" in out
    else:
        assert "test_doubles[torch-cuda] PASSED" in out
    code, out = run_pytest(tmp_path, "-m", "not gpu")
    assert code == 0, out
    assert "cupy" not in out and "torch-cuda" not in out
    counted = "6 passed, 4 deselected" if have_torch else "4 passed, 2 skipped, 4 deselected"
    assert counted in out


def test_the_cpu_backend_lists_hold_no_gpu_backend():
    """The lists the tests that compare backends take: no GPU backend among them."""
    expected = ["numpy", "strict"] + ["torch"] * importable("torch")
    assert pytest_plugin.CPU_BACKEND_NAMES == expected
    assert [param.values[0] for param in pytest_plugin.CPU_BACKENDS] == ["numpy", "strict", "torch"]
    assert pytest_plugin.GPU_BACKEND_NAMES == ("cupy", "torch:cuda")


# --- nnbackend info ---------------------------------------------------------------------


ROWS = [
    {"backend": "numpy", "package": "numpy 9.9", "available": True, "dtype": "float32",
     "float64": True, "device": "cpu"},
    {"backend": "gpu", "package": "gpulib 1.0", "available": True, "dtype": "float32",
     "float64": False, "device": "card:0"},
    {"backend": "absent", "package": None, "available": False, "reason": "no module"},
    {"backend": "broken", "package": "broken 2.0", "available": False, "reason": "no driver"},
]  # fmt: skip


def table_of(out):
    return out.split("\n\n")[1].splitlines()


def test_info_lays_out_a_row_per_backend_available_or_not(monkeypatch):
    """The package or "not installed", "available" or "-", the dtype with "(no float64)"
    where it has none, the device or the reason it is unavailable, in fixed columns (a
    dtype past its column still two spaces from the device)."""
    # kills __main__ 7-17
    monkeypatch.setattr(nb_main, "describe_backends", lambda: ROWS)
    assert table_of(nb_main.info()) == [
        "backend     package           status     default dtype  device",
        "numpy       numpy 9.9         available  float32        cpu",
        "gpu         gpulib 1.0        available  float32 (no float64)  card:0",
        "absent      not installed     -          -              no module",
        "broken      broken 2.0        -          -              no driver",
    ]


def test_info_gives_the_blas_advice_only_where_there_is_some(monkeypatch):
    """An indented line of advice under the BLAS line; none where there is none."""
    # kills __main__ 23 and 24
    monkeypatch.setattr(nb_main, "blas_advice", lambda: "try another BLAS")
    footer = nb_main.info().split("\n\n")[2].splitlines()
    assert len(footer) == 3 and footer[2] == "  try another BLAS"
    monkeypatch.setattr(nb_main, "blas_advice", lambda: None)
    footer = nb_main.info().split("\n\n")[2].splitlines()
    assert len(footer) == 2 and footer[1].startswith("BLAS: ")


def test_info_says_why_the_chosen_backend_is_unavailable_and_lists_the_rest(monkeypatch):
    """A $NNBACKEND no backend answers to: info says so instead of failing."""
    # kills __main__ 0 and 1
    monkeypatch.setenv("NNBACKEND", "nosuch")
    out = nb_main.info()
    assert out.splitlines()[1].startswith("current backend: unavailable (")
    assert "nosuch" in out.splitlines()[1]
    assert out.splitlines()[2].startswith("'auto' takes: ")
    assert "unavailable" not in out.splitlines()[2]
    assert any(line.startswith("numpy ") and "available" in line for line in table_of(out))


@pytest.mark.parametrize("argv", [[], ["info"]])
def test_the_command_prints_info_and_returns_0(argv, capsys):
    """nnbackend and nnbackend info: the same report, exit status 0."""
    # kills __main__ 31-35
    assert nb_main.main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"nnbackend {nb.__version__}  (python ") and "\nBLAS: " in out


@pytest.mark.parametrize(("epochs", "logged"), [(10, 10), (39, 20), (40, 21), (301, 20)])
def test_a_fit_brings_its_metrics_over_about_20_times(backend, epochs, logged):
    """Logging every epochs // 20 epochs brought a 39-epoch fit's metrics over 39 times
    (each a wait for the GPU), where the guide says about 20 per fit."""
    model = net(backend)
    with nb.count_host_transfers() as transfers:
        history = model.fit(X, Y, optimizer="sgd", epochs=epochs, batch_size=None, **FIT)
    assert transfers.count == logged and len(history["loss"]) == epochs


def test_a_callback_that_stops_at_the_last_epoch_ends_nothing_early(backend):
    """History.stop_reason is None where every epoch ran: a stop asked at the last one
    was named as if it had ended the fit early."""
    stop = nb.callbacks.LambdaCallback(
        lambda epoch, logs, model: setattr(model, "stop_training", epoch >= 2)
    )
    history = net(backend).fit(X, Y, optimizer="sgd", epochs=3, callbacks=[stop], **FIT)
    assert len(history["loss"]) == 3 and history.stop_reason is None
    history = net(backend).fit(X, Y, optimizer="sgd", epochs=4, callbacks=[stop], **FIT)
    assert history.stop_reason == "LambdaCallback stopped the fit at epoch 2"


def test_early_stopping_on_a_metrics_other_name_is_told_its_own(backend):
    """metrics=["acc"] (or Keras's "sparse_categorical_accuracy") records "accuracy":
    monitoring "val_acc" was told to pass validation data the fit already had."""
    split = dict(optimizer="sgd", epochs=2, validation_split=0.25, metrics=["acc"], **FIT)
    for alias in ("val_acc", "val_sparse_categorical_accuracy"):
        stop = nb.callbacks.EarlyStopping(monitor=alias)
        with pytest.raises(
            ValueError, match=r"recorded by its own name, so monitor='val_accuracy'"
        ):
            net(backend).fit(X, Y, callbacks=[stop], **split)
    stop = nb.callbacks.EarlyStopping(monitor="val_loss")
    with pytest.raises(ValueError, match=r"for 'val_\*' pass validation_data or validation_split"):
        net(backend).fit(X, Y, optimizer="sgd", callbacks=[stop], **FIT)
    stop = nb.callbacks.EarlyStopping(monitor="val_f1")  # no such metric: no hint
    with pytest.raises(ValueError, match=r"records only \[.*'val_accuracy'\]$"):
        net(backend).fit(X, Y, callbacks=[stop], **split)
    stop = nb.callbacks.EarlyStopping(monitor="val_acc")  # both fixes, said at once
    unsplit = dict(optimizer="sgd", metrics=["acc"], **FIT)
    with pytest.raises(ValueError, match=r"validation_split, and monitor='val_accuracy'$"):
        net(backend).fit(X, Y, callbacks=[stop], **unsplit)


def test_a_stop_set_outside_the_callbacks_blames_none_of_them(backend, monkeypatch):
    """A Stop button's thread sets model.stop_training mid-epoch: the first callback to
    look, TerminateOnNaN, was named as having stopped the fit."""
    from nnbackend import training

    train_epoch = training.Trainer.train_epoch

    def stop_after_the_second(self, batches, progress):  # as the thread would, meanwhile
        metrics = train_epoch(self, batches, progress)
        self.model.stop_training = self.model.stop_training or len(epochs_run) == 1
        epochs_run.append(1)
        return metrics

    epochs_run = []
    monkeypatch.setattr(training.Trainer, "train_epoch", stop_after_the_second)
    history = net(backend).fit(X, Y, optimizer="sgd", epochs=5, **FIT)
    assert history.stop_reason == "model.stop_training was set at epoch 1"


@pytest.mark.parametrize(
    "optimizer, told",
    [("adam", "nb.optim.Adam"), (nb.optim.RMSProp(), "nb.optim.RMSProp"), ("nope", "nb.optim.SGD")],
)
def test_the_learning_rate_hint_keeps_the_optimizer_given(optimizer, told):
    """fit(optimizer="adam", lr=0.001) was told optimizer=nb.optim.SGD(lr=0.001): followed,
    the fit trained with another optimizer, far slower."""
    with pytest.raises(TypeError, match=rf"optimizer={told}\(lr=0.001\)$"):
        net().fit(X, Y, optimizer=optimizer, lr=0.001, **FIT)


def test_callbacks_given_a_callback_class_are_told_to_make_one():
    """A class in a list was told "make one, Name(...)"; a class alone was not."""
    with pytest.raises(TypeError, match=r"holds TerminateOnNaN, a class: make one, TerminateOnNaN"):
        net().fit(X, Y, optimizer="sgd", callbacks=nb.callbacks.TerminateOnNaN, **FIT)


@pytest.mark.parametrize(
    "optimizer, told",
    [(nb.optim.Adam, "nb.optim.Adam"), ({"type": "adam"}, "nb.optim.Adam"),
     ({"type": "adam", "lr": "0.1"}, "nb.optim.Adam")],
)  # fmt: skip
def test_the_learning_rate_hint_keeps_an_optimizer_class_or_config_given(optimizer, told):
    """A class, or a config dict that does not build, fell back to SGD."""
    with pytest.raises(TypeError, match=rf"optimizer={told}\(lr=0.01\)$"):
        net().fit(X, Y, optimizer=optimizer, lr=0.01, **FIT)


def test_the_learning_rate_hint_names_ones_own_optimizer_by_its_name(monkeypatch):
    from nnbackend import registry

    monkeypatch.setattr(registry.OPTIMIZERS, "_classes", dict(registry.OPTIMIZERS._classes))

    @nb.register
    class MySGD(nb.optim.SGD):
        pass

    with pytest.raises(TypeError, match=r"optimizer=MySGD\(lr=0.01\)$"):  # no nb.optim.MySGD
        net().fit(X, Y, optimizer=MySGD(0.1), lr=0.01, **FIT)
