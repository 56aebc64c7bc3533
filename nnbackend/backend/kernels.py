"""Fused versions of the training step's hot spots: one table of kernels per library.

Each entry does what a layer, loss or optimizer otherwise does with the standard's
functions alone; that code stays where it is, as the reference, and runs wherever
the table has no entry. Where a library reaches the same numbers in fewer passes
(NumPy: ufuncs writing into one buffer, ``out=``, rather than a temporary per
operator) or fewer launches (CuPy: one ``ElementwiseKernel`` per group; torch: its
own operator for the group, ``sigmoid_backward``, ``log_softmax``, ``addcdiv_``), it
offers an entry; ``tests/test_kernels.py`` pins each to the reference.

    linear(x, W, b)                 x @ W + b                       a Dense layer's forward
    dense_act(x, W, b, name)        act(x @ W + b), act "sigmoid",  a Dense layer and the
                                    "tanh" or "relu"                activation after it
    sigmoid(x)                      1 / (1 + exp(-x))               a Sigmoid layer's forward
    relu(x)                         maximum(x, 0)                   a ReLU layer's forward
    tanh_backward(y, dy)            dy * (1 - y*y)                  y = tanh(x)
    sigmoid_backward(y, dy)         dy * (y * (1 - y))              y = sigmoid(x)
    relu_backward(y, dy)            dy * (y > 0)                    y = relu(x)
    softmax_xent(z, onehot, scale)  (-scale * sum(onehot * log_softmax(z)),
                                     scale * (softmax(z) - onehot))
    softmax_xent_labels(z, labels, scale)
                                    the same, onehot made from (batch,) integer labels
    softmax_xent_counted(z, labels, scale)
                                    (value, grad, correct): the same, and the count of rows
                                    whose first largest score is the label's (argmax), as
                                    0-d arrays; an accuracy logged at no extra launch
    sigmoid_bce(z, t, scale)        (scale * sum(BCE of sigmoid(z) against t),
                                     scale * (sigmoid(z) - t))
    sigmoid_bce_counted(z, t, scale)
                                    (value, grad, correct): the same, and the count of
                                    logits on their target's side of 0 (a share of each
                                    row's outputs where there are several)
    sgd(p, g, lr)                   p -= lr * g                          in place
    momentum(p, v, g, lr, mu)       v = mu v - lr g; p += v              in place
    adam(p, m, v, g, lr_t, b1, b2, eps, root)
                                    m, v moments; p -= lr_t m / (sqrt(v) / root + eps)
    sgd_many, momentum_many, adam_many
                                    the same over lists of arrays, every parameter at once
    matmul_into(a, b, out)          out[...] = a @ b; returns out        a Dense layer's
    sum_into(x, axis, out)          out[...] = sum(x, axis=axis); out    gradients, written
                                    (out None: into a new array)         into the flat
                                                                         buffer where the
                                                                         model is bound to
                                                                         one (``nnbackend.flat``)

The optimizer kernels update their arrays in place and return nothing. Turn every
entry off (to time or debug the reference) with ``NNBACKEND_FUSED=0`` (read at the
first lookup) or, in code, ``with nb.backend.fused(False): ...``. ``table(xp)`` is one
dictionary read: the layers, losses and optimizers ask for it at each call, so a
``fused(...)`` block takes effect at once.
"""

from __future__ import annotations

import contextlib
from types import SimpleNamespace

import array_api_compat

from nnbackend.backend.environment import switch

ENV_VAR = "NNBACKEND_FUSED"
NAMES = (
    "linear", "dense_act", "sigmoid", "relu", "tanh_backward", "sigmoid_backward",
    "relu_backward", "softmax_xent", "softmax_xent_labels", "softmax_xent_counted",
    "sigmoid_bce", "sigmoid_bce_counted", "sgd", "momentum", "adam", "sgd_many",
    "momentum_many", "adam_many", "matmul_into", "sum_into",
)  # fmt: skip

# fused(...)'s choice, innermost last. A plain list, not a ContextVar: torch.compile
# traces a list's read, and a ContextVar's would break the captured step in pieces.
_forced: list[bool] = []
_environment: list[bool] = []  # $NNBACKEND_FUSED, once read
_tables: dict = {}  # (namespace's name, on) -> SimpleNamespace of NAMES


@contextlib.contextmanager
def fused(enabled: bool):
    """Use (or not) the fused kernels inside a ``with`` block."""
    _forced.append(bool(enabled))
    try:
        yield
    finally:
        _forced.pop()


def enabled() -> bool:
    """``fused(...)``, else $NNBACKEND_FUSED (1 or 0, true or false, on or off; read
    once, at the first use), else on."""
    return _forced[-1] if _forced else _from_environment()


def _from_environment() -> bool:
    if not _environment:
        _environment.append(switch(ENV_VAR))
    return _environment[0]


def table(xp) -> SimpleNamespace:
    """The kernels for namespace ``xp``: an attribute per name of ``NAMES``, each a
    function or None (no fused version here, or fused kernels turned off)."""
    # keyed by the namespace's name: a module as a key would break a torch.compile capture
    key = (xp.__name__, _forced[-1] if _forced else _from_environment())
    found = _tables.get(key)
    if found is None:
        library = _library(xp) if key[1] else None
        found = _tables[key] = SimpleNamespace(**_build(library))
    return found


def _library(xp) -> str | None:
    from nnbackend.backend.numpy_fast import namespace as numpy_namespace

    if xp is numpy_namespace or array_api_compat.is_numpy_namespace(xp):
        return "numpy"
    if array_api_compat.is_cupy_namespace(xp):
        return "cupy"
    if array_api_compat.is_torch_namespace(xp):
        return "torch"
    return None


def _build(library: str | None) -> dict:
    kernels = dict.fromkeys(NAMES)
    if library == "numpy":
        from nnbackend.backend.kernels_numpy import KERNELS

        kernels.update(KERNELS)
    elif library == "cupy":
        from nnbackend.backend.kernels_cupy import kernels as cupy_kernels

        kernels.update(cupy_kernels())
    elif library == "torch":
        from nnbackend.backend.kernels_torch import kernels as torch_kernels

        kernels.update(torch_kernels())
    return kernels
