"""argparse types the benchmark commands share, so that a bad option stops a run at its
start rather than after minutes of timing (or hours of a GPU's): counts of at least
one, lists of them, and a results file that can be written. Free of NumPy and
nnbackend: ``python -m benchmarks`` sets the thread variables before either loads."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

MAX_THREADS = 2**15  # nnbackend's limit (backend/threads.py), not imported: it loads NumPy


def count(text: str) -> int:
    """A whole number >= 1: runs, epochs, cores."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"a whole number >= 1, not {text!r}")
    return n


def threads(text: str) -> int:
    """A number of threads, 1 to nnbackend's limit (``nb.set_num_threads`` refuses more)."""
    n = count(text)
    if n > MAX_THREADS:
        raise argparse.ArgumentTypeError(f"at most {MAX_THREADS} threads, not {text!r}")
    return n


def seconds(text: str) -> float:
    """A finite number of seconds >= 0 (a wait)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"a number of seconds >= 0, not {text!r}")
    return value


def counts(text: str) -> list[int]:
    """Comma-separated whole numbers >= 1 (``--ranks 1,2,4``), one at least."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(f"comma-separated whole numbers >= 1, not {text!r}")
    return [count(part) for part in parts]


def results_file(text: str) -> Path:
    """A file the results can be written to: not a folder, below the deepest folder of
    its path that is there (the writer makes the rest), which this user may write into,
    with no name in it too long for that file system."""
    try:
        path = Path(text).expanduser()  # --json=~/r.json: no shell expands that ~
    except RuntimeError as exc:  # ~someone who is not a user here
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: {exc}") from None
    try:
        return _writable(path, text)
    except OSError as exc:  # a name too long for is_dir to look it up, say
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: {exc.strerror or exc}") from None


def _writable(path: Path, text: str) -> Path:
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder: name the results file in it")
    parts = [path, *path.parents]
    depth = next(i for i, part in enumerate(parts) if i and os.path.lexists(part))
    there = parts[depth]
    if not there.is_dir() or not os.access(there, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(
            f"cannot write {text!r}: {str(there)!r} is not a folder this user can write into"
        )
    longest = os.pathconf(there, "PC_NAME_MAX") if hasattr(os, "pathconf") else 255
    if any(len(os.fsencode(part.name)) > longest for part in parts[:depth]):
        raise argparse.ArgumentTypeError(
            f"cannot write {text!r}: a name in it is too long (at most {longest} bytes)"
        )
    if path.exists() and not os.access(path, os.W_OK):
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: it is write-protected")
    return path
