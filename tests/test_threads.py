"""CPU threads: ``nb.set_num_threads`` limits NumPy's BLAS (threadpoolctl) and torch's
intra-op pool; under "auto", fit runs small steps on one thread and puts things back."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
import threadpoolctl

import nnbackend as nb
from nnbackend.backend import threads
from nnbackend.layers import Dense, Tanh
from tests.conftest import HAVE_TORCH

X, Y = nb.datasets.make_moons(64, seed=0)  # scikit-learn's own pools load here, not mid-test


def pools() -> dict[str, int]:
    """Threads of every BLAS/OpenMP pool loaded, and torch's when it is."""
    counts = {p["filepath"]: p["num_threads"] for p in threadpoolctl.threadpool_info()}
    if HAVE_TORCH:
        import torch

        counts["torch"] = torch.get_num_threads()
    return counts


@pytest.fixture
def two_threads():
    """Every pool at 2 threads (whatever OPENBLAS_NUM_THREADS the run has), and the
    setting back at "auto" afterwards."""
    if HAVE_TORCH:
        import torch

        previous_torch = torch.get_num_threads()
        torch.set_num_threads(2)
    with threadpoolctl.threadpool_limits(2):
        yield pools()
    nb.set_num_threads("auto")
    if HAVE_TORCH:
        torch.set_num_threads(previous_torch)


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


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
def test_every_fit_gives_torch_s_own_pool_one_thread(two_threads, monkeypatch):
    """threadpoolctl's OpenMP limit makes torch report 1 thread already, so the second
    fit of a process never told torch's pool, which the first fit's end had put back at
    2: 7x to 90x slower with another process on the other core."""
    import torch

    told = []
    set_num_threads = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (told.append(n), set_num_threads(n)))
    for _ in range(2):
        told.clear()
        model = nb.Sequential([Dense(2, 8), Tanh(), Dense(8, 2)], backend="torch", seed=0)
        model.fit(X, Y, loss="cross_entropy", optimizer="sgd", epochs=1, verbose=0)
        assert told == [1, 2]  # one thread for the fit, the count from before after it
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


@pytest.mark.parametrize("bad", [0, -1, 1.5, "two", True])
def test_a_bad_thread_count_says_what_is_allowed(bad):
    with pytest.raises(ValueError, match=r"a whole number >= 1 or 'auto', not"):
        nb.set_num_threads(bad)


def test_every_example_takes_threads(two_threads, capsys):
    parser = nb.cli.example_parser("x")
    args = parser.parse_args(["--threads", "1"])
    nb.cli.backend_from_args(args)
    assert nb.get_num_threads() == 1 and set(pools().values()) == {1}
    assert parser.parse_args(["--threads", "auto"]).threads == "auto"
    assert parser.parse_args([]).threads is None  # leaves the setting alone
    with pytest.raises(SystemExit):
        parser.parse_args(["--threads", "0"])
    assert "a number of threads >= 1, or auto, not '0'" in capsys.readouterr().err


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
    threadpoolctl.OpenBLASController.clear_controlling_thread(force=True)
    before, done, finish = blas_threads(), threading.Event(), threading.Event()

    def worker():
        nb.set_num_threads(1)
        done.set()
        finish.wait()

    alive = threading.Thread(target=worker)
    alive.start()
    done.wait()
    try:
        assert blas_threads() == {1}
        nb.set_num_threads("auto")
        assert blas_threads() == before
    finally:
        finish.set()
        alive.join()


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
def test_predict_in_another_thread_uses_the_count_set(two_threads):
    """torch keeps a thread count per thread: a predict in a worker ran at torch's default."""
    import torch

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


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
def test_predict_inside_a_limit_keeps_the_limit(two_threads):
    import torch

    model = nb.Sequential([Dense(2, 4), Dense(4, 2)], backend="torch", seed=0)
    nb.set_num_threads(2)
    with nb.limit_threads(1):
        model.predict(X)
        assert torch.get_num_threads() == 1
