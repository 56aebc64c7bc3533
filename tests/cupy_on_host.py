"""CuPy's kernels run on the host, for machines without a GPU: each body of
``nnbackend.backend.kernels_cupy.ELEMENTWISE`` compiled by the C compiler inside the
loop that a ``cupy.ElementwiseKernel`` runs on the GPU (one index ``i`` per output
element; a ``raw`` array, input or output, indexed by hand), with ``T`` = double and
``L`` (labels, the offsets max pooling finds) = int64; ``int32`` parameters are scalars.

    library = build(tmp_path)               # None where there is no C compiler
    kernel = HostKernel(library, "sgd")
    kernel(g, lr, p)                        # as CuPy calls it: inputs, then outputs

Inputs broadcast against each other and the outputs; outputs not given are made.
"""

from __future__ import annotations

import ctypes
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np

from nnbackend.backend.kernels_cupy import ELEMENTWISE

CC = shutil.which("cc") or shutil.which("gcc")
ARRAY_TYPES = {"T": "float64", "L": "int64"}  # the kernels' type placeholders, as here


def params(text: str) -> list[tuple[bool, str, str]]:
    """'raw T img, int32 h, T x' -> [(True, 'T', 'img'), (False, 'int32', 'h'), ...]"""
    found = []
    for param in text.split(","):
        *modifiers, kind, name = param.split()
        found.append(("raw" in modifiers, kind, name))
    return found


def c_function(name: str) -> str:
    """``ELEMENTWISE[name]`` as a C function of (n, inputs..., outputs...)."""
    inputs, outputs, body = ELEMENTWISE[name]
    args, loads, stores = ["ptrdiff_t n"], [], []
    for raw, kind, var in params(inputs):
        if kind not in ARRAY_TYPES:
            args.append(f"int {var}")
        elif raw:
            args.append(f"const {kind}* {var}")
        else:
            args.append(f"const {kind}* {var}_in")
            loads.append(f"const {kind} {var} = {var}_in[i];")
    for raw, kind, var in params(outputs):
        if raw:
            args.append(f"{kind}* {var}")
            continue
        args.append(f"{kind}* {var}_out")
        loads.append(f"{kind} {var} = {var}_out[i];")
        stores.append(f"{var}_out[i] = {var};")
    return (
        f"void nnb_{name}({', '.join(args)}) {{\n"
        f"  for (ptrdiff_t i = 0; i < n; ++i) {{\n"
        f"    {' '.join(loads)}\n    {{ {body}; }}\n    {' '.join(stores)}\n  }}\n}}\n"
    )


def build(directory: Path) -> ctypes.CDLL:
    """Every kernel of ELEMENTWISE compiled into one shared library in ``directory``."""
    source = directory / "kernels.c"
    source.write_text(
        "#include <math.h>\n#include <stdbool.h>\n#include <stddef.h>\n"
        "typedef double T;\ntypedef long long L;\n\n"
        + "\n".join(c_function(name) for name in ELEMENTWISE)
    )
    library = directory / "kernels.so"
    command = [CC, "-O2", "-Wall", "-shared", "-fPIC", "-o", str(library), str(source), "-lm"]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(command)}:\n{done.stderr}"
    return ctypes.CDLL(str(library))


class HostKernel:
    """``ELEMENTWISE[name]`` compiled for the host, called as CuPy calls its kernel."""

    def __init__(self, library: ctypes.CDLL, name: str):
        inputs, outputs, _ = ELEMENTWISE[name]
        self.inputs, self.outputs = params(inputs), params(outputs)
        self.function = getattr(library, f"nnb_{name}")

    def __call__(self, *args):
        given, outputs = args[: len(self.inputs)], list(args[len(self.inputs) :])
        self.check_as_cupy_would(given, outputs)
        inputs = zip(self.inputs, given, strict=True)
        spread = [a for (raw, kind, _), a in inputs if kind != "int32" and not raw]
        spread += [a for (raw, _, _), a in zip(self.outputs, outputs, strict=False) if not raw]
        shape = np.broadcast_shapes(*(np.shape(a) for a in spread))
        for _, kind, _ in self.outputs[len(outputs) :]:  # made here where not given
            outputs.append(np.empty(shape, ARRAY_TYPES[kind]))
        kept, call = [], [ctypes.c_ssize_t(math.prod(shape))]
        for (raw, kind, _), a in zip(self.inputs, given, strict=True):
            if kind not in ARRAY_TYPES:
                call.append(ctypes.c_int(a))
                continue
            a = a if raw else np.broadcast_to(a, shape)
            kept.append(np.ascontiguousarray(a, ARRAY_TYPES[kind]))
            call.append(ctypes.c_void_p(kept[-1].ctypes.data))
        for (raw, kind, _), out in zip(self.outputs, outputs, strict=True):
            assert out.dtype == ARRAY_TYPES[kind] and out.flags.c_contiguous
            assert raw or out.shape == shape
            call.append(ctypes.c_void_p(out.ctypes.data))
        self.function(*call)
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def check_as_cupy_would(self, given, outputs) -> None:
        """What CuPy's ElementwiseKernel refuses and this host run would take: some of
        the outputs, arrays of one placeholder in two dtypes (float32 weights with a
        float64 gradient), an int32 parameter past int32."""
        assert len(outputs) in (0, len(self.outputs)), "CuPy takes every output or none"
        dtypes: dict[str, set] = {}
        named = [*self.inputs, *self.outputs]
        for (_, kind, var), a in zip(named, [*given, *outputs], strict=False):  # or no outputs
            if kind == "int32":
                assert -(2**31) <= a < 2**31, f"{var}={a} is past int32"
            elif isinstance(a, np.ndarray):
                dtypes.setdefault(kind, set()).add(a.dtype)
        for kind, found in dtypes.items():
            assert len(found) == 1, f"{kind} given as {sorted(map(str, found))}: CuPy refuses"
