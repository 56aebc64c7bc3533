"""Data-parallel training (nnbackend.distributed): the pieces in one process on every
backend, then two ranks under ``mpiexec -n 2`` against one process.

The MPI tests launch ``mpiexec`` themselves (a few launches, each running many checks:
tests/mpi_worker.py) and skip, saying why, where mpi4py or mpiexec is missing.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import nnbackend as nb
from nnbackend.backend import namespace_of
from nnbackend.distributed import alike, collectives, parallel, world
from nnbackend.flat import ALIGN
from nnbackend.layers import BatchNorm, Dense
from tests import distributed_cases as cases
from tests.conftest import HAVE_CUDA

ROOT = Path(__file__).resolve().parents[1]
MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
HAVE_MPI = MPIEXEC is not None and importlib.util.find_spec("mpi4py") is not None
needs_mpi = pytest.mark.skipif(
    not HAVE_MPI, reason="needs mpi4py and mpiexec: pip install -e '.[mpi]' (mpi4py, MPICH)"
)


# --- one process ------------------------------------------------------------------


def test_importing_nnbackend_does_not_import_mpi4py():
    code = "import nnbackend, sys; print('mpi4py' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_plain_process_is_a_world_of_one(monkeypatch):
    for name in (*world.LAUNCH_SIZE_VARIABLES, world.FORCE_VARIABLE):
        monkeypatch.delenv(name, raising=False)
    assert not world.launched()
    joined = nb.distributed.init()
    assert (joined.rank, joined.size, joined.comm) == (0, 1, None)
    assert (nb.distributed.rank(), nb.distributed.world_size(), nb.distributed.is_main()) == (
        0, 1, True,
    )  # fmt: skip
    monkeypatch.setenv("PMI_SIZE", "1")
    assert not world.launched()
    monkeypatch.setenv("PMI_SIZE", "4")
    assert world.launched()


def test_nnbackend_mpi_reads_as_on_or_off(monkeypatch):
    for name in world.LAUNCH_SIZE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for text, joins in (("1", True), ("yes", True), ("0", False), ("false", False), ("", False)):
        monkeypatch.setenv(world.FORCE_VARIABLE, text)
        assert world.launched() is joins, text  # "false" joined MPI: anything but "0" did
    monkeypatch.setenv(world.FORCE_VARIABLE, "please")
    with pytest.raises(ValueError, match=r"\$NNBACKEND_MPI is 'please'"):
        world.launched()


def test_a_launch_without_mpi4py_says_what_to_install(monkeypatch):
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "4")
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "mpi4py" else real(name, *a)
    )
    said = r"OMPI_COMM_WORLD_SIZE=4.*pip install 'nnbackend\[mpi\]'"
    with pytest.raises(nb.distributed.DistributedError, match=said):
        nb.distributed.init()


def test_allreduce_grads_before_backward_says_so():
    """Called before backward, allreduce_grads passed in a plain process and failed to
    unpack an empty dict under mpiexec: the mistake showed only there, and unsaid."""
    model = nb.Sequential([Dense(2, 4), Dense(4, 2)], seed=0)
    with pytest.raises(ValueError, match=r"no gradients yet: call it after model\.backward"):
        nb.distributed.allreduce_grads(model, rows=4)
    X, y = np.zeros((4, 2)), np.array([0, 1, 0, 1])
    model.fit(X, y, loss="cross_entropy", optimizer="sgd", epochs=1, verbose=0)
    nb.distributed.allreduce_grads(model, rows=4)  # after a backward: a world of one's no-op


@pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None, reason="needs mpi4py")
def test_a_launch_that_mpi_sees_as_one_process_is_refused():
    """srun, or Open MPI's mpirun, starting the mpich wheel's mpi4py: each process saw a
    world of one and trained the whole job alone as rank 0, writing the same files."""
    env = {
        key: value for key, value in os.environ.items() if key not in world.LAUNCH_SIZE_VARIABLES
    }
    env.update(SLURM_STEP_NUM_TASKS="2", SLURM_PROCID="1", PYTHONPATH=str(ROOT))
    code = "import nnbackend as nb; w = nb.distributed.init(); print(w.rank, w.size)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode != 0 and out.stdout == ""
    assert "(SLURM_STEP_NUM_TASKS=2), but mpi4py's MPI" in out.stderr
    assert "sees a world of one: every rank would train alone" in out.stderr


def test_a_bad_timeout_is_refused(monkeypatch):
    with pytest.raises(ValueError, match="positive number of seconds"):
        nb.distributed.init(timeout=0)
    for text in ("soon", "0", "-5"):  # 0 and -5 named no variable
        monkeypatch.setenv(world.TIMEOUT_VARIABLE, text)
        said = f"NNBACKEND_TIMEOUT must be a positive number of seconds, not '{text}'"
        with pytest.raises(ValueError, match=said):
            nb.distributed.init()
    with pytest.raises(ValueError, match="gpu_collectives must be one of"):
        nb.distributed.init(timeout=10, gpu_collectives="gloo")


def test_a_distributed_fit_keeps_the_timeout_init_was_given(monkeypatch):
    """fit called init() again, which read $NNBACKEND_TIMEOUT over init(timeout=20): a
    hung rank was waited on 600 s, or a longer wait chosen for slow saves cut short."""
    monkeypatch.setattr(world, "_world", world.World())
    for name in (*world.LAUNCH_SIZE_VARIABLES, world.FORCE_VARIABLE):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(world.TIMEOUT_VARIABLE, "600")
    nb.distributed.init(timeout=20)
    X, y = nb.datasets.make_moons(40, seed=0)
    nb.Sequential([nb.layers.Dense(2, 2)], seed=0).fit(
        X, y, loss="cross_entropy", optimizer="sgd", verbose=0, distributed=True
    )
    assert nb.distributed.current().timeout == 20.0


def test_fit_distributed_in_a_plain_process_is_the_ordinary_fit(backend):
    case = cases.Case(backend.name, "float32", "adam", 0.01)
    alone, history = cases.train(case, distributed=False)
    same, same_history = cases.train(case, distributed=True)
    for name, w in cases.weights(alone).items():
        assert np.array_equal(w, cases.weights(same)[name])
    assert history.history == same_history.history


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_shares_are_blocks_in_rank_order(size):
    for rows in range(0, 23):
        blocks = [parallel.share(rows, r, size) for r in range(size)]
        assert [i for b in blocks for i in range(rows)[b]] == list(range(rows))
        sizes = [b.stop - b.start for b in blocks]
        assert sizes == sorted(sizes, reverse=True) and max(sizes) - min(sizes) <= 1


def test_pack_and_unpack_give_back_every_array(backend):
    xp = backend.xp
    arrays = [
        backend.asarray(np.arange(6.0).reshape(2, 3), dtype="float32"),
        backend.asarray(np.array([7, 8, 9]), dtype="int64"),
        backend.asarray(np.array(2.5), dtype="float32"),
        backend.asarray(np.ones((2, 1, 2)), dtype="float32"),
    ]
    flats, layout = collectives.pack(arrays)
    assert {k: tuple(f.shape) for k, f in flats.items()} == {"float32": (11,), "int64": (3,)}
    for before, after in zip(arrays, collectives.unpack(flats, layout), strict=True):
        assert after.dtype == before.dtype and after.shape == before.shape
        assert bool(xp.all(after == before))


def test_an_empty_share_gives_named_zero_gradients(backend):
    """A rank whose share of a small batch is empty runs forward and backward on no rows:
    its gradients exist (the allreduce needs them) and are zero."""
    net = cases.model(cases.Case(backend.name, "float32", "sgd", None))
    xp = backend.xp
    out = net.forward(backend.asarray(np.ones((3, 5)))[0:0, ...])
    net.backward(xp.zeros_like(out), input_grad=False)
    assert list(net.grads) == list(net.params)
    assert all(float(xp.max(xp.abs(g))) == 0.0 for g in net.grads.values())


class KeepingEngine:
    """The allreduce of a world of one (the sum over one rank is the array itself),
    keeping every message it was given."""

    def __init__(self):
        self.sent = []

    def allreduce(self, flat):
        self.sent.append(flat)
        return flat


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_data_parallel_step_sends_one_message(backend, monkeypatch, optimizer):
    """One message a step: where the backend has views, the model's own gradient buffer
    (summed in place) with the batch's loss and accuracy sums after it; on strict, the
    packed gradients. The weights end where ordinary steps leave them, bit for bit."""
    case = cases.Case(backend.name, "float64", optimizer, 0.01)
    engine = KeepingEngine()
    monkeypatch.setattr(parallel, "engine_for", lambda world, backend: engine)
    (X, y), _ = cases.data()
    alone, net = cases.model(case), cases.model(case)
    loss, metrics = nb.losses.SoftmaxCrossEntropy(), [nb.metrics.Accuracy()]
    step = parallel.DataParallel(world.World(), net, loss, cases.optimizer(case), metrics, 0.01)
    ordinary = alone.step_function(loss, cases.optimizer(case), nb.losses.L2(0.01))
    for start in range(0, 100, 10):
        rows = slice(start, start + 10)
        xb, yb = net.backend.asarray(X[rows]), net.backend.asarray(y[rows])
        value, _ = ordinary(xb, yb)
        (got, weight), (correct, _) = step.train_step(xb, yb)
        assert float(got) == pytest.approx(float(value), rel=1e-12)
        assert 0 <= float(correct) <= 10 and weight == 10
    n_weights = sum(math.prod(w.shape) for w in net.params.values())
    sizes = {tuple(m.shape) for m in engine.sent}
    if backend.has_views:  # each weight's view starts aligned (flat.ALIGN): gaps between
        size = int(net._flat.grads.whole.shape[0])
        assert n_weights + 2 <= size < n_weights + 2 + ALIGN * len(net.params)
        assert all(m is net._flat.grads.whole for m in engine.sent)
    else:
        size = n_weights + 2
    assert len(engine.sent) == 10 and sizes == {(size,)}
    for name, w in cases.weights(alone).items():
        assert np.array_equal(cases.weights(net)[name], w), name


class PythonMax(nb.metrics.Metric):
    """A metric of one's own that returns a Python float, not a 0-d array."""

    name = "python_max"

    def batch(self, out, target, loss):
        return float(nb.to_numpy(out).max()), 1


def step_of_ten_rows(backend, monkeypatch, metric):
    """A world of one's DataParallel step with ``metric``, and a batch of ten rows."""
    case = cases.Case(backend.name, "float64", "sgd", 0.01)
    monkeypatch.setattr(parallel, "engine_for", lambda world, backend: KeepingEngine())
    (X, y), _ = cases.data()
    net, loss = cases.model(case), nb.losses.SoftmaxCrossEntropy()
    step = parallel.DataParallel(world.World(), net, loss, cases.optimizer(case), [metric], 0)
    return step, net, net.backend.asarray(X[:10]), net.backend.asarray(y[:10])


def test_a_data_parallel_step_names_a_metric_that_returns_a_python_number(backend, monkeypatch):
    """The step refuses, by the metric's class name, what one process refuses at its
    first batch (not the stack's own error in the backend's words)."""
    step, net, xb, yb = step_of_ten_rows(backend, monkeypatch, PythonMax())
    with pytest.raises(TypeError, match=r"^PythonMax.batch returned \(.*0-d array of the"):
        step.train_step(xb, yb)


def test_a_data_parallel_step_takes_a_metrics_numpy_number_weight(backend, monkeypatch):
    """A weight of np.int64 (a number, as one process takes it) is summed as a Python
    number: strict refused to multiply its arrays by a NumPy scalar."""

    class RowsMax(nb.metrics.Metric):
        name = "rows_max"

        def batch(self, out, target, loss):
            return [namespace_of(out).max(out), np.int64(out.shape[0])]

    step, net, xb, yb = step_of_ten_rows(backend, monkeypatch, RowsMax())
    out = net.forward(xb, training=False)
    (_, weight), (rows_max, one) = step.train_step(xb, yb)
    assert float(rows_max) == pytest.approx(10 * float(nb.to_numpy(out).max()), rel=1e-12)
    assert one == 1 and weight == 10


def test_a_disagreement_names_each_rank_and_what_it_has():
    assert alike.disagreement("batch_size", [32, 32, 32]) is None
    said = alike.disagreement("batch_size", [32, 64, 32, 16])
    assert said == "batch_size: ranks 0, 2 have 32, rank 1 has 64, rank 3 has 16"


def test_values_that_differ_far_into_their_text_disagree_and_show_where():
    """Two models alike for their first 300 characters of config: told apart by their
    whole text, and shown from shortly before the first difference."""

    def config(activation: str) -> dict:
        layers = [Dense(5, 8), "tanh", Dense(8, 8), "tanh", Dense(8, 8), activation, Dense(8, 2)]
        return nb.Sequential(layers, seed=1).config()

    tanh, relu = config("tanh"), config("relu")
    differ_at = len(os.path.commonprefix([repr(tanh), repr(relu)]))
    assert differ_at > 300
    said = alike.disagreement("model", [tanh, relu, tanh])
    window = slice(differ_at - 60, None)  # to the end: fewer than 200 characters are left
    assert said == (
        f"model: ranks 0, 2 have ...{repr(tanh)[window]}, rank 1 has ...{repr(relu)[window]}"
    )
    assert "{'type': 'Tanh'}, {'type': 'Dense', 'n_in': 8, 'n_out': 2" in said
    assert "{'type': 'ReLU'}, {'type': 'Dense', 'n_in': 8, 'n_out': 2" in said
    early = alike.disagreement("model", [config("tanh"), {"short": 1}])
    assert early == f"model: rank 0 has {repr(tanh)[:200]}..., rank 1 has {{'short': 1}}"


class ThreadRanks:
    """Two "ranks" that are threads: ``for_rank(r)`` is rank r's ``whole_batch`` (the
    layer's hook in a data-parallel step), whose sum waits for the other's arrays."""

    def __init__(self, rows: int):
        self.rows, self.barrier, self.handed = rows, threading.Barrier(2, timeout=30), {}

    def for_rank(self, rank: int):
        return SimpleNamespace(rows=self.rows, sum=lambda arrays: self._sum(rank, arrays))

    def _sum(self, rank, arrays):
        self.handed[rank] = arrays
        self.barrier.wait()
        summed = [a + b for a, b in zip(self.handed[0], self.handed[1], strict=True)]
        self.barrier.wait()  # both have read the other's before either hands its next
        return summed


@pytest.mark.parametrize("rows", [(3, 2), (4, 1)])
def test_batchnorm_over_two_shares_is_batchnorm_over_the_batch(backend, rows):
    """BatchNorm given a whole_batch hook on each of two shares of a batch of 5 images
    (one share may hold one row): the outputs, input gradients and running statistics
    of the whole batch, and gradients that sum to its gradients."""
    rng = np.random.default_rng(0)
    x, dy = rng.standard_normal((2, 5, 3, 2, 2)) * 2 + 1
    as_array = functools.partial(backend.asarray, dtype="float64")
    layers = [BatchNorm(3) for _ in range(3)]
    for layer in layers:
        layer.build(backend.with_dtype("float64"), nb.Generator(0))
    whole = layers[0]
    y, dx = whole.forward(as_array(x)), whole.backward(as_array(dy))
    ranks, blocks = ThreadRanks(5), [slice(0, rows[0]), slice(rows[0], 5)]
    results = {}

    def share(r):
        layer = layers[1 + r]
        layer.whole_batch = ranks.for_rank(r)
        out = layer.forward(as_array(x[blocks[r]]))
        results[r] = (out, layer.backward(as_array(dy[blocks[r]])))

    threads = [threading.Thread(target=share, args=(r,)) for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, expected in enumerate((y, dx)):
        got = np.concatenate([backend.to_numpy(results[r][i]) for r in (0, 1)])
        np.testing.assert_allclose(got, backend.to_numpy(expected), rtol=0, atol=1e-12)
    for name in ("gamma", "beta"):
        summed = sum(backend.to_numpy(layer.grads[name]) for layer in layers[1:])
        np.testing.assert_allclose(summed, backend.to_numpy(whole.grads[name]), atol=1e-12)
    for name in ("running_mean", "running_var"):
        for layer in layers[1:]:
            np.testing.assert_allclose(
                backend.to_numpy(layer.state[name]), backend.to_numpy(whole.state[name]),
                rtol=0, atol=1e-14,
            )  # fmt: skip


def test_alone_the_manual_pieces_change_nothing(backend):
    net = cases.model(cases.Case(backend.name, "float64", "sgd", None))
    out = net.forward(net.backend.asarray(np.ones((4, 5))))
    net.backward(out, input_grad=False)
    before = {name: nb.to_numpy(g).copy() for name, g in net.grads.items()}
    nb.distributed.allreduce_grads(net, rows=4)
    nb.distributed.broadcast(net, nb.optim.Adam())
    assert all(np.array_equal(nb.to_numpy(net.grads[n]), g) for n, g in before.items())
    assert nb.distributed.my_share(10) == slice(0, 10)


def test_the_data_check_sees_rows_in_another_order(backend):
    """Ranks that each shuffled the data with a seed of their own hold the same rows,
    whose plain sums agree: the sums by row number tell them apart; the sums by column
    number tell features (or one-hot classes) in another order apart."""
    from nnbackend.distributed.fingerprints import checksums as _checksums

    X, y = nb.datasets.make_moons(30, noise=0.2, seed=0)
    order = np.random.default_rng(1).permutation(30)
    same = _checksums(backend.asarray(X), backend.asarray(y))
    moved = _checksums(backend.asarray(X[order]), backend.asarray(y[order]))
    assert same == _checksums(backend.asarray(X), backend.asarray(y))
    assert (same[0], same[3]) == (moved[0], moved[3]) and same != moved
    swapped = _checksums(backend.asarray(X[:, ::-1]), backend.asarray(y))  # features' order
    assert swapped[:2] == same[:2] and swapped[2] != same[2]
    one_hot = np.eye(3)[np.minimum(np.arange(30) // 8, 2)]  # 8, 8 and 14 of the classes
    flipped = _checksums(backend.asarray(X), backend.asarray(one_hot[:, ::-1]))
    assert flipped[3:5] == _checksums(backend.asarray(X), backend.asarray(one_hot))[3:5]
    assert flipped != _checksums(backend.asarray(X), backend.asarray(one_hot))
    empty = _checksums(backend.asarray(X[:0]), backend.asarray(y[:0]))
    zero = ("0.00000000000 of 0", "0.00000000000", "0.00000000000")
    assert empty == zero * 2


def test_a_nan_loss_raised_in_a_distributed_fit_is_every_ranks():
    """TerminateOnNaN judges the global batch's loss, so every rank raises: marked so,
    none is left waiting (unmarked, a script that caught it ended the job, status 1)."""
    fit = SimpleNamespace(distributed=True, epochs=2, log_every=1, optimizer=nb.optim.SGD(0.1),
                          loss=nb.losses.MSE())  # fmt: skip
    for distributed in (True, False):
        stop = nb.callbacks.TerminateOnNaN(raise_error=True)
        stop.on_train_begin(None, SimpleNamespace(**{**vars(fit), "distributed": distributed}))
        with pytest.raises(FloatingPointError, match="loss became nan") as raised:
            stop.on_epoch_end(0, {"loss": math.nan}, None)
        assert raised.value.every_rank is distributed


def test_a_fit_of_one_ranks_own_writes_its_checkpoint_on_any_rank(tmp_path, monkeypatch):
    """Only rank 0 writes a distributed fit's checkpoints (the two-rank runs check it);
    a fit each rank runs by itself (distributed=False) writes its own, and resumes."""
    monkeypatch.setattr(world.current(), "rank", 1)
    cases.train(cases.CASES[0], distributed=False, epochs=2, checkpoint=tmp_path / "ckpt.h5")
    assert nb.load(tmp_path / "ckpt.h5", with_optimizer=True)[2] == 1


def test_the_examples_flag_joins_mpi_first():
    parser = nb.cli.example_parser("x", distributed=True)
    args = parser.parse_args(["--distributed", "--backend", "numpy"])
    assert args.distributed and nb.cli.backend_from_args(args).name == "numpy"
    assert not nb.cli.example_parser("x").parse_args([]).__dict__.get("distributed")


# --- two ranks --------------------------------------------------------------------


def mpiexec(*args: str, timeout: float = 300) -> tuple[subprocess.CompletedProcess, float]:
    """``mpiexec -n 2 python ARGS`` from the project's root, one BLAS thread per rank;
    the result and its wall time. Past ``timeout`` the whole launch (mpiexec, its
    proxies and ranks: one process group) is killed, and the test fails."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    command = [MPIEXEC, "-n", "2", sys.executable, *args]
    start = time.monotonic()
    launch = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )  # fmt: skip
    try:
        out, err = launch.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(launch.pid, signal.SIGKILL)
        out, err = launch.communicate()
        pytest.fail(f"mpiexec ran past {timeout} s: {' '.join(args)}\n{err[-3000:]}")
    seconds = time.monotonic() - start
    return subprocess.CompletedProcess(command, launch.returncode, out, err), seconds


@needs_mpi
def test_rank_and_is_main_before_init_answer_for_the_job():
    """A script guarding its prints or saves with is_main() before fit(distributed=True)
    joined the job got True on every rank, each "rank 0 of 1"."""
    code = (
        "import nnbackend as nb; "
        "print('A=%s %s;' % (nb.distributed.is_main(), nb.distributed.rank()))"
    )
    result, _ = mpiexec("-c", code, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    # One write a rank, marked: print's pieces from two ranks interleaved on a line.
    assert sorted(re.findall(r"A=(.*?);", result.stdout)) == ["False 1", "True 0"]


RETRY_AFTER_ONE_RANKS_ERROR = """
import nnbackend as nb
X, y = nb.datasets.make_moons(64, noise=0.2, seed=0)
model = nb.Sequential([nb.layers.Dense(2, 2)], seed=0)
def fail(epoch, logs, m):
    if nb.distributed.rank() == 1 and not fail.done:
        fail.done = True
        raise RuntimeError("once on rank 1")
fail.done = False
for attempt in range(2):
    try:
        model.fit(X, y, loss="cross_entropy", optimizer="sgd", epochs=3, verbose=0,
                  distributed=True, callbacks=[nb.callbacks.LambdaCallback(fail)])
        break
    except RuntimeError:
        pass
"""


@needs_mpi
def test_a_rank_fitting_again_after_its_own_error_ends_the_job_naming_it(monkeypatch):
    """Rank 1 caught an error of its own and fitted again while rank 0 was still in the
    first fit: their messages crossed (TypeError: 'bool' object is not subscriptable),
    or rank 0 waited out the watchdog, not knowing why."""
    monkeypatch.setenv("NNBACKEND_TIMEOUT", "100")
    result, seconds = mpiexec("-c", RETRY_AFTER_ONE_RANKS_ERROR, timeout=200)
    assert result.returncode != 0 and seconds < 90, result.stderr[-3000:]
    assert "not subscriptable" not in result.stderr
    assert "the ranks are at different points of the job: rank 0 in an allgather of " \
        "whether to stop; rank 1 in an allgather of what each rank trains (it left its " \
        "last distributed fit by RuntimeError: once on rank 1)" in result.stderr  # fmt: skip


REFUSED_ON_RANK_1 = """
import nnbackend as nb
class Refuses(nb.callbacks.Callback):
    def on_train_begin(self, model, fit):
        if nb.distributed.rank() == 1:
            raise ValueError("rank 1's log folder is missing")
X, y = nb.datasets.make_moons(64, noise=0.2, seed=0)
model = nb.Sequential([nb.layers.Dense(2, 2)], seed=0)
model.fit(X, y, loss="cross_entropy", optimizer="sgd", epochs=3, verbose=0,
          distributed=True, callbacks=[Refuses()])
"""


@needs_mpi
def test_a_callback_refusing_on_one_rank_ends_the_job_at_once_showing_where(monkeypatch):
    """Rank 0 went on to the checkpoint's broadcast and waited for rank 1 until the
    watchdog; then, told, it printed rank 1's error but no line of its traceback."""
    monkeypatch.setenv("NNBACKEND_TIMEOUT", "100")
    result, seconds = mpiexec("-c", REFUSED_ON_RANK_1, timeout=200)
    assert result.returncode != 0 and seconds < 60, result.stderr[-3000:]
    assert "in on_train_begin" in result.stderr  # rank 1's traceback
    assert "ValueError: rank 1's log folder is missing" in result.stderr


@needs_mpi
def test_ctrl_c_under_mpiexec_ends_every_rank_with_status_130():
    """Ctrl-C in a terminal reaches every rank: cli.run's status 130 became MPI_Abort's 1,
    each rank saying it "exited in the middle of a distributed fit"."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    command = [MPIEXEC, "-n", "2", sys.executable, "examples/mnist_two_layer.py", "--digits",
               "--distributed", "--epochs", "100000"]  # fmt: skip
    launch = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )  # fmt: skip
    try:
        while "epoch 0" not in launch.stdout.readline():  # training
            assert launch.poll() is None, launch.stderr.read()[-3000:]
        os.killpg(launch.pid, signal.SIGINT)  # as a terminal sends it: to the group
        _, err = launch.communicate(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(launch.pid, signal.SIGKILL)
    assert launch.returncode == 130, err[-3000:]
    assert "interrupted" in err and "exited in the middle" not in err


@needs_mpi
def test_broadcast_between_other_models_names_them():
    """The loop of one's own: broadcast(model) where ranks built other models ended in
    MPICH's "message sizes do not match across processes", after rank 0 went on."""
    code = (
        "import nnbackend as nb; nb.distributed.init(); "
        "width = 4 + 4 * nb.distributed.rank(); "
        "nb.distributed.broadcast(nb.Sequential([nb.layers.Dense(2, width)], seed=0)); "
        "print('went on', flush=True)"
    )
    result, _ = mpiexec("-c", code, timeout=120)
    assert result.returncode != 0 and "went on" not in result.stdout
    assert "the ranks do not run the same broadcast: model: rank 0 has " in result.stderr
    assert "Every rank must build the same model and give it the same optimizer" in result.stderr


# Before init(), under mpiexec: each rank's sum of the array the call makes alike. The
# ranks' prints may interleave on one line, hence the "S=...;" markers.
BEFORE_INIT = {
    "broadcast": (
        "m = nb.Sequential([nb.layers.Dense(2, 2)], seed=r); nb.distributed.broadcast(m); "
        "s = m.params['0.W']"
    ),
    "allreduce_grads": (
        "m = nb.Sequential([nb.layers.Dense(2, 2)], seed=0); "
        "m.forward(m.backend.asarray(np.full((3, 2), r + 1.0))); "
        "m.backward(m.backend.asarray(np.ones((3, 2)))); nb.distributed.allreduce_grads(m); "
        "s = m.grads['0.W']"
    ),
}


@needs_mpi
@pytest.mark.parametrize("call", sorted(BEFORE_INIT))
def test_a_collective_call_before_init_joins_the_job(call):
    """rank() and my_share() joined the job under mpiexec, but broadcast and
    allreduce_grads answered for a world of one before init(): each rank kept its own
    weights, or its own gradients."""
    code = (
        "import os, numpy as np, nnbackend as nb; r = int(os.environ['PMI_RANK']); "
        f"{BEFORE_INIT[call]}; print('S=%r;' % float(nb.to_numpy(s).sum()))"
    )
    result, _ = mpiexec("-c", code, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    first, second = re.findall(r"S=(.*?);", result.stdout)
    assert first == second and (call == "broadcast" or first == "18.0")


def ranks_trained(scenario: str, out: Path) -> list:
    """``mpi_worker SCENARIO`` run once: each rank's weights and report."""
    result, _ = mpiexec("-m", "tests.mpi_worker", scenario, str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    return [
        (dict(np.load(out / f"rank{r}.npz")), json.loads((out / f"rank{r}.json").read_text()))
        for r in (0, 1)
    ]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """Every check of ``mpi_worker train``, run once: each rank's weights and histories."""
    if not HAVE_MPI:
        pytest.skip("needs mpi4py and mpiexec: pip install -e '.[mpi]' (mpi4py, MPICH)")
    return ranks_trained("train", tmp_path_factory.mktemp("two_ranks"))


@pytest.fixture(scope="module")
def two_gpus(tmp_path_factory):
    """The cases on CuPy, two ranks on two GPUs summing with NCCL."""
    if not HAVE_MPI or gpu_count() < 2:
        pytest.skip("needs two CUDA GPUs, CuPy with NCCL, mpi4py and mpiexec")
    return ranks_trained("gpu", tmp_path_factory.mktemp("two_gpus"))


def gpu_count() -> int:
    if not HAVE_CUDA:
        return 0
    import cupy

    return cupy.cuda.runtime.getDeviceCount()


def assert_close(got: dict, expected: dict, dtype: str):
    """float64: 1e-10; float32: 8 ulps of the array's largest weight (the ranks add the
    gradient in another order, and scale each share before the sum)."""
    for name, w in expected.items():
        tolerance = 1e-10 if dtype == "float64" else 8 * float(np.spacing(np.abs(w).max()))
        assert np.abs(got[name] - w).max() <= tolerance, name


@needs_mpi
@pytest.mark.mpi
@pytest.mark.parametrize("case", cases.CASES, ids=lambda c: c.name)
def test_two_ranks_train_as_one_process(two_ranks, case):
    """50 steps on the same global batches: the same weights and the same history
    (loss, accuracy, top-2 accuracy, their validation values) as one process; and both
    ranks hold the very same weights."""
    check_as_one_process(two_ranks, case)


@pytest.mark.gpu
@pytest.mark.mpi
@pytest.mark.parametrize("case", cases.GPU_CASES, ids=lambda c: c.name)
def test_two_gpus_train_as_one(two_gpus, case):
    """The same on CuPy, one GPU per rank, the sums made by NCCL."""
    check_as_one_process(two_gpus, case)


def check_as_one_process(ranks, case, key=None, train=cases.train):
    """The weights and history the ranks reported under ``key`` (default: the case's
    name) against ``train(case)`` in one process."""
    (weights0, report0), (weights1, _) = ranks
    key = key or case.name
    alone, history = train(case, distributed=False)
    mine = {k.split("/", 1)[1]: v for k, v in weights0.items() if k.startswith(key + "/")}
    assert mine.keys() == cases.weights(alone).keys()
    assert_close(mine, cases.weights(alone), case.dtype)
    assert all(np.array_equal(weights0[k], weights1[k]) for k in weights0)
    tolerance = 1e-12 if case.dtype == "float64" else 1e-6
    assert report0[key].keys() == history.history.keys()
    for name, values in history.history.items():
        np.testing.assert_allclose(report0[key][name], values, rtol=0, atol=tolerance)


@needs_mpi
@pytest.mark.mpi
@pytest.mark.parametrize("case", cases.SUMMED_CASES, ids=lambda c: c.name)
def test_two_ranks_train_a_summed_loss_as_one_process(two_ranks, case):
    """A loss summed over the batch's rows (reduction="sum"): each rank's share adds
    its rows' gradients as they are, and the ranks' sum is the batch's. Scaled by its
    part of the batch, as a mean's share is, the step was about half of one process's."""
    check_as_one_process(two_ranks, case, f"summed {case.name}", cases.train_summed)


@pytest.mark.gpu
@pytest.mark.skipif(not HAVE_CUDA, reason="no CUDA device answers (CuPy)")
def test_nccl_steps_on_one_gpu_are_the_ordinary_steps():
    """The NCCL engine in a world of one GPU (the id, the stream, the dtypes, the
    buffers): ten data-parallel steps give the weights of ten ordinary ones."""
    case = cases.Case("cupy", "float64", "adam", 0.01)
    (X, y), _ = cases.data()
    one_gpu = world.World(gpu_collectives="nccl")
    nets = [cases.model(case) for _ in range(2)]
    loss, backend = nb.losses.SoftmaxCrossEntropy(), nets[0].backend
    step = parallel.DataParallel(one_gpu, nets[1], loss, cases.optimizer(case), [], 0.01)
    assert type(step.engine).__name__ == "Nccl"
    plain, l2 = cases.optimizer(case), nb.losses.L2(0.01)
    for start in range(0, 100, 10):
        xb, yb = backend.asarray(X[start : start + 10]), backend.asarray(y[start : start + 10])
        nets[0].train_step(xb, yb, loss, plain, l2)
        step.train_step(xb, yb)
    assert_close(cases.weights(nets[1]), cases.weights(nets[0]), "float64")


@needs_mpi
@pytest.mark.mpi
def test_a_resumed_distributed_run_is_the_uninterrupted_one(two_ranks):
    """3 epochs with a checkpoint, then resumed to 5 in a model of other weights: rank
    0 read the file (rank 1's path never existed) and gave every rank its state."""
    assert_resumed_as_one_run(two_ranks, "resumed/", cases.Case("numpy", "float64", "adam", 0.01))


def assert_resumed_as_one_run(two_ranks, prefix: str, case):
    """The weights the ranks saved under ``prefix`` are one uninterrupted process's
    fit of ``case`` (float64: 1e-10), and the very same on both ranks."""
    (weights0, _), (weights1, _) = two_ranks
    alone, _ = cases.train(case, distributed=False)
    resumed = {k.removeprefix(prefix): v for k, v in weights0.items() if k.startswith(prefix)}
    assert resumed.keys() == cases.weights(alone).keys()
    assert_close(resumed, cases.weights(alone), "float64")
    assert all(np.array_equal(weights0[k], weights1[k]) for k in weights0 if k.startswith(prefix))


@needs_mpi
@pytest.mark.mpi
def test_a_resumed_run_gives_every_rank_early_stoppings_state(two_ranks):
    """4 epochs with EarlyStopping (best val_loss at epoch 3), resumed to 8: rank 0 read
    its state and told rank 1, so both stop after epoch 5, with epoch 3's weights, as
    one uninterrupted process. Told nothing, rank 1's EarlyStopping started afresh:
    epoch 4 its best, it put back epoch 4's weights and gave no stop reason."""
    (weights0, report0), (weights1, report1) = two_ranks
    alone, history = cases.train(
        cases.STOPPING_CASE, distributed=False, epochs=8, callbacks=[cases.early_stopping()]
    )
    reason = "early stop: val_loss did not improve for 2 epochs; best was epoch 3"
    assert len(history["loss"]) == 6 and history.stop_reason == reason
    key = "early stopping/"
    resumed = {k.removeprefix(key): v for k, v in weights0.items() if k.startswith(key)}
    assert resumed.keys() == cases.weights(alone).keys()
    assert_close(resumed, cases.weights(alone), "float64")
    assert all(np.array_equal(weights0[k], weights1[k]) for k in weights0 if k.startswith(key))
    expected = {"epochs": 2, "stop reason": reason}
    assert report0["early stopping"] == report1["early stopping"] == expected


@needs_mpi
@pytest.mark.mpi
def test_a_loop_of_ones_own_with_allreduce_grads(two_ranks):
    (weights0, _), (weights1, _) = two_ranks
    manual = {k.split("/", 1)[1]: v for k, v in weights0.items() if k.startswith("manual/")}
    assert_close(manual, cases.manual_loop(distributed=False), "float64")
    assert all(np.array_equal(weights0[k], weights1[k]) for k in weights0 if "manual" in k)


@needs_mpi
@pytest.mark.mpi
def test_the_documented_loop_of_ones_own_is_one_process_on_uneven_shares(two_ranks):
    """The loop in nnbackend.distributed's docstring, as written: a batch of 99 rows
    split 50 + 49 still gives one process's weights."""
    (weights0, _), (weights1, _) = two_ranks
    documented = {k.split("/", 1)[1]: v for k, v in weights0.items() if k.startswith("documented/")}
    assert documented.keys() == cases.documented_loop().keys()
    assert_close(documented, cases.documented_loop(), "float64")
    assert all(np.array_equal(weights0[k], weights1[k]) for k in weights0 if "documented" in k)


@needs_mpi
@pytest.mark.mpi
@pytest.mark.parametrize("layers", list(cases.WHOLE_BATCH_LAYERS))
def test_whole_batch_layers_on_two_ranks_train_as_one_process(two_ranks, layers):
    """Dropout: each rank draws its rows of the whole batch's mask, and every generator
    moves on as one process's. BatchNorm: mean and variance over both ranks' rows (a
    last batch of 2 rows is 1 + 1), the same running statistics on both ranks. The
    weights, running state, history and generator of one process."""
    (weights0, report0), (weights1, report1) = two_ranks
    alone, report = cases.train_whole_batch(layers, distributed=False)
    mine = {k.split("/", 1)[1]: v for k, v in weights0.items() if k.startswith(layers + "/")}
    assert mine.keys() == alone.keys()
    assert_close(mine, alone, "float64")
    assert all(np.array_equal(weights0[k], weights1[k]) for k in weights0 if layers in k)
    assert report0[layers]["generator"] == report1[layers]["generator"] == report["generator"]
    for name, values in report["history"].items():
        np.testing.assert_allclose(report0[layers]["history"][name], values, rtol=0, atol=1e-12)


@needs_mpi
@pytest.mark.mpi
def test_ranks_that_end_with_different_weights_are_told(two_ranks):
    """EarlyStopping on rank 0 alone put its best weights back there only: the ranks
    went on with different models, and nothing said so."""
    (_, report0), (_, report1) = two_ranks
    said = report0["early stopping on rank 0"]
    assert said == report1["early stopping on rank 0"]
    assert said.startswith("the ranks end the fit with different weights: a digest of the ")
    assert "rank 0 has" in said and "rank 1 has" in said and "must run on every rank" in said


@needs_mpi
@pytest.mark.mpi
def test_ranks_that_disagree_are_told_which_and_how(two_ranks):
    (_, report0), (_, report1) = two_ranks
    said = report0["disagreement"]
    assert said == report1["disagreement"]
    assert said.startswith("the ranks do not run the same fit: samples in X: rank 0 has 100, ")
    assert "rank 1 has 90" in said and "batch_size: rank 0 has 11, rank 1 has 12" in said


@needs_mpi
@pytest.mark.mpi
def test_ranks_that_disagree_on_l2_epochs_or_loss_are_refused_alike(two_ranks):
    """Rank 1 asked for an L2 penalty, 3 epochs and a summed loss: each is named, on
    both ranks. Not compared, the ranks trained apart (each its own penalty and loss
    on the summed gradients), and rank 0 left rank 1 waiting in its third epoch."""
    (_, report0), (_, report1) = two_ranks
    said = report0["other settings"]
    assert said == report1["other settings"]
    assert said.startswith("the ranks do not run the same fit: loss: rank 0 has ")
    assert "'reduction': 'mean'" in said and "'reduction': 'sum'" in said
    assert "epochs: rank 0 has 2, rank 1 has 3" in said
    assert "l2: rank 0 has None, rank 1 has 0.01" in said


@needs_mpi
@pytest.mark.mpi
def test_fused_kernels_on_one_rank_only_are_named(two_ranks):
    """It was MPI's "Message truncated": the flat buffer against packed gradients."""
    (_, report0), (_, report1) = two_ranks
    said = report0["fused on one rank"]
    assert said == report1["fused on one rank"]
    assert "fused kernels (NNBACKEND_FUSED): rank 0 has True, rank 1 has False" in said


@needs_mpi
@pytest.mark.mpi
def test_bad_validation_data_is_refused_alike_by_its_own_row(two_ranks):
    """Each rank checked its own share: rank 1 alone raised, of its row 10, and rank 0
    trained on, waiting for it."""
    (_, report0), (_, report1) = two_ranks
    said = "validation y holds 1 NaN or inf values (the first at index (25,))"
    assert report0["bad validation row"].startswith(said)
    assert report1["bad validation row"] == report0["bad validation row"]


@needs_mpi
@pytest.mark.mpi
def test_a_nan_fit_warns_once_for_the_job(two_ranks):
    """Rank 0 says the loss went NaN and that the checkpoint was not written; rank 1,
    which writes nothing, said both again. Both stop, and for the same reason."""
    (_, report0), (_, report1) = two_ranks
    stopped = "training loss became nan by epoch 0"
    assert report0["warnings of a NaN fit"] == {
        "warnings": [stopped, "ModelCheckpoint: epoch 0 not saved: its loss is nan"],
        "stop reason": stopped,
    }
    assert report1["warnings of a NaN fit"] == {"warnings": [], "stop reason": stopped}


@needs_mpi
@pytest.mark.mpi
def test_a_checkpoint_rank_0_cannot_read_is_an_error_on_every_rank(two_ranks):
    (_, report0), (_, report1) = two_ranks
    assert report0["bad checkpoint"] == report1["bad checkpoint"]
    assert report0["bad checkpoint"].startswith("CheckpointError: ")
    assert "garbage.h5" in report0["bad checkpoint"]


@needs_mpi
@pytest.mark.mpi
def test_only_rank_0_checks_the_checkpoint_folder_and_every_rank_hears(two_ranks):
    """Rank 1's checkpoint folder may be missing (the resumed run: rank 1's never
    existed); rank 0's missing one is an error on every rank alike."""
    (_, report0), (_, report1) = two_ranks
    assert report0["missing folder"] == report1["missing folder"]
    assert re.fullmatch(
        r"FileNotFoundError: checkpoint='.*/no-such-folder/ckpt.h5': its folder does not exist",
        report0["missing folder"],
    )


@needs_mpi
@pytest.mark.mpi
def test_a_resume_gives_every_rank_the_saved_rate(two_ranks):
    """Resumed by an SGD at 0.05 from a checkpoint of SGD at 0.5: rank 1 kept 0.05 while
    rank 0 took the saved rate, and the end of fit blamed a callback."""
    (_, report0), (_, report1) = two_ranks
    assert report0["saved rate"] == report1["saved rate"] == "none"
    assert_resumed_as_one_run(two_ranks, "saved rate/", cases.Case("numpy", "float64", "sgd", None))


@needs_mpi
@pytest.mark.mpi
def test_a_model_checkpoint_that_fails_on_rank_0_fails_on_every_rank(two_ranks):
    """Its checks and saves ran on rank 0 alone: a script that caught the error left
    rank 1 waiting in the next collective until the watchdog ended the job."""
    (_, report0), (_, report1) = two_ranks
    caught = report0["checkpoints that fail, caught"]
    assert caught == report1["checkpoints that fail, caught"]
    start, save, then = caught
    assert re.fullmatch(r"FileNotFoundError: .*no-such-folder/mc.h5.*", start)
    assert start.count("its folder does not exist") == 1
    assert save.startswith("FileNotFoundError: ") and "vanishing" in save
    assert then == "then 1 epoch"


@needs_mpi
@pytest.mark.mpi
def test_a_stop_on_one_rank_has_rank_0_save_the_last_epoch(two_ranks):
    """Rank 1's own callback stops after epoch 2 (log_every=5: only epoch 0 was saved
    as it ended): rank 0's checkpoint is of epoch 2, with the weights fit returned, as
    one process's would be."""
    (_, report0), _ = two_ranks
    expected = {"epochs": 3, "saved epoch": 2, "saved what fit returned": True}
    assert report0["stopped on rank 1"] == expected


@needs_mpi
@pytest.mark.mpi
def test_every_rank_reads_the_last_checkpoint_as_fit_returns(two_ranks):
    """Rank 0's last save starts 0.5 s late; every rank reads the file as soon as fit
    returns (one disk) and finds the last epoch, with the weights fit returned: fit
    waits for rank 0's last save. Without that wait, rank 1 read epoch 0's file."""
    (_, report0), (_, report1) = two_ranks
    expected = {"saved epoch": 1, "saved what fit returned": True}
    assert report0["read after fit"] == report1["read after fit"] == expected


@needs_mpi
@pytest.mark.mpi
def test_optimizers_a_rate_function_trains_and_another_models_is_refused_alike(two_ranks):
    """A plain function as the rate was refused (its config was compared); an Adam that
    trained another model was refused on rank 0 alone, and rank 1 waited forever."""
    (_, report0), (_, report1) = two_ranks
    assert report0["optimizers"] == report1["optimizers"]
    said = report0["optimizers"]
    assert len(said["function's losses"]) == 2
    assert said["another model"].startswith("Adam(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-08) ")
    assert "has taken 20 steps for another model" in said["another model"]


@needs_mpi
@pytest.mark.mpi
def test_a_rank_that_raises_ends_every_rank_and_the_checkpoint_stays(tmp_path):
    result, seconds = mpiexec("-m", "tests.mpi_worker", "fault", str(tmp_path), timeout=60)
    assert result.returncode != 0 and seconds < 30
    assert "RuntimeError: a failure on rank 1 only" in result.stderr
    assert "rank 1 of 2 ended with RuntimeError (above): ending all 2 ranks." in result.stderr
    assert "finished" not in result.stdout
    model, optimizer, epoch = nb.load(tmp_path / "ckpt.h5", with_optimizer=True)
    assert epoch == 1  # step 25 is in epoch 2: the checkpoint of epoch 1 is the last
    assert all(np.isfinite(nb.to_numpy(w)).all() for w in model.params.values())


@needs_mpi
@pytest.mark.mpi
def test_a_rank_that_hangs_is_ended_by_the_watchdog(tmp_path):
    """Rank 1 stops answering; rank 0 waits in the allreduce, and after the 3 s the
    worker set its watchdog ends both."""
    result, seconds = mpiexec("-m", "tests.mpi_worker", "hang", str(tmp_path), timeout=60)
    assert result.returncode != 0 and seconds < 30
    assert re.search(r"rank 0 of 2 waited \d+ s in a sum over the ranks \(MPI\): another "
                     r"rank has stopped or hung", result.stderr)  # fmt: skip
    assert nb.load(tmp_path / "ckpt.h5", with_optimizer=True)[2] == 1


@needs_mpi
@pytest.mark.mpi
def test_a_rank_that_exits_midway_ends_every_rank(tmp_path):
    """sys.exit(0) on rank 1 in the middle of an epoch: no exception hook sees it, but
    leaving a distributed fit aborts the job (the watchdog would take 60 s)."""
    result, seconds = mpiexec("-m", "tests.mpi_worker", "exit", str(tmp_path), timeout=120)
    assert result.returncode != 0 and seconds < 30
    assert "rank 1 of 2 exited in the middle of a distributed fit" in result.stderr


@needs_mpi
@pytest.mark.mpi
def test_a_rank_that_catches_its_own_error_and_exits_ends_every_rank(tmp_path):
    """try: fit(...) except Exception: sys.exit(1), the error on rank 1 alone: the fit
    forgot it was running on any exception, and rank 0 waited for the watchdog (60 s)."""
    result, seconds = mpiexec("-m", "tests.mpi_worker", "caught", str(tmp_path), timeout=120)
    assert result.returncode != 0 and seconds < 30
    assert "rank 1 caught a failure on rank 1 only" in result.stdout
    assert "rank 1 of 2 exited in the middle of a distributed fit" in result.stderr


FAILS_BEFORE_JOINING = """
import os, nnbackend as nb
if os.environ.get("PMI_RANK") == "1":
    raise RuntimeError("rank 1 cannot read its data")
X, y = nb.datasets.make_moons(40, noise=0.2, seed=0)
model = nb.Sequential([nb.layers.Dense(2, 2)], seed=0)
model.fit(X, y, loss="cross_entropy", optimizer="sgd", verbose=0, distributed=True)
"""


@needs_mpi
@pytest.mark.mpi
def test_a_rank_that_fails_before_joining_ends_every_rank():
    """Rank 1 raised before fit joined the job; rank 0 waited in MPI's start for ever
    (the watchdog starts after it)."""
    result, seconds = mpiexec("-c", FAILS_BEFORE_JOINING, timeout=120)
    assert result.returncode != 0 and seconds < 30
    assert "RuntimeError: rank 1 cannot read its data" in result.stderr
    assert "rank 1 of 2 ended with RuntimeError (above) before joining the job" in result.stderr


@pytest.mark.parametrize("case", ["repl", "ctrl-c"])
def test_the_hook_that_ends_a_job_leaves_a_repl_and_ctrl_c_alone(monkeypatch, case):
    """Under mpiexec, an error before joining joins the job to end it: a typo at a
    REPL (python -i) took the session down after 10 s, and Ctrl-C, which mpiexec passes
    to every rank, printed an abort on each."""
    from nnbackend.distributed import world

    seen = []
    monkeypatch.setattr(sys, "excepthook", lambda *args: seen.append(args[0]))
    monkeypatch.setattr(world, "init", lambda: pytest.fail("joined the job"))
    world._end_all_on_failure_before_joining()
    kind = ZeroDivisionError if case == "repl" else KeyboardInterrupt
    if case == "repl":
        monkeypatch.setattr(sys, "ps1", ">>> ", raising=False)
    sys.excepthook(kind, kind(), None)
    assert seen == [kind]  # printed as before, and no join


@needs_mpi
@pytest.mark.mpi
def test_an_error_before_joining_in_a_script_with_its_own_alarm_handler_ends():
    """A SIGALRM handler of the script's own cannot run while MPI's start holds the
    interpreter: the rank waited for ever where the others never join."""
    own_alarm = "import os, signal, nnbackend\nsignal.signal(signal.SIGALRM, lambda *a: None)\n"
    own_alarm += "if os.environ.get('PMI_RANK') == '1':\n    raise RuntimeError('plain')\n"
    result, seconds = mpiexec("-c", own_alarm, timeout=60)
    assert result.returncode != 0 and seconds < 30  # JOIN_SECONDS, then SIGALRM's default


ONE_RANK_STOPS = """
import argparse, nnbackend as nb
args = argparse.Namespace(distributed=True, backend=None, data="/nonexistent/on/rank/1")
nb.cli.backend_from_args(args)
if nb.distributed.rank() == 1:
    nb.cli.load_data(nb.datasets.load_catvnoncat, args)
nb.distributed.world.current().allgather(0, "what the others load")
"""


@needs_mpi
@pytest.mark.mpi
def test_a_command_line_error_on_one_rank_ends_every_rank(monkeypatch):
    """An example that stops on rank 1 (its --data folder missing there, say) after
    joining the job: a SystemExit no exception hook sees, so it ends the others itself
    rather than leaving them to the watchdog (60 s here)."""
    monkeypatch.setenv("NNBACKEND_TIMEOUT", "60")
    result, seconds = mpiexec("-c", ONE_RANK_STOPS, timeout=120)
    assert result.returncode != 0 and seconds < 30
    assert "rank 1 of 2: error: " in result.stderr and "--data FOLDER" in result.stderr


@needs_mpi
@pytest.mark.mpi
def test_the_mnist_example_on_two_ranks_learns_as_on_one():
    """``--distributed`` on two ranks: rank 0 alone prints, and the accuracies are
    those of one process (float32: the printed digits)."""
    args = ["examples/mnist_two_layer.py", "--digits", "--epochs", "2"]
    two, _ = mpiexec(*args, "--distributed")
    assert two.returncode == 0, two.stderr[-3000:]
    one = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True)
    assert one.returncode == 0, one.stderr[-3000:]
    lines = two.stdout.splitlines()
    assert sum(line.startswith("8x8 digits: ") for line in lines) == 1
    assert [line for line in lines if line.startswith("epoch ")] == [
        line for line in one.stdout.splitlines() if line.startswith("epoch ")
    ]
    accuracy = r"train accuracy ([\d.]+), test accuracy ([\d.]+)"
    assert re.search(accuracy, two.stdout).groups() == re.search(accuracy, one.stdout).groups()


@needs_mpi
@pytest.mark.mpi
@pytest.mark.parametrize("net", [[], ["--deep"]], ids=["plain", "deep"])
def test_the_conv_net_example_on_two_ranks_learns_as_on_one(net):
    """``mnist_cnn.py --distributed``: the same per-epoch accuracies as one process;
    ``--deep`` too, with its BatchNorm and Dropout layers."""
    args = ["examples/mnist_cnn.py", "--digits", "--epochs", "2", *net]
    two, _ = mpiexec(*args, "--distributed")
    assert two.returncode == 0, two.stderr[-3000:]
    one = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True)
    assert one.returncode == 0, one.stderr[-3000:]
    epochs = [line.split(" (")[0] for line in two.stdout.splitlines() if line.startswith("epoch")]
    assert len(epochs) == 2  # printed once, by rank 0
    assert epochs == [
        line.split(" (")[0] for line in one.stdout.splitlines() if line.startswith("epoch")
    ]


class TwoLikeRanks:
    """An engine whose sum is of two ranks holding the same arrays."""

    def allreduce(self, flat):
        return flat + flat


def test_validation_totals_add_up_in_float64_where_the_device_has_it(backend):
    """The ranks added their blocks' batch sums in float32 on the device: 5.7e-7 off one
    process's figure on 2 ranks. Here 1 and 2000 batches of 1e-8 each, per rank."""
    model = SimpleNamespace(backend=backend.with_dtype("float32"))
    ranks = object.__new__(parallel.DataParallel)
    ranks.model, ranks.engine, ranks.validation_rows = model, TwoLikeRanks(), 4000
    ranks.world = SimpleNamespace(size=2)
    one = model.backend.asarray(1.0)
    small = model.backend.asarray(1e-8)
    totals = ranks.validation_totals({"loss": ([(one, 1)] + [(small, 1)] * 2000, 4000)}, 0)
    ((value, weight),) = totals["loss"][0]
    float64 = backend.supports("float64")
    assert float(value) == pytest.approx(2 * (1 + 2000e-8), rel=1e-12 if float64 else 1e-6)
    assert totals["loss"][1] == 4000 and weight == 1
