"""Callbacks: code that ``fit`` runs at the start, after every epoch, and at the end.

To stop training after this epoch, a callback sets ``model.stop_training = True``.
Epochs count from 0, like ``range``.
Reading ``logs["loss"]`` brings that value from the device (a sync on a GPU), so a
callback that reads every epoch costs a sync per epoch; ``every=`` spaces them out.

    model.fit(..., callbacks=[nb.callbacks.EarlyStopping(patience=3),
                              nb.callbacks.LambdaCallback(print_loss, every=1000)])
"""

from __future__ import annotations

import math
import warnings

from nnbackend.io import save


class Callback:
    def on_train_begin(self, model, fit) -> None:
        """``fit`` holds the run's settings: epochs, log_every, has_validation, ..."""

    def on_epoch_end(self, epoch: int, logs, model) -> None:
        """``logs``: this epoch's metrics by name; set ``model.stop_training`` to stop."""

    def on_train_end(self, model, history) -> None:
        pass


class LambdaCallback(Callback):
    """Calls ``fn(epoch, logs, model)`` on every ``every``-th epoch (0, every, 2*every, ...)
    and on the last one."""

    def __init__(self, fn, every: int = 1):
        self.fn, self.every = fn, int(every)

    def on_train_begin(self, model, fit):
        self.last_epoch = fit.epochs - 1

    def on_epoch_end(self, epoch, logs, model):
        if epoch % self.every == 0 or epoch == self.last_epoch:
            self.fn(epoch, logs, model)


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs;
    then put back the best weights seen (``restore_best_weights``)."""

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 5,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best_weights: bool = True,
    ):
        self.monitor, self.patience, self.min_delta = monitor, int(patience), float(min_delta)
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min', 'max' or 'auto', not {mode!r}")
        self.sign = 1.0 if mode == "min" else -1.0
        self.restore_best_weights = restore_best_weights

    def on_train_begin(self, model, fit):
        if self.monitor not in fit.metrics:
            raise ValueError(
                f"EarlyStopping monitors {self.monitor!r}, but this fit records only "
                f"{list(fit.metrics)}; for 'val_*' pass validation_data or validation_split"
            )
        self.best, self.best_epoch, self.wait, self.best_params = math.inf, None, 0, None

    def on_epoch_end(self, epoch, logs, model):
        score = self.sign * logs[self.monitor]
        if score < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = score, epoch, 0
            if self.restore_best_weights:
                self.best_params = model.copy_params()
                self.best_state = _copy_state(model)  # BatchNorm's statistics go with them
            return
        self.wait += 1
        if self.wait >= self.patience:
            model.stop_training = True

    def on_train_end(self, model, history):
        if self.best_params is not None and self.wait > 0:
            model.set_params(self.best_params)
            for name, value in self.best_state.items():
                model.state[name] = value
        if self.wait >= self.patience:
            history.stop_reason = (
                f"early stop: {self.monitor} did not improve for {self.patience} epochs; "
                f"best was epoch {self.best_epoch}"
            )


def _copy_state(model) -> dict:
    xp = model.backend.xp
    return {name: xp.asarray(a, copy=True) for name, a in model.state.items()}


class TerminateOnNaN(Callback):
    """Stop, with a warning that says what to try, once the training loss is NaN or inf.

    It looks at the epochs ``fit`` logs anyway (every ``log_every``), so it adds no
    device sync; ``every=1`` checks each epoch. ``raise_error=True`` raises instead.
    """

    def __init__(self, every: int | None = None, raise_error: bool = False):
        self.every, self.raise_error = every, raise_error

    def on_train_begin(self, model, fit):
        self.every_epochs = self.every or fit.log_every
        self.last_epoch = fit.epochs - 1
        self.lr = fit.optimizer.current_lr()

    def on_epoch_end(self, epoch, logs, model):
        if epoch % self.every_epochs and epoch != self.last_epoch:
            return
        loss = logs["loss"]
        if math.isfinite(loss):
            return
        message = (
            f"training loss became {loss} by epoch {epoch}; training stopped. "
            f"Try a smaller learning rate (it was {self.lr:g}), check the inputs for NaN/inf "
            "and their scale, or use a loss computed from logits (from_logits=True)."
        )
        if self.raise_error:
            raise FloatingPointError(message)
        warnings.warn(message, RuntimeWarning, stacklevel=2)
        self.message = message
        model.stop_training = True

    def on_train_end(self, model, history):
        if getattr(self, "message", None):
            history.stop_reason = self.message


class ModelCheckpoint(Callback):
    """Save model, optimizer state and epoch to ``path`` (atomically, with ``nb.save``)
    every ``every`` epochs (default: at each of fit's log points), when training
    stops, and after the last epoch. A model whose loss is NaN or inf is not saved:
    the last good checkpoint stays."""

    def __init__(self, path, every: int | None = None):
        self.path, self.every = path, every

    def on_train_begin(self, model, fit):
        self.every_epochs = self.every or fit.log_every
        self.last_epoch = fit.epochs - 1
        self.optimizer = fit.optimizer

    def on_epoch_end(self, epoch, logs, model):
        due = epoch % self.every_epochs == 0 or epoch == self.last_epoch or model.stop_training
        if due and math.isfinite(logs["loss"]):
            save(model, self.path, optimizer=self.optimizer, epoch=epoch)
