"""Training on several processes at once: data parallel over MPI (CPUs) and NCCL (GPUs).

    nb.distributed.init()                               # a no-op in a plain process
    model.fit(X, y, loss="cross_entropy", optimizer="adam", batch_size=512,
              distributed=True)                         # mpiexec -n 4 python train.py

``fit(..., distributed=True)`` trains exactly as one process would on the same global
batches (``batch_size`` is the global batch; each rank computes on its share of the
rows), with one allreduce per step; only rank 0 prints, shows progress and writes
checkpoints. In a plain ``python train.py`` it is the ordinary fit. ``parallel.py``
says how, ``world.py`` how failures end every rank, ``collectives.py`` which engine
sums which arrays.

A loop of one's own:

    nb.distributed.init()
    nb.distributed.broadcast(model, opt)                # rank 0's weights on every rank
    for xb, yb in nb.data.Batches(X, y, model.backend, batch_size=512, rng=model.rng):
        mine = nb.distributed.my_share(xb.shape[0])     # this rank's rows of the batch
        out = model.forward(xb[mine, ...])
        loss.forward(out, yb[mine, ...])
        model.backward(loss.backward())
        nb.distributed.allreduce_grads(model, rows=out.shape[0])  # the whole batch's gradient
        opt.step(model.params, model.grads)

``rows=`` weights each rank by its rows: the shares of a batch that does not divide by
the number of ranks (a short last batch) are uneven, and their plain mean is not the
batch's gradient.

Importing nnbackend never imports mpi4py: ``init`` does, and only under a launcher.
"""

from __future__ import annotations

from nnbackend.distributed.alike import check_alike, optimizer_text
from nnbackend.distributed.collectives import allreduce, engine_for, pack, unpack
from nnbackend.distributed.parallel import DataParallel, broadcast_state, share
from nnbackend.distributed.world import (
    DistributedError,
    current,
    init,
    is_main,
    joined_world,
    local_rank,
    rank,
    world_size,
)


def my_share(rows: int) -> slice:
    """This rank's block of a global batch of ``rows`` rows (``xb[my_share(n), ...]``):
    ranks take blocks in rank order, the first ``rows % world_size()`` one row more."""
    return share(rows, rank(), world_size())


def broadcast(model, optimizer=None) -> None:
    """Give every rank rank 0's weights, running state, shuffling generator and (when
    given) optimizer state. A no-op in a world of one. Ranks that built other models,
    or hold other optimizers (or one rank none), are told which, on every rank (MPI
    would end them with a size mismatch of its own words)."""
    world = joined_world()  # under a launcher, as rank() and my_share() do
    if world.size > 1:
        mine = {"backend": model.backend.name.split(":")[0], "model": model.config()}
        mine["optimizer"] = None if optimizer is None else optimizer_text(optimizer)
        check_alike(world, {**mine, "float dtype": model.backend.dtype_name}, "broadcast")
    broadcast_state(world, model, optimizer)


def allreduce_grads(model, rows: int | None = None) -> None:
    """Make ``model.grads`` the gradient of the whole global batch on every rank: the
    ranks' gradients summed in one allreduce, each weighted by its share of the rows.

    ``rows``: the number of rows this rank's gradients were computed on
    (``out.shape[0]``); their total rides in the same message. ``rows=None`` takes the
    plain mean over ranks, right only when every rank had as many rows: not for the
    shares of ``my_share`` when the batch does not divide by the number of ranks. For
    a loss averaged over the rows (the default ``reduction="mean"``). A no-op in a
    world of one. Call it between ``backward`` and the optimizer's step.
    """
    if model.params and not model.grads:  # said in a plain process too, not only under mpiexec
        raise ValueError(
            "allreduce_grads: the model has no gradients yet: call it after "
            "model.backward(...), before the optimizer's step"
        )
    world = joined_world()
    if world.size == 1 or not model.grads:  # one rank, or a model without weights
        return
    names, grads = zip(*model.grads.items(), strict=True)
    engine = engine_for(world, model.backend)
    if rows is None:
        summed = allreduce(engine, grads)
        new = [g / world.size for g in summed]
    else:
        backend = model.backend
        count = backend.xp.asarray([float(rows)], dtype=backend.dtype, device=backend.device)
        *summed, total = allreduce(engine, [*(g * float(rows) for g in grads), count])
        new = [g / total for g in summed]
    for name, g in zip(names, new, strict=True):
        model.grads[name] = g


__all__ = [
    "DataParallel",
    "DistributedError",
    "allreduce_grads",
    "broadcast",
    "current",
    "init",
    "is_main",
    "local_rank",
    "my_share",
    "pack",
    "rank",
    "unpack",
    "world_size",
]
