"""Data-parallel fits (nnbackend.distributed.parallel) in one process: each "rank" of a
world of two or three is a thread, and the collectives are exchanges between them
(``Hub``), summed on the host in rank order. No MPI is needed: what is checked is what
parallel.py does with each rank's share, not what MPI does with a message.

The ranks' fits are held to one process's fit of the same data, as the two-rank runs
of tests/test_distributed.py are under mpiexec, but on three ranks too and in seconds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import math
import pickle
import re
import threading

import numpy as np
import pytest

import nnbackend as nb
from nnbackend.backend import threads
from nnbackend.distributed import alike, fingerprints, parallel, world
from nnbackend.layers import BatchNorm, Dense
from tests import distributed_cases as cases


class Hub:
    """What the thread ranks hand each other: every collective is an exchange that
    gives each rank every rank's value, in rank order."""

    def __init__(self, size: int):
        self.size, self.values = size, [None] * size
        self.barrier = threading.Barrier(size, timeout=30)

    def exchange(self, rank: int, value) -> list:
        self.values[rank] = value
        self.barrier.wait()
        everyone = list(self.values)
        self.barrier.wait()  # every rank has read them before any hands its next
        return everyone


class ThreadComm:
    """mpi4py's communicator as World uses it, for one thread rank. Values travel
    pickled, as MPI sends them: no rank holds another's objects."""

    def __init__(self, hub: Hub, rank: int):
        self.hub, self.rank = hub, rank

    def bcast(self, obj, root=0):
        sent = self.hub.exchange(self.rank, obj)[root]
        return obj if self.rank == root else pickle.loads(pickle.dumps(sent))

    def allgather(self, obj):
        return [pickle.loads(pickle.dumps(v)) for v in self.hub.exchange(self.rank, obj)]

    def Barrier(self):
        self.hub.exchange(self.rank, None)


class ThreadEngine:
    """The collectives engine of a thread rank: a sum over the ranks (added in rank
    order, so every rank gets the same bits) and rank 0's array, through host copies."""

    def __init__(self, ranks: world.World, backend):
        self.comm, self.backend = ranks.comm, backend

    def _back(self, host):
        return self.backend.asarray(host, dtype=host.dtype.name)

    def allreduce(self, flat):
        everyone = self.comm.hub.exchange(self.comm.rank, self.backend.to_numpy(flat).copy())
        total = everyone[0].copy()
        for a in everyone[1:]:
            total += a
        return self._back(total)

    def broadcast(self, flat):
        return self._back(self.comm.hub.exchange(self.comm.rank, self.backend.to_numpy(flat))[0])


class ThreadWorlds:
    """Stands in for nnbackend.distributed.world's process-wide World: each thread rank
    sees its own (``is_main``, ``current``), any other thread a world of one."""

    def __init__(self):
        self.local, self.alone = threading.local(), world.World()

    def get(self) -> world.World:
        return getattr(self.local, "world", self.alone)

    def __getattr__(self, name):
        return getattr(self.get(), name)


@pytest.fixture
def on_ranks(monkeypatch):
    """``on_ranks(size, fn)``: ``fn(rank)`` run on each of ``size`` thread ranks of one
    world; each rank's result, or the exception it raised."""
    worlds = ThreadWorlds()
    monkeypatch.setattr(world, "_world", worlds)
    monkeypatch.setattr(parallel, "joined_world", worlds.get)
    monkeypatch.setattr(alike, "joined_world", worlds.get)
    monkeypatch.setattr(parallel, "engine_for", ThreadEngine)

    def run(size: int, fn) -> list:
        hub, results = Hub(size), [None] * size

        def rank(r):
            worlds.local.world = world.World(rank=r, size=size, comm=ThreadComm(hub, r))
            try:
                results[r] = fn(r)
            except BaseException as exc:  # the others are not left waiting
                results[r] = exc
                hub.barrier.abort()

        threads = [threading.Thread(target=rank, args=(r,)) for r in range(size)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        return results

    return run


def succeeded(results: list) -> list:
    for r, result in enumerate(results):
        if isinstance(result, BaseException):
            raise AssertionError(f"rank {r} raised") from result
    return results


def assert_as_one_process(results, alone, history, rtol=1e-10):
    """Every rank holds one process's weights (to float64's rounding: the ranks add the
    gradient in another order) and its history."""
    for net, got in results:
        for name, w in cases.weights(alone).items():
            np.testing.assert_allclose(cases.weights(net)[name], w, rtol=rtol, atol=1e-12)
        assert got.history.keys() == history.history.keys()
        for key, values in history.history.items():
            np.testing.assert_allclose(got.history[key], values, rtol=rtol, atol=1e-12)
    digests = {fingerprints.digest(net) for net, _ in results}
    assert len(digests) == 1  # and every rank the very same bits


# --- fits on two and three ranks ----------------------------------------------------


@pytest.mark.parametrize("size", [2, 3])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_thread_ranks_train_as_one_process(backend, on_ranks, size, optimizer):
    """Batches of 11 rows split 6 + 5 and 4 + 4 + 3; each epoch's last batch of 1 row
    leaves the other shares empty; validation's 30 rows split in blocks: the weights,
    the loss, both accuracies and their validation values of one process."""
    case = cases.Case(backend.name, "float64", optimizer, 0.01)
    alone, history = cases.train(case, distributed=False)
    results = succeeded(on_ranks(size, lambda r: cases.train(case, distributed=True)))
    assert_as_one_process(results, alone, history)


@pytest.mark.parametrize("size", [2, 3])
def test_a_summed_loss_on_thread_ranks_trains_as_one_process(backend, on_ranks, size):
    """reduction="sum": each share adds its rows' gradients unscaled, and the loss is the
    batch's sum; with the L2 penalty (the flat buffer's step, and strict's packed one)."""
    case = cases.Case(backend.name, "float64", "sgd", 0.01)
    alone, history = cases.train_summed(case, distributed=False)
    results = succeeded(on_ranks(size, lambda r: cases.train_summed(case, distributed=True)))
    assert_as_one_process(results, alone, history)


@pytest.mark.parametrize("size", [2, 3])
@pytest.mark.parametrize("layers", list(cases.WHOLE_BATCH_LAYERS))
def test_whole_batch_layers_on_thread_ranks_train_as_one_process(on_ranks, size, layers):
    """Dropout's masks, a noise layer's normal draws (the ranks drew their own shares,
    and their generators parted), one mask for the batch from the host and BatchNorm's
    statistics are the whole batch's: the weights, the running state, the history and
    the generator of one process."""
    alone, report = cases.train_whole_batch(layers, distributed=False)
    results = on_ranks(size, lambda r: cases.train_whole_batch(layers, distributed=True))
    for got, got_report in succeeded(results):
        for name, a in alone.items():
            np.testing.assert_allclose(got[name], a, rtol=1e-10, atol=1e-12)
        assert got_report["generator"] == report["generator"]
        np.testing.assert_allclose(
            got_report["history"]["loss"], report["history"]["loss"], rtol=1e-10
        )


@pytest.mark.parametrize(("size", "rows"), [(3, 2), (3, 3), (2, 1), (2, 5)])
def test_validation_of_few_rows_is_measured_as_one_process(on_ranks, size, rows):
    """Validation data of fewer rows than ranks is measured whole on every rank; of as
    many or more, in blocks summed over the ranks (in batches of a rank's part of 2
    rows): val_loss and val_accuracy are one process's either way."""
    case = cases.Case("numpy", "float64", "adam", None)
    (_, _), (X_val, y_val) = cases.data()
    options = dict(epochs=2, validation_data=(X_val[:rows], y_val[:rows]), batch_size=2)
    alone, history = cases.train(case, distributed=False, **options)
    results = on_ranks(size, lambda r: cases.train(case, distributed=True, **options))
    assert_as_one_process(succeeded(results), alone, history)


# --- the start: rank 0's state on every rank ----------------------------------------


def trained_apart(rank: int):
    """A model with BatchNorm's running state and an Adam that took steps, each rank's
    its own (seeded by its rank), and its generator moved on apart."""
    layers = [Dense(5, 8), BatchNorm(8), "tanh", Dense(8, 3)]
    net = nb.Sequential(layers, backend="numpy", dtype="float64", seed=1 + rank)
    adam = nb.optim.Adam(0.01)
    (X, y), _ = cases.data()
    net.fit(X[: 20 + 10 * rank], y[: 20 + 10 * rank], loss="cross_entropy", optimizer=adam,
            batch_size=10, epochs=1, verbose=0, seed=rank)  # fmt: skip
    net.rng.random_bits((3 + rank,))
    return net, adam


def state_of(net, adam) -> dict:
    held = {f"param {k}": nb.to_numpy(a).copy() for k, a in net.params.items()}
    held.update({f"state {k}": nb.to_numpy(a).copy() for k, a in net.state.items()})
    for slot, arrays in adam.state.items():
        held.update({f"{slot} {k}": nb.to_numpy(a).copy() for k, a in arrays.items()})
    return {"arrays": held, "iterations": adam.iterations, "rng": net.rng.state}


@pytest.mark.parametrize("size", [2, 3])
def test_broadcast_state_gives_every_rank_rank_0s_state(on_ranks, size):
    """broadcast_state: the weights, running state, optimizer moments and step count and
    the generator of rank 0, bit for bit, on every rank; rank 0's own are untouched.
    Without an optimizer, the model's alone."""

    def rank(r):
        net, adam = trained_apart(r)
        before = state_of(net, adam)
        parallel.broadcast_state(world.current(), net, adam)
        after = state_of(net, adam)
        other, other_adam = trained_apart(r)
        parallel.broadcast_state(world.current(), other)
        return before, after, state_of(other, other_adam)

    results = succeeded(on_ranks(size, rank))
    main = results[0][0]
    assert results[1][0]["iterations"] != main["iterations"]  # they did start apart
    for before, after, model_only in results:
        assert after["iterations"] == main["iterations"] and after["rng"] == main["rng"]
        assert after["arrays"].keys() == main["arrays"].keys()
        for name, a in main["arrays"].items():
            assert np.array_equal(after["arrays"][name], a), name
            if name.startswith(("param", "state")):
                assert np.array_equal(model_only["arrays"][name], a), name
        assert model_only["rng"] == main["rng"]
        assert model_only["iterations"] == before["iterations"]  # its optimizer left alone


# --- ranks that do not run the same fit --------------------------------------------


def halved_rate(step: int) -> float:
    return 0.1 / (1 + step)


DIFFERENCES = {  # what rank 1 of three does otherwise -> the words the error names it by
    "batch_size": (dict(batch_size=12), "batch_size: ranks 0, 2 have 11, rank 1 has 12"),
    "epochs": (dict(epochs=4), "epochs: ranks 0, 2 have 5, rank 1 has 4"),
    "seed": (dict(seed=4), "seed: ranks 0, 2 have 3, rank 1 has 4"),
    "shuffle": (dict(shuffle=False), "shuffle: ranks 0, 2 have True, rank 1 has False"),
    "l2": (dict(l2=0.02), "l2: ranks 0, 2 have 0.01, rank 1 has 0.02"),
    "metrics": (dict(metrics=["accuracy"]), "metrics: ranks 0, 2 have [{"),
    "optimizer": (dict(optimizer=nb.optim.SGD(0.25)), "optimizer: ranks 0, 2 have {"),
    "rate function": (
        dict(optimizer=nb.optim.SGD(halved_rate)),
        "rank 1 has 'SGD(lr=tests.test_parallel_edges.halved_rate)'",
    ),
    "loss": (
        dict(loss=nb.losses.SoftmaxCrossEntropy(reduction="sum")),
        "loss: ranks 0, 2 have {",
    ),
    "rows": (dict(rows=slice(None, None, -1)), "data (sums of X and y: plain, by row and"),
    "X's dtype": (
        dict(X_dtype="float32"),
        "dtypes of X and y: ranks 0, 2 have ('float64', 'int64'), rank 1 has ('float32', 'int64')",
    ),
    "samples": (dict(rows=slice(0, 99)), "samples in X: ranks 0, 2 have 100, rank 1 has 99"),
    "validation": (dict(validation_data=None), "validation data (shape, sums): ranks 0, 2 have (("),
    "validation values": (  # the same shape: told apart by the sums alone
        dict(validation_data="doubled"),
        "validation data (shape, sums): ranks 0, 2 have ((",
    ),
    "dtype": (
        dict(dtype="float32"),
        "float dtype: ranks 0, 2 have 'float64', rank 1 has 'float32'",
    ),
    "backend": (dict(backend="strict"), "backend: ranks 0, 2 have 'numpy', rank 1 has 'strict'"),
}


@pytest.mark.parametrize("what", list(DIFFERENCES))
def test_ranks_that_differ_in_one_thing_are_told_alike(on_ranks, what):
    """One difference on rank 1 of three: every rank raises the same DistributedError,
    marked every_rank, naming what differs and who has what; no rank trained."""
    differs, said = DIFFERENCES[what]
    (X, y), validation = cases.data()

    def rank(r):
        options = dict(differs) if r == 1 else {}
        rows, X_dtype = options.pop("rows", slice(None)), options.pop("X_dtype", "float64")
        if options.get("validation_data") == "doubled":
            options["validation_data"] = (2 * validation[0], validation[1])
        case = cases.Case(options.pop("backend", "numpy"), options.pop("dtype", "float64"),
                          "sgd", 0.01)  # fmt: skip
        settings = dict(
            loss="cross_entropy", optimizer=nb.optim.SGD(0.5), epochs=5, batch_size=11,
            l2=0.01, seed=3, validation_data=validation, verbose=0, distributed=True,
            metrics=["accuracy", nb.metrics.TopKAccuracy(2)],
        )  # fmt: skip
        net = cases.model(case)
        before = cases.weights(net)
        with pytest.raises(nb.distributed.DistributedError) as raised:
            net.fit(X[rows].astype(X_dtype), y[rows], **{**settings, **options})
        assert all(np.array_equal(w, before[k]) for k, w in cases.weights(net).items())
        return str(raised.value), raised.value.every_rank

    errors = succeeded(on_ranks(3, rank))
    assert len(set(errors)) == 1
    text, every_rank = errors[0]
    assert every_rank is True
    assert text.startswith("the ranks do not run the same fit: ") and said in text, text
    assert text.count("rank 1 has") == text.count("ranks 0, 2 have") >= 1, text


# --- resuming: rank 0 reads, every rank takes its state -----------------------------


@pytest.mark.parametrize("size", [2, 3])
def test_a_resume_on_thread_ranks_is_one_uninterrupted_process(on_ranks, tmp_path, size):
    """3 epochs of Adam at 0.05 with a checkpoint, resumed to 5 in models of other weights
    by an Adam at 0.01: rank 0 reads the file (the others' paths never existed) and every
    rank takes its weights, moments, step count, generator and rate: one uninterrupted
    process's weights and last two epochs."""
    case = cases.Case("numpy", "float64", "adam", 0.01)
    alone, history = cases.train(case, distributed=False)

    def rank(r):
        path = tmp_path / ("ckpt.h5" if r == 0 else f"missing{r}/ckpt.h5")
        cases.train(case, distributed=True, epochs=3, checkpoint=path)
        return cases.train(case, distributed=True, checkpoint=path, resume=True,
                           model_seed=99, optimizer=nb.optim.Adam(0.01))  # fmt: skip

    results = succeeded(on_ranks(size, rank))
    resumed = [(net, got.history) for net, got in results]
    for net, got in resumed:
        for name, w in cases.weights(alone).items():
            np.testing.assert_allclose(cases.weights(net)[name], w, rtol=1e-10, atol=1e-12)
        for key, values in history.history.items():
            np.testing.assert_allclose(got[key], values[3:], rtol=1e-10, atol=1e-12)


def test_a_resume_gives_every_rank_early_stoppings_state(on_ranks, tmp_path):
    """4 epochs with EarlyStopping (best val_loss at epoch 3), resumed to 8: every rank
    stops after epoch 5 with epoch 3's weights, as one process; told nothing, a rank's
    EarlyStopping would start afresh and put back other weights."""
    alone, history = cases.train(cases.STOPPING_CASE, distributed=False, epochs=8,
                                 callbacks=[cases.early_stopping()])  # fmt: skip
    assert len(history["loss"]) == 6

    def rank(r):
        path = tmp_path / ("stopping.h5" if r == 0 else f"missing{r}/stopping.h5")
        cases.train(cases.STOPPING_CASE, distributed=True, epochs=4, checkpoint=path,
                    callbacks=[cases.early_stopping()])  # fmt: skip
        again = dict(epochs=8, resume=True, model_seed=99, callbacks=[cases.early_stopping()])
        return cases.train(cases.STOPPING_CASE, distributed=True, checkpoint=path, **again)

    for net, got in succeeded(on_ranks(3, rank)):
        assert len(got["loss"]) == 2 and got.stop_reason == history.stop_reason
        for name, w in cases.weights(alone).items():
            np.testing.assert_allclose(cases.weights(net)[name], w, rtol=1e-10, atol=1e-12)


# --- each epoch's end ---------------------------------------------------------------


def test_a_stop_on_one_rank_stops_every_rank(on_ranks):
    """A callback on rank 1 of three alone stops training after epoch 2: every rank
    trains 3 epochs, to the same weights."""

    def rank(r):
        stop = nb.callbacks.LambdaCallback(
            lambda epoch, logs, model: setattr(model, "stop_training", epoch == 2)
        )
        case = cases.Case("numpy", "float64", "sgd", None)
        return cases.train(case, distributed=True, callbacks=[stop] if r == 1 else [])

    results = succeeded(on_ranks(3, rank))
    assert [len(got["loss"]) for _, got in results] == [3, 3, 3]
    assert len({fingerprints.digest(net) for net, _ in results}) == 1
    # and every rank says why: rank 0, which prints and saves, said nothing, and then
    # only "the fit was stopped on another rank", not which or by what
    said = [got.stop_reason for _, got in results]
    elsewhere = "on rank 1, LambdaCallback stopped the fit at epoch 2"
    assert said == [elsewhere, "LambdaCallback stopped the fit at epoch 2", elsewhere]


def test_ranks_that_end_with_different_weights_are_told_alike(on_ranks):
    """EarlyStopping on rank 0 alone puts epoch 3's weights back there: every rank raises
    the same DistributedError naming the digests, marked every_rank, and none is left
    busy (nothing would abort the job on its way out)."""

    def rank(r):
        callbacks = [cases.early_stopping()] if r == 0 else []
        with pytest.raises(nb.distributed.DistributedError) as raised:
            cases.train(cases.STOPPING_CASE, distributed=True, epochs=8, callbacks=callbacks)
        return str(raised.value), raised.value.every_rank, world.current().busy

    results = succeeded(on_ranks(3, rank))
    assert len(set(results)) == 1
    text, every_rank, busy = results[0]
    assert every_rank is True and busy is False
    assert re.match(r"the ranks end the fit with different weights: a digest of the weights "
                    r"and running state: rank 0 has '[0-9a-f]{16}', ranks 1, 2 have "
                    r"'[0-9a-f]{16}'\. A callback", text), text  # fmt: skip


def test_a_shares_draws_are_its_rows_of_the_whole_batchs_and_others_whole():
    """Rows 2..4 of a batch of 5: a draw by rows (a NumPy int shape too) gives those rows
    of one process's draw, and the generator moves on as that draw does; a draw of
    another shape is one process's draw itself."""
    from nnbackend.distributed.whole_batch import RowsOfBatch

    on = {"backend": nb.get_backend("numpy", dtype="float64")}
    alone, share = nb.Generator(7), RowsOfBatch(nb.Generator(7), first=2, total=5, count=3)
    pairs = [
        (alone.normal((5, 4), 0.5, **on)[2:], share.normal((3, 4), 0.5, **on)),
        (alone.uniform(5, **on)[2:], share.uniform(np.int64(3), **on)),
        (alone.random_bits((5, 2), **on)[2:], share.random_bits((3, 2), **on)),
        (alone.normal((1, 4), **on), share.normal((1, 4), **on)),
        (alone.random_bits(6, **on), share.random_bits(6, **on)),
    ]
    for one_process, of_share in pairs:
        np.testing.assert_array_equal(nb.to_numpy(of_share), nb.to_numpy(one_process))
    assert share.rng.state == alone.state


def test_a_layer_that_shuffles_its_share_is_told_the_generators_part(on_ranks):
    """A permutation of its rows draws as many numbers as a share has: on shares of 6
    and 5 rows the ranks' generators parted with nothing said (their weights alike)."""

    def rank(r):
        net = nb.Sequential([cases.RowShuffle(), Dense(5, 3)], backend="numpy", seed=1)
        with pytest.raises(nb.distributed.DistributedError) as raised:
            net.fit(X[:22], y[:22], loss="cross_entropy", optimizer="sgd", batch_size=11,
                    seed=3, verbose=0, distributed=True)  # fmt: skip
        return str(raised.value)

    (X, y), _ = cases.data()
    said = succeeded(on_ranks(2, rank))
    assert said[0] == said[1] and said[0].startswith(
        "the ranks end the fit with their random generators apart, so they drew other "
        "numbers than one process would: a layer of one's own drew as many numbers as its "
        "share has rows otherwise than by random_bits"
    )


def test_ranks_stopping_together_are_told_the_first_stopping_ranks_reason(on_ranks):
    """Ranks 1 and 2 stop, for reasons of their own: every rank says rank 1's."""

    def rank(r):
        net = cases.model(cases.Case("numpy", "float64", "sgd", None))
        loss, opt = nb.losses.SoftmaxCrossEntropy(), nb.optim.SGD(0.1)
        fit = parallel.DataParallel(parallel.joined_world(), net, loss, opt, [], None)
        return fit.stop_together(r > 0, f"a time limit on rank {r}")

    said = succeeded(on_ranks(3, rank))
    assert said == [(True, "on rank 1, a time limit on rank 1")] * 3


def test_ranks_on_devices_of_their_own_fit_together(on_ranks):
    """cupy:0 on rank 0 and cupy:1 on rank 1 are one backend: the fit compares the
    library alone (only broadcast had a test of it)."""

    def rank(r):
        (X, y), _ = cases.data()
        net = cases.model(cases.Case("numpy", "float64", "sgd", None))
        net.backend = dataclasses.replace(net.backend, name=f"numpy:{r}")  # as "cupy:<rank>"
        net.fit(X, y, loss="cross_entropy", optimizer=nb.optim.SGD(0.5), batch_size=11,
                seed=3, verbose=0, distributed=True)  # fmt: skip
        return nb.to_numpy(net.params["0.W"])

    first, second = succeeded(on_ranks(2, rank))
    np.testing.assert_array_equal(first, second)


def test_a_callback_drawing_on_rank_0_alone_is_among_the_causes_named(on_ranks):
    """Weights alike, generators apart: the message named a layer of one's own alone."""
    show = nb.callbacks.LambdaCallback(lambda epoch, logs, model: model.rng.permutation(10))

    def rank(r):
        with pytest.raises(nb.distributed.DistributedError) as raised:
            cases.train(CASE, distributed=True, epochs=2, callbacks=[show] if r == 0 else [])
        return str(raised.value)

    CASE = cases.Case("numpy", "float64", "sgd", None)
    said = succeeded(on_ranks(2, rank))
    assert said[0] == said[1] and "or a callback drew from model.rng on some ranks only" in said[0]


class Alone:
    """The engine of a world of one: the sum over one rank is the array itself."""

    def __init__(self, ranks=None, backend=None):
        pass

    def allreduce(self, flat):
        return flat


@pytest.mark.parametrize(("raised", "busy"), [(None, False), (False, True), (True, False)])
def test_a_session_leaves_the_world_busy_only_after_one_ranks_own_error(monkeypatch, raised, busy):
    """Inside session() the world is busy; after it, busy again only where it ended by an
    exception not every rank raised (the job must then be aborted on the way out)."""
    monkeypatch.setattr(parallel, "engine_for", Alone)
    net = cases.model(cases.Case("numpy", "float64", "sgd", None))
    ranks = world.World()
    step = parallel.DataParallel(ranks, net, nb.losses.SoftmaxCrossEntropy(), nb.optim.SGD(0.1),
                                 [], None)  # fmt: skip
    with contextlib.ExitStack() as stack:
        if raised is not None:
            stack.enter_context(pytest.raises(nb.distributed.DistributedError))
        with step.session():
            assert ranks.busy is True
            if raised is not None:
                raise nb.distributed.DistributedError("stop", every_rank=raised)
    assert ranks.busy is busy


# --- the pieces ---------------------------------------------------------------------


def test_an_optimizers_rate_function_is_told_by_its_name():
    """A plain function as the rate (no config) is compared by its module and name, not
    its address, which differs from rank to rank; a Schedule and a number by config()."""
    text = alike.optimizer_text(nb.optim.SGD(halved_rate))
    assert text == "SGD(lr=tests.test_parallel_edges.halved_rate)"
    schedule = nb.schedules.StepDecay(0.1, 10, 0.5)
    assert alike.optimizer_text(nb.optim.SGD(schedule)) == nb.optim.SGD(schedule).config()
    assert alike.optimizer_text(nb.optim.Adam(0.01)) == nb.optim.Adam(0.01).config()


@pytest.fixture
def machine(monkeypatch):
    """A machine of 16 cores with no thread count set: ``machine(bound)`` binds this
    process to ``bound`` of them."""
    for name in parallel.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(parallel.os, "cpu_count", lambda: 16)

    def bind(bound: int):  # pid 0: this process (pid 1, init, may be bound to all 16)
        bound_to = {0: set(range(bound)), 1: set(range(16))}
        monkeypatch.setattr(parallel.os, "sched_getaffinity", bound_to.__getitem__)

    return bind


def test_a_large_steps_threads_are_the_cores_of_this_rank(machine, monkeypatch):
    """Under "auto", a step too large for one thread takes this rank's part of the cores:
    those it is bound to, else the machine's shared among the ranks on it (at least
    one); a thread count that is set is used as it is."""
    big = parallel.DataParallel.__new__(parallel.DataParallel)
    for ranks, bound, expected in ((2, 16, 8), (3, 16, 5), (2, 4, 4), (32, 16, 1)):
        big.world = world.World(rank=1, size=ranks, local_size=ranks)
        machine(bound)
        assert big.threads(10_000_000, 64) == expected, (ranks, bound)
    monkeypatch.delattr(parallel.os, "sched_getaffinity")  # not Linux: the machine's share
    assert big.threads(10_000_000, 64) == 1  # 16 cores // 32 ranks, at least one
    big.world = world.World(rank=1, size=2, local_size=2)
    assert big.threads(10_000_000, 64) == 8
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert big.threads(10_000_000, 64) is None  # the libraries' own, as set
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setitem(threads._setting, "threads", 2)
    assert big.threads(10_000_000, 64) == 2


def test_a_steps_size_is_of_a_ranks_share(machine):
    """Whether a step is small (one thread) is judged by a rank's share of the batch:
    ceil(rows / ranks) rows."""
    step = parallel.DataParallel.__new__(parallel.DataParallel)
    step.world = world.World(rank=0, size=2, local_size=2)
    machine(16)
    weights = -(-threads.SMALL_STEP // 6)  # 6 rows a share are a large step, 5 a small one
    assert step.threads(weights, 11) == 8  # shares of 6 + 5 rows
    assert step.threads(weights, 10) == 1  # of 5 + 5


def test_rank_0_alone_prints_the_fits_progress(on_ranks, capsys):
    """verbose=1 on three ranks prints what one process prints, once: rank 0 speaks for
    the job, the others are quiet."""
    case = cases.Case("numpy", "float64", "sgd", None)
    cases.train(case, distributed=False, epochs=2, verbose=1)
    alone = capsys.readouterr().out
    assert alone.count("epoch ") == 2
    succeeded(on_ranks(3, lambda r: cases.train(case, distributed=True, epochs=2, verbose=1)))
    assert capsys.readouterr().out == alone


@pytest.mark.parametrize(("rows", "measured"), [(30, 10), (3, 1), (2, 2)])
def test_each_rank_measures_its_block_of_the_validation_data(on_ranks, rows, measured):
    """Three ranks each measure a block of the validation rows (10 of 30, 1 of 3), once
    an epoch, not the whole; of fewer rows than ranks, every rank measures the whole."""
    case = cases.Case("numpy", "float64", "sgd", None)
    (_, _), (X_val, y_val) = cases.data()

    def rank(r):
        net, seen = cases.model(case), []
        forward = net.forward

        def counting(x, training=True):
            if not training:
                seen.append(int(x.shape[0]))
            return forward(x, training)

        net.forward = counting
        (X, y), _ = cases.data()
        validation = (X_val[:rows], y_val[:rows])
        net.fit(X, y, loss="cross_entropy", optimizer="sgd", epochs=2, batch_size=11,
                validation_data=validation, verbose=0, distributed=True)  # fmt: skip
        return sum(seen)

    assert succeeded(on_ranks(3, rank)) == [2 * measured] * 3


def test_a_long_value_is_cut_around_where_the_ranks_part():
    """60 characters before the first difference, then the rest up to 200."""
    early = alike.disagreement("x", ["a" * 10 + "b" + "z" * 300, "a" * 10 + "c" + "z" * 300])
    late = alike.disagreement("x", ["a" * 250 + "b" + "z" * 100, "a" * 250 + "c" + "z" * 100])
    assert "rank 0 has 'aaaaaaaaaab" in early and early.count("...") == 2
    assert f"rank 0 has ...{'a' * 60}bzz" in late and f"rank 1 has ...{'a' * 60}czz" in late


def test_a_short_value_is_shown_whole_and_a_cut_one_says_where():
    """A value of up to 200 characters is shown whole, wherever the ranks' texts part;
    a longer one is cut to 200 from 60 before the first difference, with "..." on each
    side where text was left out (none after a window that reaches the end)."""
    short = ["a" * 100 + "b", "a" * 100 + "c"]  # part at 101: the window would start at 41
    assert alike.disagreement("x", short) == f"x: rank 0 has '{short[0]}', rank 1 has '{short[1]}'"
    assert alike._excerpt("z" * 200, 41) == "z" * 200
    assert alike._excerpt("z" * 201, 1) == "..." + "z" * 200
    assert alike._excerpt("z" * 202, 1) == "..." + "z" * 200 + "..."
    assert alike._excerpt("z" * 201, 0) == "z" * 200 + "..."


def test_the_data_check_sums_bool_arrays_and_sees_fractions(backend):
    """Bool targets are summed as 0 and 1 (the standard sums numbers only; strict refuses
    bool sums); numbers are summed as they are, so a difference of a quarter in one value
    is told apart."""
    X = np.arange(12.0).reshape(4, 3)
    flags = np.array([True, False, True, True])
    as_bool = fingerprints.checksums(backend.asarray(X), backend.asarray(flags))
    as_int = fingerprints.checksums(backend.asarray(X), backend.asarray(flags.astype(np.int8)))
    # 3 ones in 3 (plain), rows 1 + 3 + 4 of at most 3 * 4, the one column wholly
    assert as_bool == as_int
    assert as_bool[3:] == ("1.00000000000 of 3", "0.66666666667", "1.00000000000")
    moved = X.copy()
    moved[2, 1] += 0.25
    assert fingerprints.checksums(backend.asarray(moved), backend.asarray(flags))[:3] != as_bool[:3]


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_a_torch_model_fitted_in_inference_mode_trains_on_thread_ranks(on_ranks):
    """Weights and Adam moments made inside torch.inference_mode refuse in-place updates
    outside it: the data-parallel step thaws them as one process's step does."""
    import torch

    case = cases.Case("torch", "float64", "adam", None)
    (X, y), _ = cases.data()
    fit = dict(loss="cross_entropy", epochs=2, batch_size=11, seed=3, verbose=0)

    def trained(distributed: bool):
        net, adam = cases.model(case), cases.optimizer(case)
        with torch.inference_mode():
            net.fit(X, y, optimizer=adam, **fit)
        net.fit(X, y, optimizer=adam, distributed=distributed, **fit)
        return cases.weights(net)

    alone = trained(False)
    for got in succeeded(on_ranks(2, lambda r: trained(True))):
        for name, w in alone.items():
            np.testing.assert_allclose(got[name], w, rtol=1e-10, atol=1e-12)


class MeanAbsOutput(nb.metrics.Metric):
    """A metric of one's own in the (value, weight) form the guide shows: the batch's
    mean, weighted by its rows."""

    name = "mean_abs_output"
    greater_is_better = False

    def batch(self, out, target, loss):
        xp = out.__array_namespace__()
        return xp.mean(xp.abs(out)), out.shape[0]


@pytest.mark.parametrize("size", [2, 3])
def test_a_metric_weighted_by_its_rows_is_summed_as_one_process(on_ranks, size):
    """Each rank's share adds its value times its weight: a metric of (mean, rows) per
    batch is one process's, in training and validation (batches of 12 rows: no share
    is empty)."""
    case = cases.Case("numpy", "float64", "sgd", None)
    options = dict(epochs=2, batch_size=12, metrics=[MeanAbsOutput()])
    alone, history = cases.train(case, distributed=False, **options)
    assert {"mean_abs_output", "val_mean_abs_output"} <= history.history.keys()
    results = on_ranks(size, lambda r: cases.train(case, distributed=True, **options))
    assert_as_one_process(succeeded(results), alone, history)


class NoEmptyShare(nb.metrics.Metric):
    """A metric of one's own that is a mean over the rows, weighted by them (it adds up
    over the ranks' blocks), and takes no reduction of an empty batch kindly (its mean
    is NaN there, its max an error)."""

    name = "no_empty_share"

    def batch(self, out, target, loss):
        xp = nb.backend.namespace_of(out)
        assert out.shape[0], "asked of an empty share"
        return xp.mean(xp.abs(out)) + 0 * xp.max(out), out.shape[0]


def test_a_metric_of_ones_own_adds_up_over_the_blocks_and_skips_an_empty_one(on_ranks):
    """Each epoch's last batch of 1 row leaves the other shares empty: no rank asks the
    metric of no rows (it gave NaN, or NumPy's max refused), and a row-weighted mean
    is one process's."""
    case = cases.Case("numpy", "float64", "sgd", 0.01)
    options = dict(metrics=["accuracy", NoEmptyShare()], validation_data=None)
    alone, history = cases.train(case, distributed=False, **options)
    results = on_ranks(3, lambda r: cases.train(case, distributed=True, **options))
    assert_as_one_process(succeeded(results), alone, history)
    assert all(np.isfinite(history["no_empty_share"]))


@pytest.mark.parametrize("how", ["checkpoint=", "callbacks="])
def test_a_checkpoint_given_on_one_rank_only_is_a_disagreement(on_ranks, tmp_path, how):
    """checkpoint= or a ModelCheckpoint on rank 0 alone: every rank names it at the
    start (the ranks' collectives crossed: rank 1 took rank 0's on_main None for the
    saved state and failed in Python's words, or waited for ever)."""
    case, path = cases.Case("numpy", "float64", "sgd", 0.01), tmp_path / "ckpt.h5"
    given = {"checkpoint=": dict(checkpoint=path),
             "callbacks=": dict(callbacks=[nb.callbacks.ModelCheckpoint(path)])}[how]  # fmt: skip

    def rank(r):
        with pytest.raises(world.DistributedError) as raised:
            cases.train(case, True, **(given if r == 0 else {}))
        return str(raised.value)

    for said in succeeded(on_ranks(2, rank)):
        assert "checkpoints (epochs between saves): rank 0 has [1], rank 1 has []" in said
    assert not path.exists()


def test_ranks_saving_at_other_epochs_are_a_disagreement(on_ranks, tmp_path):
    """log_every 1 on rank 0, 3 on rank 1, with a checkpoint: the same count of
    checkpoints, but rank 0's saves met rank 1's steps, and one failing hung the other."""
    case = cases.Case("numpy", "float64", "sgd", 0.01)

    def rank(r):
        with pytest.raises(world.DistributedError) as raised:
            cases.train(case, True, checkpoint=tmp_path / "m.h5", log_every=1 + 2 * r)
        return str(raised.value)

    for said in succeeded(on_ranks(2, rank)):
        assert "checkpoints (epochs between saves): rank 0 has [1], rank 1 has [3]" in said


def test_a_fit_refused_on_one_rank_before_the_ranks_meet_stops_every_rank(on_ranks):
    """A NaN in rank 1's X, found by validation_split's checks before the ranks compare
    their fits: rank 0 waited for rank 1 until the watchdog ended the job."""
    case = cases.Case("numpy", "float64", "sgd", 0.01)
    (X, y), _ = cases.data()

    def rank(r):
        data = X.copy()
        data[3, 0] = np.nan if r == 1 else data[3, 0]
        net = cases.model(case, 1)
        with pytest.raises(Exception) as raised:  # caught here: the harness breaks no wait
            net.fit(data, y, loss="cross_entropy", optimizer="sgd", validation_split=0.25,
                    verbose=0, distributed=True)  # fmt: skip
        return raised.value

    first, second = on_ranks(2, rank)  # the errors each caught
    assert isinstance(second, ValueError) and "NaN" in str(second)  # its own error
    assert isinstance(first, world.DistributedError) and first.every_rank
    assert str(first).startswith("the fit was refused on rank 1, ValueError: X holds 1 NaN")


class RefusesOnRankOne(nb.callbacks.Callback):
    """A callback of one rank's own that refuses the fit there, once the ranks have met."""

    def on_train_begin(self, model, settings):
        if nb.distributed.rank() == 1:
            raise ValueError("this rank's log folder is missing")


def test_a_fit_refused_by_a_callback_on_one_rank_stops_every_rank(on_ranks):
    """The ranks had met and compared their fits: rank 0 went on to read the checkpoint
    and waited for rank 1, which had left, until the watchdog ended the job."""
    case = cases.Case("numpy", "float64", "sgd", 0.01)
    (X, y), _ = cases.data()

    def rank(r):
        net = cases.model(case, 1)
        before = cases.weights(net)
        with pytest.raises(Exception) as raised:  # caught here: the harness breaks no wait
            net.fit(X, y, loss="cross_entropy", optimizer="sgd", epochs=2, verbose=0,
                    callbacks=[RefusesOnRankOne()], distributed=True)  # fmt: skip
        assert all(np.array_equal(w, before[k]) for k, w in cases.weights(net).items())
        return raised.value

    first, second = on_ranks(2, rank)  # the errors each caught
    assert isinstance(second, ValueError) and not hasattr(second, "every_rank")  # its own
    assert isinstance(first, world.DistributedError) and first.every_rank
    assert str(first) == (
        "could not begin the fit: on rank 1, ValueError: this rank's log folder is missing"
    )


class NoFolderOnRankOne(nb.callbacks.Callback):
    def on_train_begin(self, model, settings):
        if nb.distributed.rank() == 1:
            raise FileNotFoundError("logs/run1 is missing")


def test_a_callback_s_os_error_on_one_rank_stops_every_rank(on_ranks):
    """Any exception of a begin's, not a ValueError alone: the others waited for it."""
    (X, y), _ = cases.data()

    def rank(r):
        net = cases.model(cases.Case("numpy", "float64", "sgd", 0.01), 1)
        with pytest.raises(Exception) as raised:
            net.fit(X, y, loss="cross_entropy", optimizer="sgd", epochs=1, verbose=0,
                    callbacks=[NoFolderOnRankOne()], distributed=True)  # fmt: skip
        return raised.value

    first, second = on_ranks(2, rank)
    assert isinstance(second, FileNotFoundError)
    assert isinstance(first, world.DistributedError) and first.every_rank
    assert (
        str(first) == "could not begin the fit: on rank 1, FileNotFoundError: logs/run1 is missing"
    )


def test_ranks_whose_labels_differ_in_dtype_alone_train_alike(on_ranks):
    """y as int32 on one rank, int64 on the other, the same values: the sums agree, and
    the dtypes are named only where they differ."""
    (X, y), _ = cases.data()

    def rank(r):
        net = cases.model(cases.Case("numpy", "float64", "sgd", 0.01))
        labels = y.astype(np.int32) if r == 1 else y
        return net.fit(X, labels, loss="cross_entropy", optimizer="sgd", epochs=1,
                       batch_size=10, verbose=0, distributed=True).history["loss"]  # fmt: skip

    losses = succeeded(on_ranks(2, rank))
    assert losses[0] == losses[1]


class TrackedScale(nb.metrics.Metric):
    """A metric holding a torch weight that tracks gradients (a module of one's own):
    its value is tracked too."""

    name = "tracked"

    def __init__(self):
        torch = pytest.importorskip("torch")
        self.scale = torch.ones((), dtype=torch.float64, requires_grad=True)

    def batch(self, out, target, loss):
        xp = nb.backend.namespace_of(out)
        return xp.mean(xp.abs(out)) * self.scale, out.shape[0]


def test_a_tracked_metric_value_trains_on_thread_ranks_as_one_process(on_ranks):
    """The ranks' step put the tracked value in the gradient buffer's spare room, under
    autograd: the next step's matmul(out=...) was refused on every rank."""
    case = cases.Case("torch", "float64", "sgd", None)
    options = dict(metrics=[TrackedScale()], validation_data=None, batch_size=12)
    alone, history = cases.train(case, distributed=False, **options)
    results = on_ranks(2, lambda r: cases.train(case, distributed=True, **options))
    assert_as_one_process(succeeded(results), alone, history)


class StrayAtThreeRows(nb.metrics.Metric):
    """A metric whose batch of 3 rows (a block's last, in validation) gives ``stray``."""

    name = "stray"

    def __init__(self, stray):
        self.stray = stray

    def batch(self, out, target, loss):
        xp = nb.backend.namespace_of(out)
        value = xp.mean(xp.abs(out))
        if out.shape[0] == 3:
            return self.stray(xp, value)
        return value, out.shape[0]


@pytest.mark.parametrize(
    "stray",
    [lambda xp, v: (0.5, 3), lambda xp, v: (v, xp.asarray(3)), lambda xp, v: (v, math.nan)],
    ids=["python-number", "array-weight", "nan-weight"],
)
def test_a_stray_in_a_later_validation_batch_is_named_on_every_rank(on_ranks, stray):
    """Each rank's 15 validation rows go in batches of 6, 6 and 3: what the third gave
    failed in NumPy's words (a float has no astype), or an array weight went through."""
    case = cases.Case("numpy", "float64", "sgd", None)
    options = dict(metrics=[StrayAtThreeRows(stray)], batch_size=12, epochs=1)

    def rank(r):
        with pytest.raises(TypeError) as raised:
            cases.train(case, distributed=True, **options)
        return str(raised.value)

    for said in succeeded(on_ranks(2, rank)):
        assert said.startswith("'val_stray' of epoch 0, batch 2, is (")


def errors_on_ranks(on_ranks, backend, data_of_rank, **options) -> list:
    """What each of two thread ranks raised from a distributed fit of a small net on
    ``data_of_rank(rank)``, (X, y): caught by each rank, so neither aborts the other."""

    def fit(rank):
        net = nb.Sequential([Dense(2, 4), "tanh", Dense(4, 2)], backend=backend, seed=0)
        try:
            net.fit(*data_of_rank(rank), loss="cross_entropy", optimizer="adam", epochs=1,
                    verbose=0, distributed=True, **options)  # fmt: skip
        except Exception as exc:
            return exc

    return on_ranks(2, fit)


MOONS_40 = nb.datasets.make_moons(40, noise=0.2, seed=0)
WORDS_40 = np.array(["no", "yes"])[MOONS_40[1]]


@pytest.mark.parametrize(
    ("bad", "said"),
    [
        ("strings", r"^y holds <U3 values .*class labels must be integer ids"),
        ("none", r"^y is None: give targets y"),
        ("validation strings", r"^validation y holds <U3 values .*class labels must be integer"),
    ],
)
def test_bad_data_on_thread_ranks_is_refused_in_the_words_of_one_process(
    backend, on_ranks, bad, said
):
    """The ranks summed X and y to compare them before fit's own checks ran: labels as
    strings or y=None failed in NumPy's words (or an IndexError of parallel.py)."""
    X, y = MOONS_40
    options = {"validation_data": (X, WORDS_40)} if bad == "validation strings" else {}
    targets = {"strings": WORDS_40, "none": None}.get(bad, y)
    for result in errors_on_ranks(on_ranks, backend, lambda rank: (X, targets), **options):
        assert isinstance(result, TypeError) and re.search(said, str(result)), repr(result)


def test_labels_as_strings_on_one_rank_only_are_a_disagreement_on_every_rank(backend, on_ranks):
    """Rank 1 failed in NumPy's words before the first collective, and rank 0 waited."""
    X, y = MOONS_40

    def data(rank):
        return X, (WORDS_40 if rank == 1 else y)

    for result in errors_on_ranks(on_ranks, backend, data):
        assert isinstance(result, nb.distributed.DistributedError), repr(result)
        assert "rank 1 has" in str(result) and "<U3 of shape (40,)" in str(result)


def test_a_record_array_on_thread_ranks_is_named_as_in_one_process(backend, on_ranks):
    """np.isdtype refused a record dtype in the ranks' data sums: NumPy's words."""
    X, y = MOONS_40
    table = np.rec.fromarrays([X[:, 0], X[:, 1]], names="x1,x2")
    for result in errors_on_ranks(on_ranks, backend, lambda rank: (table, y)):
        assert isinstance(result, TypeError), repr(result)
        assert str(result).startswith("X is a structured array (fields x1, x2)"), str(result)


@pytest.mark.parametrize(
    ("data", "said"),
    [
        ("scalar X", r"^X is a single value; give an array of samples, one per row$"),
        ("scalar y", r"^y has a single value but X has 40 samples: they must match$"),
    ],
)
def test_a_single_value_on_thread_ranks_is_refused_in_the_words_of_one_process(
    backend, on_ranks, data, said
):
    """The ranks' data sums indexed a 0-d array's first axis: an IndexError of
    parallel.py on every rank."""
    X, y = MOONS_40
    X, y = (np.float64(1.0), y) if data == "scalar X" else (X, 1)
    for result in errors_on_ranks(on_ranks, backend, lambda rank: (X, y)):
        assert isinstance(result, ValueError) and re.search(said, str(result)), repr(result)


def test_a_stop_set_on_one_rank_outside_the_callbacks_is_named_there(on_ranks, monkeypatch):
    """A Stop button's thread on rank 0 alone: rank 0, which prints and saves, blamed a
    callback on another rank."""
    from nnbackend import training

    train_epoch = training.Trainer.train_epoch

    def stop_on_rank_0(self, batches, progress):
        metrics = train_epoch(self, batches, progress)
        if self.parallel.is_main and len(seen) >= 1:  # the first epoch over, somewhere
            self.model.stop_training = True
        seen.append(1)
        return metrics

    seen = []
    monkeypatch.setattr(training.Trainer, "train_epoch", stop_on_rank_0)
    case = cases.Case("numpy", "float64", "sgd", None)
    results = succeeded(on_ranks(2, lambda r: cases.train(case, distributed=True)))
    said = [got.stop_reason for _, got in results]
    assert said[0].startswith("model.stop_training was set at epoch")
    assert said[1].startswith("on rank 0, model.stop_training was set at epoch")


class Pruned(Exception):
    """A pruning callback's: Optuna's TrialPruned, say, raised on every rank alike."""


def test_an_error_every_rank_raises_in_a_callback_lets_the_next_fit_go_on(on_ranks):
    """A trial pruned by a callback on every rank, then the next trial's fit: the next
    fit was taken for a rank fitting again while the others were in the last."""

    def prune(epoch, logs, model):
        raise Pruned("pruned")

    def rank(r):
        with pytest.raises(Pruned):
            cases.train(cases.STOPPING_CASE, distributed=True,
                        callbacks=[nb.callbacks.LambdaCallback(prune)])  # fmt: skip
        return cases.train(cases.STOPPING_CASE, distributed=True)

    alone = cases.train(cases.STOPPING_CASE, distributed=False)
    assert_as_one_process(succeeded(on_ranks(2, rank)), *alone)


def test_ranks_in_allgathers_of_different_things_end_the_job_saying_where(on_ranks, monkeypatch):
    """Rank 1 left a fit by its own error and fits again while rank 0 votes on stopping:
    the vote read rank 1's description of its fit, and rank 1 the vote (TypeError)."""
    said = []
    monkeypatch.setattr(world.World, "abort", lambda self, message: said.append(message))

    def rank(r):
        w = world._world.get()
        w.left_by = "RuntimeError: once" if r == 1 else ""
        return w.allgather(r, "whether to stop" if r == 0 else "what each rank trains")

    on_ranks(2, rank)
    assert said[0] == said[1] and said[0].startswith(
        "the ranks are at different points of the job: rank 0 in an allgather of whether to "
        "stop; rank 1 in an allgather of what each rank trains (it left its last distributed "
        "fit by RuntimeError: once). A rank that leaves"
    )


def test_a_model_without_weights_is_broadcast_and_fitted_on_ranks(on_ranks):
    """Sequential(["sigmoid"]) fitted in one process; on ranks, packing no arrays for the
    broadcast and the sums raised IndexError."""
    X = np.random.default_rng(0).normal(size=(8, 2))

    def rank(r):
        net = nb.Sequential(["sigmoid"], seed=0)
        nb.distributed.broadcast(net)
        history = net.fit(X, (X > 0) * 1.0, loss="mse", optimizer="sgd", epochs=1,
                          verbose=0, distributed=True)  # fmt: skip
        return history["loss"][0]

    alone = nb.Sequential(["sigmoid"], seed=0).fit(
        X, (X > 0) * 1.0, loss="mse", optimizer="sgd", epochs=1, verbose=0
    )
    assert succeeded(on_ranks(2, rank)) == pytest.approx([alone["loss"][0]] * 2)


def test_broadcast_between_models_of_other_float_dtypes_names_it(on_ranks):
    def rank(r):
        net = nb.Sequential([Dense(2, 1)], seed=0, dtype="float64" if r else "float32")
        nb.distributed.broadcast(net)

    said = [str(e) for e in on_ranks(2, rank) if isinstance(e, nb.distributed.DistributedError)]
    assert said and said[0] == (
        "the ranks do not run the same broadcast: float dtype: rank 0 has 'float32', rank 1 "
        "has 'float64'. Every rank must build the same model and give it the same optimizer "
        "(or none) to broadcast."
    )


def test_broadcast_between_other_optimizers_names_them(on_ranks):
    """An Adam on rank 0, an SGD on rank 1: rank 1 alone failed to load Adam's moments,
    holding rank 0's weights already (two Adams of other rates trained apart unseen)."""

    def rank(r):
        net = nb.Sequential([Dense(2, 1)], seed=0)
        nb.distributed.broadcast(net, nb.optim.Adam(0.01) if r == 0 else nb.optim.SGD(0.1))

    said = [str(e) for e in on_ranks(2, rank) if isinstance(e, nb.distributed.DistributedError)]
    assert said and "same broadcast: optimizer: rank 0 has {'type': 'Adam', 'lr': 0.01" in said[0]


def test_broadcast_between_ranks_on_their_own_gpus_goes_on(on_ranks):
    """Each rank of a two-GPU job is on its own device: "cupy:0", "cupy:1"."""
    import dataclasses

    def rank(r):
        net = nb.Sequential([Dense(2, 1)], seed=r)
        net.backend = dataclasses.replace(net.backend, name=f"numpy:{r}")  # as "cupy:<rank>"
        nb.distributed.broadcast(net)
        return nb.to_numpy(net.params["0.W"]).tolist()

    first, second = on_ranks(2, rank)  # the errors each caught
    assert first == second


def test_allreduce_grads_of_a_model_without_weights_on_ranks_is_a_no_op(on_ranks):
    def rank(r):
        nb.distributed.allreduce_grads(nb.Sequential(["sigmoid"], seed=0), rows=4)
        return "done"

    assert on_ranks(2, rank) == ["done", "done"]


def test_a_fit_that_ends_well_forgets_the_error_an_earlier_one_left_by(on_ranks):
    X = np.random.default_rng(0).normal(size=(8, 2))

    def rank(r):
        w = world._world.get()
        w.left_by = "RuntimeError: once" if r == 1 else ""
        net = nb.Sequential([Dense(2, 1)], seed=0)
        net.fit(X, X[:, :1], loss="mse", optimizer="sgd", epochs=1, verbose=0, distributed=True)
        return w.left_by

    assert on_ranks(2, rank) == ["", ""]


def test_a_broadcast_on_rank_0_alone_meeting_a_fit_ends_the_job_saying_where(on_ranks, monkeypatch):
    """`if is_main(): broadcast(model)`, then fit on every rank: the broadcast's check
    met the fit's under the same label, and the fit read the broadcast's (KeyError)."""
    said = []

    def abort(self, message):
        said.append(message)
        raise SystemExit(1)

    monkeypatch.setattr(world.World, "abort", abort)
    X = np.random.default_rng(0).normal(size=(8, 2))

    def rank(r):
        net = nb.Sequential([Dense(2, 1)], seed=0)
        if r == 0:
            nb.distributed.broadcast(net)
        net.fit(X, X[:, :1], loss="mse", optimizer="sgd", epochs=1, verbose=0, distributed=True)

    on_ranks(2, rank)
    assert said and said[0] == (
        "the ranks are at different points of the job: rank 0 in an allgather of the model "
        "each rank broadcasts; rank 1 in an allgather of what each rank trains. Every rank "
        "calls fit, broadcast and the other collective steps alike, in order: ending all 2 ranks."
    )


@pytest.mark.parametrize("fails", [False, True])
def test_whole_batch_hands_the_layers_back_to_one_process(fails):
    """After a data-parallel step (or one that raised), BatchNorm takes one process's
    statistics again: a later single-process training step must not call the ranks'
    sum (which would hang, or sum over a batch of the wrong size)."""
    from nnbackend.distributed.whole_batch import whole_batch

    class NoRanks:  # an engine that must not be called after the step
        def allreduce(self, flat):
            raise AssertionError("summed over the ranks outside a distributed step")

    model = nb.Sequential([nb.layers.Dense(3, 4), nb.layers.BatchNorm(4)], backend="numpy", seed=0)
    rng = model.rng
    with pytest.raises(RuntimeError) if fails else contextlib.nullcontext():
        with whole_batch(model, slice(0, 2), 4, NoRanks()):
            if fails:
                raise RuntimeError("a step that failed")
    assert model.rng is rng
    assert all(layer.whole_batch is None for layer in model.layers)
    model.forward(np.ones((8, 3), np.float32), training=True)  # one process's statistics: no sum


class DyAloneModel(nb.Sequential):
    """DeZero's backward(self, gy): no input_grad."""

    def backward(self, dy):
        return super().backward(dy)


def test_a_distributed_fit_runs_a_backward_that_takes_dy_alone(on_ranks):
    """The ranks called backward(..., input_grad=False): every rank ended in a TypeError."""
    X, y = MOONS_40

    def fit(rank):
        model = DyAloneModel([Dense(2, 4), "tanh", Dense(4, 2)], seed=0)
        model.fit(X, y, loss="cross_entropy", optimizer="sgd", verbose=0, distributed=True)
        return nb.to_numpy(model.params["0.W"])

    first, second = succeeded(on_ranks(2, fit))
    np.testing.assert_array_equal(first, second)


def test_after_a_distributed_fit_a_step_without_backward_is_refused(on_ranks):
    """The distributed steps left no marks: torch's loss.backward() alone stepped on the
    fit's last gradients."""
    X, y = MOONS_40

    def run(rank):
        model = nb.Sequential([Dense(2, 4), "tanh", Dense(4, 2)], seed=0)
        loss, opt = nb.losses.SoftmaxCrossEntropy(), nb.optim.SGD(0.1)
        model.fit(X, y, loss=loss, optimizer=opt, verbose=0, distributed=True)
        xb, yb = model.backend.asarray(X[:8]), model.backend.asarray(y[:8])
        loss.forward(model.forward(xb), yb)
        loss.backward()
        with pytest.raises(RuntimeError, match="no model.backward"):
            opt.step(model.params, model.grads)

    succeeded(on_ranks(2, run))
