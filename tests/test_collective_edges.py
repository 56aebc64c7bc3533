"""The collectives' engines (nnbackend.distributed.collectives) in one process, against a
stand-in communicator of a world of two: which engine each backend gets, what each one
hands MPI (or NCCL), and what comes back.

The stand-in is rank 1 of two; the other rank, rank 0, holds ten times each array this
rank holds, so a sum over the ranks is eleven times this rank's arrays and a broadcast
from rank 0 is ten times them: values worked out by hand, whatever the engine did.
Then the world's own answers (nnbackend.distributed.world) that one process can show.
"""

from __future__ import annotations

import contextlib
import ctypes.util
from types import SimpleNamespace

import array_api_strict
import numpy as np
import pytest

from nnbackend.distributed import collectives, world

MPI = pytest.importorskip("mpi4py.MPI", reason="needs mpi4py: pip install -e '.[mpi]'")


class RankOne:
    """Rank 1's communicator in a world of two; rank 0 holds ten times its arrays.
    Records each call (the name, the root and the buffer's dtype and size)."""

    def __init__(self, log=None, told="id of rank 0"):
        self.log = [] if log is None else log
        self.told = told  # what rank 0 broadcasts

    def Allreduce(self, sendbuf, recvbuf):
        assert sendbuf is MPI.IN_PLACE and isinstance(recvbuf, np.ndarray)
        self.log.append(("Allreduce", None, recvbuf.dtype.name, recvbuf.size))
        recvbuf[...] = recvbuf + 10 * recvbuf

    def Bcast(self, buf, root):
        assert isinstance(buf, np.ndarray)
        self.log.append(("Bcast", root, buf.dtype.name, buf.size))
        if root == 0:
            buf[...] = 10 * buf

    def bcast(self, obj, root):
        self.log.append(("bcast", root, obj))
        return self.told

    def allgather(self, obj):  # World sends (what, left_by, value): rank 0 is at the same
        self.log.append(("allgather", obj))
        return [(obj[0], "", "rank 0's"), obj] if isinstance(obj, tuple) else ["rank 0's", obj]

    def Barrier(self):
        self.log.append(("Barrier",))


def two_ranks(gpu_collectives: str = "nccl", log=None) -> world.World:
    return world.World(rank=1, size=2, comm=RankOne(log), gpu_collectives=gpu_collectives)


def arrays_of(backend):
    return [
        backend.asarray(np.arange(6.0).reshape(2, 3), dtype="float32"),
        backend.asarray(np.array([7, 8, 9]), dtype="int64"),
        backend.asarray(np.array(2.5), dtype="float32"),
    ]


def has_host_memory(backend) -> bool:
    return backend.name.split(":")[0] in ("numpy", "torch") and "cuda" not in backend.name


def test_each_backend_gets_the_engine_its_memory_needs(backend):
    """NumPy and torch CPU arrays are summed by MPI in their own memory; strict's, whose
    memory is hidden, through a host copy. One engine per backend and world, kept."""
    if "cuda" in backend.name or backend.name.startswith("cupy"):
        pytest.skip("GPU arrays: NCCL by default")
    for how in world.GPU_COLLECTIVES:  # gpu_collectives concerns CuPy alone
        ranks = two_ranks(how)
        engine = collectives.engine_for(ranks, backend)
        kind = collectives.HostMPI if has_host_memory(backend) else collectives.ThroughHost
        assert type(engine) is kind, how
        assert collectives.engine_for(ranks, backend) is engine
        assert ranks.engines == {backend.name: engine}


class Made:
    """Stands in for an engine class that needs a GPU: records the world it was made for."""

    def __init__(self, world):
        self.world = world


@pytest.mark.parametrize("name", ["cupy", "cupy:1"])
def test_cupy_arrays_get_the_engine_gpu_collectives_names(monkeypatch, name):
    """On CuPy: "nccl" makes the NCCL engine, "mpi" the CUDA-aware MPI one, "host" MPI
    on a host copy (CuPy's arrays, like strict's here, have no host memory)."""
    nccl = type("Nccl", (Made,), {})
    mpi = type("CudaAwareMPI", (Made,), {})
    monkeypatch.setattr(collectives, "Nccl", nccl)
    monkeypatch.setattr(collectives, "CudaAwareMPI", mpi)
    gpu = SimpleNamespace(
        name=name, xp=array_api_strict, dtype=array_api_strict.float32, device=None
    )
    for how, kind in (("nccl", nccl), ("mpi", mpi), ("host", collectives.ThroughHost)):
        ranks = two_ranks(how)
        engine = collectives.engine_for(ranks, gpu)
        assert type(engine) is kind and engine.world is ranks, how


def test_the_sum_over_two_ranks_is_one_message_per_dtype(backend):
    """allreduce gives each array summed over the ranks (11 times this rank's), in one
    in-place MPI message per dtype; host memory is summed where it lies, no copy."""
    log = []
    engine = collectives.engine_for(two_ranks("host", log), backend)  # CuPy too
    arrays = arrays_of(backend)
    expected = [11 * backend.to_numpy(a) for a in arrays]
    summed = collectives.allreduce(engine, arrays)
    assert log == [("Allreduce", None, "float32", 7), ("Allreduce", None, "int64", 3)]
    for got, want, before in zip(summed, expected, arrays, strict=True):
        assert got.dtype == before.dtype and tuple(got.shape) == want.shape
        assert np.array_equal(backend.to_numpy(got), want)
    flat = backend.asarray(np.array([1.0, -2.0]), dtype="float32")
    out = engine.allreduce(flat)
    assert np.array_equal(backend.to_numpy(out), [11.0, -22.0])
    if has_host_memory(backend):
        assert out is flat


def test_a_broadcast_gives_rank_0s_arrays(backend):
    """broadcast gives every array as rank 0 holds it (10 times this rank's), sent from
    root 0 in one message per dtype."""
    log = []
    engine = collectives.engine_for(two_ranks("host", log), backend)  # CuPy too
    arrays = arrays_of(backend)
    expected = [10 * backend.to_numpy(a) for a in arrays]
    received = collectives.broadcast(engine, arrays)
    assert log == [("Bcast", 0, "float32", 7), ("Bcast", 0, "int64", 3)]
    for got, want, before in zip(received, expected, arrays, strict=True):
        assert got.dtype == before.dtype and tuple(got.shape) == want.shape
        assert np.array_equal(backend.to_numpy(got), want)


def test_mpi_that_cannot_read_gpu_memory_is_refused_for_gpu_collectives_mpi(monkeypatch):
    """gpu_collectives="mpi" where the MPI library does not say it reads GPU memory is an
    error that names the other choices, not a crash inside MPI later."""
    monkeypatch.setattr(collectives, "cuda_aware", lambda MPI: False)
    with pytest.raises(world.DistributedError, match="MPIX_Query_cuda_support.*'nccl'.*'host'"):
        collectives.CudaAwareMPI(two_ranks("mpi"))


def test_cuda_aware_mpi_waits_for_the_stream_then_sums_and_broadcasts(monkeypatch):
    """The CUDA-aware engine syncs the GPU before MPI reads the array, then sums it in
    place (11 times) or takes rank 0's (10 times), giving back the same array."""
    log = []
    monkeypatch.setattr(collectives, "cuda_aware", lambda MPI: True)
    monkeypatch.setattr(
        collectives, "cuda", SimpleNamespace(synchronize=lambda: log.append(("sync",)))
    )
    engine = collectives.CudaAwareMPI(two_ranks("mpi", log))
    flat = np.array([1.0, 2.0], dtype=np.float32)
    assert engine.allreduce(flat) is flat and flat.tolist() == [11.0, 22.0]
    assert engine.broadcast(flat) is flat and flat.tolist() == [110.0, 220.0]
    assert log == [
        ("sync",),
        ("Allreduce", None, "float32", 2),
        ("sync",),
        ("Bcast", 0, "float32", 2),
    ]


def test_cuda_aware_is_false_where_the_library_cannot_say():
    """No such library, or one without MPIX_Query_cuda_support: False, not an error; the
    MPI here answers a bool."""
    assert collectives.cuda_aware(SimpleNamespace(__file__="/no/such/libmpi.so")) is False
    libm = ctypes.util.find_library("m")
    if libm is not None:
        assert collectives.cuda_aware(SimpleNamespace(__file__=libm)) is False
    assert isinstance(collectives.cuda_aware(MPI), bool)


class FakeNccl:
    """CuPy's nccl module as the NCCL engine uses it, recording every call."""

    NCCL_FLOAT32, NCCL_FLOAT64, NCCL_INT32, NCCL_INT64, NCCL_UINT8 = 1, 2, 3, 4, 5
    NCCL_SUM = 99

    def __init__(self, log):
        self.log = log
        nccl = self

        class NcclCommunicator:
            def __init__(self, size, unique_id, rank):
                nccl.log.append(("communicator", size, unique_id, rank))

            def allReduce(self, send, recv, count, dtype, op, stream):
                nccl.log.append(("allReduce", send, recv, count, dtype, op, stream))

            def bcast(self, buf, count, dtype, root, stream):
                nccl.log.append(("bcast", buf, count, dtype, root, stream))

        self.NcclCommunicator = NcclCommunicator

    def get_unique_id(self):
        return "id of rank 0"


class Watched:
    """A watchdog that records the GPU work it is given to poll."""

    def __init__(self, log):
        self.log = log

    def waiting(self, what):
        return contextlib.nullcontext()

    def pending(self, what, done):
        self.log.append(("pending", what, done))


def gpu_flat(dtype: str, size: int = 6):
    """What the NCCL engine reads of a CuPy array: its pointer, size and dtype."""
    return SimpleNamespace(data=SimpleNamespace(ptr=4096), size=size, dtype=np.dtype(dtype))


@pytest.mark.parametrize("rank", [0, 1])
def test_nccl_sums_and_broadcasts_on_the_stream_with_rank_0s_id(monkeypatch, rank):
    """The NCCL engine: rank 0 makes the id and MPI broadcasts it; the communicator has
    every rank; a sum is in place on the array's memory on the current stream, a
    broadcast is from root 0; the watchdog polls each; other dtypes are refused."""
    log = []
    nccl = FakeNccl(log)
    fake_cuda = SimpleNamespace(
        nccl=lambda: nccl, stream_pointer=lambda: 77, done_marker=lambda: "marker"
    )
    monkeypatch.setattr(collectives, "cuda", fake_cuda)
    ranks = world.World(rank=rank, size=2, comm=RankOne(log), watchdog=Watched(log))
    engine = collectives.Nccl(ranks)
    sent = "id of rank 0" if rank == 0 else None  # rank 0 alone makes one
    assert log == [("bcast", 0, sent), ("communicator", 2, "id of rank 0", rank)]
    del log[:]
    flat = gpu_flat("float64")
    assert engine.allreduce(flat) is flat
    assert engine.broadcast(gpu_flat("int32", 3)) is not None
    assert log == [
        ("allReduce", 4096, 4096, 6, nccl.NCCL_FLOAT64, nccl.NCCL_SUM, 77),
        ("pending", "a sum over the ranks (NCCL)", "marker"),
        ("bcast", 4096, 3, nccl.NCCL_INT32, 0, 77),
        ("pending", "a broadcast from rank 0 (NCCL)", "marker"),
    ]
    with pytest.raises(world.DistributedError, match="NCCL here sums no float16 arrays"):
        engine.allreduce(gpu_flat("float16"))
    ranks.watchdog = None  # nothing polls: the sum is queued all the same
    del log[:]
    engine.allreduce(flat)
    assert [entry[0] for entry in log] == ["allReduce"]


def test_nccl_missing_is_a_distributed_error(monkeypatch):
    """Without NCCL the engine says so as a DistributedError (the job's own kind)."""
    from nnbackend.backend import BackendUnavailableError

    def no_nccl():
        raise BackendUnavailableError("CuPy finds no NCCL here")

    monkeypatch.setattr(collectives, "cuda", SimpleNamespace(nccl=no_nccl))
    with pytest.raises(world.DistributedError, match="CuPy finds no NCCL here"):
        collectives.Nccl(two_ranks())


# --- the world (nnbackend.distributed.world) -------------------------------------


def test_a_world_of_one_answers_by_itself():
    """A plain process: rank 0 of one, alone on its machine, not in a fit, with the
    documented 300 s limit; its collectives give back its own values, touching no
    communicator (it has none), and its waits are timed by nothing."""
    alone = world.World()
    assert (alone.rank, alone.size, alone.local_rank, alone.local_size) == (0, 1, 0, 1)
    assert alone.timeout == 300.0 and alone.busy is False and alone.comm is None
    settings = {"batch_size": 32}
    assert alone.bcast(settings) is settings
    assert alone.allgather(settings) == [settings]
    alone.barrier()
    with alone.waiting("nothing"):
        pass
    assert alone.on_main(lambda: 42, "answer") == 42


def test_a_rank_of_two_hears_rank_0_and_its_waits_are_watched():
    """Rank 1 of two: a broadcast is rank 0's value (root 0), an allgather every rank's
    in rank order, a barrier waits on the communicator; the watchdog times each wait."""
    log = []
    waits = []

    class Watchdog:
        @contextlib.contextmanager
        def waiting(self, what):
            waits.append(what)
            yield

    ranks = world.World(rank=1, size=2, comm=RankOne(log, told="rank 0's"), watchdog=Watchdog())
    assert ranks.bcast("mine", "the plan") == "rank 0's"
    assert ranks.allgather("mine", "the digests") == ["rank 0's", "mine"]
    ranks.barrier()
    assert log == [("bcast", 0, "mine"), ("allgather", ("the digests", "", "mine")), ("Barrier",)]
    assert waits == ["a broadcast of the plan", "an allgather of the digests", "a barrier"]


def test_on_main_runs_on_rank_0_alone_and_its_failure_is_every_ranks():
    """on_main: rank 0 runs the function and keeps its result; rank 1 does not run it and
    gets None, or rank 0's exception, raised there too and marked every_rank."""
    ran = []
    other = world.World(rank=1, size=2, comm=RankOne(told=None))
    assert other.on_main(lambda: ran.append(1) or "saved", "save") is None and ran == []
    other.comm.told = ValueError("the folder is read-only")
    with pytest.raises(ValueError, match="read-only") as raised:
        other.on_main(lambda: ran.append(1), "save")
    assert raised.value.every_rank is True and ran == []

    log = []
    main = world.World(rank=0, size=2, comm=RankOne(log, told=None))
    assert main.on_main(lambda: "saved", "save") == "saved"
    assert log == [("bcast", 0, None)]  # rank 0 told the others: no failure

    def fails():
        raise OSError("disk full")

    log.clear()
    main.comm.told = "(rank 0's own failure is raised, whatever came back)"
    with pytest.raises(OSError, match="disk full") as raised:
        main.on_main(fails, "save")
    assert raised.value.every_rank is True
    ((_, root, sent),) = log
    assert root == 0 and isinstance(sent, OSError) and str(sent) == "disk full"


def test_an_exception_that_cannot_travel_is_sent_as_one_that_names_it():
    """An exception that does not survive pickling reaches the other ranks as a
    DistributedError naming what rank 0 could not do, its kind and message."""

    class Unpicklable(Exception):
        def __reduce__(self):
            raise TypeError("no pickling")

    sent = world._portable_exception(Unpicklable("bad state"), "rank 0 could not save")
    assert type(sent) is world.DistributedError
    assert str(sent) == "rank 0 could not save: Unpicklable: bad state"
    plain = ValueError("fine")
    assert world._portable_exception(plain, "x") is plain
    assert world._portable_exception(None, "x") is None


def test_a_distributed_error_is_one_ranks_unless_said_otherwise():
    """DistributedError: every_rank False by default (an error of one rank aborts the
    job), True when given; the message is the exception's text."""
    one = world.DistributedError("rank 1 has no data")
    assert one.every_rank is False and str(one) == "rank 1 has no data"
    assert world.DistributedError("ranks disagree", every_rank=True).every_rank is True


def test_init_in_a_plain_process_keeps_the_settings_it_was_given(monkeypatch):
    """init in a plain process joins nothing, but keeps its timeout and how CuPy arrays
    are to be summed; a second call without them keeps both; $NNBACKEND_TIMEOUT sets
    the timeout."""
    fresh = world.World()
    monkeypatch.setattr(world, "_world", fresh)
    for name in (*world.LAUNCH_SIZE_VARIABLES, world.FORCE_VARIABLE, world.TIMEOUT_VARIABLE):
        monkeypatch.delenv(name, raising=False)
    joined = world.init(timeout=12, gpu_collectives="host")
    assert joined is fresh and (joined.size, joined.comm) == (1, None)
    assert (joined.timeout, joined.gpu_collectives) == (12.0, "host")
    assert world.init() is fresh and (fresh.timeout, fresh.gpu_collectives) == (12.0, "host")
    assert world.init(timeout=0.5).timeout == 0.5  # under a second is a limit too
    assert world.init(timeout=np.float32(30)).timeout == 30.0  # NumPy's numbers are numbers
    assert world.init(timeout=np.int64(7)).timeout == 7.0
    monkeypatch.setenv(world.TIMEOUT_VARIABLE, "0.25")
    assert world.init().timeout == 0.25


def test_any_launchers_two_ranks_are_a_launch_and_a_plain_process_takes_gpu_0(monkeypatch):
    """Each launcher's variable saying 2 ranks (the smallest job of several) joins MPI;
    a plain process is local rank 0 (the first GPU)."""
    for name in (*world.LAUNCH_SIZE_VARIABLES, world.FORCE_VARIABLE):
        monkeypatch.delenv(name, raising=False)
    for name in world.LAUNCH_SIZE_VARIABLES:
        monkeypatch.setenv(name, "2")
        assert world.launched(), name
        monkeypatch.delenv(name)
    assert not world.launched()
    monkeypatch.setattr(world, "_world", world.World())
    assert world.local_rank() == 0


def test_init_once_joined_does_not_join_again(monkeypatch):
    """A second init in a process that joined its job returns the world as it is: no
    second communicator, watchdog or failure hooks (the launch variables still say 2)."""
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setattr(world, "_world", world.World(rank=1, size=2, comm=RankOne()))
    monkeypatch.setattr(world, "_joined", True)

    def no_second_join():
        raise AssertionError("init joined MPI again")

    monkeypatch.setattr(world, "_import_mpi", no_second_join)
    assert world.init() is world._world and world._world.rank == 1
