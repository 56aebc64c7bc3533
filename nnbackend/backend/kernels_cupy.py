"""The kernel table's CuPy entries (``kernels.py`` lists them): each fused group is
one ``cupy.ElementwiseKernel``, so a step launches one kernel where the reference
launches one per operator (each launch costs CuPy 10-20 us on the host). The row
reductions of the losses stay CuPy's own (``max``, ``sum``); everything elementwise
around them is fused. The optimizers' kernels update their arrays in place.

Compiled by NVRTC on first use and cached by CuPy (``~/.cupy/kernel_cache``).
Results agree with the reference to rounding (the compiler may contract a * b + c
into one fused multiply-add), which ``tests/test_kernels.py -m gpu`` checks.
"""

from __future__ import annotations

import functools


@functools.cache
def kernels() -> dict:
    import cupy

    def elementwise(inputs, outputs, body, name):
        return cupy.ElementwiseKernel(inputs, outputs, body, name)

    sigmoid = elementwise("T x", "T y", "y = (T)0.5 * tanh((T)0.5 * x) + (T)0.5", "nnb_sigmoid")
    tanh_bw = elementwise("T y, T dy", "T dx", "dx = dy * (1 - y * y)", "nnb_tanh_backward")
    sigmoid_bw = elementwise("T y, T dy", "T dx", "dx = dy * (y * (1 - y))", "nnb_sigmoid_backward")
    relu_bw = elementwise("T y, T dy", "T dx", "dx = dy * (T)(y > 0)", "nnb_relu_backward")
    exp_shift = elementwise("T z, T zmax", "T e", "e = exp(z - zmax)", "nnb_exp_shift")
    xent_tail = elementwise(
        "T z, T zmax, T e, T total, T h, T scale",
        "T grad, T part",
        "grad = scale * (e / total - h); part = -scale * h * (z - zmax - log(total))",
        "nnb_softmax_xent_tail",
    )
    bce = elementwise(
        "T z, T t, T scale",
        "T grad, T part",
        "T a = z > 0 ? z : -z;"
        " part = scale * (log1p(exp(-a)) + (z > 0 ? z : (T)0) - z * t);"
        " grad = scale * ((T)0.5 * tanh((T)0.5 * z) + (T)0.5 - t)",
        "nnb_sigmoid_bce",
    )
    sgd = elementwise("T g, T lr", "T p", "p -= lr * g", "nnb_sgd")
    momentum = elementwise(
        "T g, T lr, T mu", "T p, T v", "v = mu * v - lr * g; p += v", "nnb_momentum"
    )
    adam = elementwise(
        "T g, T lr_t, T b1, T b2, T eps, T root",
        "T p, T m, T v",
        "m = b1 * m + (1 - b1) * g; v = b2 * v + (1 - b2) * g * g;"
        " p -= lr_t * m / (sqrt(v) / root + eps)",
        "nnb_adam",
    )

    def softmax_xent(z, onehot, scale):
        zmax = z.max(axis=1, keepdims=True)
        e = exp_shift(z, zmax)
        total = e.sum(axis=1, keepdims=True)
        grad, part = xent_tail(z, zmax, e, total, onehot, scale)
        return part.sum(), grad

    def sigmoid_bce(z, t, scale):
        grad, part = bce(z, t, scale)
        return part.sum(), grad

    return {
        "sigmoid": sigmoid,
        "tanh_backward": tanh_bw,
        "sigmoid_backward": sigmoid_bw,
        "relu_backward": relu_bw,
        "softmax_xent": softmax_xent,
        "sigmoid_bce": sigmoid_bce,
        "sgd": lambda p, g, lr: sgd(g, lr, p),
        "momentum": lambda p, v, g, lr, mu: momentum(g, lr, mu, p, v),
        "adam": lambda p, m, v, g, lr_t, b1, b2, eps, root: adam(
            g, lr_t, b1, b2, eps, root, p, m, v
        ),
        "matmul_into": lambda a, b, out: cupy.matmul(a, b, out=out),
        "sum_into": lambda x, axis, out: cupy.sum(x, axis=axis, out=out),
    }
