"""The training loop behind ``Sequential.fit``: batches → forward → loss → backward → step.

Each batch's loss and right-answer count stay on the device as 0-d arrays;
``EpochLogs`` brings them to the host, all at once, only when they are logged or read,
so the loop itself never waits for a GPU.
"""

from __future__ import annotations

from types import SimpleNamespace

from nnbackend import callbacks as cb
from nnbackend.history import EpochLogs, History
from nnbackend.losses import L2
from nnbackend.progress import Progress


class Trainer:
    """Runs epochs of one ``fit`` call, with its callbacks, progress and history."""

    def __init__(self, model, loss, optimizer, *, l2=None, callbacks=(), checkpoint=None,
                 log_every: int = 1, verbose: int = 1):  # fmt: skip
        self.model, self.loss, self.optimizer = model, loss, optimizer
        self.l2 = L2(l2) if l2 else None
        self.callbacks = [cb.TerminateOnNaN(), *callbacks]
        if checkpoint is not None:
            self.callbacks.append(cb.ModelCheckpoint(checkpoint))
        self.log_every, self.verbose = log_every, verbose

    def run(self, batches, validation, epochs: range) -> History:
        """Train over ``epochs`` (absolute numbers, so a resumed fit counts on)."""
        model = self.model
        history = History(model.backend)
        names = metric_names(self.loss, validation is not None)
        settings = SimpleNamespace(
            epochs=epochs.stop, log_every=self.log_every, optimizer=self.optimizer, metrics=names
        )
        model.stop_training = False  # a callback sets it to end training after an epoch
        for callback in self.callbacks:
            callback.on_train_begin(model, settings)
        with Progress(len(epochs) * len(batches), self.verbose, names) as progress:
            for epoch in epochs:
                metrics = self.train_epoch(batches, progress)
                if validation is not None:
                    metrics.update(_prefixed("val_", measure(model, validation, self.loss)))
                logs = EpochLogs(epoch, metrics, model.backend)
                history.append(logs)
                if epoch % self.log_every == 0 or epoch == epochs.stop - 1:
                    history.flush()
                    progress.log(epoch, logs)
                for callback in self.callbacks:
                    callback.on_epoch_end(epoch, logs, model)
                if model.stop_training:
                    break
        for callback in self.callbacks:
            callback.on_train_end(model, history)
        return history

    def train_epoch(self, batches, progress) -> dict:
        """One pass over the batches; the epoch's metrics, still on the device."""
        totals = Totals(self.loss)
        for xb, yb in batches:
            value, out = self.model.train_step(xb, yb, self.loss, self.optimizer, self.l2)
            totals.add(value, out, yb)
            progress.update()
        return totals.metrics(batches.n)


def measure(model, batches, loss) -> dict:
    """Loss (and accuracy) of ``model`` over ``batches``, without training, on device."""
    totals = Totals(loss)
    for xb, yb in batches:
        out = model.forward(xb, training=False)
        totals.add(loss.forward(out, yb), out, yb)
    return totals.metrics(batches.n)


class Totals:
    """The batches' losses and right-answer counts, kept as device scalars: adding them
    up is left to the host, after the one transfer, so it costs no kernels per step."""

    def __init__(self, loss):
        self.loss, self.losses, self.corrects = loss, [], []

    def add(self, value, out, target) -> None:
        self.losses.append((value, self.loss.per_batch_weight(out.shape[0])))
        if self.loss.has_accuracy:
            self.corrects.append((self.loss.count_correct(out, target), 1))

    def metrics(self, n: int) -> dict:
        """name -> ([(device scalar, weight), ...], n): EpochLogs reads sum(w * value) / n."""
        metrics = {"loss": (self.losses, n)}
        if self.loss.has_accuracy:
            metrics["accuracy"] = (self.corrects, n)
        return metrics


def metric_names(loss, has_validation: bool) -> list[str]:
    names = ["loss", "accuracy"] if loss.has_accuracy else ["loss"]
    return names + [f"val_{n}" for n in names] if has_validation else names


def split_validation(X, y, validation_data, fraction: float):
    """Hold out the last ``fraction`` of the samples (as given, before any shuffling:
    the same split on every run, resumed runs included)."""
    if not fraction:
        return X, y, validation_data
    if validation_data is not None:
        raise ValueError("give validation_data or validation_split, not both")
    if not 0 < fraction < 1:
        raise ValueError(f"validation_split must be between 0 and 1, got {fraction}")
    n_train = X.shape[0] - max(1, round(fraction * X.shape[0]))
    return X[:n_train, ...], y[:n_train, ...], (X[n_train:, ...], y[n_train:, ...])


def _prefixed(prefix: str, metrics: dict) -> dict:
    return {prefix + k: v for k, v in metrics.items()}
