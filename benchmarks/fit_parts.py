"""python -m benchmarks.fit_parts [--workload 2] [--threads 2] [--repeat 9]

Where one NumPy workload's ``fit`` spends the time that the hand-written loop does
not: the loop, ``fit`` as the benchmark runs it (accuracy logged, data checked), the
same ``fit`` with ``metrics=[]``, and, alone, the one pass over X for NaN and inf that
every ``fit`` makes. Runs interleaved; medians and minimums in milliseconds, written
to ``--json`` too (README's prose on workload 2 reads benchmarks/recorded/fit-parts.json).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import statistics
import sys
import time
from pathlib import Path

from benchmarks import report
from benchmarks.__main__ import all_cores, set_threads_after_import, set_threads_before_import
from benchmarks.options import count, results_file, threads


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.fit_parts",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--workload", type=int, default=2, choices=range(1, 7))
    parser.add_argument("--threads", type=threads, default=all_cores())
    parser.add_argument("--repeat", type=count, default=9, help="runs of each part")
    default = Path(__file__).resolve().parent / "results-fit-parts.json"
    parser.add_argument("--json", type=results_file, default=default)
    return parser.parse_args(argv)


def parts(wl, data) -> dict:
    """name -> a function that prepares one timed run and returns it."""
    import numpy as np

    from benchmarks import references
    from benchmarks.nnbackend_runner import run_nnbackend
    from nnbackend.data_checks import check_finite

    train = references.train_xp if wl.conv is None else references.train_conv_xp

    def loop():
        params = [(np.array(W), np.array(b)) for W, b in data.init]
        return lambda: train(wl, data.X, data.y, params)

    return {
        "NumPy loop": loop,
        "fit": lambda: run_nnbackend(wl, "numpy", data),
        "fit, metrics=[]": lambda: run_nnbackend(wl, "numpy", data, metrics=[]),
        "check of X alone": lambda: lambda: check_finite(data.X, "X"),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    set_threads_before_import(args.threads)
    set_threads_after_import(args.threads)
    from benchmarks import workloads

    wl = workloads.WORKLOADS[args.workload]
    data = workloads.load(wl)
    prepared = parts(wl, data)
    times = {name: [] for name in prepared}
    for _ in range(args.repeat):
        for name, prepare in prepared.items():
            run = prepare()
            gc.collect()
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    print(f"workload {wl.number}: {wl.title}, {args.threads} threads, {args.repeat} runs each")
    for name, seconds in times.items():
        median, least = statistics.median(seconds) * 1e3, min(seconds) * 1e3
        print(f"  {name:18s} median {median:8.1f} ms   min {least:8.1f} ms")
    line = f"python -m benchmarks.fit_parts --workload {wl.number} --threads {args.threads}"
    out = {
        "kind": "fit-parts",
        "date": datetime.date.today().isoformat(),
        "command": report.as_command(report.environment(), f"{line} --repeat {args.repeat}"),
        "workload": wl.number, "threads": args.threads,
        "machine": {"cpu": report.cpu_model(), "cores": all_cores()},
        "versions": report.versions(),
        "seconds": times,
        "median": {name: statistics.median(seconds) for name, seconds in times.items()},
    }  # fmt: skip
    report.write_json(out, args.json)
    print(f"\nwrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
