"""Per-epoch metrics that stay on the device until somebody reads them.

Reading a GPU scalar is a device sync, so ``fit`` records each epoch's loss and
accuracy as 0-d device arrays and converts many at once, with one host transfer,
when they are logged or read.

    history = model.fit(...)
    history["loss"]          # list of floats, one per epoch
    history.history          # {"loss": [...], "accuracy": [...], "val_loss": [...], ...}
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping


class EpochLogs(Mapping):
    """One epoch's metrics: name -> float, converted from the device on first read.

    ``values``: name -> ([(0-d device array, weight), ...], n); the float is
    sum(weight * value) / n, added up on the host.
    """

    __slots__ = ("epoch", "_values", "_backend", "_floats")

    def __init__(self, epoch: int, values: dict, backend):
        self.epoch = epoch
        self._values = values
        self._backend = backend
        self._floats: dict | None = None

    def __getitem__(self, key: str) -> float:
        if self._floats is None:
            to_floats([self], self._backend)
        return self._floats[key]

    def __iter__(self):
        return iter(self._floats if self._values is None else self._values)

    def __len__(self) -> int:
        return len(self._floats if self._values is None else self._values)

    def __repr__(self) -> str:
        shown = dict(self) if self._floats is not None else "(on device)"
        return f"EpochLogs(epoch={self.epoch}, {shown})"


def to_floats(logs: list[EpochLogs], backend) -> None:
    """Convert the metrics of every ``logs`` entry with one device-to-host transfer."""
    pending = [entry for entry in logs if entry._floats is None]
    if not pending:
        return
    try:
        scalars = [value for e in pending for parts, _ in e._values.values() for value, _ in parts]
        floats = iter(backend.to_floats(scalars))
        converted = [
            {
                name: sum(_number(weight) * next(floats) for _, weight in parts) / n
                for name, (parts, n) in entry._values.items()
            }
            for entry in pending
        ]
    except Exception as exc:  # a metric's later batch gave what its first did not
        if (stray := _first_stray(pending, backend)) is None:
            raise
        raise TypeError(stray) from exc
    for entry, values in zip(pending, converted, strict=True):
        entry._floats, entry._values = values, None  # let the device scalars go


def is_weight(weight) -> bool:
    """Whether a metric's batch weight is a number >= 0, not NaN or inf (a 0-d array
    is not: float() would sync each one, and torch's History could not be saved)."""
    return isinstance(weight, numbers.Real) and 0 <= weight < math.inf  # NaN fails both


def _number(weight) -> float:
    if not is_weight(weight):
        raise TypeError(f"a weight of {weight!r}")
    return float(weight)


def check_parts(name: str, parts, backend, where: str) -> None:
    """Refuse the first of ``parts`` that is no (0-d array, weight), naming it by
    ``name``, ``where`` it was measured (e.g. "of epoch 3") and its batch."""
    for i, part in enumerate(parts):
        if isinstance(part, tuple | list) and len(part) == 2:
            value, weight = part
            if backend.owns(value) and value.ndim == 0 and is_weight(weight):
                continue
        rule = (
            "a loss's forward returns a 0-d array of the outputs' library (xp.sum(...) / n), "
            "not a Python number"
            if name in ("loss", "val_loss")  # the loss's value, and fit's weight
            else "a metric's batch returns (a 0-d array of the outputs' library, a number "
            ">= 0) at every batch"
        )
        raise TypeError(f"{name!r} {where}, batch {i}, is {part!r}: {rule}")


def _first_stray(pending: list[EpochLogs], backend) -> str | None:
    """Which batch's part of which epoch is no (0-d array, number), and whose it was."""
    for entry in pending:
        for name, (parts, _) in entry._values.items():
            try:
                check_parts(name, parts, backend, f"of epoch {entry.epoch}")
            except TypeError as exc:
                return str(exc)
    return None


class History:
    """What ``fit`` returns: every epoch's metrics (``history["loss"]``, by epoch in
    ``epochs``), and why training stopped (``stop_reason``; None where it ran every
    epoch and no callback ended the run: EarlyStopping's patience running out at the
    last epoch says so, as its checkpoint marks the run ended).

    Epochs brought to the host are kept as a list of floats per metric, and their
    ``EpochLogs`` let go: a long fit's tens of thousands of small objects would
    otherwise keep the garbage collector's full collections coming."""

    def __init__(self, backend, key_hint=None):
        """``key_hint(name, recorded)``: what to say of a name the fit did not record (the
        fit's: ``metrics.key_hint`` for its loss)."""
        self._backend, self._key_hint = backend, key_hint
        self._epochs: list[int] = []
        self._columns: dict[str, list[float]] = {}  # the flushed epochs
        self._pending: list[EpochLogs] = []  # the epochs since the last flush
        self.stop_reason: str | None = None

    def append(self, logs: EpochLogs) -> None:
        self._epochs.append(logs.epoch)
        self._pending.append(logs)

    def flush(self) -> None:
        """Bring every epoch recorded so far to the host (one transfer). Only the epochs
        since the last flush are looked at: a fit that logs every epoch stays linear."""
        to_floats(self._pending, self._backend)
        for entry in self._pending:
            for name in entry:
                self._columns.setdefault(name, []).append(entry[name])
        self._pending = []

    @property
    def epochs(self) -> list[int]:
        """The numbers of the epochs run, in order (a resumed fit's count on)."""
        return list(self._epochs)

    @property
    def history(self) -> dict[str, list[float]]:
        """metric name -> one float per epoch run, in order (Keras's ``history.history``):
        {"loss": [...], "accuracy": [...], "val_loss": [...], ...}; a copy, read with one
        host transfer for the epochs not yet brought over."""
        self.flush()
        return {name: list(values) for name, values in self._columns.items()}

    def __getitem__(self, name: str) -> list[float]:
        self.flush()
        if not isinstance(name, str) or name not in self._columns:  # a slice is unhashable
            if not self._epochs:  # a resume with nothing left
                raise KeyError(
                    f"{name!r}: this fit ran no epochs ({self.stop_reason or 'epochs=0'})"
                )
            hint_for = getattr(self, "_key_hint", None)  # None in a History of no fit's
            hint = hint_for(name, list(self._columns)) if hint_for and isinstance(name, str) else ""
            raise KeyError(f"{name!r}: this fit recorded {list(self._columns)}{hint}")
        return list(self._columns[name])

    def __contains__(self, name: str) -> bool:
        return name in self._names()

    def __iter__(self):
        # without it, Python iterated by history[0], history[1], ...: KeyError: 0
        raise TypeError(
            "a History is read by metric name (history['loss']), or whole as a dict "
            f"(history.history); its metrics are {self._names()}"
        )

    def __len__(self) -> int:
        return len(self._epochs)

    def __repr__(self) -> str:
        return (
            f"History({len(self)} epoch{'' if len(self) == 1 else 's'}, metrics={self._names()}, "
            f"stop_reason={self.stop_reason!r})"
        )

    def _names(self) -> list[str]:
        return list(self._columns or (self._pending[0] if self._pending else ()))
