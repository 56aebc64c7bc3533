"""Operations launched per training step, for nnbackend and torch autograd, counted by
torch's profiler: on a GPU the CUDA kernels (and copies) it ran, on a CPU the aten
operators dispatched from Python (an operator's own sub-operators not counted again).

Each count is the difference between a long run and a short one, divided by the
steps between them, so what a fit does once (moving the shuffling order, reading the
loss) drops out: 2 and 6 batches of one epoch, or 40 and 80 full-batch epochs, which
``fit`` logs equally often (20 times, and the last). Runs only where nnbackend runs on torch (the
NumPy and CuPy backends have no such profiler: their column says n/a).
"""

from __future__ import annotations

import dataclasses

MINI_BATCH_STEPS = (2, 6)
FULL_BATCH_STEPS = (40, 80)
IMPLS = ("nnbackend", "torch-autograd")


def steps_of(wl, steps: int):
    """``wl`` cut to ``steps`` training steps."""
    if wl.batch_size is None:
        return dataclasses.replace(wl, epochs=steps)
    return dataclasses.replace(wl, epochs=1, n_samples=min(wl.n_samples, steps * wl.batch_size))


def count_events(profile, cuda: bool) -> int:
    """CUDA kernels and copies on a GPU; top-level aten operators on a CPU."""
    import torch

    events = profile.events()
    if cuda:
        return sum(1 for e in events if e.device_type == torch.autograd.DeviceType.CUDA)
    return sum(
        1
        for e in events
        if e.name.startswith("aten::")
        and (e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::"))
    )


def profiled_count(prepare, wl, data, ctx) -> int:
    import torch
    from torch.profiler import ProfilerActivity, profile

    cuda = ctx.torch_device == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    train = prepare(wl, data.head(wl.n_samples), ctx)
    ctx.sync()
    with profile(activities=activities) as prof:
        train()
        if cuda:
            torch.cuda.synchronize()
    return count_events(prof, cuda)


def launches_per_step(prepare, wl, data, ctx) -> float:
    """Operations per step of one implementation (``prepare`` as harness.PREPARE's)."""
    steps = FULL_BATCH_STEPS if wl.batch_size is None else MINI_BATCH_STEPS
    short, long = (steps_of(wl, n) for n in steps)
    counts = [profiled_count(prepare, w, data, ctx) for w in (short, long)]
    return (counts[1] - counts[0]) / (long.steps - short.steps)
