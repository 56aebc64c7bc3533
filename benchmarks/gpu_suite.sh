#!/usr/bin/env bash
# Every GPU figure README.md gives, measured in parts of a few minutes each:
#
#   bash benchmarks/gpu_suite.sh PART [PART...]
#
#   tests     pytest -m gpu, then the whole fast suite (CuPy and torch:cuda included)
#   gpu-tests the GPU tests alone, with the CUDA graph's, the docs' and NVRTC's (minutes)
#   launches  CuPy's workloads 2, 4 and 6 beside torch autograd: times and kernels per step,
#             by name (torch by hand and the GEMM floor left out) -> cupy-launches.json
#   cupy      the benchmark on CuPy, workloads 2-6               -> gpu.json
#   moons     workload 1 on CuPy (20000 tiny steps), added to gpu.json
#   torch     the benchmark on torch:cuda, eager, workloads 2-6   -> torch-cuda.json
#   torch-moons  workload 1 on torch:cuda, added to torch-cuda.json
#   graph     torch:cuda with the step recorded as a CUDA graph (fit(compile=True) there)
#             beside the eager fit, workloads 2, 5, 6 (torch by hand and the GEMM
#             floor left out)                                 -> torch-cuda-graph.json
#   graph-moons  the same on workload 1, one run of each     -> torch-cuda-graph-moons.json
#   inductor  the same with torch.compile's inductor, workloads 2, 5
#                                                            -> torch-cuda-inductor.json
#   sklearn   MLPClassifier beside scikit-learn's: NumPy, CuPy, torch:cuda -> sklearn-gpu.json
#   all       every part above but gpu-tests and launches (the tests part holds the GPU
#             tests; launches is a study of its own), in the order listed
#
# Results go to $RESULTS (default benchmarks/recorded), logs beside them. A part that
# adds to gpu.json reads the one already there, so `cupy` and `moons` may run in
# separate sessions of the same machine. Then `python -m benchmarks.readme_table`
# writes README's tables from the recorded files that have markers there.
#
# Time: on an H200 (2026-12-04) a workload took 35-50 s beside its timed runs (start,
# warm-ups, the launch and transfer counts), and each run of workload 1 13-20 s; the
# GPU tests took 45 s with pytest-xdist's -n 6. Fifteen minutes of a GPU hold the tests
# and about ten workloads. The JSON is written after every workload, so a part cut
# short by `timeout` keeps what it finished and a later session can --add the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
RESULTS=${RESULTS:-benchmarks/recorded}
REPEAT=${REPEAT:-3}
PYTHON=${PYTHON:-python3}
mkdir -p "$RESULTS"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

bench() {  # bench LOG ARGS...: one benchmark run, its output kept in $RESULTS/LOG
    local log=$1
    shift
    # a failed implementation exits 1 with the others' times kept: the part goes on
    "$PYTHON" -m benchmarks --repeat "$REPEAT" --quiet-wait 0 "$@" 2>&1 | tee "$RESULTS/$log" ||
        echo "gpu_suite: a run failed (its errors are in $RESULTS/$log)" >&2
}

part() {
    case $1 in
    tests)
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$RESULTS/gpu.txt"
        # a failing test is in the log; the measurements after it still run
        local workers=()  # pytest-xdist, where installed: 312 CuPy tests took 45 s on 6
        "$PYTHON" -c "import xdist" 2>/dev/null && workers=(-n 6)
        "$PYTHON" -m pytest -q -p no:cacheprovider "${workers[@]}" -rfE -m gpu 2>&1 |
            tee "$RESULTS/tests-gpu.log" || true
        "$PYTHON" -m pytest -q -p no:cacheprovider "${workers[@]}" -m "not slow" 2>&1 | tail -60 |
            tee "$RESULTS/tests.log" || true
        ;;
    gpu-tests) # both runs, and the part fails where either failed
        local options=(-q -p no:cacheprovider -rfEs --tb=short) failed=0
        "$PYTHON" -c "import xdist" 2>/dev/null && options+=(-n 6)
        "$PYTHON" -c "import pytest_timeout" 2>/dev/null && options+=(--timeout 120)
        "$PYTHON" -m pytest "${options[@]}" -m "gpu and not slow" 2>&1 |
            tee "$RESULTS/tests-gpu.log" || failed=1
        # the GPU's doc blocks; NVRTC's check and the step's capture on this torch (-k
        # would filter every file named, so apart)
        "$PYTHON" -m pytest "${options[@]}" tests/test_docs.py -k python_block 2>&1 |
            tee "$RESULTS/tests-docs.log" || failed=1
        "$PYTHON" -m pytest "${options[@]}" tests/test_cupy_compiles.py tests/test_compile.py \
            2>&1 | tee "$RESULTS/tests-more.log" || failed=1
        return $failed
        ;;
    launches)
        bench launches.log --backend cupy --workloads 2,4,6 --skip torch-manual,gemm \
            --json "$RESULTS/cupy-launches.json"
        ;;
    cupy) bench cupy.log --backend cupy --workloads 2,3,4,5,6 --json "$RESULTS/gpu.json" ;;
    moons) bench moons.log --backend cupy --workloads 1 --json "$RESULTS/gpu.json" --add ;;
    torch)
        bench torch.log --backend torch:cuda --workloads 2,3,4,5,6 --json "$RESULTS/torch-cuda.json"
        ;;
    torch-moons)
        bench torch-moons.log --backend torch:cuda --workloads 1 --json "$RESULTS/torch-cuda.json" --add
        ;;
    graph)
        TORCH_LOGS=graph_breaks,recompiles bench graph.log --backend torch:cuda --compile cuda-graph --skip torch-manual,gemm \
            --workloads 2,5,6 --json "$RESULTS/torch-cuda-graph.json"
        ;;
    graph-moons)  # 20000 steps: each run of the four takes 2-30 s
        REPEAT=1 bench graph-moons.log --backend torch:cuda --compile cuda-graph \
            --skip torch-manual,gemm --workloads 1 --json "$RESULTS/torch-cuda-graph-moons.json"
        ;;
    inductor) # the log says where the capture breaks or recompiles, if it does
        TORCH_LOGS=graph_breaks,recompiles bench inductor.log --backend torch:cuda --compile inductor --skip torch-manual,gemm \
            --workloads 2,5 --json "$RESULTS/torch-cuda-inductor.json"
        ;;
    sklearn)
        "$PYTHON" -m benchmarks.sklearn_compare --repeat "$REPEAT" --backends numpy,cupy,torch:cuda \
            --json "$RESULTS/sklearn-gpu.json" 2>&1 | tee "$RESULTS/sklearn.log"
        ;;
    all) for p in tests cupy moons torch torch-moons graph graph-moons inductor sklearn; do part $p; done ;;
    *)
        echo "unknown part '$1': tests, gpu-tests, launches, cupy, moons, torch, torch-moons," \
            "graph, graph-moons, inductor, sklearn or all" >&2
        exit 2
        ;;
    esac
}

[ $# -gt 0 ] || { sed -n '2,/^set /{/^#/p}' "$0"; exit 2; }
for p in "$@"; do part "$p"; done
