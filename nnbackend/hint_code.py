"""Code that hints write for the user to run, in the words of the array they gave:
``X.transpose(0, 3, 1, 2)`` for NumPy's, CuPy's and torch's arrays (``X.permute`` for
torch), ``array_api_strict.permute_dims(X, ...)`` for the standard's, which have no
methods for it, and ``np.transpose(X, ...)`` for a list or an h5py dataset, which
NumPy read before any check."""

from __future__ import annotations

import inspect
import weakref
from pathlib import Path

import array_api_compat

# NumPy arrays read from what has no array methods (a list, an h5py dataset), by id:
# hints about them write the functions that take the user's object itself
_READ_FROM_OTHERS = weakref.WeakValueDictionary()


def read_from(data, array):
    """``array``, NumPy's reading of ``data``; where ``data`` has no array methods (a
    list, an h5py dataset), hints about ``array`` are written for ``data``:
    ``np.transpose(X, ...)``, not ``X.transpose(...)``."""
    if array is not data and not _library(data):
        _READ_FROM_OTHERS[id(array)] = array
    return array


def same_source(new, old):
    """``new``, a part or a copy of ``old``, with hints written for what ``old`` was
    read from (the rows ``validation_split`` keeps of a list are still a list's)."""
    if new is not old and _read_from_other(old):
        _READ_FROM_OTHERS[id(new)] = new
    return new


def _library(array) -> str:
    """The array library of ``array``'s type: "numpy", "cupy", "torch", or ""."""
    top = type(array).__module__.partition(".")[0]
    return top if top in ("numpy", "cupy", "torch") else ""


def _read_from_other(array) -> bool:
    return _READ_FROM_OTHERS.get(id(array)) is array


def _methods(array) -> bool:
    """Whether hints may write ``array``'s own methods, ``X.reshape(len(X), ...)`` and
    ``X[None]``: NumPy's, CuPy's and torch's arrays (and None, where no array is at
    hand), unless read from a list; the standard's have no reshape method, no len, and
    index all axes or ``...``."""
    return array is None or (bool(_library(array)) and not _read_from_other(array))


def _functions(array) -> str:
    """The module whose functions hints write for ``array`` without methods: NumPy's
    for what NumPy read, the array's own namespace for the standard's (a permuted
    strict array stays one, as a model's forward wants it)."""
    if _read_from_other(array):
        return "np"
    try:
        return array_api_compat.array_namespace(array).__name__
    except TypeError:
        return "np"


def subject(array, name: str) -> str:
    """``name`` as code that indexes and has ``.T``: ``np.asarray(X)`` for a list."""
    return f"np.asarray({name})" if _read_from_other(array) and name.isidentifier() else name


def transposed(array, name: str, axes: tuple) -> str:
    """Code for ``name`` (``array``) with its axes in the order ``axes``: torch's
    ``transpose`` swaps two axes, its ``permute`` orders them all."""
    if _methods(array):
        method = "permute" if _library(array) == "torch" else "transpose"
        return f"{name}.{method}{axes}"
    if _read_from_other(array):
        return f"np.transpose({name}, {axes})"
    return f"{_functions(array)}.permute_dims({name}, {axes})"


def reshaped(array, name: str, dims: str, batch: bool = True) -> str:
    """Code for ``name`` (``array``) reshaped to ``dims``, after its batch axis where
    ``batch``: ``X.reshape(len(X), 1, 28, 28)``, or ``np.reshape(...)`` for arrays
    without the method."""
    if _methods(array):
        return f"{name}.reshape(len({name}), {dims})" if batch else f"{name}.reshape({dims})"
    length = f"len({name})" if _read_from_other(array) else f"{name}.shape[0]"
    shape = f"({length}, {dims})" if batch else f"({dims})"
    return f"{_functions(array)}.reshape({name}, {shape})"


def as_float64(array, name: str) -> str:
    """Code for ``name`` (``array``) in float64, in its own library and on its device."""
    library = _library(array)
    if library in ("numpy", "cupy"):
        return f"{name}.astype({'np' if library == 'numpy' else 'cupy'}.float64)"
    if library == "torch":
        return f"{name}.to(torch.float64)"
    module = _functions(array)
    return f"{module}.astype({name}, {module}.float64)"


def batch_of_one(array, code: str, axes: int = 1) -> str:
    """``code`` (of ``array``) with ``axes`` new axes in front: ``X[None]``."""
    return f"{subject(array, code)}[{', '.join(['None'] * axes)}{rest_of_index(array)}]"


def rest_of_index(array) -> str:
    """What ends an index of new axes: nothing, or ``, ...`` for the standard's arrays."""
    return "" if _methods(array) or _read_from_other(array) else ", ..."


def code_name(what: str) -> str:
    """How a hint writes in code the array that ``what`` names in words: fit's
    validation data as ``X_val`` and ``y_val``, where "validation y" would not run."""
    return {"validation X": "X_val", "validation y": "y_val"}.get(what, what)


def flattened(y, what: str) -> str:
    """How to make ``y`` 1-D in its own library: strict arrays have no ``reshape``
    method, and a matrix's (``np.matrix``) keeps it a row."""
    if type(y).__module__.partition(".")[0] in ("cupy", "torch"):
        return f"{code_name(what)}.reshape(-1)"  # on its device
    return f"np.ravel({code_name(what)})"


def defined_at(cls: type) -> str:
    """Where ``cls`` is defined, for a message: "model.py, line 12"."""
    try:
        line = inspect.getsourcelines(cls)[1]
        return f"{Path(inspect.getsourcefile(cls)).name}, line {line}"
    except (OSError, TypeError):  # typed at a prompt
        return f"{cls.__module__}.{cls.__qualname__}"
