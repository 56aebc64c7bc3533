"""Finding data files: the folder a user names, else ``$NNBACKEND_DATA``, and an
error that lists where it looked."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV_VAR = "NNBACKEND_DATA"


def search_dirs(path, subdir: str) -> list[Path]:
    """Where to look: ``path`` alone if given, else $NNBACKEND_DATA/subdir and $NNBACKEND_DATA."""
    if path is not None:
        return [Path(path)]
    root = os.environ.get(DATA_ENV_VAR)
    if not root:
        return []
    return [Path(root) / subdir, Path(root)]


def looked_in(dirs: list[Path], missing_in) -> str:
    """One line per searched folder saying what was not there."""
    if not dirs:
        return f"  (no path was given and ${DATA_ENV_VAR} is not set)"
    lines = []
    for d in dirs:
        what = "does not exist" if not d.is_dir() else "missing " + ", ".join(missing_in(d))
        lines.append(f"  {d}: {what}")
    return "\n".join(lines)


def reject_file(path, what: str) -> None:
    """``path`` must name a folder: a data file passed by mistake gets a clear error."""
    if path is not None and Path(path).is_file():
        raise ValueError(f"{path} is a file; for {what} pass the folder that holds the files")
