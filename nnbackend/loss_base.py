"""The base class of every loss (``nnbackend.losses`` holds the built-in ones): the
``forward``/``backward`` protocol, the reductions, the accuracy count a fused kernel
keeps, and the settings that ``fit`` reads (target kind, input range).
"""

from __future__ import annotations

from nnbackend.kept import private_arrays
from nnbackend.registry import LOSSES, construct, type_name

REDUCTIONS = ("mean", "sum")


class Loss:
    """Base class. ``link`` maps the model's raw output to what ``predict_proba`` gives."""

    target_kind = "float"
    """"labels" when 1-D integer class labels are accepted (fit keeps them integer);
    "probabilities" when targets must lie in [0, 1]; "float" for any real values"""

    has_accuracy = False
    """whether ``count_correct`` counts right classifications (fit then logs accuracy)"""

    _counted = None  # (pred, target, count): see _keep_count
    targets_like_outputs = False
    """True when targets take the outputs' shape ((batch,) fits one output): fit then
    checks y's columns against the model's outputs before the first step"""

    registry = LOSSES
    _grad = None  # dL/dpred of the last forward, where a loss keeps it (None before one)

    def __init__(self, reduction: str = "mean"):
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, not {reduction!r}")
        self.reduction = reduction

    def __call__(self, pred, target):
        return self.forward(pred, target)

    def __getstate__(self) -> dict:
        # copies (pickle, copy, deepcopy) leave out what the last batch left behind (its
        # gradient, count and differences, from which its targets could be read back) and
        # arrays made once on a device: private attributes that hold arrays (a subclass's
        # private settings stay)
        left = {"_counted", "_class_ids", *private_arrays(self)}
        return {name: value for name, value in vars(self).items() if name not in left}

    def forward(self, pred, target):
        """The loss of ``pred`` (the model's output, ``(batch, outputs)``) against
        ``target`` (``pred``'s shape; ``(batch,)`` fits ``(batch, 1)``, and is class
        labels where ``target_kind`` is "labels"), as a 0-d array on their device,
        summed or averaged over the batch by ``reduction``; keeps what ``backward``
        needs. Every loss defines it."""
        raise NotImplementedError

    def backward(self):
        """dL/dpred of the last ``forward``, of ``pred``'s shape. Every loss defines it."""
        raise NotImplementedError

    def link(self, pred):
        """The model's raw output ``(batch, outputs)`` as what ``predict_proba`` gives,
        of the same shape: softmax or sigmoid where the loss takes logits
        (``from_logits=True``); the base returns ``pred`` as it is."""
        return pred

    @property
    def input_range(self) -> tuple[float, float] | None:
        """The range the model's outputs must lie in for this loss (probabilities:
        (0, 1)); None when any real number will do."""
        return None

    def count_correct(self, pred, target):
        """How many rows of ``pred`` classify ``target`` right, as a 0-d array. Right
        after ``forward(pred, target)`` on CuPy, the count its kernel made on the way
        (once, for those very arrays, unchanged since)."""
        raise NotImplementedError(f"{type(self).__name__} has no notion of accuracy")

    def _keep_count(self, pred, target, count=None) -> None:
        """Keep the count of right rows that a fused kernel made for this batch in the
        forward (None: it made none), for ``count_correct`` to give at no launch."""
        self._counted = None if count is None else (pred, target, count)

    def _kept_count(self, pred, target):
        """The count ``_keep_count`` kept, handed over once, where ``pred`` and
        ``target`` are the very arrays of that forward (the accuracy asks right after
        it); else None."""
        kept, self._counted = self._counted, None
        if kept is not None and kept[0] is pred and kept[1] is target:
            return kept[2]
        return None

    def config(self) -> dict:
        """The constructor's arguments, JSON-ready, with the class name as "type" (a
        subclass adds its own: ``{**super().config(), "half": self.half}``)."""
        return {"type": type_name(self), "reduction": self.reduction}

    @classmethod
    def from_config(cls, config: dict) -> Loss:
        """The loss that ``config()`` described (less its "type")."""
        return construct(cls, config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "type")
        return f"{type(self).__name__}({args})"

    def per_batch_weight(self, batch_size: int) -> int:
        """What a batch's loss value is multiplied by to give its sum over samples
        (an epoch's loss is the sum of these over the epoch's n samples)."""
        return batch_size if self.reduction == "mean" else 1

    def _scale(self, n: int) -> float:
        if n == 0:
            raise ValueError(
                f"{type(self).__name__}: the batch is empty (0 predictions); there is "
                "no loss to compute"
            )
        return 1.0 / n if self.reduction == "mean" else 1.0


def forward_first(loss: Loss) -> AttributeError:
    """The error of a ``backward`` called before its loss's first ``forward``."""
    return AttributeError(
        f"{type(loss).__name__} has no forward to differentiate: call "
        "loss.forward(pred, target) before loss.backward() (a copy or pickle keeps none, "
        "and an evaluate with this loss between them leaves none: evaluate after the step)"
    )
