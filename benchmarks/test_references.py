"""Every timed run does the work the NumPy loop does (the same weights after a few
steps, each run prepared as the benchmark prepares it), and the loop learns.

Run: PYTHONPATH=$PWD python -m pytest -q benchmarks/test_references.py (the suite runs
it too; torch's rows skip without torch). Random data, a few steps.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from benchmarks import gemm, references
from benchmarks.workloads import WORKLOADS, Data, init_params, load_moons

# Each workload's layers with a little random data: (workload, samples, steps).
SMALL = {
    1: (200, 5),
    2: (300, 1),  # 3 batches of 100
    3: (300, 1),  # batches of 128, 128 and 44
    4: (1024, 1),  # 2 batches of 512
    5: (64, 3),  # full batch
    6: (200, 1),  # 2 batches of 100 images
}


def small_workload(number):
    n, epochs = SMALL[number]
    return dataclasses.replace(WORKLOADS[number], n_samples=n, epochs=epochs)


def random_data(wl, seed=1) -> Data:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((wl.n_samples, *(wl.image or wl.sizes[:1]))).astype(wl.dtype)
    if wl.output == "softmax":
        y = rng.integers(0, wl.sizes[-1], wl.n_samples)
    else:
        y = rng.integers(0, 2, (wl.n_samples, 1)).astype(wl.dtype)
    return Data(X, y, init_params(wl.sizes, wl.dtype, wl=wl), "random")


def trained(impl, wl, data, backend="numpy"):
    """The weights one run of ``impl`` leaves, prepared as the benchmark prepares the
    run it times (harness.PREPARE), on the CPU."""
    from benchmarks import harness

    ctx = harness.Context(backend, np, "cpu", gpu=False)
    try:
        train = harness.PREPARE[impl](wl, data, ctx)
    except harness.Unavailable as exc:
        pytest.skip(str(exc))
    train()
    return train.weights()


@pytest.mark.parametrize("number", sorted(SMALL))
@pytest.mark.parametrize(
    "impl, backend",
    [("torch-manual", "numpy"), ("torch-autograd", "numpy"), ("nnbackend", "numpy"),
     ("nnbackend", "strict"), ("nnbackend", "torch")],
)  # fmt: skip
def test_every_timed_run_matches_the_numpy_loop(number, impl, backend):
    if "torch" in (impl.split("-")[0], backend):
        pytest.importorskip("torch")
    wl = small_workload(number)
    data = random_data(wl)
    expected = trained("ref", wl, data)
    got = trained(impl, wl, data, backend)
    # rtol 1e-4 as float32 allows; atol for the entries that sit near zero (biases start
    # there), where float32 summation order alone gives relative differences of 1e-3.
    for (W0, _), (W, b), (W1, b1) in zip(data.init, expected, got, strict=True):
        assert not np.allclose(W, W0), "the weights did not move"
        np.testing.assert_allclose(W1, W, rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(b1, b, rtol=1e-4, atol=1e-7)


def test_moons_loss_decreases():
    wl = dataclasses.replace(WORKLOADS[1], epochs=500)
    X, y, _ = load_moons(wl.n_samples, wl.dtype)
    params = [(W.copy(), b.copy()) for W, b in init_params(wl.sizes, wl.dtype)]
    before = float(references.loss_xp(wl, X, y, params))
    last = float(references.train_xp(wl, X, y, params))
    after = float(references.loss_xp(wl, X, y, params))
    assert after < last <= before
    assert after < 0.6 * before


def test_gemm_counts_the_loops_products():
    wl = small_workload(3)  # batches of 128, 128 and 44; layers 784-256-256-10
    calls = gemm.matmul_calls(wl)
    assert calls[(gemm.FORWARD, 128, 784, 256)] == 2
    assert calls[(gemm.WEIGHT_GRAD, 784, 44, 256)] == 1
    assert calls[(gemm.INPUT_GRAD, 128, 10, 256)] == 2
    assert not any(kind == gemm.INPUT_GRAD and n == 784 for kind, _, _, n in calls)
    per_sample = 784 * 256 + 256 * 256 + 256 * 10
    assert gemm.flops(calls) == 2 * 300 * (3 * per_sample - 784 * 256)


def test_gemm_counts_the_conv_products():
    wl = small_workload(6)  # 2 batches of 100 images; 30 filters 5x5 -> 24x24; 4320-100-10
    calls = gemm.matmul_calls(wl)
    assert calls[(gemm.CONV_FORWARD, 30, 25, 100 * 576)] == 2
    assert calls[(gemm.CONV_WEIGHT_GRAD, 30, 100 * 576, 25)] == 2
    assert calls[(gemm.INPUT_GRAD, 100, 100, 4320)] == 2  # into the pooled features
    per_sample = 2 * 30 * 25 * 576 + 3 * (4320 * 100 + 100 * 10)
    assert gemm.flops(calls) == 2 * 200 * per_sample


def test_launch_counts_are_per_step():
    """Workload 1 on the CPU: about the same operators per step from 40 to 80 steps as
    from 40 to 120 (what a run does once has dropped out; the 20 logs of each run
    gather more scalars in a longer one, worth a fraction of an operator per step)."""
    pytest.importorskip("torch")
    from benchmarks import harness, launches

    ctx = harness.Context("torch", np, "cpu", gpu=False)
    wl = dataclasses.replace(WORKLOADS[1], epochs=120)
    data = random_data(wl)
    for impl in launches.IMPLS:
        prepare = harness.PREPARE[impl]
        counted = launches.launches_per_step(prepare, wl, data, ctx)
        per_step, by_name = counted["per_step"], counted["by_name"]
        assert 15 <= per_step <= 100, (impl, per_step)
        assert 1 <= counted["views_per_step"] <= 20, (impl, counted)
        assert sum(by_name.values()) == pytest.approx(per_step)
        assert all(name.startswith("aten::") for name in by_name)
        assert not launches.VIEWS & set(by_name), by_name
        assert list(by_name.values()) == sorted(by_name.values(), reverse=True)
        counts = [
            launches.profiled_counts(prepare, launches.steps_of(wl, n), data, ctx)[0].total()
            for n in (40, 120)
        ]
        assert abs((counts[1] - counts[0]) / 80 - per_step) <= 1, (impl, counts, per_step)


def test_a_view_counts_apart_unless_it_copies():
    torch = pytest.importorskip("torch")
    from torch.profiler import profile

    from benchmarks import launches

    a = torch.ones(4, 6)
    with profile() as prof:
        a.t().reshape(24)  # a transpose, then a reshape that must copy
        a.reshape(24)  # a view
        a + 1
    computing, views = launches.counted_events(prof, cuda=False)
    assert computing == {"aten::reshape": 1, "aten::add": 1}
    assert views == {"aten::t": 1, "aten::reshape": 1}


def test_cupys_peak_is_the_most_a_run_held_of_the_pool():
    from benchmarks.harness import PeakBytes

    peak = PeakBytes()
    peak.free_postprocess(mem_size=512, mem_ptr=1, pmem_id=1)  # from before the run
    for size in (1024, 2048):
        peak.malloc_postprocess(device_id=0, size=size, mem_size=size, mem_ptr=2, pmem_id=2)
    peak.free_postprocess(mem_size=2048, mem_ptr=2, pmem_id=2)
    peak.malloc_postprocess(device_id=0, size=512, mem_size=512, mem_ptr=0, pmem_id=0)  # failed
    peak.malloc_postprocess(device_id=0, size=100, mem_size=512, mem_ptr=3, pmem_id=3)
    assert (peak.held, peak.peak) == (1024, 2560)


def test_a_timed_run_records_how_far_its_weights_are_from_the_loops(monkeypatch):
    """The benchmark's own check that a run trained what the loop trained: a faster
    run that did less would show here, in the JSON, beside its time."""
    from benchmarks import harness

    wl = small_workload(2)
    data = random_data(wl)
    lazy = harness.PREPARE["nnbackend"]

    def does_nothing(wl, data, ctx):  # prepared as nnbackend is, and never trained
        train = lazy(wl, data, ctx)
        return harness.with_weights(lambda: None, train.weights)

    monkeypatch.setitem(harness.PREPARE, "torch-manual", does_nothing)
    monkeypatch.setattr(harness, "wait_until_quiet", lambda seconds: None)
    ctx = harness.Context("numpy", np, "cpu", gpu=False, skip=("torch-autograd", "gemm"))
    times = harness.time_workload(wl, data, ctx, 1, quick=True, quiet_wait=0)
    assert times["nnbackend"]["weights_off_by"] < 1e-4
    assert times["torch-manual"]["weights_off_by"] > 1e-2
    assert "weights_off_by" not in times["ref"]
