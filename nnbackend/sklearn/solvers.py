"""The optimizers behind ``solver="adam"`` and ``solver="sgd"``, as scikit-learn's MLP
runs them.

"sgd" is the library's ``Nesterov`` (``nesterovs_momentum=True``) or ``Momentum``:
scikit-learn's updates, written the same way. "adam" is Adam in the form scikit-learn
uses, the paper's cheaper ordering (Kingma & Ba 2015, end of section 2): the bias
correction goes into the step size and ``eps`` is added to the uncorrected
``sqrt(v)``. The library's ``nb.optim.Adam`` adds ``eps`` after the correction; the
two differ only where ``sqrt(v)`` is near ``eps`` (weights that get almost no
gradient, such as those of pixels that are always 0), but there they differ a lot.
"""

from __future__ import annotations

import math

from nnbackend import optim
from nnbackend.backend import namespace_of
from nnbackend.registry import register


@register
class EfficientAdam(optim.Adam):
    """``m = b1 m + (1-b1) dW;  v = b2 v + (1-b2) dW**2;
    W -= lr sqrt(1 - b2**t) / (1 - b1**t) * m / (sqrt(v) + eps)``: Adam's update, whose
    ``sqrt(v) / root`` is ``sqrt(v)`` exactly at root 1."""

    elementwise = counts_on_device = True

    def kernel_rates(self, lr, t):
        """The correction goes into the step; ``sqrt(v)`` is divided by nothing (1).
        ``t`` may be a 0-d array on the device (a recorded step's count)."""
        second = 1 - self.beta2**t
        root = math.sqrt(second) if isinstance(second, float) else namespace_of(second).sqrt(second)
        return lr * root / (1 - self.beta1**t), 1.0


def optimizer_for(est) -> optim.Optimizer:
    """A fresh optimizer for ``est``'s solver and its hyper-parameters."""
    if est.solver == "adam":
        return EfficientAdam(
            est.learning_rate_init, beta1=est.beta_1, beta2=est.beta_2, eps=est.epsilon
        )
    sgd = optim.Nesterov if est.nesterovs_momentum else optim.Momentum
    return sgd(est.learning_rate_init, momentum=est.momentum)
