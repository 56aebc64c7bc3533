"""The MPI job this process is one rank of: who it is, how many there are, and how a
failure on one rank ends them all instead of leaving the others waiting.

    nb.distributed.init()        # under mpiexec, srun or mpirun: join the job
    nb.distributed.rank(), nb.distributed.world_size(), nb.distributed.is_main()

In a plain ``python script.py`` there is nothing to join: ``init`` makes a world of one
without importing mpi4py, so every script runs both ways. mpi4py is imported only when
a launcher's variables (``PMI_SIZE``, ``OMPI_COMM_WORLD_SIZE``, ...) say this process is
one of several.

Failures, once ``init`` has joined a job of several ranks:

- an uncaught exception on one rank prints its traceback and calls ``MPI_Abort``,
  which ends every rank at once (errors that every rank raises alike, such as ranks
  that disagree, are printed once and end each rank normally, with status 1);
- a rank that leaves in the middle of a distributed ``fit`` (``sys.exit`` in a
  callback) aborts the job as it exits;
- a watchdog thread ends the job when this rank has waited longer than ``timeout``
  seconds for the others in one collective: one of them has hung, or died unseen.
A rank launched as one of several that fails before ``init`` joins the job then, to
end the others (they wait in MPI's start for every rank). A process killed outright is
the launcher's to see: mpiexec ends the others.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import numbers
import os
import pickle
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from nnbackend.backend import cuda
from nnbackend.backend.environment import switch

#: variables by which launchers tell a process how many ranks its job has
LAUNCH_SIZE_VARIABLES = (
    "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "SLURM_STEP_NUM_TASKS",
)  # fmt: skip
#: set to 1 to join MPI under a launcher not listed above
FORCE_VARIABLE = "NNBACKEND_MPI"
TIMEOUT_VARIABLE = "NNBACKEND_TIMEOUT"
#: seconds one rank may wait for the others in one collective before the job is ended
DEFAULT_TIMEOUT = 300.0
#: how long a rank that failed before joining waits to join, to end the others
JOIN_SECONDS = 10
#: how CuPy arrays are summed: NCCL; CUDA-aware MPI; or MPI on a host copy
GPU_COLLECTIVES = ("nccl", "mpi", "host")


class DistributedError(RuntimeError):
    """A problem of the job as a whole. ``every_rank``: every rank raises it alike (so
    none is left waiting, and only rank 0 prints it when it ends the program)."""

    def __init__(self, message: str, every_rank: bool = False):
        super().__init__(message)
        self.every_rank = every_rank


@dataclass
class World:
    """This process's place in the job. ``comm`` is an mpi4py communicator of its own
    (a duplicate of COMM_WORLD), None in a world of one."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1
    comm: Any = None
    timeout: float = DEFAULT_TIMEOUT
    gpu_collectives: str = "nccl"
    #: a distributed fit is under way: a rank leaving now would strand the others
    busy: bool = False
    left_by: str = ""  # the error this rank left its last distributed fit by, if any
    watchdog: Watchdog | None = None
    engines: dict = field(default_factory=dict)  # backend name -> collectives engine

    def waiting(self, what: str):
        """A block in which this rank waits for the others (the watchdog times it)."""
        return self.watchdog.waiting(what) if self.watchdog else contextlib.nullcontext()

    def bcast(self, obj, what: str = "rank 0's settings"):
        """``obj`` of rank 0 (any picklable value), on every rank."""
        if self.size == 1:
            return obj
        with self.waiting(f"a broadcast of {what}"):
            return self.comm.bcast(obj, root=0)

    def allgather(self, obj, what: str = "the ranks' settings") -> list:
        """[``obj`` of rank 0, of rank 1, ...] (picklable values), on every rank. Ranks
        in allgathers of different things (one fits again after leaving a fit by an
        error of its own, while the others are still in it) end the job, saying so."""
        if self.size == 1:
            return [obj]
        with self.waiting(f"an allgather of {what}"):
            everyone = self.comm.allgather((what, self.left_by, obj))
        if len({at for at, _, _ in everyone}) > 1:
            self.abort(_crossed(everyone))
        return [value for _, _, value in everyone]

    def barrier(self) -> None:
        if self.size > 1:
            with self.waiting("a barrier"):
                self.comm.Barrier()

    def on_main(self, fn, what: str):
        """``fn()`` run on rank 0 alone: its result there, None elsewhere. When it
        raises, every rank raises that exception (a DistributedError naming it where
        it cannot be pickled), marked ``every_rank``: none waits for what will not come."""
        failure = result = None
        if self.rank == 0:
            try:
                result = fn()
            except Exception as exc:
                failure = exc
        told = self.bcast(_portable_exception(failure, f"rank 0 could not {what}"), what)
        failure = failure if self.rank == 0 else told
        if failure is not None:
            with contextlib.suppress(AttributeError):  # an exception class with __slots__
                failure.every_rank = True
            raise failure
        return result

    def abort(self, message: str) -> None:
        """Print ``message`` and end every rank of the job (MPI_Abort)."""
        sys.stderr.write(f"nnbackend.distributed: {message}\n")
        sys.stderr.flush()
        self.comm.Abort(1)


def _crossed(everyone: list) -> str:
    """Where each rank was, from allgathers of (what, left_by, value) that did not match."""
    where = "; ".join(
        f"rank {rank} in an allgather of {what}"
        + (f" (it left its last distributed fit by {left})" if left else "")
        for rank, (what, left, _) in enumerate(everyone)
    )
    why = (
        "A rank that leaves a distributed fit by an error of its own must not fit again "
        "while the others are still in it"
        if any(left for _, left, _ in everyone)
        else "Every rank calls fit, broadcast and the other collective steps alike, in order"
    )
    ending = f"ending all {len(everyone)} ranks"
    return f"the ranks are at different points of the job: {where}. {why}: {ending}."


class Watchdog:
    """A thread that ends the job when this rank has waited longer than ``timeout``
    seconds in one collective. Host-side waits are timed with ``waiting``; work left
    on a GPU stream (an NCCL sum) with ``pending``, by an event it polls."""

    def __init__(self, world: World):
        self.world = world
        self._watched = None  # (since, what, done() or None), replaced whole: no lock needed
        threading.Thread(target=self._watch, name="nnbackend-watchdog", daemon=True).start()

    @contextlib.contextmanager
    def waiting(self, what: str):
        self._watched = (time.monotonic(), what, None)
        try:
            yield
        finally:
            self._watched = None

    def pending(self, what: str, done) -> None:
        """GPU work was queued that ends when ``done()`` is true."""
        self._watched = (time.monotonic(), what, done)

    def _watch(self) -> None:
        while True:
            time.sleep(min(1.0, self.world.timeout / 10))
            watched = self._watched
            if watched is None:
                continue
            since, what, done = watched
            waited = time.monotonic() - since
            if waited > self.world.timeout and not (done is not None and done()):
                self.world.abort(
                    f"rank {self.world.rank} of {self.world.size} waited {waited:.0f} s in "
                    f"{what}: another rank has stopped or hung. Ending all ranks "
                    f"(the limit is nb.distributed.init(timeout=...) or ${TIMEOUT_VARIABLE})."
                )


_world = World()
_joined = False


def init(*, timeout: float | None = None, gpu_collectives: str | None = None) -> World:
    """Join the MPI job this process was launched in; in a plain process, a world of
    one (a no-op: mpi4py is not imported). Safe to call again: it returns the world.

    ``timeout``: seconds a rank may wait for the others in one collective before the job
    is ended (default: ``$NNBACKEND_TIMEOUT`` as each call finds it, else the one set
    before, at first 300). ``gpu_collectives``: how CuPy arrays are summed: "nccl" (the
    default), "mpi" (CUDA-aware MPI: only where the MPI library says it reads GPU
    memory) or "host" (MPI on a copy in host memory). With several ranks on a machine,
    each takes the GPU of its local rank (CuPy's current device, which backend "cupy"
    then means): call ``init`` before building a model on "cupy".
    """
    global _joined
    world = _world
    world.timeout = _checked_timeout(timeout)
    if gpu_collectives is not None:
        if gpu_collectives not in GPU_COLLECTIVES:
            raise ValueError(
                f"gpu_collectives must be one of {GPU_COLLECTIVES}, not {gpu_collectives!r}"
            )
        world.gpu_collectives = gpu_collectives
    if _joined or not launched():
        return world
    MPI = _import_mpi()
    comm = MPI.COMM_WORLD.Dup()
    _check_world_of_one(comm.Get_size(), MPI)
    local = comm.Split_type(MPI.COMM_TYPE_SHARED)
    world.rank, world.size, world.comm = comm.Get_rank(), comm.Get_size(), comm
    world.local_rank, world.local_size = local.Get_rank(), local.Get_size()
    local.Free()
    _joined = True
    if world.size > 1:
        cuda.use_gpu(world.local_rank)  # one GPU per rank of a machine, where there are GPUs
        world.watchdog = Watchdog(world)
        _install_failure_handlers(world)
    return world


def _check_world_of_one(size: int, MPI) -> None:
    """Refuse a world of one where the launcher started several ranks (srun, or Open MPI's
    mpirun, with the mpich wheel's mpi4py): each would train alone, as rank 0."""
    said = [f"{name}={os.environ[name]}" for name in LAUNCH_SIZE_VARIABLES if _size(name) > 1]
    if size == 1 and said:
        library = " ".join(MPI.Get_library_version().split(",")[0].split("\n")[0].split())
        wheel = os.path.join(os.path.dirname(sys.executable), "mpiexec")  # the mpich wheel's
        own = f" ({wheel})" if library.startswith("MPICH") and os.path.exists(wheel) else ""
        raise DistributedError(
            f"the launcher started this process as one rank of several ({', '.join(said)}), "
            f"but mpi4py's MPI ({library}) sees a world of one: every rank "
            f"would train alone. Launch with that MPI's own mpiexec{own}, or build mpi4py "
            "against the launcher's MPI: pip install --no-binary mpi4py mpi4py"
        )


def _size(name: str) -> int:
    """The number of ranks the launcher variable ``name`` says (1 where it is not one)."""
    text = os.environ.get(name, "1").strip()
    return int(text) if text.lstrip("+-").isdigit() else 1


def launched() -> bool:
    """Whether a launcher started this process as one of several (or ``$NNBACKEND_MPI``
    asks to join MPI anyway)."""
    if switch(FORCE_VARIABLE, default=False):
        return True
    return any(_size(name) > 1 for name in LAUNCH_SIZE_VARIABLES)


def current() -> World:
    """The world ``init`` made (a world of one before it is called)."""
    return _world


def joined_world() -> World:
    """The world, joined first under a launcher, as ``fit(distributed=True)`` joins it."""
    return init() if launched() and not _joined else _world


def rank() -> int:
    """This process's rank: 0 .. world_size() - 1 (0 in a plain process)."""
    return joined_world().rank


def world_size() -> int:
    """How many ranks the job has (1 in a plain process)."""
    return joined_world().size


def local_rank() -> int:
    """This process's rank among those on its machine (which GPU it takes)."""
    return joined_world().local_rank


def is_main() -> bool:
    """Whether this is rank 0: the one that prints, shows progress and saves checkpoints."""
    return joined_world().rank == 0


def _portable_exception(exc: Exception | None, context: str):
    """``exc`` if it survives pickling (to be raised on the other ranks), else a
    DistributedError that names it."""
    if exc is None:
        return None
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return DistributedError(f"{context}: {type(exc).__name__}: {exc}")
    return exc


def _import_mpi():
    sizes = ", ".join(f"{n}={os.environ[n]}" for n in LAUNCH_SIZE_VARIABLES if n in os.environ)
    if importlib.util.find_spec("mpi4py") is None:
        raise DistributedError(
            f"this process was launched as one rank of several ({sizes or FORCE_VARIABLE}), "
            "but mpi4py is not installed: pip install 'nnbackend[mpi]' (mpi4py and MPICH)"
        )
    from mpi4py import MPI

    return MPI


def _checked_timeout(timeout) -> float:
    if timeout is None:
        text = os.environ.get(TIMEOUT_VARIABLE)
        if not text:
            return _world.timeout
        try:
            timeout = float(text)
        except ValueError:
            timeout = None
        if timeout is None or not timeout > 0:
            raise ValueError(
                f"${TIMEOUT_VARIABLE} must be a positive number of seconds, not {text!r}"
            )
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real) or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    return float(timeout)


def _install_failure_handlers(world: World) -> None:
    previous = sys.excepthook

    def abort_on_exception(kind, exc, tb):
        every_rank = getattr(exc, "every_rank", False)
        if not every_rank or world.rank == 0:
            previous(kind, exc, tb)
        if every_rank:  # the others raise it too: each ends by itself, with status 1
            return
        world.busy = False
        world.abort(
            f"rank {world.rank} of {world.size} ended with {kind.__name__} (above): "
            f"ending all {world.size} ranks."
        )

    def abort_if_busy():
        if world.busy:
            world.abort(
                f"rank {world.rank} of {world.size} exited in the middle of a distributed "
                "fit: ending the other ranks, which would wait for it."
            )

    sys.excepthook = abort_on_exception
    atexit.register(abort_if_busy)


def _end_all_on_failure_before_joining() -> None:
    """A rank launched as one of several that fails before ``init`` (loading its data,
    say) would leave the others in MPI's start, which waits for every rank: it joins
    then, and ends them all. Where the others never join, it leaves after JOIN_SECONDS.
    No hook sees ``sys.exit``, nor whether a script caught it: that is left alone."""
    previous = sys.excepthook

    def join_to_end_all(kind, exc, tb):
        previous(kind, exc, tb)
        if _joined:  # init's own hook, which calls this one, ends the job
            return
        if hasattr(sys, "ps1") or sys.flags.interactive or issubclass(kind, KeyboardInterrupt):
            return  # a REPL goes on after an error; mpiexec passes Ctrl-C to every rank
        # MPI's start holds the interpreter: a signal's default action, not a thread or
        # a handler, ends the wait where the others never join (SIGALRM's ends the process)
        alarm = getattr(signal, "alarm", None)
        if alarm is None:  # not Unix: no way to leave MPI's start
            return
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        alarm(JOIN_SECONDS)
        try:
            world = init()
        except Exception:  # mpi4py missing, a bad $NNBACKEND_TIMEOUT: nothing to end
            return
        finally:
            alarm(0)
        if world.size > 1:
            world.abort(
                f"rank {world.rank} of {world.size} ended with {kind.__name__} (above) "
                f"before joining the job: ending all {world.size} ranks."
            )

    sys.excepthook = join_to_end_all


if launched():
    _end_all_on_failure_before_joining()
