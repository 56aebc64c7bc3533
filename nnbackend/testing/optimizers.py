"""``check_optimizer``: every step equals the optimizer's formula, on every backend.

The formula is yours, in NumPy, one parameter at a time:

    def sgd(w, g, state, t, lr=0.1):      # w, g: float64 arrays; state: a dict kept for
        return w - lr * g                  # this parameter across steps; t = 1, 2, ...

    check_optimizer(lambda: nb.optim.SGD(0.1), sgd)

Rows: ``formula`` (``steps`` steps from the same weights and gradients match the
formula, to ``ulps`` units in the last place of each weight's largest value),
``unchanged`` (the gradients are left alone), ``flat`` (where the optimizer says it is
``elementwise`` and the backend has views: the same steps as one update of every
weight at once, as ``fit`` runs them), ``float32`` (weights and state stay float32 on
the backend), the formula again on array-api-strict's ``device1`` and ``device2`` and
float32 on its ``no_float64`` (every array stays on its device), ``moves`` (after
``model.to``, on the next backend, all state is there and the next step is still the
formula's), ``save/load`` (the state and step count come back bit for bit, and the
next step is the same bit for bit), ``lr`` (a first step at a rate of 0 moves nothing:
the update takes the rate it is given), and ``config``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from nnbackend.backend import Backend, Generator, get_backend
from nnbackend.checkpoint_sizes import settings_unwarned
from nnbackend.flat import FlatArrays
from nnbackend.io import load, save
from nnbackend.layers import Dense
from nnbackend.model import Sequential
from nnbackend.registry import OPTIMIZERS, check_base_init
from nnbackend.testing.backends import (
    STRICT_DEVICES,
    STRICT_NO_FLOAT64,
    compare,
    has_strict,
    resolve,
    to_host,
)
from nnbackend.testing.layers import DEVICE_HINT, array_problem
from nnbackend.testing.report import ULPS, Report, config_round_trip, custom_for, made_by

SHAPES = {"0.W": (4, 3), "0.b": (3,)}  # a Dense(4, 3)'s weights, as in a model
STATE_HINT = (
    "keep what an update carries from step to step per weight in slots "
    "(self._slot(slot, name, grad)) and the step count in iterations: model.to moves, "
    "and a checkpoint saves, those alone"
)


def check_optimizer(
    make_optimizer,
    reference,
    backends="available",
    dtype: str = "float64",
    *,
    steps: int = 3,
    seed: int = 0,
    ulps: float = ULPS,
) -> Report:
    """Check the optimizer ``make_optimizer()`` makes against ``reference(w, g, state,
    t) -> new w`` (NumPy, float64; ``state`` a dict per parameter that persists across
    steps; ``t`` the step, from 1) on every backend of ``backends``. Returns the
    ``Report``; raises ``CheckFailed`` with a table of what failed where."""
    chosen, optimizer = resolve(backends, dtype), made_by(make_optimizer, "optimizer")
    check_base_init(optimizer, "state")  # else every row fails in Python's words
    report = Report(f"check_optimizer({optimizer!r})")
    expected = _reference_steps(reference, seed, steps + 2)
    for backend in chosen:
        with report.checking("formula", backend.name):
            _formula(report, make_optimizer, backend, expected, steps, ulps, seed)
        with report.checking("flat", backend.name):
            _flat_formula(report, make_optimizer, backend, expected, steps, ulps, seed)
        with report.checking("float32", backend.name):
            _formula(report, make_optimizer, backend.with_dtype("float32"), expected, 1, ulps, seed)
    if has_strict(chosen):  # array-api-strict's devices: every array stays on its own
        for backend in [get_backend(name, dtype) for name in STRICT_DEVICES]:
            with report.checking("formula", backend.name, DEVICE_HINT):
                _formula(report, make_optimizer, backend, expected, steps, ulps, seed)
        no_float64 = get_backend(STRICT_NO_FLOAT64)
        with report.checking("float32", no_float64.name, DEVICE_HINT):
            _formula(report, make_optimizer, no_float64, expected, 1, ulps, seed)
    with report.checking("lr", chosen[0].name):
        _reads_its_rate(report, make_optimizer(), chosen[0], seed)
    for backend, target in zip(chosen, chosen[1:] + chosen[:1], strict=True):
        where = f"{backend.name} -> {target.name}"
        with report.checking("moves", where, STATE_HINT):
            _moves_and_saves(report, make_optimizer, backend, target, expected, ulps, seed)
    config_round_trip(report, make_optimizer(), OPTIMIZERS)
    return report.raise_if_failed()


def _weights(seed: int) -> dict[str, np.ndarray]:
    host = Generator(seed).host()
    return {name: host.normal(size=shape) for name, shape in SHAPES.items()}


def _gradients(seed: int, step: int) -> dict[str, np.ndarray]:
    return _weights(seed + 1000 * step)


def _reference_steps(reference, seed: int, steps: int) -> list[dict]:
    """The weights after each step, by the formula: [after step 1, after step 2, ...]."""
    weights, states, after = _weights(seed), {name: {} for name in SHAPES}, []
    for t in range(1, steps + 1):
        grads = _gradients(seed, t)
        weights = {
            k: np.asarray(reference(w.copy(), grads[k].copy(), states[k], t), dtype=np.float64)
            for k, w in weights.items()
        }
        after.append(weights)
    return after


def _step(optimizer, params: dict, backend: Backend, seed: int, t: int) -> list[str]:
    """Step ``t`` on ``params`` (in place); the names of gradients it changed."""
    grads = {k: backend.asarray(g) for k, g in _gradients(seed, t).items()}
    before = to_host(grads)
    optimizer.step(params, grads)
    return [k for k, g in to_host(grads).items() if not np.array_equal(g, before[k])]


def _formula(report, make_optimizer, backend: Backend, expected, steps: int, ulps, seed) -> None:
    optimizer = make_optimizer()
    params = {k: backend.asarray(w) for k, w in _weights(seed).items()}
    check = "float32" if backend.dtype_name == "float32" else "formula"
    changed = []
    for t in range(1, steps + 1):
        changed += _step(optimizer, params, backend, seed, t)
        want = {k: w.astype(backend.dtype_name) for k, w in expected[t - 1].items()}
        compare(report, check, f"{backend.name} step {t}", to_host(params), want, ulps)
    arrays = {**{f"params[{k!r}]": v for k, v in params.items()}, **_state_arrays(optimizer)}
    problems = [p for k, a in arrays.items() if (p := array_problem(k, a, None, backend))]
    report.add(f"{check} arrays", backend.name, "; ".join(problems) or None)
    if check == "formula":
        moved = f"changed the gradients {sorted(set(changed))}" if changed else None
        report.add("unchanged", backend.name, moved)


def _reads_its_rate(report, optimizer, backend: Backend, seed: int) -> None:
    """A first step at a rate of 0 (a schedule's, as ``current_lr`` gives it) leaves
    every weight as it was (a later one may not: Momentum's velocity carries on):
    ``update`` must take its ``lr`` argument, not ``self.lr``, which at a constant rate
    passes every formula row."""
    optimizer.current_lr = lambda like=None: 0.0
    params = {k: backend.asarray(w) for k, w in _weights(seed).items()}
    before = to_host(params)
    _step(optimizer, params, backend, seed, 1)
    moved = [k for k, w in to_host(params).items() if not np.array_equal(w, before[k])]
    problem = None
    if moved:
        problem = (
            f"at a rate of 0 the step moved {moved}: update(params, name, grad, lr) must "
            "use its lr argument (a schedule's rate), not self.lr"
        )
    report.add("lr", backend.name, problem)


def _flat_formula(report, make_optimizer, backend: Backend, expected, steps: int, ulps, seed):
    """The steps of ``_formula`` as ``step_flat`` takes them, every weight one buffer,
    where the optimizer says it may (an update that reads a whole weight, a norm,
    shows here, as one that rebinds its arrays would have)."""
    optimizer = make_optimizer()
    if not (backend.has_views and optimizer.updates_flat()):
        return
    first = backend.asarray(_weights(seed)["0.W"])
    params = FlatArrays(backend.xp, SHAPES, first.dtype, first.device)
    grads = params.like()
    for k, w in _weights(seed).items():
        params.views[k][...] = backend.asarray(w)
    failed = len(report.failures)
    for t in range(1, steps + 1):
        for k, g in _gradients(seed, t).items():
            grads.views[k][...] = backend.asarray(g)
        optimizer.step_flat(params, grads)
        want = {k: w.astype(backend.dtype_name) for k, w in expected[t - 1].items()}
        compare(report, "flat", f"{backend.name} step {t}", to_host(params.views), want, ulps)
    formula_held = not any(
        r.check == "formula" and r.backend.startswith(f"{backend.name} ") for r in report.failures
    )  # else the formula is to blame, not the flag
    if len(report.failures) > failed and formula_held:
        why = "the steps of every weight at once differ from the formula's: an update that "
        why += "reads more than each element (a norm, a mean) is not elementwise: leave it unset"
        report.add("flat", backend.name, why)


def _moves_and_saves(report, make_optimizer, backend, target, expected, ulps, seed) -> None:
    """One step on ``backend``, ``model.to(target)``, a step there, save, load, a step."""
    where = f"{backend.name} -> {target.name}"
    model = Sequential([Dense(4, 3)], backend=backend, seed=0)
    model.set_params({k: backend.asarray(w) for k, w in _weights(seed).items()})
    optimizer = make_optimizer()
    _step(optimizer, model.params, backend, seed, 1)
    model.to(target, optimizer=optimizer)
    state = _state_arrays(optimizer)
    problems = [p for k, a in state.items() if (p := array_problem(k, a, None, target))]
    report.add("moves", where, "; ".join(problems) or None, f"{len(state)} state arrays")
    _step(optimizer, model.params, target, seed, 2)
    want = {k: w.astype(target.dtype_name) for k, w in expected[1].items()}
    got = to_host(dict(model.params))
    compare(report, "moves: next step", where, got, want, ulps, hint=STATE_HINT)
    with tempfile.TemporaryDirectory() as folder:
        with settings_unwarned():  # a setting config() leaves out: the config row
            path = save(model, Path(folder) / "model.h5", optimizer=optimizer)
        custom = custom_for(optimizer)
        again, loaded, _ = load(path, target, with_optimizer=True, custom_objects=custom)
    same = {"iterations": np.asarray(optimizer.iterations), **to_host(_state_arrays(optimizer))}
    got = {"iterations": np.asarray(loaded.iterations), **to_host(_state_arrays(loaded))}
    compare(report, "save/load", target.name, got, same, ulps=0)
    _step(optimizer, model.params, target, seed, 3)
    _step(loaded, again.params, target, seed, 3)
    got, want = to_host(dict(again.params)), to_host(dict(model.params))
    compare(report, "save/load: next step", target.name, got, want, ulps=0, hint=STATE_HINT)


def _state_arrays(optimizer) -> dict:
    return {
        f"state[{slot!r}][{name!r}]": array
        for slot, arrays in optimizer.state.items()
        for name, array in arrays.items()
    }
