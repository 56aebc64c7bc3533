"""Optimizers (and, from ``nnbackend.schedules``, the learning-rate schedules).

``opt.step(params, grads)`` updates every array of ``params`` (a mapping of name -> array, such
as ``model.params``) from ``grads`` (same names). Updates are written ``params[name] -= step``:
in place where the array type allows it, by reassignment where it does not. State (velocities,
moments) is keyed by parameter name and made with ``zeros_like``, so it lives where the
parameters live and survives a save, a load and a move between backends.

    opt = nb.optim.Adam(lr=1e-3)
    opt = nb.optim.SGD(lr=nb.optim.ExponentialDecay(0.1, decay_rate=0.5, decay_steps=1000))
"""

from __future__ import annotations

import math
import operator

from nnbackend.backend import namespace_of, to_numpy
from nnbackend.backend.kernels import table
from nnbackend.checks import finite_float, integer
from nnbackend.registry import OPTIMIZERS, SCHEDULES, construct, register
from nnbackend.schedules import (  # noqa: F401  (nb.optim.StepDecay, ...: their old home)
    ExponentialDecay,
    InverseTimeDecay,
    Schedule,
    StepDecay,
)
from nnbackend.schedules import rate as _rate

#: the most steps an optimizer's counter may hold (beyond it, float rates lose meaning)
MAX_ITERATIONS = 2**53
#: the name under which ``step_flat`` updates every weight as one array
EVERY = "*"
#: the methods whose rewriting may make an update read more than its own weight's elements
UPDATE_METHODS = frozenset({"update", "apply", "moments", "kernel_rates"})


def _fraction(value, name: str) -> float:
    """A decay factor in [0, 1): 1 would divide by zero (Adam) or never forget."""
    return finite_float(value, name, low=0, high=1, high_open=True)


# --- optimizers -------------------------------------------------------------------


class Optimizer:
    """Base class: subclasses write ``update(params, name, grad, lr)``."""

    #: names of the per-parameter state arrays, e.g. ("m", "v") for Adam
    slots: tuple[str, ...] = ()
    #: True where an update of a weight reads that weight's own elements and scalars
    #: alone, so every weight may be updated as one flat array (``step_flat``). A class
    #: that writes ``update``, ``apply``, ``moments`` or ``kernel_rates`` says it again.
    elementwise = False
    registry = OPTIMIZERS

    def __init__(self, lr=0.01):
        self.lr = lr if callable(lr) else _rate(lr)
        self.iterations = 0
        self.state: dict[str, dict] = {slot: {} for slot in self.slots}

    def current_lr(self) -> float:
        """The learning rate of the next step: ``lr``, or the schedule's at ``iterations``."""
        return self.lr(self.iterations) if callable(self.lr) else self.lr

    def step(self, params, grads) -> None:
        """One update of every parameter that has a gradient."""
        lr = self.current_lr()
        kernels = None  # the backend's fused kernels, looked up once per step
        if grads:
            kernels = table(namespace_of(next(iter(grads.values()))))
            if grads.keys() <= params.keys() and self.apply_many(kernels, params, grads, lr):
                self.iterations += 1
                return
        for name, grad in grads.items():
            try:
                self.apply(kernels, params, name, grad, lr)
            except KeyError:
                if name in params:
                    raise
                raise KeyError(
                    f"gradient {name!r} has no parameter; parameters: {list(params)}"
                ) from None
        self.iterations += 1

    def updates_flat(self) -> bool:
        """Whether ``step_flat`` may update every weight as one array: the class that
        last wrote one of ``UPDATE_METHODS`` set ``elementwise = True`` in its body."""
        for klass in type(self).__mro__:
            if "elementwise" in vars(klass):
                return klass.elementwise
            if not UPDATE_METHODS.isdisjoint(vars(klass)):
                return False
        return False

    def step_flat(self, params, grads) -> None:
        """One update of every weight at once, as one array (where ``updates_flat()``):
        ``params`` and ``grads`` are ``nnbackend.flat.FlatArrays`` of one layout. Each
        state slot is kept in FlatArrays of that layout too, whose views are the arrays
        ``state`` holds by name, so a checkpoint sees no difference."""
        lr = self.current_lr()
        self._whole = {slot: {EVERY: self._flat_slot(slot, params)} for slot in self.slots}
        kernels = table(namespace_of(params.buffer))
        self.apply(kernels, {EVERY: params.buffer}, EVERY, grads.buffer, lr)
        self.iterations += 1

    def _flat_slot(self, slot: str, params):
        """The one buffer of state ``slot`` laid out as ``params``, made (zeros, with what
        ``state`` held copied in) unless ``state`` still holds its views."""
        kept = self.__dict__.setdefault("_flats", {})
        flat, arrays = kept.get(slot), self.state[slot]
        if (
            flat is None
            or flat.shapes != params.shapes
            or not all(map(operator.is_, map(arrays.get, flat.views), flat.views.values()))
        ):
            flat = kept[slot] = params.like()
            for name, view in flat.views.items():
                if name in arrays:
                    view[...] = arrays[name]
                arrays[name] = view
        return flat.buffer

    def update(self, params, name: str, grad, lr: float) -> None:
        """Update ``params[name]`` from ``grad`` at learning rate ``lr``: what a
        subclass writes."""
        raise NotImplementedError

    def apply(self, kernels, params, name: str, grad, lr: float) -> None:
        """``update``, with the backend's kernel table (``nnbackend.backend.kernels``)
        at hand: the built-in optimizers take their fused update from it where it has
        one, and ``update`` is then their reference."""
        self.update(params, name, grad, lr)

    def apply_many(self, kernels, params, grads, lr: float) -> bool:
        """Update every parameter of ``grads`` at once, where the kernel table has a
        multi-array update for this optimizer (torch's ``_foreach`` operators: one
        launch for all of them on a GPU); False, having done nothing, where it has none."""
        return False

    def _slot(self, slot: str, name: str, like):
        """The arrays of state ``slot``, by parameter name, with ``name``'s made (zeros)
        if new. Returned as the dict, so ``v[name] *= c`` updates in place or rebinds."""
        if name == EVERY:  # a flat step: the slot's one buffer
            return self._whole[slot]
        arrays = self.state[slot]
        if name not in arrays:
            arrays[name] = namespace_of(like).zeros_like(like)
        return arrays

    def __getstate__(self) -> dict:
        # copies keep the state by name; a flat step lays it out again
        state = dict(vars(self))
        state.pop("_flats", None)
        state.pop("_whole", None)
        return state

    # saving and moving

    def config(self) -> dict:
        lr = self.lr.config() if isinstance(self.lr, Schedule) else self.lr
        return {"type": type(self).__name__, "lr": lr, **self._hyper()}

    def _hyper(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict) -> Optimizer:
        """The optimizer that ``config()`` described; a schedule's config becomes one."""
        config = dict(config)
        if isinstance(config.get("lr"), dict):
            config["lr"] = SCHEDULES.build(config["lr"])
        return construct(cls, config)

    def state_dict(self) -> dict:
        """``{"iterations": n, "slots": {slot: {param name: array}}}``."""
        return {"iterations": self.iterations, "slots": self.state}

    def load_state_dict(self, state: dict) -> None:
        """Take ``state_dict()``'s output: every slot of this optimizer, no other."""
        iterations = integer(state["iterations"], "iterations", low=0, high=MAX_ITERATIONS)
        name = type(self).__name__
        missing = set(self.slots) - set(state["slots"])
        if missing:
            raise ValueError(f"{name} state lacks the slots {sorted(missing)}")
        unknown = set(state["slots"]) - set(self.slots)
        if unknown:
            raise ValueError(
                f"{name} keeps no state named {sorted(unknown)} (its slots: {list(self.slots)})"
            )
        self.iterations = iterations
        self.state = {slot: dict(state["slots"][slot]) for slot in self.slots}

    def to(self, backend) -> Optimizer:
        """Move the state arrays to ``backend`` (through the host). Returns self."""
        for arrays in self.state.values():
            for name, a in arrays.items():
                arrays[name] = backend.asarray(to_numpy(a))
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in {"lr": self.lr, **self._hyper()}.items())
        return f"{type(self).__name__}({args})"


@register
class SGD(Optimizer):
    """``W -= lr * dW``."""

    elementwise = True

    def update(self, params, name, grad, lr):
        params[name] -= lr * grad

    def apply(self, kernels, params, name, grad, lr):
        if kernels.sgd is None or type(self).update is not SGD.update:
            return self.update(params, name, grad, lr)
        kernels.sgd(params[name], grad, lr)

    def apply_many(self, kernels, params, grads, lr):
        if kernels.sgd_many is None or _rewritten(self, SGD, "update", "apply"):
            return False
        kernels.sgd_many([params[name] for name in grads], list(grads.values()), lr)
        return True


@register
class Momentum(Optimizer):
    """``v = momentum * v - lr * dW; W += v``."""

    elementwise = True

    slots = ("v",)

    def __init__(self, lr=0.01, momentum: float = 0.9):
        super().__init__(lr)
        self.momentum = _fraction(momentum, "momentum")

    def update(self, params, name, grad, lr):
        v = self._slot("v", name, grad)
        v[name] *= self.momentum
        v[name] -= lr * grad
        params[name] += v[name]

    def apply(self, kernels, params, name, grad, lr):
        if kernels.momentum is None or type(self).update is not Momentum.update:
            return self.update(params, name, grad, lr)
        kernels.momentum(params[name], self._slot("v", name, grad)[name], grad, lr, self.momentum)

    def apply_many(self, kernels, params, grads, lr):
        if kernels.momentum_many is None or _rewritten(self, Momentum, "update", "apply"):
            return False
        velocities = [self._slot("v", name, grad)[name] for name, grad in grads.items()]
        kernels.momentum_many(
            [params[name] for name in grads], velocities, list(grads.values()), lr, self.momentum
        )
        return True

    def _hyper(self):
        return {"momentum": self.momentum}


@register
class Nesterov(Momentum):
    """Nesterov momentum, in the form that needs no look-ahead evaluation:
    ``v_new = momentum * v - lr * dW; W += -momentum * v + (1 + momentum) * v_new``."""

    elementwise = True

    def update(self, params, name, grad, lr):
        v = self._slot("v", name, grad)
        previous = v[name] * self.momentum
        v[name] *= self.momentum
        v[name] -= lr * grad
        params[name] += (1 + self.momentum) * v[name] - previous


@register
class AdaGrad(Optimizer):
    """``h += dW**2; W -= lr * dW / (sqrt(h) + eps)``."""

    elementwise = True

    slots = ("h",)

    def __init__(self, lr=0.01, eps: float = 1e-7):
        super().__init__(lr)
        self.eps = finite_float(eps, "eps", low=0, low_open=True)

    def update(self, params, name, grad, lr):
        h = self._slot("h", name, grad)
        h[name] += grad * grad
        params[name] -= lr * grad / (namespace_of(grad).sqrt(h[name]) + self.eps)

    def _hyper(self):
        return {"eps": self.eps}


@register
class RMSProp(Optimizer):
    """``h = rho * h + (1 - rho) * dW**2; W -= lr * dW / (sqrt(h) + eps)``."""

    elementwise = True

    slots = ("h",)

    def __init__(self, lr=0.001, rho: float = 0.9, eps: float = 1e-7):
        super().__init__(lr)
        self.rho = _fraction(rho, "rho")
        self.eps = finite_float(eps, "eps", low=0, low_open=True)

    def update(self, params, name, grad, lr):
        h = self._slot("h", name, grad)
        h[name] *= self.rho
        h[name] += (1 - self.rho) * grad * grad
        params[name] -= lr * grad / (namespace_of(grad).sqrt(h[name]) + self.eps)

    def _hyper(self):
        return {"rho": self.rho, "eps": self.eps}


@register
class Adam(Optimizer):
    """Kingma & Ba (2015), with bias correction:
    ``m = b1 m + (1-b1) dW;  v = b2 v + (1-b2) dW**2;  W -= lr_t m / (sqrt(v) + eps)``."""

    elementwise = True

    slots = ("m", "v")

    def __init__(self, lr=0.001, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        super().__init__(lr)
        self.beta1, self.beta2 = _fraction(beta1, "beta1"), _fraction(beta2, "beta2")
        self.eps = finite_float(eps, "eps", low=0, low_open=True)

    def update(self, params, name, grad, lr):
        m, v = self.moments(name, grad)
        t = self.iterations + 1
        denominator = namespace_of(grad).sqrt(v) / math.sqrt(1 - self.beta2**t) + self.eps
        params[name] -= (lr / (1 - self.beta1**t)) * m / denominator

    def moments(self, name, grad):
        """The moving averages ``m`` of the gradient and ``v`` of its square, updated
        in place with ``grad``."""
        m, v = self._slot("m", name, grad)[name], self._slot("v", name, grad)[name]
        m *= self.beta1
        m += (1 - self.beta1) * grad
        v *= self.beta2
        v += (1 - self.beta2) * grad * grad
        return m, v

    def kernel_rates(self, lr: float, t: int) -> tuple[float, float]:
        """(lr_t, root) of the fused kernel's ``p -= lr_t m / (sqrt(v) / root + eps)`` at
        step ``t``: what ``update`` computes. A subclass that rewrites ``update`` says
        here how its form maps onto the kernel, or runs its ``update`` unfused."""
        return lr / (1 - self.beta1**t), math.sqrt(1 - self.beta2**t)

    def apply(self, kernels, params, name, grad, lr):
        if kernels.adam is None or not self._kernel_form():
            return self.update(params, name, grad, lr)
        m, v = self._slot("m", name, grad), self._slot("v", name, grad)
        lr_t, root = self.kernel_rates(lr, self.iterations + 1)
        kernels.adam(params[name], m[name], v[name], grad, lr_t, self.beta1, self.beta2,
                     self.eps, root)  # fmt: skip

    def apply_many(self, kernels, params, grads, lr):
        if kernels.adam_many is None or not self._kernel_form() or _rewritten(self, Adam, "apply"):
            return False
        m = [self._slot("m", name, grad)[name] for name, grad in grads.items()]
        v = [self._slot("v", name, grad)[name] for name, grad in grads.items()]
        lr_t, root = self.kernel_rates(lr, self.iterations + 1)
        kernels.adam_many([params[name] for name in grads], m, v, list(grads.values()), lr_t,
                          self.beta1, self.beta2, self.eps, root)  # fmt: skip
        return True

    def _kernel_form(self) -> bool:
        """Whether this optimizer's update is the kernels': Adam's own, or a rewritten
        one that restates ``kernel_rates``."""
        rewritten = type(self).update is not Adam.update
        return not rewritten or type(self).kernel_rates is not Adam.kernel_rates

    def _hyper(self):
        return {"beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}


def _rewritten(optimizer, base, *methods: str) -> bool:
    """Whether ``optimizer``'s class rewrites any of ``base``'s ``methods``: a subclass
    that rewrites ``update`` or ``apply`` keeps them, one parameter at a time."""
    return any(getattr(type(optimizer), m) is not getattr(base, m) for m in methods)


def from_config(config: dict) -> Optimizer:
    """An optimizer from ``opt.config()``'s output."""
    return OPTIMIZERS.build(config)


def get(spec) -> Optimizer:
    """An optimizer from a name ("sgd", "adam", "rmsprop", ...: default learning rate),
    a config dict, or an Optimizer."""
    return OPTIMIZERS.create(spec)
