"""Which model saved a file last, what a fit says of an earlier run's checkpoint it is
about to replace, and the checkpoint paths a fit refuses (Keras's templates).

A script run again without ``resume=True`` starts over and replaces the earlier run's
checkpoint at its first save: ``fit`` warns, naming the epoch the file holds and how
to go on from it. A model fitted again in the same process replaces its own last save
without a word: it holds what that file held, and goes on from there.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import weakref

from nnbackend.checkpoint import CheckpointError, saved_epoch

# Each model's last save, by the file's identity then
_last_saves: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _identity(path) -> tuple:
    info = os.stat(path)
    return info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size


def remember_save(model, path) -> None:
    """Note that ``model`` was just saved to ``path`` (see ``saved_last_by``)."""
    with contextlib.suppress(OSError, TypeError):  # TypeError: a model of no weak refs
        _last_saves[model] = _identity(path), _architecture(model)


def saved_last_by(model, path) -> bool:
    """Whether the file at ``path`` is ``model``'s last save, unchanged since, and the
    model's layers still those it saved (not a new head put in since)."""
    try:
        return _last_saves.get(model) == (_identity(path), _architecture(model))
    except (OSError, TypeError):
        return False


def _architecture(model):
    """``model.config()`` as JSON reads it back (tuples as lists), to compare with a file's."""
    return json.loads(json.dumps(model.config()))


def replace_warning(checkpoint, model, name: str = "checkpoint", other_model_only=False):
    """What a fit not resuming says of the checkpoint at ``checkpoint``, which its
    first save replaces; None where that file is ``model``'s own last save. ``name``:
    the argument that gave the path; ``other_model_only``: None unless the file holds
    another architecture (a ModelCheckpoint's file may be a resumed run's own)."""
    if saved_last_by(model, checkpoint):
        return None
    try:
        epoch, stopped, config = saved_epoch(checkpoint)
    except (CheckpointError, OSError):
        epoch, stopped, config = None, True, None
    start = f"{name}={str(checkpoint)!r} holds"
    replaced = "which this fit replaces at its first save: name another file to keep it"
    if config is not None and config != _architecture(model):  # a model pretrained there
        return f"{start} a model of another architecture than this one, {replaced}"
    if other_model_only:
        return None
    if epoch is None:
        return f"{start} an earlier checkpoint, {replaced}"
    if stopped:
        return f"{start} a run a callback ended at epoch {epoch}, {replaced}"
    return (
        f"{start} epoch {epoch} of an earlier run, {replaced}, or pass resume=True with "
        f"epochs above {epoch + 1} to go on from it"
    )


def check_no_template(path, name: str) -> None:
    """Refuse a Keras template path (``ck_{epoch:02d}.h5``) for a fit's checkpoint: the
    file is one, rewritten at each save, and its name is not filled in."""
    if not isinstance(path, str | os.PathLike):
        return  # check_can_write names the type
    text = os.fsdecode(path)
    if re.search(r"\{\w+(:[^{}]*)?\}", text):
        raise ValueError(
            f"{name}={text!r} holds a template field: a fit keeps one checkpoint file, "
            "rewritten each time, and fills nothing in; give a plain path"
        )
