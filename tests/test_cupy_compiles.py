"""Every kernel of ``kernels_cupy.ELEMENTWISE`` in the CUDA source CuPy's own
``ElementwiseKernel`` generates for it, for calls of the kinds ``VARIANTS`` lists,
compiled by NVRTC with CuPy's headers and options for an H100/H200 (sm_90), on a
machine with no GPU. The host build (``test_cupy_sources.py``) checks the kernels'
arithmetic as C with T = double; this checks what only CUDA C++ sees: float32 and
float64 (CUDA's ``max(x, 0)`` is ambiguous, for one), labels of any integer type,
CuPy's ``CArray`` indexing of raw and broadcast arrays, either index width, and the
types CuPy gives scalars. Needs CuPy and NVRTC, not a GPU:

    pip install -e ".[test,cuda-compile]"     # cupy-cuda13x, NVIDIA's NVRTC and headers

The generator and the compiler options are CuPy's internals (CuPy 14), called as a
kernel's first call on a GPU calls them; where they have moved, this fails and says so.
What it cannot see: another NVRTC or header version on the GPU's machine, a call's
types or shapes refused at run time, launch resources.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest

from nnbackend.backend import kernels_cupy

cupy = pytest.importorskip("cupy", reason="CuPy is not installed")

C_TYPES = {"float32": "float", "float64": "double"}
ARCH = "90"  # Hopper: the H100/H200 that the GPU runs use
NDARRAY, INDEXER, SCALAR = 1, 2, 3  # CuPy's _ArgKind (cupy/_core/_kernel.pxd)


class Variant(NamedTuple):
    """How a kernel is called: the dtypes of T and L (the labels' integers), whether
    plain inputs of T are Python numbers, the rank of raw arrays, 32-bit indexing, and
    whether plain arrays broadcast (a row max (n, 1) against (n, k): CuPy keeps such
    calls 2-D, with a stride of 0) or are flattened to 1-D as contiguous ones are."""

    T: str
    L: str
    scalars: bool
    raw_rank: int
    index_32_bits: bool
    broadcast: bool


# between them: both float dtypes, labels of several integer types, arrays and
# scalars, flat and 4-D raw arrays, both index widths, flat and broadcast calls
VARIANTS = [
    Variant("float32", "int64", False, 1, True, False),
    Variant("float32", "int32", True, 4, False, True),
    Variant("float64", "uint8", False, 4, True, True),
    Variant("float64", "int64", True, 1, False, False),
]


@pytest.fixture(scope="module")
def cupy_internals():
    """CuPy's kernel generator, argument records, headers and compiler options."""
    try:
        from cupy._core import _carray, _kernel, _scalar, core
        from cupy.cuda import compiler

        parts = (_kernel._ArgInfo, _kernel._get_elementwise_kernel_code, _carray.Indexer)
        parts += (_scalar.CScalar, core._cupy_header_list, core.assemble_cupy_compiler_options)
        parts += (compiler.compile_using_nvrtc, compiler._get_arch_for_options_for_nvrtc)
    except (ImportError, AttributeError) as error:
        pytest.fail(f"CuPy {cupy.__version__} generates kernels elsewhere than CuPy 14: {error}")
    try:
        cupy.cuda.nvrtc.getVersion()
    except Exception as error:  # the library loads on first use
        pytest.skip(f"NVRTC not found ({error}); pip install nvidia-cuda-nvrtc")
    return _kernel, _carray, _scalar, core, compiler


@pytest.fixture
def nvrtc(cupy_internals, monkeypatch):
    """``nvrtc(source)``: the cubin NVRTC makes of a kernel's source as CuPy's first call
    on the GPU would (CuPy's headers, options and flush-to-zero), for sm_90."""
    _, _, _, core, compiler = cupy_internals
    # CuPy asks the GPU for its architecture; there is none to ask here
    monkeypatch.setattr(
        compiler, "_get_arch_for_options_for_nvrtc", lambda arch=None: (f"-arch=sm_{arch}", "cubin")
    )
    headers = "".join(f"#include <{name}>\n" for name in core._cupy_header_list)
    options = core.assemble_cupy_compiler_options(()) + ("-ftz=true",)

    def compile_(source: str) -> bytes:
        cubin, _ = compiler.compile_using_nvrtc(headers + source, options, arch=ARCH)
        return cubin

    return compile_


def generated_source(internals, name: str, body: str, how: Variant) -> str:
    """The source CuPy generates for ``ELEMENTWISE[name]``, its body ``body``, called as
    ``how`` says."""
    _kernel, _carray, _scalar, _, _ = internals
    inputs, outputs, _ = kernels_cupy.ELEMENTWISE[name]
    kernel = cupy.ElementwiseKernel(inputs, outputs, body, f"nnb_{name}")
    placeholders = {"T": np.dtype(how.T), "L": np.dtype(how.L)}

    def is_scalar(param):
        return param.dtype is not None or (how.scalars and not param.raw and param.ctype == "T")

    given = [None if is_scalar(p) else placeholders[p.ctype] for p in kernel.in_params]
    made = [placeholders[p.ctype] if p.dtype is None else p.dtype for p in kernel.out_params]
    in_types, out_types, type_map = kernel._decide_params_type(tuple(given), tuple(made))
    plain_rank = 2 if how.broadcast else 1
    records = []
    for param, kind, dtype in zip(
        kernel.in_params + kernel.out_params, given + made, in_types + out_types, strict=True
    ):
        if kind is None:
            records.append(_kernel._ArgInfo(SCALAR, _scalar.CScalar, np.dtype(dtype), 0, 1, 1))
        elif param.raw:
            array = (NDARRAY, cupy.ndarray, np.dtype(dtype), how.raw_rank, 1, how.index_32_bits)
            records.append(_kernel._ArgInfo(*array))
        else:
            contiguous = not how.broadcast
            array = (
                NDARRAY,
                cupy.ndarray,
                np.dtype(dtype),
                plain_rank,
                contiguous,
                how.index_32_bits,
            )
            records.append(_kernel._ArgInfo(*array))
    indexer = (INDEXER, _carray.Indexer, None, plain_rank, 1, how.index_32_bits)
    records.append(_kernel._ArgInfo(*indexer))
    return _kernel._get_elementwise_kernel_code(
        tuple(records), type_map, kernel.params, kernel.operation, kernel.name, kernel.preamble
    )


@pytest.mark.parametrize("how", VARIANTS, ids=lambda v: "-".join(map(str, v)))
@pytest.mark.parametrize("name", sorted(kernels_cupy.ELEMENTWISE))
def test_every_kernel_compiles_for_the_gpu(cupy_internals, nvrtc, name, how):
    source = generated_source(cupy_internals, name, kernels_cupy.ELEMENTWISE[name][2], how)
    assert f"typedef {C_TYPES[how.T]} T;" in source
    cubin = nvrtc(source)
    assert f"nnb_{name}".encode() in cubin  # the kernel CuPy will look up by name


def test_a_body_only_cuda_refuses_fails_here(cupy_internals, nvrtc):
    """CUDA's ``max`` has overloads for (float, float), (double, double) and (int, int),
    so ``max(x, 0)`` matches none best: the check above catches such bodies."""
    source = generated_source(cupy_internals, "sigmoid", "y = max(x, 0)", VARIANTS[0])
    with pytest.raises(cupy.cuda.compiler.CompileException, match="more than one instance"):
        nvrtc(source)
