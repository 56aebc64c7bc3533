"""Training a model: ``fit`` and ``evaluate``, and the loop behind them.

    history = nb.training.fit(model, X, y, loss=..., optimizer=..., epochs=10)
    # which is what model.fit(X, y, ...) calls

The loop is batches → forward → loss → backward → step (``Sequential.train_step``).
Each batch's loss and right-answer count stay on the device as 0-d arrays;
``EpochLogs`` brings them to the host, all at once, only when they are logged or read,
so the loop itself never waits for a GPU.

This module sits above the model: it drives any model with ``forward``, ``backward``,
``train_step``, ``params`` and a ``backend``, and uses ``io`` to resume and save.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from nnbackend import callbacks as cb
from nnbackend.backend import Generator
from nnbackend.data import Batches, check_inputs, check_targets, is_foreign, target_dtype
from nnbackend.history import EpochLogs, History
from nnbackend.io import restore
from nnbackend.losses import L2
from nnbackend.progress import Progress


def fit(
    model, X, y, *, loss, optimizer, epochs: int = 1, batch_size: int | None = 32,
    shuffle: bool = True, validation_data=None, validation_split: float = 0.0,
    l2: float | None = None, callbacks=(), verbose: int = 1, log_every: int | None = None,
    seed: int | None = None, checkpoint=None, resume: bool = False, on_device="auto",
) -> History:  # fmt: skip
    """Train ``model`` until epoch ``epochs``; returns the History of the epochs run.
    ``Sequential.fit`` documents the arguments."""
    model.loss, model.optimizer = loss, optimizer
    if seed is not None:
        model.rng = Generator(seed)
    start = resume_from(model, checkpoint, optimizer) if resume else 0
    X, y, validation_data = split_validation(X, y, validation_data, validation_split)
    batches = batches_for(model, X, y, loss, batch_size, shuffle=shuffle, on_device=on_device)
    validation = None
    if validation_data is not None:
        validation = batches_for(model, *validation_data, loss, None, shuffle=False)
    trainer = Trainer(
        model, loss, optimizer, l2=l2, callbacks=callbacks, checkpoint=checkpoint,
        log_every=log_every or max(1, epochs // 20), verbose=verbose,
    )  # fmt: skip
    return trainer.run(batches, validation, range(start, epochs))


def evaluate(model, X, y, loss=None, batch_size: int | None = None) -> dict[str, float]:
    """Loss (and accuracy) of ``model`` on (X, y), as Python floats (one host transfer)."""
    loss = loss or model.loss
    if loss is None:
        raise ValueError("evaluate needs a loss: pass loss=..., or fit the model first")
    metrics = measure(model, batches_for(model, X, y, loss, batch_size, shuffle=False), loss)
    return dict(EpochLogs(0, metrics, model.backend))


def resume_from(model, checkpoint, optimizer) -> int:
    """The first epoch to run: after the one saved in ``checkpoint``, if it exists."""
    if checkpoint is None:
        raise ValueError("resume=True needs checkpoint=<path> to resume from")
    if not Path(checkpoint).exists():
        return 0
    epoch = restore(model, checkpoint, optimizer)
    return 0 if epoch is None else epoch + 1


def batches_for(model, X, y, loss, batch_size, *, shuffle, on_device="auto") -> Batches:
    """(X, y) checked against ``model`` and ``loss``, then batched on the model's backend."""
    backend = model.backend
    if not isinstance(X, backend.array_types) and is_foreign(X):
        backend.check_array(X, "X")
    check_inputs(X, model.input_shape)
    check_targets(y, X.shape[0], model.n_outputs, loss.target_kind)
    return Batches(
        X, y, backend, batch_size, shuffle=shuffle, rng=model.rng,
        y_dtype=target_dtype(loss, y, backend), on_device=on_device,
    )  # fmt: skip


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
