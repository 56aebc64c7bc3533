"""Numerical gradients by central differences, to check the hand-written backward passes.

    nb.gradcheck.check_gradients(model, loss, X, y)   # {"0.W": 3e-10, "0.b": 1e-10, ...}

The error of each array is ``‖analytic − numerical‖ / (‖analytic‖ + ‖numerical‖)``, the
measure of the classic gradient-checking exercise: below 1e-6 in float64 is right
(most errors are near 1e-10; ``check_layer`` passes below 1e-6 too), above 1e-3 is a
bug. In float32 central differences are too coarse to tell (errors near 1e-2 either
way), so ``check_gradients`` checks a float64 copy of the model unless told otherwise;
``check_layer`` and ``check_loss`` take your arrays as they are, and warn when those
are float32.
"""

from __future__ import annotations

import functools
import itertools
import warnings

from nnbackend import losses as loss_types
from nnbackend import output_range
from nnbackend.backend import Generator, backend_of, dtype_name, namespace_of, to_numpy
from nnbackend.data import as_array, target_dtype
from nnbackend.data_checks import check_inputs, check_targets, outputs_per_sample
from nnbackend.hint_code import as_float64, same_source
from nnbackend.losses import L2

FLOAT32_WARNING = (
    "gradient check in float32: central differences are too coarse to tell a bug from "
    "rounding (errors near 1e-2 either way); check float64 arrays "
    "(backend.with_dtype('float64'))"
)


def numerical_gradient(f, x, h: float = 1e-5, progress=None):
    """dF/dx by central differences: (f(x + h) - f(x - h)) / 2h, one element at a time.

    ``f(x)`` returns a scalar (array or float). ``x`` is changed in place while this
    runs and restored after each element, so ``f`` may also read it from elsewhere
    (a model's weights). ``progress``, if given, is called after each element (a
    progress bar's ``update``). Returns an array like ``x``. ``x`` is float64 for a
    check: float32 warns, and integers, which cannot be nudged by ``h``, are refused.
    """
    _check_nudged(x, "numerical_gradient")
    return central_differences(f, x, h, progress)


def central_differences(f, x, h: float, progress=None):
    """``numerical_gradient`` of a floating ``x`` the caller has checked."""
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
        if progress is not None:
            progress()
    return grad


def relative_error(analytic, numerical, floor: float = 1e-4, name: str = "") -> float:
    """‖a − n‖ / max(‖a‖ + ‖n‖, floor). Gradients whose norms add up to less than
    ``floor`` are compared by their difference over ``floor``: a bias before BatchNorm
    has a true gradient of zero, and rounding noise over itself is 1.0. Central
    differences in float64 with h = 1e-5 round by about 1e-11 an element, so with this
    floor such a gradient shows a few 1e-7 at most (a conv net's bias before BatchNorm
    on torch: 1.6e-7), and an error under 1e-6 still tells right from wrong at any size.
    Gradients of other shapes are a ValueError (broadcast, a (1, 3) one passed for (3,)),
    naming what they are the gradients of (``name``)."""
    if tuple(analytic.shape) != tuple(numerical.shape):
        of, what = (f" of {name}", name) if name else ("", "what it is the gradient of")
        raise ValueError(
            f"the gradient{of} has shape {tuple(analytic.shape)}, but {what} has "
            f"{tuple(numerical.shape)}: backward must give each its own shape"
        )
    xp = namespace_of(analytic, numerical)
    diff = xp.sqrt(xp.sum((analytic - numerical) ** 2))
    scale = xp.sqrt(xp.sum(analytic**2)) + xp.sqrt(xp.sum(numerical**2))
    return _scalar(diff) / max(_scalar(scale), floor)


def check_gradients(
    model, loss, X, y, l2: float | None = None, h: float = 1e-5, dtype: str | None = "float64"
) -> dict:
    """Backprop against numerical gradients of every parameter of ``model``.

    ``X``, ``y``: a small batch (host or the model's backend); ``loss``: a Loss or its
    name. The check runs on a copy of ``model`` in ``dtype`` (float64: float32 is too
    coarse to tell), so ``model`` itself is left untouched; ``dtype=None`` checks a
    copy in the model's own dtype. Where the backend has no float64 it warns and checks
    in float32. Data that ``fit`` would refuse (labels outside the classes, NaN, a
    loss that cannot take the model's outputs) is refused here with its words, not
    reported as a wrong gradient. Returns ``{parameter name: relative error}``.
    Every evaluation draws the same dropout masks (the generator is set back before
    each), so Dropout layers can be checked.
    """
    loss = loss_types.get(loss)
    X, y = as_array(X, "X"), as_array(y, "y")
    check_inputs(X, model.input_shape)
    check_targets(y, X.shape[0], outputs_per_sample(model, X), loss)
    output_range.check_output_layer(model, loss, X)
    model = model.copy(dtype=_checking_dtype(model.backend, dtype))
    backend = model.backend
    X = same_source(backend.asarray(X, dtype=backend.dtype_name), X)
    y = backend.asarray(y, dtype=target_dtype(loss, y, backend))
    penalty = L2(l2) if l2 else None
    start = model.rng.state

    @from_state(model)
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
        name: relative_error(grads[name], central_differences(objective, param, h), name=name)
        for name, param in model.params.items()
    }


def check_layer(layer, x, seed: int = 0, h: float = 1e-5) -> dict:
    """Backprop of one built layer against numerical gradients, for the input and each
    parameter. The scalar checked is ``sum(layer(x) * r)`` for a fixed random ``r``.
    Build the layer and make ``x`` in float64 (float32 warns; integers and float16,
    which ``h`` cannot nudge, are refused). A layer
    that draws (Dropout) draws the same masks at every evaluation.
    Returns ``{"x": error, "W": error, ...}``."""
    _check_nudged(x, "check_layer")
    xp = namespace_of(x)

    def forward():
        if layer.stochastic:
            return layer.forward(x, training=True, rng=Generator(seed + 1))
        return layer.forward(x, training=True)

    weights = Generator(seed).normal(tuple(forward().shape), backend=backend_of(x))

    @from_state(layer)
    def objective(_=None):
        return xp.sum(forward() * weights)

    objective()
    dx = layer.backward(weights)
    errors = {"x": relative_error(dx, central_differences(objective, x, h), name="x")}
    grads = dict(layer.grads)
    for name, param in layer.params.items():
        numerical = central_differences(objective, param, h)
        errors[name] = relative_error(grads[name], numerical, name=name)
    return errors


def unconstant(layer, backend, rng) -> None:
    """Move each weight built constant (a BatchNorm's gamma of 1, a bias of 0) by a
    draw of ``rng`` of a tenth of its size: at gamma = 1 a backward that leaves gamma
    out passes a gradient check."""
    for name, w in layer.params.items():
        host = backend.to_numpy(w)
        if host.size and (host == host.flat[0]).all():
            size = abs(float(host.flat[0]))
            std = 0.1 * size if size else 0.1  # a tenth: a scale of 0.01 stays positive
            layer.params[name] = w + rng.normal(tuple(w.shape), std=std, backend=backend)


def from_state(holder, state=None):
    """A decorator: the function runs each time from the running state ``holder`` (a
    layer or a model) holds now (or from ``state``), so that a statistic a training
    forward moves does not drift into a gradient check's differences (and fail it)."""
    held = {name: copied(a) for name, a in (holder.state if state is None else state).items()}

    def wrap(fn):
        @functools.wraps(fn)
        def from_held(*args):
            for name, a in held.items():
                holder.state[name] = copied(a)
            return fn(*args)

        return from_held

    return wrap


def copied(a):
    """A copy of ``a``, of its own library (a state a forward may change in place); a
    Python number as it is (a layer's mistake, which ``check_layer`` names)."""
    try:
        return namespace_of(a).asarray(a, copy=True)
    except TypeError:
        return a


def check_loss(loss, pred, target, h: float = 1e-5) -> float:
    """Relative error of ``loss.backward()`` against the numerical dLoss/dpred
    (``pred`` in float64: float32 warns; integers and float16 are refused)."""
    _check_nudged(pred, "check_loss", "pred")
    loss.forward(pred, target)
    analytic = loss.backward()
    numerical = central_differences(lambda p: loss.forward(p, target), pred, h)
    return relative_error(analytic, numerical, name="pred")


def _checking_dtype(backend, dtype: str | None) -> str:
    """``dtype`` (None: the backend's own), or float32 with a warning where the
    backend's device has no float64."""
    dtype = dtype or backend.dtype_name
    if dtype == "float64" and not backend.supports("float64"):
        warnings.warn(f"{backend} has no float64: {FLOAT32_WARNING}", UserWarning, stacklevel=3)
        return "float32"
    if dtype == "float32":
        warnings.warn(FLOAT32_WARNING, UserWarning, stacklevel=3)
    return dtype


def _check_nudged(x, who: str, name: str = "x") -> None:
    """Refuse an ``x`` that a step of ``h`` cannot move (integers: it rounds back; float16),
    and warn where it is float32 (too coarse to tell a bug from rounding)."""
    xp = namespace_of(x)
    try:
        kind = dtype_name(xp, x.dtype)
    except ValueError:  # float16, bfloat16: no dtype of the standard
        kind = str(x.dtype)
    if kind not in ("float32", "float64"):
        raise TypeError(
            f"{who} nudges {name} by h in place, which {kind} cannot hold: give float64 "
            f"values ({as_float64(x, name)})"
        )
    if kind == "float32":
        warnings.warn(FLOAT32_WARNING, UserWarning, stacklevel=3)


def _scalar(value) -> float:
    return value if isinstance(value, float) else float(to_numpy(value))
