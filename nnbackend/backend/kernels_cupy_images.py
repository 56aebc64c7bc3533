"""CuPy's kernels for the image layers, as ``nnbackend.backend.fastpaths`` offers them:
a convolution of three launches forward (the windows, one product, the bias and the
activation) and three back (a transposed copy of dy, the weights' product, the bias's
sum; two more, a product and col2im, where the input's gradient is wanted), and max
pooling in one launch each way, where the standard's window slices take one or more
per window offset. Their sources join ``kernels_cupy.ELEMENTWISE``, so the host build
in the tests checks them too; ``kernels_cupy.convolution()`` and ``pooling()`` are
these made of CuPy's kernels.

The convolution lays its columns out by kernel offset first, (C*kh*kw, N*OH*OW), so
that the whole batch is one plain matrix product with the kernel: the batched
product over (N, C*kh*kw, OH*OW) columns that ``nnbackend.layers.im2col`` makes would
cost CuPy three kernels of pointer arithmetic and a batched call forward, and a
transposed copy of the columns back.
"""

from __future__ import annotations

# the int32 parameters that give a convolution's shapes, and the order its calls pass them
CONV_DIMS = ("h", "w", "oh", "ow", "kh", "kw", "sy", "sx", "ph", "pw", "samples", "channels")
CONV_DIM_PARAMS = ", ".join(f"int32 {name}" for name in CONV_DIMS)

# flat index i of cols (C*kh*kw, N*OH*OW) -> the input pixel it copies, or 0 (padding)
IM2COL = """
ptrdiff_t t = i;
const int ox = t % ow; t /= ow;
const int oy = t % oh; t /= oh;
const ptrdiff_t sample = t % samples; t /= samples;
const int kx = t % kw; t /= kw;
const int ky = t % kh;
const ptrdiff_t channel = t / kh;
const int y = oy * sy + ky - ph, x = ox * sx + kx - pw;
col = (0 <= y && y < h && 0 <= x && x < w) ? img[((sample * channels + channel) * h + y) * w + x]
                                           : (T)0;
"""

# flat index i of the image (N, C, H, W) <- the sum of every column entry that copied
# it, added in kernel-offset order as the reference adds them
COL2IM = """
const int x = i % w;
const int y = (i / w) % h;
const ptrdiff_t channel = i / ((ptrdiff_t)w * h) % channels;
const ptrdiff_t sample = i / ((ptrdiff_t)w * h * channels);
T sum = 0;
for (int ky = 0; ky < kh; ++ky) {
  const int ry = y + ph - ky;
  if (ry < 0 || ry % sy != 0 || ry / sy >= oh) continue;
  for (int kx = 0; kx < kw; ++kx) {
    const int rx = x + pw - kx;
    if (rx < 0 || rx % sx != 0 || rx / sx >= ow) continue;
    const ptrdiff_t offset = (channel * kh + ky) * kw + kx;
    sum += col[((offset * samples + sample) * oh + ry / sy) * ow + rx / sx];
  }
}
img = sum;
"""

# flat index i of y (N, F, OH*OW) <- the product's (F, N*OH*OW) entry, its bias added
# (where ``biased``) and the activation applied (``ACTIVATIONS``, which end the body)
CONV_OUTPUT = """
const ptrdiff_t spot = i % spots;
const int filter = i / spots % filters;
const ptrdiff_t sample = i / ((ptrdiff_t)spots * filters);
const T x = products[((ptrdiff_t)filter * samples + sample) * spots + spot]
            + (biased ? b[filter] : (T)0);
"""

# y of x, for a Dense layer's (``kernels_cupy``) and a convolution's bias + activation
ACTIVATIONS = {
    "linear": "y = x",
    "sigmoid": "y = (T)0.5 * tanh((T)0.5 * x) + (T)0.5",
    "tanh": "y = tanh(x)",
    "relu": "y = x < 0 ? (T)0 : x",
}

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

POOL_DIMS = ("h", "w", "oh", "ow", "kh", "kw", "sy", "sx")
POOL_DIM_PARAMS = ", ".join(f"int32 {name}" for name in POOL_DIMS)

# name -> (inputs, outputs, body), as kernels_cupy.ELEMENTWISE
SOURCES = {
    "im2col": (f"raw T img, {CONV_DIM_PARAMS}", "T col", IM2COL),
    "col2im": (f"raw T col, {CONV_DIM_PARAMS}", "T img", COL2IM),
    **{
        f"conv_{name}": (
            "raw T products, raw T b, int32 biased, int32 samples, int32 filters, int32 spots",
            "T y",
            f"{CONV_OUTPUT}{activation};",
        )
        for name, activation in ACTIVATIONS.items()
    },
    "max_pool": (f"raw T img, {POOL_DIM_PARAMS}", "T y, L where", MAX_POOL),
    "max_pool_backward": (f"raw T dy, raw L where, {POOL_DIM_PARAMS}", "T dx", MAX_POOL_BACKWARD),
}


def convolution_from(kernel, lib) -> tuple:
    """(conv2d, conv2d_backward) made of ``kernel(name)`` (a kernel of ``SOURCES``, called
    as a ``cupy.ElementwiseKernel`` is) and the array library ``lib`` (CuPy, or a
    stand-in on the host: ``tests/test_cupy_sources.py``).

    ``conv2d(x, W, b, stride, padding, activation="linear") -> (y, saved)``: x (N, C, H,
    W), W (F, C, kh, kw), b (F,) or None -> y (N, F, OH, OW), the activation one of
    ``ACTIVATIONS``; ``saved``: what the backward needs.
    ``conv2d_backward(dy, saved, W, stride, padding, bias, input_grad, out) -> (dx, dW,
    db)``: dx None unless ``input_grad``, db None unless ``bias``; dW and db written
    into ``out["W"]`` and ``out["b"]`` where ``out`` has them (the flat buffer's views).
    """

    def conv2d(x, W, b, stride, padding, activation="linear"):
        n, c, h, w = x.shape
        f, _, kh, kw = W.shape
        (sy, sx), (ph, pw) = stride, padding
        oh, ow = (h + 2 * ph - kh) // sy + 1, (w + 2 * pw - kw) // sx + 1
        dims = (h, w, oh, ow, kh, kw, sy, sx, ph, pw, n, c)  # CONV_DIMS' order
        cols = lib.empty((c * kh * kw, n * oh * ow), dtype=x.dtype)
        kernel("im2col")(lib.ascontiguousarray(x), *dims, cols)
        products = lib.matmul(lib.reshape(W, (f, -1)), cols)  # (F, N*OH*OW)
        y = lib.empty((n, f, oh, ow), dtype=x.dtype)
        bias = products if b is None else b  # without one, never read
        kernel(f"conv_{activation}")(products, bias, int(b is not None), n, f, oh * ow, y)
        return y, (cols, x.shape, dims)

    def conv2d_backward(dy, saved, W, stride, padding, bias, input_grad, out):
        cols, (n, c, h, w), dims = saved
        f = W.shape[0]
        spots = dy.shape[2] * dy.shape[3]  # not -1: a batch may have no rows (a rank's share)
        by_filter = lib.transpose(lib.reshape(dy, (n, f, spots)), (1, 0, 2))
        dy_rows = lib.reshape(lib.ascontiguousarray(by_filter), (f, -1))  # (F, N*OH*OW)
        into = lib.reshape(out["W"], (f, -1)) if "W" in out else None
        dW = lib.matmul(dy_rows, cols.T, out=into)
        dW = out["W"] if "W" in out else lib.reshape(dW, W.shape)
        db = lib.sum(dy_rows, axis=1, out=out.get("b")) if bias else None
        if not input_grad:
            return None, dW, db
        dcols = lib.matmul(lib.reshape(W, (f, -1)).T, dy_rows)  # (C*kh*kw, N*OH*OW)
        dx = lib.empty((n, c, h, w), dtype=dy.dtype)
        return kernel("col2im")(dcols, *dims, dx), dW, db

    return conv2d, conv2d_backward


def pooling_from(kernel, lib) -> tuple:
    """(max_pool, max_pool_backward) made of ``kernel(name)`` and ``lib``, as
    ``convolution_from``: ``max_pool(x, pool, stride) -> (y, where)``, x (N, C, H, W) ->
    y and ``where`` (int64 offsets in the window) (N, C, OH, OW);
    ``max_pool_backward(dy, x, where, pool, stride) -> dx``, dy sent where ``max_pool``
    found the largest. A window holding NaN gives NaN and sends its gradient to its
    first NaN (torch's max pooling, to its last); the standard's window slices send it
    nowhere (NaN equals nothing)."""

    def max_pool(x, pool, stride):
        n, c, h, w = x.shape
        (kh, kw), (sy, sx) = pool, stride
        oh, ow = (h - kh) // sy + 1, (w - kw) // sx + 1
        y = lib.empty((n, c, oh, ow), dtype=x.dtype)
        where = lib.empty((n, c, oh, ow), dtype=lib.int64)
        dims = (h, w, oh, ow, kh, kw, sy, sx)  # POOL_DIMS' order
        kernel("max_pool")(lib.ascontiguousarray(x), *dims, y, where)
        return y, where

    def max_pool_backward(dy, x, where, pool, stride):
        (n, c, h, w), (oh, ow) = x.shape, dy.shape[2:]
        (kh, kw), (sy, sx) = pool, stride
        dx = lib.empty((n, c, h, w), dtype=dy.dtype)
        dims = (h, w, oh, ow, kh, kw, sy, sx)
        return kernel("max_pool_backward")(lib.ascontiguousarray(dy), where, *dims, dx)

    return max_pool, max_pool_backward
