"""``python -m nnbackend info``: which backends work here, on what device."""

from __future__ import annotations

import argparse
import sys

from nnbackend.backend import describe_backends, get_backend


def info() -> str:
    lines = []
    try:
        current = get_backend().name
    except Exception as exc:  # a bad NNBACKEND value: say so, still list the rest
        current = f"unavailable ({exc})"
    lines.append(f"nnbackend {_version()}  (python {sys.version.split()[0]})")
    lines.append(f"current backend: {current}")
    lines.append("")
    lines.append(f"{'backend':<12}{'package':<18}{'status':<11}{'default dtype':<15}device")
    for row in describe_backends():
        package = row["package"] or "not installed"
        if row["available"]:
            dtype = row["dtype"] + ("" if row["float64"] else " (no float64)")
            lines.append(
                f"{row['backend']:<12}{package:<18}{'available':<11}{dtype:<15}{row['device']}"
            )
        else:
            lines.append(f"{row['backend']:<12}{package:<18}{'-':<11}{'-':<15}{row['reason']}")
    return "\n".join(lines)


def _version() -> str:
    from nnbackend import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nnbackend", description=__doc__)
    parser.add_argument("command", choices=["info"], nargs="?", default="info")
    parser.parse_args(argv)
    print(info())
    return 0


if __name__ == "__main__":
    sys.exit(main())
