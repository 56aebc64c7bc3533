"""Activation functions and their derivatives, as plain functions of arrays.

Each works on any Array API array and returns one of the same shape, dtype and
device. ``*_grad(x)`` is the derivative with respect to ``x``, elementwise, so a
user can plot the pair or write a training loop by hand:

    >>> import numpy as np
    >>> from nnbackend.functional import sigmoid, sigmoid_grad
    >>> x = np.linspace(-10, 10, 201)
    >>> y, dy = sigmoid(x), sigmoid_grad(x)
    >>> float(y[100]), float(dy.max())           # at x = 0
    (0.5, 0.25)

The layers of ``nnbackend.layers`` use these; where a derivative is cheaper from the
output than the input (sigmoid, tanh), the layers use the ``*_grad_from_output`` form.
"""

from __future__ import annotations

from nnbackend.backend import namespace_of


def identity(x):
    """x itself (the "linear" activation)."""
    return x


def identity_grad(x):
    """Ones of x's shape, dtype and device."""
    xp = namespace_of(x)
    return xp.ones_like(x)


def sigmoid(x):
    """1 / (1 + exp(-x)), computed as (1 + tanh(x / 2)) / 2: the same function, with
    no overflow for any x and half the passes of the branch-on-sign form. Exact to
    an absolute eps/2; far left-tail values (below eps, x < -17 in float32) are 0 to
    that precision (``BinaryCrossEntropy(from_logits=True)`` keeps its loss exact there)."""
    return 0.5 * namespace_of(x).tanh(0.5 * x) + 0.5


def sigmoid_grad(x):
    """sigmoid'(x) = sigmoid(x) (1 - sigmoid(x)), elementwise."""
    return sigmoid_grad_from_output(sigmoid(x))


def sigmoid_grad_from_output(y):
    """sigmoid'(x) written with y = sigmoid(x): y (1 - y)."""
    return y * (1 - y)


def tanh(x):
    """tanh(x), elementwise, in (-1, 1)."""
    return namespace_of(x).tanh(x)


def tanh_grad(x):
    """tanh'(x) = 1 - tanh(x)**2, elementwise."""
    return tanh_grad_from_output(tanh(x))


def tanh_grad_from_output(y):
    """tanh'(x) written with y = tanh(x): 1 - y**2."""
    return 1 - y * y


def relu(x):
    """max(x, 0), elementwise."""
    return namespace_of(x).maximum(x, 0.0)


def relu_grad(x):
    """1 where x > 0, else 0 (0 at the kink, as is usual)."""
    xp = namespace_of(x)
    return xp.astype(x > 0, x.dtype)


def leaky_relu(x, alpha: float = 0.01):
    """x where x > 0, else alpha * x."""
    return namespace_of(x).where(x > 0, x, alpha * x)


def leaky_relu_grad(x, alpha: float = 0.01):
    """1 where x > 0, else alpha."""
    xp = namespace_of(x)
    return xp.where(x > 0, xp.ones_like(x), xp.full_like(x, alpha))


def logsumexp(x, axis: int = -1, keepdims: bool = False):
    """log(sum(exp(x))) along ``axis``, shifted by the max so it never overflows; -inf
    for a row of -inf (every class masked), inf where one is inf."""
    xp = namespace_of(x)
    shift = xp.max(x, axis=axis, keepdims=True)
    shift = xp.where(xp.isfinite(shift), shift, xp.zeros_like(shift))  # -inf - -inf is NaN
    out = xp.log(xp.sum(xp.exp(x - shift), axis=axis, keepdims=True)) + shift
    return out if keepdims else xp.squeeze(out, axis=axis)


def log_softmax(x, axis: int = -1):
    """x - logsumexp(x): finite for any finite logits."""
    return x - logsumexp(x, axis=axis, keepdims=True)


def softmax(x, axis: int = -1):
    """exp(x) / sum(exp(x)) along ``axis`` (rows are samples: axis=-1 is the classes)."""
    xp = namespace_of(x)
    e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


def softmax_backward(y, dy, axis: int = -1):
    """The vector-Jacobian product of softmax: given y = softmax(x) and dL/dy, dL/dx."""
    xp = namespace_of(y)
    return y * (dy - xp.sum(dy * y, axis=axis, keepdims=True))
