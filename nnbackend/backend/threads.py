"""How many CPU threads the array libraries use: NumPy's BLAS (through threadpoolctl)
and torch's intra-op pool.

The tutorials' nets are tiny: a step of 784-50-10 on 100 images is about 4 million
multiply-adds, a millisecond on one core. Threads cannot speed that up, but they can
slow it down badly: each product hands out slices and waits for every thread, and on
a machine whose other cores are busy that wait is a scheduler's time slice. (On a
shared 2-core machine one MNIST epoch took 5.6 s with two BLAS threads and 0.2 s
with one.) So:

    nb.set_num_threads(1)        # from now on: NumPy's BLAS and torch use one thread
    nb.set_num_threads("auto")   # the default: fit decides per run (below)
    python examples/moons_softmax.py --threads 1

``"auto"`` leaves the libraries' own settings alone, except inside ``fit`` and
``evaluate`` when a step is small (under ``SMALL_STEP`` multiply-adds, estimated as
weights x batch size): they then run with one thread, and restore the previous
setting when they return. CuPy is not concerned: a GPU has no such threads.
"""

from __future__ import annotations

import contextlib
import numbers
import sys
import threading

#: Steps smaller than this (multiply-adds, estimated as weights x batch) run on one
#: thread under "auto": about 10 ms on one core, too short to share out.
SMALL_STEP = 10_000_000
MAX_THREADS = 2**15  # torch keeps its count in a C int; no machine has more

_setting: dict = {"threads": "auto", "limiter": None, "torch": None}

# BLAS's thread count belongs to the process, torch's to each thread. The limit_threads
# blocks open now, in any thread and in the order opened: the last one's count holds,
# and the count from before the first comes back when the last one closes, whichever
# order two fits in two threads end in.
_open_blocks: list = []
_blocks_lock = threading.Lock()
_before_blocks: dict = {}
_this_thread = threading.local()  # .blocks: the limit_threads blocks open in it


def set_num_threads(n: int | str | None) -> None:
    """Use ``n`` threads in NumPy's BLAS and torch from now on (``fit`` included, one
    running too: a callback's call holds for the rest of the fit and after it).

    ``"auto"`` (or None) goes back to the default: the libraries' own thread counts,
    and one thread inside ``fit``/``evaluate`` for small steps (a fit running keeps its
    count to its end).
    """
    n = _checked(n)
    with _blocks_lock:  # inside a fit (a callback's call): the fit's count holds to its end
        if _open_blocks:
            _restore_blas(_before_blocks["limiter"])
        _restore_libraries()
        _setting["threads"] = n
        if n != "auto":
            _setting["torch"] = _torch_threads()  # before threadpoolctl touches torch's OpenMP
            _setting["limiter"] = _blas_limits(n)
            _set_torch_threads(n, always=True)  # torch reports n already: see limit_threads
        if getattr(_this_thread, "blocks", 0):  # before a limit makes torch report its count
            _this_thread.torch_after = _torch_threads()
        if _open_blocks:  # n for the rest of the fit, and after it, not the count before it
            for block in _open_blocks if n != "auto" else ():
                block[0] = n
            _before_blocks["limiter"] = _blas_limits(_open_blocks[-1][0])


def get_num_threads() -> int | str:
    """What ``set_num_threads`` chose: a number, or "auto"."""
    return _setting["threads"]


def describe_threads() -> str:
    """The setting and the thread pools loaded now, e.g. "auto (openblas 2, torch 2)";
    the libraries' pools sorted by name (threadpoolctl lists them in the order they
    were loaded, which changes from run to run)."""
    from threadpoolctl import threadpool_info

    pools = sorted(f"{p['internal_api']} {p['num_threads']}" for p in threadpool_info())
    torch = sys.modules.get("torch")
    if torch is not None:
        pools.append(f"torch {torch.get_num_threads()}")
    return f"{_setting['threads']} ({', '.join(pools) or 'no thread pool loaded'})"


def threads_for_step(n_weights: int, batch_size: int) -> int | None:
    """The threads a training step of this size should use: the number set with
    ``set_num_threads``, else (under "auto") 1 for small steps and None (leave the
    libraries alone) for large ones."""
    chosen = _setting["threads"]
    if chosen != "auto":
        return chosen
    return 1 if n_weights * batch_size < SMALL_STEP else None


@contextlib.contextmanager
def limit_threads(n: int | None):
    """Inside the block, BLAS and torch use ``n`` threads (None: leave them as they are)."""
    if (n := _checked(n)) == "auto":
        yield
        return
    previous_torch = _torch_threads()  # before threadpoolctl touches torch's OpenMP
    block = _open_block(n)
    # always: once threadpoolctl has limited OpenMP, torch reports n already, though
    # its own pool may still be at the count an earlier block put back (2x-90x slower)
    _set_torch_threads(n, always=True)
    _this_thread.blocks = getattr(_this_thread, "blocks", 0) + 1
    try:
        yield
    finally:
        _this_thread.blocks -= 1
        _close_block(block)
        outermost = not _this_thread.blocks  # a count set inside holds after: set_num_threads
        kept = vars(_this_thread)  # a count set inside holds in the blocks around it too
        after = kept.pop("torch_after", None) if outermost else kept.get("torch_after")
        _set_torch_threads(after or previous_torch, always=True)


def apply_in_this_thread() -> None:
    """Give torch, in the calling thread, the count ``set_num_threads`` chose: torch
    keeps one count per thread, and ``predict`` may run in a thread of its own. Inside
    a ``limit_threads`` block of this thread, the block's count holds."""
    chosen = _setting["threads"]
    if chosen != "auto" and not getattr(_this_thread, "blocks", 0):
        _set_torch_threads(chosen)


def apply_to_torch() -> None:
    """Give torch the thread count set before it was imported (the torch backend
    calls this when it first loads torch)."""
    chosen = _setting["threads"]
    if chosen != "auto" and _setting["torch"] is None:
        _setting["torch"] = _torch_threads()
        _set_torch_threads(chosen)


def _checked(n):
    if n is None or isinstance(n, str) and n == "auto":
        return "auto"
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or not 1 <= n <= MAX_THREADS:
        raise ValueError(
            f"the number of threads is a whole number from 1 to {MAX_THREADS} or 'auto', not {n!r}"
        )
    return int(n)


def _open_block(n: int) -> list:
    block = [n]  # a new list each time: closing finds its own by identity
    with _blocks_lock:
        limiter = _blas_limits(n)
        if not _open_blocks:
            _before_blocks["limiter"] = limiter
        _open_blocks.append(block)
    return block


def _close_block(block: list) -> None:
    with _blocks_lock:
        _open_blocks[:] = [b for b in _open_blocks if b is not block]
        if _open_blocks:
            _blas_limits(_open_blocks[-1][0])
        else:
            _restore_blas(_before_blocks.pop("limiter"))


def _blas_limits(n: int):
    """threadpoolctl's limit on every BLAS and OpenMP pool loaded now; the returned
    object, given to ``_restore_blas``, puts back the counts from before."""
    from threadpoolctl import threadpool_limits

    with _blas_control():
        return threadpool_limits(limits=n)


def _restore_blas(limiter) -> None:
    with _blas_control():
        limiter.restore_original_limits()


@contextlib.contextmanager
def _blas_control():
    """threadpoolctl (3.8 on) lets only the first thread that set OpenBLAS's count, the
    process's, set it again while that thread lives, and silently ignores the others:
    a fit in a worker thread made the main thread's limits do nothing. Each change made
    here takes the control and gives it back, so that others' limits still hold."""
    from threadpoolctl import OpenBLASController

    clear = getattr(OpenBLASController, "clear_controlling_thread", None)
    if clear is not None:
        clear(force=True)
    try:
        yield
    finally:
        if clear is not None:
            clear()


def _torch_threads() -> int | None:
    """torch's intra-op threads, or None when torch is not loaded (never imported here)."""
    torch = sys.modules.get("torch")
    return None if torch is None else torch.get_num_threads()


def _set_torch_threads(n: int | None, always: bool = False) -> None:
    torch = sys.modules.get("torch")
    if n is not None and torch is not None and (always or torch.get_num_threads() != n):
        torch.set_num_threads(n)


def _restore_libraries() -> None:
    limiter, torch_threads = _setting["limiter"], _setting["torch"]
    _set_torch_threads(torch_threads, always=True)
    if limiter is not None:
        _restore_blas(limiter)
    _setting.update(limiter=None, torch=None)
