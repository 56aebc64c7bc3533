"""Finding data files, by one rule for every loader and example:

- the folder comes from ``path=`` (a loader's argument; ``--data`` on the command
  line), else from ``$NNBACKEND_DATA``;
- in that folder, the dataset's files are found directly, or in its own subfolder
  (``mnist/``, ``catvnoncat/``).

So ``--data ~/data``, ``--data ~/data/mnist`` and ``NNBACKEND_DATA=~/data`` all find
``~/data/mnist/train-images-idx3-ubyte.gz``. When nothing is found the error lists
every folder it looked in and what was missing there.
"""

from __future__ import annotations

import os
from pathlib import Path

from nnbackend.checks import home_expanded

DATA_ENV_VAR = "NNBACKEND_DATA"
"""The environment variable naming the folder the loaders look in when given none."""


class DataNotFoundError(FileNotFoundError):
    """A dataset's files are in none of the folders searched.

    The message says where it looked, what it looked for, and how to point at the
    files from Python (``loader(path=...)``); ``for_command_line()`` says the same for
    someone running an example (``--data FOLDER``).
    """

    def __init__(self, dataset: str, subdir: str, looked: str, wanted: str, how: str, source: str):
        self.dataset, self.subdir, self.looked = dataset, subdir, looked
        self.wanted, self.source = wanted, source
        super().__init__(self.message(how))

    def message(self, how: str) -> str:
        return (
            f"{self.dataset} files not found. Looked in:\n{self.looked}\n{self.wanted}\n"
            f"Point to them with {how}, or set {DATA_ENV_VAR}: a folder holding them "
            f"directly or in {self.subdir}/.\n{self.source}"
        )

    def for_command_line(self) -> str:
        return self.message("--data FOLDER")


def search_dirs(path, subdir: str) -> list[Path]:
    """Where to look: ``path`` (else $NNBACKEND_DATA), then its ``subdir``. A blank
    ``path`` is refused: it was told that $NNBACKEND_DATA was not set, where it was."""
    if path is not None and not str(os.fspath(path)).strip():
        raise ValueError(f"path={path!r} names no folder: give a folder, or leave path out")
    base = path if path is not None else os.environ.get(DATA_ENV_VAR, "").strip()
    if not base:  # a blank $NNBACKEND_DATA is none, as a blank $NNBACKEND is
        return []
    folder = expanded(base)
    return [folder, folder / subdir]


def expanded(path) -> Path:
    """``path`` with a leading ``~`` made the home folder (no shell expands the ``~`` of
    ``--data=~/data`` or of ``NNBACKEND_DATA="~/data"``); ``~someone`` who is no user
    here stays as written, to be reported missing."""
    return Path(home_expanded(path))


def looked_in(dirs: list[Path], missing_in) -> str:
    """One line per searched folder saying what was not there."""
    if not dirs:
        return f"  nowhere: no folder was given and ${DATA_ENV_VAR} is not set"
    lines = []
    for d in dirs:
        if d.is_dir():
            what = "missing " + ", ".join(missing_in(d))
        else:
            what = "is a file, not a folder" if d.exists() else "does not exist"
        lines.append(f"  {d}: {what}")
    return "\n".join(lines)


def not_a_file(folder: Path, *names: str) -> str:
    """For a "missing" line: what stands at the first of ``names`` in ``folder`` that is
    there but is no regular file (a folder, as some downloads unpack each file into one
    of its name); '' where none is."""
    for name in names:
        path = folder / name
        if path.is_dir():
            return (
                f" ({name} is a folder, not a file: some downloads unpack each file into a "
                "folder of its name; move the file out of it)"
            )
        if path.exists() or path.is_symlink():
            return f" ({name} is there but is not a regular file)"
    return ""


def reject_file(path, what: str) -> None:
    """``path`` must name a folder: a data file passed by mistake gets a clear error."""
    if path is not None and expanded(path).is_file():
        raise ValueError(f"{path} is a file; for {what} pass the folder that holds the files")
