"""Summing and broadcasting arrays across the ranks, with the engine each kind of
array needs, and the flat buffers they travel in.

    flats, layout = pack(arrays)            # one 1-D buffer per dtype
    flats = {k: engine.allreduce(f) for k, f in flats.items()}
    arrays = unpack(flats, layout)          # views of the buffers, shaped as before

Engines (``engine_for(world, backend)``):

- ``HostMPI``: NumPy arrays and torch CPU tensors, whose memory is host memory: MPI
  sums it in place, with no copy;
- ``ThroughHost``: array-api-strict (whose arrays hide their memory), torch CUDA
  tensors, and CuPy with ``gpu_collectives="host"``: a copy to the host (a counted
  transfer; on a GPU it waits for the stream), MPI there, and back;
- ``Nccl``: CuPy arrays, summed by NCCL on the current stream (no host sync). Rank 0
  makes the NCCL id, MPI broadcasts it;
- ``CudaAwareMPI``: CuPy arrays handed to an MPI that reads GPU memory, once the
  stream has finished writing them (``gpu_collectives="mpi"``, only where the MPI
  library says it can).
"""

from __future__ import annotations

import ctypes
import math

from nnbackend.backend import BackendUnavailableError, cuda, dtype_name, host_memory, namespace_of
from nnbackend.distributed.world import DistributedError, World


def pack(arrays) -> tuple[dict, list]:
    """The arrays (all of one backend) as one flat 1-D buffer per dtype, and the layout
    that ``unpack`` needs: ``({dtype name: buffer}, [(dtype name, start, shape), ...])``.
    The one place that knows how arrays become buffers (none: no buffers, a model
    without weights)."""
    if not arrays:
        return {}, []
    xp = namespace_of(*arrays)
    pieces: dict[str, list] = {}
    ends: dict[str, int] = {}
    layout = []
    for a in arrays:
        key = dtype_name(xp, a.dtype)
        start = ends.get(key, 0)
        layout.append((key, start, tuple(a.shape)))
        ends[key] = start + math.prod(a.shape)
        pieces.setdefault(key, []).append(xp.reshape(a, (-1,)))
    return {key: xp.concat(group) for key, group in pieces.items()}, layout


def unpack(flats: dict, layout: list) -> list:
    """The arrays ``pack`` took, as views (where the library has them) of ``flats``."""
    if not layout:
        return []
    xp = namespace_of(*flats.values())
    return [
        xp.reshape(flats[key][start : start + math.prod(shape)], shape)
        for key, start, shape in layout
    ]


def allreduce(engine, arrays) -> list:
    """The element-wise sums over every rank of ``arrays`` (same shapes, dtypes and
    order on every rank), in one message per dtype."""
    flats, layout = pack(arrays)
    return unpack({key: engine.allreduce(flat) for key, flat in flats.items()}, layout)


def broadcast(engine, arrays) -> list:
    """Rank 0's ``arrays``, on every rank (the others pass arrays of the same shapes)."""
    flats, layout = pack(arrays)
    return unpack({key: engine.broadcast(flat) for key, flat in flats.items()}, layout)


def engine_for(world: World, backend):
    """The engine that sums ``backend``'s arrays, made once per backend and world."""
    engine = world.engines.get(backend.name)
    if engine is None:
        engine = world.engines[backend.name] = _make_engine(world, backend)
    return engine


def _make_engine(world: World, backend):
    base = backend.name.split(":")[0]
    if base == "cupy" and world.gpu_collectives == "nccl":
        return Nccl(world)
    if base == "cupy" and world.gpu_collectives == "mpi":
        return CudaAwareMPI(world)
    probe = backend.xp.zeros((1,), dtype=backend.dtype, device=backend.device)
    return HostMPI(world) if host_memory(probe) is not None else ThroughHost(world, backend)


class HostMPI:
    """MPI on the array's own host memory, in place."""

    def __init__(self, world: World):
        from mpi4py import MPI

        self.world, self.in_place = world, MPI.IN_PLACE

    def allreduce(self, flat):
        with self.world.waiting("a sum over the ranks (MPI)"):
            self.world.comm.Allreduce(self.in_place, host_memory(flat))
        return flat

    def broadcast(self, flat):
        with self.world.waiting("a broadcast from rank 0 (MPI)"):
            self.world.comm.Bcast(host_memory(flat), root=0)
        return flat


class ThroughHost:
    """MPI on a host copy; the result goes back to the backend."""

    def __init__(self, world: World, backend):
        from mpi4py import MPI

        self.world, self.backend, self.in_place = world, backend, MPI.IN_PLACE

    def allreduce(self, flat):
        host = self.backend.to_numpy(flat).copy()  # a writable buffer of our own
        with self.world.waiting("a sum over the ranks (MPI, through the host)"):
            self.world.comm.Allreduce(self.in_place, host)
        return self.backend.asarray(host, dtype=host.dtype.name)

    def broadcast(self, flat):
        host = self.backend.to_numpy(flat).copy()
        with self.world.waiting("a broadcast from rank 0 (MPI, through the host)"):
            self.world.comm.Bcast(host, root=0)
        return self.backend.asarray(host, dtype=host.dtype.name)


class Nccl:
    """NCCL on CuPy arrays, on the current stream: nothing waits on the host. The
    watchdog polls an event recorded after each call."""

    def __init__(self, world: World):
        try:
            nccl = self.nccl = cuda.nccl()
        except BackendUnavailableError as exc:
            raise DistributedError(str(exc)) from None
        self.world = world
        self.types = {
            "float32": nccl.NCCL_FLOAT32, "float64": nccl.NCCL_FLOAT64,
            "int32": nccl.NCCL_INT32, "int64": nccl.NCCL_INT64, "uint8": nccl.NCCL_UINT8,
        }  # fmt: skip
        unique_id = world.bcast(nccl.get_unique_id() if world.rank == 0 else None, "the NCCL id")
        with world.waiting("making the NCCL communicator"):
            self.comm = nccl.NcclCommunicator(world.size, unique_id, world.rank)

    def allreduce(self, flat):
        self.comm.allReduce(
            flat.data.ptr, flat.data.ptr, flat.size, self._type(flat), self.nccl.NCCL_SUM,
            cuda.stream_pointer(),
        )  # fmt: skip
        self._watch("a sum over the ranks (NCCL)")
        return flat

    def broadcast(self, flat):
        self.comm.bcast(flat.data.ptr, flat.size, self._type(flat), 0, cuda.stream_pointer())
        self._watch("a broadcast from rank 0 (NCCL)")
        return flat

    def _type(self, flat):
        try:
            return self.types[flat.dtype.name]
        except KeyError:
            raise DistributedError(f"NCCL here sums no {flat.dtype.name} arrays") from None

    def _watch(self, what: str) -> None:
        if self.world.watchdog is not None:
            self.world.watchdog.pending(what, cuda.done_marker())


class CudaAwareMPI:
    """MPI reading and writing CuPy arrays in GPU memory, once the stream is done."""

    def __init__(self, world: World):
        from mpi4py import MPI

        if not cuda_aware(MPI):
            raise DistributedError(
                f"gpu_collectives='mpi' asks MPI to read GPU memory, but this MPI "
                f"({MPI.Get_library_version().splitlines()[0]}) does not say it can "
                "(MPIX_Query_cuda_support): use gpu_collectives='nccl' (the default) or 'host'"
            )
        self.world, self.in_place = world, MPI.IN_PLACE

    def allreduce(self, flat):
        cuda.synchronize()  # MPI reads what the GPU wrote
        with self.world.waiting("a sum over the ranks (CUDA-aware MPI)"):
            self.world.comm.Allreduce(self.in_place, flat)
        return flat

    def broadcast(self, flat):
        cuda.synchronize()
        with self.world.waiting("a broadcast from rank 0 (CUDA-aware MPI)"):
            self.world.comm.Bcast(flat, root=0)
        return flat


def cuda_aware(MPI) -> bool:
    """What the MPI library itself answers to MPIX_Query_cuda_support() (Open MPI and
    MPICH both have it); False where it has no such function."""
    try:
        query = ctypes.CDLL(MPI.__file__).MPIX_Query_cuda_support
    except (OSError, AttributeError):
        return False
    query.restype = ctypes.c_int
    return bool(query())
