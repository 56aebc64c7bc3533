"""What ``fit`` checks of its options before it touches the model: numbers of the
right kind and range, a checkpoint path it can write to, callbacks that are Callbacks.
Each raises a TypeError or ValueError that names the option and what it takes."""

from __future__ import annotations

import difflib
import inspect

from nnbackend import callbacks as cb
from nnbackend.atomic import check_can_write
from nnbackend.checkpoint_sizes import check_declared, check_rebuilds
from nnbackend.checks import boolean, finite_float, integer, one_of, positive_int


def check_options(*, epochs, batch_size, shuffle, l2, validation_split, validation_batch_size,
                  verbose, log_every, seed, resume, on_device) -> None:  # fmt: skip
    """Raise a clear TypeError/ValueError for a ``fit`` option of the wrong kind or value."""
    integer(epochs, "epochs", low=0)
    if batch_size is not None:
        positive_int(batch_size, "batch_size (None for full batch)")
    boolean(shuffle, "shuffle")
    if l2 is not None:
        finite_float(l2, "l2", low=0)
    finite_float(validation_split, "validation_split", low=0, high=1, high_open=True)
    if validation_batch_size is not None:
        positive_int(validation_batch_size, "validation_batch_size (None: batch_size)")
    integer(verbose, "verbose", low=0, high=2)
    if log_every is not None:
        positive_int(log_every, "log_every")
    if seed is not None:
        integer(seed, "seed", low=0)
    boolean(resume, "resume")
    one_of(on_device, "on_device", (True, False, "auto"))


def check_checkpoint(checkpoint, model, loss=None, optimizer=None) -> None:
    """Refuse, before training, a checkpoint path a save could not write, or a model
    whose checkpoint no load could read (the first save would fail after an epoch)."""
    if checkpoint is not None:
        check_can_write(checkpoint, "checkpoint")
        check_declared(model)
        check_rebuilds(model, loss, optimizer)


def checked_callbacks(callbacks) -> list:
    """``callbacks`` as a list; one callback alone is taken as a list of one, None as none."""
    if isinstance(callbacks, cb.Callback):
        return [callbacks]
    if callbacks is None:
        return []
    if isinstance(callbacks, str | bytes) or not hasattr(callbacks, "__iter__"):
        raise TypeError(f"callbacks is a list of callbacks, not {callbacks!r}")
    for callback in callbacks:
        if not isinstance(callback, cb.Callback):
            hint = " (a class: make one, Name(...))" if isinstance(callback, type) else ""
            raise TypeError(
                f"callbacks holds {callback!r}{hint}, which is no nnbackend Callback; a "
                "function to call each epoch goes in nb.callbacks.LambdaCallback(fn)"
            )
    return list(callbacks)


def check_option_names(options, fit) -> None:
    """A TypeError for an option ``fit`` does not take, saying what was likely meant."""
    known = [name for name in inspect.signature(fit).parameters if name not in ("model", "X", "y")]
    for name in options:
        if name in known:
            continue
        if name in ("lr", "learning_rate"):
            rate = options[name]
            hint = f"the learning rate is the optimizer's: optimizer=nb.optim.SGD(lr={rate!r})"
        else:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]}=?" if close else f"it takes {', '.join(known)}"
        raise TypeError(f"fit() takes no option {name}=; {hint}")
