#!/usr/bin/env bash
# Kept as it ran on the H200 on 2026-12-04, from a folder one level below the checkout's
# root, its results packed into $OUT. To measure again, use benchmarks/gpu_suite.sh.
# one device call: GPU tests, then the benchmarks in parts; results tarred after each part
set -u
cd "$(dirname "$0")/.."
T0=$(date +%s)
R=/tmp/res; mkdir -p $R
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
export PYTHONPATH=/tmp/site:$PWD NNBACKEND_DATA=$PWD/.data PYTHONUNBUFFERED=1
pack() { echo "== $1 done at $(( $(date +%s) - T0 )) s" | tee -a $R/times.txt; tar czf $OUT/results.tgz -C $R .; }
left() { echo $(( ${BUDGET:-545} - ($(date +%s) - T0) )); }
run_for() {  # run_for SECONDS LOG CMD...: never past the budget
    local s=$1 log=$2; shift 2
    local l=$(left); [ $s -gt $l ] && s=$l
    [ $s -lt 5 ] && { echo "skip $log: no time" >> $R/times.txt; return; }
    timeout $s "$@" > $R/$log 2>&1; echo "rc $? $log" >> $R/times.txt
}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > $R/gpu.txt
python3 -c "import cupy, torch, numpy, sklearn, array_api_compat as c; print('cupy', cupy.__version__, 'cuda', cupy.cuda.runtime.runtimeGetVersion(), 'torch', torch.__version__, 'numpy', numpy.__version__, 'sklearn', sklearn.__version__, 'compat', c.__version__)" >> $R/gpu.txt 2>&1
pack setup
run_for 140 tests-gpu.log python3 -m pytest -q -p no:cacheprovider -m "gpu and not slow" -n 6 -rfE --tb=short
pack tests
B="python3 -m benchmarks --repeat 3 --quiet-wait 0"
for w in 2 4 6 3 5; do
    run_for 45 cupy-w$w.log $B --backend cupy --workloads $w --json $R/gpu.json --add
done
pack cupy
for w in 2 4 6 5; do
    run_for 40 torch-w$w.log $B --backend torch:cuda --workloads $w --json $R/torch-cuda.json --add
done
pack torch
run_for 60 cupy-w1.log $B --backend cupy --workloads 1 --json $R/gpu.json --add
pack moons
run_for 50 torch-w1.log $B --backend torch:cuda --workloads 1 --json $R/torch-cuda.json --add
pack torch1
run_for 70 compile.log python3 -m benchmarks --repeat 1 --quiet-wait 0 --backend torch:cuda --compile --workloads 2,5 --json $R/torch-cuda-compile.json
pack compile
run_for 60 sklearn.log python3 -m benchmarks.sklearn_compare --repeat 1 --backends numpy,cupy --json $R/sklearn-gpu.json
pack sklearn
