"""The kernel table's CuPy entries (``kernels.py`` lists them): each fused group is
one ``cupy.ElementwiseKernel``, so a step launches one kernel where the reference
launches one per operator (each launch costs CuPy 10-20 us on the host). The row
reductions of the losses stay CuPy's own (``max``, ``sum``); everything elementwise
around them is fused. The optimizers' kernels update their arrays in place.

Compiled by NVRTC on first use and cached by CuPy (``~/.cupy/kernel_cache``).
Results agree with the reference to rounding (the compiler may contract a * b + c
into one fused multiply-add), which ``tests/test_kernels.py -m gpu`` checks. Each
kernel's source is in ``ELEMENTWISE``, so that machines without a GPU can check the
arithmetic too: ``tests/test_cupy_sources.py`` compiles every body with the host's C
compiler and holds it to the reference.
"""

from __future__ import annotations

import functools

# --- the windows of a convolution: each one kernel, where the standard's slices take
# one launch per kernel offset (25 for 5 x 5). Shapes as ``nnbackend.layers.im2col``.

# flat index i of cols (N, C*kh*kw, OH*OW) -> the input pixel it copies, or 0 (padding)
IM2COL = """
ptrdiff_t t = i;
const int ox = t % ow; t /= ow;
const int oy = t % oh; t /= oh;
const int kx = t % kw; t /= kw;
const int ky = t % kh;
const ptrdiff_t nc = t / kh;
const int y = oy * sy + ky - ph, x = ox * sx + kx - pw;
col = (0 <= y && y < h && 0 <= x && x < w) ? img[(nc * h + y) * w + x] : (T)0;
"""

# flat index i of the image (N, C, H, W) <- the sum of every column entry that copied
# it, added in kernel-offset order as the reference adds them
COL2IM = """
const int x = i % w;
const int y = (i / w) % h;
const ptrdiff_t nc = i / ((ptrdiff_t)w * h);
T sum = 0;
for (int ky = 0; ky < kh; ++ky) {
  const int ry = y + ph - ky;
  if (ry < 0 || ry % sy != 0 || ry / sy >= oh) continue;
  for (int kx = 0; kx < kw; ++kx) {
    const int rx = x + pw - kx;
    if (rx < 0 || rx % sx != 0 || rx / sx >= ow) continue;
    sum += col[(((nc * kh + ky) * kw + kx) * oh + ry / sy) * ow + rx / sx];
  }
}
img = sum;
"""

# --- max pooling: one kernel each way, where the standard's window slices take several
# per window offset. Windows of any size and stride, no padding (as MaxPool2D).

# flat index i of y (N, C, OH, OW) <- its window's largest value, and in ``where`` that
# value's offset in the window (ky * kw + kx): the first of equal largest ones in
# row-major order, or the first NaN
MAX_POOL = """
const int ox = i % ow;
const int oy = (i / ow) % oh;
const ptrdiff_t corner = (i / ((ptrdiff_t)ow * oh) * h + oy * sy) * w + ox * sx;
T best = img[corner];
int at = 0;
for (int ky = 0; ky < kh; ++ky) {
  for (int kx = 0; kx < kw; ++kx) {
    const T v = img[corner + ky * w + kx];
    if (v > best || (v != v && best == best)) {
      best = v;
      at = ky * kw + kx;
    }
  }
}
y = best;
where = at;
"""

# flat index i of dx (N, C, H, W) <- the sum of dy over the windows whose largest value
# this pixel was, added in window-offset order as the reference adds them
MAX_POOL_BACKWARD = """
const int x = i % w;
const int y = (i / w) % h;
const ptrdiff_t nc = i / ((ptrdiff_t)w * h);
T sum = 0;
for (int ky = 0; ky < kh; ++ky) {
  const int ry = y - ky;
  if (ry < 0 || ry % sy != 0 || ry / sy >= oh) continue;
  for (int kx = 0; kx < kw; ++kx) {
    const int rx = x - kx;
    if (rx < 0 || rx % sx != 0 || rx / sx >= ow) continue;
    const ptrdiff_t o = (nc * oh + ry / sy) * ow + rx / sx;
    if (where[o] == ky * kw + kx) sum += dy[o];
  }
}
dx = sum;
"""

POOL_SIZES = ", ".join(f"int32 {n}" for n in ("h", "w", "oh", "ow", "kh", "kw", "sy", "sx"))

# one element of the labels' softmax cross-entropy (``softmax_xent_counted_tail``);
# ``rows`` is z again, read across the row
SOFTMAX_XENT_COUNTED = """
const ptrdiff_t row = i / classes;
const int column = i % classes;
const bool labelled = column == labels[row];
const T h = labelled ? (T)1 : (T)0;
grad = scale * (e / total - h);
part = -scale * h * (z - zmax - log(total));
hit = (T)(labelled && z == zmax);
for (int j = 0; hit != (T)0 && j < column; ++j) {
  if (rows[row * classes + j] == zmax) hit = 0;
}
"""

SIZES = ", ".join(f"int32 {n}" for n in ("h", "w", "oh", "ow", "kh", "kw", "sy", "sx", "ph", "pw"))


# name -> (inputs, outputs, body) of each cupy.ElementwiseKernel ("raw": indexed by hand)
ELEMENTWISE = {
    "sigmoid": ("T x", "T y", "y = (T)0.5 * tanh((T)0.5 * x) + (T)0.5"),
    "tanh_backward": ("T y, T dy", "T dx", "dx = dy * (1 - y * y)"),
    "sigmoid_backward": ("T y, T dy", "T dx", "dx = dy * (y * (1 - y))"),
    "relu_backward": ("T y, T dy", "T dx", "dx = dy * (T)(y > 0)"),
    # a Dense layer's bias and the activation after it (the product is cuBLAS's)
    "bias_sigmoid": ("T z, T b", "T y", "T x = z + b; y = (T)0.5 * tanh((T)0.5 * x) + (T)0.5"),
    "bias_tanh": ("T z, T b", "T y", "y = tanh(z + b)"),
    "bias_relu": ("T z, T b", "T y", "T x = z + b; y = x < 0 ? (T)0 : x"),
    "exp_shift": ("T z, T zmax", "T e", "e = exp(z - zmax)"),
    "softmax_xent_tail": (
        "T z, T zmax, T e, T total, T h, T scale",
        "T grad, T part",
        "grad = scale * (e / total - h); part = -scale * h * (z - zmax - log(total))",
    ),
    # the same, the one-hot entry h made from the labels, and hit = 1 at the label's
    # entry where it is its row's first largest score (argmax's pick): the loss and the
    # count of right rows are then one sum
    "softmax_xent_counted_tail": (
        "T z, T zmax, T e, T total, raw T rows, raw L labels, int32 classes, T scale",
        "T grad, T part, T hit",
        SOFTMAX_XENT_COUNTED,
    ),
    "sigmoid_bce": (
        "T z, T t, T scale",
        "T grad, T part",
        "T a = z > 0 ? z : -z;"
        " part = scale * (log1p(exp(-a)) + (z > 0 ? z : (T)0) - z * t);"
        " grad = scale * ((T)0.5 * tanh((T)0.5 * z) + (T)0.5 - t)",
    ),
    "sgd": ("T g, T lr", "T p", "p -= lr * g"),
    "momentum": ("T g, T lr, T mu", "T p, T v", "v = mu * v - lr * g; p += v"),
    "adam": (
        "T g, T lr_t, T b1, T b2, T eps, T root",
        "T p, T m, T v",
        "m = b1 * m + (1 - b1) * g; v = b2 * v + (1 - b2) * g * g;"
        " p -= lr_t * m / (sqrt(v) / root + eps)",
    ),
    "im2col": (f"raw T img, {SIZES}", "T col", IM2COL),
    "col2im": (f"raw T col, {SIZES}", "T img", COL2IM),
    "max_pool": (f"raw T img, {POOL_SIZES}", "T y, L where", MAX_POOL),
    "max_pool_backward": (f"raw T dy, raw L where, {POOL_SIZES}", "T dx", MAX_POOL_BACKWARD),
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

    def softmax_xent_labels(z, labels, scale):
        value, grad, _ = softmax_xent_counted(z, labels, scale)
        return value, grad

    def softmax_xent_counted(z, labels, scale):
        zmax, e, total = shifted_exp(z)
        parts = lib.empty((2, *z.shape), dtype=z.dtype)  # the losses, then the hits
        grad = lib.empty_like(z)
        kernel("softmax_xent_counted_tail")(
            z, zmax, e, total, z, labels, z.shape[1], scale, grad, parts[0], parts[1]
        )
        sums = lib.reshape(parts, (2, -1)).sum(axis=1)  # one reduction for both
        return sums[0], grad, sums[1]

    def sigmoid_bce(z, t, scale):
        grad, part = bce(z, t, scale)
        return part.sum(), grad

    return {
        "dense_act": dense_act,
        "sigmoid": kernel("sigmoid"),
        "tanh_backward": kernel("tanh_backward"),
        "sigmoid_backward": kernel("sigmoid_backward"),
        "relu_backward": kernel("relu_backward"),
        "softmax_xent": softmax_xent,
        "softmax_xent_labels": softmax_xent_labels,
        "softmax_xent_counted": softmax_xent_counted,
        "sigmoid_bce": sigmoid_bce,
        "sgd": lambda p, g, lr: sgd(g, lr, p),
        "momentum": lambda p, v, g, lr, mu: momentum(g, lr, mu, p, v),
        "adam": lambda p, m, v, g, lr_t, b1, b2, eps, root: adam(
            g, lr_t, b1, b2, eps, root, p, m, v
        ),
        "matmul_into": lambda a, b, out: lib.matmul(a, b, out=out),
        "sum_into": lambda x, axis, out: lib.sum(x, axis=axis, out=out),
    }


@functools.cache
def windows() -> tuple:
    """(im2col, col2im) on CuPy, as ``nnbackend.layers.im2col`` has them: one kernel each."""
    import cupy

    return windows_from(elementwise, cupy)


def windows_from(kernel, lib) -> tuple:
    """(im2col, col2im) made of ``kernel(name)`` and ``lib``, as ``table_from``."""

    def im2col(x, kernel_size, stride, padding):
        """(N, C, H, W) -> columns (N, C*kh*kw, OH*OW), the padding included."""
        n, c, h, w = x.shape
        (kh, kw), (sy, sx), (ph, pw) = kernel_size, stride, padding
        oh, ow = (h + 2 * ph - kh) // sy + 1, (w + 2 * pw - kw) // sx + 1
        cols = lib.empty((n, c * kh * kw, oh * ow), dtype=x.dtype)
        sizes = (h, w, oh, ow, kh, kw, sy, sx, ph, pw)
        return kernel("im2col")(lib.ascontiguousarray(x), *sizes, cols)

    def col2im(cols, input_shape, kernel_size, stride, padding, out_shape):
        """The transpose of ``im2col``: columns -> (N, C, H, W)."""
        n, c, h, w = input_shape
        (kh, kw), (sy, sx), (ph, pw), (oh, ow) = kernel_size, stride, padding, out_shape
        img = lib.empty((n, c, h, w), dtype=cols.dtype)
        sizes = (h, w, oh, ow, kh, kw, sy, sx, ph, pw)
        return kernel("col2im")(lib.ascontiguousarray(cols), *sizes, img)

    return im2col, col2im


@functools.cache
def pooling() -> tuple:
    """(max_pool, max_pool_backward) on CuPy, as ``nnbackend.backend.fastpaths`` has them:
    one kernel each."""
    import cupy

    return pooling_from(elementwise, cupy)


def pooling_from(kernel, lib) -> tuple:
    """(max_pool, max_pool_backward) made of ``kernel(name)`` and ``lib``, as ``table_from``."""

    def max_pool(x, pool, stride):
        """(N, C, H, W) -> (y, where), each (N, C, OH, OW); ``where``: int64 offsets."""
        n, c, h, w = x.shape
        (kh, kw), (sy, sx) = pool, stride
        oh, ow = (h - kh) // sy + 1, (w - kw) // sx + 1
        y = lib.empty((n, c, oh, ow), dtype=x.dtype)
        where = lib.empty((n, c, oh, ow), dtype=lib.int64)
        sizes = (h, w, oh, ow, kh, kw, sy, sx)
        kernel("max_pool")(lib.ascontiguousarray(x), *sizes, y, where)
        return y, where

    def max_pool_backward(dy, x, where, pool, stride):
        """dy (N, C, OH, OW) -> dx (N, C, H, W), dy sent where ``max_pool`` found the largest."""
        (n, c, h, w), (oh, ow) = x.shape, dy.shape[2:]
        (kh, kw), (sy, sx) = pool, stride
        dx = lib.empty((n, c, h, w), dtype=dy.dtype)
        sizes = (h, w, oh, ow, kh, kw, sy, sx)
        return kernel("max_pool_backward")(lib.ascontiguousarray(dy), where, *sizes, dx)

    return max_pool, max_pool_backward
