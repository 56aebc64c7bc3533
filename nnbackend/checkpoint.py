"""Reading a checkpoint as untrusted input: every part is checked before it is used.

Order matters: the file's links and storage (``h5safe.open_untrusted``), then the
header, then the architecture (JSON bounded in size and depth, known types, valid
arguments, a parameter count under ``max_params``: the model is built without drawing
or allocating a weight), then the count of every array's values (``checkpoint_sizes``),
then each dataset's shape and dtype against what the architecture says, and only then
its bytes. Optimizer state must name the optimizer's own slots and the model's
parameters, with their shapes. Weights, hyper-parameters and counters must be finite,
and variances and sums of squares (``nonnegative_state``, ``nonnegative_slots``) at
least 0. Every problem is a ``CheckpointError`` that names the file.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from nnbackend.atomic import check_can_write
from nnbackend.checkpoint_sizes import (
    DEFAULT_MAX_PARAMS,
    array_shapes,
    check_copies,
    check_count,
    declared_shapes,
)
from nnbackend.h5safe import dataset, open_untrusted, printable
from nnbackend.h5text import attribute, parse_json
from nnbackend.registry import LOSSES, MODELS, OPTIMIZERS

FORMAT = "nnbackend"
"""The ``format`` attribute of a checkpoint file; ``load`` refuses a file without it."""
FORMAT_VERSION = 1
"""The checkpoint layout this release writes; a file of a later one asks for an upgrade."""
MAX_EPOCH = 2**53
CALLBACK_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}(\.[0-9]{1,3})?")
MAX_CALLBACKS = 64


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read as one (names the file and the problem)."""

    def __str__(self) -> str:  # a downloaded file's name may hold a terminal's escapes
        return printable(super().__str__())


@dataclass
class Checkpoint:
    """What a checkpoint holds, read and checked."""

    model: object
    optimizer: object = None
    epoch: int | None = None
    #: a callback (early stopping) had ended the run that saved it
    stopped: bool = False
    #: callback key -> its saved state, arrays under "arrays"
    callbacks: dict = field(default_factory=dict)
    path: Path | None = None


def check_can_save(path, name: str) -> bool:
    """Refuse, before any work, a ``path`` a save could not write (``check_can_write``)
    or should not replace: a file that is not an nnbackend checkpoint (a data set, notes:
    a mistyped path lost them for good). An empty file, a link (the save replaces the
    link, not its target) or no file may be replaced; so may a checkpoint, and then this
    says True. ``name`` says where the path was given, e.g. "checkpoint"."""
    check_can_write(path, name)
    try:
        info = os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    if not stat.S_ISREG(info.st_mode) or info.st_size == 0:
        return False
    try:
        with open_untrusted(path, CheckpointError, what="file") as f:
            what = "it is an HDF5 file of other data"
            if attribute(path, f, "format", CheckpointError, "str", default=None) == FORMAT:
                return True
    except (CheckpointError, OSError) as exc:  # OSError: one this user may not read
        what = printable(str(exc))
    raise CheckpointError(
        f"{name}={str(path)!r} holds a file that is not an nnbackend checkpoint ({what}), "
        "which a save would replace: name another file, or remove that one first"
    )


def nothing_saved_at(path) -> bool:
    """No file at ``path``, or an empty one (``touch``, ``mkstemp``): a save writes there
    without loss, and a resume from it starts at epoch 0."""
    try:
        info = os.stat(path)
    except FileNotFoundError:  # a dangling link too
        return True
    return stat.S_ISREG(info.st_mode) and info.st_size == 0


def saved_epoch(path) -> tuple[int | None, bool, object]:
    """(the last epoch trained, whether a callback ended the run, the architecture's
    config) of the checkpoint at ``path``; (None, False, config) for one saved outside a fit."""
    path = Path(path)
    with open_untrusted(path, CheckpointError, what="checkpoint") as f:
        text = attribute(path, f, "architecture", CheckpointError, "str")
        group = _group(path, f, "training", required=False)
        run = (None, False) if group is None else _epoch_and_stopped(path, group)
        return (*run, parse_json(path, text, "architecture", CheckpointError))


def read(path, backend, *, max_params: int | None = None, own: int = 0) -> Checkpoint:
    """The checkpoint at ``path`` on ``backend`` (a Backend, or a function of the saved
    dtype name that gives one). ``max_params`` given: the caller trusts the file's
    compression (see ``checkpoint_sizes.MAX_EXPANSION``); else the cap is the default,
    or ``own``, the values of the model a restore fills, where that is more."""
    path = Path(path)
    trusted = max_params is not None
    max_params = max(DEFAULT_MAX_PARAMS, own) if max_params is None else max_params
    try:
        with open_untrusted(path, CheckpointError, what="checkpoint") as f:
            dtype = _check_header(path, f)
            backend = backend(dtype) if callable(backend) else backend
            widest = 8  # its datasets' values: float64 in a float32 file is cast once read
            model = _build_model(path, f, backend, (max_params, trusted, widest))
            return Checkpoint(
                model,
                _read_optimizer(path, f, model, backend),
                *_read_training(path, f, model),
                callbacks=_read_callbacks(path, f, model, backend),
                path=path,
            )
    except FileNotFoundError as exc:  # the path once: Python's message adds the filename
        raise FileNotFoundError(exc.errno, "no checkpoint at this path", str(path)) from None


def _check_header(path: Path, f: h5py.File) -> str:
    """The saved float dtype, once the format tag and version are right."""
    missing = [a for a in ("format", "format_version", "architecture", "dtype") if a not in f.attrs]
    missing += [g for g in ("weights",) if g not in f]
    if missing or attribute(path, f, "format", CheckpointError, "str") != FORMAT:
        keys = sorted(f.keys())[:20]
        raise CheckpointError(
            f"{path} is an HDF5 file but not an nnbackend checkpoint: it lacks "
            f"{', '.join(missing) or 'the format tag'} (its top level holds {keys})"
        )
    version = attribute(path, f, "format_version", CheckpointError, "int")
    if not 1 <= version <= FORMAT_VERSION + 100:  # past 100: a damaged or crafted file
        raise CheckpointError(f"{path}: format_version {version} is not a version nb.save writes")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} was written in checkpoint format {version}, newer than the "
            f"{FORMAT_VERSION} this nnbackend reads: upgrade nnbackend to load it"
        )
    dtype = attribute(path, f, "dtype", CheckpointError, "str")
    if dtype not in ("float32", "float64"):
        raise CheckpointError(f"{path}: dtype {dtype[:40]!r} is not 'float32' or 'float64'")
    return dtype


# --- the model --------------------------------------------------------------------


def _build_model(path: Path, f: h5py.File, backend, limits: tuple):
    """The model the architecture describes, its weights and running state read once
    the arrays of the whole file are counted (``limits``: max_params, whether the
    caller trusts the file's compression, the bytes of a saved value)."""
    text = attribute(path, f, "architecture", CheckpointError, "str")
    config = parse_json(path, text, "architecture", CheckpointError)
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise CheckpointError(
            f"{path}: its architecture is not a model's config "
            f"(a dict with a list of layers): {text[:100]!r}"
        )
    try:
        model = MODELS.build(config, backend=backend, seed=0, build=False)
    except Exception as exc:  # a user's class may raise anything: all of it is a bad file
        raise CheckpointError(f"{path}: its architecture cannot be built: {_reason(exc)}") from exc
    shapes = declared_shapes(path, model, CheckpointError)
    max_params, trusted, itemsize = limits
    check_count(path, f, shapes, max_params, CheckpointError)
    own = {**shapes["params"], **shapes["state"]}  # what slots and callbacks may copy
    check_copies(path, f, own, max_params, trusted, itemsize, CheckpointError)
    for kind in ("params", "state"):
        _fill(path, f, kind, model, shapes[kind], backend)
    if "loss" in f.attrs:
        model.loss = _build(path, f, "loss", "loss", LOSSES)
    return model


def _fill(path: Path, f, kind: str, model, expected: dict, backend) -> None:
    """Read the weights (``kind="params"``, group /weights) or the running state (/state)
    into the layers, each checked against ``expected`` first."""
    what = "weights" if kind == "params" else "state"
    group = _group(path, f, what, required=kind == "params")
    saved = set() if group is None else set(group.keys())
    if saved != set(expected):
        method = "param_shapes" if kind == "params" else "state_shapes"
        hint = (
            f" (a layer of your own must give the shapes of its {what} in {method}())"
            if saved - set(expected)
            else ""
        )
        raise CheckpointError(
            f"{path}: the {what} saved ({_names(saved)}) do not match the "
            f"architecture's ({_names(expected)}){hint}"
        )
    for name, shape in expected.items():
        index, key = name.split(".", 1)
        layer = model.layers[int(index)]
        floats = kind == "params" or key not in layer.integer_state
        kinds = "f" if floats else "iu"
        host = _array(path, group, name, shape, "the architecture", kinds, backend.dtype_name)
        if kind == "state" and key in layer.nonnegative_state:
            _check_sign(path, group, name, host)
        getattr(layer, kind)[key] = _to_backend(backend, host)


def _build(path: Path, obj, attr: str, name: str, registry):
    """The object (loss, optimizer) whose JSON config is the attribute ``attr`` of ``obj``."""
    text = attribute(path, obj, attr, CheckpointError, "str")
    config = parse_json(path, text, name, CheckpointError)
    try:
        return registry.build(config)
    except Exception as exc:
        raise CheckpointError(f"{path}: its {name} cannot be built: {_reason(exc)}") from exc


# --- optimizer, training, callbacks ------------------------------------------------


def _read_optimizer(path: Path, f, model, backend):
    group = _group(path, f, "optimizer", required=False)
    if group is None:
        return None
    optimizer = _build(path, group, "config", "optimizer", OPTIMIZERS)
    iterations = attribute(path, group, "iterations", CheckpointError, "int")
    if not 0 <= iterations <= MAX_EPOCH:
        raise CheckpointError(
            f"{path}: the optimizer's iteration count {iterations} is not between 0 and {MAX_EPOCH}"
        )
    if set(group.keys()) != set(optimizer.slots):
        raise CheckpointError(
            f"{path}: {type(optimizer).__name__} keeps the state "
            f"{_names(optimizer.slots)}, but the file holds "
            f"{_names(group.keys())}"
        )
    positive = optimizer.nonnegative_slots  # Adam's v
    slots = {
        slot: _arrays_like_params(
            path, group, slot, model, backend, weights=True, nonnegative=slot in positive
        )
        for slot in optimizer.slots
    }
    optimizer.load_state_dict({"iterations": iterations, "slots": slots})
    return optimizer


def _arrays_like_params(
    path: Path, parent, name: str, model, backend, whole=False, nonnegative=False, weights=False
) -> dict:
    """Arrays named after some of the model's parameters and running state, each of
    that array's shape, kind and sign (EarlyStopping's best weights and BatchNorm
    statistics, a counter's integers). ``whole``: a copy of every parameter or none, and
    of all the running state or none (a part would put weights of two epochs together).
    ``nonnegative``: every array at least 0 (Adam's ``v``). ``weights``: of parameters
    alone (an optimizer's slots: a step updates no running state)."""
    group = _group(path, parent, name, required=True)
    shapes = {n: s for n, s in array_shapes(model).items() if not weights or n in model.params}
    saved = set(group.keys())
    if saved - set(shapes):
        raise CheckpointError(
            f"{path}: {group.name} names arrays the model does not have: "
            f"{_names(saved - set(shapes))} (it has {_names(shapes)})"
        )
    for part in (model.params, model.state) if whole else ():
        if saved & set(part) and not set(part) <= saved:
            raise CheckpointError(
                f"{path}: {group.name} holds some of the model's arrays, not all: "
                f"{_names(set(part) - saved)} missing"
            )
    integers = {f"{i}.{key}" for i, layer in enumerate(model.layers) for key in layer.integer_state}
    signed = {f"{i}.{k}" for i, layer in enumerate(model.layers) for k in layer.nonnegative_state}
    arrays = {}
    for n, shape in shapes.items():
        if n in saved:
            kinds = "iu" if n in integers else "f"
            host = _array(path, group, n, shape, f"parameter {n}", kinds, backend.dtype_name)
            if nonnegative or n in signed:
                _check_sign(path, group, n, host)
            arrays[n] = _to_backend(backend, host)
    return arrays


def _read_training(path: Path, f, model) -> tuple[int | None, bool]:
    """(epoch or None, stopped), with the model's generator set to the saved state."""
    group = _group(path, f, "training", required=False)
    if group is None:
        return None, False
    epoch, stopped = _epoch_and_stopped(path, group)
    text = attribute(path, group, "generator", CheckpointError, "str")
    state = parse_json(path, text, "generator state", CheckpointError)
    try:
        model.rng.state = state
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise CheckpointError(
            f"{path}: its generator state cannot be restored: {_reason(exc)}"
        ) from None
    return epoch, stopped


def _epoch_and_stopped(path: Path, group) -> tuple[int | None, bool]:
    epoch = attribute(path, group, "epoch", CheckpointError, "int")
    stopped = attribute(path, group, "stopped", CheckpointError, "int", default=0)
    if not -1 <= epoch <= MAX_EPOCH:
        raise CheckpointError(f"{path}: the saved epoch {epoch} is not between -1 and {MAX_EPOCH}")
    if stopped not in (0, 1):
        raise CheckpointError(f"{path}: /training/@stopped is {stopped}, not 0 or 1")
    return (None if epoch < 0 else epoch), bool(stopped)


def _read_callbacks(path: Path, f, model, backend) -> dict:
    group = _group(path, f, "callbacks", required=False)
    if group is None:
        return {}
    keys = list(group.keys())
    if len(keys) > MAX_CALLBACKS or not all(CALLBACK_KEY.fullmatch(k) for k in keys):
        raise CheckpointError(
            f"{path}: /callbacks holds {len(keys)} entries named {_names(keys)}; at most "
            f"{MAX_CALLBACKS} callbacks are saved, under their class names"
        )
    states = {}
    for key in keys:
        sub = _group(path, group, key, required=True)
        text = attribute(path, sub, "state", CheckpointError, "str")
        state = parse_json(path, text, f"callback {key}'s state", CheckpointError)
        if not isinstance(state, dict):
            raise CheckpointError(f"{path}: callback {key}'s state is not a JSON object")
        # EarlyStopping's best weights are a whole copy; another callback may keep some
        whole = key.split(".")[0] == "EarlyStopping"
        arrays = _arrays_like_params(path, group, key, model, backend, whole=whole)
        states[key] = {**state, "arrays": arrays}
    return states


# --- helpers ----------------------------------------------------------------------


def _group(path: Path, parent, name: str, *, required: bool):
    link = parent.get(name, getlink=True)
    if link is None and not required:
        return None
    if not isinstance(link, h5py.HardLink) or not isinstance(parent[name], h5py.Group):
        where = f"{parent.name.rstrip('/')}/{name}"
        raise CheckpointError(f"{path}: {where} is {'missing' if link is None else 'not a group'}")
    return parent[name]


def _array(path: Path, group, name: str, shape, needs: str, kinds: str, into: str) -> np.ndarray:
    """``group[name]``: its shape, dtype and stored size checked, then read, floats cast
    to ``into`` (the model's dtype), then its values checked to be finite there (1e300
    saved as float64 is inf in float32)."""
    host = dataset(path, group, name, CheckpointError, shape=shape, kinds=kinds, needs=needs)
    if host.dtype.kind == "f":
        with np.errstate(over="ignore"):
            host = host.astype(into, copy=False)
    if host.dtype.kind == "f" and not np.isfinite(host).all():
        bad = int((~np.isfinite(host)).sum())
        raise CheckpointError(
            f"{path}: {group.name}/{name} holds {bad} NaN or infinite values in {into}; "
            "a model that diverged is not worth loading"
        )
    return host


def _check_sign(path: Path, group, name: str, host: np.ndarray) -> None:
    if (host < 0).any():  # a variance or a sum of squares: its square root would be NaN
        raise CheckpointError(
            f"{path}: {group.name}/{name} holds {int((host < 0).sum())} negative values; "
            "it keeps squares (a variance), so the file is damaged or crafted"
        )


def _to_backend(backend, host: np.ndarray):
    return backend.asarray(host, dtype=backend.dtype_name if host.dtype.kind == "f" else None)


def _names(names) -> str:
    names = sorted(names)
    shown = ", ".join(repr(n[:40]) for n in names[:12])
    return shown + (f", ... ({len(names)} in all)" if len(names) > 12 else "") if names else "none"


def _reason(exc: BaseException) -> str:
    """The exception's text, shortened; it may quote the file (a name in a TypeError).
    600 characters hold an unknown type's remedy, its name shown up to 100 thrice."""
    text = printable(f"{type(exc).__name__}: {exc}")
    return text if len(text) <= 600 else text[:597] + "..."
