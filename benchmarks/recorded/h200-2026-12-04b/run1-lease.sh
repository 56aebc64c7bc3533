#!/usr/bin/env bash
# one device call for the next lease: GPU tests, then compile="cuda-graph" against eager,
# then inductor, CuPy's launch counts and scikit-learn; results tarred after each part
set -u
cd "$(dirname "$0")/.."
T0=$(date +%s)
R=/tmp/res; mkdir -p $R
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
export PYTHONPATH=/tmp/site:$PWD NNBACKEND_DATA=$PWD/.data PYTHONUNBUFFERED=1
pack() { echo "== $1 done at $(( $(date +%s) - T0 )) s" | tee -a $R/times.txt; tar czf $OUT/results.tgz -C $R .; }
left() { echo $(( ${BUDGET:-560} - ($(date +%s) - T0) )); }
run_for() {  # run_for SECONDS LOG CMD...: never past the budget
    local s=$1 log=$2; shift 2
    local l=$(left); [ $s -gt $l ] && s=$l
    [ $s -lt 5 ] && { echo "skip $log: no time" >> $R/times.txt; return; }
    timeout $s "$@" > $R/$log 2>&1; echo "rc $? $log" >> $R/times.txt
}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > $R/gpu.txt
python3 -c "import cupy, torch, numpy, sklearn, array_api_compat as c; print('cupy', cupy.__version__, 'torch', torch.__version__, 'numpy', numpy.__version__, 'sklearn', sklearn.__version__, 'compat', c.__version__)" >> $R/gpu.txt 2>&1
pack setup
W=(); python3 -c "import xdist" 2>/dev/null && W=(-n 6)
run_for 120 tests-replay.log python3 -m pytest -q -p no:cacheprovider tests/test_replay.py tests/test_docs.py -rfE --tb=short
run_for 150 tests-gpu.log python3 -m pytest -q -p no:cacheprovider -m "gpu and not slow" "${W[@]}" -rfE --tb=short
pack tests
B="python3 -m benchmarks --repeat 3 --quiet-wait 0"
G="--backend torch:cuda --compile cuda-graph --skip torch-manual,gemm --json $R/torch-cuda-graph.json --add"
run_for 80 graph-w2.log $B $G --workloads 2; pack graph-w2
run_for 90 graph-w5.log $B $G --workloads 5; pack graph-w5
run_for 120 sklearn.log python3 -m benchmarks.sklearn_compare --repeat 1 --backends numpy,cupy,torch:cuda --json $R/sklearn-gpu.json
pack sklearn
run_for 110 graph-w1.log python3 -m benchmarks --repeat 1 --quiet-wait 0 ${G/graph.json --add/graph-w1.json} --workloads 1; pack graph-w1
run_for 70 cupy-w4.log $B --backend cupy --workloads 4 --skip torch-manual,gemm --json $R/gpu-more.json --add
run_for 70 cupy-w6.log $B --backend cupy --workloads 6 --skip torch-manual,gemm --json $R/gpu-more.json --add
pack cupy
run_for 80 graph-w6.log $B $G --workloads 6; pack graph-w6
run_for 120 compile.log $B --backend torch:cuda --compile --skip torch-manual,gemm --workloads 2,5 --json $R/torch-cuda-compile.json
pack compile
