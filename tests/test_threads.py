"""CPU threads: ``nb.set_num_threads`` limits NumPy's BLAS (threadpoolctl) and torch's
intra-op pool; under "auto", fit runs small steps on one thread and puts things back."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
import types

import numpy as np
import pytest
import threadpoolctl

import nnbackend as nb
from nnbackend.backend import threads
from nnbackend.layers import Dense, Tanh
from tests.conftest import HAVE_TORCH

if HAVE_TORCH:
    import torch

X, Y = nb.datasets.make_moons(64, seed=0)  # scikit-learn's own pools load here, not mid-test


def pools() -> dict[str, int]:
    """Threads of every BLAS/OpenMP pool loaded, and torch's when it is."""
    counts = {p["filepath"]: p["num_threads"] for p in threadpoolctl.threadpool_info()}
    if HAVE_TORCH:
        counts["torch"] = torch.get_num_threads()
    return counts


@pytest.fixture
def two_threads():
    """Every pool at 2 threads (whatever OPENBLAS_NUM_THREADS the run has), and the
    setting back at "auto" afterwards."""
    if HAVE_TORCH:
        previous_torch = torch.get_num_threads()
        torch.set_num_threads(2)
    with threadpoolctl.threadpool_limits(2):
        yield pools()
    nb.set_num_threads("auto")
    if HAVE_TORCH:
        torch.set_num_threads(previous_torch)


@pytest.fixture
def told(monkeypatch):
    """The counts given to torch.set_num_threads, in order."""
    counts = []
    real = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (counts.append(n), real(n)))
    return counts


needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")


def test_set_num_threads_limits_blas_and_torch_until_auto(two_threads):
    assert set(two_threads.values()) <= {1, 2}  # a pool built single-threaded stays at 1
    nb.set_num_threads(1)
    assert nb.get_num_threads() == 1
    assert set(pools().values()) == {1}
    nb.set_num_threads("auto")
    assert nb.get_num_threads() == "auto"
    assert pools() == two_threads


def test_fit_runs_small_steps_on_one_thread_and_restores(backend, two_threads):
    seen = []
    model = nb.Sequential([Dense(2, 8), Tanh(), Dense(8, 2)], backend=backend, seed=0)
    spy = nb.callbacks.LambdaCallback(lambda epoch, logs, m: seen.append(pools()))
    model.fit(X, Y, loss="cross_entropy", optimizer="sgd", epochs=2, callbacks=[spy], verbose=0)
    assert [set(counts.values()) for counts in seen] == [{1}, {1}]
    assert pools() == two_threads


@needs_torch
def test_every_fit_gives_torch_s_own_pool_one_thread(two_threads, told):
    """threadpoolctl's OpenMP limit makes torch report 1 thread already, so the second
    fit of a process never told torch's pool, which the first fit's end had put back at
    2: 7x to 90x slower with another process on the other core."""
    for _ in range(2):
        told.clear()
        model = nb.Sequential([Dense(2, 8), Tanh(), Dense(8, 2)], backend="torch", seed=0)
        model.fit(X, Y, loss="cross_entropy", optimizer="sgd", epochs=1, verbose=0)
        assert told == [1, 2]  # one thread for the fit, the count from before after it
    assert pools() == two_threads


@needs_torch
def test_a_count_set_reaches_torch_s_own_pool(two_threads, told):
    """threadpoolctl's OpenMP limit makes torch report 1 thread while its own pool stays
    at 2: set_num_threads(1) never told it, and torch's products ran at 2 threads (5x to
    20x slower with another process on the other core)."""
    nb.set_num_threads(1)
    assert told == [1]
    nb.set_num_threads("auto")
    assert told == [1, 2]  # the count from before, given back
    assert pools() == two_threads


def test_large_steps_and_explicit_settings(two_threads, monkeypatch):
    """Under "auto" a step of SMALL_STEP multiply-adds or more keeps the libraries'
    threads; a number set with set_num_threads holds inside fit whatever the size."""
    assert threads.threads_for_step(n_weights=50, batch_size=100) == 1
    assert threads.threads_for_step(n_weights=200_000, batch_size=100) is None
    monkeypatch.setattr(threads, "SMALL_STEP", 0)
    seen = []
    model = nb.Sequential([Dense(2, 2)], seed=0)
    spy = nb.callbacks.LambdaCallback(lambda epoch, logs, m: seen.append(pools()))
    model.fit(X, Y, loss="cross_entropy", optimizer="sgd", callbacks=[spy], verbose=0)
    assert seen == [two_threads]
    nb.set_num_threads(1)
    assert threads.threads_for_step(n_weights=200_000, batch_size=100) == 1


@pytest.mark.parametrize("bad", [0, -1, 1.5, "two", True, 10**12, {}])
def test_a_bad_thread_count_says_what_is_allowed(bad):
    """set_num_threads and limit_threads alike (10**12 was taken, and torch's own
    backend failed later to unpack it; limit_threads checked nothing)."""
    with pytest.raises(ValueError, match=r"a whole number from 1 to 32768 or 'auto', not"):
        nb.set_num_threads(bad)
    with pytest.raises(ValueError, match=r"a whole number from 1 to 32768 or 'auto', not"):
        with nb.limit_threads(bad):
            pass


def test_a_numpy_integer_is_a_thread_count(two_threads):
    """np.int64(2) is a whole number (it was refused), in a block too."""
    nb.set_num_threads(np.int64(1))
    assert nb.get_num_threads() == 1 and type(nb.get_num_threads()) is int
    nb.set_num_threads("auto")
    with nb.limit_threads(np.int64(1)):
        assert set(pools().values()) == {1}


def test_every_example_takes_threads(two_threads, capsys):
    parser = nb.cli.example_parser("x")
    args = parser.parse_args(["--threads", "1"])
    nb.cli.backend_from_args(args)
    assert nb.get_num_threads() == 1 and set(pools().values()) == {1}
    assert parser.parse_args(["--threads", "auto"]).threads == "auto"
    assert parser.parse_args([]).threads is None  # leaves the setting alone
    with pytest.raises(SystemExit):
        parser.parse_args(["--threads", "0"])
    assert "a number of threads from 1 to 32768, or auto, not '0'" in capsys.readouterr().err


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
def test_a_count_set_before_torch_is_imported_reaches_torch():
    """nb.set_num_threads(1) before any torch backend: making one applies it to torch
    (outside fit, which sets it again, nothing else would). A process of its own: this
    one has torch loaded."""
    script = (
        "import sys; import nnbackend as nb; nb.set_num_threads(1); "
        "assert 'torch' not in sys.modules; nb.get_backend('torch'); "
        "import torch; print(torch.get_num_threads())"
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == "1"


def blas_threads() -> set[int]:
    return {p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"}


def test_limits_closed_out_of_order_give_back_the_count_from_before(two_threads):
    """Two fits in two threads: BLAS's count is the process's, so the one that ends
    first must not undo the other's limit, and the last must not keep the first's."""
    before = blas_threads()
    first, second = threads.limit_threads(1), threads.limit_threads(1)
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert blas_threads() == {1}  # the second fit still runs
    second.__exit__(None, None, None)
    assert blas_threads() == before  # was {1}: the second had saved the first's limit
    with threads.limit_threads(1):
        with threads.limit_threads(2):
            assert blas_threads() <= {2}
        assert blas_threads() == {1}
    assert blas_threads() == before


def test_two_fits_in_two_threads_leave_blas_as_they_found_it(two_threads):
    """The first to start ends first: the second had saved the first's limit as the
    count to give back, and gave it back last."""
    threadpoolctl.OpenBLASController.clear_controlling_thread(force=True)  # none set yet
    before = blas_threads()
    first_in, second_in, first_done = threading.Event(), threading.Event(), threading.Event()

    def fit(on_epoch):
        model = nb.Sequential([Dense(2, 4), Dense(4, 2)], seed=0)
        spy = nb.callbacks.LambdaCallback(lambda epoch, logs, m: on_epoch())
        model.fit(X, Y, loss="cross_entropy", optimizer="sgd", callbacks=[spy], verbose=0)

    first = threading.Thread(target=fit, args=(lambda: (first_in.set(), second_in.wait()),))
    second = threading.Thread(target=fit, args=(lambda: (second_in.set(), first_done.wait()),))
    first.start()
    first_in.wait()
    second.start()
    first.join()
    first_done.set()
    second.join()
    assert blas_threads() == before


def test_a_setting_undone_while_the_thread_that_made_it_lives_is_undone(two_threads):
    """threadpoolctl lets the first thread that set OpenBLAS's count keep that right
    while it lives: set_num_threads(1) in a worker, then "auto" in the main thread,
    left BLAS at 1."""
    before = blas_threads()
    with a_live_worker_that(lambda: nb.set_num_threads(1)):
        assert blas_threads() == {1}
        nb.set_num_threads("auto")
        assert blas_threads() == before


@contextlib.contextmanager
def a_live_worker_that(start):
    """A thread that runs ``start()`` (entering it, where it gives a context manager)
    and lives, holding what it set, until the block ends. threadpoolctl's control of
    OpenBLAS, which the first thread to set it keeps, is free before it starts."""
    threadpoolctl.OpenBLASController.clear_controlling_thread(force=True)
    started, finish = threading.Event(), threading.Event()

    def worker():
        with start() or contextlib.nullcontext():
            started.set()
            finish.wait()

    alive = threading.Thread(target=worker)
    alive.start()
    started.wait()
    try:
        yield
    finally:
        finish.set()
        alive.join()


@needs_torch
def test_predict_in_another_thread_uses_the_count_set(two_threads):
    """torch keeps a thread count per thread: a predict in a worker ran at torch's default."""
    model = nb.Sequential([Dense(2, 4), Dense(4, 2)], backend="torch", seed=0)
    nb.set_num_threads(1)
    seen = []

    def predict():
        torch.set_num_threads(2)  # as a new thread may start (its default: the cores)
        model.predict(X)
        seen.append(torch.get_num_threads())

    worker = threading.Thread(target=predict)
    worker.start()
    worker.join()
    assert seen == [1]


def test_after_a_fit_other_threads_limits_take_hold(two_threads):
    """The fit took threadpoolctl's control of OpenBLAS and kept it: a worker's own
    threadpool_limits (joblib's, scikit-learn's) then did nothing."""
    model = nb.Sequential([Dense(2, 4), Dense(4, 2)], seed=0)
    model.fit(X, Y, loss="cross_entropy", optimizer="sgd", verbose=0)
    seen = []

    def worker():
        with threadpoolctl.threadpool_limits(1, user_api="blas"):
            seen.append(blas_threads())

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [{1}]


@needs_torch
def test_predict_inside_a_limit_keeps_the_limit(two_threads):
    model = nb.Sequential([Dense(2, 4), Dense(4, 2)], backend="torch", seed=0)
    nb.set_num_threads(2)
    with nb.limit_threads(1):
        model.predict(X)
        assert torch.get_num_threads() == 1


# --- edges a mutation run of threads.py found no test holding (the comments name the
# mutants each test kills)


def test_a_step_of_exactly_small_step_multiply_adds_is_not_small():
    """Under "auto" a step *under* SMALL_STEP (10 million) runs on one thread."""
    # kills threads 1 and 27 (10 million counted small) and 2 (9,999,999 not small)
    assert threads.threads_for_step(n_weights=1_000, batch_size=10_000) is None
    assert threads.threads_for_step(n_weights=9_999_999, batch_size=1) == 1


def test_none_sets_auto_as_the_word_does(two_threads):
    """set_num_threads(None) is "auto": documented, not refused."""
    # kills threads 72 (None refused as a bad count)
    nb.set_num_threads(1)
    nb.set_num_threads(None)
    assert nb.get_num_threads() == "auto"


def test_describe_threads_names_the_setting_and_every_pool(two_threads):
    """The setting, then each pool's count sorted by name, torch's last: for a count
    of 1, "1 (openblas 1, ..., torch 1)"."""
    # kills threads 14 to 18 (the pools or torch's count left out, or None returned)
    nb.set_num_threads(1)
    text = threads.describe_threads()
    assert text.startswith("1 (") and text.endswith(")")
    pools = text[3:-1].split(", ")
    names = sorted(p["internal_api"] for p in threadpoolctl.threadpool_info())
    assert pools == [f"{name} 1" for name in names] + ["torch 1"] * HAVE_TORCH
    assert "openblas 1" in pools


@needs_torch
def test_set_num_threads_gives_torch_its_count_back_once(two_threads, told):
    """torch runs on 1 thread under set_num_threads(1); "auto" gives back the 2 it had,
    once: a count set by hand after that stays at the next "auto"."""
    # kills threads 10 (torch's count before never kept), 124 (not given back) and 127
    # (given back again at the next "auto")
    nb.set_num_threads(1)
    assert torch.get_num_threads() == 1
    nb.set_num_threads("auto")
    assert told[-1:] == [2] and torch.get_num_threads() == 2
    torch.set_num_threads(3)
    told.clear()
    nb.set_num_threads("auto")
    assert told == [] and torch.get_num_threads() == 3


@needs_torch
def test_a_count_set_before_torch_loaded_is_given_back_to_torch(two_threads, told, monkeypatch):
    """When torch loads after set_num_threads(1), it is told 1, and "auto" gives back
    its own count (3 here), however many torch backends are made meanwhile."""
    # kills threads 67 (torch's own count never kept) and 62 (the second backend kept 1)
    with monkeypatch.context() as hidden:
        hidden.delitem(sys.modules, "torch")
        nb.set_num_threads(1)  # torch "not loaded": not told
    torch.set_num_threads(3)  # torch's own count as it loads
    told.clear()
    threads.apply_to_torch()  # as the first torch backend does
    threads.apply_to_torch()  # and the next
    nb.set_num_threads("auto")
    assert told == [1, 3]


@needs_torch
def test_only_a_limit_s_own_thread_keeps_its_count_against_the_setting(two_threads):
    """Inside a limit_threads block the block's count holds for torch; once it is closed
    (nested or not) the count set with set_num_threads does again; under "auto" torch
    is left alone."""
    # kills threads 41, 51 (the block not counted), 38-40, 43-46 (not counted off when
    # closed) and 54 (torch told "auto")
    torch.set_num_threads(3)
    threads.apply_in_this_thread()
    assert torch.get_num_threads() == 3  # "auto"
    nb.set_num_threads(2)
    with nb.limit_threads(1):
        with nb.limit_threads(1):
            pass
        threads.apply_in_this_thread()
        assert torch.get_num_threads() == 1
    torch.set_num_threads(3)
    threads.apply_in_this_thread()
    assert torch.get_num_threads() == 2


def test_a_block_of_none_leaves_blas_to_the_blocks_around_it(two_threads):
    """limit_threads(None) changes nothing, and a limit closed inside it gives back the
    count from before; the count of the block still open holds after an inner one."""
    # kills threads 31 (a None block counted as open: the inner close kept 1) and 97
    # (the first block's count put back instead of the last one's)
    before = blas_threads()
    with threads.limit_threads(None):
        with threads.limit_threads(1):
            assert blas_threads() == {1}
        assert blas_threads() == before
    with threads.limit_threads(1):
        with threads.limit_threads(2):
            middle = blas_threads()
            with threads.limit_threads(1):
                pass
            assert blas_threads() == middle
    assert blas_threads() == before


def test_a_setting_holds_while_another_thread_holds_a_blas_limit(two_threads):
    """threadpoolctl lets one thread at a time set OpenBLAS's count: a worker inside
    its own threadpool_limits made set_num_threads(1) do nothing, silently."""
    # kills threads 103 to 105 (control not taken from the worker)
    with a_live_worker_that(lambda: threadpoolctl.threadpool_limits(2, user_api="blas")):
        try:
            nb.set_num_threads(1)
            assert blas_threads() == {1}
        finally:
            nb.set_num_threads("auto")


def test_one_model_predicts_from_two_threads_at_once(backend):
    """A model served from a thread pool: each predict drops the arrays its pass left
    on the layers while the other's pass writes them ("dictionary changed size during
    iteration", "'Dense' object has no attribute '_x'")."""
    model = nb.Sequential([Dense(4, 16), "tanh", Dense(16, 3)], backend=backend, seed=0)
    inputs = [np.random.default_rng(n).normal(size=(n, 4)) for n in (5, 17)]
    expected = [nb.to_numpy(model.predict(X)) for X in inputs]
    failures, interval = [], sys.getswitchinterval()

    def serve(X, want):
        try:
            for _ in range(300):
                np.testing.assert_array_equal(nb.to_numpy(model.predict(X)), want)
        except Exception as exc:  # any failure is the finding
            failures.append(repr(exc))

    sys.setswitchinterval(1e-6)  # threads switch often: the passes interleave
    try:
        pairs = zip(inputs, expected, strict=True)
        threads = [threading.Thread(target=serve, args=pair) for pair in pairs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert failures == []


@pytest.mark.parametrize(("before", "inside"), [("auto", 1), (1, "auto")])
def test_a_count_set_during_a_fit_holds_after_it(two_threads, before, inside):
    """A callback's set_num_threads(1) was undone when the fit returned: get_num_threads
    said 1 while BLAS (and torch) ran on the 2 from before the fit; "auto" set inside a
    fit run under 1 left every pool at 1."""
    nb.set_num_threads(before)
    model = nb.Sequential([Dense(2, 8), Tanh(), Dense(8, 2)], backend="numpy", seed=0)
    change = nb.callbacks.LambdaCallback(lambda epoch, logs, m: nb.set_num_threads(inside))
    model.fit(X, Y, loss="cross_entropy", optimizer="sgd", verbose=0, callbacks=[change])
    assert nb.get_num_threads() == inside
    want = two_threads if inside == "auto" else {name: 1 for name in two_threads}
    assert pools() == want


def test_a_count_set_in_a_callback_holds_for_the_rest_of_the_fit(two_threads):
    """It held only after the fit: get_num_threads said 2 while BLAS ran on the fit's 1."""
    seen = []

    def two_then_look(epoch, logs, model):
        if epoch == 0:
            nb.set_num_threads(2)
        else:
            seen.append(pools())

    model = nb.Sequential([Dense(2, 8), Tanh(), Dense(8, 2)], backend="numpy", seed=0)
    look = nb.callbacks.LambdaCallback(two_then_look)
    model.fit(X, Y, loss="cross_entropy", optimizer="sgd", epochs=3, verbose=0, callbacks=[look])
    assert seen == [two_threads, two_threads] and pools() == two_threads


def small_fit(callbacks=()):
    model = nb.Sequential([Dense(2, 8), Tanh(), Dense(8, 2)], backend="numpy", seed=0)
    model.fit(X, Y, loss="cross_entropy", optimizer="sgd", epochs=2, verbose=0,
              callbacks=list(callbacks))  # fmt: skip


def set_two(epoch, logs, model):
    nb.set_num_threads(2)


def test_auto_after_a_count_set_in_a_fit_gives_back_the_count_from_before(two_threads):
    small_fit([nb.callbacks.LambdaCallback(set_two)])
    nb.set_num_threads("auto")  # the libraries' own counts: 2, as before the fit
    assert pools() == two_threads


class FakeTorch(types.ModuleType):
    """torch's per-thread count, without torch (CI has none)."""

    Tensor = type("Tensor", (), {})

    def __init__(self):
        super().__init__("torch")
        self.count = 4

    def get_num_threads(self):
        return self.count

    def set_num_threads(self, n):
        self.count = n


def test_a_later_fit_keeps_the_count_set_between_fits(monkeypatch):
    torch_ = FakeTorch()
    monkeypatch.setitem(sys.modules, "torch", torch_)
    try:
        small_fit([nb.callbacks.LambdaCallback(set_two)])
        assert torch_.count == 2
        nb.set_num_threads(3)
        small_fit()  # no callback: the count set before it holds after it
        assert nb.get_num_threads() == 3 and torch_.count == 3
    finally:
        nb.set_num_threads("auto")


def test_a_count_set_in_a_fit_holds_after_a_nested_block(monkeypatch):
    torch_ = FakeTorch()
    monkeypatch.setitem(sys.modules, "torch", torch_)
    try:
        with threads.limit_threads(1):  # a fit's
            with threads.limit_threads(1):  # an evaluate inside it (a callback's)
                nb.set_num_threads(2)
            with threads.limit_threads(1):  # the next one
                pass
        assert nb.get_num_threads() == 2 and torch_.count == 2
    finally:
        nb.set_num_threads("auto")


def test_a_count_set_in_a_nested_block_holds_in_the_outer_one(two_threads):
    try:
        with threads.limit_threads(1), threads.limit_threads(1):
            nb.set_num_threads(2)
        with threads.limit_threads(1):
            with threads.limit_threads(1):
                nb.set_num_threads(2)
            assert set(pools().values()) == {2}
    finally:
        nb.set_num_threads("auto")


def test_one_model_predicts_from_several_threads_as_from_one(backend):
    """A layer's forward returned what it had just kept on itself (a Dense + ReLU's
    fused output, MaxPool2D's): read back after another thread's predict had replaced
    it, a call got that call's rows (torch: a few in 4,000), or "call forward(x) first"."""
    from concurrent.futures import ThreadPoolExecutor

    from nnbackend.layers import Flatten, MaxPool2D

    rng = np.random.default_rng(0)
    X = rng.normal(size=(32, 3, 8, 8)).astype(np.float32)
    layers = [MaxPool2D(2), Flatten(), Dense(48, 8), "relu", Dense(8, 2)]
    model = nb.Sequential(layers, backend=backend, seed=0)
    model.loss = nb.losses.SoftmaxCrossEntropy()
    calls = 600 if backend.name == "strict" else 2000
    sizes = (3, 32)
    serial = {n: model.predict_proba(X[:n]) for n in sizes}
    switching = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads take turns often: the window is a few bytecodes
    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda i: model.predict_proba(X[: sizes[i % 2]]), range(calls)))
    finally:
        sys.setswitchinterval(switching)
    for i, result in enumerate(results):
        np.testing.assert_array_equal(nb.to_numpy(result), nb.to_numpy(serial[sizes[i % 2]]))


def test_a_model_fitting_in_another_thread_refuses_predict_there(backend):
    """A predict from another thread replaced the batch input the fit's layers keep for
    their backward: the fit died with "call forward(x) before backward(dy)" halfway. It
    is refused now, with what to do; the fitting thread's own callbacks still evaluate."""
    X, y = nb.datasets.make_moons(64, seed=0)
    model = nb.Sequential([Dense(2, 8), Tanh(), Dense(8, 2)], backend=backend, seed=0)
    started, checked, seen = threading.Event(), threading.Event(), []

    def pause(epoch, logs, model):
        seen.append(model.evaluate(X, y)["loss"])  # in the fit's own thread: taken
        if epoch == 0:
            started.set()
            checked.wait(30)

    options = dict(loss="cross_entropy", optimizer="adam", epochs=2, verbose=0)
    callbacks = [nb.callbacks.LambdaCallback(pause)]
    # nb.training.fit, which model.fit calls, as a model of one's own may call it
    fit_there = lambda: nb.training.fit(model, X, y, callbacks=callbacks, **options)  # noqa: E731
    fitting = threading.Thread(target=fit_there)
    fitting.start()
    xb, yb = model.backend.asarray(X[:8]), model.backend.asarray(y[:8])
    try:
        assert started.wait(30)
        for refused in (
            lambda: model.predict(X),
            lambda: model.evaluate(X, y),
            lambda: model(xb),
            lambda: model.fit(X, y, **options),  # a second fit: the two had mixed their steps
            lambda: model.train_step(xb, yb, "cross_entropy", nb.optim.SGD()),
        ):
            with pytest.raises(RuntimeError, match=r"^this model is being fitted in another thr"):
                refused()
        zeros = {name: 0 * w for name, w in model.copy_params().items()}
        for written in (  # zeros went into the fit mid-step (its loss went from 0.30 to 0.693)
            lambda: model.set_params(zeros),
            lambda: model.params.assign(zeros),
            lambda: model.params.__setitem__("0.W", zeros["0.W"]),
        ):
            with pytest.raises(RuntimeError, match=r"another thread: writing its params now"):
                written()
        with pytest.raises(RuntimeError, match=r"^model\.to\(\.\.\.\) while a fit trains"):
            model.to(backend.name, dtype="float64")
    finally:
        checked.set()
        fitting.join(30)
    assert len(seen) == 2 and model.predict(X).shape == (64,)
    assert model.backend.dtype_name == "float32"


def test_each_logged_line_is_one_write(monkeypatch):
    """print wrote the line, then its end: fits logging in threads at once spliced
    their lines ("accuracy 0.8epoch 0: loss ...")."""
    writes = []

    class Recorder:
        def write(self, text):
            writes.append(text)

        def flush(self):
            pass

    monkeypatch.setattr(sys, "stdout", Recorder())
    X, y = nb.datasets.make_moons(64, seed=0)
    model = nb.Sequential([Dense(2, 8), Tanh(), Dense(8, 2)], seed=0)
    model.fit(X, y, loss="cross_entropy", optimizer="sgd", epochs=3, log_every=1, verbose=2)
    lines = [text for text in writes if text]
    assert len(lines) == 3 and all(re.fullmatch(r"epoch \d: loss .*\n", t) for t in lines)
    monkeypatch.setattr(nb.progress, "_is_terminal", lambda file: True)  # the bar's way too
    writes.clear()
    model.fit(X, y, loss="cross_entropy", optimizer="sgd", epochs=3, log_every=1, verbose=1)
    lines = [text for text in writes if text.startswith("epoch") or text == "\n"]
    assert len(lines) == 3 and all(re.fullmatch(r"epoch \d: loss .*\n", t) for t in lines)


def test_a_move_in_the_fits_own_callback_is_refused():
    """On NumPy the fit's end put its own float32 buffers back, undoing a callback's
    model.to(dtype="float64") without a word; on strict the next step failed blaming
    the first layer. Between fits the move goes on."""
    X, y = nb.datasets.make_moons(64, seed=0)
    model = nb.Sequential([Dense(2, 8), Tanh(), Dense(8, 2)], seed=0)
    move = nb.callbacks.LambdaCallback(lambda epoch, logs, model: model.to("numpy", "float64"))
    with pytest.raises(RuntimeError, match=r"^model\.to\(\.\.\.\) while a fit trains"):
        model.fit(X, y, loss="cross_entropy", optimizer="sgd", verbose=0, callbacks=[move])
    assert model.to("numpy", "float64").backend.dtype_name == "float64"


def test_a_fit_inside_a_callback_keeps_the_outer_fits_mark_and_models_may_define_eq():
    """A fit run by a callback of an outer fit took the outer's mark away on its end: a
    thread's predict then ran while the outer fit trained. A model class defining __eq__
    (no hash) could neither fit nor predict once the marks were kept by the model."""
    X, y = nb.datasets.make_moons(64, seed=0)

    class Eq(nb.Sequential):
        def __eq__(self, other):
            return self is other

    model = Eq([Dense(2, 8), Tanh(), Dense(8, 2)], seed=0)
    helper = nb.Sequential([Dense(2, 2)], seed=0)
    options = dict(loss="cross_entropy", optimizer="sgd", verbose=0)
    said = []

    def inner_then_ask(epoch, logs, model):
        if epoch == 0:
            model.fit(X, y, epochs=1, **options)  # ends before the outer fit goes on
        if epoch == 1:
            asking = threading.Thread(target=lambda: said.append(_refusal(model, X)))
            asking.start()
            asking.join(30)

    model.fit(X, y, epochs=2, callbacks=[nb.callbacks.LambdaCallback(inner_then_ask)], **options)
    assert said == ["refused"]
    assert model.predict(X).shape == (64,) and len(helper.fit(X, y, **options)) == 1


def _refusal(model, X) -> str:
    try:
        model.predict(X)
    except RuntimeError as exc:
        return "refused" if "fitted in another thread" in str(exc) else str(exc)
    return "ran"


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_an_estimator_refuses_predict_while_another_thread_fits_its_net():
    """An MLPClassifier's predict ran its net's forward while a partial_fit in another
    thread trained it: the fit failed on a batch of the predict's rows."""
    from nnbackend.kept import fitting
    from nnbackend.sklearn import MLPClassifier

    X, y = nb.datasets.make_moons(64, seed=0)
    est = MLPClassifier((4,), max_iter=2, random_state=0).fit(X, y)
    marked, done = threading.Event(), threading.Event()

    def hold():  # the mark a fit of its net holds in that thread
        with fitting(est.model_):
            marked.set()
            done.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert marked.wait(30)
        with pytest.raises(RuntimeError, match=r"^this model is being fitted in another thread"):
            est.predict(X)
    finally:
        done.set()
        holder.join(30)
    assert est.predict(X).shape == (64,)


def test_a_fit_waits_for_no_pass_another_thread_has_begun():
    """A predict already running when another thread's fit began was not refused, nor
    the fit: the fit failed in NumPy's words ("operands could not be broadcast together
    with shapes (16,256) (200000,256)") or stepped on the predict's rows."""
    from nnbackend.kept import passing

    X, y = nb.datasets.make_moons(64, seed=0)
    model = nb.Sequential([Dense(2, 8), Tanh(), Dense(8, 2)], seed=0)
    running, done = threading.Event(), threading.Event()

    def predicting():  # the mark a predict holds over its forwards, in that thread
        with passing(model):
            running.set()
            done.wait(30)

    other = threading.Thread(target=predicting)
    other.start()
    options = dict(loss="cross_entropy", optimizer="sgd", verbose=0)
    try:
        assert running.wait(30)
        with pytest.raises(RuntimeError, match=r"^a predict or evaluate in another thread is"):
            model.fit(X, y, **options)
        assert model.predict(X).shape == (64,)  # passes in two threads at once: taken
    finally:
        done.set()
        other.join(30)
    assert len(model.fit(X, y, **options)) == 1
