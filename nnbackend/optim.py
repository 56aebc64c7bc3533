"""Optimizers (and, from ``nnbackend.schedules``, the learning-rate schedules).

``opt.step(params, grads)`` updates every array of ``params`` (a mapping of name ->
array, such as ``model.params``) from ``grads`` (same names). Updates are written
``params[name] -= step``: in place where the array type allows it, by reassignment
where it does not. State (velocities, moments) is keyed by parameter name and made
with ``zeros_like``, so it lives where the parameters live and survives a save, a
load and a move between backends. That state is one model's: ``fit`` refuses an
optimizer that has stepped for another model (same shapes or not; plain SGD at a
fixed rate keeps none; a weight of another shape is refused by every step), so give
each model its own, or copy the state into a new one on purpose with
``new.load_state_dict(old.state_dict())``.

    opt = nb.optim.Adam(lr=1e-3)
    opt = nb.optim.SGD(lr=nb.optim.ExponentialDecay(0.1, decay_rate=0.5, decay_steps=1000))

The learning rate is a number, a schedule (``nnbackend.schedules``, or a ``Schedule``
subclass registered with ``nb.register``: saved with a checkpoint) or a plain function
of the step count, which trains but cannot be saved (``nb.save`` and ``fit`` with a
checkpoint say so before any step). What a schedule or function gives is checked at
each step: finite and at least 0.
"""

from __future__ import annotations

import math
import numbers

from nnbackend.backend import namespace_of
from nnbackend.checks import finite_float
from nnbackend.optim_base import (  # noqa: F401  (nb.optim.Optimizer: the base's public home)
    EVERY,
    MAX_ITERATIONS,
    UPDATE_METHODS,
    Optimizer,
)
from nnbackend.registry import OPTIMIZERS, register
from nnbackend.schedules import (  # noqa: F401  (nb.optim.StepDecay, ...: their old home)
    ExponentialDecay,
    InverseTimeDecay,
    Schedule,
    StepDecay,
    device_rate,
)
from nnbackend.schedules import rate as check_rate


def _rewritten(optimizer, base, *methods: str) -> bool:
    """Whether ``optimizer``'s class rewrites any of ``base``'s ``methods``: a subclass
    that rewrites ``update`` or ``apply`` keeps them, one parameter at a time."""
    return any(getattr(type(optimizer), m) is not getattr(base, m) for m in methods)


def _on_device(lr) -> bool:
    """Whether the rate is a 0-d array (a schedule worked out on the device), which the
    fused kernels, taking numbers, cannot take."""
    return not isinstance(lr, numbers.Number)


def _fraction(value, name: str) -> float:
    """A decay factor in [0, 1): 1 would divide by zero (Adam) or never forget."""
    return finite_float(value, name, low=0, high=1, high_open=True)


# --- optimizers -------------------------------------------------------------------


@register
class SGD(Optimizer):
    """``W -= lr * dW``. ``momentum`` and ``nesterov``, which torch's and Keras's SGD
    take, are refused (but for 0 and False): here those are ``Momentum`` and ``Nesterov``."""

    elementwise = steady = True

    def __new__(cls, *args, **kwargs):  # Keras's SGD(learning_rate=, momentum=): one hint
        refused = cls.__init__ is SGD.__init__  # a class of one's own may take momentum
        if refused and (kwargs.get("momentum") or kwargs.get("nesterov")):
            lr = kwargs.get("lr", kwargs.get("learning_rate", args[0] if args else 0.01))
            _with_momentum(lr, kwargs.get("momentum"), kwargs.get("nesterov"))
        return super().__new__(cls, *args, **kwargs)

    def __init__(self, lr=0.01, *, momentum=None, nesterov=None):
        if momentum or nesterov:
            _with_momentum(lr, momentum, nesterov)
        super().__init__(lr)

    def update(self, params, name, grad, lr):
        params[name] -= lr * grad

    def apply(self, kernels, params, name, grad, lr):
        if kernels.sgd is None or type(self).update is not SGD.update or _on_device(lr):
            return self.update(params, name, grad, lr)
        kernels.sgd(params[name], grad, lr)

    def apply_many(self, kernels, params, grads, lr):
        if kernels.sgd_many is None or _on_device(lr) or _rewritten(self, SGD, "update", "apply"):
            return False
        kernels.sgd_many([params[name] for name in grads], list(grads.values()), lr)
        return True


@register
class Momentum(Optimizer):
    """``v = momentum * v - lr * dW; W += v``. With a fixed rate this is torch's
    ``SGD(momentum=)``; with a schedule it is not: ``v`` keeps the rates it was made
    with, where torch scales its whole buffer by each step's rate."""

    elementwise = steady = True

    slots = ("v",)

    def __init__(self, lr=0.01, momentum: float = 0.9):
        super().__init__(lr)
        # 1 (no forgetting) is allowed, as torch's and scikit-learn's SGD allow it
        self.momentum = finite_float(momentum, "momentum", low=0, high=1)

    def update(self, params, name, grad, lr):
        v = self._slot("v", name, grad)
        v[name] *= self.momentum
        v[name] -= lr * grad
        params[name] += v[name]

    def apply(self, kernels, params, name, grad, lr):
        if kernels.momentum is None or type(self).update is not Momentum.update or _on_device(lr):
            return self.update(params, name, grad, lr)
        kernels.momentum(params[name], self._slot("v", name, grad)[name], grad, lr, self.momentum)

    def apply_many(self, kernels, params, grads, lr):
        if kernels.momentum_many is None or _on_device(lr):
            return False
        if _rewritten(self, Momentum, "update", "apply"):
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

    elementwise = steady = True

    def update(self, params, name, grad, lr):
        v = self._slot("v", name, grad)
        previous = v[name] * self.momentum
        v[name] *= self.momentum
        v[name] -= lr * grad
        params[name] += (1 + self.momentum) * v[name] - previous


@register
class AdaGrad(Optimizer):
    """``h += dW**2; W -= lr * dW / (sqrt(h) + eps)``."""

    elementwise = steady = True

    slots = nonnegative_slots = ("h",)

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

    elementwise = steady = True

    slots = nonnegative_slots = ("h",)

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
    """Kingma & Ba (2015), with bias correction, eps added to the corrected root as in
    the paper's Algorithm 1 and torch.optim.Adam (not its faster form's raw root):
    ``m = b1 m + (1-b1) dW;  v = b2 v + (1-b2) dW**2;``
    ``W -= lr / (1 - b1**t) * m / (sqrt(v) / sqrt(1 - b2**t) + eps)``.
    The step count ``t`` is the optimizer's, as in Keras (every weight of a fit moves
    every step); torch counts each weight's own steps, which differ for a weight frozen
    at first or a layer put in after some steps (its moments start at zero, its first
    steps up to about 6 times lr: give a new head a new optimizer to start it so)."""

    elementwise = counts_on_device = True

    slots = ("m", "v")
    nonnegative_slots = ("v",)

    def __init__(self, lr=0.001, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        super().__init__(lr)
        self.beta1, self.beta2 = _fraction(beta1, "beta1"), _fraction(beta2, "beta2")
        self.eps = finite_float(eps, "eps", low=0, low_open=True)

    def update(self, params, name, grad, lr):
        m, v = self.moments(name, grad)
        lr_t, root = self.rates(lr, grad)
        params[name] -= lr_t * m / (namespace_of(grad).sqrt(v) / root + self.eps)

    def moments(self, name, grad):
        """The moving averages ``m`` of the gradient and ``v`` of its square, updated
        in place with ``grad``."""
        m, v = self._slot("m", name, grad)[name], self._slot("v", name, grad)[name]
        m *= self.beta1
        m += (1 - self.beta1) * grad
        v *= self.beta2
        v += (1 - self.beta2) * grad * grad
        return m, v

    def kernel_rates(self, lr: float, t) -> tuple:
        """(lr_t, root) of ``p -= lr_t m / (sqrt(v) / root + eps)`` at step ``t``, the
        update of ``update`` and of the fused kernels alike: a subclass that rewrites
        only this changes both. One that rewrites ``update`` says here how its form maps
        onto the kernel, or runs its ``update`` unfused. ``t`` is an int, or a 0-d array
        where a recorded step counts on the device (then so are the rates): a subclass
        that takes both says ``counts_on_device = True`` again."""
        second = 1 - self.beta2**t
        root = math.sqrt(second) if isinstance(second, float) else namespace_of(second).sqrt(second)
        return lr / (1 - self.beta1**t), root

    def rates(self, lr: float, like) -> tuple:
        """``kernel_rates`` of this step: floats, or, where the step is counted on the
        device (``count_on_device``), 0-d arrays of ``like``'s dtype, but for a rate
        that is a plain number whatever the count (scikit-learn's root of 1): made an
        array, it would be copied to the device inside a recorded step."""
        t = self.step_number()
        if isinstance(t, int):
            return self.kernel_rates(lr, t)
        return tuple(
            r if type(r) is float else device_rate(r, like) for r in self.kernel_rates(lr, t)
        )

    def apply(self, kernels, params, name, grad, lr):
        if kernels.adam is None or not self._kernel_form or self._device_count is not None:
            return self.update(params, name, grad, lr)
        m, v = self._slot("m", name, grad), self._slot("v", name, grad)
        lr_t, root = self.rates(lr, grad)
        kernels.adam(params[name], m[name], v[name], grad, lr_t, self.beta1, self.beta2,
                     self.eps, root)  # fmt: skip

    def apply_many(self, kernels, params, grads, lr):
        fused = kernels.adam_many is not None and self._kernel_form_many
        if not fused or self._device_count is not None:  # (the kernels take host rates)
            return False
        m = [self._slot("m", name, grad)[name] for name, grad in grads.items()]
        v = [self._slot("v", name, grad)[name] for name, grad in grads.items()]
        lr_t, root = self.rates(lr, v[0])
        kernels.adam_many([params[name] for name in grads], m, v, list(grads.values()), lr_t,
                          self.beta1, self.beta2, self.eps, root)  # fmt: skip
        return True

    # Whether the class's update is the kernels': Adam's moments (the kernels make their
    # own), and Adam's ``update`` or a rewritten one that restates ``kernel_rates``; and
    # for the multi-array kernel, Adam's ``apply`` too. Settled as each class is made.
    _kernel_form = _kernel_form_many = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)

        def rewrites(method: str) -> bool:
            return getattr(cls, method) is not getattr(Adam, method)

        cls._kernel_form = not rewrites("moments") and (
            not rewrites("update") or rewrites("kernel_rates")
        )
        cls._kernel_form_many = cls._kernel_form and not rewrites("apply")

    def _hyper(self):
        return {"beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}


def from_config(config: dict) -> Optimizer:
    """An optimizer from ``opt.config()``'s output."""
    return OPTIMIZERS.build(config)


def get(spec) -> Optimizer:
    """An optimizer from a name ("sgd", "adam", "rmsprop", ...: default learning rate),
    a config dict, or an Optimizer."""
    return OPTIMIZERS.create(spec)


def _with_momentum(lr, momentum, nesterov) -> None:
    """Refuse SGD with momentum (torch's and Keras's), naming the class that has it;
    the hint's call must take the rate and the momentum given."""
    if not callable(lr):
        check_rate(lr)
    if momentum is not None:
        finite_float(momentum, "momentum", low=0, high=1)
    kind = "Nesterov" if nesterov else "Momentum"
    raise TypeError(
        f"SGD here is plain SGD, with no momentum: nb.optim.{kind}(lr={lr!r}, "
        f"momentum={momentum if momentum is not None else 0.9}) is SGD with it"
    )
