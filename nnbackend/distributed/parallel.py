"""Data-parallel training: what ``fit(..., distributed=True)`` does on each rank.

Every rank holds all the data and the same model. At the start the ranks check that
they run the same fit, then take rank 0's weights, optimizer state and shuffling
generator (from its checkpoint, when resuming). Each step, every rank draws the same
global batch, computes on its share of the rows (a block; a share may be empty when
the batch has fewer rows than there are ranks), and one allreduce sums the ranks'
gradients, each scaled by its share, with the batch's loss and metric sums in the same
message (where the backend has views, that message is the model's own gradient buffer,
``nnbackend.flat``, summed in place, with room for the sums after it). Every rank then
applies the same update and records the same totals: the global batch's loss and
metrics, as one process would. Validation data is split into blocks and its totals
summed once per epoch.
"""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path

from nnbackend.backend import namespace_of
from nnbackend.backend.core import detached
from nnbackend.backend.threads import threads_for_step
from nnbackend.distributed.alike import check_alike, describe, disagreement
from nnbackend.distributed.collectives import allreduce, broadcast, engine_for
from nnbackend.distributed.fingerprints import digest, generator_digest
from nnbackend.distributed.whole_batch import whole_batch
from nnbackend.distributed.world import DistributedError, World, joined_world
from nnbackend.flat import FlatModel, thaw
from nnbackend.history import check_parts
from nnbackend.io import Checkpoint, for_other_ranks, take_settings
from nnbackend.losses import L2
from nnbackend.metrics import check_batch_value
from nnbackend.steps import marked_backward

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def share(rows: int, rank: int, size: int) -> slice:
    """Rank ``rank``'s block of ``rows`` rows split over ``size`` ranks: the first
    ``rows % size`` ranks take one row more than the others; a block may be empty."""
    small, extra = divmod(rows, size)
    start = rank * small + min(rank, extra)
    return slice(start, start + small + (rank < extra))


class DataParallel:
    """One rank's part in a data-parallel ``fit``: the start, each step, each epoch."""

    @classmethod
    def join(cls, model, loss, optimizer, metrics, l2, data, settings: dict):
        """The DataParallel of this rank, once every rank has checked that all run the
        same fit; None in a world of one (fit then runs as it always does).
        ``data``: (X, y, validation data or None); ``settings``: fit's other options."""
        world = joined_world()  # init() would read $NNBACKEND_TIMEOUT over init's own
        if world.size == 1:
            return None
        check_alike(world, describe(model, loss, optimizer, metrics, data, settings))
        parallel = cls(world, model, loss, optimizer, metrics, l2)
        validation = data[2]
        parallel.validation_rows = 0 if validation is None else int(validation[0].shape[0])
        return parallel

    def __init__(self, world: World, model, loss, optimizer, metrics, l2):
        self.world, self.model, self.loss, self.optimizer = world, model, loss, optimizer
        self.metrics, self.l2 = list(metrics), L2(l2) if l2 else None
        self.engine = engine_for(world, model.backend)
        self.validation_rows = 0

    @property
    def splits_validation(self) -> bool:
        """Validation data is split into blocks when each rank gets at least a row."""
        return self.validation_rows >= self.world.size

    @property
    def is_main(self) -> bool:
        return self.world.rank == 0

    # --- the start --------------------------------------------------------------

    def start(self, read):
        """Rank 0 runs ``read`` (fit's resume: the checkpoint restored into model and
        optimizer, or None); then every rank takes rank 0's weights, running state,
        optimizer state and shuffling generator, and gets what the checkpoint said
        (epoch, callbacks' states). Rank 0 alone reads the file: it alone writes it, so
        only it is sure to see the last one (node-local disks, network file systems
        that cache), and the others then hold its state bit for bit."""
        saved = self.world.on_main(read, "read the checkpoint to resume from")
        broadcast_state(self.world, self.model, self.optimizer)
        told = self.world.bcast(for_other_ranks(saved, self.optimizer), "what the checkpoint said")
        if self.is_main or told is None:
            return saved
        if told["settings"] is not None:  # the saved rate, which rank 0 took up
            take_settings(self.optimizer, told["settings"])
        backend = self.model.backend
        callbacks = {
            key: {**state, "arrays": {n: backend.asarray(a) for n, a in state["arrays"].items()}}
            for key, state in told["callbacks"].items()
        }
        return Checkpoint(None, None, told["epoch"], told["stopped"], callbacks, Path(told["path"]))

    def validation_share(self, validation):
        """This rank's block of the validation data (all of it when there are fewer
        rows than ranks: every rank then measures the whole)."""
        if not self.splits_validation:
            return validation
        X, y = validation
        block = share(X.shape[0], self.world.rank, self.world.size)
        return X[block, ...], y[block, ...]

    def threads(self, n_weights: int, batch_size: int) -> int | None:
        """BLAS and torch threads for a step of this rank's share: as one process would
        choose for that many rows, but with the machine's cores shared among its ranks
        (unless the thread counts are set: ``--threads``, ``OMP_NUM_THREADS``, ...)."""
        rows = -(-batch_size // self.world.size)
        chosen = threads_for_step(n_weights, rows)
        if chosen is not None or any(os.environ.get(v) for v in THREAD_VARIABLES):
            return chosen
        return max(1, _cores(self.world.local_size))

    # --- each step --------------------------------------------------------------

    def train_step(self, xb, yb) -> list:
        """One step of the global batch (xb, yb), computed on this rank's share of its
        rows. Returns the global batch's totals as ``Totals.add_parts`` takes them:
        (loss, its weight), then (each metric's sum, 1); the same on every rank."""
        flat = self.flat  # bound before backward, which then writes into its buffer
        mine = share(xb.shape[0], self.world.rank, self.world.size)
        with whole_batch(self.model, mine, xb.shape[0], self.engine):
            out = self.model.forward(xb[mine, ...], training=True)
            local = self._backward(out, yb[mine, ...], xb.shape[0])
        weight = self.loss.per_batch_weight(xb.shape[0])
        if flat is not None and flat.gather():
            sums = self._sum_in_place(flat, local)
            value = flat.decay(self.l2, sums[0] / weight)
            self.optimizer.step_flat(flat.params, flat.grads)
        else:
            sums, value = self._sum_packed(local, weight)
        return [(value, weight), *((sums[i], 1) for i in range(1, 1 + len(self.metrics)))]

    @functools.cached_property
    def model_backward(self):
        """The model's backward as fit's steps call it (``steps.marked_backward``)."""
        return marked_backward(self.model)

    @functools.cached_property
    def flat(self):
        """The weights and gradients in one buffer each (``nnbackend.flat``), with room
        after the gradients for a batch's sums; None where there is none (strict, a
        per-weight optimizer). Bound at the first step, once ``start`` gave rank 0's weights."""
        thaw(self.model, self.optimizer)  # what torch's inference mode made
        return FlatModel.bind(self.model, self.optimizer, spare=1 + len(self.metrics))

    def _sum_in_place(self, flat, local):
        """The ranks' gradients summed where they lie, in the model's gradient buffer,
        with this rank's sums ``local`` in the room after them: one message. Returns
        the summed sums (a copy: the room is the next step's)."""
        message = flat.grads.whole
        flat.grads.spare[...] = local
        summed = self.engine.allreduce(message)
        if summed is not message:  # an engine through the host returns a new array
            message[...] = summed
        return namespace_of(local).asarray(flat.grads.spare, copy=True)

    def _sum_packed(self, local, weight):
        """The step where the gradients lie apart: packed into one message per dtype
        with the sums, summed, updated by name. Returns (the sums, the loss)."""
        model = self.model
        names, grads = list(model.grads), list(model.grads.values())  # none: no weights
        *grads, sums = allreduce(self.engine, [*grads, local])
        grads = dict(zip(names, grads, strict=True))
        value = sums[0] / weight
        if self.l2 is not None:  # as in Sequential.train_step: L2 joins the whole gradient
            decayed = {name: model.params[name] for name in model.decayed_names()}
            value = value + self.l2.penalty(decayed.values())
            moving = {name: w for name, w in decayed.items() if name in grads}  # not frozen
            self.l2.add_to_gradients(moving, grads)
        self.optimizer.step(model.params, grads)
        return sums, value

    def _backward(self, out, y, total: int):
        """Backward through this rank's share, its gradients scaled by its part of the
        global batch's loss; returns the share's [loss x its weight, metric sums]."""
        loss, xp, rows = self.loss, self.model.backend.xp, out.shape[0]
        if rows:
            value = loss.forward(out, y) * loss.per_batch_weight(rows)
            scale = loss.per_batch_weight(rows) / loss.per_batch_weight(total)
            self.model_backward(loss.backward() * scale, False)
        else:  # a batch of fewer rows than ranks: this share is empty and adds zeros
            zero = xp.zeros((), dtype=out.dtype, device=out.device)
            self.model_backward(xp.zeros_like(out), False)
            return xp.stack([zero] * (1 + len(self.metrics)))  # no metric asked of no rows
        parts = [metric.batch(out, y, loss) for metric in self.metrics]
        for metric, part in zip(self.metrics, parts, strict=True):
            check_batch_value(metric, part, out)  # a few attribute reads: every step
        # a tracked value (a metric's torch module) put the gradient buffer under autograd
        return xp.stack([value, *(xp.astype(detached(v), out.dtype) * float(w) for v, w in parts)])

    # --- each epoch -------------------------------------------------------------

    def validation_totals(self, measured: dict, epoch: int) -> dict:
        """The validation totals of every rank's block, summed in float64 where the device
        has it (``measure``'s form: name -> ([(value, weight), ...], rows))."""
        if not self.splits_validation:
            return measured
        xp, backend = self.model.backend.xp, self.model.backend
        for name, (parts, _) in measured.items():  # a metric's first batch alone was checked
            check_parts(f"val_{name}", parts, backend, f"of epoch {epoch}")
        dtype = xp.float64 if backend.supports("float64") else backend.dtype
        local = [
            sum(xp.astype(value, dtype) * float(weight) for value, weight in parts)
            for parts, _ in measured.values()
        ]
        (sums,) = allreduce(self.engine, [xp.stack(local)])
        return {name: ([(sums[i], 1)], self.validation_rows) for i, name in enumerate(measured)}

    def stop_together(self, flag: bool, reason: str) -> tuple[bool, str | None]:
        """Whether ``flag`` is true on some rank, and why, as the first such rank says it
        ("on rank 1, ..."): callbacks that decide by the clock (or anything else of one
        rank's own) still stop every rank together, and rank 0, which prints, says why."""
        said = self.world.allgather(reason if flag else None, "whether to stop")
        stopping = [(rank, why) for rank, why in enumerate(said) if why is not None]
        if not stopping:
            return False, None
        rank, why = stopping[0]
        return True, f"on rank {rank}, {why}"

    @contextlib.contextmanager
    def session(self):
        """Around the epochs. A rank that leaves it by ``sys.exit``, or by an exception
        of its own that it catches, aborts the job as it exits (the others would wait
        for it); an uncaught one aborts it at once; one every rank raised strands none.
        At the end the ranks compare their weights (a callback on some ranks alone may
        have changed them), which waits for all: fit returns after rank 0's last save."""
        self.world.busy, self.world.left_by = True, ""
        try:
            yield
        except Exception as exc:
            self.world.busy = not getattr(exc, "every_rank", False)
            self.world.left_by = f"{type(exc).__name__}: {exc}"
            raise
        mine = (digest(self.model), generator_digest(self.model.rng))
        both = self.world.allgather(mine, "a digest of the weights")
        self.world.busy = False
        digests, generators = ([d[i] for d in both] for i in (0, 1))
        if len(set(digests)) > 1:
            raise DistributedError(
                "the ranks end the fit with different weights: "
                + disagreement("a digest of the weights and running state", digests)
                + ". A callback that changes the model or the optimizer (EarlyStopping's "
                "best weights put back, a learning rate) must run on every rank.",
                every_rank=True,
            )
        if len(set(generators)) > 1:
            raise DistributedError(
                "the ranks end the fit with their random generators apart, so they drew "
                "other numbers than one process would: a layer of one's own drew as many "
                "numbers as its share has rows otherwise than by random_bits, normal or "
                "uniform with those rows first (rng.permutation(n)), or drew numbers for the "
                "whole batch through those with a first axis that a share's rows matched "
                "(draw those from rng.host()), or a callback drew from model.rng on some "
                "ranks only: " + disagreement("a digest of the generator's state", generators),
                every_rank=True,
            )


# --- the pieces, for a loop of one's own -----------------------------------------


def broadcast_state(world: World, model, optimizer=None) -> None:
    """Rank 0's weights, running state, optimizer state (when given) and shuffling
    generator, on every rank, in one broadcast per dtype."""
    if world.size == 1:
        return
    slots = {} if optimizer is None else optimizer.state
    told = world.bcast(
        {
            "slots": {slot: list(arrays) for slot, arrays in slots.items()},
            "iterations": 0 if optimizer is None else optimizer.iterations,
            "rng": model.rng.state,
        },
        "rank 0's optimizer and generator state",
    )
    params, state = dict(model.params), dict(model.state)
    xp = model.backend.xp
    moments = [
        (slot, name, slots[slot][name] if world.rank == 0 else xp.zeros_like(params[name]))
        for slot, names in told["slots"].items()
        for name in names
    ]
    arrays = broadcast(engine_for(world, model.backend), [
        *params.values(), *state.values(), *(a for _, _, a in moments)
    ])  # fmt: skip
    if world.rank == 0:
        return
    received = iter(arrays)
    model.set_params({name: next(received) for name in params})
    for name in state:
        model.state[name] = next(received)
    model.rng.state = told["rng"]
    if optimizer is not None:
        by_slot = {slot: {} for slot in told["slots"]}
        for slot, name, _ in moments:
            by_slot[slot][name] = next(received)
        optimizer.load_state_dict({"iterations": told["iterations"], "slots": by_slot})


def _cores(ranks_here: int) -> int:
    """This rank's fair part of the cores: those the launcher bound it to, else the
    machine's shared among its ranks."""
    cpus = os.cpu_count() or 1
    try:
        bound = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        bound = cpus
    return bound if bound < cpus else cpus // ranks_here
