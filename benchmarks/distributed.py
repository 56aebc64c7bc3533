"""Strong scaling of data-parallel fit: workload 4 (MNIST 784-1000-1000-10, ReLU,
global batch 512, SGD 0.1) on 1, 2, 4, ... ranks of one machine, the cores shared
fairly (each of P ranks gets cores / P BLAS threads).

    python -m benchmarks.distributed --ranks 1,2,4,8 --cores 16       # the issue's figures
    python -m benchmarks.distributed --ranks 1,2 --cores 2 --epochs 1  # what a laptop shows

For each P it launches ``mpiexec -n P python -m benchmarks.distributed --worker ...``.
Every rank loads the same data and starting weights; after an untimed warm-up fit of a
few batches, rank 0 times whole epochs of ``fit(..., distributed=True)`` (median of
``--repeat``), then the allreduce of one step's gradient buffer alone (7.2 MB in
float32), the communication part of a step. Every run uses all ``--cores``, so the
efficiency of P ranks is ``time(1 rank, all cores) / time(P ranks)``: 100% is as fast
as one process using them all. Results go to
``benchmarks/results-distributed.json``; the table is printed. ``--launcher`` changes
the command (default: MPICH's ``mpiexec -n {ranks} -bind-to core:{threads}``).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import report
from benchmarks.options import count, counts, results_file, threads

WORKLOAD = 4
DEFAULT_LAUNCHER = "mpiexec -n {ranks} -bind-to core:{threads}"
RESULTS = Path(__file__).resolve().parent / "results-distributed.json"


def worker(args) -> None:
    """One rank: time epochs of the distributed fit and the allreduce of its gradients."""
    import numpy as np

    import nnbackend as nb
    from benchmarks import nnbackend_runner, workloads
    from nnbackend.distributed import collectives

    world = nb.distributed.init()
    nb.set_num_threads(args.threads)
    wl = workloads.WORKLOADS[WORKLOAD]
    data = workloads.load(wl)
    backend = nb.get_backend(args.backend, dtype=wl.dtype)
    model = nnbackend_runner.build(wl, backend, data.init)
    fit = dict(loss=nnbackend_runner.loss_for(wl), batch_size=wl.batch_size, seed=0,
               verbose=0, distributed=True)  # fmt: skip
    model.fit(data.X[: 8 * wl.batch_size], data.y[: 8 * wl.batch_size], epochs=1,
              optimizer=nb.optim.SGD(lr=wl.lr), **fit)  # fmt: skip
    epochs = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        model.fit(data.X, data.y, epochs=args.epochs, optimizer=nb.optim.SGD(lr=wl.lr), **fit)
        epochs.append((time.perf_counter() - start) / args.epochs)
    # the step's one message: fit sums the flat gradient buffer itself, in place
    flat = backend.asarray(np.ones(model.count_params()), dtype=wl.dtype)
    sums = [0.0]  # one rank sums nothing
    if world.size > 1:
        engine = collectives.engine_for(world, backend)
        sums = []
        for _ in range(20):
            world.barrier()
            start = time.perf_counter()
            summed = engine.allreduce(flat)
            backend.to_numpy(summed[-1:])  # on a GPU: until the sum is done
            sums.append(time.perf_counter() - start)
    if world.rank == 0:
        steps = -(-wl.n_samples // wl.batch_size)
        print(json.dumps({
            "ranks": world.size, "threads": args.threads, "backend": backend.name,
            "seconds_per_epoch": statistics.median(epochs), "epochs": epochs,
            "allreduce_seconds": statistics.median(sums), "steps_per_epoch": steps,
            "gradient_bytes": int(flat.shape[0]) * 4,
            "data": data.note,
        }))  # fmt: skip


def launch(ranks: int, threads: int, args) -> dict:
    command = shlex.split(args.launcher.format(ranks=ranks, threads=threads)) + [
        sys.executable, "-m", "benchmarks.distributed", "--worker", "--threads", str(threads),
        "--epochs", str(args.epochs), "--repeat", str(args.repeat), "--backend", args.backend,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads)}
    print("$ " + " ".join(command), flush=True)
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise SystemExit(f"the run on {ranks} ranks failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def table(runs: list[dict]) -> str:
    """Each rank count against the first run (1 rank with all the cores, where --ranks
    starts at 1): the same cores either way, so 100% is as fast as it."""
    base, first = runs[0]["seconds_per_epoch"], runs[0]["ranks"]
    rows = [
        f"| ranks | threads each | s / epoch | against {first} rank{'s' * (first > 1)} "
        "on all cores "
        "| allreduce / step | allreduce share of the epoch |",
        "|---|---|---|---|---|---|",
    ]
    for run in runs:
        t, allreduce = run["seconds_per_epoch"], run["allreduce_seconds"]
        rows.append(
            f"| {run['ranks']} | {run['threads']} | {t:.2f} | {base / t:.0%} "
            f"| {allreduce * 1e3:.1f} ms | {allreduce * run['steps_per_epoch'] / t:.0%} |"
        )
    return "\n".join(rows)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.distributed", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--ranks", type=counts, default=[1, 2, 4, 8], help="rank counts (default 1,2,4,8)"
    )
    parser.add_argument("--cores", type=count, default=os.cpu_count(), help="cores to share")
    parser.add_argument("--epochs", type=count, default=1, help="timed epochs per run")
    parser.add_argument("--repeat", type=count, default=3, help="runs per rank count (median)")
    parser.add_argument("--backend", default="numpy", help="numpy (default), torch, cupy, ...")
    parser.add_argument("--launcher", default=DEFAULT_LAUNCHER, help="the mpiexec command")
    parser.add_argument("--json", type=results_file, default=RESULTS, help="where the results go")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=threads, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    import nnbackend as nb  # in the function, as the worker's: after its thread settings

    try:  # here, not in each rank launched: a typo is a usage error, not a worker's traceback
        nb.get_backend(args.backend)
    except (ValueError, nb.BackendUnavailableError) as exc:
        parser.error(f"--backend: {exc}")
    program, *rest = shlex.split(args.launcher)
    found = shutil.which(program) or shutil.which(program, path=str(Path(sys.executable).parent))
    if found is None:  # the environment's own, where it is not activated, is found above
        parser.error(f"--launcher: no {program!r} here (pip install mpi4py mpich gives mpiexec)")
    args.launcher = shlex.join([found, *rest])
    runs = []
    for ranks in args.ranks:
        runs.append(launch(ranks, max(1, args.cores // ranks), args))
        print(json.dumps(runs[-1]), flush=True)
    print(table(runs))
    report.write_json({"cores": args.cores, "runs": runs}, args.json)  # its folders made
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
