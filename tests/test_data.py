"""Batches: on the model's device, the same order on every backend, host or device path."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import nnbackend as nb
from nnbackend.data import Batches
from tests.conftest import CPU_BACKEND_NAMES

X = np.arange(30, dtype=np.float64).reshape(10, 3)
Y = np.arange(10)


def collect(batches):
    return [(nb.to_numpy(xb), nb.to_numpy(yb)) for xb, yb in batches]


@pytest.mark.parametrize("on_device", [True, False])
def test_batches_live_on_the_backend(backend, on_device):
    batches = Batches(X, Y, backend, 4, rng=nb.Generator(0), y_dtype="int64", on_device=on_device)
    assert len(batches) == 3
    seen = []
    for xb, yb in batches:
        backend.check_array(xb)
        backend.check_array(yb)
        assert xb.dtype == backend.dtype and yb.dtype == backend.xp.int64
        seen.append(nb.to_numpy(yb))
    assert [len(s) for s in seen] == [4, 4, 2]
    assert sorted(np.concatenate(seen)) == list(range(10))  # every sample once


@pytest.mark.parametrize("native", [True, False])  # torch's rows by index_select, or take
def test_same_seed_same_batches_on_every_backend_and_path(native):
    orders = set()
    for name in CPU_BACKEND_NAMES:
        for on_device in (True, False):
            be = nb.get_backend(name, dtype="float64")
            batches = Batches(
                X, Y, be, 3, rng=nb.Generator(5), y_dtype="int64", on_device=on_device
            )
            with nb.backend.fast_paths(native):
                rows = collect(batches)
            orders.add(tuple(int(v) for _, yb in rows for v in yb))
            for xb, yb in rows:  # and each row came with its label
                np.testing.assert_array_equal(xb[:, 0], yb * 3)
    assert len(orders) == 1
    assert orders.pop() != tuple(range(10))  # and it was shuffled


@pytest.mark.parametrize("on_device", [True, False])
def test_each_pass_draws_a_new_order_from_the_generator(backend, on_device):
    """Every epoch reshuffles: the first two passes over one Batches are the generator's
    first two permutations (NumPy's, on the host, from the same seed)."""
    batches = Batches(X, Y, backend, 4, rng=nb.Generator(7), y_dtype="int64", on_device=on_device)
    orders = [np.concatenate([yb for _, yb in collect(batches)]) for _ in range(2)]
    draws = nb.Generator(7).host()
    for order in orders:
        np.testing.assert_array_equal(order, draws.permutation(10))
    assert sorted(orders[0]) == sorted(orders[1]) == list(range(10))
    assert not np.array_equal(orders[0], orders[1])


def test_full_batch_keeps_the_order_and_rows_match_labels(backend):
    [(xb, yb)] = collect(Batches(X, Y, backend, None, rng=nb.Generator(0), y_dtype="int64"))
    np.testing.assert_array_equal(yb, Y)
    np.testing.assert_array_equal(xb, X.astype(np.float32))


def test_shuffled_rows_stay_with_their_labels(backend):
    for xb, yb in collect(Batches(X, Y, backend, 4, rng=nb.Generator(1), y_dtype="int64")):
        np.testing.assert_array_equal(xb[:, 0], yb * 3)


def test_arrays_already_on_the_device_are_used_as_they_are(backend):
    Xd = backend.asarray(X)
    batches = Batches(Xd, backend.asarray(Y), backend, None, shuffle=False, y_dtype="int64")
    [(xb, _)] = list(batches)
    assert xb is Xd
    on_host = Batches(Xd, backend.asarray(Y), backend, 4, y_dtype="int64", on_device=False)
    assert on_host.on_device  # there is no host copy to take batches from
    assert sum(xb.shape[0] for xb, _ in on_host) == 10


def test_batch_size_must_be_positive():
    with pytest.raises(ValueError, match=r"batch_size \(None for full batch\) must be at least 1"):
        Batches(X, Y, nb.get_backend("numpy"), 0)


def test_rows_and_targets_must_match_and_be_there(backend):
    """Batches used by hand (the guide's loop) has no fit to check: a short y had its
    extra targets dropped in silence, and no rows gave a ZeroDivisionError."""
    with pytest.raises(ValueError, match="X has 3 rows but y has 5: give one target per"):
        Batches(X[:3], Y[:5], backend, 2, rng=nb.Generator(0))
    with pytest.raises(ValueError, match="X has 10 rows but y has 4"):
        Batches(X, Y[:4], backend, None)
    with pytest.raises(ValueError, match=r"X is empty \(shape \(0, 3\)\): there are no rows"):
        Batches(X[:0], Y[:0], backend, 4)
    assert len(Batches(X[:3], None, backend, 2)) == 2  # no targets: nothing to match
    as_list = collect(Batches(X, Y.tolist(), backend, 4, shuffle=False, y_dtype="int64"))
    assert [yb.tolist() for _, yb in as_list] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


@pytest.mark.parametrize("on_device", [True, False])
def test_unshuffled_batches_come_in_order_of_batch_size(backend, on_device):
    batches = Batches(X, Y, backend, 4, shuffle=False, y_dtype="int64", on_device=on_device)
    # NumPy's X of the model's dtype is there already; of another, on_device says
    there = backend.owns(X) and X.dtype == backend.dtype
    assert batches.on_device is (on_device or there)
    assert [yb.tolist() for _, yb in collect(batches)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_auto_keeps_the_data_on_the_device_while_it_takes_under_half_its_free_memory(
    backend, monkeypatch
):
    """A CPU backend's device is the host: always there. On a GPU X and y go whole to
    the device only while they take less than half of its free memory (here X is
    10 x 3 float32, 120 bytes, and y 80 bytes of int64)."""
    assert Batches(X, Y, backend, 4).on_device is True
    b32 = backend.with_dtype("float32")
    if b32.owns(X):
        pytest.skip("NumPy's arrays are on its device already")
    for free, y, fits in [(401, Y, True), (400, Y, False), (241, None, True), (240, None, False)]:
        monkeypatch.setattr(type(b32), "free_memory", lambda self, free=free: free)
        assert Batches(X, y, b32, 4).on_device is fits, (free, y)


@pytest.mark.parametrize("on_device", [True, False])
@pytest.mark.parametrize("big", [[[1e39]], [[0.0, 1.0], [2.0, 1e39]], [[0.0, 1.0], [-1e39, 2.0]]])
def test_float64_values_past_float32_range_are_refused_on_either_path(backend, on_device, big):
    """They would become inf in a float32 model; on the host path each batch is cast on
    its way, so the range is checked before the first one."""
    X64 = np.asarray(big, dtype=np.float64)
    with pytest.raises(ValueError, match=r"X holds values beyond float32's range \(the first at"):
        Batches(X64, None, backend.with_dtype("float32"), 1, on_device=on_device)
    edge = np.full((2, 2), float(np.finfo(np.float32).max))  # the largest float32 is no overflow
    assert Batches(-edge, None, backend.with_dtype("float32"), 1, on_device=on_device).n == 2


def test_float_targets_of_one_output_stay_floats(backend):
    """1-D targets are class labels (int64) for a loss that takes labels only; a
    regression's (batch,) targets keep their fractions."""
    y = np.array([0.25, 1.5, -2.75])
    assert nb.data.target_dtype(nb.losses.MSE(), y, backend) == backend.dtype_name
    assert nb.data.target_dtype(nb.losses.SoftmaxCrossEntropy(), Y, backend) == "int64"
    model = nb.Sequential([nb.layers.Dense(3, 1)], backend=backend, seed=0)
    model.loss = nb.losses.MSE()
    got = model.evaluate(X[:3], y)["loss"]
    assert got == pytest.approx(np.mean((model.predict_proba(X[:3])[:, 0] - y) ** 2), rel=1e-5)


def test_soft_label_rows_keep_their_fractions():
    """Mutation run: soft rows cast to int64 like 1-D labels trained on a loss of 0."""
    from nnbackend.data import target_dtype

    numpy = nb.get_backend("numpy")
    soft = np.full((2, 2), 0.5)
    assert target_dtype(nb.losses.SoftmaxCrossEntropy(), soft, numpy) == numpy.dtype_name
    model = nb.Sequential([nb.layers.Dense(3, 2)], seed=0)
    loss = model.evaluate(np.ones((2, 3)), soft, loss="cross_entropy")["loss"]
    assert loss > 0.69  # ln 2 at the least; 0.0 where the soft rows became int64 zeros


def test_batches_take_a_seed_as_rng_and_refuse_what_is_none(backend):
    """rng=0 (as Sequential(seed=0) takes it) was kept and crashed at the first pass,
    "'int' object has no attribute 'permutation'"; shuffle="False" shuffled."""
    X, y = nb.datasets.make_moons(100, seed=0)
    seeded = nb.data.Batches(X, y, backend, batch_size=32, rng=0)
    same = nb.data.Batches(X, y, backend, batch_size=32, rng=nb.Generator(0))
    first, again = next(iter(seeded)), next(iter(same))
    assert np.array_equal(nb.to_numpy(first[1]), nb.to_numpy(again[1]))
    assert not np.array_equal(nb.to_numpy(first[1]), y[:32])  # shuffled
    with pytest.raises(TypeError, match=r"Batches\(rng=\) takes an nb.Generator \(model.rng\)"):
        nb.data.Batches(X, y, backend, batch_size=32, rng="0")
    with pytest.raises(TypeError, match="shuffle must be True or False"):
        nb.data.Batches(X, y, backend, batch_size=32, shuffle="False")


def test_the_readme_says_worker_threads_follow_set_backend():
    """It said a threaded search's estimators take $NNBACKEND or NumPy; they take
    set_backend's choice, which is the process's."""
    import threading

    from nnbackend.sklearn import MLPClassifier

    X, y = nb.datasets.make_moons(40, seed=0)
    found = {}

    def fit_in_a_thread():
        est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
        found["backend"] = est.fit(X, y).model_.backend.name

    nb.set_backend("strict")  # the fixture resets it after the test
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # not converged in 2 epochs
        worker = threading.Thread(target=fit_in_a_thread)
        worker.start()
        worker.join()
    assert found["backend"] == "strict"
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert "in worker\n  threads `nb.set_backend`'s choice" in readme
