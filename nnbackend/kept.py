"""What layers and losses keep of their last batch: their private attributes that hold
arrays (a layer's input for its backward, a loss's gradient). Copies leave them out,
and ``predict`` and ``evaluate``, which need no backward, drop what their pass left
(from several threads at once too: a model served from a thread pool). A backward
missing what its forward keeps says to call forward first (``forward_missed``); a copy
of a model of one's own copies what its class keeps beside them (``own_attributes``).
While a fit trains a model, another thread's pass over it is refused (``fitting``)."""

from __future__ import annotations

import contextlib
import copy
import dis
import threading
from types import CodeType, FunctionType

from nnbackend.backend.arrays import holds_arrays


def private_arrays(thing) -> dict:
    """``thing``'s private attributes that hold arrays, by name."""
    items = list(vars(thing).items())  # a copy: a predict in another thread adds and drops
    return {name: value for name, value in items if name.startswith("_") and holds_arrays(value)}


def batch_arrays(things) -> list[dict]:
    """``private_arrays`` of each of ``things``, taken before a pass for
    ``forget_last_batch`` to tell what the pass left behind."""
    return [private_arrays(thing) for thing in things]


# id(model) -> the thread fitting it, and -> {thread: inference passes in flight} (by id:
# a model of one's own may define __eq__ and so have no hash; each block's end takes its
# entry out, and the block holds the model meanwhile)
_FITTING: dict[int, int] = {}
_PASSES: dict[int, dict[int, int]] = {}
_LOCK = threading.Lock()


@contextlib.contextmanager
def fitting(model):
    """Mark ``model`` as fitted by this thread while the block runs, refused where another
    thread fits it or runs a pass over it (``passing``); a fit inside one of its own
    callbacks keeps the mark."""
    me, key = threading.get_ident(), id(model)
    with _LOCK:  # checked and taken at once: two fits starting together both ran
        check_not_fitted_elsewhere(model)
        if any(thread != me for thread in _PASSES.get(key, ())):
            raise RuntimeError(
                "a predict or evaluate in another thread is running on this model: a fit now "
                "would replace the inputs its layers keep; wait for it, or fit a copy "
                "(model.copy())"
            )
        before = _FITTING.get(key)
        _FITTING[key] = me
    try:
        yield
    finally:
        with _LOCK:
            if before is None:
                _FITTING.pop(key, None)
            else:
                _FITTING[key] = before


@contextlib.contextmanager
def passing(model):
    """An inference pass over ``model`` (predict, evaluate, ``model(x)``) while the block
    runs: refused while another thread fits it, and a fit refused meanwhile."""
    me, key = threading.get_ident(), id(model)
    with _LOCK:
        check_not_fitted_elsewhere(model)
        counts = _PASSES.setdefault(key, {})
        counts[me] = counts.get(me, 0) + 1
    try:
        yield
    finally:
        with _LOCK:
            counts[me] -= 1
            if not counts[me]:
                del counts[me]
            if not counts:
                _PASSES.pop(key, None)


def check_not_fitted_elsewhere(model, writing: str | None = None) -> None:
    """Refuse a pass (``predict``, ``evaluate``, ``model(x)``, a fit or ``train_step``) over
    a model a fit in another thread is training: it would replace the batch inputs the
    fit's layers keep for their backward (the fit failed with "call forward(x) before
    backward", or stepped on the wrong rows). ``writing``: the model's arrays, which a
    write would change mid-step (zeros written so sent the fit's loss to 0.693)."""
    thread = _FITTING.get(id(model))
    if thread is not None and thread != threading.get_ident() and writing:
        raise RuntimeError(
            f"this model is being fitted in another thread: writing its {writing} now would "
            "change them mid-step; write them in a callback of the fit, or after it"
        )
    if thread is not None and thread != threading.get_ident():
        raise RuntimeError(
            "this model is being fitted in another thread, whose layers keep each batch's "
            "input for the backward: a predict, evaluate or fit here would replace them. Use "
            "a copy (model.copy(), made between fits or in a callback), or wait for the fit"
        )


def check_not_fitting(model) -> None:
    """Refuse ``model.to`` while a fit, in any thread or its own callback, trains the
    model: the fit's next step met arrays of another backend, and its end put its own
    buffers back, undoing the move on the same backend."""
    if id(model) in _FITTING:
        raise RuntimeError(
            "model.to(...) while a fit trains the model: move it before or after the fit "
            "(or move a copy: model.copy(backend))"
        )


def forget_last_batch(things, before: list[dict]) -> None:
    """Drop the private arrays that a pass left on ``things`` (those ``before`` did not
    hold): a whole set's activations stayed held until the next forward (293 MiB for
    19 MiB of input through a small dense net). What a layer made once, in its build,
    it keeps; a backward then says to call forward first."""
    for thing, held in zip(things, before, strict=True):
        for name, value in private_arrays(thing).items():
            if held.get(name) is not value:
                vars(thing).pop(name, None)  # gone already where another thread dropped it


def own_copy(thing):
    """A copy of ``thing`` (a loss, a list of metrics) that shares nothing it can help
    (``copy.deepcopy``: its last batch left behind), else one that shares its settings
    (``copy.copy``: a module or a lock in it cannot be deep-copied)."""
    try:
        return copy.deepcopy(thing)
    except Exception:  # whatever deepcopy raises, a shallow copy will do
        return copy.copy(thing)


def forward_missed(exc: AttributeError) -> None:
    """Where ``exc`` is a layer's private attribute missing in its backward, one its own
    code keeps (Dense's forward keeps ``_x``), raise the error that says to call forward
    first; a typo or a missing helper in a backward keeps Python's own error."""
    layer = exc.obj
    is_layer = callable(getattr(type(layer), "backward", None))
    if is_layer and str(exc.name).startswith("_") and sets_attribute(layer, exc.name):
        raise AttributeError(
            f"{type(exc.obj).__name__} has no {exc.name}, which its forward keeps for "
            "backward: call forward(x) before backward(dy) (predict and evaluate, which "
            "need no backward, let go of it)"
        ) from exc


def sets_attribute(layer, name: str) -> bool:
    """Whether ``layer``'s class (or a base) sets ``self.<name>``: in a method (decorated,
    static, a property's), a function nested in one, or a module function one calls."""
    for cls in type(layer).__mro__:
        for member in vars(cls).values():
            if any(_sets(f.__code__, name, f.__globals__) for f in _functions(member)):
                return True
    return False


def _functions(member) -> list:
    """The plain functions behind a class member, unwrapped from their decorators."""
    found, stack, seen = [], [member], set()
    while stack and len(seen) < 64:  # a Mock makes up a new fget for ever
        f = stack.pop()
        if f is None or id(f) in seen:
            continue
        seen.add(id(f))
        if isinstance(getattr(f, "__code__", None), CodeType):
            found.append(f)
        stack += [getattr(f, a, None) for a in ("__wrapped__", "__func__", "fget", "fset")]
    return found


def _sets(code, name: str, module: dict, calls: bool = True) -> bool:
    """Whether ``code`` stores ``.<name>`` (or names it as a string, for setattr), it
    or a function nested in it, or (``calls``) a function of ``module`` it names."""
    stores = ("STORE_ATTR", "LOAD_CONST") if "setattr" in code.co_names else ("STORE_ATTR",)
    if any(op.argval == name and op.opname in stores for op in dis.get_instructions(code)):
        return True
    nested = (c for c in code.co_consts if isinstance(c, CodeType))
    if any(_sets(c, name, module, calls) for c in nested):
        return True
    called = (module.get(n) for n in code.co_names) if calls else ()
    return any(isinstance(f, FunctionType) and _sets(f.__code__, name, {}, False) for f in called)


#: what the passes leave on a model (checks.py's too): the last batch's, not a setting
_PASS_MARKS = frozenset({"_out_like", "_backward_of", "_stepped_on", "_in_shapes"})


def own_attributes(model, twin) -> dict:
    """Copies of what a subclass of ``Sequential`` keeps beside the base's attributes,
    its layers held by name (Chainer's ``self.l1``) being ``twin``'s layers, and the
    model itself ``twin``."""
    kept = {k: v for k, v in vars(model).items() if k not in vars(twin) and k not in _PASS_MARKS}
    memo = {id(a): b for a, b in zip(model.layers, twin.layers, strict=True)}
    memo[id(model)] = twin
    return {k: _copied(v, memo) for k, v in kept.items()}


def _copied(value, memo: dict):
    """A deep copy of ``value`` in which what ``memo`` maps is the twin's, else (a lock
    inside) the container rebuilt of its items' copies, in its own type."""
    if id(value) in memo:
        return memo[id(value)]
    trial = dict(memo)
    try:
        made = copy.deepcopy(value, trial)
    except Exception:
        memo[id(value)] = made = _rebuilt(value, memo)  # one container held twice: one copy
        return made
    memo.update(trial)  # what it shares with the next attribute stays shared
    return made


def _rebuilt(value, memo: dict):
    """``value``, which deepcopy refused, as a container of its items' copies (a dict's
    kind and a defaultdict's factory kept), else a shallow copy, else itself (a lock, an
    open file: shared, as copying cannot make another)."""
    if isinstance(value, dict):
        made = copy.copy(value)
        for key, item in value.items():
            made[key] = _copied(item, memo)
        return made
    if isinstance(value, tuple) and hasattr(value, "_make"):  # a namedtuple
        return type(value)._make(_copied(v, memo) for v in value)
    if isinstance(value, list | tuple | set | frozenset):
        return type(value)(_copied(v, memo) for v in value)
    try:
        return copy.copy(value)
    except Exception:
        return value
