#!/usr/bin/env bash
# One call of a lent GPU machine, in its time budget: parts of gpu_suite.sh, each within
# its own cap and what is left of the budget, the results tarred into $OUT/results.tgz
# every 20 s and after every part (what is under $OUT comes back even from a call cut
# at its limit).
#
#   bash benchmarks/device_call.sh [PART...]     # default: gpu-tests launches inductor
#
# That machine has CuPy, torch, NumPy, h5py, scikit-learn and pytest but not the Array API
# packages: carry them as wheels in .whl (ignored by git), made here with
#   pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl \
#       array-api-compat==1.16.0 array-api-strict==2.6.1 array-api-extra==0.11.5
# and the real data as .data (a copy of ../shared/data; ignored too). BUDGET (seconds,
# default 560) leaves the call's 600 s limit room to pack; give the call's timeout_s less
# 40 where it is less than 600.
set -u
cd "$(dirname "$0")/.."
START=$(date +%s)
BUDGET=${BUDGET:-560}
export RESULTS=/tmp/results PYTHONUNBUFFERED=1
rm -rf "$RESULTS" /tmp/site # a warm machine keeps the last call's files
mkdir -p "$RESULTS"
declare -A CAP=([gpu-tests]=200 [launches]=150 [inductor]=200)

pack() { # the tarball, replaced whole: a call cut mid-write leaves the last one
    local part="${OUT:-/tmp}/results-$BASHPID.tgz" # the packer's and ours apart
    tar czf "$part" -C "$RESULTS" . && mv "$part" "${OUT:-/tmp}/results.tgz"
}
done_with() {
    echo "$1 done at $(($(date +%s) - START)) s" | tee -a "$RESULTS/times.txt"
    pack
}

if [ -d .whl ]; then
    if ! python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --target /tmp/site .whl/*.whl > "$RESULTS/setup.log" 2>&1; then
        cat "$RESULTS/setup.log"
        done_with "setup (pip failed)"
        exit 3
    fi
    export PYTHONPATH=/tmp/site
fi
[ -d .data ] && export NNBACKEND_DATA=$PWD/.data

{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python3 -c "import cupy, torch, numpy, array_api_compat as c
print('cupy', cupy.__version__, 'torch', torch.__version__, 'numpy', numpy.__version__,
      'array-api-compat', c.__version__)"; } > "$RESULTS/gpu.txt" 2>&1
cat "$RESULTS/gpu.txt"
done_with setup
# the packer ends between packs when told (a kill mid-tar left a stray results-<pid>.tgz)
(
    trap 'stop=1' TERM
    stop=
    while [ -z "$stop" ]; do
        sleep 20 &
        wait $!
        [ -n "$stop" ] || pack
    done
) &
packer=$!

failed=0
for part in "${@:-gpu-tests launches inductor}"; do
    for p in $part; do
        left=$((BUDGET - ($(date +%s) - START)))
        cap=${CAP[$p]:-$left}
        if [ "$left" -lt 20 ]; then
            echo "$p: no time left" | tee -a "$RESULTS/times.txt"
            failed=$((failed + 1))
            continue
        fi
        timeout -k 10 $((cap < left ? cap : left)) bash benchmarks/gpu_suite.sh "$p" \
            > "$RESULTS/$p.out" 2>&1
        status=$?
        echo "$p: exit $status" | tee -a "$RESULTS/times.txt"
        tail -n 8 "$RESULTS/$p.out"
        [ "$status" -eq 0 ] || failed=$((failed + 1))
        done_with "$p"
    done
done
kill "$packer" 2> /dev/null
wait "$packer"
done_with "all ($failed parts failed or cut short)"
exit $((failed > 0))
