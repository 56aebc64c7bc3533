"""Registries: the names under which layers, losses, optimizers, schedules,
initialisers and models are saved, and the classes that those names build again.

The built-ins register themselves exactly as a user's own classes do:

    @nb.register
    class Swish(nb.layers.Layer):
        ...

``register`` finds the kind from the class's base (``Layer``, ``Loss``, ``Optimizer``,
``Schedule``, ``Initializer``, ``Metric``); a checkpoint then stores
``{"type": "Swish", ...}`` and ``nb.load`` builds a ``Swish`` from it. Without
registering, pass the class for one load: ``nb.load(path, custom_objects={"Swish": Swish})``.

The same registries turn the strings users write into objects, through each kind's
``get``: ``nb.losses.get("cross_entropy")``, ``nb.optim.get("adam")``,
``nb.layers.get("relu")``, ``nb.init.get("he")``, ``nb.metrics.get("mae")`` (and
``fit(loss="cross_entropy", optimizer="adam")``, which calls them). A name matches
whatever its case and underscores ("leaky_relu" is ``LeakyReLU``); a class's
``aliases`` add the names other libraries use ("categorical_crossentropy").
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import inspect
import json
from collections.abc import Mapping

from nnbackend.checks import warn_caller


class UnknownTypeError(ValueError):
    """A saved config names a class that no registry holds."""


_custom: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "nnbackend_custom", default=None
)


class Registry:
    """Classes of one kind by name. ``key`` is the config field that holds the name;
    ``default_name(cls)`` the name a class gets when none is given; ``elsewhere``: name
    -> the module that registers it, imported when the name is first looked up."""

    def __init__(self, kind: str, key: str = "type", default_name=lambda cls: cls.__name__,
                 elsewhere: dict[str, str] | None = None,
                 set_by_base: str | None = None, shown_as: str | None = None):  # fmt: skip
        self.kind, self.key, self.default_name = kind, key, default_name
        self.elsewhere = elsewhere or {}
        self.set_by_base = set_by_base  # an attribute the base class's __init__ sets
        self.shown_as = shown_as  # a class attribute naming it elsewhere: a weak alias
        self._shown: dict[str, str] = {}  # normalised shown name -> class name
        self._classes: dict[str, type] = {}
        self._aliases: dict[str, tuple[str, str]] = {}  # normalised -> (alias, class name)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._classes)})"

    def __contains__(self, name: str) -> bool:
        return name in self._classes

    @property
    def article(self) -> str:
        """The kind with its article ("a layer", "an optimizer"), for messages."""
        return ("an " if self.kind[0] in "aeiou" else "a ") + self.kind

    def names(self) -> list[str]:
        return list(self._classes)

    def add(self, cls: type, name: str | None = None) -> type:
        """Register ``cls`` under ``name`` (default: the class name). Registering a
        class again (a reloaded module) replaces it; another class of the same name
        is an error."""
        name = name or self.default_name(cls)
        own = name == self.default_name(cls)  # not a second name of the same class
        aliases = cls.__dict__.get("aliases", ()) if own else ()  # its own, not a base's
        for wanted in (name, *aliases):
            holder = self._holder(wanted)
            if holder is not None and holder is not cls and not reloaded(holder, cls):
                how = (
                    "" if wanted in self._classes else " (or one that reads the same, or an alias)"
                )
                raise ValueError(
                    f"{self.article} named {wanted!r}{how} is already registered "
                    f"({_qualified(holder)}); register {_qualified(cls)} under another name, "
                    "@nb.register(name='...'), with aliases of its own"
                )
        self._classes[name] = cls
        for alias in aliases:
            self._aliases[_normalised(alias)] = (alias, name)
        for taken in (name, *aliases):  # a class's own names outrank another's shown one
            self._shown.pop(_normalised(taken), None)
        shown = cls.__dict__.get(self.shown_as) if self.shown_as else None  # name=... too
        if isinstance(shown, str) and self._holder(shown) in (None, cls):
            self._shown[_normalised(shown)] = name  # the latest definition: a re-run cell
        elif isinstance(shown, str) and not _restated(cls, self._holder(shown), self.shown_as):
            holder = _qualified(self._holder(shown))
            warn_caller(
                f"{self.shown_as}={shown!r} of {cls.__name__} names {holder} already, and goes "
                f"on naming it: give {cls.__name__} a {self.shown_as} of its own to use it by name",
                UserWarning,
            )
        return cls

    def _holder(self, name: str) -> type | None:
        """The class that ``name`` already stands for: registered under it or a name
        that reads the same whatever its case and underscores, or by an alias."""
        if name in self._classes:
            return self._classes[name]
        wanted = _normalised(name)
        for registered, cls in self._classes.items():
            if _normalised(registered) == wanted:
                return cls
        alias = self._aliases.get(wanted)
        return self._classes.get(alias[1]) if alias else None

    def name_of(self, cls: type) -> str:
        """The name ``cls`` is saved under: its class name, or the name it was registered
        under (``@nb.register(name="...")``) where that is another."""
        return self.registered_name(cls) or self.default_name(cls)

    def registered_name(self, cls: type) -> str | None:
        """The name ``cls`` is registered under (or, for a class a reload of its module
        left behind, the name its new copy is), else None."""
        default = self.default_name(cls)
        if self._classes.get(default) is cls:
            return default
        for same in (lambda held: held is cls, lambda held: reloaded(held, cls)):
            name = next((name for name, held in self._classes.items() if same(held)), None)
            if name is not None:
                return name
        return None

    def get(self, name) -> type:
        """The class registered as ``name`` (or passed in ``custom_objects``)."""
        custom = _custom.get() or {}
        # a custom class answers for its own kind only (a layer's name makes no optimizer)
        if isinstance(name, str) and getattr(custom.get(name), "registry", None) is self:
            return custom[name]
        if isinstance(name, str) and name in self._classes:
            return self._classes[name]
        if isinstance(name, str) and name in self.elsewhere:  # not imported yet: import it
            importlib.import_module(self.elsewhere[name])
            return self._classes[name]
        for given in custom.values():  # {"Quarter": Quarter}: an initialiser saved as "quarter"
            mine = isinstance(given, type) and getattr(given, "registry", None) is self
            if mine and self.default_name(given) == name:
                return given
        shown = repr(name) if len(repr(name)) <= 100 else repr(name)[:97] + "..."
        hint = ""  # before the list, which a load's message cuts short
        if isinstance(name, str) and name.isidentifier() and len(repr(name)) <= 100:
            whose = "" if self.key == "type" else f" (Yours.{self.key} == {name!r})"
            given = f"{{{name!r}: {name}}}" if self.key == "type" else "{'Yours': Yours}"
            hint = "; if it is your own class, decorate it with @nb.register, or pass "
            hint += f"custom_objects={given} to nb.load or nb.restore{whose}"
        raise UnknownTypeError(
            f"unknown {self.kind} type {shown}{hint}; registered: {', '.join(self._classes)}"
        )

    def find(self, name: str) -> type:
        """The class a user's string names: exactly, else whatever its case and
        underscores, else by an alias. Unknown names get the list of known ones."""
        if name in self._classes or name in self.elsewhere:
            return self.get(name)
        wanted = _normalised(name)
        for registered in self._classes:
            if _normalised(registered) == wanted:
                return self._classes[registered]
        if wanted in self._aliases:
            return self._classes[self._aliases[wanted][1]]
        if wanted in self._shown:
            return self._classes[self._shown[wanted]]
        raise UnknownTypeError(f"unknown {self.kind} {name!r}: known are {self._known()}")

    def _known(self) -> str:
        """The registered names, each with its aliases: "MSE (mse), ..."."""
        names = []
        for registered in self._classes:
            aliases = [a for a, target in self._aliases.values() if target == registered]
            names.append(f"{registered} ({', '.join(aliases)})" if aliases else registered)
        return ", ".join(names)

    def create(self, spec):
        """An object of this kind from ``spec``: an object, a name ("adam") or a config dict."""
        if isinstance(spec, str):
            return construct(self.find(spec), {})
        if isinstance(spec, dict):  # a user's: its class named as a name string is
            return self.build({**spec, self.key: self._named(spec)})
        if getattr(type(spec), "registry", None) is self:
            check_base_init(spec, self.set_by_base)
            return spec
        if isinstance(spec, type) and getattr(spec, "registry", None) is self:
            raise TypeError(f"give {self.article} object, {spec.__name__}(...), not the class")
        raise TypeError(
            f"{self.article} is given as an object, a name ({', '.join(self._classes)}) or a "
            f"config dict, not {spec!r}"
        )

    def _named(self, config: dict) -> str:
        """The registered name of the class a user's config dict names, in any case."""
        name = config.get(self.key)
        if not isinstance(name, str):
            example = {self.key: next(iter(self._classes), "...")}
            given = f"not as {name!r}" if self.key in config else f"not under {list(config)}"
            raise UnknownTypeError(
                f"{self.article} config dict names its class under {self.key!r}, as in "
                f"{example}, {given}"
            )
        try:
            self.get(name)  # exactly, or one of a load's custom_objects
            return name
        except UnknownTypeError as exact:
            try:
                return self.name_of(self.find(name))
            except UnknownTypeError:
                raise exact from None

    def build(self, config, **kwargs):
        """An object from its ``config()`` (a dict naming its class under ``key``)."""
        if not isinstance(config, dict):
            raise ValueError(f"{self.article} config must be a dict, not {type(config).__name__}")
        config = dict(config)
        cls = self.get(config.pop(self.key, None))
        return cls.from_config(config, **kwargs)


def check_base_init(obj, attribute: str | None) -> None:
    """Refuse an object whose ``__init__`` did not call its base class's (which sets
    ``attribute``): Python's AttributeError came at first use, saying nothing of it."""
    if attribute is not None and not hasattr(obj, attribute):
        ours = [c for c in type(obj).__mro__ if c.__module__.startswith("nnbackend.")]
        base = ours[-1].__name__ if ours else "its base"  # Layer, Loss, Optimizer
        raise TypeError(
            f"{type(obj).__name__} has no {attribute}: its __init__ must call "
            f"super().__init__(...) first ({base}'s sets {attribute})"
        )


def _restated(cls: type, holder: type, attribute: str) -> bool:
    """Whether ``cls`` restates the name its base ``holder`` shows (a WeightedMAE's "mae"):
    as inheriting it, no other class's name taken."""
    return issubclass(cls, holder) and getattr(holder, attribute, None) == getattr(cls, attribute)


def type_name(obj) -> str:
    """What ``obj.config()`` writes as its "type": the name its class is registered
    under (``Registry.name_of``), the class name where it is not registered."""
    return type(obj).registry.name_of(type(obj))


def construct(cls: type, config: dict):
    """``cls(**config)``, arguments that do not fit a ValueError (every kind's default
    ``from_config``); a whole ``config()``, naming ``cls`` under its kind's key, is taken."""
    registry = getattr(cls, "registry", None)
    named = config.get(registry.key) if isinstance(registry, Registry) else None
    if named is not None and named != registry.name_of(cls):  # Optimizer's from adam's
        said = f"{named}.from_config(config) builds it"
        raise ValueError(f"{cls.__name__}.from_config was given the config of {named!r}: {said}")
    config = {k: v for k, v in config.items() if named is None or k != registry.key}
    try:
        return cls(**config)
    except TypeError as exc:
        raise ValueError(f"bad arguments for {cls.__name__}: {config} ({exc})") from None


def init_parameters(cls: type) -> set[str]:
    """The names the constructors of ``cls`` take, its bases' too (a subclass that
    passes ``**kwargs`` on to its base takes the base's names)."""
    names = set()
    for klass in cls.__mro__[:-1]:  # not object's
        if "__init__" in vars(klass):
            parameters = inspect.signature(vars(klass)["__init__"]).parameters.values()
            names |= {p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    return names - {"self"}


def lost_setting(obj, again, missing_ok: bool = False, only=None) -> str | None:
    """The first setting of ``obj`` (a number, a flag, a name, a tuple or list of them,
    an object with a ``config()``: an initialiser, a schedule) that ``again``, made from
    its config, holds otherwise, as "gamma: 3.0 -> 2.0"; None where all agree. With
    ``missing_ok``, what ``again`` lacks is passed over (a built layer's own from its
    ``build``, which a rebuilt one has not run); ``only``: the names to compare, read as
    attributes (an optimizer's ``lr`` is a property over ``_lr``)."""
    named = vars(obj) if only is None else {k: _attribute(obj, k) for k in only}
    for key, value in named.items():
        setting = _setting(value)
        if key.startswith("_") or setting is _NOT_A_SETTING or only is not None and key not in only:
            continue
        kept = _attribute(again, key)
        if missing_ok and kept is _NOT_A_SETTING:
            continue
        kept = "(missing)" if kept is _NOT_A_SETTING else kept
        if _setting(kept) != setting and not (value != value and kept != kept):  # NaN
            return f"{key}: {value!r} -> {kept!r}"
    return None


_NOT_A_SETTING = object()


def _attribute(obj, name: str):
    """``obj.name``, or _NOT_A_SETTING where it cannot give it (a property needing a build)."""
    try:
        return getattr(obj, name)
    except Exception:
        return _NOT_A_SETTING


def _setting(value):
    """``value`` in a form to compare: plain values as they are, tuples and lists of
    them as tuples, an object by its ``config()``; anything else is no setting."""
    if isinstance(value, int | float | str | bool | type(None)):
        return value
    if isinstance(value, tuple | list):
        items = tuple(_setting(item) for item in value)
        return _NOT_A_SETTING if any(i is _NOT_A_SETTING for i in items) else items
    if not isinstance(value, type) and callable(getattr(value, "config", None)):
        try:
            return json.dumps(value.config(), sort_keys=True)
        except Exception:  # a config that is no JSON says so in the "config" row
            return _NOT_A_SETTING
    return _NOT_A_SETTING


def _normalised(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "").replace(" ", "")


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def reloaded(held: type, cls: type) -> bool:
    """Whether ``cls`` is an older copy of ``held``, left by a reload of their module: the
    same module and name (classes made by one function share theirs: never those)."""
    return "<locals>" not in cls.__qualname__ and _qualified(held) == _qualified(cls)


LAYERS = Registry("layer")
"""Layer classes by name (``LAYERS.names()`` lists them); ``nb.layers.get`` reads it."""
LOSSES = Registry(
    "loss",  # the estimators' losses, saved with their nets, load without nb.sklearn first
    elsewhere=dict.fromkeys(
        ("SumOverOutputs", "SquaredErrorOverOutputs", "ClippedLogLoss"), "nnbackend.sklearn.heads"
    ),
    set_by_base="reduction",
)
"""Loss classes by name and alias; ``nb.losses.get`` and ``fit(loss=...)`` read it."""
OPTIMIZERS = Registry("optimizer", set_by_base="state")
"""Optimizer classes by name; ``nb.optim.get`` and ``fit(optimizer=...)`` read it."""
SCHEDULES = Registry("schedule")
"""Learning-rate schedules by name, as an optimizer's saved config names them."""
INITIALIZERS = Registry(
    "initialiser", key="name", default_name=lambda cls: cls.__dict__.get("name", cls.__name__)
)
"""Initialisers by their ``name`` ("he", "glorot"); ``nb.init.get`` reads it."""
MODELS = Registry("model")
"""Model classes (``Sequential``) by name, as a checkpoint's architecture names them."""
METRICS = Registry("metric", shown_as="name")
"""Metrics by name and alias; ``nb.metrics.get`` and ``fit(metrics=...)`` read it."""


def register(cls: type | None = None, *, name: str | None = None):
    """Class decorator: make ``cls`` loadable by name (``@nb.register`` or
    ``@nb.register(name="MyLayer")``). The kind comes from its base class."""

    def add(cls: type) -> type:
        if isinstance(cls, str):
            raise TypeError(f"@nb.register takes a name as a keyword: @nb.register(name={cls!r})")
        registry = getattr(cls, "registry", None)
        if not isinstance(cls, type) and isinstance(registry, Registry):
            raise TypeError(f"@nb.register takes a class, not an object of one: {cls!r}")
        if not isinstance(registry, Registry):
            raise TypeError(
                f"{getattr(cls, '__name__', repr(cls))} is not a layer, loss, optimizer, "
                "schedule, initialiser, metric or model: subclass one of nb.layers.Layer, "
                "nb.losses.Loss, nb.optim.Optimizer, nb.optim.Schedule, nb.init.Initializer, "
                "nb.metrics.Metric before registering it"
            )
        return registry.add(cls, name)

    return add if cls is None else add(cls)


@contextlib.contextmanager
def custom_objects(objects: dict | None):
    """Inside the block, ``objects`` (name -> class) are found before the registries."""
    if objects is not None and not isinstance(objects, Mapping):  # Keras's list of classes
        raise TypeError(
            f"custom_objects is {{name: class}}, e.g. {{'MyLayer': MyLayer}}, not {objects!r}"
        )
    token = _custom.set({**(_custom.get() or {}), **(objects or {})})
    try:
        yield
    finally:
        _custom.reset(token)
