"""Metrics that ``fit`` and ``evaluate`` report beside the loss, as Keras has them.

    model.fit(X, y, loss="cross_entropy", optimizer="adam",
              metrics=["accuracy", nb.metrics.TopKAccuracy(k=3)])
    model.fit(X, y, loss="mse", optimizer="adam", metrics=["mae"])    # regression

Left out, ``metrics`` is accuracy for a loss that classifies, nothing else for the rest.
Each metric gives, per batch, a 0-d array on the device and a weight (a Python number);
the epoch's value is ``sum(weight * value) / samples``, added up on the host after the
one transfer that brings the loss there too. So a metric costs a few kernels per step and no sync.

Names (``nb.metrics.get``): "accuracy" ("acc"), "categorical_accuracy" (the argmax's
share, under any loss), "top_k_accuracy" (k = 5;
``TopKAccuracy(k)`` for another k), "mse" ("mean_squared_error"), "mae"
("mean_absolute_error"). A history's key is the metric's ``name``: "accuracy",
"top_3_accuracy", "mse", "mae" (and "val_..." on validation data).
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Iterable

from nnbackend.backend import namespace_of
from nnbackend.backend.errors import class_name
from nnbackend.checks import positive_int
from nnbackend.history import is_weight
from nnbackend.registry import METRICS, UnknownTypeError, construct, register, type_name


class Metric:
    """Base class: ``name`` (the history's key), ``check`` (does it apply to this loss
    and model?), ``batch`` (one batch's value and weight, on the device)."""

    name = "metric"
    """The key of its values in the History ("val_" + name for the validation data)."""

    greater_is_better: bool | None = None
    """True for a metric that rises as the model improves (the accuracies), False for
    one that falls (the errors). ``EarlyStopping(mode="auto")`` goes by it, and asks for
    a mode where it is None."""

    registry = METRICS

    def check(self, loss, n_outputs: int | None) -> None:
        """Raise ValueError when this metric means nothing for ``loss``."""

    def batch(self, out, target, loss):
        """``(0-d array, weight)`` for one batch of raw outputs ``out`` (batch, outputs):
        the array of ``out``'s library and device, the weight a Python number (the rows
        the value stands for, or 1 where the value is their sum)."""
        raise NotImplementedError

    def config(self) -> dict:
        return {"type": type_name(self)}

    @classmethod
    def from_config(cls, config: dict) -> Metric:
        return construct(cls, config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "type")
        return f"{type(self).__name__}({args})"


def check_batch_value(metric: Metric, part, out) -> None:
    """Refuse, by the metric's name, a ``batch`` result other than (0-d array of the
    outputs' library and device, a number): the host sums them after one transfer."""
    if (problem := _batch_problem(part, out)) is not None:
        raise TypeError(f"{type(metric).__name__}.batch returned {part!r}: {problem}")


def _batch_problem(part, out) -> str | None:
    if not (isinstance(part, tuple | list) and len(part) == 2):
        return "it returns a pair (value, weight)"
    value, weight = part
    library = type(out).__module__.split(".")[0]
    if type(value).__module__.split(".")[0] != library:
        return (
            f"its value is a {class_name(type(value))}, not a 0-d array of the outputs' "
            f"library ({library}): return xp.mean(...) or xp.sum(...), not a Python number"
        )
    if getattr(value, "ndim", None) != 0:
        return f"its value has shape {tuple(value.shape)}: return a 0-d array, the batch's"
    if value.device != out.device:
        return f"its value is on {value.device}, the outputs on {out.device}"
    if not isinstance(weight, numbers.Real):
        return (
            f"its weight is a {class_name(type(weight))}: a Python number, the rows the "
            "value stands for (out.shape[0]), or 1 where the value is their sum"
        )
    if not is_weight(weight):
        return f"its weight is {weight!r}: the rows the value stands for, a number >= 0"
    return None


@register
class Accuracy(Metric):
    """The share of samples classified right, as the loss decides it (argmax of the
    scores; the 0.5 side of a probability, the 0 side of a logit): under binary
    cross-entropy with several outputs, the share of outputs, as Keras's binary
    accuracy counts them."""

    name = "accuracy"
    aliases = ("acc", "sparse_categorical_accuracy", "binary_accuracy")
    greater_is_better = True

    def check(self, loss, n_outputs):
        if not loss.has_accuracy:
            several = "" if not (n_outputs or 0) > 1 else (
                "; a classifier of several outputs fitted so (a sigmoid net under MSE): "
                "metrics=['categorical_accuracy'] counts its argmax")  # fmt: skip
            raise ValueError(
                f"accuracy needs a loss that classifies (SoftmaxCrossEntropy, "
                f"BinaryCrossEntropy), not {loss!r}; for regression use metrics=['mae']{several}"
            )

    def batch(self, out, target, loss):
        return loss.count_correct(out, target), 1


@register
class TopKAccuracy(Metric):
    """The share of samples whose true class is among the ``k`` highest scores (ties
    count for the true class). Targets: labels (batch,) or one-hot rows (soft rows: the
    class of the largest weight, as ``Accuracy`` has it)."""

    aliases = ("top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy")
    greater_is_better = True

    def __init__(self, k: int = 5):
        self.k = positive_int(k, "TopKAccuracy k")
        self.name = f"top_{self.k}_accuracy"

    def check(self, loss, n_outputs):
        if loss.target_kind != "labels":
            raise ValueError(f"{self.name} needs class scores (SoftmaxCrossEntropy), not {loss!r}")
        if n_outputs is not None and 1 < n_outputs <= self.k:  # 1: the data check says why
            raise ValueError(
                f"{self.name} of a model with {n_outputs} classes is always 1: choose k < "
                f"{n_outputs}, e.g. nb.metrics.TopKAccuracy(k={max(1, n_outputs // 2)})"
            )

    def batch(self, out, target, loss):
        xp = namespace_of(out)
        labels = xp.argmax(target, axis=1) if target.ndim == 2 else target
        labels = xp.reshape(xp.astype(labels, xp.int64), (out.shape[0], 1))
        true_score = xp.take_along_axis(out, labels, axis=1)  # (batch, 1)
        # not "out > true_score": every comparison with NaN is False, and NaN scores
        # (weights gone NaN) made every row right
        above = xp.sum(xp.astype(xp.logical_not(out <= true_score), xp.int32), axis=1)
        return xp.count_nonzero(above < self.k), 1

    def config(self):
        return {"type": type_name(self), "k": self.k}


@register
class CategoricalAccuracy(Metric):
    """The share of samples whose largest output is their class's (the first of equal
    ones, as argmax has it; a NaN row wrong), under any loss with an output per class:
    Keras's categorical accuracy, Nielsen's ``evaluate``. Under softmax cross-entropy it
    is ``accuracy``; under binary cross-entropy it counts samples where ``accuracy``
    counts outputs, and under MSE it counts where ``accuracy`` is refused. Targets:
    labels (batch,) or rows of one class (the largest weight's); ``fit`` refuses rows
    of no label or several (multi-label)."""

    name = "categorical_accuracy"
    aliases = ("categorical_accuracy",)
    greater_is_better = True

    def check(self, loss, n_outputs):
        if n_outputs == 1:
            counted = "metrics=['accuracy'] counts its side of 0.5" if loss.has_accuracy else (
                f"{loss!r} counts no accuracy: metrics=['accuracy'] counts one output's side "
                "under loss='bce' (after a Sigmoid) or loss=nb.losses.BinaryCrossEntropy("
                "from_logits=True) (without one)")  # fmt: skip
            raise ValueError(
                "categorical_accuracy takes the largest of an output per class, but the model "
                f"has 1 output: {counted}"
            )
        if n_outputs is None:
            raise ValueError(
                "categorical_accuracy takes rows of an output per class, but the model's "
                "outputs are not rows (images, say): metrics=['mse'] or ['mae'] compare them"
            )

    def batch(self, out, target, loss):
        xp = namespace_of(out)
        labels = xp.argmax(target, axis=1) if target.ndim == 2 else xp.astype(target, xp.int64)
        right = (xp.argmax(out, axis=1) == labels) & xp.all(out == out, axis=1)  # not NaN
        return xp.count_nonzero(right), 1


class _Error(Metric):
    """An error of the predictions (``loss.link`` of the outputs: probabilities after
    a fused loss) against float targets of the same shape; (batch,) fits (batch, 1)."""

    greater_is_better = False

    def check(self, loss, n_outputs):
        if loss.target_kind == "labels":
            raise ValueError(
                f"{self.name} compares outputs with targets of the same shape; with "
                f"{loss!r} the targets are class labels: use metrics=['accuracy']"
            )

    def batch(self, out, target, loss):
        xp = namespace_of(out)
        pred = loss.link(out)
        target = xp.astype(target, pred.dtype)
        if target.ndim == 1 and pred.ndim == 2 and pred.shape[1] == 1:
            target = xp.reshape(target, pred.shape)
        per_row = xp.mean(self.error(xp, pred - target), axis=tuple(range(1, pred.ndim)))
        return xp.sum(per_row), 1

    def error(self, xp, diff):
        raise NotImplementedError


@register
class MeanSquaredError(_Error):
    """Mean of (prediction - target)**2 over every output of every sample."""

    name = "mse"
    aliases = ("mse",)

    def error(self, xp, diff):
        return diff * diff


@register
class MeanAbsoluteError(_Error):
    """Mean of |prediction - target| over every output of every sample."""

    name = "mae"
    aliases = ("mae",)

    def error(self, xp, diff):
        return xp.abs(diff)


def get(spec) -> Metric:
    """A metric from a name ("accuracy", "top_k_accuracy", "mse", "mae"), a config
    dict, or a Metric."""
    return METRICS.create(spec)


def for_fit(metrics, loss, n_outputs: int | None, *targets) -> list[Metric]:
    """The metrics ``fit`` logs: ``metrics`` made into objects and checked against
    ``loss`` (and the ``targets``, the training and validation y, where given); left out
    (None), accuracy for a loss that classifies."""
    if metrics is None:
        return [Accuracy()] if loss.has_accuracy else []
    if isinstance(metrics, str | dict | Metric | type):  # one metric, not a list of them
        metrics = [metrics]
    if not isinstance(metrics, Iterable):
        raise TypeError(f"metrics must be a list of names or Metric objects, not {metrics!r}")
    made = [get(m) for m in metrics]
    for metric in made:
        metric.check(loss, n_outputs)
    for y in targets if any(isinstance(m, CategoricalAccuracy) for m in made) else ():
        _one_class_each(y)
    names = [m.name for m in made]
    if len(set(names)) != len(names) or "loss" in names:
        raise ValueError(
            f"metrics must have distinct names other than 'loss', got {names}: name each "
            "once, and give a metric of one's own a name of its own (name = '...' in its class)"
        )
    return made


def _one_class_each(y) -> None:
    """Refuse targets of rows with no class or several (multi-label) for
    ``categorical_accuracy``, whose argmax of such a row means nothing."""
    xp = namespace_of(y)
    if (
        y.ndim != 2
        or y.shape[1] < 2
        or not xp.isdtype(y.dtype, ("bool", "integral", "real floating"))
    ):
        return  # labels, one column, or what the data's checks refuse next
    y = xp.astype(y, xp.float32)  # 0/1 rows alone: soft, smoothed or -1/+1 rows have a class
    off = xp.abs(xp.sum(y, axis=1) - 1)
    if bool(xp.all((y == 0) | (y == 1)) & xp.any(off > 1e-3)):  # NaN: the data's check says
        raise ValueError(
            "categorical_accuracy counts one class a sample, but y has rows with no label or "
            "several (multi-label): metrics=['accuracy'] counts each output, and "
            "sklearn.metrics.accuracy_score(y, model.predict(X)) whole rows"
        )


def taken_by(loss, model) -> list | None:
    """Those of ``model``'s last fit's metrics that ``loss`` takes (``evaluate(loss=
    "mse")`` after a fit with MSE and "mae" keeps "mae"); None where none is left, or
    the fit had none for a loss of another kind: ``for_fit``'s default then."""
    metrics, kept = getattr(model, "metrics", None), []
    for metric in metrics or ():
        try:
            metric.check(loss, model.n_outputs)
        except ValueError:
            continue
        kept.append(metric)
    asked_none = metrics == [] and type(loss) is type(model.loss)  # metrics=[] kept
    return kept if kept or asked_none else None


def named_metric(name: str):
    """The metric ``name`` makes (an alias, "acc", or TopKAccuracy's own name,
    "top_5_accuracy"); None where it names none, or one that takes arguments."""
    top_k = re.fullmatch(r"top_(\d+)_accuracy", name)
    try:  # an instance's: TopKAccuracy's name is made in __init__ ("top_5_accuracy")
        return TopKAccuracy(int(top_k[1])) if top_k else METRICS.create(name)
    except (UnknownTypeError, TypeError, ValueError):
        return None


class LossFacts:
    """What ``Metric.check`` reads of a loss (its targets' kind, whether it classifies,
    its repr), kept by a History's hint without the loss itself: a loss may hold the
    model, or not be picklable."""

    def __init__(self, loss):
        self.target_kind, self.has_accuracy = loss.target_kind, loss.has_accuracy
        self._shown = repr(loss)

    def __repr__(self) -> str:
        return self._shown


def key_hint(name: str, recorded: list, *, loss, n_outputs: int | None) -> str:
    """What to say of a metric ``name`` that a fit of ``loss`` did not record (a History's
    KeyError): one asked by an alias ("val_acc") is recorded by its own name; "val_*"
    needs validation data, where the fit had none; one the fit was not given is asked
    for, where the loss takes it, else its refusal says why."""
    prefix, bare = ("val_", name[4:]) if name.startswith("val_") else ("", name)
    metric = named_metric(bare)
    own = getattr(metric, "name", None)
    if isinstance(own, str) and prefix + own in recorded:
        return f"; {bare!r} is recorded by its own name: history[{prefix + own!r}]"
    known = bare in recorded or own in recorded
    unvalidated = bool(prefix) and not any(key.startswith("val_") for key in recorded)
    if unvalidated and known:
        then = f", then read history[{prefix + own!r}]" if own not in (None, bare) else ""
        return f"; for 'val_*' pass validation_data or validation_split{then}"
    if not isinstance(own, str) or known:
        return ""
    try:
        metric.check(loss, n_outputs)
    except ValueError as exc:  # accuracy of a regression: its own words say why
        return f"; this fit's loss cannot record it: {exc}"
    except Exception:  # a metric of one's own reading more of the loss: not judged
        pass
    asked = (
        f"nb.metrics.TopKAccuracy(k={metric.k})" if isinstance(metric, TopKAccuracy) else repr(own)
    )
    return f"; ask for it: metrics=[{asked}]" + (" and validation data" if unvalidated else "")


def monitor_hint(monitor: str, fit, n_outputs: int | None) -> str:
    """What to monitor instead, where ``fit`` (its ``metrics`` and ``loss``) does not
    record ``monitor``: a metric named by an alias ("val_acc") is recorded by its own
    name ("val_accuracy"); "val_*" needs validation data; one the loss cannot take is
    not suggested."""
    recorded = fit.metrics
    prefix, name = ("val_", monitor[4:]) if monitor.startswith("val_") else ("", monitor)
    top_k = re.fullmatch(r"top_(\d+)_accuracy", name)  # TopKAccuracy(k)'s own name
    metric = named_metric(name)
    own = getattr(metric, "name", None)
    if isinstance(own, str) and prefix + own in recorded:
        return f": {name!r} is recorded by its own name, so monitor={prefix + own!r}"
    unasked = isinstance(own, str) and own not in recorded  # "mae", not in metrics=
    if unasked:
        try:
            metric.check(fit.loss, n_outputs)
        except ValueError as exc:  # accuracy of a regression: its own words say why
            other = f"monitor={prefix + 'loss'!r}"
            if prefix and not any(key.startswith(prefix) for key in recorded):
                other = f"monitor='loss' (or {other}, with validation_data or validation_split)"
            return f"; and {exc}; monitor another, e.g. {other}"
    made = f"nb.metrics.TopKAccuracy(k={int(top_k[1])})" if top_k else repr(name)  # fit takes
    ask = f"metrics=[{made}]" if unasked else ""
    ask += f" and monitor={prefix + own!r}" if unasked and own != name else ""  # "acc"
    if prefix and not any(key.startswith(prefix) for key in recorded):
        alias = isinstance(own, str) and own != name and own in recorded  # "acc", recorded
        named = f", and monitor={prefix + own!r}" if alias else f", and {ask}" if ask else ""
        return f"; for 'val_*' pass validation_data or validation_split{named}"
    return f"; pass {ask}" if ask else ""
