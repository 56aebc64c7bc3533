"""python -m benchmarks.sklearn_compare [--threads 1] [--repeat 3] [--backends numpy,torch]

nnbackend.sklearn.MLPClassifier beside scikit-learn's own MLPClassifier, with the same
hyper-parameters, in one process, at the same number of threads:

- digits (1797 8x8 images, pixels / 16): 5-fold ``cross_validate`` accuracy and the
  fit time summed over the folds (median of ``--repeat``); MLPClassifier's defaults
  (100 hidden ReLU, adam, max_iter=200), random_state=0.
- MNIST 784-256-10: hidden_layer_sizes=(256,), max_iter=10 (10 epochs, batch 200,
  adam 1e-3), random_state=0; test accuracy and fit time (median of ``--repeat``),
  with the data in float32 (as loaded) and in float64: each estimator computes in
  the dtype of its input.

Prints the README's Markdown table and writes JSON (default
benchmarks/results-sklearn.json). MNIST is read from ``--data`` (default
$NNBACKEND_DATA, else ../shared/data beside the project); without it, only digits run.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import time
from pathlib import Path

from benchmarks import report
from benchmarks.__main__ import (
    BACKENDS,
    all_cores,
    set_threads_after_import,
    set_threads_before_import,
)
from benchmarks.options import count, results_file, threads

DEFAULT_DATA = Path(
    os.environ.get("NNBACKEND_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.sklearn_compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--threads", type=threads, default=all_cores(), help="CPU threads, both")
    parser.add_argument("--repeat", type=count, default=3, help="runs of each; median shown")
    parser.add_argument(
        "--backends", default="numpy", help="nnbackend backends, comma-separated (numpy,torch,cupy)"
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding mnist/")
    parser.add_argument("--quick", action="store_true", help="10000 MNIST images, 2 epochs")
    parser.add_argument(
        "--json", type=results_file, default=Path(__file__).parent / "results-sklearn.json"
    )
    args = parser.parse_args(argv)
    names = [name.partition(":")[0] for name in args.backends.split(",") if name]
    if not names or any(name not in (*BACKENDS, "auto") for name in names):
        parser.error(  # a device may follow: torch:cpu, cupy:1
            f"--backends: comma-separated backends, of {', '.join(BACKENDS)} or auto"
        )
    return args


def implementations(backends: list[str], **params) -> dict:
    """name -> an unfitted estimator: scikit-learn's, then nnbackend's on each backend."""
    import sklearn.neural_network as sk

    from nnbackend.sklearn import MLPClassifier

    found = {"scikit-learn": sk.MLPClassifier(**params)}
    for backend in backends:
        found[f"nnbackend ({backend})"] = MLPClassifier(**params, backend=backend)
    return found


def run_digits(backends: list[str], repeat: int, quick: bool) -> list[dict]:
    """5-fold cross_validate of each estimator, ``repeat`` times interleaved (so drift
    hits every implementation alike); the median of the folds' summed fit times."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import cross_validate

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    params = dict(random_state=0, max_iter=50 if quick else 200)
    runs = {name: [] for name in implementations(backends, **params)}
    accuracy = {}
    for _ in range(repeat):
        for name, est in implementations(backends, **params).items():
            scores = cross_validate(est, X, y, cv=5)
            runs[name].append(float(scores["fit_time"].sum()))
            accuracy[name] = float(scores["test_score"].mean())
    return [
        {
            "task": "digits, 5-fold",
            "implementation": name,
            "dtype": "float64",
            "accuracy": accuracy[name],
            "fit_seconds": statistics.median(seconds),
            "fit_runs": seconds,
        }  # fmt: skip
        for name, seconds in runs.items()
    ]


def run_mnist(backends: list[str], data: Path, repeat: int, quick: bool) -> list[dict]:
    from benchmarks.cpuload import OtherLoad
    from nnbackend.datasets import load_mnist

    (X, y), (X_test, y_test) = load_mnist(data / "mnist")
    if quick:
        X, y = X[:10000], y[:10000]
    params = dict(hidden_layer_sizes=(256,), max_iter=2 if quick else 10, random_state=0)
    rows = []
    for dtype in ("float32", "float64"):
        Xd, Xd_test = X.astype(dtype), X_test.astype(dtype)
        runs = {name: [] for name in implementations(backends, **params)}
        accuracy, load = {}, {name: [] for name in runs}
        for _ in range(repeat):  # interleaved, so that drift hits every implementation alike
            for name, est in implementations(backends, **params).items():
                with OtherLoad() as other:
                    start = time.perf_counter()
                    est.fit(Xd, y)
                    runs[name].append(time.perf_counter() - start)
                load[name].append(other.share)
                accuracy[name] = float(est.score(Xd_test, y_test))
        for name, seconds in runs.items():
            rows.append({
                "task": "MNIST 784-256-10, 10 epochs" if not quick else "MNIST (quick)",
                "implementation": name, "dtype": dtype, "accuracy": accuracy[name],
                "fit_seconds": statistics.median(seconds), "fit_runs": seconds,
                "other_load": load[name],
            })  # fmt: skip
    return rows


def table(rows: list[dict]) -> str:
    """Markdown: accuracy, fit time, and scikit-learn's time over this one (same task, dtype)."""
    reference = {
        (r["task"], r["dtype"]): r["fit_seconds"]
        for r in rows
        if r["implementation"] == "scikit-learn"
    }
    lines = [
        "| task | implementation | dtype | accuracy | fit time | speed-up over scikit-learn |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = reference[(r["task"], r["dtype"])] / r["fit_seconds"]
        lines.append(
            f"| {r['task']} | {r['implementation']} | {r['dtype']} | {r['accuracy']:.4f} "
            f"| {r['fit_seconds']:.2f} s | {ratio:.2f}x |"
        )
    return "\n".join(lines)


def command(args) -> str:
    """The command line that reruns this comparison (its options that shape the figures)."""
    line = f"python -m benchmarks.sklearn_compare --threads {args.threads}"
    line += f" --repeat {args.repeat} --backends {args.backends}"
    return report.as_command(report.environment(), line + (" --quick" if args.quick else ""))


def gpu_name(backends: list[str]) -> str | None:
    if not any(b.startswith("cupy") for b in backends):
        return None
    import cupy

    return cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["name"].decode()


def main(argv=None) -> int:
    args = parse_args(argv)
    set_threads_before_import(args.threads)
    set_threads_after_import(args.threads)
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    warnings.simplefilter("ignore", ConvergenceWarning)
    backends = [b for b in args.backends.split(",") if b]
    rows = run_digits(backends, args.repeat, args.quick)
    if (args.data / "mnist").is_dir():
        rows += run_mnist(backends, args.data, args.repeat, args.quick)
    else:
        print(f"no MNIST under {args.data}: digits only", file=sys.stderr)
    print(table(rows))
    out = {
        "kind": "sklearn",
        "date": datetime.date.today().isoformat(),
        "command": command(args),
        "options": {k: str(v) for k, v in vars(args).items() if k not in ("data", "json")},
        "machine": {"cpu": report.cpu_model(), "cores": os.cpu_count(), "threads": args.threads,
                    "gpu": gpu_name(backends)},
        "versions": report.versions(),
        "rows": rows,
    }  # fmt: skip
    report.write_json(out, args.json)  # whole or not at all, its folders made
    print(f"\nwrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
