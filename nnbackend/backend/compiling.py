"""Capturing the training step (``fit(..., compile=True)``): as a CUDA graph on
torch:cuda where the step can be replayed (``nnbackend.backend.replay``), else with
``torch.compile``.

The step (forward, loss, backward, update) has fixed shapes within an epoch, so torch
can trace it once and run the traced graph after: fewer Python calls and, on a GPU,
fewer and fused kernels. Only torch tensors can be captured; the other backends say
so. ``compile=True`` uses torch's default compiler there (inductor, which needs a C++
compiler on a CPU and Triton on a GPU); a string names another torch.compile backend,
e.g. ``"aot_eager"`` (traced, no code generated: for checking that capture keeps the
numbers), and a function is used as one. ``"cuda-graph"`` is not torch.compile's: it
records the eager step once as a CUDA graph and replays it (``nnbackend.backend.replay``).

torch.compile's own CUDA graphs (``mode="reduce-overhead"``, the "cudagraphs" backend)
do not suit this step: they record a new graph for every value of an integer input,
and the optimizer's step count is one, which changes at every step.

torch.compile's capture is cached on the step's code: later fits, of this model or of
new ones of the same kind and rates, run the graphs already made. A CUDA graph is recorded
again at each fit.
"""

from __future__ import annotations

import collections
import types

from nnbackend.backend import replay
from nnbackend.backend.arrays import namespace_of
from nnbackend.backend.fastpaths import native
from nnbackend.backend.kernels import table


def compile_step(make_step, model, optimizer, how, *, loss=None, l2=None):
    """The step (``make_step(flat)``: ``model``'s with ``loss`` and ``l2``, updating
    with ``optimizer``) as ``fit``'s ``compile`` option asks: itself for False; recorded
    and replayed for "cuda-graph", and for True where it can be (torch on CUDA: README's
    benchmarks show why); else captured by torch.compile for True or a torch.compile
    backend (its name or the function)."""
    if how is False:
        return make_step(flat=True)
    backend = model.backend
    if how == replay.CUDA_GRAPH:
        recorder = replay.recorder_for(backend)
        replay.check_replayable(model, optimizer)
        return replay.ReplayedStep(make_step(flat=True), model, optimizer, recorder)
    if how is True and replay.records_here(backend, model, optimizer):
        recorder = replay.recorder_for(backend)
        return replay.ReplayedStep(make_step(flat=True), model, optimizer, recorder, chosen=True)
    stochastic = any(layer.stochastic for layer in model.layers)
    if not (how is True or isinstance(how, str) or callable(how)):
        raise TypeError(
            f"compile must be True, False, {replay.CUDA_GRAPH!r} or a torch.compile backend (its "
            f"name or the function), not {how!r}"
        )
    if backend.name.split(":")[0] != "torch":
        raise ValueError(
            f"compile={how!r} captures the step with torch.compile, which takes torch tensors: "
            f"build the model on the torch backend (backend='torch' or 'torch:cuda'), "
            f"not {backend.name!r}, or leave compile off"
        )
    if how in (True, "inductor") and stochastic and backend.device.type == "cpu":
        raise ValueError(
            f"compile={how!r} with a layer that draws random numbers (Dropout): torch's "
            "inductor did not finish compiling the counter-based draws on a CPU (still "
            "at it after 14 minutes, torch 2.13). compile='aot_eager' captures the same "
            "step and keeps its numbers; or leave compile off"
        )
    import torch

    if not hasattr(torch, "compile"):
        raise ValueError(
            f"torch {torch.__version__} has no torch.compile: torch 2 or later needs it"
        )
    table(backend.xp)  # made now, so the capture only reads it (the same for:)
    native("take", backend.xp)  # the fast paths' library, found once per namespace
    # namespace_of's cache too: array_api_compat finds a namespace through lru_caches,
    # and torch.compile warns at each one it traces
    namespace_of(backend.asarray(0.0))
    options = {} if how is True else {"backend": how}
    # inductor fuses the per-weight updates itself; and with views into the flat buffer
    # it (torch 2.13) generates code that fails once a second model's shapes make the
    # step's shapes symbolic. Shapes and counts (Adam's step) that change become
    # symbolic after one recompile.
    step = make_step(flat=False)
    return torch.compile(_with_code_of_its_kind(step, _kind(model, loss, optimizer, l2)), **options)


# torch.compile keeps its captures on the code object, at most
# torch._dynamo.config.recompile_limit (8) of them, and every model's step has the same
# code: past about four kinds of model, later fits ran eagerly with no word but a log
# line. Each kind's steps get a code object of their own. A kind is what the capture is
# specialised on: the layers, loss and optimizer with their settings (a conv layer's
# stride, a loss's reduction, a bias or none, the widths), the dtype, L2 on or off, and
# the floats among them (rates, L2's strength): torch's compilers (aot_eager, inductor)
# check a float read off an object as the number it is, so a grid search's rates each
# make captures of their own. The last KINDS_KEPT kinds keep theirs.
KINDS_KEPT = 64
_CODE_OF_KIND: collections.OrderedDict = collections.OrderedDict()


def _kind(model, loss, optimizer, l2) -> tuple:
    layers = tuple(_settings(layer) for layer in model.layers)
    backend = model.backend
    return (backend.name, backend.dtype_name, layers, _settings(loss), _settings(optimizer),
            None if l2 is None else l2.reg_lambda)  # fmt: skip


def _settings(part) -> tuple:
    """``part``'s type and its config, hashable."""
    try:
        config = part.config() if hasattr(part, "config") else {}
    except TypeError:  # an optimizer whose rate is a plain function has no config
        config = {}
    return type(part), _frozen(config)


def _frozen(value):
    if isinstance(value, dict):  # a schedule's config is a dict within the optimizer's
        return tuple(sorted((key, _frozen(v)) for key, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


def _with_code_of_its_kind(step, kind):
    """``step`` as a function whose code object is the one of its ``kind``."""
    code = _CODE_OF_KIND.pop(kind, None) or step.__code__.replace()
    _CODE_OF_KIND[kind] = code  # the most recent last
    if len(_CODE_OF_KIND) > KINDS_KEPT:  # a forgotten code object frees its captures
        _CODE_OF_KIND.popitem(last=False)
    return types.FunctionType(
        code, step.__globals__, step.__name__, step.__defaults__, step.__closure__
    )
