"""The nnbackend command: its help names it as installed and reads as plain text;
--version says the version."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

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
    assert "--threads on any example, or nb.set_num_threads(n)" in out


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


@pytest.mark.parametrize("buffered", [True, False])
def test_a_reader_that_stops_early_ends_the_output_quietly(buffered):
    """``nnbackend info | head -1`` and ``python examples/quickstart.py | head -1``: the
    closed pipe ends the program with status 1, as Unix tools end, not a traceback; with
    stdout block-buffered, as in a plain shell, the output left in the buffer at exit
    too (under $PYTHONUNBUFFERED every line was written at once: nothing was left)."""
    examples = Path(__file__).resolve().parent.parent / "examples"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env.update({} if buffered else {"PYTHONUNBUFFERED": "1"})
    for command in (
        ["-m", "nnbackend", "info"],
        [str(examples / "quickstart.py"), "--epochs", "1"],
        ["-c", "import nnbackend as nb\nnb.cli.run(lambda: print('a short line'))"],
    ):
        with subprocess.Popen(
            [sys.executable, *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        ) as run:
            run.stdout.close()  # the reader has gone before the first line
            errors = run.stderr.read().decode()
            assert run.wait() == 1, (command, errors)
        assert errors == "", command


def test_ctrl_c_ends_an_example_with_status_130_and_no_traceback(capsys):
    """Every example printed 30 lines of the library's insides when stopped by Ctrl-C."""

    def main():
        raise KeyboardInterrupt

    try:
        nb.cli.run(main)
    except BaseException as exc:  # caught here: a KeyboardInterrupt would end pytest's run
        stop = exc
    assert isinstance(stop, SystemExit) and stop.code == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_an_example_whose_output_was_closed_ends_well(monkeypatch):
    """``python examples/neuron.py >&-``: sys.stdout is None, print does nothing, and the
    flush after main() raised AttributeError once the work was done."""
    monkeypatch.setattr(sys, "stdout", None)
    ran = []
    nb.cli.run(lambda: ran.append(print("lost")))
    assert ran == [None]


def test_epochs_on_the_command_line_are_bounded_as_a_checkpoint_s():
    import argparse

    from nnbackend.checkpoint import MAX_EPOCH

    assert nb.cli.epoch_count(str(MAX_EPOCH)) == MAX_EPOCH
    with pytest.raises(argparse.ArgumentTypeError, match=f"at most {MAX_EPOCH} epochs"):
        nb.cli.epoch_count(str(MAX_EPOCH + 1))


def test_max_steps_caps_and_refuses_what_is_not_a_count(monkeypatch):
    monkeypatch.setenv("NNBACKEND_MAX_STEPS", "3")
    assert (nb.cli.max_steps(10), nb.cli.max_steps(2)) == (3, 2)
    monkeypatch.setenv("NNBACKEND_MAX_STEPS", "")
    assert nb.cli.max_steps(10) == 10
    for text in ("x", "-1", "0", "2.5"):  # "x": int()'s message; "-1": epochs=-1's
        monkeypatch.setenv("NNBACKEND_MAX_STEPS", text)
        said = f"error: $NNBACKEND_MAX_STEPS is '{text}': set it to a whole number >= 1"
        with pytest.raises(SystemExit, match=re.escape(said)):
            nb.cli.max_steps(10)
