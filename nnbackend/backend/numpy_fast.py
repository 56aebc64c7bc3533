"""The NumPy namespace the numpy backend uses: array-api-compat's, with its hottest
functions called without NumPy's Python-level argument handling.

``np.sum(x, axis=1)`` spends about 2 us in Python before the ufunc runs; on the
tutorials' tiny nets (a 200 x 3 hidden layer) that is more than the arithmetic, and a
training step makes a dozen such calls. Here the same functions go straight to the
ufunc methods that ``np.sum``/``np.max`` call themselves: same results, same dtypes
(tests/test_backend.py checks them against array-api-compat's).
"""

from __future__ import annotations

import functools
import types

import array_api_compat.numpy as compat
import numpy as np

namespace = types.ModuleType("nnbackend.backend.numpy_fast.namespace", compat.__doc__)
namespace.__dict__.update({k: v for k, v in vars(compat).items() if not k.startswith("__")})
namespace.__array_api_version__ = compat.__array_api_version__
namespace.__array_namespace_info__ = compat.__array_namespace_info__


def _sum(x, /, *, axis=None, dtype=None, keepdims=False):
    return np.add.reduce(x, axis=axis, dtype=dtype, keepdims=keepdims)


def _max(x, /, *, axis=None, keepdims=False):
    return np.maximum.reduce(x, axis=axis, keepdims=keepdims)


def _min(x, /, *, axis=None, keepdims=False):
    return np.minimum.reduce(x, axis=axis, keepdims=keepdims)


def _argmax(x, /, *, axis=None, keepdims=False):
    return x.argmax(axis=axis, keepdims=keepdims)


def _astype(x, dtype, /, *, copy=True, device=None):
    return x.astype(dtype, copy=copy)


def _reshape(x, /, shape, *, copy=None):
    return x.reshape(shape) if copy is None else compat.reshape(x, shape, copy=copy)


def _count_nonzero(x, /, *, axis=None, keepdims=False):
    if axis is None and not keepdims:
        return np.asarray(np.count_nonzero(x))
    return compat.count_nonzero(x, axis=axis, keepdims=keepdims)


@functools.cache
def _isdtype(dtype, kind):
    return compat.isdtype(dtype, kind)


def _isdtype_cached(dtype, kind):
    try:
        return _isdtype(dtype, kind)
    except TypeError:  # an unhashable kind (a tuple of lists, say): no cache
        return compat.isdtype(dtype, kind)


namespace.sum = _sum
namespace.max = _max
namespace.min = _min
namespace.argmax = _argmax
namespace.astype = _astype
namespace.reshape = _reshape
namespace.count_nonzero = _count_nonzero
namespace.isdtype = _isdtype_cached
