"""Argument checks shared by layers, losses, optimizers and ``fit``.

Each returns the value in its plain Python type, or raises an error that names the
argument, what it got, and what it takes: ``TypeError`` for a value of the wrong
kind (a string where a number goes), ``ValueError`` for one out of range.

    n_in = positive_int(n_in, "Dense n_in")
    lr = finite_float(lr, "learning rate", low=0, low_open=True)
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
import sys
import warnings
from pathlib import Path

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep  # as code objects name files
_PASSED_OVER = (_PACKAGE, contextlib.__file__)


def declared(klass: type, flag: str, methods) -> bool:
    """``flag`` as the class that last wrote one of ``methods`` (or the flag) set it in
    its own body; False where that class wrote a method and said nothing. A promise
    about how a method works is not inherited by a class that rewrites the method."""
    for base in klass.__mro__:
        if flag in vars(base):
            return bool(getattr(base, flag))
        if not set(methods).isdisjoint(vars(base)):
            return False
    return False


def _shown(value) -> str:
    if isinstance(value, int) and value.bit_length() > 256:  # str() refuses past 4300 digits
        return f"{'a negative' if value < 0 else 'an'} integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def integer(value, name: str, *, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int within [low, high]; bools and floats such as 2.7 or 3.0 are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, not {_shown(value)}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"at least {low}" if high is None else f"between {low} and {high}"
        raise ValueError(f"{name} must be {bounds}, got {_shown(value)}")
    return value


def positive_int(value, name: str) -> int:
    """An int of at least 1 (a size, a count of epochs in a period)."""
    return integer(value, name, low=1)


def finite_float(
    value,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a finite float within its bounds (open at an end where asked)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, not {_shown(value)}")
    try:
        value = float(value)
    except OverflowError:  # an int past float's range, 10**400
        value = math.inf if value > 0 else -math.inf
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if not math.isfinite(value) or too_low or too_high:
        raise ValueError(
            f"{name} must be a finite number{_range(low, high, low_open, high_open)}, got {value!r}"
        )
    return value


def _range(low, high, low_open, high_open) -> str:
    if low is None and high is None:
        return ""
    if high is None:
        return f" {'above' if low_open else 'at least'} {low:g}"
    if low is None:
        return f" {'below' if high_open else 'at most'} {high:g}"
    return f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def boolean(value, name: str) -> bool:
    """True or False (NumPy's bools too); strings such as "yes" or "false" are refused."""
    kind = type(value)
    if isinstance(value, bool) or kind.__module__ == "numpy" and kind.__name__ in ("bool", "bool_"):
        return bool(value)
    raise TypeError(f"{name} must be True or False, not {_shown(value)}")


def home_expanded(path):
    """A file's ``path`` with a leading ``~`` made the home folder, as a shell would
    (and as the data loaders and ``--out`` do): no shell sees the ``~`` of
    ``checkpoint="~/runs/a.h5"``. A str stays a str; anything else as given, for its
    own check to refuse."""
    text = os.fspath(path) if isinstance(path, str | os.PathLike) else None
    if not isinstance(text, str) or not text.startswith("~"):
        return path
    expanded = os.path.expanduser(text)  # "~nobody" stays, to be reported missing
    return expanded if isinstance(path, str) else Path(expanded)


def read_path(path):
    """``path`` to read a checkpoint from, its ``~`` expanded (``home_expanded``): a
    TypeError where it is no str or Path, a ValueError where it names no file."""
    if not isinstance(path, str | os.PathLike) or isinstance(os.fspath(path), bytes):
        raise TypeError(f"path must be a file's path (str or Path), not {path!r}")
    path = home_expanded(path)
    if os.path.basename(os.fspath(path)) in ("", ".", ".."):  # Path("") is the folder "."
        raise ValueError(f"{os.fspath(path)!r} names no file: give a checkpoint's path")
    return path


def one_of(value, name: str, choices: tuple):
    """``value`` if it is one of ``choices`` (compared by equality and type)."""
    for choice in choices:
        if type(value) is type(choice) and value == choice:
            return value
    raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, not {_shown(value)}")


def check_gradients(params, grads) -> None:
    """Refuse, before a step updates anything, a gradient of no parameter, one whose
    shape is not its parameter's (it would be broadcast into the weight), or one the
    weight cannot take in place (a step failing there had updated the weights before).
    A model's ``params`` and ``grads``: a training forward since their backward had its
    own (``_check_loop_order``)."""
    if hasattr(params, "_model"):
        _check_loop_order(params._model, grads)
    for name, grad in grads.items():
        try:
            weight = params[name]
        except KeyError:
            raise KeyError(
                f"gradient {name!r} has no parameter; parameters: {list(params)}"
            ) from None
        if grad is None:
            continue
        if not hasattr(grad, "shape"):
            raise TypeError(f"the gradient of {name!r} is a {type(grad).__name__}, not an array")
        if grad.shape != weight.shape:
            raise ValueError(
                f"the gradient of {name!r} has shape {tuple(grad.shape)}, its parameter "
                f"{tuple(weight.shape)}: a layer's backward gives each weight's gradient in "
                "its shape (nb.testing.check_layer(layer) says what a layer gets wrong)"
            )
        same = type(grad) is type(weight) and grad.dtype == weight.dtype
        if not same or grad.device != weight.device:  # rare: look closer
            _check_takes(name, weight, grad)


#: what fit's and train_step's steps leave as a model's last backward and step: the
#: gradients there were stepped on, by a training forward's backward
STEPPED = ((), None, True)


def _check_loop_order(model, grads) -> None:
    """A hand loop's step after ``model.forward`` with no ``model.backward`` (torch's
    ``loss.backward()`` alone) is refused; one after the backward of an inference
    forward (``model(x)``) warns where BatchNorm or Dropout ran as in inference."""
    last, backed = getattr(model, "_out_like", None), getattr(model, "_backward_of", None)
    stepped, model._stepped_on = getattr(model, "_stepped_on", None), backed
    stale = backed is not None and backed is stepped and getattr(grads, "_model", None) is model
    if last is not None and backed is not last and ((stale and last[2]) or not grads):
        raise RuntimeError(  # forwards between backward and step (a look, a check) are fine
            "step after model.forward with no model.backward: the gradients are the last "
            "step's, or none. loss.backward() gives dL/d(output) only; "
            "model.backward(loss.backward()) fills model.grads, then opt.step(...)"
        )
    if backed is None or backed[2]:  # a training forward's backward: the usual step
        return
    modal = [type(layer).__name__ for layer in model.layers if _modal(layer)]
    if modal:
        warn_caller(
            f"this step follows the backward of an inference forward, model(x) or "
            f"forward(x, training=False): {', '.join(modal)} ran as in inference. For a "
            "training step call model.forward(x), whose training=True is the default",
            UserWarning,
        )


def _modal(layer) -> bool:
    """Whether ``layer`` trains otherwise than it infers (BatchNorm, Dropout)."""
    return bool(getattr(layer, "stochastic", False) or getattr(layer, "batch_statistics", False))


def _check_takes(name: str, weight, grad) -> None:
    """``weight`` can take ``grad`` in place: one library, one device, and a dtype that
    does not widen the weight's (float64 for a float32 weight; a float32 one for a
    float64 weight may be)."""
    from nnbackend.backend import BackendMismatchError, namespace_of  # (it imports this)

    try:
        xp = namespace_of(weight, grad)
        takes = grad.device == weight.device and xp.result_type(weight, grad) == weight.dtype
    except (BackendMismatchError, TypeError, ValueError):  # two libraries, or no dtype
        takes = False
    if not takes:
        raise TypeError(
            f"the gradient of {name!r} is {_array_text(grad, weight)}, its weight "
            f"{_array_text(weight, grad)}: compute gradients on the model's backend and "
            "device, in its dtype (model.backend.asarray(nb.to_numpy(g)), xp.astype(g, ...))"
        )


def _array_text(a, other) -> str:
    """ "numpy's float32": an array's library and dtype, as a message names them, and
    its device where that is what differs from ``other``'s."""
    device = f" on {a.device}" if type(a) is type(other) and a.device != other.device else ""
    return f"{type(a).__module__.split('.')[0]}'s {_dtype_text(a.dtype)}{device}"


def _dtype_text(dtype) -> str:
    return str(dtype).rsplit(".", 1)[-1]  # torch.float64, array_api_strict.float64


def check_input_gradient(layer, index: int, dx, shapes) -> None:
    """Refuse a dL/dx from layer ``index`` of another shape than the input its last
    forward took (``shapes[index]``): the layers below would broadcast it (a sum over
    the batch kept as a row made every row's gradient, and the fit trained on, wrong).
    None from a layer past the first (a backward without its return) is refused too."""
    if dx is None and 0 < index < len(shapes):  # the first's may be: input_grad=False
        raise ValueError(
            f"layer {index}, {layer!r}: its backward returned None (a missing return?): it "
            "returns dL/dx, the gradient of its input, for the layers below it"
        )
    if dx is None or index >= len(shapes):
        return
    shape = getattr(dx, "shape", None)
    if shape != shapes[index]:  # tuples, or torch.Size: compared without a copy
        what = f"a {type(dx).__name__}" if shape is None else f"shape {tuple(shape)}"
        raise ValueError(
            f"layer {index}, {layer!r}: its backward returned dL/dx of {what}, its input "
            f"had shape {tuple(shapes[index])}: it returns the gradient of its input, in "
            "the input's shape (nb.testing.check_layer(layer) says more)"
        )


def check_output_gradient(dy, out, backend) -> None:
    """Refuse a ``dy`` that is no array of ``backend``, or of another shape or dtype than
    the last forward's output (``out``: (shape, dtype, training); None where no forward ran):
    broadcast through the layers, it gives wrong gradients."""
    if callable(dy) and not hasattr(dy, "shape"):
        raise TypeError(f"backward takes dL/d(output), an array, not {dy!r}: call it, "
                        "model.backward(loss.backward())")  # fmt: skip
    backend.check_array(dy, "dy, backward's dL/d(output),")
    if out is None:
        return
    shape, dtype = out[:2]
    if dy.dtype != dtype:
        raise TypeError(
            f"dy has dtype {_dtype_text(dy.dtype)}, the last forward's output "
            f"{_dtype_text(dtype)}: the gradient is in the output's dtype (a loss's "
            "backward() gives it so; else xp.astype(dy, ...))"
        )
    if tuple(dy.shape) != shape:
        raise ValueError(
            f"backward takes dL/d(output) in the shape of the last forward's output, "
            f"{shape}, but dy has shape {tuple(dy.shape)}: dy[i, j] is how the loss "
            "changes with output[i, j] (a loss's backward() gives it)"
        )


def warn_caller(message: str, category: type[Warning]) -> None:
    """Warn at the first frame outside nnbackend (the user's ``fit`` call, say), however
    deep in the library the warning starts; contextlib's frames (a ``with`` the library
    opened) are passed over too."""
    level, frame = 2, sys._getframe(1)  # stacklevel 2: the frame that called this
    while frame is not None and frame.f_code.co_filename.startswith(_PASSED_OVER):
        level, frame = level + 1, frame.f_back
    warnings.warn(message, category, stacklevel=level)


def own_array(x, layers, i: int, backend):
    """``x``, the output of ``layers[i - 1]`` (the model's input where ``i`` is 0), where
    it is an array of ``backend``; else a TypeError naming that layer: one that called
    NumPy on strict or torch arrays gave the next layer, or the loss, another library's."""
    if i and not isinstance(x, backend.array_types):
        where, kind = f"layer {i - 1}, {layers[i - 1]!r}: its forward", type(x)
        if x is None:
            raise TypeError(f"{where} returned None (a missing return?): it returns its output")
        if isinstance(x, tuple | list):  # the course's (out, cache)
            raise TypeError(
                f"{where} returned a {kind.__name__}: it returns one array, its output, and "
                "keeps what backward needs on self"
            )
        raise TypeError(
            f"{where} gave a {kind.__module__}.{kind.__name__}, not an array of the model's "
            f"backend ({backend.name}): a layer calls only the Array API standard, through "
            "xp = namespace_of(x), never numpy (nb.testing.check_layer(layer) says more)"
        )
    return x
