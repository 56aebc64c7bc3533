"""python -m benchmarks --backend numpy [--workloads 1,2] [--repeat 3] [--quick]

Times the six workloads with a plain NumPy (or CuPy) loop, torch by hand, torch with
autograd, the GEMM floor and nnbackend, all in one process, and prints a Markdown
table of ratios to the plain loop. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from pathlib import Path

from benchmarks.options import count, results_file, seconds, threads

BACKENDS = ("numpy", "cupy", "torch", "torch:cuda", "strict")
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
_limits = []  # keeps threadpoolctl's limits object alive


def all_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def workload_list(text: str) -> list[int]:
    numbers = [int(part) for part in text.split(",") if part.strip()]
    if not numbers or any(n not in range(1, 7) for n in numbers):
        raise argparse.ArgumentTypeError(f"workloads are numbers 1 to 6, not {text!r}")
    return numbers


def skip_list(text: str) -> list[str]:
    from benchmarks.report import SKIPPABLE  # (the harness would import numpy too soon)

    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in SKIPPABLE]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"{', '.join(unknown)}: --skip takes {', '.join(SKIPPABLE)} (the loop and"
            " nnbackend always run)"
        )
    return names


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--backend",
        default="numpy",
        choices=BACKENDS,
        help="what nnbackend runs on; cupy and torch:cuda also put the"
        " reference loop on CuPy and torch on the GPU",
    )
    parser.add_argument("--workloads", type=workload_list, default=[1, 2, 3, 4, 5, 6])
    parser.add_argument("--repeat", type=count, default=3, help="runs each; the median is shown")
    parser.add_argument("--quick", action="store_true", help="every workload ~20x smaller")
    parser.add_argument("--threads", type=threads, default=all_cores(), help="CPU threads")
    parser.add_argument(
        "--quiet-wait",
        type=seconds,
        metavar="SECONDS",
        help="before each run, wait up to this long for other work on the"
        " machine to stop (0: never wait; default 30, and 0 with --quick, which"
        " times nothing worth waiting for)",
    )
    parser.add_argument(
        "--compile",
        nargs="?",
        const=True,
        default=False,
        metavar="BACKEND",
        help="torch backends: nnbackend's fit(compile=...) captures its step: as fit's"
        " compile=True (a CUDA graph on torch:cuda where the step replays, else"
        " torch.compile), or the torch.compile backend named (inductor, aot_eager);"
        " 'cuda-graph' (torch:cuda) records it as a CUDA graph and replays it",
    )
    parser.add_argument(
        "--skip",
        type=skip_list,
        default=[],
        metavar="NAMES",
        help="leave these out of the run, comma-separated (torch-manual, torch-autograd,"
        " gemm; shown as n/a): to spare a GPU's time",
    )
    parser.add_argument("--json", type=results_file, help="default: results-<backend>[-quick].json")
    parser.add_argument(
        "--add",
        action="store_true",
        help="keep the other workloads the --json file holds (a run with the same"
        " settings), replacing those run now: a long set recorded in parts",
    )
    args = parser.parse_args(argv)
    if args.compile is not False and not args.backend.startswith("torch"):
        parser.error("--compile captures torch's step: with --backend torch or torch:cuda")
    if args.quiet_wait is None:
        args.quiet_wait = 0 if args.quick else 30
    if args.json is None:
        name = args.backend.replace(":", "-") + ("-quick" if args.quick else "")
        args.json = Path(__file__).resolve().parent / f"results-{name}.json"
    return args


def set_threads_before_import(threads: int) -> None:
    """BLAS and OpenMP read these when they load, so before numpy or torch is imported."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)


def set_threads_after_import(threads: int) -> None:
    import nnbackend as nb

    # fit's default would run the small workloads on one thread: hold it to the same
    # count as the hand-written loops it is compared with
    nb.set_num_threads(threads)
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_limits

        _limits.append(threadpool_limits(limits=threads))
    except ImportError:
        pass


def main(argv=None) -> int:
    args = parse_args(argv)
    set_threads_before_import(args.threads)
    from benchmarks import harness, report
    from benchmarks.workloads import WORKLOADS, load, quick

    ctx = harness.make_context(args.backend)
    ctx.compile, ctx.skip = args.compile, tuple(args.skip)
    set_threads_after_import(args.threads)
    out = {
        "backend": args.backend,
        "date": datetime.date.today().isoformat(),
        "reference": ctx.ref,
        "gemm_library": ctx.gemm_library,
        "options": {
            "workloads": args.workloads,
            "repeat": args.repeat,
            "quick": args.quick,
            "threads": args.threads,
            "quiet_wait": args.quiet_wait,
            "compile": args.compile,
            **({"skip": args.skip} if args.skip else {}),
        },
        "machine": report.machine(ctx, args.threads),
        "environment": report.environment(),
        "versions": report.versions(),
        "results": [],
    }
    earlier = json.loads(args.json.read_text()) if args.add and args.json.exists() else None
    if earlier is not None:
        try:  # settings that differ fail now, not after the run
            report.merged(earlier, out)
        except ValueError as exc:
            raise SystemExit(f"python -m benchmarks --add: {args.json}: {exc}") from None
    for number in args.workloads:
        wl = quick(WORKLOADS[number]) if args.quick else WORKLOADS[number]
        out["results"].append(
            harness.run_workload(wl, load(wl), ctx, args.repeat, args.quick, args.quiet_wait)
        )
        # after every workload: a run stopped part way (time on a GPU running out) keeps the
        # workloads it finished, and --add can go on from there
        whole = out if earlier is None else report.merged(earlier, out)
        report.write_json(whole, args.json)
    print(report.table(whole))
    print()
    print(report.notes(whole))
    print(f"\nwrote {args.json}", file=sys.stderr)
    failed = [
        f"workload {result['workload']} {name}"
        for result in out["results"]
        for name, entry in result["times"].items()
        if not (entry.get("status") or "n/a").startswith("n/a")  # an error, in any of its runs
    ]
    if failed:  # the others' times are kept; a script or CI still sees the run failed
        print(f"failed (the errors are above): {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def command(argv=None) -> int:
    """``main`` as the shell runs it: Ctrl-C ends it with status 130, as the examples end,
    not in a traceback (each workload that had finished is in the JSON file)."""
    try:
        return main(argv)
    except KeyboardInterrupt:
        print("interrupted (each workload that had finished is in the JSON file)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(command())
