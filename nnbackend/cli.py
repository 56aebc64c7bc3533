"""The command-line flags every example shares: --backend, --dtype, --threads, --seed,
--out, and where it trains --epochs, where it reads files --data, where it can train
on several processes --distributed.

parser = nb.cli.example_parser(__doc__, epochs=20000)
args = parser.parse_args()
backend = nb.cli.backend_from_args(args)     # --backend > $NNBACKEND > numpy; --threads
"""

from __future__ import annotations

import argparse
import errno
import math
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from nnbackend.backend import (
    Backend,
    BackendUnavailableError,
    fastpaths,
    get_backend,
    kernels,
    set_num_threads,
)
from nnbackend.backend.environment import switch
from nnbackend.backend.threads import MAX_THREADS
from nnbackend.checkpoint import MAX_EPOCH
from nnbackend.datasets import load_digits, load_mnist
from nnbackend.datasets.files import DATA_ENV_VAR, DataNotFoundError
from nnbackend.distributed import DistributedError, init, is_main
from nnbackend.distributed.world import FORCE_VARIABLE, current

#: the on/off variables, with their defaults
SWITCHES = ((kernels.ENV_VAR, True), (fastpaths.ENV_VAR, True), (FORCE_VARIABLE, False))

BACKEND_HELP = (
    "array library to run on: numpy, cupy, torch, torch:cuda, strict or auto "
    "(default: $NNBACKEND, else numpy)"
)


def add_backend_arguments(
    parser: argparse.ArgumentParser, dtype: str | None = "float32", dtype_help: str | None = None
) -> None:
    """Add ``--backend`` and ``--dtype`` to ``parser``. ``dtype=None`` leaves the
    default to the program (say which in ``dtype_help``)."""
    parser.add_argument("--backend", default=None, help=BACKEND_HELP)
    parser.add_argument(
        "--dtype",
        default=dtype,
        choices=["float32", "float64"],
        help=dtype_help or f"float dtype (default {dtype})",
    )


def example_parser(
    description: str | None,
    *,
    epochs: int | None = None,
    dtype: str | None = "float32",
    dtype_help: str | None = None,
    seed: int | None = 0,
    data: str | None = None,
    distributed: bool = False,
) -> argparse.ArgumentParser:
    """A parser with --backend, --dtype, --threads, --seed (unless ``seed=None``), --out,
    and --epochs (when given a default), --data (when given the dataset's subfolder name,
    "mnist") and --distributed (``distributed=True``: pass ``args.distributed`` on to
    ``fit``)."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_backend_arguments(parser, dtype, dtype_help)
    parser.add_argument(
        "--threads",
        type=thread_count,
        default=None,
        help="CPU threads for NumPy's BLAS and torch: a number, or auto (the default: "
        "one thread while training a small net)",
    )
    if seed is not None:  # None: the program draws nothing
        parser.add_argument(
            "--seed", type=at_least(0, 2**32 - 1), default=seed,
            help=f"random seed (default {seed})",
        )  # fmt: skip
    if epochs is not None:
        parser.add_argument(
            "--epochs", type=epoch_count, default=epochs,
            help=f"training epochs (default {epochs})",
        )  # fmt: skip
    parser.add_argument(
        "--out", type=plot_folder, default=None, help="folder for PNG plots (default: no plots)"
    )
    if data is not None:
        parser.add_argument(
            "--data",
            type=data_folder,
            default=None,
            metavar="FOLDER",
            help=f"a folder holding the data files, directly or in {data}/ "
            f"(default: ${DATA_ENV_VAR})",
        )
    if distributed:
        parser.add_argument(
            "--distributed",
            action="store_true",
            help="train data parallel over the ranks of an MPI launch "
            "(mpiexec -n 4 python SCRIPT --distributed); in a plain process, as usual",
        )
    return parser


def at_least(low: int, high: int | None = None):
    """An argument type: a whole number >= ``low`` (and <= ``high``, where given)."""
    wanted = f"a whole number >= {low}" if high is None else f"a whole number {low}..{high}"

    def whole_number(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            n = low - 1
        if n < low or (high is not None and n > high):
            raise argparse.ArgumentTypeError(f"{wanted}, not {text!r}")
        return n

    whole_number.__name__ = wanted.removeprefix("a ")  # what argparse's errors name
    return whole_number


def epoch_count(text: str) -> int:
    """An argument type: a whole number of epochs, 1 to fit's bound (a checkpoint's)."""
    n = at_least(1)(text)
    if n > MAX_EPOCH:
        raise argparse.ArgumentTypeError(f"at most {MAX_EPOCH} epochs, not {text!r}")
    return n


def positive(text: str) -> float:
    """An argument type: a finite number > 0 (a learning rate, a decay factor)."""
    return _number(text, strictly=True)


def decay(text: str) -> float:
    """An argument type: a number in (0, 1] (a learning rate's decay per epoch)."""
    x = _number(text, strictly=True)
    if x > 1:
        raise argparse.ArgumentTypeError(f"a number in (0, 1], not {text!r} (above 1 grows)")
    return x


def non_negative(text: str) -> float:
    """An argument type: a finite number >= 0 (a penalty's strength)."""
    return _number(text, strictly=False)


def _number(text: str, strictly: bool) -> float:
    try:
        x = float(text)
    except ValueError:
        x = math.nan
    if not math.isfinite(x) or x < 0 or (strictly and x == 0):
        raise argparse.ArgumentTypeError(f"a number {'>' if strictly else '>='} 0, not {text!r}")
    return x


def thread_count(text: str) -> int | str:
    """``--threads``' type: a whole number >= 1, or "auto"."""
    if text == "auto":
        return text
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_THREADS:
        raise argparse.ArgumentTypeError(
            f"a number of threads from 1 to {MAX_THREADS}, or auto, not {text!r}"
        )
    return n


def data_folder(text: str) -> str:
    """``--data``'s folder, refused blank (``--data "$DATA"`` with DATA unset skipped
    $NNBACKEND_DATA, and was told it was not set)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty folder name: name a folder, or leave out --data")
    return text


def plot_folder(text: str) -> Path:
    """``--out``'s type: a folder, accepted only where matplotlib is installed and a
    file can be written into it (or, where it is not there yet, into the deepest folder
    above it that is), so that a run fails at its start rather than after training.
    Nothing is made: ``plot.save`` makes the folder when it writes (ranks of an MPI job
    check at once, and one's probe folder taken away by another refused it)."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise argparse.ArgumentTypeError(
            "plots need matplotlib: pip install 'nnbackend[plot]' (or leave out --out)"
        )
    if not text.strip():  # --out "$OUT" with OUT unset: the plots went to the working folder
        raise argparse.ArgumentTypeError("an empty folder name: name a folder, or leave out --out")
    try:
        folder = Path(text).expanduser()  # --out=~/plots: no shell expands that ~
    except RuntimeError as exc:  # ~someone who is not a user here
        raise argparse.ArgumentTypeError(f"cannot write plots into {text!r}: {exc}") from None
    parts = [folder, *folder.parents]
    try:
        depth = next(i for i, part in enumerate(parts) if os.path.lexists(part))
        there, new = parts[depth], parts[:depth]  # what is there, and what save makes
        if not there.is_dir():  # a file, or a link to nothing
            _refuse(errno.EEXIST if depth == 0 else errno.ENOTDIR)
        longest = os.pathconf(there, "PC_NAME_MAX") if hasattr(os, "pathconf") else 255
        if any(len(os.fsencode(part.name)) > longest for part in new):
            _refuse(errno.ENAMETOOLONG)
        tempfile.TemporaryFile(dir=there).close()  # a folder that is there may refuse files
    except OSError as exc:  # a file of that name, no right to write there, a long name
        raise argparse.ArgumentTypeError(
            f"cannot write plots into the folder {text!r}: {exc.strerror or exc}"
        ) from None
    return folder


def _refuse(number: int) -> NoReturn:
    raise OSError(number, os.strerror(number))


def backend_from_args(args: argparse.Namespace) -> Backend:
    """The backend named by ``--backend``/``--dtype``, falling back to ``$NNBACKEND``;
    also sets the CPU threads when ``--threads`` was given (``nb.set_num_threads``), and
    with ``--distributed`` joins the MPI job first (so that "cupy" is this rank's GPU).
    A bad name or a missing package ends the program with the message, not a traceback,
    as does a bad on/off variable ($NNBACKEND_FUSED: else read inside the first fit)."""
    for variable, default in SWITCHES:
        try:
            switch(variable, default)
        except ValueError as exc:
            stop(f"error: {exc}")
    if getattr(args, "threads", None) is not None:
        set_num_threads(args.threads)
    if getattr(args, "distributed", False):
        try:
            init()
        except (DistributedError, ValueError) as exc:  # ValueError: a bad $NNBACKEND_TIMEOUT
            raise SystemExit(f"error: {exc}") from None
    try:
        return get_backend(args.backend, dtype=getattr(args, "dtype", None))
    except (ValueError, BackendUnavailableError) as exc:
        stop(f"error: {exc}")


def load_data(loader, args: argparse.Namespace, **options):
    """``loader(args.data, **options)``; when the files are not found, the program ends
    with the loader's message, worded for the command line (``--data FOLDER``), and
    when they cannot be read (damaged, not data, no right to read), with its own."""
    try:
        return loader(args.data, **options)
    except DataNotFoundError as exc:
        stop(f"error: {exc.for_command_line()}")
    except (ValueError, OSError) as exc:
        stop(f"error: {exc}")


class Interrupted(BaseException):
    """Ctrl-C in an example: no KeyboardInterrupt, which a scikit-learn estimator's fit
    catches to end its own epochs alone (as scikit-learn's does), a search going on."""


def _interrupt(signum, frame) -> NoReturn:
    raise Interrupted


def run(main: Callable[[], object]) -> None:
    """Run an example's ``main()``, ending quietly where its reader stopped early
    (``python examples/quickstart.py | head -1``) or Ctrl-C stopped it (status 130, as
    a shell reports an interrupted command, without a traceback)."""
    main_thread = threading.current_thread() is threading.main_thread()  # signals' own
    previous = signal.signal(signal.SIGINT, _interrupt) if main_thread else None
    try:
        with quiet_broken_pipe():
            main()
    except (KeyboardInterrupt, Interrupted):
        print("interrupted", file=sys.stderr)
        world = current()
        if world.size > 1 and world.busy:  # a rank in a collective sees no Ctrl-C: end all
            world.busy = False  # (not the exit's "exited in the middle of a fit")
            world.comm.Abort(130)
        raise SystemExit(130) from None
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, previous)


@contextmanager
def quiet_broken_pipe():
    """Output piped to a reader that has gone ends the program with status 1, as Unix
    tools end, not in a BrokenPipeError traceback."""
    try:
        yield
        if sys.stdout is not None:  # None where it was closed (``>&-``): print does nothing
            sys.stdout.flush()  # what is still buffered fails here, not in exit's flush
    except BrokenPipeError:
        # Python's advice: the flush at exit must find no pipe to fail on again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(1) from None


def stop(message: str) -> NoReturn:
    """End the program with ``message``, not a traceback; in an MPI job of several ranks,
    end every rank (the others would wait for this one until their timeout)."""
    world = current()
    if world.size > 1:
        world.abort(f"rank {world.rank} of {world.size}: {message}")
    raise SystemExit(message)


def mnist_or_digits(args: argparse.Namespace, flatten: bool = True):
    """The MNIST examples' data and its name: ``((X_train, y_train), (X_test, y_test)),
    "MNIST"``. ``--digits`` asks for scikit-learn's 8x8 digits; a ``--data`` folder
    without MNIST ends the program with where it looked; with neither ``--data`` nor
    files under ``$NNBACKEND_DATA``, the digits stand in after a note (on rank 0)."""
    if getattr(args, "digits", False):
        if getattr(args, "data", None) is not None:
            stop("error: --digits takes scikit-learn's digits, not a --data folder: give one")
        return load_digits(flatten=flatten), "8x8 digits"
    if args.data is not None:
        return load_data(load_mnist, args, flatten=flatten), "MNIST"
    try:
        return load_mnist(flatten=flatten), "MNIST"
    except (ValueError, PermissionError) as exc:  # damaged files under $NNBACKEND_DATA
        stop(f"error: {exc}")
    except DataNotFoundError as exc:
        if is_main():
            print(
                "note: no MNIST files found, so scikit-learn's 8x8 digits stand in.\n"
                f"Looked in:\n{exc.looked}\nGive --data FOLDER, or "
                f"{'point' if os.environ.get(DATA_ENV_VAR) else 'set'} {DATA_ENV_VAR} at "
                "the folder that holds them, to use MNIST.",
                flush=True,
            )
    return load_digits(flatten=flatten), "8x8 digits"


def max_steps(default: int) -> int:
    """``default``, capped by ``$NNBACKEND_MAX_STEPS`` (how tests and CI run examples fast)."""
    text = os.environ.get("NNBACKEND_MAX_STEPS", "").strip()
    if not text:
        return default
    if not (text.isascii() and text.isdigit()) or int(text) < 1:  # "²" is a digit to isdigit
        stop(f"error: $NNBACKEND_MAX_STEPS is {text!r}: set it to a whole number >= 1, or unset it")
    return min(default, int(text))
