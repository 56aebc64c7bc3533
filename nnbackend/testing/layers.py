"""``check_layer``: everything a layer owes the library, checked on every backend.

    from nnbackend.testing import check_layer
    check_layer(lambda: Swish(beta=1.5), (4, 3))

The checks (each a row of the report, per backend):

- ``arrays``     forward and backward give arrays of the backend, in its dtype, of the
                 shapes ``output_shape`` promises; ``grads`` has the keys and shapes of
                 ``params`` (a transposed gradient shows here when not square); state
                 is in the dtype too, but integers where ``integer_state`` names it;
- ``range``      the outputs stay within ``output_range``, or within the input's range
                 where the layer ``keeps_range`` (``fit`` believes both);
- ``unchanged``  forward leaves ``x`` alone, backward leaves ``dy`` alone;
- ``repeat``     a second backward from the same ``dy``, and one with
                 ``input_grad=False`` (what ``fit`` asks of the first layer), give the
                 same ``grads``: none added to the last ones, none left out;
- ``gradient``   backward against central differences, for ``x`` and every parameter
                 (relative error below 1e-6), in training mode, in float64 where the
                 device has it (float32's central differences are too coarse); here and
                 in every row but save/load, weights built constant (gamma 1) move a little;
- ``float32``    a float32 layer keeps everything float32;
- ``parity``     the same outputs and gradients as the first backend for one seed, to
                 ``ulps`` units in the last place of each array's largest value;
- ``devices``    on array-api-strict's ``device1``, ``device2`` (in ``dtype``) and
                 ``no_float64`` (float32), every array stays on the device;
- ``config``     ``config()`` is JSON and ``from_config`` gives it back, with every
                 number, flag and name the layer keeps;
- ``save/load``  a one-layer model saved on each backend loads on the next bit for bit,
                 and gives the same outputs (to ``ulps``: a constructor argument that
                 ``config()`` leaves out comes back as its default);
- ``eval``       (first backend) evaluation changes no state, is deterministic, and
                 its backward matches central differences too;
- ``gradient batch 2``  (first backend, for a batch of 1) the gradient on two rows: on
                 one, a mean over the batch is its sum.
"""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from nnbackend.backend import Backend, Generator, get_backend
from nnbackend.checkpoint_sizes import settings_unwarned
from nnbackend.gradcheck import copied, from_state, numerical_gradient, unconstant
from nnbackend.io import load, save
from nnbackend.model import Sequential
from nnbackend.registry import LAYERS, check_base_init
from nnbackend.shapes import default_shape_hint
from nnbackend.testing.backends import (
    STRICT_DEVICES,
    STRICT_NO_FLOAT64,
    compare,
    has_strict,
    resolve,
    to_host,
)
from nnbackend.testing.report import (
    GRADIENT_TOL,
    STANDARD_HINT,
    ULPS,
    Report,
    config_round_trip,
    custom_for,
    gradient_problems,
    made_by,
    not_finite,
    range_problem,
)

DEVICE_HINT = (
    "make new arrays on the input's device (xp.asarray(c, device=x.device)) and call "
    "only the Array API standard, never numpy"
)
FLOAT64_HINT = "a float64 constant leaks in: make constants in the input's dtype"
LOAD_HINT = (
    "nb.load builds the layer from config() and fills params and state, without build(): "
    "give config() every argument, keep arrays in params or state, and hand a layer it "
    "holds its params and backend in forward"
)


@dataclass
class Run:
    """One layer built, run forward on ``x`` and backward from ``dy``."""

    layer: object
    x: object
    y: object
    dy: object
    dx: object
    moved: list[str]  # the arguments that forward or backward changed
    state_before: dict  # copies of the layer's state as built, before forward
    results: dict  # y, dx, grads and state on the host, right after backward


def check_layer(
    make_layer,
    input_shape: tuple[int, ...],
    backends="available",
    dtype: str = "float64",
    *,
    seed: int = 0,
    input_std: float = 2.0,
    ulps: float = ULPS,
) -> Report:
    """Check the layer that ``make_layer()`` makes, on inputs of ``input_shape``
    (batch axis first), on every backend of ``backends`` ("available": numpy, strict,
    torch where installed, cupy and torch:cuda where a GPU answers; or a list of names).
    Weights are drawn by ``Generator(seed)``, inputs from a normal of ``input_std``.
    Returns the ``Report``; raises ``CheckFailed`` (an AssertionError) with a table of
    what failed where. The module's docstring lists the checks."""
    chosen, layer = resolve(backends, dtype), made_by(make_layer, "layer")
    check_base_init(layer, "params")  # else every row fails in Python's words
    report = Report(f"check_layer({layer!r}, input_shape={tuple(input_shape)})")
    case = _Case(make_layer, tuple(input_shape), seed, input_std, ulps)
    runs, runs32 = {}, {}
    for backend in chosen:
        runs[backend.name] = case.checked_run(report, backend)
        runs32[backend.name] = case.float32_run(report, backend)
    case.parity(report, runs, chosen[0].name)
    case.parity(report, runs32, chosen[0].name, "parity float32")
    if has_strict(chosen):
        for name in STRICT_DEVICES:
            case.checked_run(report, get_backend(name, dtype), gradient=False, hint=DEVICE_HINT)
        case.float32_run(report, get_backend(STRICT_NO_FLOAT64), hint=DEVICE_HINT)
    case.config(report, chosen[0])
    for backend, target in zip(chosen, chosen[1:] + chosen[:1], strict=True):
        if runs[backend.name] is not None and runs[target.name] is not None:  # else said
            case.save_load(report, backend, target)
    case.eval_mode(report, chosen[0])
    case.batch_of_two(report, chosen[0])
    return report.raise_if_failed()


@dataclass
class _Case:
    make_layer: object
    input_shape: tuple[int, ...]
    seed: int
    input_std: float
    ulps: float

    def run(self, backend: Backend, training: bool = True) -> Run:
        layer = self.make_layer()
        layer.build(backend, Generator(self.seed))
        unconstant(layer, backend, Generator(self.seed + 4))
        x = Generator(self.seed + 1).normal(self.input_shape, std=self.input_std, backend=backend)
        x_before = np.array(backend.to_numpy(x))
        state_before = {k: copied(v) for k, v in layer.state.items()}
        y = self.forward(layer, x, training)
        dy = Generator(self.seed + 2).normal(tuple(y.shape), backend=backend)
        dy_before = np.array(backend.to_numpy(dy))
        dx = layer.backward(dy)
        moved = [
            what
            for what, a, before in (
                ("x (by forward)", x, x_before),
                ("dy (by backward)", dy, dy_before),
            )
            if not np.array_equal(backend.to_numpy(a), before)
        ]
        results = {"y": y, "dx": dx, **{f"grads[{k!r}]": v for k, v in layer.grads.items()}}
        results.update({f"state[{k!r}]": v for k, v in layer.state.items()})
        return Run(layer, x, y, dy, dx, moved, state_before, to_host(results))

    def forward(self, layer, x, training: bool):
        """Stochastic layers draw from a fresh generator: the same masks every time."""
        if layer.stochastic and training:
            return layer.forward(x, training, rng=Generator(self.seed + 3))
        return layer.forward(x, training)

    def checked_run(self, report, backend, gradient: bool = True, hint: str = STANDARD_HINT):
        """The run on ``backend`` with its rows: arrays, unchanged, gradient."""
        run = None
        with report.checking("runs", backend.name, hint):
            run = self.run(backend)
        if run is None:
            return None
        if report.add("arrays", backend.name, self.array_problems(run, backend)):
            said = range_problem(run.layer, to_host(run.x), run.results["y"])
            report.add("range", backend.name, said)
        moved = (
            f"changed its argument {', '.join(run.moved)}; work on a copy" if run.moved else None
        )
        report.add("unchanged", backend.name, moved)
        with report.checking("repeat", backend.name):
            report.add("repeat", backend.name, self.repeat_problems(run))
        if gradient:
            with report.checking("gradient", backend.name):
                if backend.dtype_name == "float32" and backend.supports("float64"):
                    twin = backend.with_dtype("float64")  # float32's differences are coarse
                    self.gradient(report, self.run(twin), twin, training=True)
                else:
                    self.gradient(report, run, backend, training=True)
        return run

    def float32_run(self, report, backend, hint: str = STANDARD_HINT):
        backend = backend.with_dtype("float32")
        run = None
        with report.checking("float32", backend.name, hint):
            run = self.run(backend)
        if run is not None:
            problem = self.array_problems(run, backend)
            if problem and " is float64, not " in problem:  # not a device named no_float64
                problem += f" ({FLOAT64_HINT})"
            report.add("float32", backend.name, problem or not_finite(run.results))
        return run

    def repeat_problems(self, run: Run) -> str | None:
        """Where a second backward from the same ``dy`` (onto the first's ``grads``: one
        that adds to them shows), or one with ``input_grad=False`` (into empty ``grads``:
        one that skips them shows), gives ``grads`` other than the first backward's."""
        problems = []  # each forward from the run's first state, as the first backward's
        layer = run.layer
        forward = from_state(layer, run.state_before)(lambda: self.forward(layer, run.x, True))
        for input_grad in (True, False):
            if not input_grad:
                layer.grads.clear()
            forward()  # a backward may let go of what it kept
            layer.backward(run.dy, input_grad=input_grad)
            for key in layer.params:
                first = run.results.get(f"grads[{key!r}]")
                again = layer.grads.get(key)
                if again is None:
                    problems.append(f"no grads[{key!r}] with input_grad={input_grad}")
                elif first is None or not _close(to_host(again), first):
                    problems.append(f"grads[{key!r}] differs with input_grad={input_grad}")
        forward()
        layer.backward(run.dy)  # grads as the first backward left them, for what follows
        fix = "each backward sets every grads[key] anew, whatever input_grad"
        return f"{'; '.join(problems)}: {fix}" if problems else None

    def array_problems(self, run: Run, backend: Backend) -> str | None:
        """What is wrong with the arrays of ``run`` (type, device, dtype, shape)."""
        layer = run.layer
        sample = layer.output_shape(self.input_shape[1:])
        arrays = {"y": (run.y, (self.input_shape[0], *sample)), "dx": (run.dx, self.input_shape)}
        arrays.update({f"params[{k!r}]": (v, None) for k, v in layer.params.items()})
        if set(layer.grads) != set(layer.params):
            return f"grads has keys {sorted(layer.grads)}, params {sorted(layer.params)}"
        for k, grad in layer.grads.items():
            arrays[f"grads[{k!r}]"] = (grad, tuple(layer.params[k].shape))
        problems = [array_problem(name, a, shape, backend) for name, (a, shape) in arrays.items()]
        if problems[0] and " has shape " in problems[0]:  # y's: maybe Layer's output_shape
            problems[0] += default_shape_hint(layer)
        for k, v in layer.state.items():
            integer = k in layer.integer_state
            problem = array_problem(f"state[{k!r}]", v, None, backend, integer=integer)
            if problem and not integer and _is_integral(v, backend):
                problem += f" (a count is kept as integers where integer_state names {k!r})"
            problems.append(problem)
        return "; ".join(p for p in problems if p) or None

    def gradient(self, report, run: Run, backend: Backend, training: bool, check=None) -> None:
        """Central differences of sum(forward(x) * dy) against backward, per array."""
        layer, x, xp = run.layer, run.x, backend.xp
        for key in list(layer.params):  # new arrays, as fit, model.to and nb.load put there
            layer.params[key] = xp.asarray(layer.params[key], copy=True)

        @from_state(layer, run.state_before)  # each time from where the run's forward began
        def objective(_=None):
            return xp.sum(self.forward(layer, x, training) * run.dy)

        grads, wanted = {"x": run.dx, **layer.grads}, {"x": x, **layer.params}
        problems = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # float32 is coarse: said below
            for name, value in wanted.items():
                numerical = numerical_gradient(objective, value)
                dtype, param = backend.dtype_name, name != "x"  # x: the input, not a weight
                problems += gradient_problems(name, grads[name], numerical, dtype, param)
        check = check or ("gradient" if training else "eval gradient")
        worst = f"relative errors below {GRADIENT_TOL[backend.dtype_name]:g}"
        report.add(check, backend.name, "; ".join(problems) or None, worst)

    def batch_of_two(self, report, backend: Backend) -> None:
        """At a batch of 1 a sum over the batch is its mean, so a backward that averages
        where it should sum passes: the gradient again on a batch of 2."""
        if self.input_shape[0] != 1:
            return
        two = replace(self, input_shape=(2, *self.input_shape[1:]))
        if backend.supports("float64"):  # float32's central differences are coarse
            backend = backend.with_dtype("float64")
        with report.checking("gradient batch 2", backend.name):
            two.gradient(report, two.run(backend), backend, True, check="gradient batch 2")

    def parity(self, report, runs: dict, reference: str, check: str = "parity") -> None:
        if runs.get(reference) is None:
            return
        want = runs[reference].results
        for name, run in runs.items():
            if name != reference and run is not None:
                compare(report, check, name, run.results, want, self.ulps)

    def config(self, report, backend: Backend) -> None:
        """``config()`` round trip; ``param_shapes()`` and ``state_shapes()`` as built."""
        config_round_trip(report, self.make_layer(), LAYERS)
        layer = self.make_layer()
        with report.checking("shapes", backend.name):
            said = (layer.param_shapes(), layer.state_shapes())
            layer.build(backend, Generator(self.seed))
            made = tuple(
                {k: tuple(a.shape) for k, a in d.items()} for d in (layer.params, layer.state)
            )
            problem = f"param_shapes(), state_shapes() say {said}; build made {made}"
            report.add("shapes", backend.name, None if said == made else problem)

    def save_load(self, report, backend: Backend, target: Backend) -> None:
        check, where = "save/load", f"{backend.name} -> {target.name}"
        with report.checking(check, where), tempfile.TemporaryDirectory() as folder:
            layer = self.make_layer()
            model = Sequential(
                [layer], backend=backend, seed=self.seed, input_shape=self.input_shape[1:]
            )
            x = Generator(self.seed + 1).normal(
                self.input_shape, std=self.input_std, backend=backend
            )
            model.forward(x, training=True)  # running state moves (BatchNorm)
            with settings_unwarned():  # a setting config() leaves out: the config row
                path = save(model, Path(folder) / "layer.h5")
            with report.checking(check, where, LOAD_HINT):  # what fails from here on
                self.loaded_alike(report, model, x, layer, path, target)

    def loaded_alike(self, report, model, x, layer, path, target: Backend) -> None:
        """The model saved at ``path``, loaded on ``target``: its arrays bit for bit,
        and its outputs to ``ulps``."""
        check, where = "save/load", f"{model.backend.name} -> {target.name}"
        again = load(path, target, custom_objects=custom_for(layer))
        saved = {**to_host(dict(model.params)), **to_host(dict(model.state))}
        loaded = {**to_host(dict(again.params)), **to_host(dict(again.state))}
        compare(report, check, where, loaded, saved, ulps=0)
        # and computes what it did: an argument config() left out comes back as its
        # default, which the weights alone do not show
        want = {"output": to_host(model.forward(x, training=False))}
        moved = target.asarray(to_host(x), dtype=target.dtype_name)
        got = {"output": to_host(again.forward(moved, training=False))}
        compare(report, check, where, got, want, ulps=self.ulps, hint=LOAD_HINT)

    def eval_mode(self, report, backend: Backend) -> None:
        """Evaluation: no state changes, the same output twice, gradients right."""
        with report.checking("eval", backend.name):
            run = self.run(backend, training=False)
            again = to_host(self.forward(run.layer, run.x, training=False))
            problems = []
            if not _same(to_host(run.state_before), to_host(dict(run.layer.state))):
                problems.append("evaluation changed the layer's state")
            if not np.array_equal(again, to_host(run.y)):
                problems.append("two evaluations of one input differ")
            report.add("eval", backend.name, "; ".join(problems) or None)
            if backend.supports("float64"):
                run = self.run(backend.with_dtype("float64"), training=False)
                self.gradient(report, run, backend.with_dtype("float64"), training=False)


def array_problem(name: str, a, shape, backend: Backend, *, integer=False) -> str | None:
    """What is wrong with array ``a`` (None: nothing): it must be of ``backend``'s array
    type, device and dtype (an integer one where ``integer``: a count a layer names in
    ``integer_state``), and of ``shape`` unless that is None."""
    if not isinstance(a, backend.array_types):
        return (
            f"{name} is a {type(a).__module__}.{type(a).__name__}, not an array of {backend.name}"
        )
    if a.device != backend.device:
        return f"{name} is on device {a.device!r}, not {backend.device!r}"
    if integer and not backend.xp.isdtype(a.dtype, "integral"):
        return f"{name} is {_dtype(a)}, not integers, as integer_state says"
    if not integer and a.dtype != backend.dtype:
        return f"{name} is {_dtype(a)}, not {backend.dtype_name}"
    if shape is not None and tuple(a.shape) != tuple(shape):
        turned = " (transposed?)" if tuple(a.shape) == tuple(shape)[::-1] else ""
        return f"{name} has shape {tuple(a.shape)}, not {tuple(shape)}{turned}"
    return None


def _dtype(a) -> str:
    return str(a.dtype).replace("torch.", "").replace("array_api_strict.", "")


def _is_integral(a, backend: Backend) -> bool:
    return isinstance(a, backend.array_types) and backend.xp.isdtype(a.dtype, "integral")


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _close(a, b) -> bool:
    """Equal but for the order of a sum (a GPU's atomic adds): within 1e-6 of the
    largest entry. What this finds, a gradient added twice or left out, is far off."""
    return a.shape == b.shape and np.allclose(a, b, rtol=0, atol=1e-6 * np.abs(b).max(initial=0))
