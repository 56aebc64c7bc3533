"""The nnbackend command: its help names it as installed and reads as plain text;
--version says the version."""

from __future__ import annotations

import subprocess
import sys

import nnbackend as nb
from nnbackend.__main__ import main


def test_help_names_the_command_and_has_no_markup(capsys):
    try:
        main(["--help"])
    except SystemExit as stop:
        assert stop.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: nnbackend [-h] [--version] [command]")
    assert "python -m" not in out and "``" not in out
    assert "info (the default): which backends work on this machine" in out
    assert "--threads or nb.set_num_threads(n)" in out


def test_version(capsys):
    try:
        main(["--version"])
    except SystemExit as stop:
        assert stop.code == 0
    assert capsys.readouterr().out == f"nnbackend {nb.__version__}\n"


def test_python_dash_m_gives_the_same():
    out = subprocess.run(
        [sys.executable, "-m", "nnbackend", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout == f"nnbackend {nb.__version__}\n"
