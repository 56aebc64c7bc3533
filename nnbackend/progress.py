"""How ``fit`` reports: a line per logged epoch, and a progress bar on a terminal.

    epoch 0: loss 0.6931, accuracy 0.5
    epoch 15: loss 0.2764, accuracy 0.875
    epoch 15:  54%|██████████████▌            | 162/300 [00:00<00:00, 1043.61step/s]

The metrics go on their own lines (standard output), not into the bar, so the bar
keeps its width on an 80-column terminal and no metric is cut off; in a pipe, a CI
log or under ``nohup`` the lines alone appear.
"""

from __future__ import annotations

import sys


class Progress:
    """``verbose``: 0 silent; 1 a line per logged epoch, with a progress bar below
    them when ``file`` (default standard error) is a terminal; 2 the lines only.
    ``ncols``: the bar's width (default: the terminal's)."""

    def __init__(self, total_steps: int, verbose: int, metric_names, *, file=None, ncols=None):
        self.verbose = verbose
        self.names = list(metric_names)
        file = file if file is not None else sys.stderr
        show_bar = verbose == 1 and _is_terminal(file)
        from tqdm.std import tqdm  # a bar on a terminal alone: no notebook's widget needed

        self.bar = tqdm(
            total=total_steps, unit="step", file=file, disable=not show_bar, leave=True,
            ncols=ncols, dynamic_ncols=ncols is None,
        )  # fmt: skip

    def update(self) -> None:
        self.bar.update()

    def epoch(self, epoch: int) -> None:
        """A new epoch begins: say so in the bar."""
        if not self.bar.disable:
            self.bar.set_description_str(f"epoch {epoch}", refresh=False)

    def log(self, epoch: int, logs) -> None:
        if self.verbose < 1:
            return
        text = f"epoch {epoch}: " + ", ".join(f"{name} {logs[name]:.4g}" for name in self.names)
        if self.bar.disable:  # the line and its end in one write: fits in threads
            print(text + "\n", end="", flush=True)  # spliced theirs mid-line
        else:
            self.bar.write(text + "\n", file=sys.stdout, end="")

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _is_terminal(file) -> bool:
    try:
        return file.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed file
        return False
