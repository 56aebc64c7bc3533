"""``nnbackend info`` (or ``python -m nnbackend info``): which backends work here, on
what device; ``nnbackend --version``."""

from __future__ import annotations

import argparse
import sys

from nnbackend.backend import describe_backends, get_backend
from nnbackend.backend.blas import blas_advice, describe_blas
from nnbackend.backend.threads import describe_threads
from nnbackend.cli import quiet_broken_pipe


def _name_or_why(name: str | None) -> str:
    """The backend ``name`` resolves to here, or why none does (a bad $NNBACKEND, a GPU
    that fails as it is built): info says so and still lists the rest."""
    try:
        return get_backend(name).name
    except Exception as exc:
        return f"unavailable ({exc})"


def info() -> str:
    """What ``nnbackend info`` prints: the version, the current backend and what "auto"
    takes, a row per backend (package version, available or why not, default dtype,
    device), the CPU threads and the BLAS, with advice where its kernels leave speed
    behind."""
    lines = [f"nnbackend {_version()}  (python {sys.version.split()[0]})"]
    lines.append(f"current backend: {_name_or_why(None)}")
    lines.append(f"'auto' takes: {_name_or_why('auto')} (torch:cuda, else cupy, else numpy)")
    lines.append("")
    lines.append(f"{'backend':<12}{'package':<18}{'status':<11}{'default dtype':<15}device")
    for row in describe_backends():
        package = row["package"] or "not installed"
        if row["available"]:
            dtype = row["dtype"] + ("" if row["float64"] else " (no float64)")
            lines.append(
                f"{row['backend']:<12}{package:<18}{'available':<11}{dtype:<13}  {row['device']}"
            )
        else:
            lines.append(f"{row['backend']:<12}{package:<18}{'-':<11}{'-':<15}{row['reason']}")
    lines.append("")
    lines.append(f"CPU threads: {describe_threads()}  (set with nb.set_num_threads or --threads)")
    lines.append(f"BLAS: {describe_blas()}")
    advice = blas_advice()
    if advice:
        lines.append(f"  {advice}")
    return "\n".join(lines)


def _version() -> str:
    from nnbackend import __version__

    return __version__


DESCRIPTION = """\
nnbackend: neural networks from scratch on the Array API standard (NumPy, CuPy,
PyTorch, array-api-strict).
"""

EPILOG = """\
Choose a backend with --backend on any example, $NNBACKEND, or nb.set_backend(...);
the number of CPU threads with --threads on any example, or nb.set_num_threads(n).
"""


def main(argv: list[str] | None = None) -> int:
    """The ``nnbackend`` command: ``info`` (also with no command) prints ``info()``;
    ``--version`` prints ``nnbackend X.Y.Z``. Returns the exit status, 0."""
    parser = argparse.ArgumentParser(
        prog="nnbackend",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "command",
        choices=["info"],
        nargs="?",
        default="info",
        metavar="command",
        help="info (the default): which backends work on this machine, with their "
        "versions, devices and default dtypes, the CPU threads in use, and the BLAS's kernels",
    )
    parser.add_argument("--version", action="version", version=f"nnbackend {_version()}")
    with quiet_broken_pipe():  # `nnbackend info | head -3`
        parser.parse_args(argv)
        print(info())
    return 0


if __name__ == "__main__":
    sys.exit(main())
