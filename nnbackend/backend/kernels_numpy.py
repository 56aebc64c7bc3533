"""The kernel table's NumPy entries (``kernels.py`` lists them): the reference's
operations in its own order, so the results agree bit for bit, but written into one
buffer with ``out=`` instead of a new temporary per operator. On large batches that
saves an allocation and a pass over memory per operator. Some sums are the BLAS's
instead (a Dense layer's bias gradient and softmax's row sums as products with ones,
the one-hot cross-entropy's as a dot product): it adds in its own order, so those agree
to rounding.

Entries are only those measured faster than the reference (timeit, one thread, on a
shared 2-core CPU): softmax cross-entropy 0.80x the reference's time on 512 x 1000
logits, 0.7x on 200 x 10, sigmoid + BCE 0.63-0.77x, Adam 0.81x on a 784 x 50 weight
and 0.3x on 784 x 256 (see ``adam``), tanh's backward 0.77x on 512 x 1000, ReLU 0.3-0.45x
(see ``relu``), a bias gradient 0.45-0.8x (see ``sum_into``). ReLU's and sigmoid's
backward were not faster and stay None.
"""

from __future__ import annotations

import threading

import numpy as np


def tanh_backward(y, dy):
    """dy * (1 - y * y)"""
    dx = np.multiply(y, y)
    np.subtract(1, dx, out=dx)
    np.multiply(dy, dx, out=dx)
    return dx


def softmax_xent(z, onehot, scale: float):
    """(-scale * sum(onehot * log_softmax(z)), scale * (softmax(z) - onehot)); z and
    onehot (batch, classes) of one float dtype. A class of no weight adds nothing to
    the loss, also where its logit is -inf (masked), as in the reference."""
    shifted = np.subtract(z, _row_max(z))
    exp = np.exp(shifted)
    total = _row_sum(exp)
    np.subtract(shifted, np.log(total), out=shifted)  # log p
    loss = np.vdot(onehot, shifted)  # the BLAS's dot: 0.6 against 1.7 us on 100 x 10
    if loss != loss:  # 0 * -inf (a masked class), or NaN scores: the weighted ones alone
        loss = np.vdot(onehot, np.where(onehot == 0, 0, shifted))
    np.divide(exp, total, out=exp)
    np.subtract(exp, onehot, out=exp)
    if scale != 1.0:
        np.multiply(scale, exp, out=exp)
    return -scale * loss, exp


def softmax_xent_labels(z, labels, scale: float):
    """``softmax_xent`` with (batch,) integer labels in place of one-hot rows: from 16
    classes on, the label's entry of each row is picked out rather than a one-hot array
    made and multiplied in (0.56x the time on 512 x 1000, 0.95x on 200 x 32, with the
    labels' range checked); below, the one-hot rows cost less than the picking (0.8-0.9x
    on 100 x 2 to 64 x 15). A label outside 0..classes-1 is a row of zeros, as in the
    reference."""
    n, classes = z.shape
    if classes < 16 or (n and (labels.min() < 0 or labels.max() >= classes)):
        return softmax_xent(z, (labels[:, None] == np.arange(classes)).astype(z.dtype), scale)
    shifted = np.subtract(z, _row_max(z))
    exp = np.exp(shifted)
    total = _row_sum(exp)
    rows = np.arange(n)
    picked = shifted[rows, labels]  # log p of each label: picked - log(total)
    np.subtract(picked, np.log(total[:, 0]), out=picked)
    np.divide(exp, total, out=exp)
    exp[rows, labels] -= 1
    if scale != 1.0:
        np.multiply(scale, exp, out=exp)
    return -scale * np.add.reduce(picked), exp


def _row_max(z):
    """(n, 1) maxima of z's rows. NumPy reduces a short row (few classes) one element
    at a time; down the columns of the transpose it runs in SIMD lanes: 2.1 against
    6.8 us on 200 x 10, a copy of z included; past 32 classes it is no faster."""
    if z.shape[1] <= 32:
        return np.maximum.reduce(np.ascontiguousarray(z.T), axis=0)[:, None]
    return np.maximum.reduce(z, axis=1, keepdims=True)


def _row_sum(z):
    """(n, 1) sums of z's rows, as the product z @ ones: 1.1 against 3.7 us on 200 x 10."""
    return np.matmul(z, _kept("ones", z.shape[1], z.dtype))[:, None]


def sigmoid_bce(z, t, scale: float):
    """(scale * sum((max(z, 0) - z t) + log1p(exp(-|z|))), scale * (sigmoid(z) - t)),
    sigmoid(z) as 0.5 tanh(z / 2) + 0.5; z and t of one shape and float dtype. The small
    term is added last: where z t cancels max(z, 0), it is the whole loss."""
    losses = np.maximum(z, 0.0)
    np.subtract(losses, np.multiply(z, t), out=losses)
    tail = np.abs(z)
    np.negative(tail, out=tail)
    np.exp(tail, out=tail)
    np.log1p(tail, out=tail)
    np.add(losses, tail, out=losses)
    grad = np.multiply(0.5, z)
    np.tanh(grad, out=grad)
    np.multiply(0.5, grad, out=grad)
    np.add(grad, 0.5, out=grad)
    np.subtract(grad, t, out=grad)
    np.multiply(scale, grad, out=grad)
    return scale * np.add.reduce(losses, axis=None), grad


# Adam's update over a whole weight makes two temporaries of its size; allocating and
# freeing those on every step (the allocator hands blocks that large back to the system)
# cost more than the arithmetic: 1.1 ms of 1.4 on a 784 x 256 float32 weight. So the
# update runs over slices of at most CHUNK elements, in two scratch rows kept per
# thread: 0.35 ms there, and 2.0 ms instead of 6.8 on 1000 x 1000 (the slices also stay
# in cache between the update's passes).
CHUNK = 2**17
_scratch = threading.local()


def adam(p, m, v, g, lr_t: float, b1: float, b2: float, eps: float, root: float) -> None:
    """m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g g; p -= lr_t m / (sqrt(v) / root + eps)"""
    hyper = (lr_t, b1, b2, eps, root)
    whole = p.size <= CHUNK or not all(a.flags.c_contiguous for a in (p, m, v, g))
    if whole:  # small enough, or not flat (slicing needs flat views)
        return _adam_slice(p, m, v, g, *hyper, *_rows(p.size, p.dtype, p.shape))
    p, m, v, g = (a.reshape(-1) for a in (p, m, v, g))
    scratch, denominator = _rows(CHUNK, p.dtype)
    for start in range(0, p.size, CHUNK):
        part, size = slice(start, start + CHUNK), min(CHUNK, p.size - start)
        _adam_slice(p[part], m[part], v[part], g[part], *hyper, scratch[:size], denominator[:size])


def _adam_slice(p, m, v, g, lr_t, b1, b2, eps, root, scratch, denominator) -> None:
    m *= b1
    np.multiply(1 - b1, g, out=scratch)
    m += scratch
    v *= b2
    np.multiply(1 - b2, g, out=scratch)
    np.multiply(scratch, g, out=scratch)
    v += scratch
    np.sqrt(v, out=denominator)
    if root != 1.0:  # dividing by 1 changes nothing: skip the pass
        np.divide(denominator, root, out=denominator)
    np.add(denominator, eps, out=denominator)
    np.multiply(lr_t, m, out=scratch)
    np.divide(scratch, denominator, out=scratch)
    p -= scratch


def _rows(size: int, dtype, shape=None) -> tuple[np.ndarray, np.ndarray]:
    """Two scratch arrays of ``size`` elements of ``dtype`` (shaped ``shape`` if given),
    cut from this thread's kept rows, which grow to the largest size asked."""
    kept = _scratch.__dict__.setdefault("rows", {})
    rows = kept.get(dtype)
    if rows is None or rows[0].size < size:
        rows = kept[dtype] = (np.empty(size, dtype), np.empty(size, dtype))
    shape = (size,) if shape is None else shape
    return rows[0][:size].reshape(shape), rows[1][:size].reshape(shape)


def relu(x):
    """maximum(x, 0), against an array of zeros: NumPy compares with a scalar 0 one
    element at a time, and with an array in SIMD lanes, 2.5-4x sooner."""
    return np.maximum(x, _zeros_like(x))


def _zeros_like(x):
    """Zeros of x's shape cut from the kept row, or a scalar 0 past ``MAX_KEPT``: a
    predict of a whole set would otherwise keep a row of its size for good."""
    return 0 if x.size > MAX_KEPT else _kept("zeros", x.size, x.dtype).reshape(x.shape)


def dense_act(x, W, b, name: str):
    """act(x @ W + b), the activation written over the product (no second array)."""
    y = np.matmul(x, W)
    y += b
    if name == "relu":
        return np.maximum(y, _zeros_like(y), out=y)
    if name == "tanh":
        return np.tanh(y, out=y)
    np.multiply(0.5, y, out=y)  # sigmoid, as F.sigmoid: 0.5 tanh(y / 2) + 0.5
    np.tanh(y, out=y)
    np.multiply(0.5, y, out=y)
    return np.add(y, 0.5, out=y)


def sum_into(x, axis, out):
    """sum(x, axis) into out; a column sum of a 2-D x as the product ones @ x, which
    the BLAS runs 2-2.5x sooner than the reduction (a Dense layer's bias gradient)."""
    if axis == 0 and x.ndim == 2 and x.dtype in (np.float32, np.float64):
        return np.matmul(_kept("ones", x.shape[0], x.dtype), x, out=out)
    return np.sum(x, axis=axis, out=out)


_constant_rows: dict = {}  # (fill, dtype) -> a read-only row; read-only: threads share it
MAX_KEPT = 1 << 22  # elements: the longest row kept (16 MiB of float32)


def _kept(fill: str, size: int, dtype) -> np.ndarray:
    """``size`` zeros or ones of ``dtype``, cut from a kept row that grows as needed."""
    row = _constant_rows.get((fill, dtype))
    if row is None or row.size < size:
        row = (np.zeros if fill == "zeros" else np.ones)(size, dtype)
        row.flags.writeable = False
        _constant_rows[fill, dtype] = row
    return row[:size]


KERNELS = {
    "dense_act": dense_act,
    "relu": relu,
    "tanh_backward": tanh_backward,
    "softmax_xent": softmax_xent,
    "softmax_xent_labels": softmax_xent_labels,
    "sigmoid_bce": sigmoid_bce,
    "adam": adam,
    "matmul_into": lambda a, b, out: np.matmul(a, b, out=out),
    "sum_into": sum_into,
}
