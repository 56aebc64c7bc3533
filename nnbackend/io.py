"""Checkpoints in HDF5: save on one backend, load on any other, lose nothing.

    nb.save(model, "ckpt.h5", optimizer=opt, epoch=3)
    model = nb.load("ckpt.h5", backend="strict")
    model, opt, epoch = nb.load("ckpt.h5", with_optimizer=True)

The file is plain HDF5 (HDF5 1.10 or later), readable with h5py alone, its texts
fixed-length UTF-8 strings:

    /                attrs: format="nnbackend", format_version, architecture (JSON),
                            loss (JSON), dtype, saved_from (backend name)
    /weights/<name>  one dataset per parameter, e.g. "0.W", "2.b" (every array with a
                     fletcher32 checksum, in chunks of whole rows up to 1 MiB)
    /state/<name>    running state of layers that keep one
    /optimizer       attrs: config (JSON), iterations;  /optimizer/<slot>/<name> arrays
    /training        attrs: epoch, stopped (a callback ended the run), generator (JSON
                     of the shuffling generator's state)
    /callbacks/<key> attrs: state (JSON); arrays of the callback (EarlyStopping's best
                     weights) by parameter name

``save`` builds the file in memory, then writes it with ``atomic.atomic_write``: a crash,
a full disk or a second writer never leaves the target unloadable. ``load`` treats the
file as untrusted input (``nnbackend.checkpoint``): it reads no other file, runs no
code, and checks every size before it allocates.
"""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path

import h5py
import numpy as np

from nnbackend.atomic import atomic_write
from nnbackend.backend import Backend, get_backend, to_numpy
from nnbackend.checkpoint import (
    CALLBACK_KEY,
    DEFAULT_MAX_PARAMS,
    FORMAT,
    FORMAT_VERSION,
    MAX_CALLBACKS,
    MAX_EPOCH,
    Checkpoint,
    CheckpointError,
    check_can_save,
    read,
)
from nnbackend.checkpoint_sizes import (
    MAX_COPIES,
    array_shapes,
    as_json,
    check_declared,
    check_rebuilds,
)
from nnbackend.checks import boolean, home_expanded, integer, positive_int, read_path, warn_caller
from nnbackend.h5text import write_text
from nnbackend.h5walk import identity, known_harmless
from nnbackend.optim_base import Optimizer
from nnbackend.registry import custom_objects as custom_objects_scope
from nnbackend.saved_files import remember_save

CHUNK_BYTES = 1 << 20

__all__ = [
    "DEFAULT_MAX_PARAMS",
    "FORMAT",
    "FORMAT_VERSION",
    "Checkpoint",
    "CheckpointError",
    "NotFiniteError",
    "load",
    "restore",
    "restore_checkpoint",
    "save",
]


# --- saving -----------------------------------------------------------------------


class NotFiniteError(ValueError):
    """An array ``save`` would write holds NaN or inf, which ``load`` refuses; ``reason``
    names it. Nothing is written: a file at the path is left as it was."""

    def __init__(self, reason: str, path=None):
        where = "" if path is None else f"{path} not saved (a file there is left as it was): "
        super().__init__(where + reason)
        self.reason = reason


def save(model, path, optimizer=None, epoch: int | None = None, *, callbacks=None,
         stopped: bool = False) -> Path:  # fmt: skip
    """Write ``model`` (and ``optimizer`` state, ``epoch``, the shuffling generator's
    state) to ``path``, atomically. Returns the path.

    ``callbacks``: {key: state} of callbacks that keep a state (``fit`` passes them);
    ``stopped``: a callback ended the run, so resuming it has nothing left to train.
    A symbolic link at ``path`` is replaced by the file, its target left untouched; a
    file there that is not a checkpoint, or that is write-protected, is refused.
    """
    if not hasattr(model, "layers") or not hasattr(model, "params"):
        raise TypeError(f"nb.save(model, path) saves a model, not {model!r}")
    if optimizer is not None and not isinstance(optimizer, Optimizer):
        raise TypeError(
            f"optimizer is the Optimizer whose state to save (model.optimizer after a fit), "
            f"not {optimizer!r}"
        )
    if callbacks is not None and not isinstance(callbacks, dict):
        raise TypeError(
            "callbacks is {key: state} of the callbacks that keep one (fit passes them; "
            f"ModelCheckpoint saves them for you), not {callbacks!r}"
        )
    boolean(stopped, "stopped")
    if epoch is not None:
        integer(epoch, "epoch (the last one trained, from 0)", low=0, high=MAX_EPOCH)
    if optimizer is not None:  # as a load takes it; another model's state, as fit refuses it
        integer(optimizer.iterations, "the optimizer's step count", low=0, high=MAX_EPOCH)
        optimizer.train_for(model)
    path = home_expanded(path)
    check_can_save(path, "path")  # before the file is built
    check_declared(model)
    check_rebuilds(model, model.loss, optimizer)
    buffer = io.BytesIO()
    try:
        with h5py.File(buffer, "w", libver=("v110", "latest")) as f:  # attributes over 64 KiB
            _write(f, model, optimizer, epoch, stopped)
            _write_callbacks(f, callbacks or {}, array_shapes(model))
    except NotFiniteError as exc:
        raise NotFiniteError(exc.reason, path) from None
    written = atomic_write(path, buffer.getbuffer())
    known_harmless(identity(os.stat(written, follow_symlinks=False)))  # not walked at a load
    remember_save(model, written)
    return written


def _write(f: h5py.File, model, optimizer, epoch, stopped) -> None:
    write_text(f, "format", FORMAT)
    f.attrs["format_version"] = FORMAT_VERSION
    write_text(f, "architecture", json.dumps(model.config(), allow_nan=False))
    write_text(f, "dtype", model.backend.dtype_name)
    write_text(f, "saved_from", model.backend.name)
    if model.loss is not None:
        write_text(f, "loss", json.dumps(model.loss.config(), allow_nan=False))
    _write_arrays(f.create_group("weights"), model.params)
    _write_arrays(f.create_group("state"), model.state)
    if optimizer is not None:
        group = f.create_group("optimizer")
        write_text(group, "config", json.dumps(optimizer.config(), allow_nan=False))
        group.attrs["iterations"] = optimizer.iterations
        for slot, arrays in optimizer.state.items():
            _write_arrays(group.create_group(slot), arrays)
    training = f.create_group("training")
    training.attrs["epoch"] = -1 if epoch is None else int(epoch)
    training.attrs["stopped"] = int(bool(stopped))
    write_text(training, "generator", json.dumps(model.rng.state))


def _write_callbacks(f: h5py.File, states: dict, shapes: dict) -> None:
    """Each callback's state: its JSON, and its copies of the model's arrays (of
    ``shapes``, {name: shape}: a resume reads no others)."""
    if not states:
        return
    keys = list(states)
    named = all(isinstance(k, str) and CALLBACK_KEY.fullmatch(k) for k in keys)
    if len(keys) > MAX_CALLBACKS or not named:
        raise ValueError(
            f"callbacks' states are saved under their class names (a second of a class "
            f"as 'Name.1'), {MAX_CALLBACKS} at most, which a load reads back; got "
            f"{len(keys)} named {keys[:5]}"
        )
    group = f.create_group("callbacks")
    for key, state in states.items():
        what = f"callback {key!r} cannot be saved: its get_state()"
        if not isinstance(state, dict):
            raise TypeError(f"{what} gives a {type(state).__name__}, not a dict")
        plain = {k: v for k, v in state.items() if k != "arrays"} if "arrays" in state else state
        arrays = state.get("arrays") or {}
        _check_copies(what, arrays, shapes)
        sub = group.create_group(key)
        write_text(sub, "state", as_json(f"callback {key!r}", plain, "get_state()"))
        _write_arrays(sub, arrays)


def _check_copies(what: str, arrays, shapes: dict) -> None:
    """``arrays`` must map the model's array names to arrays of their shapes."""
    if not isinstance(arrays, dict):
        raise TypeError(f"{what}['arrays'] is a {type(arrays).__name__}, not a dict")
    for name, a in arrays.items():
        if name not in shapes:
            raise ValueError(
                f"{what}['arrays'] names {name!r}, which the model does not have: a resume "
                f"reads copies of its parameters and state only ({', '.join(shapes)})"
            )
        if tuple(getattr(a, "shape", ())) != shapes[name]:
            raise ValueError(
                f"{what}['arrays'][{name!r}] has the shape {tuple(getattr(a, 'shape', ()))}, "
                f"where {name} has {shapes[name]}"
            )


def _write_arrays(group: h5py.Group, arrays) -> None:
    """Each array with a checksum (fletcher32), so a flipped bit in its data makes the
    load fail, not give other weights (a 0-d array, which has no chunks, goes without)."""
    for name, array in arrays.items():
        host = to_numpy(array)
        if host.dtype.kind == "f" and not np.isfinite(host).all():
            bad = int(host.size - np.isfinite(host).sum())
            raise NotFiniteError(
                f"{group.name}/{name} holds {bad} NaN or infinite values, which nb.load "
                "refuses (a model or optimizer that diverged)"
            )
        if host.ndim == 0:
            group.create_dataset(name, data=host)
        else:  # chunks of whole rows, up to 1 MiB (h5py's own are 8-32 KiB, each slower),
            # the rows split evenly: HDF5 stores the last chunk whole, however few it holds
            row = math.prod(host.shape[1:]) * host.itemsize
            parts = -(-host.nbytes // CHUNK_BYTES)
            chunks = (-(-host.shape[0] // max(parts, 1)), *host.shape[1:])
            chunks = chunks if row <= CHUNK_BYTES and host.size else True
            group.create_dataset(name, data=host, fletcher32=True, chunks=chunks)


# --- loading ----------------------------------------------------------------------


def load(path, backend=None, *, with_optimizer: bool = False, custom_objects=None,
         max_params: int | None = None):  # fmt: skip
    """The model saved at ``path``, on ``backend`` (default: the current one; a name such
    as "numpy"): in the saved dtype, or in a Backend object's own, the weights converted
    (``nb.get_backend("numpy")`` is float32). With ``with_optimizer=True``, ``(model,
    optimizer or None, epoch or None)``.

    ``custom_objects``: {name: class} for classes of your own not registered with
    ``@nb.register``. ``max_params``: the most weights the file may declare (default
    100 million, the arrays then at most 64 times the file's size: ``nb.save`` does not
    compress); give it for a larger or compressed model from a source you trust.
    Any problem with the file raises ``CheckpointError`` naming it; the operating
    system's own (no file there, a folder, no permission to read) stay ``OSError``.
    """
    boolean(with_optimizer, "with_optimizer")
    saved = _read(path, backend, custom_objects, max_params)
    saved.model.optimizer = saved.optimizer
    if with_optimizer:
        return saved.model, saved.optimizer, saved.epoch
    return saved.model


def restore(model, path, optimizer=None, custom_objects=None,
            max_params: int | None = None) -> int | None:  # fmt: skip
    """Load the weights, state, optimizer state and generator state saved at ``path``
    into an existing ``model`` (and ``optimizer``: its state, step count, learning rate
    and settings) of the same architecture; from a file saved without an optimizer, the
    optimizer keeps what it holds, with a warning.
    Returns the saved epoch (None if none was saved)."""
    return restore_checkpoint(model, path, optimizer, custom_objects, max_params).epoch


def restore_checkpoint(
    model,
    path,
    optimizer=None,
    custom_objects=None,
    max_params: int | None = None,
    *,
    accept=None,
    copies: int = MAX_COPIES,
) -> Checkpoint:
    """``restore``, returning all that was read (epoch, stopped, callbacks' states).
    ``accept(saved)``, if given, runs once the file has passed every check and before
    the model changes: what it raises leaves the model as it was. The file may hold the
    model's size of weights, and ``copies`` times it in all (a fit's optimizer slots
    and callbacks' states), where the default caps allow less."""
    if not hasattr(model, "layers") or not hasattr(model, "params"):
        raise TypeError(f"nb.restore(model, path) restores into a model, not {model!r}")
    if optimizer is not None and not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer is the Optimizer to restore the state into, not {optimizer!r}")
    own = sum(math.prod(shape) for shape in array_shapes(model).values())
    own = max(own, -(-own * copies // MAX_COPIES))  # MAX_COPIES times this in all
    saved = _read(path, model.backend, custom_objects, max_params, own)
    theirs, ours = _as_saved(saved.model.config()), _as_saved(model.config())
    if theirs != ours:
        raise CheckpointError(
            f"{path} holds another architecture than the model's: "
            f"{_difference(theirs, ours)}; build the model as saved (nb.load(path) gives "
            "it), or save to another file"
        )
    takes_state = optimizer is not None and saved.optimizer is not None
    if takes_state and type(optimizer) is not type(saved.optimizer):
        kind = type(saved.optimizer).__name__
        raise CheckpointError(
            f"{path} holds the state of {saved.optimizer!r}, which {optimizer!r} cannot "
            f"take up: restore or resume with {'an' if kind[0] in 'AEIOU' else 'a'} {kind}, "
            "or train anew"
        )
    if accept is not None:
        accept(saved)
    if optimizer is not None and saved.optimizer is None:
        steps = optimizer.iterations
        plural = "s" * (steps != 1)
        goes_on = f"keeps its own state ({steps} step{plural})" if steps else "starts afresh"
        warn_caller(
            f"{path} holds no optimizer state (it was saved without optimizer=): "
            f"{optimizer!r} {goes_on}",
            UserWarning,
        )
    model.set_params(dict(saved.model.params))
    for name, value in saved.model.state.items():
        model.state[name] = value
    model.rng.state = saved.model.rng.state
    if takes_state:
        optimizer.load_state_dict(saved.optimizer.state_dict())
        take_settings(optimizer, settings_of(saved.optimizer))
        optimizer.train_for(model, take_over=True)  # model's now: a train_step goes on
    return saved


def settings_of(optimizer) -> dict:
    """The learning rate and ``config()``'s settings: what a callback may change in a
    run, which a resume takes from the checkpoint (and a distributed one from rank 0):
    the attributes themselves, where config() writes one otherwise (a wrapped optimizer)."""
    hyper = optimizer._hyper()
    return {"lr": optimizer.lr, **{key: getattr(optimizer, key, v) for key, v in hyper.items()}}


def take_settings(optimizer, settings: dict) -> None:
    """``settings_of``'s dict put into ``optimizer``: the learning rate, and the settings
    an optimizer of one's own keeps as plain attributes of the same names (no property,
    nothing worked out from them)."""
    optimizer.lr = settings["lr"]
    for key, value in settings.items():
        if key != "lr" and key in vars(optimizer):
            setattr(optimizer, key, value)


def for_other_ranks(saved: Checkpoint, optimizer) -> dict | None:
    """What a distributed fit's other ranks need of the checkpoint rank 0 restored into
    the model and ``optimizer``, besides the weights they are sent: plain values and
    host arrays."""
    if saved is None:
        return None
    callbacks = {
        key: {**state, "arrays": {n: to_numpy(a) for n, a in (state.get("arrays") or {}).items()}}
        for key, state in saved.callbacks.items()
    }
    took = optimizer is not None and saved.optimizer is not None
    return {"epoch": saved.epoch, "stopped": saved.stopped, "callbacks": callbacks,
            "path": str(saved.path),
            "settings": settings_of(optimizer) if took else None}  # fmt: skip


def _as_saved(config: dict) -> dict:
    """``config`` as a file gives it back (a tuple as a list), where JSON can hold it."""
    try:
        return json.loads(json.dumps(config))
    except (TypeError, ValueError):  # a save would refuse it; compared as it is
        return config


def _difference(saved: dict, mine: dict) -> str:
    """The first place where the architecture ``saved`` differs from ``mine``."""
    layers, own = saved.get("layers", []), mine.get("layers", [])
    if len(layers) != len(own):
        return f"it has {len(layers)} layers, the model {len(own)}"
    for i, (theirs, ours) in enumerate(zip(layers, own, strict=True)):
        if theirs != ours:
            keys = [k for k in {**theirs, **ours} if theirs.get(k) != ours.get(k)]
            shown = ", ".join(f"{k} {theirs.get(k)!r} where the model has {ours.get(k)!r}"
                              for k in keys)  # fmt: skip
            return f"its layer {i} has {shown}"
    keys = [k for k in {**saved, **mine} if k != "layers" and saved.get(k) != mine.get(k)]
    return ", ".join(f"its {k} is {saved.get(k)!r}, the model's {mine.get(k)!r}" for k in keys)


def _read(path, backend, custom_objects, max_params, own: int = 0) -> Checkpoint:
    if hasattr(path, "params") or hasattr(backend, "params"):  # nb.load(path, model)
        raise TypeError("nb.load(path) makes a new model; to fill yours, nb.restore(model, path)")
    path = read_path(path)
    if max_params is not None:  # a NaN bound would let any size through
        max_params = positive_int(max_params, "max_params (the most weights the file may declare)")
    if isinstance(backend, Backend):
        choose = backend
    else:
        get_backend(backend)  # an unknown or missing backend: its own error, not "damaged"

        def choose(dtype):
            try:
                return get_backend(backend, dtype=dtype)
            except ValueError as exc:  # a device without float64
                raise CheckpointError(
                    f"{path} holds {dtype} weights: {exc}. To load them converted, pass "
                    f"backend=nb.get_backend({backend!r}, dtype=...)"
                ) from None

    with custom_objects_scope(custom_objects):
        return read(Path(path), choose, max_params=max_params, own=own)
