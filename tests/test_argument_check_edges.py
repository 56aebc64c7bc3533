"""Edges of the checks of what users hand in (a metric's batch, History's strays, seeds,
thread counts, the toy datasets' bounds) that a mutation run found no test holding:
each test here holds a line that a mutant changed without a test failing."""

from __future__ import annotations

import math

import pytest

import nnbackend as nb
from nnbackend.metrics import check_batch_value


def test_a_batch_part_of_three_is_refused_as_no_pair(backend):
    """A metric's batch giving (value, weight, extra) is refused as no pair, by name."""
    xp = backend.xp
    out = xp.asarray([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(TypeError, match=r"^Accuracy\.batch returned .*: it returns a pair"):
        check_batch_value(nb.metrics.Accuracy(), (xp.max(out), 2, 0), out)
    check_batch_value(nb.metrics.Accuracy(), (xp.max(out), 2), out)  # the pair is taken


def test_a_batch_value_on_another_device_than_the_outputs_is_refused():
    """A 0-d value on another device than the outputs' is refused, naming both devices."""
    xs = pytest.importorskip("array_api_strict")
    out = xs.asarray([[1.0, 2.0]])
    value = xs.asarray(2.0, device=xs.Device("device1"))
    with pytest.raises(TypeError, match=r"its value is on .*device1.*, the outputs on .*CPU"):
        check_batch_value(nb.metrics.Accuracy(), (value, 1), out)


class _FailingTransfer:
    """A backend whose transfer fails for a reason of its own (a device lost)."""

    def __init__(self, backend):
        self.owns = backend.owns

    def to_floats(self, arrays):
        raise RuntimeError("device lost")


def test_a_transfer_error_with_no_stray_batch_is_raised_as_it_was(backend):
    """Where every batch part is a (0-d array, number), to_floats' own error is raised
    unchanged, not made a TypeError naming no batch; the weighted mean is read right."""
    from nnbackend.history import EpochLogs, to_floats

    xp = backend.xp

    def values():
        return {"loss": ([(xp.asarray(2.0), 3), (xp.asarray(4.0), 1)], 4)}

    with pytest.raises(RuntimeError, match="^device lost$"):
        to_floats([EpochLogs(0, values(), backend)], _FailingTransfer(backend))
    logs = EpochLogs(0, values(), backend)
    to_floats([logs], backend)
    assert dict(logs) == {"loss": 2.5}


def test_a_later_batch_part_of_three_is_named_by_its_key_and_batch(backend):
    """A later batch's (value, weight, extra) is named as the stray by key, epoch and
    batch, a TypeError, not Python's unpacking error."""
    from nnbackend.history import EpochLogs, to_floats

    xp = backend.xp
    parts = [(xp.asarray(2.0), 1), (xp.asarray(4.0), 1, 0)]
    with pytest.raises(TypeError, match=r"^'acc' of epoch 3, batch 1, is \("):
        to_floats([EpochLogs(3, {"acc": (parts, 2)}, backend)], backend)


@pytest.mark.parametrize("weight", [math.nan, math.inf, -1, -0.5])
def test_a_weight_not_finite_or_below_0_is_refused_at_any_batch(backend, weight):
    """A NaN weight made the epoch's value NaN, a negative one flipped its sign, both
    without a word; a weight of 0 (a batch that counts nothing) is taken."""
    from nnbackend.history import EpochLogs, to_floats

    xp = backend.xp
    out = xp.asarray([[1.0, 2.0]])
    with pytest.raises(TypeError, match=r"^Accuracy\.batch returned .*: its weight is "):
        check_batch_value(nb.metrics.Accuracy(), (xp.max(out), weight), out)
    parts = [(xp.asarray(2.0), 1), (xp.asarray(4.0), weight)]
    with pytest.raises(TypeError, match=r"^'acc' of epoch 1, batch 1, is \("):
        to_floats([EpochLogs(1, {"acc": (parts, 2)}, backend)], backend)
    logs = EpochLogs(1, {"acc": ([(xp.asarray(2.0), 1), (xp.asarray(4.0), 0)], 1)}, backend)
    assert dict(logs) == {"acc": 2.0}


@pytest.mark.parametrize(
    "seed, error",
    [([], TypeError), ([1, 2.5], TypeError), ([True, 1], TypeError), ([1, -1], ValueError)],
)
def test_a_seed_list_is_checked_entry_by_entry(seed, error):
    """An empty seed list, or one with a single bad entry among good ones, is refused."""
    with pytest.raises(error, match=r"^seed must be an int of at least 0 \(or a list"):
        nb.Generator(seed)


def test_a_seed_list_of_whole_numbers_is_taken():
    """A list or tuple of whole numbers >= 0 seeds a generator, the same one each time."""
    first, again = nb.Generator([3, 4]), nb.Generator((3, 4))
    assert first.permutation(50).tolist() == again.permutation(50).tolist()


def test_limit_threads_of_none_or_auto_leaves_the_count_and_refuses_zero():
    """limit_threads(None) and ("auto") run the block with the count unchanged; 0 and
    True are refused before the block."""
    before = nb.get_num_threads()
    for n in (None, "auto"):
        with nb.limit_threads(n):
            assert nb.get_num_threads() == before
    for n in (0, True):
        with pytest.raises(ValueError, match="number of threads is a whole number from 1"):
            with nb.limit_threads(n):
                pass


def test_thread_counts_are_held_to_one_to_max_threads_both_ends_included():
    """1 and MAX_THREADS are taken, as ints; 0 and MAX_THREADS + 1 are refused."""
    from nnbackend.backend.threads import MAX_THREADS, _checked

    assert _checked(1) == 1 and _checked(MAX_THREADS) == MAX_THREADS
    for n in (0, MAX_THREADS + 1):
        with pytest.raises(ValueError, match="number of threads is a whole number from 1"):
            _checked(n)


def test_a_toy_draw_is_held_to_10_to_the_8_samples():
    """n_samples over 10**8 is refused before the draw; one under it reaches the next
    check (the spread's), not the count's."""
    with pytest.raises(ValueError, match="^n_samples must be"):
        nb.datasets.make_blobs(10**8 + 1, cluster_std=-1.0, seed=0)
    with pytest.raises(ValueError, match="^cluster_std must be a finite number at least 0"):
        nb.datasets.make_blobs(9**8 + 1, cluster_std=-1.0, seed=0)


class FloatMSE(nb.losses.MSE):
    """A loss of one's own whose forward gives a Python float (float(...) of the sum)."""

    def forward(self, pred, target):
        return float(super().forward(pred, target))


def test_a_loss_giving_a_python_number_is_told_of_its_forward(backend):
    """The loss's value was blamed on "a metric's batch" in fit and evaluate."""
    import numpy as np

    X = np.linspace(-1, 1, 12).reshape(6, 2)
    model = nb.Sequential([nb.layers.Dense(2, 1)], backend=backend, seed=0)
    said = r"^'loss' of epoch 0, batch 0, is \(.*: a loss's forward returns a 0-d array"
    with pytest.raises(TypeError, match=said):
        model.fit(X, X[:, :1], loss=FloatMSE(), optimizer="sgd", verbose=0)
    with pytest.raises(TypeError, match=said):
        model.evaluate(X, X[:, :1], loss=FloatMSE())
