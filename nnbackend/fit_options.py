"""What ``fit`` checks of its options before it touches the model: numbers of the
right kind and range, a checkpoint path it can write to, callbacks that are Callbacks,
an optimizer whose state its steps can go on from. Each raises a TypeError or
ValueError that names the option and what it takes. Also what ``fit`` says of a
resume that had nothing left to train."""

from __future__ import annotations

import difflib
import inspect
import numbers
import re

from nnbackend import callbacks as cb
from nnbackend import losses as loss_types
from nnbackend.checkpoint import MAX_EPOCH, check_can_save
from nnbackend.checkpoint_sizes import check_declared, check_rebuilds
from nnbackend.checks import boolean, finite_float, integer, one_of, positive_int, warn_caller
from nnbackend.distributed.world import current
from nnbackend.losses import L2
from nnbackend.optim_base import Optimizer
from nnbackend.registry import OPTIMIZERS
from nnbackend.saved_files import check_no_template, replace_warning


def check_options(*, epochs, batch_size, shuffle, l2, validation_split, validation_batch_size,
                  verbose, log_every, seed, resume, on_device) -> None:  # fmt: skip
    """Raise a clear TypeError/ValueError for a ``fit`` option of the wrong kind or value."""
    integer(epochs, "epochs", low=0, high=MAX_EPOCH)  # a checkpoint's epoch is bound so
    if batch_size is not None:
        positive_int(batch_size, "batch_size (None for full batch)")
    boolean(shuffle, "shuffle")
    if l2 is not None:
        finite_float(l2, "l2", low=0)
    finite_float(validation_split, "validation_split", low=0, high=1, high_open=True)
    if validation_batch_size is not None:
        positive_int(validation_batch_size, "validation_batch_size (None: batch_size)")
    try:  # Keras's and scikit-learn's True and False: 1 and 0
        boolean(verbose, "verbose")
    except TypeError:
        integer(verbose, "verbose", low=0, high=2)
    if log_every is not None:
        positive_int(log_every, "log_every")
    if seed is not None:
        integer(seed, "seed", low=0)
    boolean(resume, "resume")
    one_of(on_device, "on_device", (True, False, "auto"))


def check_checkpoint(checkpoint, model, loss=None, optimizer=None, *, resume=False,
                     epochs=1) -> str | None:  # fmt: skip
    """Refuse, before training, a checkpoint path a save could not write, or a model
    whose checkpoint no load could read (the first save would fail after an epoch).
    Returns the warning to give once every check has passed, where a fit not resuming
    will replace an earlier run's checkpoint; else None."""
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=<path> to resume from")
    if checkpoint is None:
        return None
    check_no_template(checkpoint, "checkpoint")
    replaces = check_can_save(checkpoint, "checkpoint") and not resume and epochs > 0
    check_declared(model)
    check_rebuilds(model, loss, optimizer)
    return replace_warning(checkpoint, model) if replaces else None


def check_optimizer_state(optimizer, backend) -> None:
    """Refuse an optimizer whose state holds NaN or inf, which its first step would
    spread into the weights: a run whose loss went NaN leaves it so, and EarlyStopping
    puts the best weights back, not the optimizer's state. One transfer from the device."""
    xp = backend.xp
    named = [
        (f"{slot}[{name!r}]", array)
        for slot, arrays in optimizer.state.items()
        for name, array in arrays.items()
        if xp.isdtype(array.dtype, "real floating")
    ]
    if not named:
        return
    finite = backend.to_numpy(xp.stack([xp.all(xp.isfinite(a)) for _, a in named]))
    bad = [what for (what, _), ok in zip(named, finite.tolist(), strict=True) if not ok]
    if bad:
        raise ValueError(
            f"{optimizer!r}'s state holds NaN or inf ({', '.join(bad[:4])}), as a run that "
            "diverged leaves it; its steps would spread it into the weights (and nb.save "
            f"refuses it). Train on with a new optimizer, {type(optimizer).__name__}(...), "
            "or resume=True from a checkpoint that holds an optimizer's state"
        )


def checked_callbacks(callbacks) -> list:
    """``callbacks`` as a list; one callback alone is taken as a list of one, None as none."""
    if isinstance(callbacks, cb.Callback):
        return [callbacks]
    if callbacks is None:
        return []
    if isinstance(callbacks, type):  # one class alone: told below to make one
        callbacks = [callbacks]
    if isinstance(callbacks, str | bytes) or not hasattr(callbacks, "__iter__"):
        raise TypeError(f"callbacks is a list of callbacks, not {callbacks!r}")
    callbacks = list(callbacks)  # a generator is read once
    for callback in callbacks:
        if isinstance(callback, type) and issubclass(callback, cb.Callback):
            raise TypeError(
                f"callbacks holds {callback.__name__}, a class: make one, {callback.__name__}(...)"
            )
        if not isinstance(callback, cb.Callback):
            hint = " (a class: make one, Name(...))" if isinstance(callback, type) else ""
            raise TypeError(
                f"callbacks holds {callback!r}{hint}, which is no nnbackend Callback; a "
                "function to call each epoch goes in nb.callbacks.LambdaCallback(fn)"
            )
        _warn_of_unknown_hooks(callback)
        _check_hook_arguments(callback)
    return callbacks


HOOKS = tuple(name for name in vars(cb.Callback) if name.startswith("on_"))
# Keras's and Lightning's hooks that fit has no counterpart of
OTHER_HOOKS = re.compile(
    r"on_((train_|test_|predict_|validation_)?(batch|epoch)|step|test|predict|train|fit)"
    r"_(begin|start|end)"
)


def _warn_of_unknown_hooks(callback) -> None:
    """Keras's ``on_batch_end``, Lightning's ``on_train_start``, a misspelt hook
    (``on_epoch_ends``), written in a callback, would never run; a state kept by
    ``get_state`` without a ``set_state`` would not come back at a resume."""
    kind = type(callback)
    unknown = [
        name
        for name in dir(kind)
        if (OTHER_HOOKS.fullmatch(name) or name.startswith("on_")  # not a helper, _on_...
            and difflib.get_close_matches(name, HOOKS, 1, 0.85))
        and name not in HOOKS and inspect.isfunction(inspect.getattr_static(kind, name))
    ]  # fmt: skip
    if current().rank != 0:  # one warning a job (a fit of its own joins none)
        return
    if unknown:
        warn_caller(
            f"{kind.__name__} has {', '.join(unknown)}, which fit never calls: its hooks "
            f"are {', '.join(HOOKS)}",
            UserWarning,
        )
    if kind.get_state is not cb.Callback.get_state and kind.set_state is cb.Callback.set_state:
        warn_caller(
            f"{kind.__name__} keeps a state (get_state) but has no set_state: a resume "
            "would not give it back",
            UserWarning,
        )


def _check_hook_arguments(callback) -> None:
    """Each hook takes what fit passes it: one written with Keras's arguments,
    ``on_epoch_end(self, epoch, logs=None)``, failed once the first epoch had trained."""
    for name in HOOKS:
        passed = list(inspect.signature(getattr(cb.Callback, name)).parameters)[1:]
        hook = getattr(callback, name)
        try:
            inspect.signature(hook).bind(*passed)
        except ValueError:  # no signature to read (a builtin): it is called and seen
            continue
        except TypeError:
            raise TypeError(
                f"{type(callback).__name__}.{name}{inspect.signature(hook)} cannot take what "
                f"fit passes it, ({', '.join(passed)}): write it as {name}(self, "
                f"{', '.join(passed)}) (Keras's self.model is the model argument here)"
            ) from None


#: Keras's, the classic course's and scikit-learn's options that have no counterpart
#: here by that name, each told what does its work
OTHER_FIT_OPTIONS = {
    "validation_steps": "validation runs over all of the validation data each epoch "
    "(validation_batch_size= sets its batches)",
    "validation_freq": "validation runs every epoch",
    "steps_per_epoch": "an epoch is one pass over X",
    "initial_epoch": "a fit goes on from a checkpoint's epoch with checkpoint=path, resume=True",
    "class_weight": "weighting is not offered: resample X and y to weight the classes",
    "sample_weight": "weighting is not offered: resample X and y to weight the samples",
    "num_iterations": "the course's steps on the whole set are epochs=..., batch_size=None",
    "print_cost": "verbose=1 (the default) prints the loss every log_every= epochs",
    "lambd": "the course's lambd/(2m) * sum(W**2) is l2=lambd/m (m the number of samples)",
    "keep_prob": "dropout is a layer: Dropout(rate=1 - keep_prob) after an activation",
    "max_iter": "epochs= is the number of passes over X",
    "eta": "the learning rate is the optimizer's: Nielsen's eta is optimizer="
    "nb.optim.SGD(lr=eta) under cross_entropy (a term per sample), SGD(lr=k * eta) on k "
    "outputs under MSE(half=True) or bce (they average over the outputs too)",
    "lmbda": "Nielsen's lmbda is l2=lmbda / n with cross_entropy's SGD(lr=eta), l2=lmbda / "
    "(k * n) with SGD(lr=k * eta) under MSE(half=True) or bce (n the samples, k the outputs)",
}


def check_option_names(options, fit, optimizer=None) -> None:
    """A TypeError for an option ``fit`` does not take, saying what was likely meant
    (``lr=``: the rate of the ``optimizer`` fit was given, of its own class)."""
    known = [name for name in inspect.signature(fit).parameters if name not in ("model", "X", "y")]
    for name in options:
        if name in known:
            continue
        if name in ("lr", "learning_rate"):
            kind, rate = _optimizer_class(optimizer), options[name]
            hint = f"the learning rate is the optimizer's: optimizer={kind}(lr={rate!r})"
        elif name in OTHER_FIT_OPTIONS:  # the closest spelling would be another option
            hint = OTHER_FIT_OPTIONS[name]
        else:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]}=?" if close else f"it takes {', '.join(known)}"
        raise TypeError(f"fit() takes no option {name}=; {hint}")


def _optimizer_class(optimizer) -> str:
    """The class of the optimizer ``fit`` was given, as code names it ("adam":
    nb.optim.Adam; one's own by its name); nb.optim.SGD where it is none."""
    name = optimizer.get("type") if isinstance(optimizer, dict) else optimizer
    try:  # a name, a config dict's, a class or an object
        kind = OPTIMIZERS.find(name) if isinstance(name, str) else name
    except ValueError:  # its own error comes next, said in full
        kind = None
    kind = kind if isinstance(kind, type) else type(kind)
    kind = kind if issubclass(kind, Optimizer) else OPTIMIZERS.get("SGD")
    return (
        f"nb.optim.{kind.__name__}" if kind.__module__.startswith("nnbackend.") else kind.__name__
    )


def step_arguments(loss, optimizer, l2):
    """``train_step``'s loss and l2 as ``fit`` takes them (a loss's name; l2 a number);
    an optimizer named is refused: made at every step, it would keep no state."""
    if not isinstance(optimizer, Optimizer):
        named = isinstance(optimizer, str | dict)
        why = " (made at each step, it would keep no state)" if named else ""
        raise TypeError(
            f"train_step takes an optimizer made once, before the loop: opt = "
            f"{_making(optimizer)}, say, not {optimizer!r}{why}"
        )
    if isinstance(l2, numbers.Real) and not isinstance(l2, bool):
        l2 = L2(finite_float(l2, "l2", low=0)) if l2 else None
    elif l2 is not None and not isinstance(l2, L2):
        raise TypeError(f"l2 is a number (as fit takes it) or an nb.losses.L2, not {l2!r}")
    return loss_types.get(loss), l2


def _making(optimizer) -> str:
    """The call that makes an optimizer of the name, config or class given (Adam where
    it is none, or the base class, which steps nothing)."""
    if isinstance(optimizer, str | dict):
        return f"nb.optim.get({optimizer!r})"
    if not isinstance(optimizer, type) or not issubclass(optimizer, Optimizer):
        return "nb.optim.Adam(0.01)"
    if optimizer is Optimizer:
        return "nb.optim.Adam(0.01)"
    return f"{_optimizer_class(optimizer)}({'' if _has_defaults(optimizer) else '...'})"


def _has_defaults(kind: type) -> bool:
    """Whether ``kind()`` makes one: every argument has a default (the built-ins' do)."""
    free = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    arguments = inspect.signature(kind).parameters.values()
    return all(p.default is not p.empty or p.kind in free for p in arguments)


def nothing_left(saved, epochs: int) -> str:
    """Why a resumed fit trained no epoch: ``saved`` is the Checkpoint it resumed from."""
    if saved.stopped:
        why = f"a callback (EarlyStopping) ended its run at epoch {saved.epoch}"
        way = "resume=False starts afresh"
    else:
        why = f"it holds epoch {saved.epoch}, the last of epochs={saved.epoch + 1}"
        way = f"epochs above {saved.epoch + 1} go on from it (this fit asked for {epochs})"
    return f"nothing left to train: {saved.path}: {why} ({way})"
