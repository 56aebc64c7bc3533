"""Which kernels NumPy's BLAS runs, against what the CPU can run.

OpenBLAS picks its kernels from the CPU's model when it loads, unless
``OPENBLAS_CORETYPE`` names them; a model it does not know gets older ones (AMD's
Zen 5 was one until OpenBLAS fixed its detection: OpenMathLib/OpenBLAS#6029). A machine
that sets ``OPENBLAS_CORETYPE=Haswell`` for all its programs (the same results on
every x86 CPU with AVX2) holds a CPU with AVX-512 to AVX2 kernels: on a 2-core AMD
EPYC (Zen 4) a 200 x 784 x 256 float32 product took 0.63 ms on one thread that way, and
0.35 ms with OpenBLAS's own choice (SkylakeX kernels), in one session; 0.73 and 0.77 ms
in another, with other work on the machine. The variable only counts before
NumPy loads, so nothing here changes it: ``nnbackend info`` says when the CPU has
kernels that OpenBLAS does not use (``blas_advice``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

AVX512 = frozenset({"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"})
AVX2 = frozenset({"avx", "avx2", "fma"})

# OpenBLAS's x86 kernel sets (its core names, lower case) by the instructions they use:
# 3 AVX-512, 2 AVX2, 1 AVX, 0 older. A name not listed gets no advice.
KERNEL_LEVELS = {
    **dict.fromkeys(("skylakex", "cooperlake", "sapphirerapids"), 3),
    **dict.fromkeys(("haswell", "zen"), 2),
    **dict.fromkeys(("sandybridge", "bulldozer", "piledriver", "steamroller", "excavator"), 1),
    **dict.fromkeys(("prescott", "core2", "penryn", "dunnington", "nehalem", "barcelona"), 0),
}
CORETYPE_FOR = {3: "SkylakeX", 2: "Haswell"}
GAIN = "on an AMD EPYC its float32 products took 0.55x to 1.05x the time: time both here"


def blas_pools() -> list[dict]:
    """threadpoolctl's description of each BLAS loaded now (library, version, threads,
    and for OpenBLAS the kernels it chose: ``architecture``)."""
    from threadpoolctl import threadpool_info

    return [pool for pool in threadpool_info() if pool.get("user_api") == "blas"]


def describe_blas(pools: list[dict] | None = None) -> str:
    """e.g. "openblas 0.3.31, Haswell kernels"; the BLAS libraries loaded now."""
    pools = blas_pools() if pools is None else pools
    described = []
    for pool in pools:
        text = f"{pool['internal_api']} {pool.get('version') or ''}".strip()
        if pool.get("architecture"):
            text += f", {pool['architecture']} kernels"
        if text not in described:
            described.append(text)
    return "; ".join(described) or "none loaded"


def cpu_flags() -> frozenset[str]:
    """The instruction sets the CPU reports (Linux's /proc/cpuinfo; empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def blas_advice(
    pools: list[dict] | None = None,
    flags: frozenset[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> str | None:
    """A sentence saying how to give OpenBLAS the kernels of the CPU's own instruction
    set where it runs older ones (and why it does); None where it does not."""
    pools = blas_pools() if pools is None else pools
    flags = cpu_flags() if flags is None else flags
    forced = (os.environ if environ is None else environ).get("OPENBLAS_CORETYPE")
    cpu = 3 if AVX512 <= flags else 2 if AVX2 <= flags else 0
    for pool in pools:
        chosen = KERNEL_LEVELS.get(str(pool.get("architecture")).lower())
        if pool.get("internal_api") == "openblas" and chosen is not None and chosen < cpu:
            library = " ".join(filter(None, ("OpenBLAS", pool.get("version"))))
            kind = "AVX-512" if cpu == 3 else "AVX2"
            why = f" (OPENBLAS_CORETYPE={forced} is set)" if forced else ""
            return (
                f"{library} runs its {pool['architecture']} kernels on a CPU with {kind}{why}: "
                f"start Python with OPENBLAS_CORETYPE={CORETYPE_FOR[cpu]} for its {kind} "
                f"kernels ({GAIN})"
            )
    return None
