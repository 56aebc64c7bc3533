"""Edges of the NumPy kernels (nnbackend.backend.kernels_numpy), its lean namespace
(numpy_fast) and the BLAS advice (blas) that a mutation run of the three found no test
holding: each test fails under a mutant the rest of the suite let pass (the comments
name them). Expected values are worked out here with plain NumPy, not by the kernels."""

from __future__ import annotations

import sys
from pathlib import Path

import array_api_compat.numpy as compat
import numpy as np
import pytest

import nnbackend as nb
from nnbackend.backend import blas, fused, kernels_numpy


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float64, a masked (-inf) entry staying -inf."""
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax_xent_by_hand(z: np.ndarray, labels: np.ndarray):
    """The summed loss -sum(log p[label]) and its gradient softmax - onehot."""
    logp = log_softmax(z)
    rows = np.arange(len(labels))
    grad = np.exp(logp)
    grad[rows, labels] -= 1
    return -logp[rows, labels].sum(), grad


@pytest.mark.parametrize("classes", [5, 20])
@pytest.mark.parametrize("labels", [True, False])
def test_a_masked_class_off_the_label_adds_nothing_to_the_loss(backend, classes, labels):
    """A logit of -inf on a class of no weight (a masked class) gives a finite loss, the
    label's -log p alone, and a gradient of 0 there, with labels or one-hot rows."""
    # kills kernels_numpy 11, 12 (the loss left NaN), 13 (0), 14 (NaN)
    rng = np.random.default_rng(1)
    z = rng.normal(size=(4, classes))
    y = np.array([0, 2, 1, 3])
    z[0, 1] = z[2, 4] = -np.inf
    target = y if labels else np.eye(classes)[y]
    loss = nb.losses.SoftmaxCrossEntropy(reduction="sum")
    value = loss.forward(backend.asarray(z), backend.asarray(target))
    grad = nb.to_numpy(loss.backward())
    want, want_grad = softmax_xent_by_hand(z, y)
    assert np.isfinite(want)
    assert float(nb.to_numpy(value)) == pytest.approx(want, rel=1e-5)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-5, atol=1e-6)
    assert grad[0, 1] == 0 and grad[2, 4] == 0


@pytest.mark.parametrize("labels", [True, False])
def test_softmax_over_more_than_32_classes_matches_one_written_by_hand(backend, labels):
    """From 33 classes on, NumPy takes the rows' maxima along the rows (below, down the
    transpose's columns): the mean loss and gradient are the hand-written ones."""
    # kills kernels_numpy 73 (no maxima), 74 (axis 2), 75 (the columns' maxima), 76 (kept dims)
    rng = np.random.default_rng(2)
    z = rng.normal(size=(6, 40)) * 3
    z[:, 7] += 90.0  # exp(90) overflows float32: the shift by the row maximum counts
    y = rng.integers(0, 40, 6)
    target = y if labels else np.eye(40)[y]
    loss = nb.losses.SoftmaxCrossEntropy()
    value = loss.forward(backend.asarray(z), backend.asarray(target))
    grad = nb.to_numpy(loss.backward())
    want, want_grad = softmax_xent_by_hand(z, y)
    assert float(nb.to_numpy(value)) == pytest.approx(want / 6, rel=1e-5)
    np.testing.assert_allclose(grad, want_grad / 6, rtol=1e-4, atol=1e-6)
    with fused(False):
        reference = loss.forward(backend.asarray(z), backend.asarray(target))
    assert float(nb.to_numpy(value)) == pytest.approx(float(nb.to_numpy(reference)), rel=1e-6)


def test_the_kept_rows_of_zeros_and_ones_are_read_only():
    """The rows of zeros (ReLU's) and ones (the bias gradient's sums) that NumPy's kernels
    keep are shared by every call and thread: a write into one is refused, not kept."""
    # kills kernels_numpy 222, 223 (the kept rows writable)
    x = np.array([[-1.0, 2.0], [3.0, -4.0]])
    np.testing.assert_array_equal(kernels_numpy.relu(x), [[0.0, 2.0], [3.0, 0.0]])
    out = np.empty(2)
    np.testing.assert_array_equal(kernels_numpy.sum_into(x, 0, out), [2.0, -2.0])
    for fill in ("zeros", "ones"):
        row = kernels_numpy._constant_rows[fill, np.dtype(np.float64)]
        with pytest.raises(ValueError, match="read-only"):
            row[0] = 7.0
        assert row[0] == (0.0 if fill == "zeros" else 1.0)


def test_the_lean_numpy_namespace_says_its_array_api_version():
    """nnbackend's NumPy namespace names the standard's version it follows, as
    array-api-compat's does (libraries check it before using a namespace)."""
    # kills numpy_fast 3 (no __array_api_version__)
    xp = nb.get_backend("numpy").xp
    assert xp.__array_api_version__ == compat.__array_api_version__
    assert xp.__array_namespace_info__ is compat.__array_namespace_info__


def test_the_lean_numpy_astype_and_reshape_copy_when_asked(backend):
    """astype copies by default, even to the array's own dtype, and reshape with
    copy=True copies: writing into the result leaves the input as it was."""
    # kills numpy_fast 13 (astype's copy=False: the input itself), 16 (reshape's copy ignored)
    xp = backend.xp
    x = backend.asarray(np.arange(6.0).reshape(2, 3))
    same_type = xp.astype(x, x.dtype)
    flat = xp.reshape(x, (6,), copy=True)
    flat[0] = 10.0
    same_type[0, 1] = 20.0
    np.testing.assert_array_equal(nb.to_numpy(x), [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]])
    assert nb.to_numpy(flat)[0] == 10.0 and nb.to_numpy(same_type)[0, 1] == 20.0


@pytest.mark.parametrize("axis, keepdims", [(1, False), (0, False), (None, True)])
def test_the_lean_numpy_count_nonzero_counts_along_the_axis_asked(axis, keepdims):
    """count_nonzero per row, per column, and of the whole array kept as (1, 1): the
    counts of a loop over the rows and columns."""
    # kills numpy_fast 19, 20, 21 (one count of the whole array, or its dims dropped)
    a = np.array([[0.0, 1.0, 2.0], [0.0, 0.0, 3.0]])
    by_hand = {1: [2, 1], 0: [0, 1, 2], None: [[3]]}[axis]
    got = nb.get_backend("numpy").xp.count_nonzero(a, axis=axis, keepdims=keepdims)
    assert np.shape(got) == np.shape(by_hand)
    np.testing.assert_array_equal(got, by_hand)


@pytest.mark.parametrize("kind", [["real floating"], ("integral", ["bool"])])
def test_the_lean_numpy_isdtype_refuses_a_kind_it_cannot_hash(kind):
    """A kind the cache cannot hold (a list) goes to array-api-compat's isdtype, which
    refuses it: a TypeError, not a silent None."""
    # kills numpy_fast 29 (None for an unhashable kind)
    xp = nb.get_backend("numpy").xp
    with pytest.raises(TypeError, match="kind argument") as ours:
        xp.isdtype(np.dtype(np.float32), kind)
    with pytest.raises(TypeError) as theirs:
        compat.isdtype(np.dtype(np.float32), kind)
    assert str(ours.value) == str(theirs.value)


def test_the_blas_pools_are_the_blas_ones_alone():
    """threadpoolctl lists OpenMP's pools too; the BLAS line describes the BLAS ones,
    and NumPy's (loaded here) is among them."""
    # kills blas 17 (the pools that are not a BLAS)
    pools = blas.blas_pools()
    assert pools and all(pool["user_api"] == "blas" for pool in pools)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/cpuinfo is Linux's")
def test_the_cpu_flags_are_those_of_proc_cpuinfo():
    """cpu_flags reads the first "flags" line of /proc/cpuinfo, split on spaces."""
    # kills blas 34, 35, 36, 39 (no flags, or the wrong part of the line)
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    first = next(line for line in lines if line.startswith("flags"))
    assert blas.cpu_flags() == set(first.split(":", 1)[1].split())


def test_a_cpu_that_cannot_be_read_has_no_flags_and_gets_no_advice(monkeypatch):
    """Where /proc/cpuinfo cannot be read (not Linux) the CPU reports no instruction
    sets, and even Haswell kernels are no older than what it is known to run."""
    # kills blas 33 (None for the flags: blas_advice then failed on AVX512 <= None)

    class Unreadable:
        def __init__(self, path):
            self.path = path

        def read_text(self, errors=None):
            raise PermissionError(13, "Permission denied", self.path)

    monkeypatch.setattr(blas, "Path", Unreadable)
    assert blas.cpu_flags() == frozenset()
    haswell = [{"internal_api": "openblas", "architecture": "Haswell", "version": "0.3.31"}]
    assert blas.blas_advice(pools=haswell, environ={}) is None
