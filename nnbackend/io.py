"""Checkpoints in HDF5: save on one backend, load on any other, lose nothing.

    nb.save(model, "ckpt.h5", optimizer=opt, epoch=3)
    model = nb.load("ckpt.h5", backend="strict")
    model, opt, epoch = nb.load("ckpt.h5", with_optimizer=True)

The file is plain HDF5, readable with h5py alone:

    /                attrs: format="nnbackend", format_version, architecture (JSON),
                            loss (JSON), dtype, saved_from (backend name)
    /weights/<name>  one dataset per parameter, e.g. "0.W", "2.b"
    /state/<name>    running state of layers that keep one
    /optimizer       attrs: config (JSON), iterations;  /optimizer/<slot>/<name> arrays
    /training        attrs: epoch, generator (JSON of the shuffling generator's state)

``save`` writes a temporary file beside the target, flushes it to disk, then renames
it over the target: a crash or an error mid-save leaves the previous checkpoint as it was.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np

from nnbackend import losses as loss_types
from nnbackend import optim as optim_types
from nnbackend.backend import Backend, get_backend, to_numpy
from nnbackend.registry import MODELS
from nnbackend.registry import custom_objects as custom_objects_scope

FORMAT = "nnbackend"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read as one (names the file and the problem)."""


# --- saving -----------------------------------------------------------------------


def save(model, path, optimizer=None, epoch: int | None = None) -> Path:
    """Write ``model`` (and ``optimizer`` state, ``epoch``, the shuffling generator's
    state) to ``path``, atomically. Returns the path."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with h5py.File(partial, "w") as f:
            _write(f, model, optimizer, epoch)
        _sync_to_disk(partial)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    _sync_to_disk(path.parent)
    return path


def _write(f: h5py.File, model, optimizer, epoch) -> None:
    f.attrs["format"] = FORMAT
    f.attrs["format_version"] = FORMAT_VERSION
    f.attrs["architecture"] = json.dumps(model.config())
    f.attrs["dtype"] = model.backend.dtype_name
    f.attrs["saved_from"] = model.backend.name
    if model.loss is not None:
        f.attrs["loss"] = json.dumps(model.loss.config())
    _write_arrays(f.create_group("weights"), model.params)
    _write_arrays(f.create_group("state"), model.state)
    if optimizer is not None:
        group = f.create_group("optimizer")
        group.attrs["config"] = json.dumps(optimizer.config())
        group.attrs["iterations"] = optimizer.iterations
        for slot, arrays in optimizer.state.items():
            _write_arrays(group.create_group(slot), arrays)
    training = f.create_group("training")
    training.attrs["epoch"] = -1 if epoch is None else int(epoch)
    training.attrs["generator"] = json.dumps(model.rng.state)


def _write_arrays(group: h5py.Group, arrays) -> None:
    for name, array in arrays.items():
        group.create_dataset(name, data=to_numpy(array))


def _sync_to_disk(path: Path) -> None:
    """Flush ``path`` (a file, or a folder's entries) to the disk, where the OS allows."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync a folder
    finally:
        os.close(fd)


# --- loading ----------------------------------------------------------------------


def load(path, backend=None, *, with_optimizer: bool = False, custom_objects=None):
    """The model saved at ``path``, on ``backend`` (default: the current one) in the
    saved dtype. With ``with_optimizer=True``, ``(model, optimizer or None, epoch or None)``.
    ``custom_objects``: {name: class} for classes of your own not registered with
    ``@nb.register``.
    """
    path = Path(path)
    with _open(path) as f, custom_objects_scope(custom_objects):
        _check_format(path, f)
        backend = get_backend(backend, dtype=None if _is_backend(backend) else f.attrs["dtype"])
        model = _read_model(path, f, backend)
        optimizer = _read_optimizer(path, f, backend)
        epoch = int(f["training"].attrs["epoch"]) if "training" in f else -1
        if "training" in f:
            model.rng.state = json.loads(f["training"].attrs["generator"])
    model.optimizer = optimizer
    if with_optimizer:
        return model, optimizer, (None if epoch < 0 else epoch)
    return model


def restore(model, path, optimizer=None, custom_objects=None) -> int | None:
    """Load the weights, state, optimizer state and generator state saved at ``path``
    into an existing ``model`` (and ``optimizer``) of the same architecture.
    Returns the saved epoch (None if none was saved)."""
    loaded, saved_optimizer, epoch = load(
        path, model.backend, with_optimizer=True, custom_objects=custom_objects
    )
    if loaded.config() != model.config():
        raise CheckpointError(
            f"{path}: its architecture {loaded!r} differs from the model's {model!r}"
        )
    model.set_params(dict(loaded.params))
    for name, value in loaded.state.items():
        model.state[name] = value
    model.rng.state = loaded.rng.state
    if optimizer is not None and saved_optimizer is not None:
        optimizer.load_state_dict(saved_optimizer.state_dict())
    return epoch


def _open(path: Path) -> h5py.File:
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise CheckpointError(
            f"cannot read checkpoint {path}: it is not a readable HDF5 file, or it is "
            f"truncated ({exc}). Point at a file written by nb.save, or save it again."
        ) from None


def _check_format(path: Path, f: h5py.File) -> None:
    missing = [a for a in ("format", "format_version", "architecture", "dtype") if a not in f.attrs]
    missing += [g for g in ("weights",) if g not in f]
    if missing or f.attrs.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is an HDF5 file but not an nnbackend checkpoint: it lacks "
            f"{', '.join(missing) or 'the format tag'} (its top level holds {sorted(f.keys())})"
        )
    version = int(f.attrs["format_version"])
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} was written in checkpoint format {version}, newer than the "
            f"{FORMAT_VERSION} this nnbackend reads: upgrade nnbackend to load it"
        )


def _read_model(path: Path, f: h5py.File, backend):
    try:
        architecture = json.loads(f.attrs["architecture"])
        model = MODELS.build(architecture, backend=backend, seed=0)
    except (ValueError, TypeError, KeyError) as exc:
        raise CheckpointError(f"{path}: its architecture cannot be built: {exc}") from None
    _fill(path, "weights", f["weights"], model.params, backend)
    if "state" in f:
        _fill(path, "state", f["state"], model.state, backend)
    if "loss" in f.attrs:
        model.loss = loss_types.from_config(json.loads(f.attrs["loss"]))
    return model


def _fill(path: Path, what: str, group: h5py.Group, arrays, backend) -> None:
    """Copy ``group``'s datasets into ``arrays`` (a model's ArrayView), checking that
    names and shapes agree with the architecture."""
    saved, expected = set(group.keys()), set(arrays.keys())
    if saved != expected:
        raise CheckpointError(
            f"{path}: the {what} saved ({sorted(saved)}) do not match the architecture's "
            f"({sorted(expected)})"
        )
    for name in arrays:
        host = group[name][()]
        want = tuple(arrays[name].shape)
        if host.shape != want:
            raise CheckpointError(
                f"{path}: {what} {name} has shape {host.shape}, but the architecture "
                f"needs {want}: the weights do not belong to this architecture"
            )
        arrays[name] = backend.asarray(host, dtype=_float_dtype(backend, host))


def _read_optimizer(path: Path, f: h5py.File, backend):
    if "optimizer" not in f:
        return None
    group = f["optimizer"]
    optimizer = optim_types.from_config(json.loads(group.attrs["config"]))
    slots = {
        slot: {
            name: backend.asarray(
                group[slot][name][()], dtype=_float_dtype(backend, group[slot][name])
            )
            for name in group[slot]
        }
        for slot in group
    }
    try:
        optimizer.load_state_dict({"iterations": group.attrs["iterations"], "slots": slots})
    except ValueError as exc:
        raise CheckpointError(f"{path}: optimizer state: {exc}") from None
    return optimizer


def _float_dtype(backend, array) -> str | None:
    return backend.dtype_name if np.dtype(array.dtype).kind == "f" else None


def _is_backend(backend) -> bool:
    return isinstance(backend, Backend)
