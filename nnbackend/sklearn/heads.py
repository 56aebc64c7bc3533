"""The output end of the estimators' nets: which loss trains them, as scikit-learn's MLP
defines it.

scikit-learn averages its losses over samples and adds them up over outputs: its
gradient at the outputs is ``(p - y) / n`` however many outputs there are. The
library's ``MSE`` and ``BinaryCrossEntropy`` average over every element instead, which
for ``k`` outputs is ``k`` times smaller; ``SumOverOutputs`` puts the ``k`` back. The
squared error is the one exception in what scikit-learn reports: its value averages
over the outputs while its gradient sums them (``SquaredErrorOverOutputs``), and
``loss_curve_`` and ``tol`` see that value.
"""

from __future__ import annotations

import functools
import math

from nnbackend.backend import host_memory, namespace_of
from nnbackend.losses import MSE, BinaryCrossEntropy, Loss, SoftmaxCrossEntropy
from nnbackend.registry import LOSSES, register

#: out_activation_ (scikit-learn's name for the output link) -> the loss that trains it
LOSS_FOR_LINK = {
    "softmax": lambda: SoftmaxCrossEntropy(from_logits=True),
    "logistic": lambda: BinaryCrossEntropy(from_logits=True),
    "identity": lambda: MSE(half=True),
}


def loss_for(out_activation: str, n_outputs: int) -> Loss:
    """The loss scikit-learn's MLP minimises for this output link and width."""
    loss = LOSS_FOR_LINK[out_activation]()
    if out_activation == "identity":
        return loss if n_outputs == 1 else SquaredErrorOverOutputs(loss)
    if n_outputs > 1 and out_activation == "logistic":
        loss = SumOverOutputs(loss)
    return ClippedLogLoss(loss)


@register
class SumOverOutputs(Loss):
    """``inner`` (averaged over every element) times the number of outputs: a mean over
    samples of the loss summed over outputs. ``pred``: (batch, k)."""

    def __init__(self, inner: Loss | dict):
        inner = inner if isinstance(inner, Loss) else LOSSES.build(inner)  # a config, loading
        super().__init__(inner.reduction)
        self.inner = inner
        self.target_kind = self.inner.target_kind
        self.has_accuracy = self.inner.has_accuracy
        self.targets_like_outputs = self.inner.targets_like_outputs

    def forward(self, pred, target):
        self._outputs = pred.shape[1]
        return self._outputs * self.inner.forward(pred, target)

    def backward(self):
        return self._outputs * self.inner.backward()

    def link(self, pred):
        return self.inner.link(pred)

    def count_correct(self, pred, target):
        return self.inner.count_correct(pred, target)

    def per_batch_weight(self, batch_size: int) -> int:
        return self.inner.per_batch_weight(batch_size)

    def config(self) -> dict:
        return {"type": type(self).__name__, "inner": self.inner.config()}


@register
class SquaredErrorOverOutputs(SumOverOutputs):
    """scikit-learn's squared error of ``k`` outputs: the gradient of the sum over them
    (``SumOverOutputs``'), the value of the mean over them (``inner``'s), so a fit
    records the loss scikit-learn records and stops where its ``tol`` stops it."""

    def forward(self, pred, target):
        self._outputs = pred.shape[1]
        return self.inner.forward(pred, target)


@register
class ClippedLogLoss(SumOverOutputs):
    """scikit-learn's log loss as its MLP reports it: the value of the probabilities
    clipped to [eps, 1 - eps] of their dtype (a saturated wrong one costs -log(eps), not
    its logit's distance), summed over outputs; the gradient ``inner``'s, which is
    scikit-learn's, unclipped. ``loss_curve_``, ``best_loss_`` and ``tol`` see that
    value. ``inner``: softmax cross-entropy, or binary over one or more outputs."""

    def forward(self, pred, target):
        self._outputs = 1  # inner sums over its outputs already, where it has several
        value = self.inner.forward(pred, target)  # keeps the gradient
        on_host = host_memory(pred), host_memory(target)  # NumPy's, torch's on the CPU
        if all(a is not None for a in on_host) and not self._saturated(*on_host):
            return value  # scikit-learn's to rounding, at a fraction of the clipped one's cost
        return self._clipped(pred, target)

    def _saturated(self, pred, target) -> bool:
        """Whether a probability of these NumPy arrays lies where scikit-learn's clip to
        [eps, 1 - eps], or its rounding near 1, decides its log: a label's logit some 36
        (float32: 16) below its row's largest, or a logistic output's beyond 8. Arrays
        with no memory on the host (a GPU's, array-api-strict's) always take the clipped
        value (a check would wait for the device)."""
        if self.target_kind != "labels":
            return bool(abs(pred).max() > 8)
        # log p >= (its logit - the row's largest) - log(classes)
        floor = _log_eps(namespace_of(pred), pred.dtype) + math.log(pred.shape[1])
        if pred.min() - pred.max() >= floor:  # no logit is that far below any other
            return False
        if target.ndim != 1:
            return True
        gap = pred[range(len(target)), target] - pred.max(axis=1)
        return bool(gap.min() < floor)

    def _clipped(self, pred, target):
        """The log loss of the probabilities clipped to [eps, 1 - eps], as scikit-learn's."""
        xp = namespace_of(pred)
        p = self.inner.link(pred) if self.target_kind == "labels" else _expit(xp, pred)
        eps = xp.finfo(p.dtype).eps
        p = xp.clip(p, min=eps, max=1 - eps)
        if target.ndim == 1 and self.target_kind == "labels":  # the labels' probabilities
            rows = xp.reshape(xp.astype(target, xp.int64), (-1, 1))
            total = xp.sum(xp.log(xp.take_along_axis(p, rows, axis=1)))
        else:
            t = xp.reshape(xp.astype(target, p.dtype), p.shape)
            total = xp.sum(t * xp.log(p))
            if self.target_kind != "labels":  # binary: the other side of each output too
                total = total + xp.sum((1 - t) * xp.log(1 - p))
        n = pred.shape[0]
        return -total / n if self.reduction == "mean" else -total


def _expit(xp, z):
    """scipy's expit, 1 / (1 + exp(-z)), which scikit-learn's logistic output is: near 1
    its rounding decides log(1 - p), so the library's tanh form would report another
    loss. z is first held where exp(-z) stays finite (beyond, p rounds alike)."""
    bound = math.log(xp.finfo(z.dtype).max) - 1
    return 1 / (1 + xp.exp(-xp.clip(z, min=-bound, max=bound)))


@functools.cache
def _log_eps(xp, dtype) -> float:
    """log of the machine epsilon of ``dtype``, by which scikit-learn clips."""
    return math.log(xp.finfo(dtype).eps)
