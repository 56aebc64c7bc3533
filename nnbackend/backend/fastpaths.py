"""Native versions of what some layers, and the batches, otherwise do with the standard
alone.

The layers and ``nnbackend.data`` keep the standard-only version (``im2col.py``,
``MaxPool2D``'s window slices, ``take``) as the reference; where a library has a faster
way to the same numbers, this module offers it and the caller takes it. Each native
version is pinned to the reference by a test (``tests/test_conv_layers.py``,
``tests/test_data.py``) on every backend that has both.

    im2col(x, kernel, stride, padding)            NumPy: sliding_window_view
    conv2d(x, W, b, stride, padding)              torch: its own convolution (oneDNN,
      -> (y, saved)                               cuDNN); CuPy: columns by kernel
                                                  offset and one product
                                                  (kernels_cupy.convolution); ``saved``:
                                                  what the backward needs
    conv2d_act(x, W, b, stride, padding, name)    CuPy: the same with the activation
      -> (y, saved)                               ``name`` ("relu", ...) in its last
                                                  kernel (``Conv2D.forward_activated``)
    conv2d_backward(dy, saved, W, stride,         both: (dx or None, dW, db or None);
      padding, bias, input_grad, out)             CuPy writes dW and db into ``out``
                                                  (the flat buffer's views) where it
                                                  has them
    take(a, index, axis)                          torch: index_select (one operator,
                                                  where the standard's take makes four)
    take_rows(X, y, index) -> (X[index], y[index]) or None
                                                  CuPy: one kernel for both, where the
                                                  standard's takes launch one each
                                                  (kernels_cupy.take_rows)
    max_pool(x, pool, stride) -> (y, where)       torch: max_pool2d with its indices;
                                                  CuPy: one kernel (kernels_cupy.pooling)
    max_pool_backward(dy, x, where, pool, stride) torch: its backward; CuPy: one kernel,
                                                  where the window slices take five or
                                                  six operations per window offset

Turn them off (to time or debug the reference) with ``NNBACKEND_FAST_PATHS=0`` or,
in code, ``with nb.backend.fast_paths(False): ...``.
"""

from __future__ import annotations

import contextlib

import array_api_compat
import numpy as np

from nnbackend.backend.environment import switch

ENV_VAR = "NNBACKEND_FAST_PATHS"

# fast_paths(...)'s choice, innermost last. A plain list, not a ContextVar: torch.compile
# traces a list's read, and a ContextVar's breaks the captured step in pieces (kernels.py
# keeps its switch the same way)
_forced: list[bool] = []


@contextlib.contextmanager
def fast_paths(enabled: bool):
    """Use (or not) the native versions inside a ``with`` block."""
    _forced.append(bool(enabled))
    try:
        yield
    finally:
        _forced.pop()


def enabled() -> bool:
    """Whether native versions are used: ``fast_paths(...)``, else $NNBACKEND_FAST_PATHS
    (1 or 0, true or false, on or off), else on."""
    return _forced[-1] if _forced else switch(ENV_VAR)


def native(name: str, xp):
    """The native version of ``name`` (see above) for the namespace ``xp``, or
    None where there is none or they are turned off."""
    if not enabled():
        return None
    library = _libraries.get(xp.__name__)  # by name: a captured step only reads a dict
    if library is None:
        library = _libraries[xp.__name__] = _library(xp)
    return _NATIVE.get((name, library))


_libraries: dict[str, str] = {}  # namespace's name -> "numpy", "torch", "cupy" or ""


def _library(xp) -> str:
    # imported here, not at the top: building it imports array-api-compat's NumPy
    # namespace, which ``import nnbackend`` need not pay for
    from nnbackend.backend.numpy_fast import namespace as numpy_namespace

    if xp is numpy_namespace or array_api_compat.is_numpy_namespace(xp):
        return "numpy"
    if array_api_compat.is_torch_namespace(xp):
        return "torch"
    if array_api_compat.is_cupy_namespace(xp):
        return "cupy"
    return ""


# --- NumPy -----------------------------------------------------------------------------


def _numpy_im2col(x, kernel, stride, padding):
    (ph, pw), (sh, sw) = padding, stride
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    view = np.lib.stride_tricks.sliding_window_view(x, kernel, axis=(2, 3))[:, :, ::sh, ::sw]
    n, c, oh, ow, kh, kw = view.shape  # one copy, into the reference's layout:
    return view.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * kh * kw, oh * ow)


# --- CuPy ------------------------------------------------------------------------------


# each made of CuPy's kernels on first use (``kernels_cupy``), as the torch ones import torch


def _cupy_conv2d(x, W, b, stride, padding, activation="linear"):
    from nnbackend.backend.kernels_cupy import convolution

    return convolution()[0](x, W, b, stride, padding, activation)


def _cupy_conv2d_backward(dy, saved, W, stride, padding, bias, input_grad, out):
    from nnbackend.backend.kernels_cupy import convolution

    return convolution()[1](dy, saved, W, stride, padding, bias, input_grad, out)


def _cupy_take_rows(X, y, index):
    from nnbackend.backend.kernels_cupy import take_rows

    return take_rows()(X, y, index)


def _cupy_max_pool(x, pool, stride):
    from nnbackend.backend.kernels_cupy import pooling

    return pooling()[0](x, pool, stride)


def _cupy_max_pool_backward(dy, x, where, pool, stride):
    from nnbackend.backend.kernels_cupy import pooling

    return pooling()[1](dy, x, where, pool, stride)


# --- torch -----------------------------------------------------------------------------


def _torch_conv2d(x, W, b, stride, padding):
    """torch's own convolution (oneDNN on a CPU, cuDNN on a GPU): one operator where
    im2col, the product and the bias take several. The backward needs x."""
    import torch

    return torch.nn.functional.conv2d(x, W, b, stride=stride, padding=padding), x


def _torch_conv2d_backward(dy, x, W, stride, padding, bias: bool, input_grad: bool, out):
    """(dx or None, dW, db or None) of ``_torch_conv2d``, in one aten operator, which
    writes into arrays of its own (``out`` unused)."""
    import torch

    no_dilation, no_output_padding, one_group = (1, 1), (0, 0), 1
    return torch.ops.aten.convolution_backward(
        dy, x, W, [W.shape[0]] if bias else None, stride, padding, no_dilation, False,
        no_output_padding, one_group, [input_grad, True, bias],
    )  # fmt: skip


def _torch_take(a, index, axis=0):
    """The batch's rows: array-api-compat's take also maps negative indices, which a
    shuffled order never holds, at three more operators (kernels, on a GPU) a call."""
    import torch

    return torch.index_select(a, axis, index)


def _torch_max_pool(x, pool, stride):
    """(y, where): the windows' largest values and the flat index of each, the first of
    equal largest ones (as the standard-only MaxPool2D picks)."""
    import torch

    return torch.nn.functional.max_pool2d(x, pool, stride, return_indices=True)


def _torch_max_pool_backward(dy, x, where, pool, stride):
    import torch

    no_padding, no_dilation, floor = (0, 0), (1, 1), False
    return torch.ops.aten.max_pool2d_with_indices_backward(
        dy, x, pool, stride, no_padding, no_dilation, floor, where
    )


_NATIVE = {
    ("im2col", "numpy"): _numpy_im2col,
    ("conv2d", "torch"): _torch_conv2d,
    ("conv2d_backward", "torch"): _torch_conv2d_backward,
    ("take", "torch"): _torch_take,
    ("max_pool", "torch"): _torch_max_pool,
    ("max_pool_backward", "torch"): _torch_max_pool_backward,
    ("conv2d", "cupy"): _cupy_conv2d,
    ("conv2d_act", "cupy"): _cupy_conv2d,  # the same, given an activation
    ("conv2d_backward", "cupy"): _cupy_conv2d_backward,
    ("take_rows", "cupy"): _cupy_take_rows,
    ("max_pool", "cupy"): _cupy_max_pool,
    ("max_pool_backward", "cupy"): _cupy_max_pool_backward,
}
