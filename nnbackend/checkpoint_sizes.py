"""How much a checkpoint may declare, counted before any array is read or made.

The architecture's weights (and running state) may number ``max_params``; all the
file's arrays together ``MAX_COPIES`` times that; and, unless the caller gave
``max_params`` (and so trusts the file), they may declare at most ``MAX_EXPANSION``
times the file's size. Problems raise the caller's ``error`` naming the file.

Before a save, ``check_declared`` and ``check_rebuilds`` refuse what no load could build
again, so that a fit learns it at its start, not at its first save or at a resume.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import numbers
import warnings
from pathlib import Path

import h5py

from nnbackend.checks import warn_caller
from nnbackend.h5text import MAX_JSON_DEPTH, parse_json
from nnbackend.hint_code import defined_at
from nnbackend.init import saved_name
from nnbackend.registry import (
    INITIALIZERS,
    LOSSES,
    MODELS,
    OPTIMIZERS,
    SCHEDULES,
    UnknownTypeError,
    custom_objects,
    init_parameters,
    lost_setting,
    reloaded,
    type_name,
)

DEFAULT_MAX_PARAMS = 10**8
"""The most weights (plus running state) a checkpoint may declare unless ``max_params``
says otherwise: 100 million, 400 MB in float32 (the largest nets of the tutorials have
under 2 million). All its arrays together (optimizer state, callbacks' arrays) may hold
``MAX_COPIES`` times as many."""
MAX_COPIES = 4
"""A checkpoint's arrays together may hold at most ``MAX_COPIES * max_params`` values:
the weights (and running state) once, Adam's two slots and EarlyStopping's best
weights make 4 copies of them. A genuine file with more callbacks holding weights (Adam
and two EarlyStopping make 5) can pass it: its error says which ``max_params`` loads it."""
MAX_EXPANSION = 64
"""``nb.save`` writes arrays uncompressed, and weights (random bits in their low digits)
hardly compress: a file's arrays may declare at most ``MAX_EXPANSION`` times the file's
size, or ``FREE_BYTES``, whichever is more, unless ``max_params`` is given (the caller
then trusts the file). Compressed to deflate's limit, a 3 MB file declared 3.9 GB."""
FREE_BYTES = 64 << 20


def declared_shapes(path: Path, model, error) -> dict:
    """{"params": {name: shape}, "state": {name: shape}} as the layers declare them."""
    shapes = {"params": {}, "state": {}}
    for i, layer in enumerate(model.layers):
        for kind, declared in (("params", layer.param_shapes()), ("state", layer.state_shapes())):
            for key, shape in declared.items():
                if not all(isinstance(n, numbers.Integral) and n >= 0 for n in shape):
                    raise error(
                        f"{path}: layer {i} ({type(layer).__name__}) "
                        f"declares the shape {shape!r} for {key}"
                    )
                shapes[kind][f"{i}.{key}"] = tuple(shape)
    return shapes


def check_declared(model) -> None:
    """Refuse, before a save, a model that no load could build again: a layer whose
    weights or running state are not what its ``param_shapes()`` or ``state_shapes()``
    declare (a load reads the file against those)."""
    for i, layer in enumerate(model.layers):
        if not layer.params and not layer.state and (layer.param_shapes() or layer.state_shapes()):
            raise ValueError(
                f"layer {i} ({type(layer).__name__}) has no weights yet: it was put in after "
                "the model was built; a fit or train_step builds it (or layer.build(model."
                "backend, model.rng))"
            )
        for what, method, arrays, example in (
            ("weights", "param_shapes", layer.params, "Dense"),
            ("running state", "state_shapes", layer.state, "BatchNorm"),
        ):
            held = {key: tuple(getattr(a, "shape", ())) for key, a in arrays.items()}
            declared = {key: tuple(shape) for key, shape in getattr(layer, method)().items()}
            if held != declared:
                raise ValueError(
                    f"layer {i} ({type(layer).__name__}) holds {what} {_listed(held)}, but "
                    f"its {method}() declares {_listed(declared)}: nb.load could not read "
                    f"a checkpoint of it back. Have {method}() give each array's shape from "
                    f"the constructor's arguments, as {example}'s does"
                )


def check_rebuilds(model, loss=None, optimizer=None) -> None:
    """Refuse, before a save, a model, loss or optimizer that its ``config()`` does not
    build again as ``nb.load`` builds it: the file would be written, then refused at the
    load (a constructor argument left out, an attribute worked out from them put in), or
    loaded as another class (a subclass whose config() names its base)."""
    parts = [("the model", MODELS, model, {"backend": model.backend, "build": False})]
    parts += [("the loss", LOSSES, loss, {}), ("the optimizer", OPTIMIZERS, optimizer, {})]
    own = own_classes(model, loss, optimizer)
    for name, cls in own.items():
        registry = cls.registry
        if registry.registered_name(cls) is None and name in registry:
            raise ValueError(
                f"{cls.__name__} is not registered, and {name!r} names "
                f"{registry.get(name).__module__}.{name}: nb.load would build that one. "
                f"Register yours under a name of its own: @nb.register(name='My{name}')"
            )
    for what, registry, thing, options in parts:
        if thing is None:
            continue
        config = json.loads(as_json(what, thing.config()))  # in the types a load gives
        _check_typed(what, thing, config)
        # nb.load builds a registered name from the registry: a class a re-run notebook
        # cell (or a reloaded module) left behind is checked as what replaced it there
        unregistered = {n: c for n, c in own.items() if c.registry.registered_name(c) is None}
        try:
            with custom_objects(unregistered):  # the load takes these as custom_objects
                again = registry.build(config, **options)
        except UnknownTypeError:
            continue  # a class nested deeper, not registered: custom_objects at the load
        except Exception as exc:
            raise ValueError(
                f"{what} cannot be saved (nothing was written): its config() does not build "
                f"it again as nb.load would ({type(exc).__name__}: {exc}). A config() gives "
                "the constructor's arguments, each under its name, and nothing else"
            ) from exc
        _check_alike(what, thing, again)


def _check_typed(what: str, thing, config: dict) -> None:
    """Refuse a config() without its "type" (one of one's own that left out
    ``super().config()``): the load's "unknown layer type None", which the build in
    ``check_rebuilds`` would take for a class not registered, and no custom_objects mends."""
    layers = zip(getattr(thing, "layers", ()), config.get("layers", ()), strict=False)
    parts = [(thing, config), *layers]  # a model's layers' configs: its own
    for part, part_config in parts:
        if isinstance(part_config, dict) and not isinstance(part_config.get("type"), str):
            raise ValueError(
                f"{what} cannot be saved (nothing was written): {type(part).__name__}.config() "
                'gives no "type"; a config() of one\'s own returns {**super().config(), ...}'
            )


def as_json(what: str, value, method: str = "config()") -> str:
    """``value`` (what ``method`` gave) as the file's JSON, held to the load's limits
    (length, nesting, string keys); else an error naming the place JSON cannot hold."""
    root = "state" if method == "get_state()" else "config"
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise type(exc)(
            f"{what} cannot be saved: its {method} {_unwritable(value, root)}"
        ) from None
    except RecursionError:  # past Python's own limit: well past the load's
        text = "[" * (MAX_JSON_DEPTH + 1)
    parse_json(f"{what} cannot be saved", text, method, ValueError)
    if (odd := _odd_key(value, root)) is not None:
        raise TypeError(f"{what} cannot be saved: its {method} {odd}")
    return text


def _odd_key(value, at: str) -> str | None:
    """A dict key that is not a string (JSON writes 1 as "1": it would load as another
    key), and where, in a value JSON holds."""
    if isinstance(value, dict):
        if odd := [k for k in value if not isinstance(k, str)]:
            return f"has the key {odd[0]!r} in {at}; JSON's keys are strings"
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        if (odd := _odd_key(item, f"{at}[{key!r}]")) is not None:
            return odd
    return None


def _unwritable(value, at: str, within: frozenset = frozenset()) -> str:
    """What JSON cannot hold in ``value`` (at ``at``), and how to mend it."""
    if isinstance(value, float):  # only inf and NaN fail
        return f"sets {at} to {value!r}; a file holds no inf or NaN (None can mean no limit)"
    if not isinstance(value, (dict, list, tuple)):
        return (
            f"sets {at} to {value!r}; JSON holds Python numbers, strings, lists and dicts "
            "(float(x) makes a NumPy scalar a number; a callback's arrays go under its "
            "state's 'arrays')"
        )
    if id(value) in within:
        return f"holds {at} inside itself; JSON holds plain values, not references"
    if isinstance(value, dict) and (odd := [k for k in value if not isinstance(k, str)]):
        return f"has the key {odd[0]!r} in {at}; JSON's keys are strings"
    for key, item in value.items() if isinstance(value, dict) else enumerate(value):
        try:
            json.dumps(item, allow_nan=False)
        except (TypeError, ValueError):
            return _unwritable(item, f"{at}[{key!r}]", within | {id(value)})
    return f"sets {at} to {value!r}, which JSON cannot hold"


def _check_alike(what: str, thing, again) -> None:
    """``again``, built from ``thing``'s config, must be of the same classes (a subclass
    whose config() names its base loads as the base); a part or a constructor's argument
    that config() left out (an optimizer's schedule, its rate): a warning, once."""
    if what == "the model" and type(again) is not type(thing):  # a Sequential of one's own
        name = type(thing).__name__
        _warn_once((type(thing), "model"), f"{name} loads as a Sequential of its layers, "
                   "without the methods of its class: a checkpoint holds no code. "
                   f"mine = {name}(...); nb.restore(mine, path) fills one of yours, and "
                   "mine.loss = nb.load(path).loss gives it the loss")  # fmt: skip
    parts, rebuilt = _parts_of(thing), _parts_of(again)
    for mine, built in zip(parts, rebuilt, strict=False):
        if type(built) is not type(mine) and not reloaded(type(built), type(mine)):
            name, places = type_name(built), {defined_at(type(mine)), defined_at(type(built))}
            why = (
                f"two classes are named {name!r} (made at {' and '.join(sorted(places))}), and a "
                "file names a class alone: name them apart, or @nb.register(name=...) one"
            ) if name == type_name(mine) else (
                f"its config() names {name!r}; let it write the type as the base classes' "
                "config() does ({**super().config(), ...}, or nb.registry.type_name(self))"
            )  # fmt: skip
            raise ValueError(f"{what} would load {type(mine).__name__} as {name}: {why}")
    if len(rebuilt) < len(parts):  # an optimizer's schedule, left out
        _warn_once(
            (type(thing), "part"),
            f"{what}: {type(thing).__name__}'s config() leaves out its "
            f"{type(parts[len(rebuilt)]).__name__}, which nb.load would not rebuild: add "
            "its config to config() as the base classes' does ({**super().config(), ...})",
        )
        return
    for mine, built in zip(parts, rebuilt, strict=True):
        # the constructor's arguments alone: a count (iterations), a flag build sets
        lost = lost_setting(mine, built, missing_ok=True, only=init_parameters(type(mine)))
        if lost is None and type(mine).registry is SCHEDULES:  # an argument kept otherwise
            lost = _other_rate(mine, built)
        if lost:
            _warn_once(
                (type(mine), lost.split(":")[0]),  # the setting, not its values
                f"{what}: {type(mine).__name__}'s config() leaves out a setting, which "
                f"nb.load would give its default ({lost}): add it to config()",
            )
            return  # the first part's: a schedule it holds may differ for the same reason


def _other_rate(schedule, again) -> str | None:
    """The first of a few steps where ``again``, built from ``schedule``'s config, gives
    another rate (an argument kept under another name, which config() does not read).
    A copy is asked, twice, with its warnings held: the user's own keeps its state, and
    a step whose rate differs from itself (a random one) or is NaN tells nothing."""
    try:
        mine = copy.deepcopy(schedule)
    except Exception:  # a lock, a generator: nothing to ask without asking the user's own
        return None
    for step in (0, 1, 10, 1000):
        with contextlib.suppress(Exception), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rate, theirs = mine(step), again(step)
            if rate == mine(step) and rate != theirs and theirs == theirs:
                return f"the rate at step {step}: {rate!r} -> {theirs!r}"
    return None


def _warn_once(key: tuple, message: str) -> None:
    """Warn of ``key`` once a process (not at every save); a warning raised as an error
    is raised again at the next save."""
    if key not in _WARNED:
        warn_caller(message, UserWarning)
        _WARNED.add(key)


_WARNED: set = set()  # (class, setting) pairs warned of: each once, not at every save


@contextlib.contextmanager
def settings_unwarned():
    """Saves inside warn of no setting ``config()`` leaves out, and use up no warning:
    the checkers (``nb.testing``) say so in their config row, and the user's own save
    after them must still warn."""
    warned = set(_WARNED)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        _WARNED.clear()
        _WARNED.update(warned)


def own_classes(model, loss=None, optimizer=None) -> dict:
    """name -> class of what a checkpoint of these names by its class (``_parts_of``,
    and the layers' initialisers): a fit's resume reads with them, as ``custom_objects``."""
    inits = [getattr(layer, "init", None) for layer in getattr(model, "layers", ())]
    parts = [p for p in [*_parts_of(model, loss, optimizer), *inits] if hasattr(p, "registry")]
    return {type_name(p): type(p) for p in parts if not _saved_as_base(p)}


def _saved_as_base(part) -> bool:
    """Whether ``part`` is an initialiser saved under a registered base's name, which
    loads as that base (``init.saved_name``): no class of its own to read it with."""
    return type(part).registry is INITIALIZERS and saved_name(part) != type_name(part)


def _parts_of(*things) -> list:
    """The objects a checkpoint names by their class: a model's layers, a loss, an
    optimizer and its schedule (a layer's initialiser is its constructor's argument)."""
    parts = []
    for thing in things:
        if hasattr(thing, "layers"):
            parts += thing.layers
        elif thing is not None:
            parts += [thing, *([thing.lr] if hasattr(getattr(thing, "lr", None), "config") else [])]
    return parts


def _listed(shapes: dict) -> str:
    return ", ".join(f"{key!r} {shape}" for key, shape in shapes.items()) or "none"


def check_count(path: Path, f: h5py.File, shapes: dict, max_params: int, error) -> None:
    """The weights and running state of ``shapes`` (``declared_shapes``) number at most
    ``max_params``. The cap offered lets the copies of them (``check_copies``) through."""
    count = sum(math.prod(shape) for kind in shapes.values() for shape in kind.values())
    if count >= 2**63:  # past any array's size: no max_params to offer
        raise error(
            f"{path}: its architecture declares 2**63 weights or more; it is damaged or crafted"
        )
    if count > max_params:
        own = {**shapes["params"], **shapes["state"]}
        needed = max(count, -(-copies_total(f, own) // MAX_COPIES))
        raise error(
            f"{path}: its architecture declares {count} weights, more than "
            f"max_params={max_params}. If you trust the file, {_trusted(needed)}"
        )


def _trusted(max_params: int) -> str:
    """How to read a file past the caps, by ``nb.load`` or ``nb.restore``."""
    return (
        f"load it with nb.load(path, max_params={max_params}) "
        f"or nb.restore(model, path, max_params={max_params})"
    )


def check_copies(
    path: Path, f: h5py.File, shapes: dict, max_params: int, trusted: bool, itemsize: int, error
) -> None:
    """Count the values of the weights, the optimizer's slots and the callbacks' arrays
    before any is read: each is checked against the model's ``shapes`` ({name: shape}),
    but 64 callbacks could each hold a compressed copy of every weight, and a small file
    make the reader allocate 65 models. ``itemsize``: the widest value's bytes a dataset holds."""
    total = copies_total(f, shapes)
    if total > MAX_COPIES * max_params:
        raise error(
            f"{path}: its arrays (weights, running state, optimizer state, callbacks' "
            f"arrays) hold {total} values, more than {MAX_COPIES} x max_params={max_params}; "
            f"the weights, Adam's two slots and EarlyStopping's best weights make {MAX_COPIES} "
            "copies, but a genuine checkpoint with several callbacks holding weights can "
            f"hold more. If you trust the file, {_trusted(-(-total // MAX_COPIES))}"
        )
    nbytes, size = total * itemsize, f.id.get_filesize()
    if not trusted and nbytes > max(MAX_EXPANSION * size, FREE_BYTES):
        raise error(
            f"{path}: its arrays declare {total} values, up to {nbytes} bytes as read, "
            f"{nbytes // size} times the file's {size}; nb.save does not compress, and weights "
            f"compress little. If you trust the file, give a cap yourself, which lifts this "
            f"one: {_trusted(max_params)}"
        )


def copies_total(f: h5py.File, shapes: dict) -> int:
    """The values of the weights ``shapes`` ({name: shape}) names, and of the copies of
    them the optimizer's slots and the callbacks' states hold in ``f``."""
    sizes = {name: math.prod(shape) for name, shape in shapes.items()}
    total = sum(sizes.values())
    for top in ("optimizer", "callbacks"):
        for group in _subgroups(f.get(top)):
            total += sum(sizes.get(name, 0) for name in group)
    return total


def array_shapes(model) -> dict:
    """{name: shape} of the model's parameters and running state: the arrays that
    optimizer slots and callbacks may hold copies of, and so name."""
    return {name: tuple(a.shape) for name, a in [*model.params.items(), *model.state.items()]}


def _subgroups(group) -> list:
    """The groups directly in ``group`` (none if it is not a group)."""
    if not isinstance(group, h5py.Group):
        return []
    return [item for item in group.values() if isinstance(item, h5py.Group)]
