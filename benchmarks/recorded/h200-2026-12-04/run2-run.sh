#!/usr/bin/env bash
# Kept as it ran on the H200 on 2026-12-04, from a folder one level below the checkout's
# root, its results packed into $OUT. To measure again, use benchmarks/gpu_suite.sh.
set -u
cd "$(dirname "$0")/.."
T0=$(date +%s)
R=/tmp/res; mkdir -p $R
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
export PYTHONPATH=/tmp/site:$PWD NNBACKEND_DATA=$PWD/.data PYTHONUNBUFFERED=1
pack() { echo "== $1 done at $(( $(date +%s) - T0 )) s" | tee -a $R/times.txt; tar czf $OUT/results.tgz -C $R .; }
left() { echo $(( ${BUDGET:-235} - ($(date +%s) - T0) )); }
run_for() {
    local s=$1 log=$2; shift 2
    local l=$(left); [ $s -gt $l ] && s=$l
    [ $s -lt 5 ] && { echo "skip $log: no time" >> $R/times.txt; return; }
    timeout $s "$@" > $R/$log 2>&1; echo "rc $? $log" >> $R/times.txt
}
B="python3 -m benchmarks --repeat 3 --quiet-wait 0"
run_for 105 cupy-b.log $B --backend cupy --workloads 4,3,5 --json $R/gpu-b.json
pack cupy
run_for 85 torch-b.log $B --backend torch:cuda --workloads 4,3,5 --json $R/torch-b.json
pack torch
run_for 60 compile.log python3 -m benchmarks --repeat 1 --quiet-wait 0 --backend torch:cuda --compile --workloads 2 --json $R/torch-cuda-compile.json
pack compile
