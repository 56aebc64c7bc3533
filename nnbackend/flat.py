"""A model's weights and gradients as views into one contiguous buffer each.

    flat = FlatModel.bind(model, optimizer)   # None where it cannot help (see ``bind``)
    flat.params.buffer         # 1-D, every weight: those L2 decays first
    model.params["0.W"]        # a (784, 50) view into that buffer, as before a name

With every weight in one array, an element-wise optimizer updates them all in one
call (one kernel on a GPU, where one per array costs a launch each), and L2 decay is
one dot product and one add over the decayed prefix. The layers keep their arrays by
name, so ``model.params[name]``, checkpoints and layers that know nothing of this
work as before. ``Sequential.step_function`` binds a model when a fit starts.

Layers may write their gradients straight into the gradient buffer:
``layer.grad_buffers[key]`` is the view to write into (``Dense`` does, with
``out=``); what a layer writes elsewhere is copied in after ``backward``.
"""

from __future__ import annotations

import math

from nnbackend.backend import namespace_of
from nnbackend.backend.arrays import made_in_inference_mode
from nnbackend.backend.kernels import enabled as fused_enabled

#: each view starts at a multiple of 16 elements (64 bytes of float32): torch's CPU
#: products written with out= into a view at an odd float64 offset round otherwise
#: than into a fresh array, and the flat path promises the per-weight path's bits.
#: The gaps stay zero: no gradient moves them and L2 adds nothing for them.
ALIGN = 16


class FlatArrays:
    """Named arrays of one dtype as views into one contiguous 1-D ``buffer``:
    ``views[name]`` has ``shapes[name]``. The names of ``front`` lie first in the
    buffer, the others after them; ``views`` keeps the order of ``shapes``.
    ``spare`` elements more lie after ``buffer`` (``whole`` is both), for what is to
    travel with the arrays: a data-parallel step sends its batch's sums there."""

    def __init__(self, xp, shapes: dict, dtype, device, front=(), spare: int = 0):
        self.shapes, self.front = dict(shapes), tuple(front)
        sizes = {name: math.prod(shape) for name, shape in shapes.items()}
        starts, ends, start = {}, {}, 0
        for name in [*self.front, *(n for n in shapes if n not in self.front)]:
            starts[name], ends[name] = start, start + sizes[name]
            start = -(-ends[name] // ALIGN) * ALIGN
        size = max(ends.values(), default=0)
        self.whole = xp.zeros((size + spare,), dtype=dtype, device=device)
        self.buffer = self.whole[:size] if spare else self.whole
        self.spare = self.whole[size:]
        self.views = {
            name: xp.reshape(self.buffer[starts[name] : ends[name]], shape)
            for name, shape in shapes.items()
        }
        self.front_size = max((ends[name] for name in self.front), default=0)

    def like(self) -> FlatArrays:
        """Zeros laid out as these arrays."""
        buffer = self.buffer
        return FlatArrays(
            namespace_of(buffer), self.shapes, buffer.dtype, buffer.device, self.front
        )


class FlatModel:
    """A model's weights in ``params`` and their gradients in ``grads`` (FlatArrays of
    the same layout, names as ``model.params``), bound into its layers: each layer's
    ``params[key]`` is a view of ``params``, its ``grad_buffers[key]`` one of
    ``grads``. ``decayed`` and ``decayed_grads`` are the prefixes L2 applies to (None
    when nothing is decayed)."""

    @classmethod
    def bind(cls, model, optimizer, spare: int = 0) -> FlatModel | None:
        """The model's binding, made (weights copied in) or, if still in place, reused;
        None where it cannot help: fused kernels off (``nb.backend.fused(False)``), a
        backend without views (array-api-strict), an optimizer that updates weight by
        weight (``Optimizer.updates_flat``), no weights, or weights of several dtypes.
        ``spare``: elements to keep after the gradients (``FlatArrays.spare``)."""
        if not (fused_enabled() and model.backend.has_views and optimizer.updates_flat()):
            return None
        bound = getattr(model, "_flat", None)
        room = None if bound is None else bound.grads.spare.shape[0]
        if bound is not None and bound.in_place(model) and spare in (0, room):  # 0: any room
            bound.attach()
            return bound
        slots = _slots(model)
        if not slots or len({str(store[key].dtype) for _, _, store, key in slots}) > 1:
            return None
        model._flat = cls(model, slots, spare)
        return model._flat

    def __init__(self, model, slots, spare: int = 0):
        xp, first = model.backend.xp, slots[0][2][slots[0][3]]
        shapes = {name: tuple(store[key].shape) for name, _, store, key in slots}
        decayed = model.decayed_names()
        self.params = FlatArrays(xp, shapes, first.dtype, first.device, front=decayed)
        self.grads = FlatArrays(xp, shapes, first.dtype, first.device, decayed, spare)
        self._slots = []  # (layer's params, layer, key, param view, grad view)
        self._buffers: dict = {}  # layer -> {key: grad view}
        for name, layer, store, key in slots:
            view, grad = self.params.views[name], self.grads.views[name]
            view[...] = store[key]
            store[key] = view
            self._buffers.setdefault(layer, {})[key] = grad
            self._slots.append((store, layer, key, view, grad))
        self.attach()
        n = self.params.front_size
        self.decayed = self.params.buffer[:n] if n else None
        self.decayed_grads = self.grads.buffer[:n] if n else None

    def attach(self) -> None:
        """The layers write their gradients into the buffer's views (``grad_buffers``)."""
        for layer, grads in self._buffers.items():
            layer.grad_buffers = grads

    def detach(self) -> None:
        """The layers write new gradient arrays again, as they did before a fit: a
        gradient kept from one backward is not overwritten by the next. The weights
        stay views, and the next fit attaches the binding again."""
        for layer in self._buffers:
            vars(layer).pop("grad_buffers", None)

    def __reduce__(self):
        # a copy of the model (pickle, deepcopy) has arrays of its own, no longer views
        # into these buffers: its copy of the binding is none, and its next fit binds anew
        return _unbound, ()

    def decay(self, l2, value):
        """``value`` (a batch's loss) plus L2's penalty of the decayed weights, whose
        gradients gain the penalty's gradient: one dot product and one add over the
        decayed prefix. ``l2``: an ``nnbackend.losses.L2`` or None (``value`` as is)."""
        if l2 is None or self.decayed is None:
            return value
        l2.add_to_gradients({"decayed": self.decayed}, {"decayed": self.decayed_grads})
        return value + l2.penalty([self.decayed])

    def in_place(self, model) -> bool:
        """Whether every weight of ``model`` is still this binding's view (an assignment,
        ``model.params[name] = W``, or a move to another backend replaces it), with L2's
        weights first as they were."""
        slots = _slots(model)
        if tuple(model.decayed_names()) != self.params.front:  # a layer's decayed changed
            return False
        return len(slots) == len(self._slots) and all(
            store[key] is mine[3]
            for (_, _, store, key), mine in zip(slots, self._slots, strict=True)
        )

    def gather(self) -> bool:
        """After ``backward``: every gradient into the gradient buffer (a layer that
        wrote its own array is copied in, and then holds the view), and every weight
        replaced since (a callback's assignment) copied into the weight buffer. False
        when a weight has no gradient: that step then updates weight by weight."""
        for params, layer, key, view, grad_view in self._slots:
            if params[key] is not view:
                view[...] = params[key]
                params[key] = view
            grads = layer.grads  # a backward may have given its layer a new dict
            grad = grads.get(key)
            if grad is not grad_view:
                if grad is None or grad.shape != grad_view.shape:
                    return False  # the step by weight then takes it, or says what is wrong
                grad_view[...] = grad
                grads[key] = grad_view
        return True


def thaw(model, optimizer=None) -> None:
    """Weights, running state and optimizer state that torch made inside
    ``torch.inference_mode()`` (a load, a fit there), copied into ordinary tensors:
    outside it torch refuses the in-place updates of a step."""
    if not model.backend.has_inference_mode:
        return
    stores = [store for layer in model.layers for store in (layer.params, layer.state)]
    stores += list(optimizer.state.values()) if optimizer is not None else []
    if not any(made_in_inference_mode(a) for store in stores for a in store.values()):
        return
    unbind(model)  # its buffers were made there too
    if optimizer is not None:
        optimizer.__dict__.pop("_flats", None)
    for store in stores:
        for key, array in store.items():
            if made_in_inference_mode(array):
                store[key] = model.backend.xp.asarray(array, copy=True)


def unbind(model) -> None:
    """Forget ``model``'s binding (its weights are about to be replaced, e.g. moved to
    another backend, or a step is to run without it): the layers stop writing into its
    gradient buffer. Returns None, as ``FlatModel.bind`` where it cannot help."""
    model._flat = None
    for layer in model.layers:
        vars(layer).pop("grad_buffers", None)


def release(model) -> None:
    """After a fit or a step: ``model``'s layers (where a binding has them) write new
    gradient arrays again (``FlatModel.detach``); the binding stays for the next fit."""
    if getattr(model, "_flat", None) is not None:
        model._flat.detach()


def _unbound() -> None:
    return None


def _slots(model) -> list:
    """(name, layer, layer's params, key) of every weight, in layer order."""
    return [
        (f"{i}.{key}", layer, layer.params, key)
        for i, layer in enumerate(model.layers)
        for key in layer.params
    ]
