"""The GEMM floor: how long one training run's matrix products alone take.

Per layer and batch the loops do three products: the forward ``a @ W``, the weight
gradient ``a.T @ delta`` and the input gradient ``delta @ W.T`` (not for the first
layer, whose input gradient nobody needs). Each distinct (kind, m, k, n) is timed on
its own, with the operands laid out as the loops lay them out (transposed views
included), and the floor is the sum of calls x seconds per call. Everything else a
step does (activations, softmax, updates, Python) comes on top of it.

A conv layer (workload 6) multiplies its kernel (F, C*k*k) by the batch's columns; the
floor counts that as one product with every sample's columns side by side,
(F, C*k*k) @ (C*k*k, batch*OH*OW), and its weight gradient as
(F, batch*OH*OW) @ (batch*OH*OW, C*k*k): one large product, the fastest way to those
flops, whatever the loops do. Its input gradient is not needed (the first layer).
"""

from __future__ import annotations

import time
from collections import Counter

import numpy as np

FORWARD, WEIGHT_GRAD, INPUT_GRAD = "a @ W", "a.T @ delta", "delta @ W.T"
CONV_FORWARD, CONV_WEIGHT_GRAD = "W @ cols", "dz @ cols.T"


def matmul_calls(wl) -> Counter:
    """(kind, m, k, n) -> number of calls in one training run of wl; the product is
    (m, k) @ (k, n)."""
    calls = Counter()
    layers = list(zip(wl.sizes[:-1], wl.sizes[1:], strict=True))
    for rows in wl.batch_rows():
        if wl.conv is not None:
            filters, ck, oh, ow = wl.conv_dims()
            calls[(CONV_FORWARD, filters, ck, rows * oh * ow)] += wl.epochs
            calls[(CONV_WEIGHT_GRAD, filters, rows * oh * ow, ck)] += wl.epochs
        for i, (n_in, n_out) in enumerate(layers):
            calls[(FORWARD, rows, n_in, n_out)] += wl.epochs
            calls[(WEIGHT_GRAD, n_in, rows, n_out)] += wl.epochs
            if i > 0 or wl.conv is not None:  # below a conv layer, the input gradient counts
                calls[(INPUT_GRAD, rows, n_out, n_in)] += wl.epochs
    return calls


def flops(calls: Counter) -> int:
    return sum(2 * m * k * n * count for (_, m, k, n), count in calls.items())


def operands(kind, m, k, n, make):
    """Two operands for an (m, k) @ (k, n) product, laid out as the loops have them."""
    if kind == WEIGHT_GRAD:
        return make((k, m)).T, make((k, n))
    if kind in (INPUT_GRAD, CONV_WEIGHT_GRAD):
        return make((m, k)), make((n, k)).T
    return make((m, k)), make((k, n))


def seconds_per_call(a, b, sync, min_time: float, rounds: int = 3) -> float:
    """The best over a few rounds of (time of reps products) / reps, where reps is
    doubled until one round lasts at least min_time."""
    a @ b
    sync()
    reps = 1
    while True:
        best = float("inf")
        for _ in range(rounds):
            start = time.perf_counter()
            for _ in range(reps):
                a @ b
            sync()
            best = min(best, time.perf_counter() - start)
        if best >= min_time:
            return best / reps
        reps *= 2


def gemm_floor(wl, asarray, sync, min_time: float = 0.05, seed: int = 0) -> dict:
    """Time every distinct product of wl. asarray moves a host array to the device
    being measured; sync waits for it."""
    rng = np.random.default_rng(seed)

    def make(shape):
        return asarray(rng.standard_normal(shape).astype(wl.dtype))

    shapes, total = [], 0.0
    for (kind, m, k, n), count in sorted(matmul_calls(wl).items()):
        per_call = seconds_per_call(*operands(kind, m, k, n, make), sync, min_time)
        total += count * per_call
        shapes.append(
            {
                "kind": kind,
                "m": m,
                "k": k,
                "n": n,
                "calls": count,
                "seconds_per_call": per_call,
                "gflops": 2 * m * k * n / per_call / 1e9,
            }
        )
    total_flops = flops(matmul_calls(wl))
    return {
        "seconds": total,
        "flops": total_flops,
        "gflops": total_flops / total / 1e9,
        "shapes": shapes,
    }
