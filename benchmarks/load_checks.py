"""python -m benchmarks.load_checks [--chunks 2048,4096,8192,16384] [--repeat 3]

What the checks of an untrusted checkpoint cost over HDF5's own read of it, for a weight
stored in many small gzip chunks (4 KiB each, as a crafted file may store it): ``nb.load``
against ``h5py`` reading the same dataset, in the same process. The ratio should stay
flat as the chunks double; it grew with them while each chunk was looked up by its
number (16,384 chunks of a 2 MB file took a minute to load). Each load is a first one:
its structure walked in a child process (``nnbackend.h5walk``), whose time is shown
apart ("walk s"), as a load of a file already walked or saved here skips it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.options import count, counts


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.load_checks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--chunks", type=counts, default=[2048, 4096, 8192, 16384], help="chunk counts"
    )
    parser.add_argument("--repeat", type=count, default=3, help="runs of each, best taken")
    return parser.parse_args(argv)


def chunky_checkpoint(path: Path, n_chunks: int) -> str:
    """A genuine checkpoint of one Dense(n_chunks, 1024) whose weight is rewritten in
    chunks of one row; returns the weight's name in the file."""
    import h5py
    import numpy as np

    import nnbackend as nb
    from nnbackend.layers import Dense

    nb.save(nb.Sequential([Dense(n_chunks, 1024, bias=False)], seed=0), path)
    weight = np.zeros((n_chunks, 1024), np.float32)
    weight[:, ::64] = 0.5
    with h5py.File(path, "r+") as f:
        del f["weights/0.W"]
        f["weights"].create_dataset(
            "0.W", data=weight, chunks=(1, 1024), compression="gzip", fletcher32=True
        )
    return "weights/0.W"


def best_of(repeat: int, run) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None) -> None:
    import h5py

    import nnbackend as nb

    args = parse_args(argv)
    from nnbackend import h5safe, h5walk

    def first_load(path):
        h5walk.forget_harmless()
        nb.load(path)

    def walk(path):
        h5walk.forget_harmless()
        with open(path, "rb") as handle:
            limits = (h5safe.MAX_LINKS, h5safe.MAX_DEPTH)  # the reader's own
            h5walk.walk_apart(path, handle.fileno(), ValueError, "file", *limits)

    print(f"{'chunks':>7} {'h5py read s':>12} {'nb.load s':>10} {'walk s':>7} {'ratio':>7}")
    with tempfile.TemporaryDirectory() as folder:
        for n_chunks in args.chunks:
            path = Path(folder) / f"chunky-{n_chunks}.h5"
            name = chunky_checkpoint(path, n_chunks)

            def read(path=path, name=name):
                with h5py.File(path, "r") as f:
                    f[name][()]

            h5py_time = best_of(args.repeat, read)
            load_time = best_of(args.repeat, lambda path=path: first_load(path))
            walk_time = best_of(args.repeat, lambda path=path: walk(path))
            ratio = load_time / h5py_time
            print(
                f"{n_chunks:>7} {h5py_time:>12.3f} {load_time:>10.3f} {walk_time:>7.3f} "
                f"{ratio:>7.1f}"
            )


if __name__ == "__main__":
    main()
