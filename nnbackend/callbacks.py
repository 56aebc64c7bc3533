"""Callbacks: code that ``fit`` runs at the start, after every epoch, and at the end.

To stop training after this epoch, a callback sets ``model.stop_training = True``.
Epochs count from 0, like ``range``.
Reading ``logs["loss"]`` brings that value from the device (a sync on a GPU), so a
callback that reads every epoch costs a sync per epoch; ``every=`` spaces them out.

    model.fit(..., callbacks=[nb.callbacks.EarlyStopping(patience=3),
                              nb.callbacks.LambdaCallback(print_loss, every=1000)])
"""

from __future__ import annotations

import inspect
import math
import os
import warnings

from nnbackend.callback_base import Callback, callback_states, set_callback_states  # noqa: F401
from nnbackend.checkpoint import check_can_save
from nnbackend.checkpoint_sizes import check_declared, check_rebuilds
from nnbackend.checks import (
    boolean,
    finite_float,
    home_expanded,
    integer,
    one_of,
    positive_int,
    warn_caller,
)
from nnbackend.distributed.world import current, is_main
from nnbackend.io import NotFiniteError, save
from nnbackend.metrics import monitor_hint
from nnbackend.saved_files import check_no_template, replace_warning
from nnbackend.spellings import takes, told_ours


def _takes_three(fn):
    """``fn``, refused now unless it can be called as fn(epoch, logs, model) (Keras's
    LambdaCallback hands two: it failed after the first epoch had trained)."""
    if not callable(fn):
        raise TypeError(f"LambdaCallback takes a function fn(epoch, logs, model), not {fn!r}")
    try:
        inspect.signature(fn, follow_wrapped=False).bind(0, {}, None)  # what is called
    except TypeError:
        raise TypeError(
            f"LambdaCallback calls fn(epoch, logs, model), which {fn!r} cannot take: "
            "give it three parameters (lambda epoch, logs, model: ...)"
        ) from None
    except ValueError:  # a builtin without a signature: called as it is
        pass
    return fn


class LambdaCallback(Callback):
    """Calls ``fn(epoch, logs, model)`` on every ``every``-th epoch (0, every, 2*every, ...)
    and on the last one."""

    def __new__(cls, *args, **kwargs):  # Keras's on_epoch_end=: told fn=
        told_ours(cls, kwargs)
        return super().__new__(cls)

    def __init__(self, fn, every: int = 1):
        self.fn, self.every = _takes_three(fn), positive_int(every, "LambdaCallback every")

    def on_train_begin(self, model, fit):
        self.last_epoch = fit.epochs - 1

    def on_epoch_end(self, epoch, logs, model):
        if epoch % self.every == 0 or epoch == self.last_epoch or model.stop_training:
            self.fn(epoch, logs, model)  # (a stop set by a later callback is not seen yet)


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.
    When training ends, by this stop or otherwise, the best weights seen are put back
    (``restore_best_weights``).

    ``mode`` "min" or "max": whether ``monitor`` should fall or rise; "auto" asks the
    metric (``Metric.greater_is_better``: the accuracies rise, the losses and errors
    fall), and refuses to guess for a metric that does not say.

    Its state (best value, epoch and weights, epochs waited) is saved in checkpoints, so
    a run killed and resumed stops where an uninterrupted one would, with the same weights.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 5,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best_weights: bool = True,
    ):
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be a metric's name, not {monitor!r}")
        self.monitor = monitor
        self.patience = integer(patience, "patience", low=0)
        self.min_delta = finite_float(min_delta, "min_delta", low=0)
        self.mode = one_of(mode, "mode", ("min", "max", "auto"))
        self.direction = None if mode == "auto" else mode  # "auto": the fit's metric says
        self.restore_best_weights = boolean(restore_best_weights, "restore_best_weights")

    def on_train_begin(self, model, fit):
        if self.monitor not in fit.metrics:
            raise ValueError(
                f"EarlyStopping monitors {self.monitor!r}, but this fit records only "
                f"{list(fit.metrics)}{monitor_hint(self.monitor, fit, model.n_outputs)}"
            )
        if self.mode == "auto":
            self.direction = self._direction_of(fit.rises)
        self.sign = 1.0 if self.direction == "min" else -1.0
        self.best, self.best_epoch, self.wait, self.best_arrays = math.inf, None, 0, None
        self._parts = [set(model.params), set(model.state)]  # a best copy holds each whole

    def _direction_of(self, rises: dict) -> str:
        """Which way the monitored metric says it improves: "max" or "min"."""
        if rises[self.monitor] is None:
            raise ValueError(
                f"EarlyStopping(mode='auto') cannot tell whether {self.monitor!r} improves "
                "as it rises or as it falls: give mode='max' or mode='min', or say so in "
                "the metric's class (greater_is_better = True or False)"
            )
        return "max" if rises[self.monitor] else "min"

    def on_epoch_end(self, epoch, logs, model):
        score = self.sign * logs[self.monitor]
        if score < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = score, epoch, 0
            if self.restore_best_weights:  # BatchNorm's statistics go with the weights
                self.best_arrays = {**model.copy_params(), **_copy_state(model)}
            return
        self.wait += 1
        if self.wait >= self.patience:
            model.stop_training = True

    def stopped_for_good(self) -> bool:
        """Whether this callback ended training: the monitored value stopped improving
        (for ``patience`` epochs, and for one at least: patience 0 stops at the first)."""
        return self.wait >= max(self.patience, 1)

    def on_train_end(self, model, history):
        if self.best_arrays is not None and self.wait > 0:
            for name, value in self.best_arrays.items():
                store = model.state if name in model.state else model.params
                store[name] = value
        if self.stopped_for_good() and history.stop_reason is None:  # NaN's says more
            history.stop_reason = (
                f"early stop: {self.monitor} did not improve for {self.wait} "
                f"epoch{'s' * (self.wait != 1)}; "
                f"best was epoch {self.best_epoch}"
            )

    def get_state(self):
        state = {
            "monitor": self.monitor,
            "mode": self.direction,
            "best": self.best if math.isfinite(self.best) else None,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
        }
        if self.best_arrays is not None:
            state["arrays"] = self.best_arrays
        return state

    def set_state(self, state):
        if (state.get("monitor"), state.get("mode")) != (self.monitor, self.direction):
            if current().rank == 0:  # one warning a distributed job, at the user's fit
                warn_caller(
                    f"the checkpoint's EarlyStopping watched {state.get('monitor')!r} "
                    f"({state.get('mode')}), this one {self.monitor!r} ({self.direction}): "
                    "it starts afresh",
                    RuntimeWarning,
                )
            return
        best, epoch = state.get("best"), state.get("best_epoch")
        self.best = math.inf if best is None else finite_float(best, "EarlyStopping best")
        self.best_epoch = None if epoch is None else integer(epoch, "best_epoch", low=0)
        self.wait = integer(state.get("wait"), "EarlyStopping wait", low=0)
        arrays = state.get("arrays") or None
        for part in self._parts if arrays else ():  # some of two epochs' would mix them
            if set(arrays) & part and not part <= set(arrays):
                missing = sorted(part - set(arrays))
                raise ValueError(f"its best weights hold some of the model's, not {missing}")
        self.best_arrays = dict(arrays) if arrays and self.restore_best_weights else None


def _copy_state(model) -> dict:
    xp = model.backend.xp
    return {name: xp.asarray(a, copy=True) for name, a in model.state.items()}


class TerminateOnNaN(Callback):
    """Stop, with a warning that says what to try, once the training loss is NaN or inf.

    It looks at the epochs ``fit`` logs anyway (every ``log_every``), so it adds no
    device sync; ``every=1`` checks each epoch. ``raise_error=True`` raises instead.
    ``fit`` runs one always; one given in ``callbacks=`` replaces it.
    """

    def __init__(self, every: int | None = None, raise_error: bool = False):
        self.every = None if every is None else positive_int(every, "TerminateOnNaN every")
        self.raise_error = boolean(raise_error, "raise_error")

    def on_train_begin(self, model, fit):
        self.every_epochs = self.every or fit.log_every
        self.last_epoch = fit.epochs - 1
        self.optimizer = fit.optimizer
        self.from_probabilities = getattr(fit.loss, "from_logits", True) is False
        loss = fit.loss  # MSE's targets are values of their own scale; BCE's are 0/1
        self.regression = loss.targets_like_outputs and not loss.has_accuracy
        self.message = None
        self.distributed = getattr(fit, "distributed", False)
        self.says = not self.distributed or is_main()  # one warning a job

    def on_epoch_end(self, epoch, logs, model):
        if epoch % self.every_epochs and epoch != self.last_epoch:
            return
        loss = logs["loss"]
        if math.isfinite(loss):
            return
        logits = ", or a loss computed from logits (from_logits=True)" * self.from_probabilities
        targets = " and the targets' (standardise y too, undoing it on the predictions)"
        message = (
            f"training loss became {loss} by epoch {epoch}; training stopped. "
            f"Try a smaller learning rate (it is {self._rate()}), check the inputs' scale"
            f"{targets * self.regression}{logits}."
        )
        if self.raise_error:
            error = FloatingPointError(message)
            error.every_rank = self.distributed  # each rank judged the same global loss
            raise error
        if self.says:
            warnings.warn(message, RuntimeWarning, stacklevel=2)
        self.message = message
        model.stop_training = True

    def _rate(self) -> str:
        try:
            return f"{self.optimizer.current_lr():g}"
        except ValueError as exc:  # a rate gone NaN or inf itself
            return str(exc)

    def on_train_end(self, model, history):
        if self.message:
            history.stop_reason = self.message


class ModelCheckpoint(Callback):
    """Save model, optimizer state, epoch and the other callbacks' states to ``path``
    (atomically, with ``nb.save``) every ``every`` epochs (default: at each of fit's log
    points), and at the last epoch. Where a callback ended the run for good
    (EarlyStopping), that save comes after the callbacks' ``on_train_end``, so it holds
    the weights ``fit`` returns (EarlyStopping's best ones); where the run may go on (its
    epochs ran out, or another callback stopped it), it holds the last epoch's weights,
    beside EarlyStopping's best in its state, so that a resumed or longer fit carries on
    exactly as one run would. A model whose loss, weights or optimizer state hold NaN or
    inf is not saved (an epoch's last update can blow the weights up after its loss was
    measured): the last good checkpoint stays, and a warning says so. Keras's options
    (``save_best_only=``, ``monitor=``) are refused, each told what does its work here.

    ``fit`` runs checkpoints after its other callbacks: each save holds their state of
    its epoch. Only rank 0 writes in a distributed fit; a fit of one rank's own, where it runs.
    """

    KERAS_OPTIONS = ("monitor", "save_best_only", "mode", "save_weights_only", "save_freq")
    tells_of_replacing = True  # another run's file at path, or another model's: a warning

    def __new__(cls, *args, **kwargs):
        keras = [f"{k}=" for k in kwargs if k in cls.KERAS_OPTIONS and not takes(cls, k)]
        if keras:  # Python's words were "unexpected keyword argument 'save_best_only'"
            raise TypeError(
                f"ModelCheckpoint takes no {', '.join(keras)} (Keras's): it saves the run, every=N "
                "epochs, to resume it. The best weights: EarlyStopping(monitor=...) puts them back "
                "at its stop, and the checkpoint holds them; or nb.save(model, path) after fit"
            )
        return super().__new__(cls)

    def __init__(self, path, every: int | None = None):
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"ModelCheckpoint's path must be a str or Path, not {path!r}")
        check_no_template(path, "ModelCheckpoint path")
        self.path = home_expanded(path)
        self.every = None if every is None else positive_int(every, "ModelCheckpoint every")

    def on_train_begin(self, model, fit):
        self.every_epochs = self.every or fit.log_every
        self.last_epoch = fit.epochs - 1
        self.distributed = getattr(fit, "distributed", False)
        self.writes = not self.distributed or is_main()  # rank 0 alone

        self.optimizer = fit.optimizer

        def check():  # now, not after an epoch
            replaces = check_can_save(self.path, "ModelCheckpoint path") and fit.epochs > 0
            check_declared(model)
            check_rebuilds(model, getattr(fit, "loss", None), self.optimizer)
            said = replaces and self.tells_of_replacing
            said = said and replace_warning(self.path, model, "ModelCheckpoint path", True)
            if said:  # another model's file (another run's may be its own, resumed)
                warn_caller(said, UserWarning)

        self._on_main(check, f"write the checkpoint {self.path}")
        self.callbacks = getattr(fit, "callbacks", ())
        self.final = None  # the epoch that ended training for good, saved at the end

    def on_epoch_end(self, epoch, logs, model):
        # every rank takes the same path (the same loss, weights and callbacks' states)
        # to each save, which rank 0 alone makes
        if (epoch == self.last_epoch or model.stop_training) and self._stopped_for_good():
            self.final = epoch  # saved by on_train_end, with what fit returns
        elif epoch == self.last_epoch or model.stop_training or epoch % self.every_epochs == 0:
            # the training state, before EarlyStopping puts its best back; the loss is
            # read only here (a sync on a GPU)
            if math.isfinite(logs["loss"]) or self._refuse(epoch, f"its loss is {logs['loss']}"):
                self._save(model, epoch)

    def on_train_end(self, model, history):
        if self.final is not None:  # EarlyStopping's best weights: no epoch's loss is theirs
            self._save(model, self.final, stopped=True)

    def _stopped_for_good(self) -> bool:
        return any(callback.stopped_for_good() for callback in self.callbacks)

    def _refuse(self, epoch: int, what: str) -> bool:
        if self.writes:  # one warning a job
            kept = (
                "keeps the last good checkpoint" if os.path.exists(self.path) else "is not written"
            )
            warn_caller(
                f"ModelCheckpoint: epoch {epoch} not saved: {what}; {self.path} {kept}",
                RuntimeWarning,
            )
        return False

    def _save(self, model, epoch, stopped=False):
        def write():
            states = callback_states(self.callbacks)
            try:  # nb.save checks every array it writes, the optimizer's state too
                save(model, self.path, optimizer=self.optimizer, epoch=epoch,
                     callbacks=states, stopped=stopped)  # fmt: skip
            except NotFiniteError as exc:
                self._refuse(epoch, exc.reason)

        self._on_main(write, f"save the checkpoint {self.path}")

    def _on_main(self, fn, what: str) -> None:
        """``fn()`` where this process writes; in a distributed fit on rank 0, and what
        it raises raised on every rank (the others would wait for it in the next step)."""
        if self.distributed:
            current().on_main(fn, what)
        else:
            fn()


class FitCheckpoint(ModelCheckpoint):
    """The ModelCheckpoint of fit's ``checkpoint=``, whose replacing of an earlier run's
    file ``fit`` tells itself (with how to resume it)."""

    tells_of_replacing = False
