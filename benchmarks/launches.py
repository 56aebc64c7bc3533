"""Operations launched per training step, counted by torch's profiler: on a GPU the
CUDA kernels (and copies) it ran, on a CPU the aten operators dispatched from Python
(an operator's own sub-operators not counted again).

On a CPU a view (a transpose, a reshape that copies nothing, a detach) is no work, and
torch autograd's step holds many: views are counted apart (``views_per_step``), and
``per_step`` is the operators that compute. Under ``fit(compile=...)``, inductor's
fused kernels are no aten operators: the count is what the step still dispatches
outside them (matrix products, the logged accuracy).

Each count is the difference between a long run and a short one, divided by the
steps between them, so what a fit does once (moving the shuffling order, reading the
loss) drops out: 2 and 6 batches of one epoch, or 40 and 80 full-batch epochs, which
``fit`` logs equally often (20 times, and the last).

Counted: nnbackend and torch autograd where nnbackend runs on torch; on a CuPy run with
torch's CUDA build beside it, nnbackend on CuPy, the CuPy loop and torch autograd (the
profiler reads the GPU's own record of the kernels it ran, whichever library launched
them). The NumPy backend has no such count (n/a). The JSON keeps the counts by name too
(``launches[impl]["by_name"]``).
"""

from __future__ import annotations

import dataclasses
from collections import Counter

MINI_BATCH_STEPS = (2, 6)
FULL_BATCH_STEPS = (40, 80)
IMPLS = ("nnbackend", "torch-autograd")
NAME_CHARS = 160  # of a kernel's name: C++ templates' run to thousands
CUPY_IMPLS = ("ref", "nnbackend", "torch-autograd")  # "ref": the CuPy loop


def impls_for(ctx) -> tuple[str, ...]:
    return CUPY_IMPLS if ctx.backend == "cupy" else IMPLS


def why_not_counted(ctx) -> str | None:
    """None where torch's profiler can count this run's launches, else the reason."""
    if ctx.backend.startswith("torch"):
        return None if ctx.torch_device is not None else "torch is not installed"
    if ctx.backend == "cupy" and ctx.torch_device == "cuda":
        return None
    if ctx.backend == "cupy":
        return "counted with torch's profiler: install torch's CUDA build beside CuPy"
    return "counted with torch's profiler: run --backend torch"


def steps_of(wl, steps: int):
    """``wl`` cut to ``steps`` training steps."""
    if wl.batch_size is None:
        return dataclasses.replace(wl, epochs=steps)
    return dataclasses.replace(wl, epochs=1, n_samples=min(wl.n_samples, steps * wl.batch_size))


# aten operators that make a view of their input: no kernel, no arithmetic
VIEWS = frozenset(
    "aten::" + name
    for name in (
        "t", "transpose", "permute", "view", "_unsafe_view", "reshape", "_reshape_alias",
        "flatten", "unflatten", "squeeze", "unsqueeze", "expand", "expand_as", "view_as",
        "as_strided", "slice", "select", "narrow", "alias", "detach", "lift_fresh",
        "numpy_T", "unbind", "split", "chunk", "diagonal",
    )
)  # fmt: skip


def is_view(event) -> bool:
    """An operator that only made a view: a view's name, and every aten operator it
    called a view too (a reshape of a strided array calls a copy: that counts)."""
    return event.name in VIEWS and all(
        is_view(child) for child in event.cpu_children if child.name.startswith("aten::")
    )


def counted_events(profile, cuda: bool) -> tuple[Counter, Counter]:
    """By name: the CUDA kernels and copies on a GPU, and no views; on a CPU the
    top-level aten operators that compute, and apart, those that only made views."""
    import torch

    events = profile.events()
    if cuda:
        kernels = (e.name for e in events if e.device_type == torch.autograd.DeviceType.CUDA)
        return Counter(name[:NAME_CHARS] for name in kernels), Counter()
    top = [
        e
        for e in events
        if e.name.startswith("aten::")
        and (e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::"))
    ]
    views = [e for e in top if is_view(e)]
    computing = Counter(e.name[:NAME_CHARS] for e in top)
    computing.subtract(e.name[:NAME_CHARS] for e in views)
    return +computing, Counter(e.name for e in views)


def profiled_counts(prepare, wl, data, ctx) -> tuple[Counter, Counter]:
    from torch.profiler import ProfilerActivity, profile

    cuda = ctx.torch_device == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    train = prepare(wl, data.head(wl.n_samples), ctx)
    ctx.sync()
    with profile(activities=activities) as prof:
        train()
        ctx.sync()  # CuPy's kernels and torch's both finished inside the profile
    return counted_events(prof, cuda)


def launches_per_step(prepare, wl, data, ctx) -> dict:
    """Operations per step of one implementation (``prepare`` as harness.PREPARE's):
    ``per_step`` in all, ``by_name`` most first (which kernels one library launches
    that another does not), and ``views_per_step`` (a CPU's views, counted apart)."""
    steps = FULL_BATCH_STEPS if wl.batch_size is None else MINI_BATCH_STEPS
    short, long = (steps_of(wl, n) for n in steps)
    (few, few_views), (many, many_views) = (
        profiled_counts(prepare, w, data, ctx) for w in (short, long)
    )
    between = long.steps - short.steps
    by_name = {name: (many[name] - few[name]) / between for name in many | few}
    by_name = dict(sorted(((k, v) for k, v in by_name.items() if v), key=lambda kv: -kv[1]))
    return {
        "per_step": (many.total() - few.total()) / between,
        "by_name": by_name,
        "views_per_step": (many_views.total() - few_views.total()) / between,
    }
