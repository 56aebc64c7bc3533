"""nnbackend.functional's reductions against NumPy's own (float64, every backend)."""

from __future__ import annotations

import numpy as np

import nnbackend as nb
from nnbackend import functional as F

ROWS = np.array(
    [
        [0.5, -1.0, 2.0, 3.0],
        [1000.0, 999.0, -1000.0, 0.0],  # exp overflows unshifted
        [-np.inf, 1.0, -np.inf, 2.0],  # masked classes
        [-np.inf, -np.inf, -np.inf, -np.inf],  # every class masked
        [np.inf, 1.0, 0.0, -np.inf],
    ]
)


def test_logsumexp_is_numpys_logaddexp_over_a_row(backend64):
    want = np.logaddexp.reduce(ROWS, axis=1)  # [.., .., .., -inf, inf]
    with np.errstate(divide="ignore"):  # log(0) of the masked row: -inf, as it should be
        got = nb.to_numpy(F.logsumexp(backend64.asarray(ROWS)))
    np.testing.assert_allclose(got, want, rtol=1e-15)
    assert got[3] == -np.inf and got[4] == np.inf  # not NaN
    kept = nb.to_numpy(F.logsumexp(backend64.asarray(ROWS[:3]), axis=0, keepdims=True))
    np.testing.assert_allclose(kept, np.logaddexp.reduce(ROWS[:3], axis=0, keepdims=True))


def test_softmax_and_log_softmax_of_finite_and_masked_rows(backend64):
    rows = backend64.asarray(ROWS[:3])
    shifted = ROWS[:3] - ROWS[:3].max(axis=1, keepdims=True)
    want = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(nb.to_numpy(F.softmax(rows)), want, rtol=1e-14, atol=1e-300)
    log_want = ROWS[:3] - np.logaddexp.reduce(ROWS[:3], axis=1, keepdims=True)
    np.testing.assert_allclose(nb.to_numpy(F.log_softmax(rows)), log_want, rtol=1e-14)


def test_softmax_log_softmax_and_logsumexp_follow_their_axis():
    """Mutation run: no test used an axis but the last; -1 in their place passed."""
    x = np.random.default_rng(0).normal(size=(3, 4)) * 5
    s = np.exp(x) / np.exp(x).sum(axis=0, keepdims=True)
    np.testing.assert_allclose(nb.functional.softmax(x, axis=0), s, rtol=1e-12)
    np.testing.assert_allclose(nb.functional.log_softmax(x, axis=0), np.log(s), rtol=1e-12)
    wanted = np.log(np.exp(x).sum(axis=0))
    np.testing.assert_allclose(nb.functional.logsumexp(x, axis=0), wanted, rtol=1e-12)
