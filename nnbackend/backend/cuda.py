"""What summing CuPy arrays across processes needs of CUDA: NCCL, the current stream,
events, the GPU a process uses. CuPy is imported when one of these is called, never
before (``nnbackend.distributed`` calls them on GPU runs only).
"""

from __future__ import annotations

import importlib.util

from nnbackend.backend.errors import BackendUnavailableError


def nccl():
    """CuPy's NCCL module (``NcclCommunicator``, ``get_unique_id``, ``NCCL_SUM``, ...)."""
    from cupy.cuda import nccl as module

    if not module.available:
        raise BackendUnavailableError(
            "CuPy finds no NCCL here: install it for your CUDA (pip install nvidia-nccl-cu12 "
            "for CUDA 12), or sum through MPI: nb.distributed.init(gpu_collectives='host')"
        )
    return module


def stream_pointer() -> int:
    """The address of CuPy's current stream, for NCCL to queue its work on."""
    import cupy

    return cupy.cuda.get_current_stream().ptr


def synchronize() -> None:
    """Wait until the GPU has done all that was queued on CuPy's current stream."""
    import cupy

    cupy.cuda.get_current_stream().synchronize()


def done_marker():
    """A function that tells, from any thread, whether the GPU has done all that is
    queued on the current stream now (an event recorded there, and polled)."""
    import cupy

    event = cupy.cuda.Event(block=False, disable_timing=True)
    event.record(cupy.cuda.get_current_stream())
    device = cupy.cuda.Device()

    def done() -> bool:
        with device:  # the asking thread's current GPU may be another
            return event.done

    return done


def use_gpu(index: int) -> bool:
    """Make GPU ``index % count`` CuPy's current device, where CuPy is installed and
    finds GPUs (it creates no context on GPU 0 first). Whether it did."""
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        import cupy

        count = cupy.cuda.runtime.getDeviceCount()
        if count:
            cupy.cuda.runtime.setDevice(index % count)
        return bool(count)
    except Exception:  # no driver, no GPU: CuPy is simply not used
        return False
