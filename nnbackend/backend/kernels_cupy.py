"""The kernel table's CuPy entries (``kernels.py`` lists them): each fused group is
one ``cupy.ElementwiseKernel``, so a step launches one kernel where the reference
launches one per operator (each launch costs CuPy 10-20 us on the host). Softmax
cross-entropy over labels is one kernel with a thread per row where the rows are
short (up to ``ROW_CLASSES``), else CuPy's own row reductions (``max``, ``sum``) with
everything elementwise around them fused; either way its loss and the accuracy's count
of right rows come out of one sum. The optimizers' kernels update their arrays in place.

Compiled by NVRTC on first use and cached by CuPy (``~/.cupy/kernel_cache``).
Results agree with the reference to rounding (the compiler may contract a * b + c
into one fused multiply-add), which ``tests/test_kernels.py -m gpu`` checks. Each
kernel's source is in ``ELEMENTWISE``, so that machines without a GPU can check the
arithmetic too: ``tests/test_cupy_sources.py`` compiles every body with the host's C
compiler and holds it to the reference.
"""

from __future__ import annotations

import functools
import math

from nnbackend.backend.kernels_cupy_images import (
    ACTIVATIONS,
    convolution_from,
    pooling_from,
)
from nnbackend.backend.kernels_cupy_images import SOURCES as IMAGE_SOURCES

# one element of the labels' softmax cross-entropy (``softmax_xent_counted_tail``);
# ``rows`` is z again, read across the row. Only the label's entry adds to the loss (a
# logit of -inf elsewhere is no NaN), and it is a hit where argmax would pick it, the
# first of the row's largest, in a row without NaN (whose maximum is NaN)
SOFTMAX_XENT_COUNTED = """
const ptrdiff_t row = i / classes;
const int column = i % classes;
const bool labelled = column == labels[row];
grad = scale * (e / total - (labelled ? (T)1 : (T)0));
part = labelled ? -scale * (z - zmax - log(total)) : (T)0;
hit = (T)(labelled && z == zmax);
for (int j = 0; hit != (T)0 && j < column; ++j) {
  if (rows[row * classes + j] == zmax) hit = 0;
}
"""

# one row i of the labels' softmax cross-entropy in one pass (few classes: a thread
# per row loops over them): the gradient's row, and the row's loss and hit
SOFTMAX_XENT_ROW = """
const ptrdiff_t start = i * classes;
T zmax = z[start];
int first = 0;
for (int j = 1; j < classes; ++j) {
  const T v = z[start + j];
  if (v > zmax || (v != v && zmax == zmax)) {
    zmax = v;
    first = j;
  }
}
T total = 0;
for (int j = 0; j < classes; ++j) total += exp(z[start + j] - zmax);
for (int j = 0; j < classes; ++j) {
  grad[start + j] = scale * (exp(z[start + j] - zmax) / total - (j == label ? (T)1 : (T)0));
}
const bool known = 0 <= label && label < classes;
part = known ? -scale * (z[start + label] - zmax - log(total)) : (T)0;
hit = (T)(first == label && zmax == zmax);
"""
ROW_CLASSES = 64  # up to this many classes a row's thread does it all; beyond, the tail

# flat index i of a batch's inputs (rows, xcols) <- row index[i / xcols] of X; each
# row's threads copy that row of y too, column by column: the batch in one launch
TAKE_ROWS = """
const ptrdiff_t row = i / xcols;
const int column = i % xcols;
const ptrdiff_t from = index[row];
xb = X[from * xcols + column];
for (ptrdiff_t c = column; c < ycols; c += xcols) yb[row * ycols + c] = y[from * ycols + c];
"""


# name -> (inputs, outputs, body) of each cupy.ElementwiseKernel ("raw": indexed by hand)
ELEMENTWISE = {
    "sigmoid": ("T x", "T y", "y = (T)0.5 * tanh((T)0.5 * x) + (T)0.5"),
    "tanh_backward": ("T y, T dy", "T dx", "dx = dy * (1 - y * y)"),
    "sigmoid_backward": ("T y, T dy", "T dx", "dx = dy * (y * (1 - y))"),
    "relu_backward": ("T y, T dy", "T dx", "dx = dy * (T)(y > 0)"),
    # a Dense layer's bias and the activation after it (the product is cuBLAS's)
    **{
        f"bias_{name}": ("T z, T b", "T y", f"T x = z + b; {activation}")
        for name, activation in ACTIVATIONS.items()
        if name != "linear"
    },
    "exp_shift": ("T z, T zmax", "T e", "e = exp(z - zmax)"),
    "softmax_xent_tail": (
        "T z, T zmax, T e, T total, T h, T scale",
        "T grad, T part",
        "grad = scale * (e / total - h);"
        " part = h == 0 ? (T)0 : -scale * h * (z - zmax - log(total))",  # also at z = -inf
    ),
    # the same, the one-hot entry h made from the labels, and hit = 1 at the label's
    # entry where it is its row's first largest score (argmax's pick) and the row has no
    # NaN: the loss and the count of right rows are then one sum
    "softmax_xent_counted_tail": (
        "T z, T zmax, T e, T total, raw T rows, raw L labels, int32 classes, T scale",
        "T grad, T part, T hit",
        SOFTMAX_XENT_COUNTED,
    ),
    "softmax_xent_row": (
        "raw T z, L label, int32 classes, T scale",
        "raw T grad, T part, T hit",
        SOFTMAX_XENT_ROW,
    ),
    "sigmoid_bce": (  # hit: the logit on the target's side of 0, as count_correct has it
        "T z, T t, T scale",
        "T grad, T part, T hit",
        "T a = z > 0 ? z : -z;"
        " part = scale * (((z > 0 ? z : (T)0) - z * t) + log1p(exp(-a)));"
        " grad = scale * ((T)0.5 * tanh((T)0.5 * z) + (T)0.5 - t);"
        " hit = (T)(z == z && (z > 0) == (t > (T)0.5))",
    ),
    "sgd": ("T g, T lr", "T p", "p -= lr * g"),
    "momentum": ("T g, T lr, T mu", "T p, T v", "v = mu * v - lr * g; p += v"),
    "adam": (  # c1, c2: 1 - b1 and 1 - b2, worked out on the host in float64 as the
        # reference does (1 - 0.999f in float32 is 1.3e-5 off 0.001)
        "T g, T lr_t, T b1, T c1, T b2, T c2, T eps, T root",
        "T p, T m, T v",
        "m = b1 * m + c1 * g; v = b2 * v + c2 * g * g; p -= lr_t * m / (sqrt(v) / root + eps)",
    ),
    # a batch's rows of X and of y, int64 labels (L, as the index) or targets in X's dtype
    "take_rows_labels": (
        "raw T X, raw L index, raw L y, int32 xcols, int32 ycols",
        "T xb, raw L yb",
        TAKE_ROWS,
    ),
    "take_rows_targets": (
        "raw T X, raw L index, raw T y, int32 xcols, int32 ycols",
        "T xb, raw T yb",
        TAKE_ROWS,
    ),
    **IMAGE_SOURCES,  # the image layers' (kernels_cupy_images)
}


@functools.cache
def elementwise(name: str):
    """The ``cupy.ElementwiseKernel`` of ``ELEMENTWISE[name]``, made once."""
    import cupy

    inputs, outputs, body = ELEMENTWISE[name]
    return cupy.ElementwiseKernel(inputs, outputs, body, f"nnb_{name}")


@functools.cache
def kernels() -> dict:
    import cupy

    return table_from(elementwise, cupy)


def table_from(kernel, lib) -> dict:
    """The table's entries, made of ``kernel(name)`` (a kernel of ``ELEMENTWISE``, called
    as a ``cupy.ElementwiseKernel`` is) and the array library ``lib`` (CuPy, or a
    stand-in on the host: ``tests/test_cupy_sources.py``)."""
    exp_shift, xent_tail, bce = (
        kernel(n) for n in ("exp_shift", "softmax_xent_tail", "sigmoid_bce")
    )
    sgd, momentum, adam = (kernel(n) for n in ("sgd", "momentum", "adam"))

    def dense_act(x, W, b, name):
        z = lib.matmul(x, W)
        return kernel(f"bias_{name}")(z, b, z)  # in place: each element reads its own

    def shifted_exp(z):
        zmax = z.max(axis=1, keepdims=True)
        e = exp_shift(z, zmax)
        return zmax, e, e.sum(axis=1, keepdims=True)

    def softmax_xent(z, onehot, scale):
        zmax, e, total = shifted_exp(z)
        grad, part = xent_tail(z, zmax, e, total, onehot, scale)
        return part.sum(), grad

    def softmax_xent_counted(z, labels, scale):
        z = lib.ascontiguousarray(z)  # read by hand across its rows
        n, classes = z.shape
        grad = lib.empty_like(z)
        if classes <= ROW_CLASSES:  # one kernel, then one sum
            parts = lib.empty((2, n), dtype=z.dtype)  # the rows' losses, then their hits
            kernel("softmax_xent_row")(z, labels, classes, scale, grad, parts[0], parts[1])
        else:  # the row reductions, one kernel and one sum
            zmax, e, total = shifted_exp(z)
            parts = lib.empty((2, n, classes), dtype=z.dtype)
            kernel("softmax_xent_counted_tail")(
                z, zmax, e, total, z, labels, classes, scale, grad, parts[0], parts[1]
            )
        sums = lib.reshape(parts, (2, -1)).sum(axis=1)  # one reduction for both
        return sums[0], grad, sums[1]

    def sigmoid_bce_counted(z, t, scale):
        parts = lib.empty((2, *z.shape), dtype=z.dtype)  # the losses, then the hits
        grad = bce(z, t, scale, lib.empty_like(z), parts[0], parts[1])[0]
        sums = lib.reshape(parts, (2, -1)).sum(axis=1)  # one reduction for both
        outputs = math.prod(z.shape[1:])  # several (an image's pixels): the share right
        return sums[0], grad, sums[1] if outputs == 1 else sums[1] / outputs

    return {
        "dense_act": dense_act,
        "sigmoid": kernel("sigmoid"),
        "tanh_backward": kernel("tanh_backward"),
        "sigmoid_backward": kernel("sigmoid_backward"),
        "relu_backward": kernel("relu_backward"),
        "softmax_xent": softmax_xent,
        "softmax_xent_counted": softmax_xent_counted,
        "sigmoid_bce_counted": sigmoid_bce_counted,
        "sgd": lambda p, g, lr: sgd(g, lr, p),
        "momentum": lambda p, v, g, lr, mu: momentum(g, lr, mu, p, v),
        "adam": lambda p, m, v, g, lr_t, b1, b2, eps, root: adam(
            g, lr_t, b1, 1 - b1, b2, 1 - b2, eps, root, p, m, v
        ),
        "matmul_into": lambda a, b, out: lib.matmul(a, b, out=out),
        "sum_into": lambda x, axis, out: lib.sum(x, axis=axis, out=out),
    }


@functools.cache
def convolution() -> tuple:
    """(conv2d, conv2d_backward) on CuPy, as ``nnbackend.backend.fastpaths`` has them
    (``kernels_cupy_images.convolution_from``)."""
    import cupy

    return convolution_from(elementwise, cupy)


@functools.cache
def pooling() -> tuple:
    """(max_pool, max_pool_backward) on CuPy (``kernels_cupy_images.pooling_from``)."""
    import cupy

    return pooling_from(elementwise, cupy)


@functools.cache
def take_rows():
    """``rows_from``'s ``take_rows`` on CuPy, as ``nnbackend.backend.fastpaths`` has it."""
    import cupy

    return rows_from(elementwise, cupy)


def rows_from(kernel, lib):
    """``take_rows(X, y, index) -> (X[index], y[index])`` in one launch of a kernel of
    ``kernel(name)`` (``table_from``'s), on the arrays of ``lib``; None, having done
    nothing, where it cannot: y neither int64 labels nor of X's dtype, an index not
    int64 (the labels' kernel types both as one), or samples of no values (the caller
    then takes each with ``take``)."""

    def take_rows(X, y, index):
        xcols, ycols = math.prod(X.shape[1:]), math.prod(y.shape[1:])
        labels = y.dtype == lib.int64
        if not (labels or y.dtype == X.dtype) or index.dtype != lib.int64 or xcols == 0:
            return None
        rows = index.shape[0]
        xb = lib.empty((rows, *X.shape[1:]), dtype=X.dtype)
        yb = lib.empty((rows, *y.shape[1:]), dtype=y.dtype)
        name = "take_rows_labels" if labels else "take_rows_targets"
        kernel(name)(X, index, y, xcols, ycols, xb, yb)
        return xb, yb

    return take_rows
