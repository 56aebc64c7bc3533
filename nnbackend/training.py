"""Training a model: ``fit`` and ``evaluate``, and the loop behind them.

    history = nb.training.fit(model, X, y, loss="cross_entropy", optimizer="adam", epochs=10)
    # which is what model.fit(X, y, ...) calls

The loop is batches → forward → loss → backward → step (``Sequential.train_step``).
Each batch's loss and metrics (``nnbackend.metrics``) stay on the device as 0-d
arrays; ``EpochLogs`` brings them to the host, all at once, only when they are logged
or read, so the loop itself never waits for a GPU.

This module sits above the model: it drives any model with ``forward``, ``backward``,
``train_step``, ``params`` and a ``backend``, and uses ``io`` to resume and save.
With ``distributed=True`` the ranks of an MPI job train one model together:
``nnbackend.distributed.parallel`` holds how; the loop only hands it each batch.
"""

from __future__ import annotations

import contextlib
import functools
from types import SimpleNamespace

from nnbackend import callbacks as cb
from nnbackend import fit_data, optim, output_range
from nnbackend import losses as loss_types
from nnbackend import metrics as metric_types
from nnbackend.backend import Generator, limit_threads
from nnbackend.backend.compiling import compile_step
from nnbackend.backend.threads import threads_for_step
from nnbackend.checkpoint import nothing_saved_at
from nnbackend.checkpoint_sizes import own_classes
from nnbackend.checks import boolean, home_expanded, warn_caller
from nnbackend.data import as_array
from nnbackend.distributed.alike import on_every_rank, refused_before_meeting
from nnbackend.distributed.parallel import DataParallel
from nnbackend.fit_data import VALIDATION_NAMES, batches_for, check_data, check_last_batch
from nnbackend.fit_options import (
    check_checkpoint,
    check_optimizer_state,
    check_options,
    checked_callbacks,
    nothing_left,
)
from nnbackend.flat import release
from nnbackend.history import EpochLogs, History
from nnbackend.io import Checkpoint, CheckpointError, restore_checkpoint
from nnbackend.kept import batch_arrays, fitting, forget_last_batch
from nnbackend.layers.base import claim
from nnbackend.losses import L2
from nnbackend.progress import Progress
from nnbackend.registry import custom_objects


def fit(
    model, X, y, *, loss, optimizer, epochs: int = 1, batch_size: int | None = 32,
    shuffle: bool = True, validation_data=None, validation_split: float = 0.0,
    validation_batch_size: int | None = None, l2: float | None = None, metrics=None,
    callbacks=(), verbose: int = 1, log_every: int | None = None, seed: int | None = None,
    checkpoint=None, resume: bool = False, on_device="auto", distributed: bool = False,
    compile=False,
) -> History:  # fmt: skip
    """Train ``model`` ``epochs`` epochs (from 0, or on from a resumed checkpoint's up to
    ``epochs``); returns their History. ``Sequential.fit`` documents the arguments."""
    try:  # before the ranks meet: a rank refusing alone tells the others, not to strand them
        check_options(epochs=epochs, batch_size=batch_size, shuffle=shuffle, l2=l2,
                      validation_split=validation_split, verbose=verbose,
                      validation_batch_size=validation_batch_size, log_every=log_every,
                      seed=seed, resume=resume, on_device=on_device)  # fmt: skip
        log_every = log_every or max(1, -(-epochs // 20))
        callbacks, checkpoint = checked_callbacks(callbacks), home_expanded(checkpoint)
        boolean(distributed, "distributed")
        if compile is not False and distributed:
            raise ValueError("compile=... captures one process's step: not with distributed=True")
        loss, optimizer = loss_types.get(loss), optim.get(optimizer)
        X, y = as_array(X, "X"), as_array(y, "y")
        X, y, validation_data = fit_data.split_validation(
            X, y, validation_data, validation_split, model.backend.dtype_name
        )
        outputs = fit_data.outputs_per_sample(model, X)  # a conv net's: X's tells
        metrics = metric_types.for_fit(metrics, loss, outputs, y, *(validation_data or ())[1:])
        optimizer.train_for(model)
        claim(model.layers, model, build_new=True)  # one put in by model.layers[i] = ...
        optimizer.follow_layers(model)
    except Exception as exc:
        if distributed is True:
            refused_before_meeting(exc)
        raise
    parallel = None  # data parallel over the ranks of an MPI job (nnbackend.distributed)
    if distributed:
        saves = save_schedule(checkpoint, callbacks, log_every)  # when each rank saves
        settings = dict(epochs=epochs, batch_size=batch_size, shuffle=shuffle, seed=seed,
                        l2=l2, resume=resume, **saves)  # fmt: skip
        parallel = DataParallel.join(
            model, loss, optimizer, metrics, l2, (X, y, validation_data), settings
        )  # None in a world of one
    # What rests on the file and rank 0's weights, rank 0 checks; every rank raises it
    on_main = (lambda check, what: check()) if parallel is None else parallel.world.on_main
    replaced = on_main(lambda: check_checkpoint(checkpoint, model, loss, optimizer,
                                                resume=resume, epochs=epochs),
                       "check the checkpoint")  # fmt: skip
    if parallel is not None:
        if validation_data is not None:  # whole: a rank's share alone would refuse alone
            check_data(model, *validation_data, loss, VALIDATION_NAMES)
        validation_data = parallel.validation_share(validation_data)
        verbose = verbose if parallel.is_main else 0
    rng = model.rng if seed is None else Generator(seed)
    batches = batches_for(
        model, X, y, loss, batch_size, shuffle=shuffle, on_device=on_device, rng=rng
    )
    validation = None
    if validation_data is not None:  # by default a step's rows: no more memory than a step
        rows = validation_batch_size or batch_size
        if parallel is not None and rows is not None:  # each rank measures its share
            rows = -(-rows // parallel.world.size)
        validation = batches_for(
            model, *validation_data, loss, rows, shuffle=False, names=VALIDATION_NAMES
        )
    on_main(lambda: output_range.check_output_layer(model, loss, X, y), "probe the model's outputs")
    # distributed: the whole batch, over every rank's share
    check_last_batch(model, batches, tuple(X.shape[1:]))
    trainer = Trainer(
        model, loss, optimizer, l2=l2, metrics=metrics, callbacks=callbacks,
        checkpoint=checkpoint, log_every=log_every, verbose=verbose,
        parallel=parallel, compile=compile,
    )  # fmt: skip
    try:  # the step binds the flat buffer: a refusal here lets the layers go again
        begin = functools.partial(trainer.begin, epochs, has_validation=validation is not None)
        if parallel is None:  # the step and the callbacks' checks
            begin()
        else:  # a callback of one rank's own may refuse there alone
            on_every_rank(parallel.world, begin, "begin the fit")
        # Every check passed: the model changes from here on (a refused fit leaves it alone)
        saved = trainer.start_from(rng, checkpoint if resume else None)
    except BaseException:
        release(model)
        raise
    start = 0 if saved is None or saved.epoch is None else saved.epoch + 1
    if replaced is not None:  # every check passed: this fit will save over it
        warn_caller(replaced, UserWarning)
    model.loss, model.optimizer, model.metrics = loss, optimizer, metrics
    step_threads = threads_for_step if parallel is None else parallel.threads
    session = contextlib.nullcontext() if parallel is None else parallel.session()
    threads = limit_threads(step_threads(model.count_params(), batches.batch_size))
    with threads, session, fitting(model):  # another thread's pass on it: refused meanwhile
        try:
            return trainer.run(batches, validation, range(start, epochs), saved)
        finally:  # a backward after the fit makes new gradient arrays, as before it
            release(model)


def evaluate(
    model, X, y, loss=None, batch_size: int | None = None, metrics=None
) -> dict[str, float]:
    """Loss and metrics of ``model`` on (X, y), as Python floats (one host transfer).
    ``loss``/``metrics`` default to those of the model's last ``fit``."""
    loss = loss_types.get(loss) if loss is not None else model.loss
    if loss is None:
        raise ValueError(
            "evaluate needs a loss: pass loss=... (e.g. loss='cross_entropy'), "
            "or fit the model first"
        )
    if metrics is None:  # the last fit's, those the loss given takes (all, with its own)
        metrics = metric_types.taken_by(loss, model)
    X, y = as_array(X, "X"), as_array(y, "y")
    metrics = metric_types.for_fit(metrics, loss, fit_data.outputs_per_sample(model, X), y)
    # one pass: host rows go over a batch at a time, not copied (cast) whole first
    batches = batches_for(model, X, y, loss, batch_size, shuffle=False, on_device=False)
    output_range.check_output_layer(model, loss, X)
    kept = batch_arrays([*model.layers, loss])
    with limit_threads(threads_for_step(model.count_params(), batches.batch_size)):
        totals = measure(model, batches, loss, metrics)
    logs = dict(EpochLogs(0, totals, model.backend))
    forget_last_batch([*model.layers, loss], kept)  # a whole set's, held for no backward
    model._out_like = None
    return logs


def save_schedule(checkpoint, callbacks, log_every: int) -> dict:
    """The epochs between each checkpoint's saves (ranks saving apart would cross)."""
    every = [c.every or log_every for c in callbacks if isinstance(c, cb.ModelCheckpoint)]
    return {"checkpoints (epochs between saves)": [log_every] * (checkpoint is not None) + every}


class Trainer:
    """Runs epochs of one ``fit`` call, with its callbacks, progress and history."""

    def __init__(self, model, loss, optimizer, *, l2=None, metrics=(), callbacks=(),
                 checkpoint=None, log_every: int = 1, verbose: int = 1,
                 parallel=None, compile=False):  # fmt: skip
        """``parallel``: this rank's ``DataParallel`` in a distributed fit, else None.
        ``compile``: True captures the step (a CUDA graph on torch:cuda where it replays,
        else torch.compile), a torch.compile backend's name with that one, and "cuda-graph"
        as a graph or not at all (``nnbackend.backend.compiling``)."""
        self.model, self.loss, self.optimizer = model, loss, optimizer
        self.compile = compile
        self.parallel = parallel
        self.metrics = list(metrics)
        self.l2 = L2(l2) if l2 else None
        saving = [c for c in callbacks if isinstance(c, cb.ModelCheckpoint)]
        if checkpoint is not None:
            saving.append(cb.FitCheckpoint(checkpoint))
        # checkpoints last: each save then holds the other callbacks' state of its epoch
        others = [c for c in callbacks if not isinstance(c, cb.ModelCheckpoint)]
        own_nan_check = any(isinstance(c, cb.TerminateOnNaN) for c in others)
        default = [] if own_nan_check else [cb.TerminateOnNaN()]  # one's own replaces it
        self.callbacks = [*default, *others, *saving]
        self.first_saving = len(self.callbacks) - len(saving)
        self.log_every, self.verbose = log_every, verbose

    def begin(self, epochs: int, has_validation: bool) -> None:
        """The step (compiled where ``compile`` asks) and the callbacks'
        ``on_train_begin``, for a fit until epoch ``epochs``: what may refuse the fit,
        before the model is seeded or resumed."""
        model = self.model
        rises = metric_rises(self.metrics, has_validation)
        self.names = list(rises)
        settings = SimpleNamespace(
            epochs=epochs, log_every=self.log_every, optimizer=self.optimizer, loss=self.loss,
            metrics=self.names, rises=rises, callbacks=self.callbacks,
            distributed=self.parallel is not None,
        )  # fmt: skip
        self._step = None  # a distributed fit steps through self.parallel instead
        self.stopped_by = None  # the class of the callback that set model.stop_training
        if self.parallel is None:  # looked up once per fit, not once per step

            def make_step(flat: bool):
                return model.step_function(self.loss, self.optimizer, self.l2, flat=flat)

            self._step = compile_step(make_step, model, self.optimizer, self.compile,
                                      loss=self.loss, l2=self.l2)  # fmt: skip
        for callback in self.callbacks:
            callback.on_train_begin(model, settings)

    def start_from(self, rng, resume_path) -> Checkpoint | None:
        """Give the model the generator ``rng`` (fit's ``seed``) and the state of the
        checkpoint at ``resume_path``, if any (rank 0's to every rank in a distributed
        fit), the callbacks theirs before the model changes; returns what the checkpoint
        held, or None. Where the file or a callback's state is refused, the model keeps
        its weights and generator. The file may name the fit's own classes, registered
        or not: the model is built of them already."""
        model, parallel = self.model, self.parallel

        def read():
            if resume_path is None or nothing_saved_at(resume_path):  # no file, or empty
                check_optimizer_state(self.optimizer, model.backend)  # the steps go on from it
                return None
            copies = 1 + len(self.optimizer.slots) + len(self.callbacks)  # what the fit saves
            with custom_objects(own_classes(model, self.loss, self.optimizer)):
                return restore_checkpoint(
                    model, resume_path, self.optimizer, accept=accept, copies=copies
                )

        def accept(saved: Checkpoint) -> None:
            if saved.optimizer is None:  # a file without one: the steps go on from ours
                check_optimizer_state(self.optimizer, model.backend)
            self.give_back(saved)

        kept, model.rng = model.rng, rng
        try:
            if parallel is None:
                return read()
            saved = parallel.start(read)  # rank 0 reads, and gives its callbacks their states
            if saved is not None and not parallel.is_main:
                self.give_back(saved)
            return saved
        except BaseException:
            model.rng = kept
            raise

    def run(self, batches, validation, epochs: range, saved: Checkpoint | None = None) -> History:
        """Train over ``epochs`` (absolute numbers, so a resumed fit counts on), after
        ``begin``. ``saved``: the checkpoint resumed from (``start_from`` gave the
        callbacks their states); a run that a callback had stopped trains no further."""
        model = self.model
        hint = functools.partial(metric_types.key_hint, loss=metric_types.LossFacts(self.loss),
                                 n_outputs=model.n_outputs)  # fmt: skip
        history = History(model.backend, key_hint=hint)
        model.stop_training, stopped = False, None  # a callback ends training after an epoch
        if saved is not None and saved.stopped:
            epochs = epochs[:0]
        with Progress(len(epochs) * len(batches), self.verbose, self.names) as progress:
            for epoch in epochs:
                progress.epoch(epoch)
                metrics = self.train_epoch(batches, progress)
                if validation is not None:
                    measured = measure(model, validation, self.loss, self.metrics)
                    if self.parallel is not None:  # every rank measured its block
                        measured = self.parallel.validation_totals(measured, epoch)
                    metrics.update({f"val_{name}": v for name, v in measured.items()})
                logs = EpochLogs(epoch, metrics, model.backend)
                history.append(logs)
                if epoch % self.log_every == 0 or epoch == epochs.stop - 1:
                    history.flush()
                    progress.log(epoch, logs)
                self._epoch_end(epoch, logs)
                if model.stop_training:
                    by = self.stopped_by or self._stopped_elsewhere()
                    early = epoch < epochs.stop - 1  # at the last epoch it ended nothing early
                    stopped = f"{by} at epoch {epoch}" if early else None
                    if early and epoch % self.log_every and self.verbose:  # shown last
                        history.flush()
                        progress.log(epoch, logs)
                    break
        for callback in self.callbacks:
            callback.on_train_end(model, history)
        history.stop_reason = history.stop_reason or stopped  # the callbacks' own say more
        if saved is not None and not epochs:  # said, not silent: the History is empty
            history.stop_reason = history.stop_reason or nothing_left(saved, epochs.stop)
        warned = any(getattr(c, "message", None) == history.stop_reason for c in self.callbacks)
        if self.verbose and (stopped or not epochs) and history.stop_reason:  # why lines end
            print(stopped if warned and stopped else history.stop_reason)  # a warning says more
        return history

    def _stopped_elsewhere(self) -> str:  # another rank's: "on rank 1, ... stopped the fit"
        here = self.parallel is None or self.set_here
        return "model.stop_training was set" if here else self.stopped_on

    def _epoch_end(self, epoch: int, logs) -> None:
        """The callbacks' ``on_epoch_end``. In a distributed fit, whether to stop is
        settled over the ranks before the checkpoints' turn: a stop decided on one rank
        alone then has rank 0 save the epoch that ends training, as one process would."""
        model, saving = self.model, self.first_saving
        for callback in self.callbacks[:saving]:
            before = model.stop_training  # set elsewhere (a thread, a signal): not its
            callback.on_epoch_end(epoch, logs, model)
            if model.stop_training and not before and self.stopped_by is None:
                self.stopped_by = f"{type(callback).__name__} stopped the fit"
        self.set_here = model.stop_training  # by this rank, before the ranks settle it
        if self.parallel is not None:
            said = self.stopped_by or "model.stop_training was set"
            model.stop_training, self.stopped_on = self.parallel.stop_together(self.set_here, said)
        for callback in self.callbacks[saving:]:
            callback.on_epoch_end(epoch, logs, model)

    def give_back(self, saved: Checkpoint) -> None:
        """Hand each callback its state from the checkpoint ``saved``."""
        try:
            cb.set_callback_states(self.callbacks, saved.callbacks)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(
                f"{saved.path}: a callback's saved state does not fit: {exc}"
            ) from exc

    def train_epoch(self, batches, progress) -> dict:
        """One pass over the batches; the epoch's metrics, still on the device."""
        totals = Totals(self.loss, self.metrics)
        step = self._step
        for xb, yb in batches:
            if self.parallel is None:
                value, out = step(xb, yb)
                totals.add(value, out, yb)
            else:  # this rank's share of the batch; the totals of the whole batch
                totals.add_parts(self.parallel.train_step(xb, yb))
            progress.update()
        return totals.metrics(batches.n)


def measure(model, batches, loss, metrics=()) -> dict:
    """Loss and ``metrics`` of ``model`` over ``batches``, without training, on device."""
    totals = Totals(loss, metrics)
    for xb, yb in batches:
        out = model.forward(xb, training=False)
        totals.add(loss.forward(out, yb), out, yb)
    return totals.metrics(batches.n)


class Totals:
    """The batches' losses and metrics, kept as device scalars: adding them up is left
    to the host, after the one transfer, so it costs no kernels per step."""

    def __init__(self, loss, metrics=()):
        self.loss, self.metric_list = loss, list(metrics)
        self.parts: dict[str, list] = {"loss": [], **{m.name: [] for m in self.metric_list}}

    def add(self, value, out, target) -> None:
        self.parts["loss"].append((value, self.loss.per_batch_weight(out.shape[0])))
        for metric in self.metric_list:
            part = metric.batch(out, target, self.loss)
            if not self.parts[metric.name]:  # an epoch's first batch: say whose mistake
                metric_types.check_batch_value(metric, part, out)
            self.parts[metric.name].append(part)

    def add_parts(self, parts) -> None:
        """One batch's (value, weight) of the loss, then of each metric, in order."""
        for name, part in zip(self.parts, parts, strict=True):
            self.parts[name].append(part)

    def metrics(self, n: int) -> dict:
        """name -> (((device scalar, weight), ...), n): EpochLogs reads sum(w * value) / n.
        Tuples, not the lists: a tuple of arrays and numbers is one the garbage collector
        stops tracking, and an epoch's totals wait for a flush (a long fit's thousands
        of them, kept as lists, set off full collections: 80 ms each with torch loaded)."""
        return {name: (tuple(parts), n) for name, parts in self.parts.items()}


def metric_rises(metrics, has_validation: bool) -> dict[str, bool | None]:
    """Each name the History will hold -> whether its metric rises as the model
    improves (``Metric.greater_is_better``; the loss falls)."""
    rises = {"loss": False, **{m.name: m.greater_is_better for m in metrics}}
    return {**rises, **{f"val_{n}": r for n, r in rises.items()}} if has_validation else rises
