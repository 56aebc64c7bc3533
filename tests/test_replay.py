"""fit(..., compile="cuda-graph"): the step recorded once and replayed gives the eager
step's weights and losses (Adam and the schedules with the step count kept on the
device, BatchNorm with its averages updated in place, Dropout with its generator's
counter on the device), and a step that a replay would get wrong is refused rather
than trained wrong.

A CUDA graph needs a GPU. Here ``Rerun`` stands in for one: its "replay" runs the
recorded step again on the recorded batch and writes what it gives into the recorded
outputs, as a graph's replay overwrites its memory. That checks what nnbackend does
around the graph (warm-up, copying each batch in, the eager last batch, the step
count, copying the loss out) on every backend. ``tests/graph_emulation.py`` comes
closer on torch's CPU: its replay reruns the recorded torch operators and no Python,
and it notes any host sync or host copy while recording. ``test_a_cuda_graph_*``
checks the graph itself where torch sees a GPU."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pytest

import nnbackend as nb
from nnbackend.backend import replay
from nnbackend.layers import BatchNorm, Dense, Dropout
from nnbackend.sklearn.solvers import EfficientAdam
from tests.conftest import BACKEND_PARAMS, HAVE_TORCH

N, BATCH, EPOCHS = 70, 16, 3  # 4 full batches and one of 6 an epoch


class Rerun:
    """A CUDA graph's stand-in: ``replay`` runs the recorded step again. A graph's
    replay runs no Python: it repeats the numbers the recording's Python gave. So the
    rerun sees the optimizer's step count and the generator's host counter as they were
    when recorded (an update or a draw that read them would go wrong here as on a GPU),
    and they are put back after."""

    def __init__(self):
        self.calls = {"warm": 0, "record": 0, "replay": 0}
        self.optimizer = self.model = None  # whose counts to hold: set by train()

    @property
    def rng(self):
        return self.model.rng  # (fit's seed= gives the model a new generator)

    def warm(self, step, xb, yb):
        self.calls["warm"] += 1
        return step(xb, yb)

    def record(self, step, xb, yb):
        self.calls["record"] += 1
        self.step, self.inputs = step, (xb, yb)
        self.count = None if self.optimizer is None else self.optimizer.iterations
        self.block = None if self.model is None else self.rng.counter
        value, out = step(xb, yb)
        xp = nb.backend.namespace_of(out)
        self.outputs = (xp.asarray(value), out)  # NumPy's loss is a scalar: made an array
        return self.outputs

    def replay(self):
        self.calls["replay"] += 1
        count, self.optimizer.iterations = self.optimizer.iterations, self.count
        block = self.rng.counter
        self.rng.advance(self.block - block)
        for kept, new in zip(self.outputs, self.step(*self.inputs), strict=True):
            kept[...] = new
        self.optimizer.iterations = count
        self.rng.advance(block - self.rng.counter)


@pytest.fixture
def rerun(monkeypatch):
    recorder = Rerun()
    monkeypatch.setattr(replay, "recorder_for", lambda backend: recorder)
    return recorder


def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, 3))
    return X, (X[:, 0] * X[:, 1] > 0).astype(np.int64)


def model_on(backend, *layers):
    layers = layers or (Dense(3, 8), "tanh", Dense(8, 2))
    return nb.Sequential(list(layers), backend=backend, seed=0)


def train(backend, compile, optimizer, rerun=None, layers=(), **options):
    if rerun is not None:
        rerun.optimizer = optimizer
    model = model_on(backend, *layers)
    if rerun is not None:
        rerun.model = model
    X, y = data()
    options = {"epochs": EPOCHS, "batch_size": BATCH, **options}
    history = model.fit(X, y, loss="cross_entropy", optimizer=optimizer, verbose=0, seed=0,
                        compile=compile, **options)  # fmt: skip
    return model, history, optimizer


def on_a_gpu(backend) -> bool:
    return backend.name in ("cupy", "torch:cuda")


def assert_replayed_like_eager(backend, replayed, eager):
    """The replayed fit's weights are the eager fit's: bit for bit on a CPU. On a GPU
    to a few float32 ulps, where the eager steps pass Adam's rates as host numbers and
    the recorded ones as 0-d arrays on the device: torch's CUDA division by a host
    number multiplies by its reciprocal (a bit off a true division; 2e-6 relative after
    8 steps on an H200). Updates reading a stale count or rate are 1e-3 off and more
    (``test_why_the_count_goes_to_the_device_*``)."""
    for name, want in eager.params.items():
        got, want = nb.to_numpy(replayed.params[name]), nb.to_numpy(want)
        if on_a_gpu(backend):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
        else:
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("make", [lambda: nb.optim.SGD(0.1), lambda: nb.optim.Momentum(0.05)])
def test_replayed_steps_give_the_eager_weights_and_losses(backend, rerun, make):
    eager, eager_history, eager_opt = train(backend, False, make())
    replayed, history, opt = train(backend, "cuda-graph", make(), rerun, l2=0.01)
    eager_l2, eager_l2_history, _ = train(backend, False, make(), l2=0.01)
    for name, want in eager_l2.params.items():
        np.testing.assert_array_equal(nb.to_numpy(replayed.params[name]), nb.to_numpy(want))
    assert history["loss"] == eager_l2_history["loss"]
    assert history["accuracy"] == eager_l2_history["accuracy"]
    assert opt.iterations == eager_opt.iterations == EPOCHS * 5
    assert eager_history["loss"] != history["loss"]  # l2 counted: not two equal runs
    # 4 full batches an epoch: 3 warm, 1 recorded, the rest replayed; the 6-row ones eager
    assert rerun.calls == {"warm": 3, "record": 1, "replay": EPOCHS * 4 - 4}


@pytest.mark.parametrize("make", [lambda: nb.optim.SGD(0.1), lambda: nb.optim.Adam(0.01)])
def test_full_batch_training_replays_on_the_whole_set(backend, rerun, make):
    with nb.backend.fused(False):
        whole = {"batch_size": None, "epochs": 8}
        replayed, history, opt = train(backend, "cuda-graph", make(), rerun, **whole)
        eager, eager_history, _ = train(backend, False, make(), **whole)
    assert_replayed_like_eager(backend, replayed, eager)
    if on_a_gpu(backend):
        np.testing.assert_allclose(history["loss"], eager_history["loss"], rtol=1e-6)
    else:
        assert history["loss"] == eager_history["loss"]
    assert opt.iterations == 8
    assert rerun.calls == {"warm": 3, "record": 1, "replay": 4}


def test_the_whole_set_is_read_where_it_is_and_never_written(rerun):
    """Every step got the same arrays: the recording reads them, with no copy; an
    array of the same shape that is not them takes the eager step."""
    X, y = data()
    X = X.astype(np.float32)
    model, optimizer = model_on("numpy"), nb.optim.SGD(0.1)
    rerun.optimizer, rerun.model = optimizer, model
    step = replay.ReplayedStep(
        model.step_function(nb.losses.SoftmaxCrossEntropy(), optimizer), model, optimizer, rerun
    )
    for _ in range(6):
        step(X, y)
    assert rerun.inputs[0] is X and rerun.inputs[1] is y
    other, before = X * 2, X.copy()
    step(other, y)
    np.testing.assert_array_equal(X, before)
    assert rerun.calls == {"warm": 3, "record": 1, "replay": 2} and optimizer.iterations == 7


def test_a_resumed_replayed_fit_ends_where_one_eager_fit_does(rerun, tmp_path):
    """Adam's count on the device starts from the checkpoint's, not from 0."""
    X, y = data()
    checkpoint = tmp_path / "run.h5"

    def fit(epochs, compile, **options):
        model, optimizer = model_on("numpy"), nb.optim.Adam(0.01)
        rerun.optimizer, rerun.model = optimizer, model
        history = model.fit(X, y, loss="cross_entropy", optimizer=optimizer, epochs=epochs,
                            batch_size=BATCH, verbose=0, seed=0, compile=compile,
                            **options)  # fmt: skip
        return model, history

    with nb.backend.fused(False):
        fit(3, "cuda-graph", checkpoint=checkpoint)
        resumed, history = fit(6, "cuda-graph", checkpoint=checkpoint, resume=True)
        eager, eager_history = fit(6, False)
    for name, want in eager.params.items():
        np.testing.assert_array_equal(nb.to_numpy(resumed.params[name]), nb.to_numpy(want))
    assert history["loss"] == eager_history["loss"][3:]


def test_each_replay_trains_on_its_own_batch(backend, rerun):
    """With shuffling, every batch differs: a replay that kept the recorded batch
    would train on it again and again."""
    replayed, history, _ = train(backend, "cuda-graph", nb.optim.SGD(0.1), rerun, shuffle=True)
    eager, eager_history, _ = train(backend, False, nb.optim.SGD(0.1), shuffle=True)
    for name, want in eager.params.items():
        np.testing.assert_array_equal(nb.to_numpy(replayed.params[name]), nb.to_numpy(want))
    assert len(set(history["loss"])) == EPOCHS


def halve_the_first_weights(epoch, logs, model):
    model.params["0.W"] = model.params["0.W"] * 0.5  # a new array, assigned


@pytest.mark.parametrize("batch_size", [BATCH, 20, None], ids=["4-full", "3-full", "whole"])
def test_a_weight_a_callback_sets_is_the_one_replays_train(backend, rerun, batch_size):
    """Set after the recording (4 full batches an epoch), before it (3: the recording is
    the epoch's first step), or between warm-up steps (the whole set, one batch)."""
    halving = nb.callbacks.LambdaCallback(halve_the_first_weights)
    options = {"callbacks": [halving], "batch_size": batch_size, "epochs": 6}
    replayed, history, _ = train(backend, "cuda-graph", nb.optim.SGD(0.1), rerun, **options)
    eager, eager_history, _ = train(backend, False, nb.optim.SGD(0.1), **options)
    for name, want in eager.params.items():
        np.testing.assert_array_equal(nb.to_numpy(replayed.params[name]), nb.to_numpy(want))
    assert history["loss"] == eager_history["loss"]


def slow_down(epoch, logs, model):
    model.optimizer.lr = 0.01


def reload_the_optimizer(epoch, logs, model):  # the same numbers, in new arrays
    model.optimizer.load_state_dict(model.optimizer.state_dict())


def drop_less(epoch, logs, model):
    model.layers[2].rate = 0.25


def reseed(epoch, logs, model):
    model.rng = nb.Generator(7)


def reset_the_velocity(epoch, logs, model):  # a new slot dict, the same keys
    opt = model.optimizer
    opt.state["v"] = {k: a * 0 for k, a in opt.state["v"].items()}


def set_the_generator_state(epoch, logs, model):  # the same Generator, another key
    model.rng.state = nb.Generator(7).state


@pytest.mark.parametrize(
    "change",
    [slow_down, reload_the_optimizer, drop_less, reseed, reset_the_velocity,
     set_the_generator_state],
)  # fmt: skip
def test_what_a_recording_holds_fixed_changed_by_a_callback_is_refused(rerun, change):
    layers = (Dense(3, 8), "relu", Dropout(0.5), Dense(8, 2))
    with pytest.raises(ValueError, match="changed during the fit"):
        train("numpy", "cuda-graph", nb.optim.Momentum(0.05), rerun, layers,
              callbacks=[nb.callbacks.LambdaCallback(change)])  # fmt: skip


def test_adam_replays_with_its_step_count_on_the_device(backend, rerun):
    """Adam's bias correction changes every step: a replay reads the count from the
    device, and the eager last batch of each epoch moves the host's count on between."""
    with nb.backend.fused(False):  # both sides through Adam's update, weight by weight
        replayed, history, opt = train(backend, "cuda-graph", nb.optim.Adam(0.01), rerun)
        eager, eager_history, _ = train(backend, False, nb.optim.Adam(0.01))
    assert_replayed_like_eager(backend, replayed, eager)
    if on_a_gpu(backend):
        np.testing.assert_allclose(history["loss"], eager_history["loss"], rtol=1e-6)
    else:
        assert history["loss"] == eager_history["loss"]
    assert opt.iterations == EPOCHS * 5 and opt.step_number() == EPOCHS * 5 + 1
    assert rerun.calls["replay"] == EPOCHS * 4 - 4


def test_adam_replayed_on_the_flat_buffer_matches_its_fused_kernels(backend, rerun):
    replayed, history, _ = train(backend, "cuda-graph", nb.optim.Adam(0.01), rerun)
    eager, eager_history, _ = train(backend, False, nb.optim.Adam(0.01))
    for name, want in eager.params.items():
        got = nb.to_numpy(replayed.params[name])
        np.testing.assert_allclose(got, nb.to_numpy(want), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(history["loss"], eager_history["loss"], rtol=1e-5)


class HostCountedAdam(nb.optim.Adam):
    """Adam whose bias correction reads the host's count, saying it is steady."""

    steady = True  # untrue

    def kernel_rates(self, lr, t):
        return super().kernel_rates(lr, self.iterations + 1)


def test_why_the_count_goes_to_the_device_an_update_reading_the_host_s_replays_wrong(rerun):
    """With the refusal lifted by a false claim, the replays keep the recorded count."""
    replayed, _, _ = train("numpy", "cuda-graph", HostCountedAdam(0.01), rerun)
    eager, _, _ = train("numpy", False, HostCountedAdam(0.01))
    off = [np.max(np.abs(nb.to_numpy(replayed.params[k] - eager.params[k]))) for k in eager.params]
    assert max(off) > 1e-3


SCHEDULES = [
    lambda: nb.optim.StepDecay(0.1, 4, 0.5),
    lambda: nb.optim.ExponentialDecay(0.1, 0.5, 5),
    lambda: nb.optim.InverseTimeDecay(0.1, 0.5, 5),
]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=["step", "exponential", "inverse-time"])
def test_schedules_replay_with_their_rate_worked_out_on_the_device(backend, rerun, schedule):
    with nb.backend.fused(False):
        replayed, history, _ = train(backend, "cuda-graph", nb.optim.SGD(schedule()), rerun)
        eager, eager_history, _ = train(backend, False, nb.optim.SGD(schedule()))
    for name, want in eager.params.items():
        np.testing.assert_array_equal(nb.to_numpy(replayed.params[name]), nb.to_numpy(want))
    assert history["loss"] == eager_history["loss"]
    assert rerun.calls["replay"] == EPOCHS * 4 - 4


def test_adam_with_a_schedule_replays_to_the_rounding_of_the_rate(backend, rerun):
    """The rate is taken in the weights' dtype before Adam's correction divides it. On
    CuPy the eager steps run the fused Adam kernel, whose contracted multiply-adds
    differ from the unfused update by an ulp a step; at this schedule's rate of 0.1
    Adam's normalised steps carry that to 9e-6 in 15 steps (an H200)."""
    replayed, history, _ = train(backend, "cuda-graph", nb.optim.Adam(SCHEDULES[1]()), rerun)
    eager, eager_history, _ = train(backend, False, nb.optim.Adam(SCHEDULES[1]()))
    for name, want in eager.params.items():
        got = nb.to_numpy(replayed.params[name])
        atol = 5e-5 if on_a_gpu(backend) else 1e-6
        np.testing.assert_allclose(got, nb.to_numpy(want), rtol=1e-5, atol=atol)


class HostSchedule(nb.schedules.Schedule):
    """A schedule that does not say it works on the device."""

    def __call__(self, step):
        return 0.1 if step < 5 else 0.05


class UndeclaredSGD(nb.optim.SGD):
    def update(self, params, name, grad, lr):  # a new update that does not say it is steady
        params[name] -= lr * grad * 0.5


@pytest.mark.parametrize(
    ("optimizer", "why"),
    [
        (lambda: nb.optim.Adam(HostSchedule()), "HostSchedule"),
        (lambda: nb.optim.SGD(lambda step: 0.1), "SGD"),
        (lambda: UndeclaredSGD(0.1), "UndeclaredSGD"),
    ],
)
def test_an_optimizer_whose_numbers_change_is_refused_before_any_step(rerun, optimizer, why):
    model = model_on("numpy")
    before = model.copy_params()
    X, y = data()
    with pytest.raises(ValueError, match=f"(?s){why}.*changes them from step to step"):
        model.fit(X, y, loss="cross_entropy", optimizer=optimizer(), batch_size=BATCH,
                  verbose=0, compile="cuda-graph")  # fmt: skip
    for name, want in before.items():
        np.testing.assert_array_equal(nb.to_numpy(model.params[name]), nb.to_numpy(want))
    assert rerun.calls == {"warm": 0, "record": 0, "replay": 0}


def test_dropout_replays_with_new_masks_drawn_on_the_device(backend, rerun):
    """Its generator's block counter is kept on the device while the recording draws:
    each replay draws the next masks, and the host's counter moves on with them."""

    def layers():
        return Dense(3, 8), "relu", Dropout(0.5), Dense(8, 2)

    replayed, history, _ = train(backend, "cuda-graph", nb.optim.SGD(0.1), rerun, layers())
    eager, eager_history, _ = train(backend, False, nb.optim.SGD(0.1), layers=layers())
    for name, want in eager.params.items():
        np.testing.assert_array_equal(nb.to_numpy(replayed.params[name]), nb.to_numpy(want))
    assert history["loss"] == eager_history["loss"]
    assert replayed.rng.state == eager.rng.state  # a resumed fit draws on where it left
    assert rerun.calls["replay"] == EPOCHS * 4 - 4


class HostNoise(nb.layers.Layer):
    """Adds noise drawn on the host at every step: a replay would add the same noise."""

    stochastic = True

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x, training=True, rng=None):
        return x + rng.normal(tuple(x.shape), 0.1, backend=self.backend) if training else x

    def backward(self, dy, input_grad=True):
        return dy


def test_a_layer_drawing_on_the_host_is_refused_before_any_step(rerun):
    model = model_on("numpy", Dense(3, 8), HostNoise(), "relu", Dense(8, 2))
    X, y = data()
    with pytest.raises(ValueError, match="HostNoise.*draws new random numbers"):
        model.fit(X, y, loss="cross_entropy", optimizer="sgd", batch_size=BATCH, verbose=0,
                  compile="cuda-graph")  # fmt: skip
    assert rerun.calls["warm"] == 0


def test_batchnorm_replays_its_running_averages_in_place(backend, rerun):
    def layers():
        return Dense(3, 8), BatchNorm(8), "relu", Dense(8, 2)

    replayed, _, _ = train(backend, "cuda-graph", nb.optim.SGD(0.1), rerun, layers())
    eager, _, _ = train(backend, False, nb.optim.SGD(0.1), layers=layers())
    for got, want in [(replayed.state, eager.state), (replayed.params, eager.params)]:
        for name in want:
            np.testing.assert_array_equal(nb.to_numpy(got[name]), nb.to_numpy(want[name]))
    assert rerun.calls["replay"] == EPOCHS * 4 - 4


class RebindingState(nb.layers.Layer):
    """A custom layer that counts its calls in a state array made anew each time."""

    def build(self, backend, rng):
        super().build(backend, rng)
        self.state["calls"] = backend.asarray(np.zeros(1))

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x, training=True):
        if training:
            self.state["calls"] = self.state["calls"] + 1
        return x

    def backward(self, dy, input_grad=True):
        return dy


class MomentumMadeAnew(nb.optim.Momentum):
    """Momentum whose velocity is a new array at every step."""

    elementwise = steady = True

    def update(self, params, name, grad, lr):
        v = self._slot("v", name, grad)
        v[name] = self.momentum * v[name] - lr * grad
        params[name] += v[name]


def test_state_made_anew_is_refused_after_the_warm_up(rerun):
    X, y = data()
    model = model_on("numpy")
    with nb.backend.fused(False):  # weight by weight: the optimizer's own update runs
        with pytest.raises(ValueError, match="anew instead of updating it in place"):
            model.fit(X, y, loss="cross_entropy", optimizer=MomentumMadeAnew(0.05),
                      batch_size=BATCH, verbose=0, compile="cuda-graph")  # fmt: skip
    assert rerun.calls == {"warm": 2, "record": 0, "replay": 0}  # found at the second


class GrowingState(nb.layers.Layer):
    """Adds a state array at each training step: state made anew, not updated in place."""

    def forward(self, x, training=True):
        if training:
            self.state[f"seen{len(self.state)}"] = self.backend.asarray(np.zeros(1))
        return x

    def backward(self, dy, input_grad=True):
        return dy


@pytest.mark.parametrize("kind", [RebindingState, GrowingState])
def test_a_layer_s_state_made_anew_is_refused_after_the_warm_up(rerun, kind):
    X, y = data()
    model = model_on("numpy", Dense(3, 8), kind(), "tanh", Dense(8, 2))
    with pytest.raises(ValueError, match="anew instead of updating it in place"):
        model.fit(X, y, loss="cross_entropy", optimizer="sgd", batch_size=BATCH, verbose=0,
                  compile="cuda-graph")  # fmt: skip
    assert rerun.calls["record"] == 0


def test_replays_needs_a_fixed_rate_and_a_class_that_says_so():
    assert nb.optim.SGD(0.1).replays() and nb.optim.RMSProp().replays()
    assert nb.optim.Nesterov(0.1).replays() and nb.optim.AdaGrad().replays()
    assert nb.optim.Adam().replays()
    assert not nb.optim.SGD(lambda step: 0.1).replays()
    assert nb.optim.SGD(SCHEDULES[0]()).replays() and not nb.optim.SGD(HostSchedule()).replays()
    assert not UndeclaredSGD(0.1).replays()

    class RewrittenAdam(nb.optim.Adam):  # reads the count its own way, says nothing
        def kernel_rates(self, lr, t):
            return lr, 1.0

    assert not RewrittenAdam().replays()


def test_promises_are_not_inherited_by_a_class_that_rewrites_the_method():
    class WarmStart(nb.optim.ExponentialDecay):
        def __call__(self, step):
            return min(1.0, (step + 1) / 10) * super().__call__(step)

    class LoudDropout(Dropout):
        def forward(self, x, training=True, rng=None):
            return super().forward(x, training, rng) * 1.0

    assert nb.optim.SGD(nb.optim.ExponentialDecay(0.1, 0.5)).replays()
    assert not nb.optim.SGD(WarmStart(0.1, 0.5)).replays()
    model = model_on("numpy", Dense(3, 8), LoudDropout(0.5), Dense(8, 2))
    with pytest.raises(ValueError, match="LoudDropout.*draws new random numbers"):
        replay.check_replayable(model, nb.optim.SGD(0.1))


def test_the_class_ids_a_recording_reads_stay_while_a_copy_uses_others():
    loss, xp = nb.losses.SoftmaxCrossEntropy(), nb.get_backend("numpy").xp
    pred = xp.zeros((2, 3))
    first = loss._classes(xp, pred)
    other = nb.get_backend("strict")
    loss._classes(other.xp, other.asarray(np.zeros((2, 3))))
    assert loss._classes(xp, pred) is first


@pytest.fixture
def chosen(rerun, monkeypatch):
    """compile=True as on torch:cuda, where the step can be replayed: the graph (here
    the stand-in), on every backend."""
    monkeypatch.setattr(replay, "records_here", lambda backend, m, o: replay.replayable(m, o))
    return rerun


def test_compile_true_records_the_step_where_it_can_be_replayed(backend, chosen):
    replayed, history, _ = train(backend, True, nb.optim.Momentum(0.05), chosen)
    eager, eager_history, _ = train(backend, False, nb.optim.Momentum(0.05))
    assert chosen.calls == {"warm": 3, "record": 1, "replay": EPOCHS * 4 - 4}
    assert_replayed_like_eager(backend, replayed, eager)
    assert history["loss"] == eager_history["loss"]


def test_compile_true_takes_the_graph_on_torch_cuda_only_and_where_it_replays():
    model = model_on("numpy")
    gpu = SimpleNamespace(name="torch:cuda", device=SimpleNamespace(type="cuda"))
    torch_cpu = SimpleNamespace(name="torch", device=SimpleNamespace(type="cpu"))
    assert replay.records_here(gpu, model, nb.optim.Adam(SCHEDULES[1]()))
    assert not replay.records_here(torch_cpu, model, nb.optim.Adam())
    assert not replay.records_here(gpu, model, nb.optim.SGD(lambda step: 0.1))
    with nb.backend.fused(False):
        assert not replay.records_here(gpu, model, nb.optim.Adam())


def test_compile_true_goes_on_eagerly_where_a_replay_would_be_refused(chosen):
    """What compile="cuda-graph" refuses after the first steps, compile=True warns of
    and trains through eagerly: to the eager fit's weights."""
    X, y = data()
    fits = []
    for compile in (True, False):
        model = model_on("numpy", Dense(3, 8), RebindingState(), "tanh", Dense(8, 2))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(X, y, loss="cross_entropy", optimizer="sgd", batch_size=BATCH, verbose=0,
                      compile=compile)  # fmt: skip
        fits.append((model, [w for w in caught if w.category is RuntimeWarning]))
    (replayed, warned), (eager, quiet) = fits
    assert len(warned) == 1 and quiet == []
    assert "anew instead of updating it in place" in str(warned[0].message)
    assert "the rest of this fit takes the eager step" in str(warned[0].message)
    assert warned[0].filename == __file__  # at the fit call, not inside nnbackend
    assert chosen.calls == {"warm": 2, "record": 0, "replay": 0}
    for name, want in eager.params.items():
        np.testing.assert_array_equal(nb.to_numpy(replayed.params[name]), nb.to_numpy(want))


def dropping():
    return Dense(3, 8), "relu", Dropout(0.5), Dense(8, 2)


def assert_same_fit(replayed, eager):
    """Two fits of ``train``: weights, losses, the optimizer's count and the generator's."""
    (model, history, opt), (eager_model, eager_history, eager_opt) = replayed, eager
    for name, want in eager_model.params.items():
        np.testing.assert_array_equal(nb.to_numpy(model.params[name]), nb.to_numpy(want))
    assert history["loss"] == eager_history["loss"]
    assert opt.iterations == eager_opt.iterations == EPOCHS * 5
    assert model.rng.counter == eager_model.rng.counter


def test_compile_true_takes_a_callback_s_new_rate_by_going_on_eagerly(chosen):
    """The first epoch's last full batch is recorded; the rate changes after it."""
    options = {"callbacks": [nb.callbacks.LambdaCallback(slow_down)]}
    with nb.backend.fused(False), pytest.warns(RuntimeWarning, match="changed during the fit"):
        replayed = train("numpy", True, nb.optim.Adam(0.05), chosen, dropping(), **options)
    with nb.backend.fused(False):
        eager = train("numpy", False, nb.optim.Adam(0.05), None, dropping(), **options)
    assert_same_fit(replayed, eager)
    assert chosen.calls == {"warm": 3, "record": 1, "replay": 0}


class FailingRerun(Rerun):
    """A recording that fails part way, as a capture can: the step's Python has counted
    and drawn, but a capture runs no kernel, so no array has changed."""

    def record(self, step, xb, yb):
        self.calls["record"] += 1
        self.optimizer.iterations += 1
        self.model.rng.advance(2)
        raise RuntimeError("operation not permitted when stream is capturing")


def test_compile_true_goes_on_eagerly_where_the_recording_fails(monkeypatch):
    failing = FailingRerun()
    monkeypatch.setattr(replay, "recorder_for", lambda backend: failing)
    monkeypatch.setattr(replay, "records_here", lambda backend, m, o: replay.replayable(m, o))
    with nb.backend.fused(False), pytest.warns(RuntimeWarning, match="could not be recorded"):
        replayed = train("numpy", True, nb.optim.Adam(0.01), failing, dropping())
    with nb.backend.fused(False):
        eager = train("numpy", False, nb.optim.Adam(0.01), None, dropping())
    assert_same_fit(replayed, eager)
    assert failing.calls == {"warm": 3, "record": 1, "replay": 0}
    with pytest.raises(RuntimeError, match="could not be recorded.*compile='inductor'"):
        train("numpy", "cuda-graph", nb.optim.Adam(0.01), failing, dropping())


def test_a_cuda_graph_needs_the_fused_kernels():
    gpu = SimpleNamespace(name="torch:cuda", device=SimpleNamespace(type="cuda"))
    with nb.backend.fused(False), pytest.raises(ValueError, match="needs the fused kernels"):
        replay.recorder_for(gpu)


def test_a_cuda_graph_needs_torch_on_cuda():
    X, y = data()
    for name in ("numpy", "strict"):
        with pytest.raises(ValueError, match="backend='torch:cuda', not"):
            model_on(name).fit(X, y, loss="cross_entropy", optimizer="sgd", verbose=0,
                               compile="cuda-graph")  # fmt: skip


@pytest.mark.parametrize("name", [p for p in BACKEND_PARAMS if p.values[0] == "torch:cuda"])
@pytest.mark.parametrize(
    ("make", "layers"),
    [
        (lambda: nb.optim.Momentum(0.05), tuple),
        (lambda: nb.optim.Adam(0.01), tuple),
        (lambda: nb.optim.SGD(0.1), lambda: (Dense(3, 8), BatchNorm(8), "relu", Dense(8, 2))),
        (lambda: nb.optim.SGD(0.1), lambda: (Dense(3, 8), "relu", Dropout(0.5), Dense(8, 2))),
    ],
    ids=["momentum", "adam", "batchnorm", "dropout"],
)
def test_a_cuda_graph_gives_the_eager_weights(name, make, layers):
    if not nb.backend.torch_cuda_available():
        pytest.skip("torch sees no CUDA device")
    backend = nb.get_backend(name, dtype="float64")
    eager, eager_history, _ = train(backend, False, make(), layers=layers(), shuffle=True)
    replayed, history, opt = train(backend, "cuda-graph", make(), layers=layers(), shuffle=True)
    for got, want in [(replayed.state, eager.state), (replayed.params, eager.params)]:
        for key in want:
            np.testing.assert_allclose(nb.to_numpy(got[key]), nb.to_numpy(want[key]),
                                       rtol=1e-12, atol=1e-14)  # fmt: skip
    np.testing.assert_allclose(history["loss"], eager_history["loss"], rtol=1e-12)
    assert opt.iterations == EPOCHS * 5
    start = model_on(backend, *layers()).params  # it trained: not two starts compared
    assert max(float(np.max(np.abs(nb.to_numpy(eager.params[k] - start[k])))) for k in start) > 1e-3


@pytest.mark.parametrize("name", [p for p in BACKEND_PARAMS if p.values[0] == "torch:cuda"])
def test_compile_true_on_torch_cuda_replays_a_cuda_graph(name, monkeypatch):
    if not nb.backend.torch_cuda_available():
        pytest.skip("torch sees no CUDA device")
    replays, replay_graph = [], replay.CudaGraph.replay

    def counted(graph):
        replays.append(graph)
        replay_graph(graph)

    monkeypatch.setattr(replay.CudaGraph, "replay", counted)
    backend = nb.get_backend(name, dtype="float64")
    eager, eager_history, _ = train(backend, False, nb.optim.Adam(0.01), shuffle=True)
    replayed, history, _ = train(backend, True, nb.optim.Adam(0.01), shuffle=True)
    assert len(replays) == 1 + EPOCHS * 4 - 4  # the recording runs once as a replay
    for key, want in eager.params.items():
        np.testing.assert_allclose(nb.to_numpy(replayed.params[key]), nb.to_numpy(want),
                                   rtol=1e-12, atol=1e-14)  # fmt: skip
    np.testing.assert_allclose(history["loss"], eager_history["loss"], rtol=1e-12)


EMULATED = {
    "sgd": (lambda: nb.optim.SGD(0.1), tuple, {}, 0),
    "momentum, shuffled": (lambda: nb.optim.Momentum(0.05), tuple, {"shuffle": True}, 0),
    "adam and a schedule": (lambda: nb.optim.Adam(SCHEDULES[1]()), tuple, {}, 1e-6),
    # fused kernels on: a rate worked out on the device must reach SGD's and Momentum's
    "sgd and a schedule": (lambda: nb.optim.SGD(SCHEDULES[1]()), tuple, {}, 1e-6),
    "momentum and a schedule": (lambda: nb.optim.Momentum(SCHEDULES[0](), 0.5), tuple, {}, 1e-6),
    "scikit-learn's adam": (lambda: EfficientAdam(0.01), tuple, {}, 1e-6),
    "dropout": (lambda: nb.optim.SGD(0.1), lambda: (Dense(3, 8), "relu", Dropout(0.5),
                                                    Dense(8, 2)), {}, 0),
    "batchnorm": (lambda: nb.optim.SGD(0.1), lambda: (Dense(3, 8), BatchNorm(8), "relu",
                                                      Dense(8, 2)), {}, 0),
    "the whole set": (lambda: nb.optim.SGD(0.1), tuple, {"batch_size": None, "epochs": 8}, 0),
    "a weight set before the recording": (
        lambda: nb.optim.SGD(0.1), tuple,
        {"batch_size": 20, "callbacks": [nb.callbacks.LambdaCallback(halve_the_first_weights)]}, 0,
    ),
}  # fmt: skip


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
@pytest.mark.parametrize("case", EMULATED)
def test_replays_of_the_operators_alone_equal_eager_with_no_host_traffic(monkeypatch, case):
    """With ``AtenRecording`` (a replay reruns the recorded torch operators and no
    Python), on torch's CPU: what a real graph would replay trains as eager does, and
    recording neither waits for the device nor copies host data to it."""
    from tests.graph_emulation import AtenRecording

    recording = AtenRecording()
    monkeypatch.setattr(replay, "recorder_for", lambda backend: recording)
    make, layers, options, tolerance = EMULATED[case]
    replayed, history, _ = train("torch", "cuda-graph", make(), layers=layers(), **options)
    eager, eager_history, _ = train("torch", False, make(), layers=layers(), **options)
    assert recording.calls["record"] == 1 and recording.calls["replay"] > 0
    assert recording.refused == []
    for got, want in [(replayed.state, eager.state), (replayed.params, eager.params)]:
        for key in want:
            np.testing.assert_allclose(nb.to_numpy(got[key]), nb.to_numpy(want[key]),
                                       rtol=tolerance, atol=tolerance)  # fmt: skip


class _ReadsOnTheHost(nb.layers.Layer):
    """An identity whose forward asks the host something of its input."""

    def __init__(self, how: str):
        super().__init__()
        self.how = how

    def forward(self, x, training=False):
        xp = self.backend.xp
        {"to_numpy": lambda: nb.to_numpy(x), "if": lambda: bool(xp.any(x > 100)),
         "nonzero": lambda: xp.nonzero(x > 0)}[self.how]()  # fmt: skip
        return x

    def backward(self, dy, input_grad=True):
        return dy


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
@pytest.mark.parametrize("how", ["to_numpy", "if", "nonzero"])
def test_the_emulation_notes_what_a_real_recording_refuses(monkeypatch, how):
    """A GPU's recording fails at each of these (each waits for the device); on the
    CPU the emulation must say so, or the test above could not see one in a step."""
    from tests.graph_emulation import AtenRecording

    recording = AtenRecording()
    monkeypatch.setattr(replay, "recorder_for", lambda backend: recording)
    layers = (Dense(3, 8), _ReadsOnTheHost(how), Dense(8, 2))
    try:
        train("torch", "cuda-graph", nb.optim.SGD(0.1), layers=layers)
    except RuntimeError:  # a replay of nonzero's recorded size may not fit the next batch
        pass
    assert recording.refused, how


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
def test_why_the_fused_kernels_must_be_on_the_standard_relu_copies_its_zero(monkeypatch):
    """What ``recorder_for`` refuses: with them off, a recording would copy host data."""
    from tests.graph_emulation import AtenRecording

    recording = AtenRecording()
    monkeypatch.setattr(replay, "recorder_for", lambda backend: recording)
    with nb.backend.fused(False):
        train("torch", "cuda-graph", nb.optim.SGD(0.1), layers=(Dense(3, 8), "relu", Dense(8, 2)))
    assert {name for name, _ in recording.refused} == {"aten::lift_fresh"}


def test_after_a_replayed_fit_the_generator_draws_from_its_state_again(rerun):
    """The recorded step's device counter let go of the generator: a state loaded
    after the fit (a checkpoint's) draws its own bits."""
    layers = (Dense(3, 8), "relu", Dropout(0.5), Dense(8, 2))
    model, _, _ = train("numpy", "cuda-graph", nb.optim.SGD(0.1), rerun, layers)
    other = nb.Generator(7)
    model.rng.state = other.state
    np.testing.assert_array_equal(model.rng.random_bits((4, 4)), other.random_bits((4, 4)))


class RecordingRefused(Rerun):
    def record(self, step, xb, yb):
        raise ValueError("a custom layer's own error")


def test_an_error_that_is_not_the_recordings_reaches_the_user(monkeypatch):
    """Only the recorder's RuntimeError is said as a recording that could not be made."""
    monkeypatch.setattr(replay, "recorder_for", lambda backend: RecordingRefused())
    with pytest.raises(ValueError, match="a custom layer's own error"):
        train("numpy", "cuda-graph", nb.optim.SGD(0.1))
