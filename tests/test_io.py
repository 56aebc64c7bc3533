"""HDF5 checkpoints: exact round trips across backends, resuming bit for bit, and
failed saves or bad files that lose nothing and say what is wrong."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import warnings

import h5py
import numpy as np
import pytest

import nnbackend as nb
from nnbackend import io
from nnbackend.layers import Dense, Identity, Layer, ReLU, Tanh
from nnbackend.losses import SoftmaxCrossEntropy
from tests.conftest import CPU_BACKEND_NAMES

X, Y = nb.datasets.make_moons(120, noise=0.2, seed=3)
FIT = dict(loss=SoftmaxCrossEntropy(), batch_size=20, verbose=0)


def trained(backend="numpy", epochs=2):
    model = nb.Sequential([Dense(2, 8), ReLU(), Dense(8, 6), Tanh(), Dense(6, 2)],
                          backend=backend, seed=0)  # fmt: skip
    opt = nb.optim.Adam(0.01)
    model.fit(X, Y, optimizer=opt, epochs=epochs, **FIT)
    return model, opt


def host_params(model):
    return {k: nb.to_numpy(v).copy() for k, v in model.params.items()}


def assert_same_params(a: dict, b: dict):
    assert list(a) == list(b)
    for name in a:
        assert a[name].dtype == b[name].dtype
        assert a[name].tobytes() == b[name].tobytes(), name


# --- round trips ------------------------------------------------------------------


def test_round_trip_is_exact(backend, tmp_path):
    model, opt = trained(backend)
    nb.save(model, tmp_path / "m.h5", optimizer=opt, epoch=1)
    again, opt2, epoch = nb.load(tmp_path / "m.h5", backend=backend, with_optimizer=True)
    assert again.backend is backend and epoch == 1
    assert_same_params(host_params(model), host_params(again))
    np.testing.assert_array_equal(
        nb.to_numpy(model.predict_proba(X)), nb.to_numpy(again.predict_proba(X))
    )
    assert opt2.config() == opt.config() and opt2.iterations == opt.iterations == 12
    for slot in ("m", "v"):
        assert_same_params(
            {k: nb.to_numpy(v) for k, v in opt.state[slot].items()},
            {k: nb.to_numpy(v) for k, v in opt2.state[slot].items()},
        )
    assert again.loss.config() == model.loss.config()


@pytest.mark.parametrize("source", CPU_BACKEND_NAMES)
@pytest.mark.parametrize("target", CPU_BACKEND_NAMES)
def test_saved_on_one_backend_loads_on_another(source, target, tmp_path):
    model, _ = trained(source)
    nb.save(model, tmp_path / "m.h5")
    again = nb.load(tmp_path / "m.h5", backend=target)
    assert again.backend.name == target
    assert_same_params(host_params(model), host_params(again))
    back = nb.load(nb.save(again, tmp_path / "back.h5"), backend=source)
    assert_same_params(host_params(model), host_params(back))


@pytest.mark.parametrize("target", CPU_BACKEND_NAMES)
def test_float64_models_stay_float64(backend64, target, tmp_path):
    model, _ = trained(backend64)
    nb.save(model, tmp_path / "m.h5")
    again = nb.load(tmp_path / "m.h5", backend=target)  # the name alone: float32 by default
    assert again.backend.dtype_name == "float64"
    assert_same_params(host_params(model), host_params(again))


def test_a_backend_that_cannot_take_the_file_is_not_called_damage(tmp_path):
    """An unknown backend, and float64 weights for a device without float64, were
    "cannot read it, it is damaged"; the advice then (dtype=) was no argument of load."""
    model, _ = trained(nb.get_backend("numpy", dtype="float64"))
    nb.save(model, tmp_path / "m.h5")
    with pytest.raises(ValueError, match="unknown backend 'numpyy': choose one of"):
        nb.load(tmp_path / "m.h5", backend="numpyy")
    said = r"m.h5 holds float64 weights: .*no float64.*backend=nb.get_backend\('strict:no_float64'"
    with pytest.raises(nb.CheckpointError, match=said) as refused:
        nb.load(tmp_path / "m.h5", backend="strict:no_float64")
    assert "damaged" not in str(refused.value)
    converted = nb.load(tmp_path / "m.h5", backend=nb.get_backend("strict:no_float64"))
    assert converted.backend.dtype_name == "float32"


class RowCounter(Layer):
    """Passes its input on and counts the rows it trained on, in an int64 state entry
    (declared in integer_state, so a checkpoint keeps it an integer)."""

    integer_state = frozenset({"rows"})

    def build(self, backend, rng):
        super().build(backend, rng)
        self.state["rows"] = backend.xp.zeros((), dtype=backend.xp.int64, device=backend.device)

    def state_shapes(self):
        return {"rows": ()}

    def forward(self, x, training=True):
        if training:
            self.state["rows"] = self.state["rows"] + x.shape[0]
        return x

    def backward(self, dy, input_grad=True):
        return dy


def test_integer_state_loads_as_an_exact_integer(backend, tmp_path):
    model = nb.Sequential([Dense(2, 4), RowCounter(), Tanh(), Dense(4, 2)],
                          backend=backend, seed=0)  # fmt: skip
    model.fit(X, Y, optimizer=nb.optim.SGD(0.1), epochs=2, **FIT)
    assert int(backend.to_numpy(model.state["1.rows"])) == 240  # 2 epochs of 120 rows
    big = 2**53 + 1  # no float holds it: float32 or float64 would round it to 2**53
    model.layers[1].state["rows"] = backend.asarray(np.asarray(big, dtype=np.int64))
    nb.save(model, tmp_path / "m.h5")
    again = nb.load(tmp_path / "m.h5", backend=backend, custom_objects={"RowCounter": RowCounter})
    rows = again.state["1.rows"]
    assert backend.owns(rows) and rows.dtype == backend.xp.int64
    assert int(backend.to_numpy(rows)) == big
    assert_same_params(host_params(model), host_params(again))


def test_integer_state_in_early_stopping_s_best_weights_resumes(backend, tmp_path, monkeypatch):
    """EarlyStopping keeps the running state beside the weights: a counter's integers
    there were read as floats and the checkpoint fit wrote refused to load."""
    monkeypatch.setattr(nb.registry.LAYERS, "_classes", dict(nb.registry.LAYERS._classes))
    nb.register(RowCounter)  # resume builds the saved architecture to compare
    path = tmp_path / "run.h5"

    def run(epochs, **options):
        model = nb.Sequential([Dense(2, 4), RowCounter(), Tanh(), Dense(4, 2)],
                              backend=backend, seed=0)  # fmt: skip
        stopper = nb.callbacks.EarlyStopping(patience=5)
        model.fit(X, Y, optimizer=nb.optim.SGD(0.1), epochs=epochs, validation_split=0.25,
                  callbacks=[stopper], checkpoint=path, **{**FIT, **options})  # fmt: skip
        return stopper

    run(2)
    loaded = nb.load(path, backend=backend)
    assert int(backend.to_numpy(loaded.state["1.rows"])) == 180  # 2 epochs of 90 rows
    kept = run(4, resume=True).best_arrays["1.rows"]  # the best epoch's count, resumed
    assert kept.dtype == backend.xp.int64 and int(backend.to_numpy(kept)) % 90 == 0


def test_early_stopping_s_best_weights_load_whole_or_not_at_all(tmp_path):
    """A file holding some of the best weights would have put back a mix of two epochs
    at the end of a resumed fit."""
    path = tmp_path / "run.h5"
    model = nb.Sequential([Dense(2, 4), Tanh(), Dense(4, 2)], seed=0)
    stopper = nb.callbacks.EarlyStopping(patience=5)
    model.fit(X, Y, optimizer=nb.optim.SGD(0.1), epochs=2, validation_split=0.25,
              callbacks=[stopper], checkpoint=path, **FIT)  # fmt: skip
    nb.load(path)  # whole, it loads
    with h5py.File(path, "r+") as f:
        del f["callbacks/EarlyStopping/2.W"]
    with pytest.raises(nb.CheckpointError, match=r"some of the model's arrays, not all: '2.W'"):
        nb.load(path)


class KeepLastLayer(nb.callbacks.Callback):
    """A callback of the user's own that keeps some weights (the last layer's)."""

    def on_train_begin(self, model, fit):
        self.kept = None

    def on_epoch_end(self, epoch, logs, model):
        self.kept = {"2.W": model.backend.to_numpy(model.params["2.W"]).copy()}

    def get_state(self):
        return {"arrays": self.kept}

    def set_state(self, state):
        self.kept = {k: nb.to_numpy(v) for k, v in state["arrays"].items()}


def test_a_callback_s_own_arrays_may_be_some_of_the_weights(tmp_path):
    """Only EarlyStopping's are a whole copy: a checkpoint with this callback's last
    layer was refused by nb.load and resume alike."""
    path = tmp_path / "run.h5"
    model = nb.Sequential([Dense(2, 4), Tanh(), Dense(4, 2)], seed=0)
    model.fit(X, Y, optimizer=nb.optim.SGD(0.1), epochs=2, callbacks=[KeepLastLayer()],
              checkpoint=path, **FIT)  # fmt: skip
    assert nb.load(path).count_params() == model.count_params()
    resumed = KeepLastLayer()
    model.fit(X, Y, optimizer=nb.optim.SGD(0.1), epochs=2, callbacks=[resumed],
              checkpoint=path, resume=True, **FIT)  # fmt: skip
    np.testing.assert_array_equal(resumed.kept["2.W"], nb.to_numpy(model.params["2.W"]))


def test_readable_with_plain_h5py(tmp_path):
    model, opt = trained()
    nb.save(model, tmp_path / "m.h5", optimizer=opt, epoch=7)
    with h5py.File(tmp_path / "m.h5", "r") as f:
        assert json.loads(f.attrs["architecture"]) == model.config()
        assert f.attrs["format_version"] == io.FORMAT_VERSION
        np.testing.assert_array_equal(f["weights/0.W"][()], model.params["0.W"])
        assert f["optimizer"].attrs["iterations"] == 12 and "4.W" in f["optimizer/m"]
        assert f["training"].attrs["epoch"] == 7


# --- resuming ---------------------------------------------------------------------

RESUME_IN_A_FRESH_PROCESS = textwrap.dedent(
    """
    import sys, numpy as np, nnbackend as nb
    from tests.test_io import X, Y, FIT
    model, opt, epoch = nb.load(sys.argv[1], with_optimizer=True)
    assert epoch == 1
    model.fit(X, Y, optimizer=opt, epochs=2, **FIT)
    np.savez(sys.argv[2], **{k: nb.to_numpy(v) for k, v in model.params.items()})
    """
)


def test_resume_in_a_fresh_process_is_bit_for_bit(tmp_path):
    straight, _ = trained(epochs=4)
    half, opt = trained(epochs=2)
    nb.save(half, tmp_path / "ckpt.h5", optimizer=opt, epoch=1)
    subprocess.run(
        [sys.executable, "-c", RESUME_IN_A_FRESH_PROCESS, tmp_path / "ckpt.h5", tmp_path / "w.npz"],
        check=True, cwd=os.path.dirname(os.path.dirname(__file__)),
    )  # fmt: skip
    resumed = dict(np.load(tmp_path / "w.npz"))
    assert_same_params(host_params(straight), resumed)


def test_fit_resumes_from_its_checkpoint(backend, tmp_path):
    path = tmp_path / "run.h5"
    straight, _ = trained(backend, epochs=4)

    def fresh():
        model = nb.Sequential([Dense(2, 8), ReLU(), Dense(8, 6), Tanh(), Dense(6, 2)],
                              backend=backend, seed=0)  # fmt: skip
        return model, nb.optim.Adam(0.01)

    model, opt = fresh()
    model.fit(X, Y, optimizer=opt, epochs=2, checkpoint=path, **FIT)  # "crashes" after 2
    model, opt = fresh()
    history = model.fit(X, Y, optimizer=opt, epochs=4, checkpoint=path, resume=True, **FIT)
    assert history.epochs == [2, 3]
    assert_same_params(host_params(straight), host_params(model))
    assert nb.load(path, with_optimizer=True)[2] == 3


def test_resume_without_a_checkpoint_yet_starts_at_zero(tmp_path):
    model, opt = trained(epochs=0)
    history = model.fit(X, Y, optimizer=opt, epochs=2, checkpoint=tmp_path / "new.h5",
                        resume=True, **FIT)  # fmt: skip
    assert history.epochs == [0, 1] and (tmp_path / "new.h5").exists()


def test_resume_with_another_optimizer_names_the_one_saved(tmp_path):
    path = tmp_path / "run.h5"
    model, opt = trained()
    nb.save(model, path, optimizer=opt, epoch=1)
    model.fit(X, Y, optimizer=opt, epochs=1, **FIT)
    before = host_params(model)
    with pytest.raises(
        io.CheckpointError, match=r"Adam\(lr=0.01.*restore or resume with an Adam, or train anew"
    ):
        model.fit(X, Y, optimizer=nb.optim.Momentum(0.1), epochs=3, checkpoint=path,
                  resume=True, **FIT)  # fmt: skip
    assert_same_params(before, host_params(model))


class LowerTheRate(nb.callbacks.Callback):
    """Lowers the learning rate after epoch 1: a setting the checkpoint holds, in no
    callback's state."""

    def on_epoch_end(self, epoch, logs, model):
        if epoch == 1:
            model.optimizer.lr = 0.001
            model.optimizer.beta1 = 0.5


def test_resume_goes_on_at_the_rate_a_callback_set(backend, tmp_path):
    """Resuming took the step count and the slots from the file, and the rate (set
    by a callback after epoch 1) from the optimizer fit was given."""
    path = tmp_path / "run.h5"

    def fresh():
        model = nb.Sequential([Dense(2, 8), ReLU(), Dense(8, 2)], backend=backend, seed=0)
        return model, nb.optim.Adam(0.05)

    straight, opt = fresh()
    straight.fit(X, Y, optimizer=opt, epochs=4, callbacks=[LowerTheRate()], **FIT)
    model, _ = fresh()
    model.fit(X, Y, optimizer=nb.optim.Adam(0.05), epochs=3, checkpoint=path, log_every=1,
              callbacks=[LowerTheRate()], **FIT)  # fmt: skip  # "crashes" after epoch 2
    model, resumed = fresh()
    model.fit(X, Y, optimizer=resumed, epochs=4, checkpoint=path, resume=True,
              callbacks=[LowerTheRate()], **FIT)  # fmt: skip
    assert (resumed.lr, resumed.beta1) == (0.001, 0.5)
    assert_same_params(host_params(straight), host_params(model))


class ScaledSGD(nb.optim.SGD):
    """A setting kept behind a property, and one under another name: resuming takes
    the rate and leaves these as the constructor made them."""

    def __init__(self, lr=0.01, scale=1.0):
        super().__init__(lr)
        self._scale, self.factor = scale, scale

    @property
    def scale(self):
        return self._scale

    def update(self, params, name, grad, lr):
        params[name] -= self.factor * lr * grad

    def _hyper(self):
        return {"scale": self._scale}


def test_resume_of_an_optimizer_of_one_s_own_keeps_its_settings(tmp_path):
    """Resuming set every setting by name: a property's raised AttributeError after the
    weights had been put back."""
    path = tmp_path / "run.h5"
    model, _ = trained(epochs=0)
    fit = dict(epochs=2, checkpoint=path, **FIT)
    model.fit(X, Y, optimizer=ScaledSGD(0.1, scale=0.5), **fit)
    resumed = ScaledSGD(0.2, scale=0.5)
    model.fit(X, Y, optimizer=resumed, resume=True, **{**fit, "epochs": 3})
    assert (resumed.lr, resumed.scale, resumed.factor) == (0.1, 0.5, 0.5)


class Scale(Layer):
    """A layer of one's own whose weight and running mean are not declared (no
    param_shapes, no state_shapes): a checkpoint of it could not be read back."""

    def __init__(self, n: int, declare: bool = False):
        super().__init__()
        self.n, self.declare = n, declare

    def build(self, backend, rng):
        super().build(backend, rng)
        self.params["s"] = backend.xp.ones((self.n,), dtype=backend.dtype)
        self.state["mean"] = backend.xp.zeros((self.n,), dtype=backend.dtype)

    def param_shapes(self):
        return {"s": (self.n,)} if self.declare else {}

    def state_shapes(self):
        return {"mean": (self.n,)} if self.declare else {}

    def forward(self, x, training=True):
        self._x = x
        return x * self.params["s"]

    def backward(self, dy, input_grad=True):
        self.grads["s"] = nb.backend.namespace_of(dy).sum(dy * self._x, axis=0)
        return dy * self.params["s"]

    def config(self):
        return {**super().config(), "n": self.n, "declare": self.declare}


def test_a_layer_that_does_not_declare_its_arrays_is_refused_before_a_save(tmp_path):
    """fit(checkpoint=) wrote at every log a file no load could read ("the weights
    saved do not match the architecture's"), and named param_shapes for state too."""
    path = tmp_path / "run.h5"
    model = nb.Sequential([Dense(2, 4), Scale(4), Dense(4, 2)], seed=0)
    with pytest.raises(ValueError, match=r"layer 1 \(Scale\) holds weights 's' .*param_shapes"):
        model.fit(X, Y, optimizer="sgd", epochs=1, checkpoint=path, **FIT)
    model.layers[1].declare = "params only"  # declares the weight, not the state
    model.layers[1].state_shapes = lambda: {}
    with pytest.raises(ValueError, match=r"\(Scale\) holds running state 'mean' .*state_shapes"):
        nb.save(model, path)
    assert not path.exists()
    declared = nb.Sequential([Dense(2, 4), Scale(4, declare=True), Dense(4, 2)], seed=0)
    declared.fit(X, Y, optimizer="sgd", epochs=1, checkpoint=path, **FIT)
    again = nb.load(path, custom_objects={"Scale": Scale})
    np.testing.assert_array_equal(again.predict(X), declared.predict(X))


class Quarter(nb.init.Initializer):
    """An initialiser of one's own: saved by its ``name``, not its class's."""

    name = "quarter"

    def std(self, fan_in, fan_out):
        return 0.25


def test_an_initialiser_of_ones_own_loads_by_its_class_as_custom_objects_says(tmp_path):
    """It was told custom_objects={'quarter': quarter}, no such thing, and the form the
    docs give, {'Quarter': Quarter}, was refused the same."""
    model = nb.Sequential([Dense(2, 3, init=Quarter())], seed=0)
    nb.save(model, tmp_path / "m.h5")
    with pytest.raises(nb.CheckpointError) as refused:
        nb.load(tmp_path / "m.h5")
    told = "custom_objects={'Yours': Yours} to nb.load or nb.restore (Yours.name == 'quarter')"
    assert told in str(refused.value)
    again = nb.load(tmp_path / "m.h5", custom_objects={"Quarter": Quarter})
    assert isinstance(again.layers[0].init, Quarter)
    np.testing.assert_array_equal(
        nb.to_numpy(again.params["0.W"]), nb.to_numpy(model.params["0.W"])
    )


class Warmup(nb.optim.Schedule):
    """A schedule of one's own that keeps a number worked out from its arguments."""

    def __init__(self, lr: float, steps: int):
        self.lr, self.steps = lr, steps
        self.slope = lr / steps  # not an argument: config() left it in, load refused it

    def __call__(self, step):
        return min(self.lr, self.slope * (step + 1))


class Halved(Layer):
    """A layer of one's own whose config() leaves out its constructor's argument."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x, training=True):
        return x * self.factor

    def backward(self, dy, input_grad=True):
        return dy * self.factor


def test_a_schedule_saves_its_arguments_and_not_what_it_works_out(tmp_path):
    """Its config() was every attribute: the file was written, and the load (or a
    resume) refused it ("unexpected keyword argument 'slope'")."""
    path, schedule = tmp_path / "run.h5", Warmup(0.2, 4)
    assert schedule.config() == {"type": "Warmup", "lr": 0.2, "steps": 4}
    model = nb.Sequential([Dense(2, 4), Tanh(), Dense(4, 2)], seed=0)
    model.fit(X, Y, optimizer=nb.optim.SGD(schedule), epochs=2, checkpoint=path, **FIT)
    _, optimizer, _ = nb.load(path, with_optimizer=True, custom_objects={"Warmup": Warmup})
    assert (optimizer.lr.lr, optimizer.lr.steps, optimizer.lr.slope) == (0.2, 4, 0.05)


class HeldWarmup(Warmup):
    """A subclass that passes its base's arguments on through **kwargs."""

    def __init__(self, hold: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.hold = hold


def test_a_schedule_that_passes_kwargs_on_saves_its_bases_arguments_too(tmp_path):
    """Its config() was the arguments its own signature names: "kwargs", not lr and
    steps, which came back as the defaults (or a refusal where they had none)."""
    schedule = HeldWarmup(hold=2, lr=0.5, steps=5)
    assert schedule.config() == {"type": "HeldWarmup", "lr": 0.5, "steps": 5, "hold": 2}
    model = nb.Sequential([Dense(2, 2)], seed=0)
    model.fit(X, Y, optimizer=nb.optim.SGD(schedule), epochs=1, checkpoint=tmp_path / "r.h5",
              **FIT)  # fmt: skip
    _, again, _ = nb.load(tmp_path / "r.h5", with_optimizer=True,
                          custom_objects={"HeldWarmup": HeldWarmup})  # fmt: skip
    assert again.lr.config() == schedule.config()


class BuiltFlag(Layer):
    """A Keras-style layer: a public flag its build sets, which is no argument."""

    def __init__(self, k: float = 1.0):
        super().__init__()
        self.k, self.built = k, False

    def build(self, backend, rng):
        super().build(backend, rng)
        self.built = True

    def forward(self, x, training=True):
        return self.k * x

    def backward(self, dy, input_grad=True):
        return self.k * dy

    def config(self):
        return {**super().config(), "k": self.k}


def test_an_attribute_that_is_no_argument_is_not_warned_of(tmp_path):
    """The warning compared every public attribute: built (True, False after a load)
    was named as a setting config() leaves out, and adding it made the save refuse."""
    model = nb.Sequential([Dense(2, 2), BuiltFlag(3.0)], seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nb.save(model, tmp_path / "m.h5")
    assert nb.load(tmp_path / "m.h5", custom_objects={"BuiltFlag": BuiltFlag}).layers[1].k == 3.0


def test_a_save_pads_no_chunk(tmp_path):
    """263 rows of 4000 bytes went into chunks of 262 rows: HDF5 stores the last
    chunk whole, and the file was twice the weights' size (2.1 MB for 1.06)."""
    nb.save(nb.Sequential([Dense(263, 1000)], seed=0), tmp_path / "m.h5")
    assert (tmp_path / "m.h5").stat().st_size < 4 * (263 * 1000 + 1000) + 16_000


def test_what_its_config_cannot_build_again_is_refused_before_any_save(tmp_path):
    """A layer whose config() leaves out an argument was saved, and the file refused at
    the load: now fit refuses it at its start, ModelCheckpoint too, and nb.save."""
    path = tmp_path / "run.h5"
    model = nb.Sequential([Dense(2, 2), Halved(0.5)], seed=0)
    before = host_params(model)
    refused = r"the model cannot be saved \(nothing was written\): .*Halved.*'factor'"
    with pytest.raises(ValueError, match=refused):
        model.fit(X, Y, optimizer="sgd", epochs=1, checkpoint=path, **FIT)
    assert_same_params(host_params(model), before)  # refused before the first step
    with pytest.raises(ValueError, match=refused):
        checkpoint = nb.callbacks.ModelCheckpoint(path)
        model.fit(X, Y, optimizer="sgd", epochs=1, callbacks=[checkpoint], **FIT)
    with pytest.raises(ValueError, match=refused):
        nb.save(model, path)
    assert not path.exists()
    renamed = nb.optim.SGD(nb.optim.StepDecay(0.1, 5))
    renamed.lr.step_size = "five"  # a config the constructor refuses
    with pytest.raises(ValueError, match=r"the optimizer cannot be saved .*step_size"):
        nb.save(nb.Sequential([Dense(2, 2)], seed=0), path, optimizer=renamed)


@pytest.mark.parametrize(
    "states", [{"early-stop": {"best": 0.5}}, {f"Stop.{i}": {} for i in range(65)}, {1: {}}]
)
def test_callback_states_a_load_would_refuse_are_refused_at_the_save(tmp_path, states):
    """A key that is no class name, or 65 callbacks: nb.save wrote, over a good
    checkpoint, a file every load refused ("at most 64 callbacks are saved")."""
    model = nb.Sequential([Dense(2, 4)], seed=0)
    path = nb.save(model, tmp_path / "ck.h5")
    before = path.read_bytes()
    with pytest.raises(ValueError, match="saved under their class names .* 64 at most"):
        nb.save(model, path, callbacks=states)
    assert path.read_bytes() == before


class Smoothed(SoftmaxCrossEntropy):
    def __init__(self, smoothing=0.1):  # kept under another name: config() cannot say it
        super().__init__()
        self.eps = smoothing


@pytest.mark.parametrize("backend", CPU_BACKEND_NAMES)
def test_modelcheckpoint_refuses_a_loss_it_cannot_save_before_the_first_step(tmp_path, backend):
    """fit(checkpoint=) refused such a loss at its start, but ModelCheckpoint was never
    given the loss: the first epoch trained, and the fit failed at its first save."""
    path = tmp_path / "run.h5"
    model = nb.Sequential([Dense(2, 2)], seed=0, backend=backend)
    before = host_params(model)
    with pytest.raises(ValueError, match=r"the loss cannot be saved \(nothing was written\)"):
        model.fit(X, Y, loss=Smoothed(), optimizer="sgd", epochs=2, batch_size=20, verbose=0,
                  callbacks=[nb.callbacks.ModelCheckpoint(path)])  # fmt: skip
    assert_same_params(host_params(model), before)
    assert not path.exists()


@pytest.mark.parametrize(
    ("base", "args"),
    [(Dense, (4, 2)), (nb.layers.Conv2D, (1, 2, 1)), (nb.layers.BatchNorm, (1,)),
     (nb.layers.Dropout, (0.1,)), (nb.layers.LeakyReLU, (0.2,))],
)  # fmt: skip
def test_a_subclass_of_a_built_in_layer_loads_as_itself(tmp_path, base, args):
    """Dense, Conv2D, BatchNorm, Dropout and LeakyReLU wrote their own class name into
    config(): a subclass of one was saved, and loaded, as the base class (its forward of
    its own gone, without a word)."""
    subclass = type(f"My{base.__name__}", (base,), {})
    shape = (4,) if base is Dense else (1, 2, 2)
    model = nb.Sequential([subclass(*args)], input_shape=shape, seed=0)
    assert model.config()["layers"][0]["type"] == subclass.__name__
    nb.save(model, tmp_path / "m.h5")
    again = nb.load(tmp_path / "m.h5", custom_objects={subclass.__name__: subclass})
    assert type(again.layers[0]) is subclass


class NamesItsBase(Tanh):
    def config(self):
        return {"type": "Tanh"}


def test_a_config_that_names_another_class_is_refused_before_a_save(tmp_path):
    model = nb.Sequential([Dense(2, 2), NamesItsBase()], seed=0)
    with pytest.raises(ValueError, match=r"would load NamesItsBase as Tanh: its config\(\)"):
        nb.save(model, tmp_path / "m.h5")
    assert not (tmp_path / "m.h5").exists()


def _scale_class():
    class Scale(Layer):
        def __init__(self, k: float = 2.0):
            super().__init__()
            self.k = k

        def forward(self, x, training=False):
            return x * self.k

        def backward(self, grad):
            return grad * self.k

        def config(self):
            return {**super().config(), "k": self.k}

    return Scale


def test_two_classes_of_one_name_are_told_apart_before_a_save(tmp_path, monkeypatch):
    """Two layers named Scale (a notebook cell run twice, a function making them) were
    told to write the type as super().config() does, which they did."""
    first, second = _scale_class(), _scale_class()
    model = nb.Sequential([Dense(2, 2), first(), second(k=3.0)], seed=0)
    told = r"two classes are named 'Scale' \(made at test_io\.py, line \d+\), and a file names"
    with pytest.raises(ValueError, match=told):
        nb.save(model, tmp_path / "m.h5")
    monkeypatch.setattr(nb.registry.LAYERS, "_classes", dict(nb.registry.LAYERS._classes))
    nb.register(name="ScaleByThree")(second)  # as told
    nb.save(model, tmp_path / "m.h5")
    again = nb.load(tmp_path / "m.h5", custom_objects={"Scale": first})
    assert [type(layer) for layer in again.layers[1:]] == [first, second]
    assert again.layers[2].k == 3.0


class Tripled(Layer):
    """A layer whose config() leaves out an argument that has a default."""

    def __init__(self, k: float = 1.0):
        super().__init__()
        self.k = k

    def forward(self, x, training=True):
        return self.k * x

    def backward(self, dy, input_grad=True):
        return self.k * dy


def test_a_setting_config_leaves_out_is_warned_of_once(tmp_path):
    """Tripled(3.0) was saved, and loaded as Tripled(1.0), without a word."""
    model = nb.Sequential([Dense(2, 2), Tripled(3.0)], seed=0)
    with pytest.warns(UserWarning, match=r"Tripled's config\(\) leaves out .*\(k: 3.0 -> 1.0\)"):
        nb.save(model, tmp_path / "m.h5")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once: not again at each of a fit's saves
        model.fit(X, Y, optimizer="adam", epochs=3, log_every=1, checkpoint=tmp_path / "r.h5",
                  **FIT)  # fmt: skip
        again = nb.Sequential([Dense(2, 4), nb.layers.BatchNorm(4), Tanh(), Dense(4, 2)], seed=0)
        adam = nb.optim.Adam(nb.optim.StepDecay(0.1, 2))  # its step count changes: no setting
        again.fit(X, Y, optimizer=adam, epochs=3, log_every=1, checkpoint=tmp_path / "b.h5", **FIT)


class DecayedSGD(nb.optim.SGD):
    """An optimizer whose config() (its _hyper()) leaves out weight_decay."""

    def __init__(self, lr=0.1, weight_decay: float = 0.01):
        super().__init__(lr)
        self.weight_decay = weight_decay


def test_an_optimizer_setting_config_leaves_out_is_warned_of(tmp_path):
    """Its step count changes at every step and is saved apart: only its constructor's
    arguments are compared, and weight_decay would have come back as 0.01."""
    model = nb.Sequential([Dense(2, 2)], seed=0)
    with pytest.warns(
        UserWarning, match=r"DecayedSGD's config\(\) .*\(weight_decay: 0.5 -> 0.01\)"
    ):
        nb.save(model, tmp_path / "m.h5", optimizer=DecayedSGD(0.1, 0.5))


def test_a_callback_state_that_is_not_json_is_named(tmp_path):
    """A NumPy scalar in get_state() ended fit with json's bare "Object of type float32
    is not JSON serializable", after the first epoch."""

    class Best(nb.callbacks.Callback):
        def on_epoch_end(self, epoch, logs, model):
            self.best = np.float32(logs["loss"])

        def get_state(self):
            return {"best": getattr(self, "best", None)}

        def set_state(self, state):
            self.best = state["best"]

    model = nb.Sequential([Dense(2, 2)], seed=0)
    with pytest.raises(
        TypeError,
        match=r"callback 'Best' cannot be saved: its get_state\(\) sets state\['best'\] to np",
    ):
        model.fit(X, Y, optimizer="sgd", epochs=2, checkpoint=tmp_path / "r.h5",
                  callbacks=[Best()], **FIT)  # fmt: skip


# --- saves that fail lose nothing -------------------------------------------------


def test_error_mid_save_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "m.h5"
    old, opt = trained()
    nb.save(old, path, optimizer=opt)
    before = path.read_bytes()
    newer, newer_opt = trained(epochs=3)
    writes = []

    def failing_write(group, arrays):
        writes.append(group.name)
        if len(writes) == 2:
            raise OSError("disk full")
        real_write(group, arrays)

    real_write = io._write_arrays
    monkeypatch.setattr(io, "_write_arrays", failing_write)
    with pytest.raises(OSError, match="disk full"):
        nb.save(newer, path, optimizer=newer_opt)
    assert path.read_bytes() == before
    assert_same_params(host_params(old), host_params(nb.load(path)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.h5"]  # no partial file left


KILLED_WHILE_SAVING = textwrap.dedent(
    """
    import os, signal, sys, nnbackend as nb
    from nnbackend import io
    from tests.test_io import trained
    model, opt = trained(epochs=3)
    real_write = io._write_arrays
    def write_then_die(group, arrays):
        real_write(group, arrays)
        os.kill(os.getpid(), signal.SIGKILL)   # the power goes out mid-file
    io._write_arrays = write_then_die
    nb.save(model, sys.argv[1], optimizer=opt)
    """
)


def test_process_killed_mid_save_leaves_the_old_checkpoint(tmp_path):
    path = tmp_path / "m.h5"
    old, opt = trained()
    nb.save(old, path, optimizer=opt)
    before = path.read_bytes()
    child = subprocess.run([sys.executable, "-c", KILLED_WHILE_SAVING, path],
                           cwd=os.path.dirname(os.path.dirname(__file__)))  # fmt: skip
    assert child.returncode == -signal.SIGKILL
    assert path.read_bytes() == before
    assert_same_params(host_params(old), host_params(nb.load(path)))
    nb.save(old, path)  # the leftover partial file does not stand in the way
    assert nb.load(path).config() == old.config()


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value encountered")
def test_a_diverged_model_does_not_overwrite_the_checkpoint(tmp_path):
    path = tmp_path / "m.h5"
    model = nb.Sequential([Dense(2, 16), Dense(16, 1)], seed=0)
    with (
        pytest.warns(RuntimeWarning, match="loss became"),
        pytest.warns(RuntimeWarning, match="not saved: its loss is nan; .*keeps the last good"),
    ):
        model.fit(X, X[:, :1] * 50, loss=nb.losses.MSE(), optimizer=nb.optim.SGD(lr=5.0),
                  epochs=400, batch_size=None, verbose=0, checkpoint=path)  # fmt: skip
    saved = nb.load(path, with_optimizer=True)
    assert all(np.isfinite(v).all() for v in host_params(saved[0]).values())
    assert saved[2] == 0  # the last finite epoch that was due for a save


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value encountered")
def test_a_model_diverged_before_its_first_save_is_said_to_have_no_checkpoint(tmp_path):
    """inf at the first epoch due for a save: the warning says the file is not written,
    not that it "keeps the last good checkpoint" (there was none)."""
    path = tmp_path / "first.h5"
    model = nb.Sequential([Dense(2, 16), Dense(16, 1)], seed=0)
    with (
        pytest.warns(RuntimeWarning, match="loss became"),
        pytest.warns(
            RuntimeWarning, match=r"epoch 0 not saved: its loss is inf; .*first.h5 is not written$"
        ),
    ):
        model.fit(X * 1e20, X[:, :1] * 1e20, loss="mse", optimizer=nb.optim.SGD(lr=1e10),
                  epochs=2, log_every=1, batch_size=None, verbose=0, checkpoint=path)  # fmt: skip
    assert not path.exists()


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_an_infinite_loss_with_finite_weights_is_not_saved(tmp_path):
    """A rate of 1e-300 keeps the weights finite while the loss overflows to inf: the
    checkpoint goes by the loss, not by the weights a save would refuse anyway."""
    path = tmp_path / "inf.h5"
    model = nb.Sequential([Dense(2, 1)], seed=0, dtype="float64")
    said = r"epoch 0 not saved: its loss is inf; .*is not written"
    with pytest.warns(RuntimeWarning, match="loss became inf"), pytest.warns(match=said):
        model.fit(X, X[:, :1] * 1e200, loss="mse", optimizer=nb.optim.SGD(lr=1e-300), epochs=2,
                  log_every=1, batch_size=None, verbose=0, checkpoint=path)  # fmt: skip
    assert not path.exists()
    assert all(np.isfinite(w).all() for w in host_params(model).values())


# --- bad files --------------------------------------------------------------------


def test_not_an_hdf5_file(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("these are not weights")
    with pytest.raises(
        nb.CheckpointError, match=r"cannot read checkpoint .*notes.h5.*not a readable HDF5"
    ):
        nb.load(path)


def test_a_superblock_address_past_any_offset_is_a_bad_file(tmp_path):
    """h5py's reader of a file object raised a bare "cannot fit 'int' into an
    offset-sized integer" ValueError for it."""
    path = tmp_path / "odd.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.zeros(3)
    raw = bytearray(path.read_bytes())
    assert raw[48:56] == b"\xff" * 8  # superblock v0: the driver block's address, undefined
    raw[48] = 0x3E
    path.write_bytes(bytes(raw))
    with pytest.raises(nb.CheckpointError, match=r"odd.h5: not a readable HDF5 file"):
        nb.load(path)


def test_a_callback_state_past_floats_range_is_refused_by_name(tmp_path):
    """EarlyStopping's best of 10**400 (valid JSON) ended a resume in OverflowError; the
    same number given in code is named too."""
    path = tmp_path / "run.h5"
    model = nb.Sequential([Dense(2, 4), Tanh(), Dense(4, 2)], seed=0)
    fit = dict(optimizer=nb.optim.SGD(0.1), epochs=2, validation_split=0.25, **FIT)
    model.fit(X, Y, callbacks=[nb.callbacks.EarlyStopping(patience=5)], checkpoint=path, **fit)
    with h5py.File(path, "r+") as f:
        group = f["callbacks/EarlyStopping"]
        state = json.loads(group.attrs["state"])
        group.attrs["state"] = json.dumps(dict(state, best=10**400))
    with pytest.raises(nb.CheckpointError, match="EarlyStopping best must be a finite number"):
        model.fit(X, Y, callbacks=[nb.callbacks.EarlyStopping(patience=5)], checkpoint=path,
                  resume=True, **fit)  # fmt: skip
    with pytest.raises(ValueError, match="learning rate must be a finite number above 0, got inf"):
        nb.optim.SGD(10**400)
    with pytest.raises(ValueError, match="momentum must be .*, got -inf"):  # was +inf
        nb.optim.Momentum(0.1, momentum=-(10**400))


@nb.register
class Keyed(Identity):
    """A layer of one's own whose config holds a 157-digit integer (a Mersenne prime)."""

    def __init__(self, modulus: int = 2**521 - 1):
        super().__init__()
        self.modulus = modulus

    def config(self):
        return {**super().config(), "modulus": self.modulus}


def test_a_config_holding_a_large_integer_loads_as_saved(tmp_path):
    """A 100-digit bound on a file's integers refused what nb.save wrote."""
    model = nb.Sequential([Dense(2, 3), Keyed()], seed=0)
    nb.save(model, tmp_path / "keyed.h5")
    assert nb.load(tmp_path / "keyed.h5").layers[1].modulus == 2**521 - 1


def test_weights_past_the_models_float_range_are_refused(tmp_path):
    """1e300 saved as float64 was checked finite, then loaded into float32 as inf."""
    path = tmp_path / "wide.h5"
    model = nb.Sequential([Dense(2, 3)], backend=nb.get_backend("numpy", dtype="float32"), seed=0)
    nb.save(model, path)
    with h5py.File(path, "r+") as f:
        del f["weights/0.W"]
        f["weights/0.W"] = np.full((2, 3), 1e300)
    with pytest.raises(nb.CheckpointError, match=r"0.W holds 6 NaN or infinite values in float32"):
        nb.load(path)
    with h5py.File(path, "r+") as f:
        f["weights/0.W"][...] = 1e30  # within float32's range: it loads
    assert np.all(nb.load(path).params["0.W"] == np.float32(1e30))


def test_truncated_file(tmp_path):
    model, opt = trained()
    path = nb.save(model, tmp_path / "m.h5", optimizer=opt)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(nb.CheckpointError, match=r"m.h5.*truncated"):
        nb.load(path)


def test_hdf5_file_of_something_else(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["train_set_x"] = np.zeros((2, 2))
    with pytest.raises(
        nb.CheckpointError,
        match=r"other.h5 is an HDF5 file but not an nnbackend checkpoint.*train_set_x",
    ):
        nb.load(path)


def test_architecture_that_does_not_fit_the_weights(tmp_path):
    model, _ = trained()
    path = nb.save(model, tmp_path / "m.h5")
    config = model.config()
    config["layers"][0]["n_out"] = 9
    config["layers"][2]["n_in"] = 9
    with h5py.File(path, "r+") as f:
        f.attrs["architecture"] = json.dumps(config)
    with pytest.raises(
        nb.CheckpointError,
        match=r"/weights/0.W has shape \(2, 8\), but the architecture needs \(2, 9\)",
    ):
        nb.load(path)


def test_weights_missing_from_the_file(tmp_path):
    model, _ = trained()
    path = nb.save(model, tmp_path / "m.h5")
    with h5py.File(path, "r+") as f:
        del f["weights/4.b"]
    with pytest.raises(nb.CheckpointError, match=r"the weights saved .* do not match"):
        nb.load(path)


def test_newer_format_version(tmp_path):
    model, _ = trained()
    path = nb.save(model, tmp_path / "m.h5")
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = io.FORMAT_VERSION + 1
    with pytest.raises(
        nb.CheckpointError, match="format 2, newer than the 1 this nnbackend reads: upgrade"
    ):
        nb.load(path)


def test_missing_file(tmp_path):
    """Named once: the message held the path, and Python's own adds it again."""
    with pytest.raises(FileNotFoundError) as err:
        nb.load(tmp_path / "nothing.h5")
    assert str(err.value) == f"[Errno 2] no checkpoint at this path: '{tmp_path / 'nothing.h5'}'"
    assert err.value.filename == str(tmp_path / "nothing.h5")


@nb.register
class ScaledBy(Layer):
    """A layer of one's own whose config() holds a tuple, as JSON gives back a list."""

    def __init__(self, factors=(1.0,)):
        super().__init__()
        self.factors = factors  # as given: a tuple here, a list from a file

    def forward(self, x, training=True):
        return self.factors[0] * x

    def backward(self, dy, input_grad=True):
        return self.factors[0] * dy

    def config(self):
        return {**super().config(), "factors": self.factors}


def test_a_model_whose_config_holds_a_tuple_resumes_from_its_own_checkpoint(tmp_path):
    """The file's (0.5,) came back as [0.5], and the same model was refused as another
    architecture at every resume."""
    path = tmp_path / "m.h5"

    def run(epochs, resume=False):
        model = nb.Sequential([Dense(2, 3), ScaledBy((0.5,)), Dense(3, 2)], seed=0)
        model.fit(X, Y, optimizer="sgd", epochs=epochs, checkpoint=path, resume=resume, **FIT)
        return host_params(model)

    straight = run(3)
    with pytest.warns(UserWarning, match="holds epoch 2 of an earlier run"):
        run(2)  # starts over: the 3-epoch run's file is replaced
    for name, w in run(3, resume=True).items():
        np.testing.assert_array_equal(w, straight[name])


def test_restore_refuses_another_architecture_naming_where_it_differs(tmp_path):
    """The message held both models' whole reprs (930 characters for six layers) and
    said nothing of where they differ or what to do."""
    model, _ = trained()
    path = nb.save(model, tmp_path / "m.h5")
    for layers, where in [
        ([Dense(2, 4), ReLU(), Dense(4, 6), Tanh(), Dense(6, 2)], "its layer 0 has n_out 8 where"),
        ([Dense(2, 8), ReLU(), Dense(8, 2)], "it has 5 layers, the model 3"),
        ([Dense(2, 8), Tanh(), Dense(8, 6), Tanh(), Dense(6, 2)], "its layer 1 has type 'ReLU'"),
    ]:
        said = re.escape(f"holds another architecture than the model's: {where}")
        with pytest.raises(nb.CheckpointError, match=said + ".*; build the model as saved"):
            nb.restore(nb.Sequential(layers), path)


def test_restore_with_its_arguments_swapped_or_a_list_of_custom_objects_says_so(tmp_path):
    """nb.restore(path, model) was "'str' object has no attribute 'params'" from deep
    inside; custom_objects=[Dense] (Keras's habit) "'list' object is not a mapping"."""
    model = nb.Sequential([Dense(2, 2)], seed=0)
    path = nb.save(model, tmp_path / "m.h5")
    with pytest.raises(TypeError, match=r"nb.restore\(model, path\) restores into a model"):
        nb.restore(str(path), model)
    with pytest.raises(TypeError, match="optimizer is the Optimizer to restore the state into"):
        nb.restore(model, path, "adam")
    with pytest.raises(TypeError, match=r"custom_objects is \{name: class\}"):
        nb.load(path, custom_objects=[Dense])


@pytest.mark.parametrize("backend", CPU_BACKEND_NAMES)
def test_load_given_a_model_points_to_restore(tmp_path, backend):
    """Keras's model.load_weights(path) and torch's load_state_dict put a file into a
    model; nb.load(path, model) was "a backend is named by a string such as 'numpy', not
    Sequential(...)", and nb.load(model, path) "path must be a file's path"."""
    model = nb.Sequential([Dense(2, 2)], backend=backend, seed=0)
    path = nb.save(model, tmp_path / "m.h5")
    for args in ((path, model), (model, path)):
        with pytest.raises(TypeError, match=r"to fill yours, nb.restore\(model, path\)"):
            nb.load(*args)
    other = nb.Sequential([Dense(2, 2)], backend=backend, seed=1)
    nb.restore(other, path)  # the call the message gives
    np.testing.assert_array_equal(
        nb.to_numpy(other.params["0.W"]), nb.to_numpy(model.params["0.W"])
    )


def test_a_loss_set_by_name_is_its_loss_and_one_output_is_told_bce():
    """model.loss = "cross_entropy" crashed predict and evaluate ("'str' object has no
    attribute 'link'"); a 1-output model told SoftmaxCrossEntropy() gave probability 1
    for every row."""
    X = np.random.default_rng(0).random((3, 2))
    model = nb.Sequential([Dense(2, 2)], seed=0)
    model.loss = SoftmaxCrossEntropy()
    want = model.predict_proba(X)
    model.loss = "cross_entropy"
    assert isinstance(model.loss, SoftmaxCrossEntropy)
    np.testing.assert_allclose(model.predict_proba(X), want)
    assert model.evaluate(X, np.array([0, 1, 0]))["loss"] > 0
    one = nb.Sequential([Dense(2, 1)], seed=0)
    with pytest.raises(ValueError, match=r"model.loss = nb.losses.BinaryCrossEntropy\(from_logits"):
        one.predict_proba(X)
    one.loss = SoftmaxCrossEntropy()
    with pytest.raises(ValueError, match="needs one output per class, but the model has 1"):
        one.predict_proba(X)


def test_a_loss_of_probabilities_set_by_hand_on_raw_scores_is_refused_as_fit_refuses_it():
    """model.loss = "bce" (from_logits=False) on a model ending in Dense gave raw scores
    as probabilities, negative ones; a 1-output model ending in Sigmoid was told the
    loss from logits, which applied the sigmoid twice; del model.loss was "__delete__"."""
    X = np.random.default_rng(0).random((4, 3))
    raw = nb.Sequential([Dense(3, 1)], seed=0)
    raw.loss = "bce"
    with pytest.raises(ValueError, match=r"takes probabilities in \[0, 1\], but the model ends in"):
        raw.predict_proba(X)
    sigmoid = nb.Sequential([Dense(3, 1), nb.layers.Sigmoid()], seed=0)
    sigmoid.loss = "cross_entropy"
    with pytest.raises(ValueError, match=r"set model.loss = nb.losses.BinaryCrossEntropy\(\)$"):
        sigmoid.predict_proba(X)
    del sigmoid.loss
    assert sigmoid.loss is None and sigmoid.predict_proba(X).shape == (4, 1)


def test_save_refuses_an_epoch_that_load_refuses_and_keeps_the_file(tmp_path):
    """An epoch of 2**60 was saved over a good checkpoint, which then never loaded."""
    model = nb.Sequential([Dense(2, 2)], seed=0)
    nb.save(model, tmp_path / "m.h5", epoch=1)
    with pytest.raises(ValueError, match="epoch"):
        nb.save(model, tmp_path / "m.h5", epoch=2**60)
    assert nb.load(tmp_path / "m.h5", with_optimizer=True)[2] == 1
    nb.save(model, tmp_path / "m.h5", epoch=2**53)  # the most a load takes
    assert nb.load(tmp_path / "m.h5", with_optimizer=True)[2] == 2**53


def test_restore_into_an_optimizer_from_a_file_without_its_state_says_so(tmp_path):
    """The optimizer kept its rate and step count, and nothing was said."""
    model = nb.Sequential([Dense(2, 2)], seed=0)
    nb.save(model, tmp_path / "m.h5")
    with pytest.warns(
        UserWarning, match=r"holds no optimizer state .*Adam\(lr=0.5.* starts afresh"
    ):
        nb.restore(model, tmp_path / "m.h5", nb.optim.Adam(0.5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nb.restore(model, tmp_path / "m.h5")  # no optimizer asked for: nothing to say


@pytest.mark.parametrize("path", ["", ".", "run/"])
def test_load_of_a_path_that_names_no_file_says_so(path):
    """nb.load("") said IsADirectoryError: '.', where nb.save("") says it names no file."""
    with pytest.raises(ValueError, match=rf"^{re.escape(repr(path))} names no file"):
        nb.load(path)


@pytest.mark.parametrize("path", [b"m.h5", 3])
def test_load_of_a_path_of_another_type_names_the_types_it_takes(path):
    with pytest.raises(TypeError, match=r"path must be a file's path \(str or Path\)"):
        nb.restore(nb.Sequential([Dense(2, 2)]), path)


def test_restore_says_a_stepped_optimizer_keeps_its_state_where_the_file_has_none(tmp_path):
    """It said "starts afresh" of an Adam that kept its 3 steps and moments."""
    X, y = nb.datasets.make_moons(20, seed=0)
    model, optimizer = nb.Sequential([Dense(2, 2)], seed=0), nb.optim.Adam(0.01)
    model.fit(X, y, loss="cross_entropy", optimizer=optimizer, epochs=3, batch_size=None, verbose=0)
    nb.save(model, tmp_path / "m.h5")
    with pytest.warns(UserWarning, match=r"Adam\(lr=0.01.*\) keeps its own state \(3 steps\)$"):
        nb.restore(model, tmp_path / "m.h5", optimizer)
    assert optimizer.iterations == 3


def test_save_refuses_an_optimizer_step_count_load_refuses(tmp_path):
    model, optimizer = nb.Sequential([Dense(2, 2)], seed=0), nb.optim.SGD(0.1)
    nb.save(model, tmp_path / "m.h5", optimizer=optimizer)
    optimizer.iterations = 2**53 + 2
    with pytest.raises(ValueError, match="the optimizer's step count"):
        nb.save(model, tmp_path / "m.h5", optimizer=optimizer)
    assert nb.load(tmp_path / "m.h5", with_optimizer=True)[1].iterations == 0  # kept


def test_an_object_in_custom_objects_gets_the_unknown_type_error(tmp_path):
    """An instance where a class goes crashed the lookup in AttributeError's words."""
    nb.save(nb.Sequential([Dense(2, 3, init=Quarter())], seed=0), tmp_path / "m.h5")
    with pytest.raises(nb.CheckpointError, match="unknown initialiser type 'quarter'"):
        nb.load(tmp_path / "m.h5", custom_objects={"Quarter": Quarter()})


class PlainInit(nb.init.Initializer):
    """An initialiser of one's own, not registered."""

    def std(self, fan_in, fan_out):
        return 0.3


def test_a_resume_takes_an_initialiser_of_ones_own_without_custom_objects(tmp_path):
    """The guide says a resume needs no custom_objects: one with an unregistered
    initialiser was refused, told to pass custom_objects to nb.load, which fit lacks."""
    X = np.random.default_rng(0).normal(size=(16, 3))

    def run(epochs, resume, path):
        model = nb.Sequential([Dense(3, 1, init=PlainInit())], seed=0)
        fit = dict(loss="mse", optimizer="sgd", epochs=epochs, verbose=0, batch_size=None)
        model.fit(X, X[:, 0], checkpoint=tmp_path / path, resume=resume, **fit)
        return nb.to_numpy(model.params["0.W"])

    run(1, False, "run.h5")
    resumed = run(3, True, "run.h5")
    np.testing.assert_array_equal(resumed, run(3, False, "straight.h5"))


class KeptAsBase(nb.optim.Schedule):
    """A schedule that keeps its rate under another name than its argument's."""

    def __init__(self, lr=0.1, k=0.5):
        self.base, self.k = float(lr), float(k)

    def __call__(self, step):
        return self.base / (1 + self.k * step)


def test_a_schedule_keeping_an_argument_under_another_name_is_warned_at_the_save(tmp_path):
    """Its config() left lr out without a word: the load, and a resume, took 0.1."""
    model = nb.Sequential([Dense(2, 2)], seed=0)
    with pytest.warns(UserWarning, match=r"KeptAsBase's config\(\) leaves out a setting, .*"
                      r"\(the rate at step 0: 0.5 -> 0.1\)"):  # fmt: skip
        nb.save(model, tmp_path / "m.h5", optimizer=nb.optim.SGD(KeptAsBase(0.5, 2.0)))


class HalfHe(nb.init.He):
    """An unregistered subclass of a built-in initialiser: saved, and loaded, as He."""

    def std(self, fan_in, fan_out):
        return 0.5 * super().std(fan_in, fan_out)


def test_an_unregistered_initialiser_subclass_saves_as_its_base_and_resumes(tmp_path):
    """Its save was refused ("would load HalfHe as He"), with advice it already follows."""
    model = nb.Sequential([Dense(2, 3, init=HalfHe()), Dense(3, 1)], seed=0)
    nb.save(model, tmp_path / "m.h5")
    assert type(nb.load(tmp_path / "m.h5").layers[0].init) is nb.init.He
    X = np.random.default_rng(0).normal(size=(8, 2))
    fit = dict(loss="mse", optimizer="sgd", verbose=0, checkpoint=tmp_path / "run.h5")
    model.fit(X, X[:, :1], epochs=1, **fit)
    model.fit(X, X[:, :1], epochs=2, resume=True, **fit)


class Jittered(nb.optim.Schedule):
    """A rate with noise, its config complete: it differs from any copy of itself."""

    def __init__(self, lr=0.1):
        self.lr, self.calls = float(lr), []

    def __call__(self, step):
        self.calls.append(step)
        return self.lr * (1 + 0.01 * np.random.default_rng().normal())


class RunsOut(nb.optim.Schedule):
    """A polynomial decay meant for its 100 steps alone: NaN past them."""

    def __init__(self, lr=0.1, total=100):
        self.lr, self.total = float(lr), int(total)

    def __call__(self, step):
        return self.lr * np.float64(1 - step / self.total) ** 0.5


@pytest.mark.parametrize("schedule", [Jittered, RunsOut])
def test_a_schedule_with_its_whole_config_is_not_warned_nor_called_at_the_save(schedule, tmp_path):
    """Compared with its rebuilt copy, a random rate or NaN past the end was warned of
    at every save ("add it to config()", which cannot help), and the user's own
    schedule was called four times a save."""
    model, given = nb.Sequential([Dense(2, 2)], seed=0), schedule()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(2):
            nb.save(model, tmp_path / "m.h5", optimizer=nb.optim.SGD(given))
    assert getattr(given, "calls", []) == []


class ScaleByName(Scale):
    """A declared Scale whose weight an initialiser draws, kept by the name it was given."""

    def __init__(self, n=2, init="lecun"):
        super().__init__(n, declare=True)
        self.init = init

    def build(self, backend, rng):
        super().build(backend, rng)
        self.params["s"] = nb.init.get(self.init)((1, self.n), rng, backend)[0]

    def config(self):
        return {**Layer.config(self), "n": self.n, "init": self.init}


class ScaleForgettingInit(ScaleByName):
    """Its config() leaves its initialiser out: a load gives it the default."""

    def __init__(self, n=2, init="lecun"):
        super().__init__(n, init)
        self.init = nb.init.get(init)

    def config(self):
        return {"type": type(self).__name__, "n": self.n}


def test_a_layers_initialiser_kept_by_name_or_left_out_saves_as_before(tmp_path):
    """With initialisers among the parts compared class by class, a save crashed on an
    initialiser kept as a string, and refused one config() leaves out as "another
    class" (a setting left out, which is warned of)."""
    custom = {"ScaleByName": ScaleByName, "ScaleForgettingInit": ScaleForgettingInit}
    nb.save(nb.Sequential([ScaleByName(2, init="he")], seed=0), tmp_path / "m.h5")
    assert nb.load(tmp_path / "m.h5", custom_objects=custom).layers[0].init == "he"
    with pytest.warns(UserWarning, match=r"leaves out a setting.*init: He\(\) -> LeCun\(\)"):
        nb.save(nb.Sequential([ScaleForgettingInit(2, init="he")], seed=0), tmp_path / "f.h5")


class DecayKeptApart(nb.optim.Schedule):
    """Its decay kept under another name: the rebuilt copy agrees at step 0 alone."""

    def __init__(self, lr=0.1, k=0.0):
        self.lr, self.decay = float(lr), float(k)

    def __call__(self, step):
        return self.lr / (1 + self.decay * step)


class EndsAtFive(nb.optim.Schedule):
    """A schedule that refuses steps past its end."""

    def __init__(self, lr=0.1, total=5):
        self.lr, self.total = float(lr), int(total)

    def __call__(self, step):
        if step >= self.total:
            raise ValueError("past the schedule's end")
        return self.lr


def test_the_saves_rate_comparison_looks_past_step_0_and_past_a_refusal(tmp_path):
    model = nb.Sequential([Dense(2, 2)], seed=0)
    with pytest.warns(UserWarning, match="the rate at step 1: 0.0666"):
        nb.save(model, tmp_path / "m.h5", optimizer=nb.optim.SGD(DecayKeptApart(0.1, 0.5)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nb.save(model, tmp_path / "m.h5", optimizer=nb.optim.SGD(EndsAtFive()))


def test_restores_warning_counts_one_step_and_save_refuses_a_negative_count(tmp_path):
    model, optimizer = nb.Sequential([Dense(2, 2)], seed=0), nb.optim.SGD(0.1)
    nb.save(model, tmp_path / "m.h5")
    optimizer.iterations = 1
    with pytest.warns(UserWarning, match=r"keeps its own state \(1 step\)$"):
        nb.restore(model, tmp_path / "m.h5", optimizer)
    optimizer.iterations = -1
    with pytest.raises(ValueError, match="the optimizer's step count"):
        nb.save(model, tmp_path / "n.h5", optimizer=optimizer)
    assert not (tmp_path / "n.h5").exists()


class HoldsALock(DecayKeptApart):
    """A schedule no deep copy can make (it holds a lock)."""

    def __init__(self, lr=0.1, k=0.0):
        super().__init__(lr, k)
        import threading

        self.lock = threading.Lock()


def test_a_schedule_that_cannot_be_copied_saves_without_the_rate_comparison(tmp_path):
    model = nb.Sequential([Dense(2, 2)], seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to ask without asking the user's own
        nb.save(model, tmp_path / "m.h5", optimizer=nb.optim.SGD(HoldsALock(0.1, 0.5)))
    assert nb.load(tmp_path / "m.h5", custom_objects={"HoldsALock": HoldsALock})
