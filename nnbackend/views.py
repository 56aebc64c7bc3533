"""``ArrayView``: a model's parameters, gradients or running state as one mapping by
dotted name (``"0.W"``, ``"3.running_mean"``), reading and writing the layers' own
arrays."""

from __future__ import annotations

import operator
from collections.abc import MutableMapping

from nnbackend.backend import dtype_name, namespace_of
from nnbackend.backend.core import detached
from nnbackend.kept import check_not_fitted_elsewhere


class ArrayView(MutableMapping):
    """The model's arrays of one kind ("params", "grads", "state") by dotted name.

    Reads and writes go straight to the layers; a write must keep the array's shape,
    dtype and backend, and stores a copy. Names cannot be added or removed.
    """

    def __init__(self, model, kind: str):
        self._model, self._kind = model, kind
        self._index: dict = {}  # name -> (layer's place, the layer's dict, key)
        self._stores: list = []  # the layers' dicts the index was built from

    def __getstate__(self) -> dict:
        # the index holds the layers' dicts; a copy's layers have dicts of their own
        return {**vars(self), "_index": {}, "_stores": []}

    def _names(self) -> dict:
        """The index, rebuilt when the layers' names change (a layer's grads appear at
        its first backward) or a layer was replaced (``model.layers[i] = ...``)."""
        stores = [getattr(layer, self._kind) for layer in self._model.layers]
        same = len(stores) == len(self._stores) and all(map(operator.is_, stores, self._stores))
        if not same or len(self._index) != sum(map(len, stores)):
            self._index = {
                f"{i}.{key}": (i, store, key) for i, store in enumerate(stores) for key in store
            }
            self._stores = stores
        return self._index

    def _locate(self, name):
        """(the layer's dict, key) of ``name``, checked to be the layer's still."""
        found = self._index.get(name)
        if found is not None:
            i, store, key = found
            layers = self._model.layers
            if i < len(layers) and getattr(layers[i], self._kind) is store and key in store:
                return store, key
        if name not in self._names():
            raise KeyError(f"no array named {name!r}; the names are {list(self)}")
        return self._index[name][1:]

    def __getitem__(self, name):
        store, key = self._locate(name)
        return store[key]

    def __setitem__(self, name, value):
        check_not_fitted_elsewhere(self._model, writing=self._kind)
        store, key = self._locate(name)
        current = store.get(key)
        if value is not current:  # a new array (an in-place update hands back the same one)
            self._check(name, value, current)
            # a copy: training updates weights in place, and must not write into the
            # caller's array (on NumPy, backend.asarray(W) is W itself)
            value = self._model.backend.xp.asarray(detached(value), copy=True)
        store[key] = value

    def assign(self, values) -> None:
        """``self[name] = value`` for each of ``values``, all or none: every value is
        checked (name, shape, dtype, backend) before the first is stored."""
        values = dict(values)
        check_not_fitted_elsewhere(self._model, writing=self._kind)  # before any is stored
        for name, value in values.items():
            current = self[name]
            if value is not current:
                self._check(name, value, current)
        for name, value in values.items():
            self[name] = value

    def _check(self, name, value, current) -> None:
        if value is None and self._kind == "grads":  # torch's way to leave a weight alone
            raise TypeError(
                f"model.grads[{name!r}] cannot be None; to leave {name} alone at a step, give "
                f"step a dict without it: opt.step(model.params, {{k: g for k, g in "
                f"model.grads.items() if k != {name!r}}})"
            )
        self._model.backend.check_array(value, name)
        if current is not None and (value.shape != current.shape or value.dtype != current.dtype):
            raise ValueError(
                f"{name} is {current.dtype} {tuple(current.shape)}; "
                f"cannot assign {value.dtype} {tuple(value.shape)}{_fit_hint(value, current)}"
            )

    def __delitem__(self, name):
        raise TypeError("a model's arrays cannot be removed")

    def __iter__(self):
        return iter(self._names())

    def __len__(self):
        return len(self._names())

    def items(self):
        """(name, array) pairs, in layer order (one pass, no lookups by name)."""
        return [(name, store[key]) for name, (_, store, key) in self._names().items()]

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k!r}: {tuple(v.shape)}" for k, v in self.items()) + "}"


def _fit_hint(value, current) -> str:
    """How a value of another layout or dtype becomes the weight's: torch's and the
    tutorials' (n_out, n_in) weights, (n, 1) biases, float64 draws."""
    shape, wanted = tuple(value.shape), tuple(current.shape)
    if len(shape) == 2 and shape == wanted[::-1] and shape != wanted:
        return ": a weight is (n_in, n_out) here (x @ W); assign its transpose, W.T"
    if shape != wanted and [n for n in shape if n != 1] == [n for n in wanted if n != 1]:
        return f": reshape it to {wanted}"
    if shape == wanted:
        dtype = dtype_name(namespace_of(current), current.dtype)
        return f": convert it, model.backend.asarray(value, dtype='{dtype}')"
    return ""
