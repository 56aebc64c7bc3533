"""How ``fit`` reports: a tqdm bar on a terminal, a line per log, or nothing."""

from __future__ import annotations

from tqdm.auto import tqdm


class Progress:
    """``verbose``: 0 silent; 1 a progress bar, shown only on a terminal (quiet in CI
    and pipes); 2 one printed line per logged epoch."""

    def __init__(self, total_steps: int, verbose: int, metric_names):
        self.verbose = verbose
        self.names = list(metric_names)
        self.bar = tqdm(
            total=total_steps, unit="step", disable=None if verbose == 1 else True, leave=True
        )

    def update(self) -> None:
        self.bar.update()

    def log(self, epoch: int, logs) -> None:
        text = ", ".join(f"{name} {logs[name]:.4g}" for name in self.names)
        if self.verbose == 1:
            self.bar.set_postfix_str(f"epoch {epoch}: {text}", refresh=False)
        elif self.verbose >= 2:
            print(f"epoch {epoch}: {text}", flush=True)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
