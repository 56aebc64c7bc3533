"""What fit prints: a line per logged epoch wherever stdout goes (a pipe, a CI log),
and on a terminal a bar below the lines that keeps its width at 80 columns."""

from __future__ import annotations

import io
import re

import pytest

import nnbackend as nb
from nnbackend.layers import Dense, Tanh
from nnbackend.progress import Progress

X, Y = nb.datasets.make_moons(100, seed=0)
VAL = nb.datasets.make_moons(40, seed=1)


class Terminal(io.StringIO):
    """A file that says it is a terminal, as stderr does in a shell."""

    def isatty(self):
        return True


def fit(verbose, epochs=10, **options):
    model = nb.Sequential([Dense(2, 4), Tanh(), Dense(4, 2)], seed=0)
    return model.fit(X, Y, loss="cross_entropy", optimizer="adam", epochs=epochs,
                     batch_size=25, verbose=verbose, **options)  # fmt: skip


def test_the_default_prints_a_line_per_logged_epoch_in_a_pipe(capsys):
    history = fit(verbose=1, epochs=10, log_every=4, validation_data=VAL)
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["epoch 0", "epoch 4", "epoch 8", "epoch 9"]
    loss, accuracy = history["val_loss"][9], history["val_accuracy"][9]
    assert lines[-1].endswith(f"val_loss {loss:.4g}, val_accuracy {accuracy:.4g}")
    assert captured.err == ""  # no bar when stderr is not a terminal


def test_verbose_0_is_silent_and_2_prints_lines_only(capsys):
    fit(verbose=0)
    assert capsys.readouterr() == ("", "")
    bar = Terminal()
    with Progress(10, 2, ["loss"], file=bar) as progress:
        progress.update()
        progress.log(0, {"loss": 0.5})
    assert capsys.readouterr().out == "epoch 0: loss 0.5\n" and bar.getvalue() == ""


@pytest.mark.parametrize("columns", [80, 120])
def test_on_a_terminal_the_bar_keeps_its_width(columns, capsys):
    names = ["loss", "accuracy", "val_loss", "val_accuracy"]
    logs = dict.fromkeys(names, 0.123456)
    terminal = Terminal()
    with Progress(300, 1, names, file=terminal, ncols=columns) as progress:
        for epoch in range(3):
            progress.epoch(epoch)
            for _ in range(100):
                progress.update()
            progress.log(epoch, logs)
    frames = [f for f in re.split(r"[\r\n]", terminal.getvalue()) if f.strip("\x1b[A ")]
    last = frames[-1]
    assert last.startswith("epoch 2: 100%|") and last.rstrip().endswith("step/s]")
    assert all(len(frame) <= columns for frame in frames)
    bar = last.split("|")[1]
    assert len(bar) >= 20  # the bar itself, not squeezed to one character
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"epoch {e}: " + ", ".join(f"{n} 0.1235" for n in names) for e in range(3)]


def test_a_fit_s_bar_counts_every_step_of_every_epoch(monkeypatch, capsys):
    """3 epochs of 4 steps: the bar ends at 12/12 (its total is the fit's steps)."""
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    fit(verbose=1, epochs=3)
    frames = [f for f in re.split(r"[\r\n]", terminal.getvalue()) if "step" in f]
    assert frames and "| 12/12 [" in frames[-1] and frames[-1].startswith("epoch 2: 100%|")
    capsys.readouterr()
