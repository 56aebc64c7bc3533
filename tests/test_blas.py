"""``nnbackend info``'s BLAS line: which kernels OpenBLAS runs, and the
``OPENBLAS_CORETYPE`` that gives a CPU its own instruction set's kernels where it runs
older ones (a CPU it does not know, or the variable set to older ones)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from nnbackend.__main__ import info
from nnbackend.backend.blas import AVX2, AVX512, blas_advice, cpu_flags, describe_blas

OPENBLAS = {"user_api": "blas", "internal_api": "openblas", "version": "0.3.31"}
BASIC = frozenset({"fpu", "sse", "sse2"})


def pool(architecture: str, **extra) -> dict:
    return {**OPENBLAS, "architecture": architecture, **extra}


@pytest.mark.parametrize(
    "architecture, flags, coretype",
    [
        ("Haswell", AVX512 | AVX2 | BASIC, "SkylakeX"),  # a Zen 4 EPYC held to Haswell kernels
        ("Zen", AVX512 | AVX2, "SkylakeX"),
        ("Prescott", AVX2 | BASIC, "Haswell"),  # an AMD it does not know at all
        ("Sandybridge", AVX2, "Haswell"),
    ],
)
def test_older_kernels_than_the_cpu_runs_get_the_coretype_that_matches_it(
    architecture, flags, coretype
):
    advice = blas_advice([pool(architecture)], flags, environ={})
    assert f"start Python with OPENBLAS_CORETYPE={coretype} for its" in advice
    assert advice.startswith(f"OpenBLAS 0.3.31 runs its {architecture} kernels on a CPU with")


def test_a_coretype_set_in_the_environment_is_named_as_the_reason():
    advice = blas_advice([pool("Haswell")], AVX512 | AVX2, {"OPENBLAS_CORETYPE": "Haswell"})
    assert advice.startswith(
        "OpenBLAS 0.3.31 runs its Haswell kernels on a CPU with AVX-512 "
        "(OPENBLAS_CORETYPE=Haswell is set): start Python with OPENBLAS_CORETYPE=SkylakeX"
    )


@pytest.mark.parametrize(
    "pools, flags",
    [
        ([pool("SkylakeX")], AVX512 | AVX2),  # already the CPU's own
        ([pool("Cooperlake")], AVX512 | AVX2),
        ([pool("Haswell")], AVX2 | BASIC),  # AVX2 kernels on an AVX2 CPU
        ([pool("Haswell")], AVX2 | {"avx512f"}),  # AVX-512 in part: SkylakeX needs more
        ([pool("NeoverseN1")], frozenset({"asimd"})),  # not x86: a name not listed
        ([pool("Prescott")], BASIC),  # a CPU without AVX2
        ([{"user_api": "blas", "internal_api": "mkl", "version": "2025"}], AVX512 | AVX2),
        ([], AVX512 | AVX2),
    ],
)
def test_no_advice_where_the_kernels_are_the_cpus_best_or_unknown(pools, flags):
    assert blas_advice(pools, flags, environ={}) is None


def test_the_first_openblas_with_older_kernels_is_named():
    pools = [pool("SkylakeX"), pool("Haswell", version="0.3.27")]
    advice = blas_advice(pools, AVX512 | AVX2, environ={})
    assert advice.startswith("OpenBLAS 0.3.27 runs its Haswell")


def test_description_names_each_library_and_its_kernels_once():
    mkl = {"user_api": "blas", "internal_api": "mkl", "version": "2025.0"}
    pools = [pool("Haswell"), pool("Haswell"), mkl]
    assert describe_blas(pools) == "openblas 0.3.31, Haswell kernels; mkl 2025.0"
    assert describe_blas([]) == "none loaded"


def test_info_shows_the_blas_line_and_the_advice_where_there_is_one():
    shown = info()
    assert f"BLAS: {describe_blas()}" in shown
    advice = blas_advice()
    if advice is None:
        assert "OPENBLAS_CORETYPE" not in shown
    else:
        assert f"\n  {advice}" in shown


@pytest.mark.skipif(not AVX512 <= cpu_flags(), reason="a CPU with AVX-512")
def test_the_advised_variable_gives_openblas_the_avx512_kernels():
    """Run where it matters: the variable changes what a fresh NumPy's OpenBLAS runs."""
    code = "import numpy; from nnbackend.backend.blas import *; print(describe_blas())"
    env = {**os.environ, "OPENBLAS_CORETYPE": "SkylakeX"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    if "openblas" not in out.stdout:
        pytest.skip(f"NumPy's BLAS is not OpenBLAS here: {out.stdout.strip()}")
    assert "SkylakeX kernels" in out.stdout
