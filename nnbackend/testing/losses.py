"""``check_loss``: a loss's value and gradient, checked on every backend.

    check_loss(FocalLoss, (6, 3), labels)     # labels: host NumPy array of class indices

Rows: ``arrays`` (a 0-d value and a gradient of ``pred``'s shape, on the backend, in
its dtype), ``unchanged`` (pred and target left alone), ``gradient`` (backward against
central differences, in float64 where the device has it), ``float32``, ``parity``
(value and gradient as on the first backend), ``devices`` (array-api-strict's device1,
device2, no_float64), ``link`` (a link of its own gives probabilities where the loss
takes labels or 0/1 targets: ``predict_proba`` passes them on), ``accuracy`` (where
the loss ``has_accuracy``: ``count_correct`` counts the rows that ``link``'s likeliest
class, or side of 0.5, gets right), ``reduction`` (the other reduction's gradient
against central differences, and its value another than the first's) and ``config``.
Targets ``fit`` would refuse for such outputs are refused first, with its message.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from nnbackend.backend import Backend, Generator, get_backend
from nnbackend.data import target_dtype
from nnbackend.data_checks import check_targets
from nnbackend.gradcheck import numerical_gradient
from nnbackend.registry import LOSSES, check_base_init
from nnbackend.testing.backends import (
    STRICT_DEVICES,
    STRICT_NO_FLOAT64,
    compare,
    has_strict,
    resolve,
    to_host,
)
from nnbackend.testing.layers import DEVICE_HINT, FLOAT64_HINT, STANDARD_HINT, array_problem
from nnbackend.testing.report import (
    ULPS,
    Report,
    config_round_trip,
    gradient_problems,
    made_by,
    not_finite,
)


def check_loss(
    make_loss,
    pred,
    target,
    backends="available",
    dtype: str = "float64",
    *,
    seed: int = 0,
    ulps: float = ULPS,
) -> Report:
    """Check the loss ``make_loss()`` makes on predictions ``pred`` (a shape: drawn from
    a normal by ``Generator(seed)``; or a host array, e.g. probabilities for a loss
    that takes them) and host ``target`` (labels or values), on every backend of
    ``backends``. Returns the ``Report``; raises ``CheckFailed`` with a table of what
    failed where."""
    chosen = resolve(backends, dtype)
    if isinstance(pred, tuple):
        pred = Generator(seed).host().normal(size=pred)
    pred, target = np.asarray(pred, dtype=np.float64), np.asarray(target)
    loss = made_by(make_loss, "loss")
    check_base_init(loss, "reduction")  # else every row fails in Python's words
    outputs = pred.shape[1] if pred.ndim == 2 else None
    try:  # targets fit refuses would test the loss on what it never sees
        check_targets(target, pred.shape[0], outputs, loss, "target", "pred")
    except ValueError as exc:
        raise ValueError(f"check_loss: pred {pred.shape} as a model's outputs: {exc}") from None
    report = Report(f"check_loss({loss!r}, pred {pred.shape}, target {target.shape})")
    results, results32 = {}, {}
    for backend in chosen:
        results[backend.name] = _checked(report, make_loss, pred, target, backend, True)
        backend32 = backend.with_dtype("float32")
        results32[backend.name] = _checked(report, make_loss, pred, target, backend32, False)
    for check, found in (("parity", results), ("parity float32", results32)):
        want = found[chosen[0].name]
        for name, got in found.items():
            if name != chosen[0].name and got is not None and want is not None:
                compare(report, check, name, got, want, ulps)
    if has_strict(chosen):
        for name in (*STRICT_DEVICES, STRICT_NO_FLOAT64):
            device = get_backend(name, dtype=dtype if name in STRICT_DEVICES else "float32")
            _checked(report, make_loss, pred, target, device, False, DEVICE_HINT)
    first = chosen[0]
    with report.checking("link", first.name):
        _link_and_count(report, make_loss(), pred, target, first)
    with report.checking("reduction", first.name):
        twin = first.with_dtype("float64") if first.supports("float64") else first
        _other_reduction(report, make_loss(), pred, target, twin)
    config_round_trip(report, make_loss(), LOSSES)
    return report.raise_if_failed()


def _link_and_count(report, loss, pred, target, backend: Backend) -> None:
    """What ``predict_proba`` and the accuracy read of the loss. A ``link`` of its own
    (softmax, sigmoid) gives pred's shape and, where the loss takes labels or 0/1
    targets, probabilities (rows summing to 1 for labels); ``count_correct``, where the
    loss ``has_accuracy``, counts the rows whose likeliest class is the label (for 0/1
    targets: the outputs on the target's side of 0.5, a share of them per row, or the
    rows right in every output)."""
    P, T = _arrays(loss, pred, target, backend)
    loss.forward(P, T)
    proba = loss.link(P)
    problem = array_problem("link(pred)", proba, pred.shape, backend)
    if problem is None and proba is not P:
        problem = _not_probabilities(to_host(proba), loss.target_kind)
    report.add("link", backend.name, problem)
    if loss.has_accuracy and problem is None:
        count = to_host(loss.count_correct(P, T))
        wants = _right(to_host(proba), target, loss.target_kind)
        said = None
        if count.shape != () or not 0 <= float(count) <= pred.shape[0]:
            said = f"count_correct gave {count!r}: a 0-d count between 0 and {pred.shape[0]}"
        elif wants and not any(_same_count(count, want) for want in wants):
            side = "likeliest class" if loss.target_kind == "labels" else "side of 0.5"
            said = f"count_correct gave {float(count):g}; rows right by link(pred)'s {side}: "
            said += " or ".join(f"{want:g}" for want in wants)
        report.add("accuracy", backend.name, said)


def _not_probabilities(proba: np.ndarray, kind: str) -> str | None:
    if kind not in ("labels", "probabilities"):
        return None
    if not (np.all(proba >= 0) and np.all(proba <= 1)):
        found = f"[{np.nanmin(proba):.6g}, {np.nanmax(proba):.6g}]"
        return f"link(pred) gives values in {found}, which predict_proba passes on as probabilities"
    sums = proba.reshape(proba.shape[0], -1).sum(axis=1)
    if kind == "labels" and not np.allclose(sums, 1.0, rtol=0, atol=1e-6):
        return f"link(pred)'s rows sum to {sums.min():.6g} .. {sums.max():.6g}, not 1 (a softmax's)"
    return None


def _right(proba: np.ndarray, target: np.ndarray, kind: str) -> list[float]:
    """How many rows ``proba`` classifies right: by its likeliest class; for 0/1 targets
    the share of each row's outputs on the target's side of 0.5 (the built-in count), or
    the rows right in every output (an exact match); [] where there is no such rule."""
    if kind == "labels" and proba.ndim == 2:
        labels = target.argmax(axis=1) if target.ndim == 2 else target
        return [float(np.sum(proba.argmax(axis=1) == labels))]
    if kind != "probabilities":
        return []
    sides = ((proba > 0.5) == (np.reshape(target, proba.shape) > 0.5)).reshape(len(proba), -1)
    share, exact = float(sides.sum()) / sides.shape[1], float(sides.all(axis=1).sum())
    return [share] if share == exact else [share, exact]


def _same_count(count: np.ndarray, want: float) -> bool:
    """Equal but for the rounding of a share computed in the count's own dtype."""
    eps = float(np.finfo(count.dtype).eps) if np.issubdtype(count.dtype, np.floating) else 0
    return math.isclose(float(count), want, rel_tol=8 * eps, abs_tol=1e-9)


def _other_reduction(report, loss, pred, target, backend: Backend) -> None:
    """The loss with its other ``reduction`` ("sum" for "mean"): its gradient against
    central differences, and a value other than the first's (a forward or backward
    that never reads ``reduction`` passes every other row)."""
    config = {k: v for k, v in loss.config().items() if k != "type"}
    if config.get("reduction") not in ("mean", "sum") or pred.shape[0] < 2:
        return
    flipped = {"mean": "sum", "sum": "mean"}[config["reduction"]]
    other = type(loss).from_config({**config, "reduction": flipped})
    P, T = _arrays(loss, pred, target, backend)
    values = [float(to_host(each.forward(P, T))) for each in (loss, other)]
    dpred = other.backward()
    if wrong := array_problem("backward()", dpred, pred.shape, backend):
        problems = [wrong]
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            numerical = numerical_gradient(lambda p: other.forward(p, T), P)
        problems = gradient_problems("pred", dpred, numerical, backend.dtype_name)
    if values[0] != 0 and math.isclose(values[0], values[1], rel_tol=1e-9):  # not N times
        problems.append(f"the value is {values[0]:.6g} with either reduction")
    where = f"reduction={other.reduction!r}"
    report.add("reduction", backend.name, "; ".join(problems) or None, where)


def _checked(report, make_loss, pred, target, backend: Backend, gradient, hint=STANDARD_HINT):
    """Forward and backward on ``backend`` with their rows; the results on the host."""
    where = backend.name
    check = "runs" if backend.dtype_name != "float32" else "float32"
    found = None
    with report.checking(check, where, hint):
        loss = make_loss()
        P, T = _arrays(loss, pred, target, backend)
        before = to_host([P, T])
        value = loss.forward(P, T)
        dpred = loss.backward()
        moved = [n for n, a, b in zip(("pred", "target"), to_host([P, T]), before, strict=True)
                 if not np.array_equal(a, b)]  # fmt: skip
        problems = [
            array_problem("the value", value, (), backend),
            array_problem("backward()", dpred, pred.shape, backend),
        ]
        problem = "; ".join(p for p in problems if p) or None
        if check == "float32" and problem and "float64" in problem:
            problem += f" ({FLOAT64_HINT})"
        if check == "float32" and not problem:  # arrays, then: on the host at once
            problem = not_finite(to_host({"value": value, "backward()": dpred}))
        report.add("float32" if check == "float32" else "arrays", where, problem)
        if check != "float32":
            changed = f"changed its argument {', '.join(moved)}; work on a copy" if moved else None
            report.add("unchanged", where, changed)
        found = None if problem else to_host({"value": value, "backward()": dpred})
        if gradient and problem is None:
            if backend.dtype_name == "float32" and backend.supports("float64"):
                backend = backend.with_dtype("float64")  # float32's differences are coarse
                loss = make_loss()
                P, T = _arrays(loss, pred, target, backend)
                loss.forward(P, T)
                dpred = loss.backward()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                numerical = numerical_gradient(lambda p: loss.forward(p, T), P)
            wrong = gradient_problems("pred", dpred, numerical, backend.dtype_name)
            report.add("gradient", where, "; ".join(wrong) or None)
    return found


def _arrays(loss, pred, target, backend: Backend) -> tuple:
    """pred and target on ``backend``, copies of the caller's: on NumPy its arrays would
    be the caller's own, changed by a loss that changes its argument, for every run."""
    dtype = target_dtype(loss, target, backend)
    return backend.asarray(np.array(pred)), backend.asarray(np.array(target), dtype=dtype)
