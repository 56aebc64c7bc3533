"""Runs every workload with every implementation in one process and times them.

Implementations: "ref" (references.train_xp with NumPy, or CuPy on a GPU run),
"torch-manual", "torch-autograd" and "nnbackend" (nnbackend_runner's slot), plus the
GEMM floor (gemm.py); a run with ``--compile`` also times "nnbackend-eager", the same
fit without the capture, so that the two steps meet in one run. Each timed run starts
from fresh copies of the same weights, with its data already on its device; the clock
covers the training loop only and stops after the device has finished.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
import traceback
import tracemalloc
from dataclasses import dataclass, replace

import numpy as np

from benchmarks import gemm, references, report
from benchmarks.cpuload import OtherLoad, wait_until_quiet
from benchmarks.workloads import warmup

IMPLS = ("ref", "torch-manual", "torch-autograd", "nnbackend")
MEMORY_WORKLOADS = (2, 6)


class Unavailable(Exception):
    """An implementation that cannot run here (reported as n/a, not as an error)."""


@dataclass
class Context:
    backend: str  # as asked: numpy, strict, torch, torch:cuda, cupy
    xp: object  # numpy or cupy: runs the reference loop
    torch_device: str | None  # None where torch is not installed
    gpu: bool
    compile: bool | str = False  # nnbackend's fit(compile=...): torch backends only
    skip: tuple[str, ...] = ()  # of report.SKIPPABLE: left out of the run, shown as n/a

    @property
    def ref(self) -> str:
        return "numpy" if self.xp is np else "cupy"

    @property
    def gemm_library(self) -> str:
        """What the GEMM floor is measured with: the library nnbackend runs on."""
        return "torch" if self.backend.startswith("torch") else self.ref

    def sync(self):
        if not self.gpu:
            return
        if self.xp is not np:
            self.xp.cuda.get_current_stream().synchronize()
        if self.torch_device == "cuda":
            import torch

            torch.cuda.synchronize()


def impls_for(ctx) -> tuple[str, ...]:
    """What a run trains, the GEMM floor aside: a compiled run adds the eager fit."""
    return (*IMPLS, "nnbackend-eager") if ctx.compile else IMPLS


def make_context(backend: str) -> Context:
    gpu = backend.startswith("cupy") or backend.startswith("torch:cuda")
    xp = np
    if gpu:
        try:
            import cupy as xp

            xp.zeros(1).sum().item()
        except Exception as exc:
            raise SystemExit(f"--backend {backend} needs CuPy and a CUDA device: {exc}") from None
    try:
        import torch
    except ImportError:
        return Context(backend, xp, None, gpu)
    if gpu and not torch.cuda.is_available():
        print("note: torch sees no CUDA device; its columns run on the CPU", file=sys.stderr)
        return Context(backend, xp, "cpu", gpu)
    return Context(backend, xp, "cuda" if gpu else "cpu", gpu)


# --- preparing one training run (untimed) -------------------------------------------


def need_torch(ctx):
    if ctx.torch_device is None:
        raise Unavailable("torch is not installed")
    import torch

    return torch


def on_host(a) -> np.ndarray:
    """A NumPy, CuPy or torch array as host NumPy."""
    if hasattr(a, "detach"):
        return a.detach().cpu().numpy()
    return a.get() if hasattr(a, "get") else np.asarray(a)


def with_weights(train, weights):
    """``train``, the timed run, with ``train.weights()``: the [(W, b), ...] it leaves, as
    host NumPy (benchmarks/test_references.py holds each implementation's to the loop's,
    so that every one times the same work)."""
    train.weights = weights
    return train


def prepare_ref(wl, data, ctx):
    xp = ctx.xp
    X, y = xp.asarray(data.X), xp.asarray(data.y)
    params = [(xp.array(W), xp.array(b)) for W, b in data.init]
    train = references.train_xp if wl.conv is None else references.train_conv_xp
    return with_weights(
        lambda: train(wl, X, y, params, xp=xp),
        lambda: [(on_host(W), on_host(b)) for W, b in params],
    )


def prepare_torch_manual(wl, data, ctx):
    if wl.conv is not None:
        raise Unavailable("no hand-written torch conv loop: torch-autograd runs nn.Conv2d")
    torch, dev = need_torch(ctx), ctx.torch_device
    X, y = torch.as_tensor(data.X, device=dev), torch.as_tensor(data.y, device=dev)
    params = [(torch.tensor(W, device=dev), torch.tensor(b, device=dev)) for W, b in data.init]
    return with_weights(
        lambda: references.train_torch_manual(wl, X, y, params),
        lambda: [(on_host(W), on_host(b)) for W, b in params],
    )


def prepare_torch_autograd(wl, data, ctx):
    torch, dev = need_torch(ctx), ctx.torch_device
    X, y = torch.as_tensor(data.X, device=dev), torch.as_tensor(data.y, device=dev)
    model = references.build_torch_model(wl, data.init).to(dev)
    return with_weights(
        lambda: references.train_torch_autograd(wl, X, y, model),
        lambda: references.torch_model_params(model),
    )


def prepare_nnbackend(wl, data, ctx):
    try:
        from benchmarks.nnbackend_runner import run_nnbackend
    except ImportError as exc:
        raise Unavailable(f"nnbackend does not import: {exc}") from None
    train = run_nnbackend(wl, ctx.backend, data, compile=ctx.compile)

    def weights():
        arrays = [on_host(a) for a in train.model.params.values()]  # W, b of each layer
        return list(zip(arrays[::2], arrays[1::2], strict=True))

    return with_weights(train, weights)


def prepare_nnbackend_eager(wl, data, ctx):
    return prepare_nnbackend(wl, data, replace(ctx, compile=False))


PREPARE = {
    "ref": prepare_ref,
    "torch-manual": prepare_torch_manual,
    "torch-autograd": prepare_torch_autograd,
    "nnbackend": prepare_nnbackend,
    "nnbackend-eager": prepare_nnbackend_eager,
}


# --- timing ------------------------------------------------------------------------


def time_once(impl, wl, data, ctx, trained: dict | None = None) -> tuple[float, float | None]:
    """Seconds for one training run, and its last loss when it returns one (the loops:
    the last batch's; nnbackend: the last epoch's mean, as ``fit`` logs it). The weights
    it ends with go into ``trained[impl]``, read after the clock stops."""
    train = PREPARE[impl](wl, data, ctx)
    ctx.sync()
    # the collector's full passes come when enough objects have outlived its young
    # generations since the last one, whoever made them: start each run from none, so
    # that one implementation's leftovers (torch autograd's) are not timed in the next
    gc.collect()
    start = time.perf_counter()
    out = train()
    ctx.sync()
    seconds = time.perf_counter() - start
    if trained is not None:
        trained[impl] = train.weights()
    try:
        return seconds, float(out)
    except (TypeError, ValueError):
        return seconds, None


def attempt(what, fn):
    """fn()'s value and None, or None and why it did not run."""
    try:
        return fn(), None
    except Unavailable as exc:  # not installed, not written: a method left out is an error
        return None, f"n/a: {exc}"
    except Exception as exc:
        print(f"{what} failed:", file=sys.stderr)
        traceback.print_exc()
        return None, f"error: {type(exc).__name__}: {exc}"


def gemm_asarray(ctx):
    if ctx.gemm_library == "torch":
        torch = need_torch(ctx)
        return lambda host: torch.as_tensor(host, device=ctx.torch_device)
    return ctx.xp.asarray


def measure(impl, wl, data, ctx, quick: bool, trained: dict | None = None) -> dict:
    """One timed run of impl: its seconds and how much of the machine other work took
    meanwhile, plus the last loss or the GEMM detail."""
    with OtherLoad() as load:
        if impl == "gemm":
            detail = gemm.gemm_floor(wl, gemm_asarray(ctx), ctx.sync, 0.01 if quick else 0.1)
            out = {"seconds": detail["seconds"], "detail": detail}
        else:
            seconds, loss = time_once(impl, wl, data, ctx, trained)
            out = {"seconds": seconds, "loss": loss}
    return out | {"others_share": load.share}


def time_workload(wl, data, ctx, repeat: int, quick: bool, quiet_wait: float) -> dict:
    """Every implementation's runs, the GEMM floor's included, interleaved so that
    drift and noise on the machine hit them alike. Before each run, wait up to
    quiet_wait seconds for other work on the machine to stop."""
    results = {impl: {"status": None, "runs": []} for impl in (*impls_for(ctx), "gemm")}
    for impl in ctx.skip:
        results[impl]["status"] = "n/a: left out of this run (--skip)"
    small = warmup(wl)
    trained: dict = {}  # each implementation's weights after its last timed run
    for impl in impls_for(ctx):
        if results[impl]["status"] is not None:
            continue
        _, results[impl]["status"] = attempt(
            f"workload {wl.number} {impl} (warm-up)",
            lambda i=impl: time_once(i, small, data.head(small.n_samples), ctx),
        )
    for r in range(repeat):
        for impl, entry in results.items():
            if entry["status"] is not None:
                continue
            what = f"workload {wl.number} {impl}"
            wait_until_quiet(quiet_wait)
            value, entry["status"] = attempt(
                what, lambda i=impl: measure(i, wl, data, ctx, quick, trained)
            )
            if value is not None:
                entry["runs"].append(value.pop("seconds"))
                entry.setdefault("others_share", []).append(value.pop("others_share"))
                entry.update(value)
                share = entry["others_share"][-1]
                busy = f" (other work: {share:.0%} of the CPUs)" if share and share >= 0.01 else ""
                progress(f"  run {r + 1}/{repeat} {impl}: {entry['runs'][-1]:.3f} s{busy}")
    for entry in results.values():
        entry["median"] = statistics.median(entry["runs"]) if entry["runs"] else None
    for impl, weights in trained.items():
        if impl != "ref" and "ref" in trained:
            results[impl]["weights_off_by"] = weights_off_by(weights, trained["ref"])
            progress(f"  {impl}'s weights off the loop's by {results[impl]['weights_off_by']:.1e}")
    return results


def weights_off_by(weights, reference) -> float:
    """How far a run's final weights are from the loop's: the largest difference in any
    array, over that array's largest entry (a faster run that trained something else
    shows here; float32 runs of some hundred steps agree to about 1e-5)."""
    worst = 0.0
    for mine, theirs in zip(weights, reference, strict=True):
        for a, b in zip(mine, theirs, strict=True):
            scale = float(np.max(np.abs(b))) or 1.0
            worst = max(worst, float(np.max(np.abs(a.astype(np.float64) - b))) / scale)
    return worst


def progress(text):
    print(text, file=sys.stderr, flush=True)


# --- peak memory ---------------------------------------------------------------------


def memory_method(impl, ctx) -> str:
    if impl == "ref":
        return "tracemalloc" if ctx.xp is np else "cupy-pool"
    if ctx.backend.startswith("torch:cuda"):
        return "torch-cuda"
    if ctx.backend.startswith("torch"):
        raise Unavailable("tracemalloc does not see torch's CPU allocator")
    return "cupy-pool" if ctx.gpu else "tracemalloc"


class PeakBytes:
    """The bytes a run holds from CuPy's memory pool, and the most it held: CuPy calls
    these for every block taken from the pool and given back (its MemoryHook API)."""

    name = "benchmarks-peak-bytes"

    def __init__(self):
        self.held = self.peak = 0

    def malloc_postprocess(self, *, mem_size, mem_ptr, **_):
        if mem_ptr:  # 0: the allocation failed
            self.held += mem_size
            self.peak = max(self.peak, self.held)

    def free_postprocess(self, *, mem_size, **_):
        self.held -= mem_size  # below 0 where the run frees what was there before it


def peak_bytes(train, method, ctx) -> int:
    """Peak memory that train() allocates above what was allocated before it."""
    ctx.sync()
    if method == "tracemalloc":
        tracemalloc.start()
        try:
            train()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    if method == "cupy-pool":
        # the pool's growth misses what it serves from chunks it already holds (0 bytes
        # for a conv net's 5.8 MB of columns): count what the run takes from it instead
        with type("PoolPeak", (PeakBytes, ctx.xp.cuda.MemoryHook), {})() as peak:
            train()
            ctx.sync()
        return peak.peak
    import torch

    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    train()
    ctx.sync()
    return torch.cuda.max_memory_allocated() - before


def measure_memory(wl, data, ctx) -> dict:
    """One extra untimed run each of the reference and nnbackend, under a tracker."""
    memory = {}
    for impl in ("ref", "nnbackend"):

        def run(impl=impl):
            method = memory_method(impl, ctx)
            return {
                "bytes": peak_bytes(PREPARE[impl](wl, data, ctx), method, ctx),
                "method": method,
            }

        value, why = attempt(f"workload {wl.number} {impl} memory", run)
        memory[impl] = value if why is None else {"status": why}
    return memory


def count_transfers(wl, data, ctx) -> dict:
    """Device-to-host transfers in one more (untimed) nnbackend run: the goal is none per
    step, only the ones fit makes when it logs."""

    def run():
        import nnbackend as nb

        train = prepare_nnbackend(wl, data, ctx)
        with nb.count_host_transfers() as transfers:
            train()
        return {"count": transfers.count, "steps": wl.steps}

    value, why = attempt(f"workload {wl.number} nnbackend transfers", run)
    return value if why is None else {"status": why}


def count_launches(wl, data, ctx) -> dict:
    """Kernels (GPU) or operators (CPU) per step, from torch's profiler, of nnbackend
    and torch autograd (and the CuPy loop, on a CuPy run): benchmarks/launches.py."""
    from benchmarks import launches

    found = {}
    for impl in (i for i in launches.impls_for(ctx) if i not in ctx.skip):

        def run(impl=impl):
            why = launches.why_not_counted(ctx)
            if why is not None:
                raise Unavailable(why)
            counted = launches.launches_per_step(PREPARE[impl], wl, data, ctx)
            if counted["per_step"] <= 0:  # a profiler that missed another library's kernels
                raise Unavailable("torch's profiler saw no kernels of this run")
            what = "kernels" if ctx.torch_device == "cuda" else "computing aten operators"
            return {**counted, "what": what}

        value, why = attempt(f"workload {wl.number} {impl} launches", run)
        found[ctx.ref if impl == "ref" else impl] = value if why is None else {"status": why}
    return found


def run_workload(wl, data, ctx, repeat: int, quick: bool, quiet_wait: float = 0) -> dict:
    progress(f"workload {wl.number}: {wl.title} ({data.note})")
    result = {
        "workload": wl.number,
        "title": wl.title,
        "data": data.note,
        "sizes": list(wl.sizes),
        "dtype": wl.dtype,
        "batch_size": wl.batch_size,
        "n_samples": wl.n_samples,
        "steps": wl.steps,
        "commit": report.commit(),  # per row: a recorded set may gather rows of several
        "times": time_workload(wl, data, ctx, repeat, quick, quiet_wait),
    }
    result["times"][ctx.ref] = result["times"].pop("ref")
    result["host_transfers"] = count_transfers(wl, data, ctx)
    result["launches"] = count_launches(wl, data, ctx)
    if wl.number in MEMORY_WORKLOADS:
        result["peak_memory"] = measure_memory(wl, data, ctx)
        result["peak_memory"][ctx.ref] = result["peak_memory"].pop("ref")
    return result
