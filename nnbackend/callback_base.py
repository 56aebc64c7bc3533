"""The base of callbacks, and the states of a fit's callbacks that checkpoints keep."""

from __future__ import annotations

import inspect
import re


class Callback:
    """What ``fit`` calls as it trains; every hook does nothing until a subclass writes
    it. A callback that keeps a state a resumed fit needs writes ``get_state`` and
    ``set_state``; the guide's Extending page shows one (HalveOnPlateau)."""

    def on_train_begin(self, model, fit) -> None:
        """``fit`` holds the run's settings: epochs, log_every, optimizer, loss, metrics
        (their names), rises (name -> whether it rises as the model improves, None where
        its metric does not say), callbacks, and distributed (whether the ranks of an
        MPI job train it)."""

    def on_epoch_end(self, epoch: int, logs, model) -> None:
        """``logs``: this epoch's metrics by name; set ``model.stop_training`` to stop."""

    def on_train_end(self, model, history) -> None:
        """After the last epoch (or a stop), before ``fit`` returns ``history``."""

    def stopped_for_good(self) -> bool:
        """Whether this callback ended training so that resuming has nothing left to do
        (EarlyStopping's verdict); False for a stop a resumed run should go on from."""
        return False

    def get_state(self) -> dict | None:
        """What a resumed run needs to go on as if it had never stopped, saved in each
        checkpoint: a dict of JSON values, with arrays named and shaped like the model's
        parameters (best weights) under "arrays". None (the default): nothing."""
        return None

    def set_state(self, state: dict) -> None:
        """Take back what ``get_state`` gave; ``fit(resume=True)`` calls it after
        ``on_train_begin``. Raise ValueError for a state that makes no sense."""

    def __repr__(self) -> str:
        """``EarlyStopping(monitor='val_loss', patience=3, ...)``: the constructor's
        arguments, read back from the attributes of their names (those it keeps)."""
        names = list(inspect.signature(type(self).__init__).parameters)[1:]
        args = ", ".join(f"{n}={getattr(self, n)!r}" for n in names if hasattr(self, n))
        return f"{type(self).__name__}({args})"


def callback_states(callbacks) -> dict:
    """key -> ``get_state()`` of each callback that keeps a state ("EarlyStopping",
    "EarlyStopping.1" for a second one, ...)."""
    states = {}
    for key, callback in _keyed(callbacks):
        state = callback.get_state()
        if state is not None:
            states[key] = state
    return states


def set_callback_states(callbacks, states: dict) -> None:
    """Give each callback the state saved under its key (those without one start afresh)."""
    for key, callback in _keyed(callbacks):
        if key in states:
            callback.set_state(states[key])


def _keyed(callbacks):
    seen: dict[str, int] = {}
    for callback in callbacks:
        name = re.sub(r"^(?=[0-9])|[^A-Za-z0-9_]", "_", type(callback).__name__)[:100]
        count = seen.get(name, 0)
        seen[name] = count + 1
        yield (name if count == 0 else f"{name}.{count}"), callback
