"""Numerical gradients by central differences, to check the hand-written backward passes.

    nb.gradcheck.check_gradients(model, loss, X, y)   # {"0.W": 3e-10, "0.b": 1e-10, ...}

The error of each array is ``‖analytic − numerical‖ / (‖analytic‖ + ‖numerical‖)``, the
measure of the classic gradient-checking exercise: below 1e-7 in float64 is right,
above 1e-3 is a bug. Use float64 (``backend.with_dtype("float64")``); float32 central
differences are too coarse to tell.
"""

from __future__ import annotations

import itertools

from nnbackend.backend import Generator, backend_of, namespace_of, to_numpy
from nnbackend.data import target_dtype
from nnbackend.losses import L2


def numerical_gradient(f, x, h: float = 1e-5):
    """dF/dx by central differences: (f(x + h) - f(x - h)) / 2h, one element at a time.

    ``f(x)`` returns a scalar (array or float). ``x`` is changed in place while this
    runs and restored after each element, so ``f`` may also read it from elsewhere
    (a model's weights). Returns an array like ``x``.
    """
    xp = namespace_of(x)
    grad = xp.zeros_like(x)
    for index in itertools.product(*(range(n) for n in x.shape)):
        original = float(to_numpy(x[index]))
        x[index] = original + h
        plus = _scalar(f(x))
        x[index] = original - h
        minus = _scalar(f(x))
        x[index] = original
        grad[index] = (plus - minus) / (2 * h)
    return grad


def relative_error(analytic, numerical) -> float:
    """‖a − n‖ / (‖a‖ + ‖n‖), 0.0 when both are zero."""
    xp = namespace_of(analytic, numerical)
    diff = xp.sqrt(xp.sum((analytic - numerical) ** 2))
    scale = xp.sqrt(xp.sum(analytic**2)) + xp.sqrt(xp.sum(numerical**2))
    diff, scale = _scalar(diff), _scalar(scale)
    return 0.0 if scale == 0 else diff / scale


def check_gradients(model, loss, X, y, l2: float | None = None, h: float = 1e-5) -> dict:
    """Backprop against numerical gradients of every parameter of ``model``.

    ``X``, ``y``: a small batch (host or the model's backend). Returns
    ``{parameter name: relative error}``. Every evaluation draws the same dropout masks
    (the model's generator is set back before each), so Dropout layers can be checked.
    """
    backend = model.backend
    X = backend.asarray(X, dtype=backend.dtype_name)
    y = backend.asarray(y, dtype=target_dtype(loss, y, backend))
    penalty = L2(l2) if l2 else None
    start = model.rng.state

    def objective(_=None):
        model.rng.state = start  # the same dropout masks at every evaluation
        value = loss.forward(model.forward(X, training=True), y)
        if penalty is not None:
            value = value + penalty.penalty([model.params[n] for n in model.decayed_names()])
        return value

    objective()
    model.backward(loss.backward())
    grads = dict(model.grads)
    if penalty is not None:
        penalty.add_to_gradients({n: model.params[n] for n in model.decayed_names()}, grads)
    return {
        name: relative_error(grads[name], numerical_gradient(objective, param, h))
        for name, param in model.params.items()
    }


def check_layer(layer, x, seed: int = 0, h: float = 1e-5) -> dict:
    """Backprop of one built layer against numerical gradients, for the input and each
    parameter. The scalar checked is ``sum(layer(x) * r)`` for a fixed random ``r``.
    Returns ``{"x": error, "W": error, ...}``."""
    xp = namespace_of(x)
    out = layer.forward(x, training=True)
    weights = Generator(seed).normal(tuple(out.shape), backend=backend_of(x))

    def objective(_=None):
        return xp.sum(layer.forward(x, training=True) * weights)

    objective()
    errors = {"x": relative_error(layer.backward(weights), numerical_gradient(objective, x, h))}
    grads = dict(layer.grads)
    for name, param in layer.params.items():
        errors[name] = relative_error(grads[name], numerical_gradient(objective, param, h))
    return errors


def check_loss(loss, pred, target, h: float = 1e-5) -> float:
    """Relative error of ``loss.backward()`` against the numerical dLoss/dpred."""
    loss.forward(pred, target)
    analytic = loss.backward()
    return relative_error(analytic, numerical_gradient(lambda p: loss.forward(p, target), pred, h))


def _scalar(value) -> float:
    return value if isinstance(value, float) else float(to_numpy(value))
