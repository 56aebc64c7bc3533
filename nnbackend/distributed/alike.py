"""What the ranks of a data-parallel fit agree on before the first step: that they run
the same fit (``describe``, compared by ``check_alike``), and that none was refused on
its own (``refused_before_meeting``, ``on_every_rank``), so that no rank waits for one
that has left."""

from __future__ import annotations

import contextlib
import os

from nnbackend.backend.kernels import enabled as fused_enabled
from nnbackend.distributed.fingerprints import checksums
from nnbackend.distributed.world import DistributedError, World, joined_world
from nnbackend.schedules import Schedule

FIT_LABEL = "what each rank trains"  # the allgather where the ranks compare their fits
REFUSED = "refused before the ranks met"  # a rank's only key there, where its fit was
DATA, DTYPES = "data (sums of X and y: plain, by row and by column number)", "dtypes of X and y"
#: characters of a long value a disagreement shows, from this many before the first
#: character where the ranks' values differ
SHOWN, SHOWN_BEFORE = 200, 60


def describe(model, loss, optimizer, metrics, data, settings: dict) -> dict:
    """What must be alike on every rank, under the words an error would use."""
    X, y, validation = data
    return {
        "backend": model.backend.name.split(":")[0],
        "float dtype": model.backend.dtype_name,
        "fused kernels (NNBACKEND_FUSED)": fused_enabled(),  # the flat buffer's or not
        "model": model.config(),
        "loss": loss.config(),
        "optimizer": optimizer_text(optimizer),
        "metrics": [m.config() for m in metrics],
        "samples in X": int(X.shape[0]) if X.ndim else None,
        "shape of a sample": tuple(X.shape[1:]),
        "shape of y": tuple(y.shape),
        DATA: checksums(X, y),
        DTYPES: (str(X.dtype), str(y.dtype)),  # named where the sums differ, not compared
        "validation data (shape, sums)": None
        if validation is None
        else (tuple(validation[0].shape), checksums(*validation)),
        **settings,
    }


def refused_before_meeting(error: Exception) -> None:
    """Where this rank's ``fit(distributed=True)`` was refused before the ranks compare
    their fits (its own data's NaN, say), tell the others there, so that each raises
    rather than wait for it until the watchdog ends the job."""
    world = joined_world()
    if world.size > 1:
        with contextlib.suppress(Exception):  # this rank's own error is the one to raise
            world.allgather({REFUSED: f"{type(error).__name__}: {error}"}, FIT_LABEL)


def on_every_rank(world: World, fn, what: str):
    """``fn()`` run on every rank: its result. Where it raises on some ranks (a
    callback of one rank's own refusing the fit), each of those raises its exception
    and every other rank a DistributedError naming them, marked ``every_rank``."""
    failure = result = None
    try:
        result = fn()
    except Exception as exc:
        failure = exc
    said = None if failure is None else f"{type(failure).__name__}: {failure}"
    failed = [f"on rank {r}, {s}" for r, s in enumerate(world.allgather(said, what)) if s]
    if failure is not None:  # this rank's own, not marked every_rank: uncaught, its
        raise failure  # traceback shows and the job ends, as before the ranks meet
    if failed:
        raise DistributedError(f"could not {what}: {'; '.join(failed)}", every_rank=True)
    return result


def check_alike(world: World, mine: dict, task: str = "fit") -> None:
    """Raise, on every rank alike, a DistributedError naming what the ranks disagree
    on and which rank has what (for a ``task`` other than fit: "broadcast")."""
    label = FIT_LABEL if task == "fit" else f"the model each rank {task}s"
    everyone = world.allgather(mine, label)  # another label: ranks at other steps
    refused = [f"on rank {r}, {d[REFUSED]}" for r, d in enumerate(everyone) if REFUSED in d]
    if refused:
        raise DistributedError(
            f"the fit was refused {'; '.join(refused)}: every rank stops", every_rank=True
        )
    compared = [key for key in mine if key != DTYPES]  # equal values cast alike
    problems = [d for d in (disagreement(k, [r[k] for r in everyone]) for k in compared) if d]
    if any(p.startswith(DATA) for p in problems):  # float32 data is float64's rounded
        problems += filter(None, [disagreement(DTYPES, [r.get(DTYPES) for r in everyone])])
    if problems:
        advice = (
            "build the same model and pass fit the same data and options: each takes its "
            "share of every batch"
            if task == "fit"
            else f"build the same model and give it the same optimizer (or none) to {task}"
        )
        raise DistributedError(
            f"the ranks do not run the same {task}: {'; '.join(problems)}. Every rank must "
            f"{advice}.",
            every_rank=True,
        )


def disagreement(what: str, values: list) -> str | None:
    """Who has what, as in "batch_size: rank 0 has 32, ranks 1, 2 have 64"; None when
    every rank has the same. Values are told apart by their whole text; a long one is
    shown around the first place where the ranks' texts differ."""
    groups: dict[str, list[int]] = {}
    for rank, value in enumerate(values):
        groups.setdefault(repr(value), []).append(rank)
    if len(groups) == 1:
        return None
    start = max(0, len(os.path.commonprefix(list(groups))) - SHOWN_BEFORE)
    held = [
        f"rank {ranks[0]} has {_excerpt(text, start)}" if len(ranks) == 1
        else f"ranks {', '.join(map(str, ranks))} have {_excerpt(text, start)}"
        for text, ranks in groups.items()
    ]  # fmt: skip
    return f"{what}: {', '.join(held)}"


def optimizer_text(optimizer) -> dict | str:
    """``optimizer.config()``; where the learning rate is a plain function, which has
    none, its repr with the function named (an address differs from rank to rank)."""
    lr = optimizer.lr
    if callable(lr) and not isinstance(lr, Schedule):
        named = f"{getattr(lr, '__module__', '?')}.{getattr(lr, '__qualname__', type(lr).__name__)}"
        return repr(optimizer).replace(repr(lr), named)
    return optimizer.config()


def _excerpt(text: str, start: int) -> str:
    """``text`` whole when short, else SHOWN characters of it from ``start``."""
    if len(text) <= SHOWN:
        return text
    head = "..." if start else ""
    tail = "..." if start + SHOWN < len(text) else ""
    return head + text[start : start + SHOWN] + tail
