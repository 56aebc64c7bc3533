#!/usr/bin/env bash
# One call of a lent GPU machine, in its time budget: parts of gpu_suite.sh, each cut off
# where the budget ends, the results tarred into $OUT/results.tgz after every part.
#
#   bash benchmarks/device_call.sh [PART...]     # default: gpu-tests launches inductor
#
# That machine has CuPy, torch, NumPy, h5py, scikit-learn and pytest but not the Array API
# packages: carry them as wheels in .whl (ignored by git), made here with
#   pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl \
#       array-api-compat array-api-strict array-api-extra
# and the real data as .data (a copy of ../shared/data). BUDGET (seconds, default 560)
# leaves the call's 600 s limit room to pack.
set -u
cd "$(dirname "$0")/.."
START=$(date +%s)
export RESULTS=/tmp/results PYTHONUNBUFFERED=1
mkdir -p "$RESULTS"
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 3
    export PYTHONPATH=/tmp/site
fi
[ -d .data ] && export NNBACKEND_DATA=$PWD/.data

pack() {
    echo "$1 done at $(($(date +%s) - START)) s" | tee -a "$RESULTS/times.txt"
    tar czf "${OUT:-/tmp}/results.tgz" -C "$RESULTS" .
}

{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python3 -c "import cupy, torch, numpy, array_api_compat as c
print('cupy', cupy.__version__, 'torch', torch.__version__, 'numpy', numpy.__version__,
      'array-api-compat', c.__version__)"; } > "$RESULTS/gpu.txt" 2>&1
pack setup
failed=0
for part in "${@:-gpu-tests launches inductor}"; do
    for p in $part; do
        left=$((${BUDGET:-560} - ($(date +%s) - START)))
        if [ "$left" -lt 20 ]; then
            echo "$p: no time left" >> "$RESULTS/times.txt"
            failed=$((failed + 1))
            continue
        fi
        timeout -k 10 "$left" bash benchmarks/gpu_suite.sh "$p" > "$RESULTS/$p.out" 2>&1
        status=$?
        echo "$p: exit $status" >> "$RESULTS/times.txt"
        [ "$status" -eq 0 ] || failed=$((failed + 1))
        pack "$p"
    done
done
pack "all ($failed parts failed or cut short)"
exit $((failed > 0))
