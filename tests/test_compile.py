"""fit(..., compile=...): the training step captured with torch.compile gives the
weights the eager step gives. "aot_eager" traces and functionalises the step (the
in-place updates included) without generating code, so it needs no C++ compiler and
compiles in seconds; inductor's code generation is the benchmark's business."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import nnbackend as nb
from tests.conftest import HAVE_TORCH


def moons_like(n=64):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 2))
    return X, (X[:, 0] * X[:, 1] > 0).astype(np.int64)


def fit_weights(compile, optimizer):
    X, y = moons_like()
    model = nb.Sequential(
        [nb.layers.Dense(2, 5), "tanh", nb.layers.Dense(5, 2)], backend="torch", seed=0,
        dtype="float64",
    )  # fmt: skip
    history = model.fit(X, y, loss="cross_entropy", optimizer=optimizer, epochs=4,
                        batch_size=16, l2=0.01, verbose=0, seed=0, compile=compile)  # fmt: skip
    return {name: nb.to_numpy(a) for name, a in model.params.items()}, history["loss"]


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
def test_compiled_step_gives_the_eager_weights():
    """Adam: its moments and step count live outside the captured tensors."""
    torch = pytest.importorskip("torch")
    if not hasattr(torch, "compile"):
        pytest.skip(f"torch {torch.__version__} has no torch.compile")
    eager, eager_loss = fit_weights(False, "adam")
    compiled, compiled_loss = fit_weights("aot_eager", "adam")
    for name, want in eager.items():
        np.testing.assert_allclose(compiled[name], want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(compiled_loss, eager_loss, rtol=1e-12)
    assert eager_loss[-1] < eager_loss[0]  # it trained: the comparison is not of two starts


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
def test_later_fits_reuse_the_captured_step():
    """torch gives up on a function after 8 recompiles and runs it eagerly from then on:
    the fits of a grid search (new models, same shapes) must run the graphs made once."""
    torch = pytest.importorskip("torch")
    if not hasattr(torch, "compile"):
        pytest.skip(f"torch {torch.__version__} has no torch.compile")
    graphs = []

    def counting_backend(graph, example_inputs):  # runs the captured graph as it is
        graphs.append(graph)
        return graph.forward

    X, y = moons_like()

    def fit_a_new_model(seed):
        model = nb.Sequential(
            [nb.layers.Dense(2, 5), "tanh", nb.layers.Dense(5, 2)], backend="torch",
            seed=seed, dtype="float64",
        )  # fmt: skip
        model.fit(X, y, loss="cross_entropy", optimizer="sgd", epochs=2, batch_size=16,
                  verbose=0, compile=counting_backend)  # fmt: skip

    torch._dynamo.reset()  # other tests' captures of the step do not count here
    for seed in range(2):
        fit_a_new_model(seed)
    made = len(graphs)
    for seed in range(2, 12):
        fit_a_new_model(seed)
    assert made > 0 and len(graphs) == made


NETS = {  # (layers, a batch of inputs)
    "tanh": (lambda: [nb.layers.Dense(2, 5), "tanh", nb.layers.Dense(5, 2)], (16, 2)),
    "relu": (lambda: [nb.layers.Dense(2, 5), "relu", nb.layers.Dense(5, 2)], (16, 2)),
    "conv": (
        lambda: [
            nb.layers.Conv2D(1, 3, 3),
            "relu",
            nb.layers.MaxPool2D(2),
            nb.layers.Flatten(),
            nb.layers.Dense(12, 2),
        ],
        (16, 1, 6, 6),
    ),  # fmt: skip
}


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
@pytest.mark.parametrize("net", list(NETS))
def test_the_step_is_captured_whole(net):
    """No graph break: a break cuts the step into several graphs with eager code
    between them, each a dispatch of its own (an empty ``grad_buffers`` once broke the
    capture at Dense's backward, a dict comprehension at the L2 term, and the fast
    paths' ContextVar switch at every conv and pooling layer)."""
    torch = pytest.importorskip("torch")
    if not hasattr(torch, "compile"):
        pytest.skip(f"torch {torch.__version__} has no torch.compile")
    layers, shape = NETS[net]
    model = nb.Sequential(layers(), backend="torch", seed=0)
    loss, l2 = nb.losses.SoftmaxCrossEntropy(), nb.losses.L2(0.01)
    step = model.step_function(loss, nb.optim.Adam(), l2, flat=False)  # as fit compiles it
    rng = np.random.default_rng(0)
    xb = model.backend.asarray(rng.normal(size=shape))
    yb = model.backend.asarray(rng.integers(0, 2, shape[0]))
    step(xb, yb)  # once eagerly: the caches a fit fills before it compiles (compile_step)
    torch._dynamo.reset()
    explained = torch._dynamo.explain(step)(xb, yb)
    assert explained.graph_break_count == 0, explained.break_reasons


def test_compile_names_the_backend_it_needs():
    X, y = moons_like(8)
    model = nb.Sequential([nb.layers.Dense(2, 2)], backend="numpy", seed=0)
    with pytest.raises(ValueError, match="torch backend"):
        model.fit(X, y, loss="cross_entropy", optimizer="sgd", verbose=0, compile=True)
    with pytest.raises(TypeError, match="compile must be"):
        model.fit(X, y, loss="cross_entropy", optimizer="sgd", verbose=0, compile=3)


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
def test_inductor_with_dropout_on_a_cpu_is_refused_and_aot_eager_is_not():
    """Inductor did not finish compiling the Dropout masks' counter-based draws on a CPU
    (14 minutes and 6 GB in); aot_eager captures the same step in seconds."""
    X, y = moons_like(32)
    layers = [nb.layers.Dense(2, 8), nb.layers.Dropout(0.2), nb.layers.Dense(8, 2)]
    model = nb.Sequential(layers, backend="torch", seed=0)
    fit = dict(loss="cross_entropy", optimizer="sgd", batch_size=16, verbose=0)
    for inductor in (True, "inductor"):  # the default, and by name
        with pytest.raises(ValueError, match="compile='aot_eager' captures the same step"):
            model.fit(X, y, compile=inductor, **fit)
    captured = model.fit(X, y, compile="aot_eager", **fit)
    assert np.isfinite(captured["loss"][-1])


SECOND_SHAPE = """
import json, sys
import numpy as np
import nnbackend as nb

def fit(n_in, hidden, activation, n, batch, compile):
    rng = np.random.default_rng(n_in)
    X, y = rng.random((n, n_in)).astype(np.float32), rng.integers(0, 3, n)
    layers = [nb.layers.Dense(n_in, hidden), activation, nb.layers.Dense(hidden, 3)]
    model = nb.Sequential(layers, backend="torch", dtype="float32", seed=0)
    model.fit(X, y, loss="cross_entropy", optimizer="adam", epochs=2, batch_size=batch,
              verbose=0, compile=compile)
    return {k: nb.to_numpy(v).tolist() for k, v in model.params.items()}

fit(2, 3, "tanh", 20, None, True)  # the first capture; the next one's shapes are symbolic
print(json.dumps([fit(2, 3, "tanh", 30, 8, how) for how in (True, False)]))
"""


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
def test_inductor_compiles_a_second_model_of_other_shapes(tmp_path):
    """torch's inductor (its default compiler, which generates C++) on a second model
    of the same kind whose batches differ from the first's (and whose last batch is
    smaller): torch then makes the shapes symbolic, which views into the flat buffer
    broke (generated code naming an undefined size). A captured step does without the
    buffer. In a child process: the capture is global."""
    torch = pytest.importorskip("torch")
    if not hasattr(torch, "compile"):
        pytest.skip(f"torch {torch.__version__} has no torch.compile")
    script = tmp_path / "second_shape.py"
    script.write_text(SECOND_SHAPE)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    compiled, eager = json.loads(done.stdout.splitlines()[-1])
    for name, want in eager.items():
        np.testing.assert_allclose(compiled[name], want, rtol=1e-4, atol=1e-5)


A_FIRST_FIT = """
import numpy as np
import nnbackend as nb

X = np.random.default_rng(0).normal(size=(64, 2))
y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
model = nb.Sequential([nb.layers.Dense(2, 5), "relu", nb.layers.Dense(5, 2)], backend="torch")
model.fit(X, y, loss="cross_entropy", optimizer="adam", epochs=2, batch_size=16, verbose=0,
          compile="aot_eager")
"""


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
def test_a_compiled_fit_warns_of_nothing(tmp_path):
    """torch.compile warns at each functools.lru_cache it traces, and array_api_compat
    finds a namespace through five of them: a fit looks its namespace up before the
    capture. In a child process, as a newcomer's first fit: both nnbackend's lookup and
    torch's warnings happen once a process. Its stderr has warnings and torch's log."""
    torch = pytest.importorskip("torch")
    if not hasattr(torch, "compile"):
        pytest.skip(f"torch {torch.__version__} has no torch.compile")
    script = tmp_path / "first_fit.py"
    script.write_text(A_FIRST_FIT)
    command = [sys.executable, "-W", "default", str(script)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr == ""


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
def test_compiled_step_updates_batchnorm_s_running_averages_as_eager_does():
    """The averages change in place inside the captured step: torch must carry that."""
    torch = pytest.importorskip("torch")
    if not hasattr(torch, "compile"):
        pytest.skip(f"torch {torch.__version__} has no torch.compile")
    X, y = moons_like()

    def fit(compile):
        layers = [nb.layers.Dense(2, 5), nb.layers.BatchNorm(5), "relu", nb.layers.Dense(5, 2)]
        model = nb.Sequential(layers, backend="torch", seed=0, dtype="float64")
        model.fit(X, y, loss="cross_entropy", optimizer="sgd", epochs=3, batch_size=16,
                  verbose=0, seed=0, compile=compile)  # fmt: skip
        return model

    eager, compiled = fit(False), fit("aot_eager")
    for name in ("1.running_mean", "1.running_var"):
        want = nb.to_numpy(eager.state[name])
        np.testing.assert_array_equal(nb.to_numpy(compiled.state[name]), want)
        assert not np.allclose(want, 0 if "mean" in name else 1)  # they moved
    for name, want in eager.params.items():
        np.testing.assert_array_equal(nb.to_numpy(compiled.params[name]), nb.to_numpy(want))


def captured_runs(model, X, y, optimizer="sgd", **options) -> int:
    """How many steps of a 2-epoch fit (batches of 16) ran a captured graph."""
    torch = pytest.importorskip("torch")
    if not hasattr(torch, "compile"):
        pytest.skip(f"torch {torch.__version__} has no torch.compile")
    runs = []

    def counting(graph, example_inputs):  # a torch.compile backend: runs the graph as is
        def run(*args):
            runs.append(1)
            return graph.forward(*args)

        return run

    model.fit(X, y, optimizer=optimizer, epochs=2, batch_size=16, verbose=0,
              compile=counting, **options)  # fmt: skip
    return len(runs)


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
def test_every_kind_of_model_keeps_its_captured_step():
    """torch keeps at most 8 captures on one code object: with one step code for every
    model, the fifth kind of model (of 12 here) ran eagerly, silently."""
    X, y = moons_like(24)
    for activation in ("tanh", "relu", "sigmoid"):
        for optimizer in ("sgd", "momentum", "adam", "rmsprop"):
            layers = [nb.layers.Dense(2, 4), activation, nb.layers.Dense(4, 2)]
            model = nb.Sequential(layers, backend="torch", seed=0)
            runs = captured_runs(model, X, y, loss="cross_entropy", optimizer=optimizer)
            assert runs >= 4, (activation, optimizer)  # 2 epochs of 2 steps


def test_a_kind_of_model_holds_its_rates_and_strengths():
    """torch's capture checks the learning rate and L2's strength as the numbers they
    are (torch 2.13 specialises the floats it reads off objects): sharing one code
    object, a grid search's fifth rate ran eagerly. Each rate gets a code object."""
    from nnbackend.backend import compiling

    model = nb.Sequential([nb.layers.Dense(2, 4), "tanh", nb.layers.Dense(4, 2)], seed=0)
    loss = nb.losses.SoftmaxCrossEntropy()

    def kind(optimizer, l2=None, loss=loss):
        return compiling._kind(model, loss, optimizer, l2)

    schedule = nb.schedules.ExponentialDecay(0.1, 0.5, 10)
    assert kind(nb.optim.Adam(0.1)) == kind(nb.optim.Adam(0.1))
    assert kind(nb.optim.Adam(0.1)) != kind(nb.optim.Adam(0.001))
    assert kind(nb.optim.Adam(0.1)) != kind(nb.optim.Adam(0.1, beta1=0.8))
    assert kind(nb.optim.SGD(schedule)) != kind(
        nb.optim.SGD(nb.schedules.ExponentialDecay(0.2, 0.5, 10))
    )
    assert kind(nb.optim.SGD(), nb.losses.L2(0.1)) != kind(nb.optim.SGD(), nb.losses.L2(0.5))
    assert kind(nb.optim.SGD(), nb.losses.L2(0.1)) != kind(nb.optim.SGD())
    assert kind(nb.optim.SGD()) != kind(nb.optim.Adam())
    assert kind(nb.optim.SGD()) != kind(
        nb.optim.SGD(), loss=nb.losses.SoftmaxCrossEntropy(reduction="sum")
    )


_RUNS: list = []


def _counted(graph, example_inputs):
    """Runs the graph aot_autograd made, counting the runs in ``_RUNS``."""
    from functorch.compile import make_boxed_func

    def run(*args):
        _RUNS.append(1)
        return graph(*args)

    return make_boxed_func(run)


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
def test_a_grid_search_over_rates_keeps_every_fit_captured():
    torch = pytest.importorskip("torch")
    if not hasattr(torch, "compile"):
        pytest.skip(f"torch {torch.__version__} has no torch.compile")
    from torch._dynamo.backends.common import aot_autograd

    counting = aot_autograd(fw_compiler=_counted)  # as "aot_eager" and inductor are made
    X, y = moons_like(32)
    for rate in (0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.2, 0.3, 0.5, 0.7):
        for l2 in (None, rate):
            model = nb.Sequential(
                [nb.layers.Dense(2, 4), "tanh", nb.layers.Dense(4, 2)], backend="torch", seed=0
            )
            _RUNS.clear()
            model.fit(X, y, loss="cross_entropy", optimizer=nb.optim.Momentum(rate),
                      l2=l2, epochs=2, batch_size=16, verbose=0,
                      compile=counting)  # fmt: skip
            assert len(_RUNS) == 4, (rate, l2)  # 2 epochs of 2 steps, every one captured


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
def test_models_of_one_kind_with_other_settings_keep_their_captured_step():
    """The capture is specialised on settings as well as types: a dtype, L2 on or off, a
    loss's reduction, a bias or none, a convolution's kernel and stride. Sharing one code
    object, the ninth such model ran eagerly."""
    X, y = moons_like(24)
    for dtype in ("float32", "float64"):
        for l2 in (None, 0.01):
            for reduction in ("mean", "sum"):
                for bias in (True, False):
                    layers = [nb.layers.Dense(2, 4, bias=bias), "tanh", nb.layers.Dense(4, 2)]
                    model = nb.Sequential(layers, backend="torch", seed=0, dtype=dtype)
                    loss = nb.losses.SoftmaxCrossEntropy(reduction=reduction)
                    settings = (dtype, l2, reduction, bias)
                    assert captured_runs(model, X, y, loss=loss, l2=l2) >= 4, settings
    images = np.random.default_rng(0).normal(size=(24, 1, 6, 6))
    for kernel in (1, 2, 3):
        for stride in (1, 2, 3):
            side = (6 - kernel) // stride + 1
            layers = [nb.layers.Conv2D(1, 2, kernel, stride=stride), "relu",
                      nb.layers.Flatten(), nb.layers.Dense(2 * side * side, 2)]  # fmt: skip
            model = nb.Sequential(layers, backend="torch", seed=0)
            assert captured_runs(model, images, y, loss="cross_entropy") >= 4, (kernel, stride)
