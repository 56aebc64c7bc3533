"""Learning-rate schedules: a learning rate as a function of the step count, which an
optimizer takes in place of a number (also as ``nb.optim.StepDecay``, ...).

    opt = nb.optim.SGD(lr=nb.optim.ExponentialDecay(0.1, decay_rate=0.5, decay_steps=1000))
"""

from __future__ import annotations

import math

from nnbackend.backend import namespace_of
from nnbackend.checks import finite_float, integer, positive_int
from nnbackend.registry import SCHEDULES, construct, init_parameters, register, type_name
from nnbackend.spellings import told_ours


def rate(lr) -> float:
    """A learning rate: a finite number above 0."""
    return finite_float(lr, "learning rate", low=0, low_open=True)


def given_rate(schedule, step: int):
    """What ``schedule`` (a Schedule, or a function of the step count) gives at
    ``step``, once it is a learning rate: a finite number, at least 0, as a Python float
    (a function's NumPy scalar, ``0.1 * np.exp(-step / 100)``, is no array of strict's)."""
    lr = schedule(step)
    try:
        valid = getattr(lr, "ndim", 0) == 0 and 0 <= lr < math.inf  # NaN fails both
    except (TypeError, ValueError):  # None, a string, an array of many
        valid = False
    if not valid:
        many = f" (one, not an array of shape {tuple(lr.shape)})" if getattr(lr, "ndim", 0) else ""
        raise ValueError(
            f"the learning rate {schedule!r} gave {lr!r} at step {step}: a learning rate "
            f"must be a finite number{many}, at least 0 (a negative one climbs the loss)"
        )
    return float(lr)


def device_rate(value, like):
    """A rate worked out from the step count on the device (a 0-d array, or a NumPy
    scalar on NumPy) as a 0-d array in ``like``'s dtype, as a Python number is taken."""
    xp = namespace_of(like)
    return xp.astype(xp.asarray(value), like.dtype)


def _decay(value, name: str) -> float:
    """A factor in (0, 1]: one above 1 would grow the rate until it overflows."""
    return finite_float(value, f"{name} (a decay)", low=0, low_open=True, high=1)


class Schedule:
    """A learning rate as a function of the step count (0 on the first step)."""

    registry = SCHEDULES
    on_device = False
    """True where ``__call__`` takes the step as a 0-d float array as well, with array
    operations alone, so a step recorded once can work the rate out on the device
    (``fit``'s ``compile=True`` on torch:cuda); the built-in schedules do. A subclass that
    rewrites ``__call__`` says it again"""

    def __new__(cls, *args, **kwargs):  # Keras's initial_learning_rate=, staircase=: told ours
        told_ours(cls, kwargs)
        return super().__new__(cls)

    def __call__(self, step: int) -> float:
        raise NotImplementedError

    def config(self) -> dict:
        """The type and the constructor's arguments (its bases' too, where it passes
        ``**kwargs`` on), read from the attributes of their names (one worked out from
        them is left out); a class that keeps an argument under another name writes
        its own."""
        arguments = init_parameters(type(self))
        return {"type": type_name(self), **{k: v for k, v in vars(self).items() if k in arguments}}

    @classmethod
    def from_config(cls, config: dict) -> Schedule:
        try:
            return construct(cls, config)
        except ValueError as exc:
            refused = exc
        # older files saved every attribute, those worked out from the arguments too:
        # build from the arguments, and take it where it works the rest out the same
        arguments = init_parameters(cls) | {"type"}
        worked_out = {k: v for k, v in config.items() if k not in arguments}
        if worked_out:
            try:
                schedule = construct(cls, {k: v for k, v in config.items() if k in arguments})
            except ValueError:
                raise refused from None
            if all(getattr(schedule, k, refused) == v for k, v in worked_out.items()):
                return schedule
        raise refused

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "type")
        return f"{type(self).__name__}({args})"


@register
class StepDecay(Schedule):
    """``lr * gamma ** (step // step_size)``: drop by ``gamma`` (in (0, 1]) every
    ``step_size`` steps."""

    on_device = True

    def __init__(self, lr: float, step_size: int, gamma: float = 0.1):
        self.lr, self.step_size = rate(lr), positive_int(step_size, "step_size")
        self.gamma = _decay(gamma, "gamma")

    def __call__(self, step):
        return self.lr * self.gamma ** (step // self.step_size)


@register
class ExponentialDecay(Schedule):
    """``lr * decay_rate ** (step / decay_steps)``, ``decay_rate`` in (0, 1] (Keras's
    order is (rate, decay_steps, decay_rate): name the two)."""

    on_device = True

    def __init__(self, lr: float, decay_rate: float, decay_steps: int = 1):
        self.lr = rate(lr)
        self.decay_rate = _decay(decay_rate, "decay_rate")
        self.decay_steps = positive_int(decay_steps, "decay_steps")

    def __call__(self, step):
        return self.lr * self.decay_rate ** (step / self.decay_steps)


@register
class InverseTimeDecay(Schedule):
    """``lr / (1 + decay_rate * step / decay_steps)``. Keras's order is (rate,
    decay_steps, decay_rate): name the two (``InverseTimeDecay(0.01, 1000, 1)`` is a
    decay_rate of 1000)."""

    on_device = True

    def __init__(self, lr: float, decay_rate: float, decay_steps: int = 1):
        self.lr = rate(lr)
        self.decay_rate = finite_float(decay_rate, "decay_rate", low=0)
        # a float over an int past 1e308 overflows: no step count comes near 2**53
        self.decay_steps = integer(decay_steps, "decay_steps", low=1, high=2**53)

    def __call__(self, step):
        return self.lr / (1 + self.decay_rate * step / self.decay_steps)
