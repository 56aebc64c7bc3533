"""A CUDA graph's semantics on torch's CPU, at the level of its operators (aten), for
the replay tests.

Recording runs the step once under a ``TorchDispatchMode`` that keeps every operator
with the very tensors it read and wrote. A replay runs those operators again on those
tensors and none of the step's Python: Python numbers stay as recorded, an operator
that wrote in place writes again, and one that made a new tensor has its result
copied into the recorded one, as a graph writes into the memory it was recorded with.
Operators that would wait for the GPU (``item``, ``bool`` of a tensor, ``nonzero``
and the others whose output size the data decides) or copy host data to it (a tensor
made from a Python number) while recording are noted, since a real recording refuses
them; so are reads of a tensor as NumPy (``numpy()``, ``tolist()``, ``__array__``),
which on the CPU go through no operator."""

from __future__ import annotations

import contextlib
import traceback

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

#: operators that read a device value on the host: a sync, refused while recording (the
#: last ones size their output by the data, which the host must wait to learn)
SYNCS = {
    "aten::_local_scalar_dense", "aten::item", "aten::is_nonzero", "aten::equal",
    "aten::nonzero", "aten::masked_select", "aten::_unique2", "aten::unique_dim",
    "aten::unique_consecutive", "aten::repeat_interleave",
}  # fmt: skip
#: Tensor methods that hand its data to the host without an operator on a CPU
HOST_READS = ("numpy", "tolist", "__array__")
#: operators that make a tensor from host data: a copy to the GPU while recording
FROM_HOST = {"aten::lift_fresh", "aten::lift_fresh_copy", "aten::lift", "aten::scalar_tensor"}


def _tensors(tree) -> list:
    return [t for t in tree_flatten(tree)[0] if isinstance(t, torch.Tensor)]


def _storage(t):
    try:
        return t.untyped_storage().data_ptr()
    except RuntimeError:
        return None


class _Operators(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops, self.refused = [], []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = func._schema.name
        if name in SYNCS or name in FROM_HOST:
            self.refused.append((name, "".join(traceback.format_stack(limit=10)[:-2])))
        schema = [*func._schema.arguments, *func._schema.returns]
        writes = any(a.alias_info is not None and a.alias_info.is_write for a in schema)
        reads = {_storage(t) for t in _tensors((args, kwargs))}
        made = _tensors(out)
        view = not writes and made and all(_storage(t) in reads for t in made)
        if name not in SYNCS and not view:  # a view follows its base by itself
            self.ops.append((func, args, kwargs, made if not writes else None))
        return out


@contextlib.contextmanager
def _noting_host_reads(refused: list):
    """``HOST_READS`` noted in ``refused`` (and done) while the block runs."""
    originals = {name: getattr(torch.Tensor, name) for name in HOST_READS}

    def noting(name, original):
        def read(self, *args, **kwargs):
            refused.append((f"Tensor.{name}", "".join(traceback.format_stack(limit=10)[:-1])))
            return original(self, *args, **kwargs)

        return read

    for name, original in originals.items():
        setattr(torch.Tensor, name, noting(name, original))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


class AtenRecording:
    """``warm``, ``record`` and ``replay`` as ``nnbackend.backend.replay.CudaGraph``
    has them; ``refused``: the syncs and host copies seen while recording."""

    def __init__(self):
        self.calls = {"warm": 0, "record": 0, "replay": 0}
        self.refused = []
        self._operators = None

    def warm(self, step, xb, yb):
        self.calls["warm"] += 1
        return step(xb, yb)

    def record(self, step, xb, yb):
        self.calls["record"] += 1
        self._operators = _Operators()
        with self._operators, _noting_host_reads(self._operators.refused):
            outputs = step(xb, yb)
        self.refused = self._operators.refused
        return outputs

    def replay(self) -> None:
        self.calls["replay"] += 1
        for func, args, kwargs, made in self._operators.ops:
            new = func(*args, **kwargs)
            if made is not None:
                for recorded, result in zip(made, _tensors(new), strict=True):
                    recorded.copy_(result)
