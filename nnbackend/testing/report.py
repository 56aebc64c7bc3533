"""What the checks found: one row per check and backend, a table to read, and the
error raised when a row failed.

    report = check_layer(...)          # raises CheckFailed (an AssertionError) on a failure
    print(report)                      # check | backend | result | detail
    report.failures                    # the failed rows
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field

import numpy as np

from nnbackend.backend import to_numpy
from nnbackend.gradcheck import relative_error
from nnbackend.registry import init_parameters, lost_setting, type_name

#: added to an error on a backend other than NumPy: the code may call NumPy's functions
STANDARD_HINT = "call only the Array API standard, through xp = namespace_of(x), never numpy"

ULPS = 100
"""The default agreement between backends, in units in the last place (see ``close``)."""

#: the largest relative error of a gradient against central differences, by dtype
GRADIENT_TOL = {"float64": 1e-6, "float32": 2e-2}


@dataclass(frozen=True)
class Row:
    check: str
    backend: str
    ok: bool
    detail: str = ""


@dataclass
class Report:
    """The rows of one check of ``subject`` (a layer, loss or optimizer, by its repr)."""

    subject: str
    rows: list[Row] = field(default_factory=list)
    """Every check's row, in the order run: ``Row(check, backend, ok, detail)``."""

    def add(self, check: str, backend: str, problem: str | None, detail: str = "") -> bool:
        """Record ``problem`` (None: passed, with ``detail``); returns whether it passed."""
        self.rows.append(Row(check, backend, problem is None, problem or detail))
        return problem is None

    @contextlib.contextmanager
    def checking(self, check: str, backend: str, hint: str = ""):
        """Record an exception raised inside as a failed row (``hint`` added), not a crash."""
        if hint is STANDARD_HINT and backend == "numpy":  # numpy's own calls run there
            hint = ""
        try:
            yield
        except Exception as exc:  # any error of the code under test is a finding
            message = f"raised {type(exc).__name__}: {_first_line(exc)}"
            self.add(check, backend, f"{message}{'; ' + hint if hint else ''}")

    @property
    def failures(self) -> list[Row]:
        """The rows that failed."""
        return [row for row in self.rows if not row.ok]

    @property
    def ok(self) -> bool:
        """Whether every row passed."""
        return not self.failures

    def table(self, rows: list[Row] | None = None) -> str:
        """``rows`` (default: all) as a text table: check, backend, result, detail."""
        rows = self.rows if rows is None else rows
        header = ("check", "backend", "result", "detail")
        lines = [(r.check, r.backend, "ok" if r.ok else "FAILED", r.detail) for r in rows]
        widths = [max(len(line[i]) for line in [header, *lines]) for i in range(3)]
        return "\n".join(
            "  ".join(cell.ljust(w) for cell, w in zip(line[:3], widths, strict=True))
            + "  "
            + line[3]
            for line in [header, *lines]
        ).rstrip()

    def __str__(self) -> str:
        return f"{self.subject}\n{self.table()}"

    def raise_if_failed(self) -> Report:
        """Raise ``CheckFailed`` with the failed rows as a table; else return self."""
        if self.failures:
            raise CheckFailed(self)
        return self


class CheckFailed(AssertionError):
    """Some check failed; ``.report`` holds every row."""

    def __init__(self, report: Report):
        self.report = report
        count = len(report.failures)
        super().__init__(
            f"{report.subject}: {count} check{'s' * (count > 1)} failed\n"
            f"{report.table(report.failures)}"
        )


def close(got: np.ndarray, want: np.ndarray, ulps: float = ULPS) -> str | None:
    """None when ``got`` is ``want`` to ``ulps`` units in the last place of the largest
    value of ``want`` (``ulps * eps(dtype) * max|want|``, plus ``ulps * eps`` of each
    element), else what differs. Shapes and dtypes must match exactly; where ``want``
    holds inf or NaN, ``got`` must hold the same (the rest is scaled without them)."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape or got.dtype != want.dtype:
        return f"{got.dtype}{list(got.shape)} where {want.dtype}{list(want.shape)} was expected"
    if got.size == 0 or not np.issubdtype(want.dtype, np.floating):
        return None if np.array_equal(got, want) else "differs"
    finite = np.isfinite(want)
    if not np.array_equal(got[~finite], want[~finite], equal_nan=True):
        return "differs where the reference holds inf or NaN"
    got, want = got[finite], want[finite]
    if not np.all(np.isfinite(got)):
        return "holds inf or NaN where the reference holds numbers"
    if want.size == 0:
        return None
    eps = float(np.finfo(want.dtype).eps)
    scale = float(np.max(np.abs(want)))
    with np.errstate(over="ignore"):  # float64 values of opposite signs near the top
        diff = np.abs(got.astype(np.float64) - want)
    # each term apart, in float64: their sum past float32's (or float64's) range is inf
    if np.all(diff <= ulps * eps * scale + ulps * eps * np.abs(want.astype(np.float64))):
        return None
    if scale == 0:  # no ulps to count in
        every = "every value" if finite.all() else "every finite value"
        return f"differs by up to {float(np.max(diff)):.3g} where {every} is 0"
    worst = float(np.max(diff)) / (eps * max(scale, np.finfo(want.dtype).tiny))
    return f"differs by {worst:.3g} ulps of max|value| = {scale:.3g} (allowed: {ulps})"


def not_finite(results: dict) -> str | None:
    """Which float arrays of ``results`` (name -> host array) hold inf or NaN: in a
    float32 run where inputs are a few units, an overflow (float64 hides it)."""
    bad = [
        name
        for name, a in results.items()
        if np.issubdtype(np.asarray(a).dtype, np.floating) and not np.all(np.isfinite(a))
    ]
    if not bad:
        return None
    return (
        f"{', '.join(bad)} {'hold' if len(bad) > 1 else 'holds'} inf or NaN in float32: "
        "keep what is computed within float32's range (exp overflows past 88: a softmax "
        "subtracts the max first)"
    )


def range_problem(layer, x: np.ndarray, y: np.ndarray) -> str | None:
    """Where the outputs ``y`` leave the range the layer says they take (host arrays):
    its input's where it ``keeps_range``, else ``output_range``. ``fit`` takes its word,
    feeding the outputs to a loss that wants probabilities on the strength of it."""
    y = y[np.isfinite(y)]  # inf or NaN: the float32 row's
    if y.size == 0 or x.size == 0:
        return None
    if getattr(layer, "keeps_range", False):
        low, high = float(x.min()), float(x.max())
        said = f"its input's range [{low:.6g}, {high:.6g}], as keeps_range = True says"
        fix = "keeps_range = False, and the output_range they can take (or None)"
    elif (declared := getattr(layer, "output_range", None)) is not None:
        (low, high), fix = declared, "the output_range they can take, or None"
        said = f"its output_range {tuple(declared)}"
    else:
        return None
    reached, eps = (float(y.min()), float(y.max())), 8 * float(np.finfo(y.dtype).eps)
    slack = [eps * max(abs(bound), 1.0) for bound in (low, high)]  # a mean's rounding
    if low - slack[0] <= reached[0] and reached[1] <= high + slack[1]:  # inf: no bound
        return None
    return (
        f"its outputs reach [{reached[0]:.6g}, {reached[1]:.6g}], outside {said}, which fit "
        f"believes (a loss that takes probabilities is fed them on its word): say {fix}"
    )


def config_round_trip(report: Report, obj, registry) -> None:
    """A "config" row: ``config()`` is JSON, names the class as it is registered, and
    ``from_config`` gives it back; the detail says whether ``registry`` knows the class
    (else ``nb.load`` needs ``custom_objects``)."""
    with report.checking("config", "-"):
        config = json.loads(json.dumps(obj.config()))
        name = registry.name_of(type(obj))
        again = type(obj).from_config({k: v for k, v in config.items() if k != "type"})
        problem = None
        if config.get("type") != name:
            problem = f"config()['type'] is {config.get('type')!r}, not {name!r}"
        elif json.loads(json.dumps(again.config())) != config:
            problem = f"from_config(config()) has config {again.config()}, not {config}"
        elif lost := lost_setting(obj, again) or lost_setting(
            obj,
            again,
            only=init_parameters(type(obj)),  # an optimizer's lr: a property
        ):
            where = "config() (its _hyper())" if registry.kind == "optimizer" else "config()"
            problem = (
                f"from_config(config()) has {lost}: {where} leaves out an argument, which "
                "nb.load would set to its default"
            )
        known = "not registered: nb.load needs custom_objects" if custom_for(obj) else "registered"
        report.add("config", "-", problem, known)


def custom_for(obj) -> dict:
    """The ``custom_objects`` that ``nb.load`` needs for ``obj``'s class: none where it
    is registered under the name its config writes, so a load goes through the registry."""
    cls, name = type(obj), type_name(obj)
    return {} if name in cls.registry and cls.registry.get(name) is cls else {name: cls}


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else ""


def gradient_problems(name: str, analytic, numerical, dtype: str, param: bool = False) -> list[str]:
    """[] when they agree, else a sentence that names the likely mistake (``param``: of
    a layer's weight, which its forward may not read as the layer holds it)."""
    if tuple(analytic.shape) != tuple(numerical.shape):
        return []  # the arrays row says so
    error = relative_error(analytic, numerical)
    if error < GRADIENT_TOL[dtype]:
        return []
    a, n = to_numpy(analytic), to_numpy(numerical)
    text = f"d/d{name}: analytic vs numerical relative error {error:.2g}"
    if param and np.any(a) and not np.any(n):  # the output ignored the weight
        return [f"{text}: the output does not change with params[{name!r}]: forward "
                "computes with an array of its own, not params[key] as it is at the call "
                "(fit, model.to and nb.load put new arrays there)"]  # fmt: skip
    ratio = float(np.sum(a * n) / np.sum(n * n)) if np.any(n) else 0.0
    if abs(ratio - 1) > 1e-3 and relative_error(a, ratio * n) < GRADIENT_TOL[dtype]:
        return [f"{text}: the analytic gradient is {ratio:.3g} times the right one"]
    if a.ndim == 2 and a.shape[0] == a.shape[1] and relative_error(a.T, n) < GRADIENT_TOL[dtype]:
        return [f"{text}: the analytic gradient is the right one transposed"]
    return [text]


def made_by(make, what: str):
    """``make()``: the checks make a fresh one for each run. The thing itself given (a
    layer, whose ``__call__`` would run it instead) is told what to give."""
    if hasattr(make, "config") and not isinstance(make, type):
        raise TypeError(
            f"check_{what} takes what makes the {what}, for a fresh one at each run: "
            f"check_{what}(lambda: {type(make).__name__}(...), ...), not the {what} {make!r}"
        )
    return make()
