"""The multi-rank parts of nnbackend.distributed.world in one process: how a rank ends
the job (World.abort), the watchdog's timing (a thread against a short timeout), what
``init`` sets up when it joins a job of several (a stand-in MPI), and the hooks that end
every rank when one fails, after joining or before.

Nothing here needs mpi4py or mpiexec: the MPI parts are stand-ins that record each call
(tests/test_distributed.py runs the same failures under ``mpiexec -n 2``).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from nnbackend.distributed import world

ROOT = Path(__file__).resolve().parents[1]


class Comm:
    """A communicator of ``size`` ranks seen from ``rank``; records Split_type, Free and
    Abort (which, unlike MPI_Abort, returns), and sets ``aborted`` on the first Abort."""

    def __init__(self, rank=1, size=2, log=None, local=None):
        self.rank, self.size = rank, size
        self.log = [] if log is None else log
        self.local = local
        self.aborted = threading.Event()

    def Get_rank(self):
        return self.rank

    def Get_size(self):
        return self.size

    def Split_type(self, kind):
        self.log.append(("Split_type", kind))
        return self.local

    def Free(self):
        self.log.append(("Free", self.rank, self.size))

    def Abort(self, code):
        self.log.append(("Abort", code))
        self.aborted.set()


def aborts(comm) -> list:
    return [entry[1] for entry in comm.log if entry[0] == "Abort"]


def test_abort_prints_its_message_and_ends_the_job_with_status_1(capsys):
    """World.abort writes its message, named, on stderr and calls MPI_Abort with status 1
    (a failed job must not report success)."""
    comm = Comm()
    world.World(rank=1, size=2, comm=comm).abort("rank 1 of 2 gave up")
    assert capsys.readouterr().err == "nnbackend.distributed: rank 1 of 2 gave up\n"
    assert aborts(comm) == [1]


# --- the watchdog -----------------------------------------------------------------


def watched(timeout: float) -> tuple[world.World, Comm]:
    """Rank 1 of two with a running watchdog whose aborts reach a recording Comm."""
    comm = Comm()
    ranks = world.World(rank=1, size=2, comm=comm, timeout=timeout)
    ranks.watchdog = world.Watchdog(ranks)
    return ranks, comm


def stop(ranks: world.World) -> None:
    """Leave the (daemon) watchdog thread idle: nothing watched, a long limit."""
    ranks.timeout = 1e9
    ranks.watchdog._watched = None


def test_a_wait_past_the_limit_ends_the_job_soon_after(capsys):
    """A wait longer than the timeout (0.2 s) aborts the job within a few of the
    watchdog's ticks (timeout / 10), naming the rank and the wait."""
    ranks, comm = watched(0.2)
    try:
        start = time.monotonic()
        with ranks.waiting("a barrier"):
            assert comm.aborted.wait(5), "the watchdog never ended the job"
        seconds = time.monotonic() - start
    finally:
        stop(ranks)
    assert 0.2 <= seconds < 1.0, seconds  # ticks of 0.02 s; a check 1 s late fails
    assert aborts(comm)[0] == 1
    err = capsys.readouterr().err
    # the wait is said in whole seconds: a tick 0.3 s late, on a loaded machine, says 1
    assert re.search(r"rank 1 of 2 waited [01] s in a barrier: another rank has stopped", err)


def test_an_idle_watchdog_waits_and_still_catches_a_later_hang():
    """Ticks with nothing watched abort nothing (and do not end the thread): a wait
    past the limit begun later is still caught."""
    ranks, comm = watched(0.1)
    try:
        time.sleep(0.3)  # many ticks while idle
        assert aborts(comm) == []
        with ranks.waiting("an allgather"):
            assert comm.aborted.wait(5), "the watchdog never ended the job"
    finally:
        stop(ranks)


def test_a_wait_that_ends_in_time_aborts_nothing_even_long_after():
    """A wait shorter than the limit, ticked over several times, aborts nothing; nor does
    the time after it ends, however long (only a wait in progress is timed)."""
    ranks, comm = watched(1.0)  # far past the wait: a loaded machine's late tick aborts nothing
    try:
        with ranks.waiting("a broadcast"):
            time.sleep(0.2)
        time.sleep(1.2)  # past the limit since the wait began, but none is in progress
        assert aborts(comm) == []
    finally:
        stop(ranks)


def test_gpu_work_is_watched_until_it_is_done():
    """pending: GPU work not done past the limit aborts the job; work that is done
    aborts nothing however long ago it was queued, and is polled each tick, not spun on."""
    ranks, comm = watched(0.1)
    try:
        ranks.watchdog.pending("a sum over the ranks (NCCL)", lambda: False)
        assert comm.aborted.wait(5), "a hung GPU sum was not caught"
    finally:
        stop(ranks)

    ranks, comm = watched(0.1)
    polls = []
    try:
        ranks.watchdog.pending("a sum over the ranks (NCCL)", lambda: polls.append(1) or True)
        time.sleep(0.6)
        assert aborts(comm) == []
    finally:
        stop(ranks)
    assert 0 < len(polls) < 300, len(polls)  # ticks of 0.01 s: about 50


def test_the_watchdog_thread_does_not_keep_the_process_alive():
    """The watchdog runs in a daemon thread of its own: a rank whose script ends exits
    (a non-daemon thread that loops for ever would keep it waiting at exit)."""
    before = set(threading.enumerate())
    ranks, _ = watched(1.0)
    try:
        (thread,) = [t for t in threading.enumerate() if t not in before]
        assert thread.name == "nnbackend-watchdog" and thread.daemon and thread.is_alive()
    finally:
        stop(ranks)


# --- init joining a job of several ------------------------------------------------


@pytest.fixture
def launch(monkeypatch):
    """A process launched as rank 3 of 4 (rank 1 of the 2 on its machine), MPI a
    stand-in: what init asked of MPI, of CuPy and of the watchdog goes in the log."""
    log = []
    local = Comm(rank=1, size=2, log=log)
    dup = Comm(rank=3, size=4, log=log, local=local)

    def Dup():
        log.append(("Dup",))
        return dup

    mpi = SimpleNamespace(
        COMM_WORLD=SimpleNamespace(Dup=Dup),
        COMM_TYPE_SHARED="shared",
        Get_library_version=lambda: "Open MPI v5.0.3, package: Open MPI\n",
    )
    monkeypatch.setenv("PMI_SIZE", "4")
    monkeypatch.delenv(world.TIMEOUT_VARIABLE, raising=False)
    monkeypatch.setattr(world, "_world", world.World())
    monkeypatch.setattr(world, "_joined", False)
    monkeypatch.setattr(world, "_import_mpi", lambda: mpi)
    monkeypatch.setattr(world, "cuda", SimpleNamespace(use_gpu=lambda i: log.append(("gpu", i))))
    monkeypatch.setattr(world, "Watchdog", lambda w: ("watchdog of", w))
    monkeypatch.setattr(world, "_install_failure_handlers", lambda w: log.append(("handlers", w)))
    return SimpleNamespace(log=log, dup=dup, local=local)


@pytest.mark.parametrize("size", [4, 2])
def test_init_joins_a_job_of_several_once(launch, size):
    """init: its own duplicate of COMM_WORLD, the rank and size of the job and of the
    machine (the shared-memory split, then freed), the GPU of its local rank, a
    watchdog and the failure hooks, from two ranks up; a second init (each
    distributed fit calls it) returns that world and joins nothing again."""
    launch.dup.rank, launch.dup.size = size - 1, size
    joined = world.init(timeout=7)
    assert joined is world._world and joined.comm is launch.dup and world._joined
    assert (joined.rank, joined.size, joined.local_rank, joined.local_size) == (
        size - 1,
        size,
        1,
        2,
    )
    assert joined.timeout == 7.0 and joined.watchdog == ("watchdog of", joined)
    assert launch.log == [
        ("Dup",), ("Split_type", "shared"), ("Free", 1, 2), ("gpu", 1), ("handlers", joined)
    ]  # fmt: skip
    launch.log.clear()
    assert world.init() is joined and launch.log == []


def test_init_in_a_world_of_one_under_mpi_sets_up_no_failure_handling(launch, monkeypatch):
    """A job of one rank (NNBACKEND_MPI=1 under a launcher of one): joined, but nothing
    to end on failure and no watchdog (there is no other rank to wait for)."""
    monkeypatch.setenv("PMI_SIZE", "1")
    monkeypatch.setenv(world.FORCE_VARIABLE, "1")
    launch.dup.rank, launch.dup.size = 0, 1
    launch.local.rank, launch.local.size = 0, 1
    joined = world.init()
    assert (joined.rank, joined.size, joined.comm) == (0, 1, launch.dup)
    assert joined.watchdog is None
    assert launch.log == [("Dup",), ("Split_type", "shared"), ("Free", 0, 1)]


def test_a_launch_of_four_that_mpi_sees_as_one_is_refused_before_joining(launch):
    """mpi4py of another MPI than the launcher's: each process saw a world of one, and
    trained the whole job as rank 0 of 1, writing the same files as the others."""
    launch.dup.rank, launch.dup.size = 0, 1
    launch.local.rank, launch.local.size = 0, 1
    said = r"\(PMI_SIZE=4\), but mpi4py's MPI \(Open MPI v5\.0\.3\) sees a world of one"
    with pytest.raises(world.DistributedError, match=said):
        world.init()
    assert not world._joined and world._world == world.World()  # nothing of it kept
    assert launch.log == [("Dup",)]


# --- the hooks that end every rank --------------------------------------------------


@pytest.fixture
def hooks(monkeypatch):
    """sys.excepthook as Python's own (recording what it prints), atexit recording."""
    printed, at_exit = [], []
    monkeypatch.setattr(sys, "excepthook", lambda kind, exc, tb: printed.append(kind))
    monkeypatch.setattr(world, "atexit", SimpleNamespace(register=at_exit.append))
    return SimpleNamespace(printed=printed, at_exit=at_exit)


def failure_handlers(hooks, rank: int) -> tuple[world.World, Comm]:
    comm = Comm(rank=rank)
    ranks = world.World(rank=rank, size=2, comm=comm, busy=True)
    world._install_failure_handlers(ranks)
    return ranks, comm


@pytest.mark.parametrize("rank", [0, 1])
def test_one_ranks_uncaught_error_is_printed_and_ends_every_rank(hooks, capsys, rank):
    """An uncaught exception on any one rank: its traceback as Python prints it, then
    MPI_Abort with a message that names the rank and the error."""
    _, comm = failure_handlers(hooks, rank)
    sys.excepthook(RuntimeError, RuntimeError("no data on this rank"), None)
    assert hooks.printed == [RuntimeError] and aborts(comm) == [1]
    err = capsys.readouterr().err
    assert f"rank {rank} of 2 ended with RuntimeError (above): ending all 2 ranks." in err


@pytest.mark.parametrize("rank", [0, 1])
def test_an_error_every_rank_raises_is_printed_once_and_ends_no_job(hooks, rank):
    """An error every rank raises alike (every_rank): rank 0 alone prints it, and no
    rank aborts (each ends by itself, with status 1)."""
    _, comm = failure_handlers(hooks, rank)
    error = world.DistributedError("the ranks disagree", every_rank=True)
    sys.excepthook(world.DistributedError, error, None)
    assert hooks.printed == ([world.DistributedError] if rank == 0 else [])
    assert aborts(comm) == []


def test_leaving_in_the_middle_of_a_fit_ends_every_rank(hooks, capsys):
    """At exit: a rank still in a distributed fit (busy) ends the job; one that is not
    leaves quietly."""
    ranks, comm = failure_handlers(hooks, 1)
    (at_exit,) = hooks.at_exit
    ranks.busy = False
    at_exit()
    assert aborts(comm) == []
    ranks.busy = True
    at_exit()
    assert aborts(comm) == [1]
    assert "rank 1 of 2 exited in the middle of a distributed fit" in capsys.readouterr().err


@pytest.fixture
def before_joining(hooks, monkeypatch):
    """The hook installed at import under a launcher, in a process that has not joined:
    init a stand-in (rank 1 of two), the alarm recorded, SIGALRM a handler of the
    script's own beforehand."""
    alarms, joins = [], []
    state = SimpleNamespace(alarms=alarms, joins=joins, comm=Comm(), printed=hooks.printed)
    state.size = 2  # of the job init joins

    def init():
        joins.append(list(alarms))  # the alarms set as it joined
        return world.World(rank=1, size=state.size, comm=state.comm)

    monkeypatch.setattr(world, "_joined", False)
    monkeypatch.setattr(world, "init", init)
    monkeypatch.setattr(signal, "alarm", alarms.append)
    own = signal.signal(signal.SIGALRM, lambda *args: None)
    world._end_all_on_failure_before_joining()
    yield state
    signal.signal(signal.SIGALRM, own)


def test_an_error_before_joining_joins_under_an_alarm_and_ends_every_rank(before_joining, capsys):
    """An error before init: printed, then the rank joins the job with an alarm of
    JOIN_SECONDS set (its default action, not the script's handler, ends a wait for
    ranks that never join), clears it, and ends every rank."""
    sys.excepthook(OSError, OSError("cannot read the data"), None)
    assert before_joining.printed == [OSError]
    assert before_joining.joins == [[world.JOIN_SECONDS]]
    assert before_joining.alarms == [world.JOIN_SECONDS, 0]
    assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL
    assert aborts(before_joining.comm) == [1]
    err = capsys.readouterr().err
    assert "rank 1 of 2 ended with OSError (above) before joining the job" in err


def test_an_error_once_joined_is_left_to_inits_own_hook(before_joining, monkeypatch):
    """Once init has joined, the pre-join hook prints and does nothing more (init's
    hook, which calls it, ends the job, or not for an every_rank error)."""
    monkeypatch.setattr(world, "_joined", True)
    sys.excepthook(RuntimeError, RuntimeError("after joining"), None)
    assert before_joining.printed == [RuntimeError]
    assert before_joining.joins == [] and before_joining.alarms == []
    assert aborts(before_joining.comm) == []


def test_a_job_of_one_joined_after_an_error_is_not_aborted(before_joining, monkeypatch):
    """Where the job joined turns out to be of one rank, there is no other to end."""
    before_joining.size = 1
    sys.excepthook(RuntimeError, RuntimeError("alone"), None)
    assert before_joining.joins == [[world.JOIN_SECONDS]]
    assert aborts(before_joining.comm) == []


def test_without_an_alarm_the_hook_does_not_try_to_join(before_joining, monkeypatch):
    """Where there is no signal.alarm (not Unix), nothing can end the wait in MPI's
    start: the hook prints and returns, raising nothing of its own."""
    monkeypatch.delattr(signal, "alarm")
    sys.excepthook(RuntimeError, RuntimeError("on Windows"), None)
    assert before_joining.printed == [RuntimeError] and before_joining.joins == []


@pytest.mark.parametrize("size", ["1", "2"])
def test_the_hook_is_installed_at_import_only_under_a_launcher(size):
    """Importing nnbackend under a launcher of several ranks (PMI_SIZE=2) installs the
    pre-join hook; in a plain process sys.excepthook stays Python's own."""
    env = {**os.environ, "PMI_SIZE": size, "PYTHONPATH": str(ROOT)}
    for name in (*world.LAUNCH_SIZE_VARIABLES[1:], world.FORCE_VARIABLE):
        env.pop(name, None)
    code = "import sys, nnbackend; print(sys.excepthook.__name__)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ("join_to_end_all" if size == "2" else "excepthook")


def test_a_launch_size_that_is_no_number_is_no_launch(monkeypatch):
    for name in world.LAUNCH_SIZE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(world.FORCE_VARIABLE, raising=False)
    monkeypatch.setenv("PMI_SIZE", "")
    assert world.launched() is False
    monkeypatch.setenv("PMI_SIZE", "two")
    assert world.launched() is False


@pytest.mark.parametrize(
    ("version", "wheel"),
    [("Open MPI v4.1.6, package: Open MPI", False), ("MPICH Version:\t5.0.2\nMPICH Release", True)],
)
def test_a_world_of_one_names_the_mpich_wheels_mpiexec_only_for_mpich(version, wheel, monkeypatch):
    """Under another MPI it pointed to "the mpich wheel's" mpiexec all the same."""
    mpi = SimpleNamespace(Get_library_version=lambda: version)
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "4")
    monkeypatch.setattr(world.os.path, "exists", lambda path: True)
    with pytest.raises(world.DistributedError) as raised:
        world._check_world_of_one(1, mpi)
    said = str(raised.value)
    assert ("mpiexec (" in said) == wheel and "sees a world of one" in said
    assert f"mpi4py's MPI ({'MPICH Version: 5.0.2' if wheel else 'Open MPI v4.1.6'})" in said
