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
    if n_outputs == 1 or out_activation == "softmax":
        return loss
    if out_activation == "identity":
        return SquaredErrorOverOutputs(loss)
    return SumOverOutputs(loss)


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
