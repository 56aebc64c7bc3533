"""Losses: ``forward(pred, target) -> 0-d array`` and ``backward() -> dL/dpred``.

Softmax + cross-entropy and sigmoid + binary cross-entropy are fused and computed
from logits: finite loss and gradients for any finite logits (±1e4 included). The
from-probabilities forms clip to [eps, 1 - eps], so probabilities of exactly 0 or 1
give finite values too.

``reduction="mean"`` averages over samples (rows) for softmax cross-entropy and over
every element for MSE and binary cross-entropy (as torch does: their (batch, k)
outputs are k numbers a sample); ``"sum"`` adds them up, which is what the classic
tutorials differentiate (their learning rates assume it).
"""

from __future__ import annotations

import math

from nnbackend import functional as F
from nnbackend.backend import namespace_of
from nnbackend.backend.kernels import table
from nnbackend.checks import boolean, finite_float
from nnbackend.loss_base import Loss, forward_first
from nnbackend.registry import LOSSES, register


@register
class MSE(Loss):
    """Squared error, averaged (``reduction="mean"``) or summed over every element.
    ``half=True`` puts the 1/2 in front that makes the gradient ``pred - target``."""

    aliases = ("mean_squared_error",)
    targets_like_outputs = True
    _diff = None  # pred - target of the last forward

    def __init__(self, reduction: str = "mean", half: bool = False):
        super().__init__(reduction)
        self.half = boolean(half, "MSE half")

    def forward(self, pred, target):
        xp = namespace_of(pred, target)
        _check_predictions(xp, pred, "MSE")
        target = _match_shape(xp, pred, target, "MSE")
        factor = (0.5 if self.half else 1.0) * self._scale(math.prod(pred.shape))
        self._diff = pred - target
        self._factor = factor
        return factor * xp.sum(self._diff * self._diff)

    def backward(self):
        if self._diff is None:
            raise forward_first(self)
        return (2.0 * self._factor) * self._diff

    def config(self):
        return {**super().config(), "half": self.half}


@register
class SoftmaxCrossEntropy(Loss):
    """Cross-entropy of softmax(pred) against the true classes.

    ``pred``: (batch, classes) logits (or probabilities, with ``from_logits=False``).
    ``target``: (batch,) integer labels, or (batch, classes) one-hot / soft labels,
    each row summing to 1 (the gradient, softmax - target, takes it so; ``fit`` refuses
    other rows: several labels a sample are BinaryCrossEntropy's).
    ``link`` is softmax, so a model trained with it predicts probabilities.
    A logit of -inf (a masked class) adds nothing where the target gives its class no
    weight, and makes the loss inf where it does, on every backend.
    ``fit`` checks the targets once; a loss called directly does not (that check waits
    on the device): there a label outside ``0 .. classes - 1`` (a -1 to skip a row) is
    a row of zeros, which adds nothing to the loss but still counts in its mean and,
    from logits, gets softmax's gradient: such rows are not skipped (leave them out of
    the batch). With
    ``from_logits=False`` logits are taken as probabilities (clipped, not refused:
    ``fit`` checks the last layer's range). A loop of one's own checks its data first
    with ``nb.data_checks.check_targets``.
    """

    target_kind = "labels"
    has_accuracy = True
    _class_ids: dict | None = None  # by library, count and device: see _classes
    aliases = (
        "cross_entropy", "categorical_crossentropy", "sparse_categorical_crossentropy",
    )  # fmt: skip

    def __init__(self, from_logits: bool = True, reduction: str = "mean"):
        super().__init__(reduction)
        self.from_logits = boolean(from_logits, "from_logits")
        self._class_ids = {}  # made here: a compiled step then finds the same attributes

    def forward(self, pred, target):
        xp = namespace_of(pred, target)
        _check_predictions(xp, pred, "SoftmaxCrossEntropy")
        if pred.ndim != 2:
            raise ValueError(
                f"SoftmaxCrossEntropy wants (batch, classes) scores, got {tuple(pred.shape)}"
            )
        scale = self._scale(pred.shape[0])
        kernels = table(xp)
        self._keep_count(pred, target)
        labels = self.from_logits and _labels(xp, pred, target)  # no one-hot rows made
        if labels and kernels.softmax_xent_counted is not None:  # CuPy: the accuracy's too
            value, self._grad, correct = kernels.softmax_xent_counted(pred, target, scale)
            self._keep_count(pred, target, correct)
            return value
        if labels and kernels.softmax_xent_labels is not None:
            value, self._grad = kernels.softmax_xent_labels(pred, target, scale)
            return value
        onehot = self._one_hot(xp, pred, target)
        fused = kernels.softmax_xent if self.from_logits else None
        if fused is not None:
            value, self._grad = fused(pred, onehot, scale)
            return value
        if self.from_logits:  # the reference of the fused kernel
            shifted = pred - xp.max(pred, axis=1, keepdims=True)
            exp = xp.exp(shifted)
            total = xp.sum(exp, axis=1, keepdims=True)
            logp = shifted - xp.log(total)
            grad = exp / total - onehot  # softmax - onehot: the fused gradient
        else:
            p = xp.clip(pred, min=xp.finfo(pred.dtype).eps, max=1.0)
            logp = xp.log(p)
            grad = -onehot / p
        self._grad = _scaled(grad, scale)
        # a class of no weight adds nothing, also at a logit of -inf (masked; 0 * -inf is
        # NaN): its log p is taken as onehot's 0 there (no scalar made into an array)
        return _scaled(xp.sum(onehot * xp.where(onehot != 0, logp, onehot)), -scale)

    def _one_hot(self, xp, pred, target):
        """(batch, classes) one-hot rows in pred's dtype, from labels (batch,) or one-hot rows."""
        n, classes = pred.shape
        if target.ndim == 1 and target.shape[0] == n:
            if not xp.isdtype(target.dtype, "integral"):
                raise TypeError(
                    "SoftmaxCrossEntropy: 1-D targets must be integer class labels, "
                    f"got {target.dtype}"
                )
            classes = self._classes(xp, pred)  # int64: labels of another integer type
            labels = target if target.dtype == classes.dtype else xp.astype(target, classes.dtype)
            return xp.astype(xp.reshape(labels, (n, 1)) == classes, pred.dtype)
        if target.shape == pred.shape:  # one-hot or soft rows, of any real or bool type
            return target if target.dtype == pred.dtype else xp.astype(target, pred.dtype)
        raise ValueError(
            f"SoftmaxCrossEntropy: target of shape {tuple(target.shape)} does not fit "
            f"scores {tuple(pred.shape)}: "
            f"give ({n},) integer labels or ({n}, {classes}) one-hot rows"
        )

    def _classes(self, xp, pred):
        """``arange(classes)`` on pred's device, made once per library, count and device
        and kept: a recorded step (a CUDA graph) reads the one it was recorded with,
        while a copy of the model on another backend may share this loss."""
        key = (xp.__name__, pred.shape[1], str(pred.device))  # a name: models pickle
        made = self._class_ids
        if made is None:  # unpickled from before it was made in __init__
            made = self._class_ids = {}
        if key not in made:
            made[key] = xp.arange(pred.shape[1], device=pred.device)
        return made[key]

    def backward(self):
        if self._grad is None:
            raise forward_first(self)
        return self._grad

    def link(self, pred):
        return F.softmax(pred, axis=-1) if self.from_logits else pred

    @property
    def input_range(self):
        return None if self.from_logits else (0.0, 1.0)

    def count_correct(self, pred, target):
        kept = self._kept_count(pred, target)
        if kept is not None:
            return kept
        xp = namespace_of(pred)
        labels = xp.argmax(target, axis=1) if target.ndim == 2 else target
        clean = xp.all(pred == pred, axis=1)  # argmax picks a NaN: no row of them is right
        return xp.count_nonzero(xp.logical_and(xp.argmax(pred, axis=1) == labels, clean))

    def config(self):
        return {**super().config(), "from_logits": self.from_logits}


@register
class BinaryCrossEntropy(Loss):
    """Binary cross-entropy of probabilities (``from_logits=False``, after a Sigmoid
    layer, as the tutorials do) or of logits (``from_logits=True``: fused, and its loss
    exact in the tails, but on torch, whose own operator it takes there: that one rounds
    a loss below about 1e-13 to 0; the gradient ``sigmoid(z) - t`` is within eps/2 of
    exact, as ``F.sigmoid`` is). ``pred``: (batch, 1) or (batch,); ``target``: 0/1 of the
    same length. ``"mean"`` divides by every element, ``(batch, k)`` outputs' too.
    Probabilities are clipped to [eps, 1 - eps]; targets outside [0, 1], and logits
    where probabilities go, are refused by ``fit`` (``nb.data_checks.check_targets``,
    the last layer's range), not by a direct call, which clips the logits as
    probabilities and takes the targets as given (-1/+1 labels give a loss that means
    nothing, negative at times: make them 0/1).
    """

    has_accuracy = True
    target_kind = "probabilities"
    targets_like_outputs = True
    aliases = ("bce", "binary_crossentropy")

    def __init__(self, from_logits: bool = False, reduction: str = "mean"):
        super().__init__(reduction)
        self.from_logits = boolean(from_logits, "from_logits")

    def forward(self, pred, target):
        xp = namespace_of(pred, target)
        _check_predictions(xp, pred, "BinaryCrossEntropy")
        given, target = target, _match_shape(xp, pred, target, "BinaryCrossEntropy")
        scale = self._scale(math.prod(pred.shape))
        kernels = table(xp)
        self._keep_count(pred, given)
        counted = kernels.sigmoid_bce_counted if self.from_logits else None
        if counted is not None:  # CuPy: the accuracy's count too
            value, self._grad, correct = counted(pred, target, scale)
            self._keep_count(pred, given, correct)
            return value
        fused = kernels.sigmoid_bce if self.from_logits else None
        if fused is not None:
            value, self._grad = fused(pred, target, scale)
            return value
        if self.from_logits:  # the reference of the fused kernel
            # max(z, 0) - z t + log(1 + exp(-|z|)): no overflow for any z, and the small
            # term last, which is the whole loss where the first two cancel (z = 40, t = 1)
            losses = (xp.maximum(pred, 0.0) - pred * target) + xp.log1p(xp.exp(-xp.abs(pred)))
            self._grad = scale * (F.sigmoid(pred) - target)
        else:
            eps = xp.finfo(pred.dtype).eps
            p = xp.clip(pred, min=eps, max=1.0 - eps)
            losses = -(target * xp.log(p) + (1 - target) * xp.log1p(-p))  # log1p: p of 1e-6
            self._grad = scale * (p - target) / (p * (1 - p))
        return scale * xp.sum(losses)

    def backward(self):
        if self._grad is None:
            raise forward_first(self)
        return self._grad

    def link(self, pred):
        return F.sigmoid(pred) if self.from_logits else pred

    @property
    def input_range(self):
        return None if self.from_logits else (0.0, 1.0)

    @property
    def threshold(self) -> float:
        """The output above which a label is 1: 0 for a logit, 0.5 for a probability."""
        return 0.0 if self.from_logits else 0.5

    def count_correct(self, pred, target):
        """Right when pred is on target's side of 0.5 (of 0, for logits); with several
        outputs (multi-label, or an image's pixels) a sample counts the share of its
        outputs that are right."""
        kept = self._kept_count(pred, target)
        if kept is not None:
            return kept
        xp = namespace_of(pred)
        target = _match_shape(xp, pred, target, "BinaryCrossEntropy")
        sides = (pred > self.threshold) == (target > 0.5)  # NaN is on neither side
        right = xp.count_nonzero(xp.logical_and(sides, pred == pred))
        outputs = math.prod(pred.shape[1:])  # a row's outputs, an image's pixels
        return right if outputs == 1 else xp.astype(right, pred.dtype) / outputs

    def config(self):
        return {**super().config(), "from_logits": self.from_logits}


class L2:
    """L2 weight decay as in the moons tutorial: ``reg_lambda / 2 * sum(W**2)`` over the
    weights (not the biases) is added to the loss, ``reg_lambda * W`` to their gradients."""

    def __init__(self, reg_lambda: float):
        self.reg_lambda = finite_float(reg_lambda, "L2 reg_lambda", low=0)

    def __repr__(self) -> str:
        return f"L2({self.reg_lambda!r})"

    def penalty(self, weights):
        """``reg_lambda / 2 * sum of squares`` of the arrays in ``weights`` (0-d array; 0.0
        where there are none: a model of no decayed weights, such as BatchNorm alone)."""
        total = None
        for w in weights:
            xp = namespace_of(w)
            flat = xp.reshape(w, (-1,))
            square = flat @ flat  # a dot product: one pass, no temporary
            total = square if total is None else total + square
        return 0.0 if total is None else (self.reg_lambda / 2) * total

    def add_to_gradients(self, weights: dict, grads) -> None:
        """``grads[name] += reg_lambda * W`` for each ``name: W`` of ``weights``."""
        for name, w in weights.items():
            grads[name] += self.reg_lambda * w


def from_config(config: dict) -> Loss:
    """A loss from ``loss.config()``'s output."""
    return LOSSES.build(config)


def get(spec) -> Loss:
    """A loss from a name ("cross_entropy", "bce", "mse", ...), a config dict, or a Loss."""
    return LOSSES.create(spec)


class LossSlot:
    """A model's ``loss`` (what ``predict_proba`` and ``evaluate`` use): a Loss, or None
    before a ``fit``; one set by hand by its name (``model.loss = "bce"``) is made into
    its Loss, as ``fit`` takes it. A model pickled before kept it as plain ``loss``."""

    def __get__(self, model, owner=None):
        if model is None:
            return self
        return model.__dict__.get("_loss", model.__dict__.get("loss"))

    def __set__(self, model, loss) -> None:
        model.__dict__["_loss"] = None if loss is None else get(loss)

    def __delete__(self, model) -> None:
        model.__dict__["_loss"] = None


def _scaled(x, scale: float):
    """``scale * x``, skipping the multiplication when scale is 1 (summed losses)."""
    return x if scale == 1.0 else scale * x


def _labels(xp, pred, target) -> bool:
    """Whether ``target`` holds (batch,) integer labels for ``pred``'s rows."""
    return (
        target.ndim == 1
        and target.shape[0] == pred.shape[0]
        and xp.isdtype(target.dtype, "integral")
    )


def _check_predictions(xp, pred, name: str) -> None:
    """Predictions are floats (a model's outputs): integers cannot be clipped to
    [eps, 1 - eps] or differentiated."""
    if not xp.isdtype(pred.dtype, "real floating"):
        raise TypeError(
            f"{name}: predictions must be floating point, got {pred.dtype}; pass the "
            "model's outputs, or cast with xp.astype(pred, xp.float32)"
        )


def _match_shape(xp, pred, target, name):
    """``target`` in ``pred``'s shape and dtype: (batch,) targets fit (batch, 1) outputs."""
    if target.dtype != pred.dtype:
        target = xp.astype(target, pred.dtype)
    if target.shape == pred.shape:
        return target
    if pred.ndim == 2 and pred.shape[1] == 1 and target.shape == (pred.shape[0],):
        return xp.reshape(target, pred.shape)
    raise ValueError(
        f"{name}: target of shape {tuple(target.shape)} does not fit output {tuple(pred.shape)}"
    )
