"""Registries: the names under which layers, losses, optimizers, schedules,
initialisers and models are saved, and the classes that those names build again.

The built-ins register themselves exactly as a user's own classes do:

    @nb.register
    class Swish(nb.layers.Layer):
        ...

``register`` finds the kind from the class's base (``Layer``, ``Loss``, ``Optimizer``,
``Schedule``, ``Initializer``); a checkpoint then stores ``{"type": "Swish", ...}`` and
``nb.load`` builds a ``Swish`` from it. Without registering, pass the class for one
load: ``nb.load(path, custom_objects={"Swish": Swish})``.
"""

from __future__ import annotations

import contextlib
import contextvars


class UnknownTypeError(ValueError):
    """A saved config names a class that no registry holds."""


_custom: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "nnbackend_custom", default=None
)


class Registry:
    """Classes of one kind by name. ``key`` is the config field that holds the name;
    ``default_name(cls)`` the name a class gets when none is given."""

    def __init__(self, kind: str, key: str = "type", default_name=lambda cls: cls.__name__):
        self.kind, self.key, self.default_name = kind, key, default_name
        self._classes: dict[str, type] = {}

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._classes)})"

    def __contains__(self, name: str) -> bool:
        return name in self._classes

    def names(self) -> list[str]:
        return list(self._classes)

    def add(self, cls: type, name: str | None = None) -> type:
        """Register ``cls`` under ``name`` (default: the class name). Registering a
        class again (a reloaded module) replaces it; another class of the same name
        is an error."""
        name = name or self.default_name(cls)
        held = self._classes.get(name)
        if held is not None and _qualified(held) != _qualified(cls):
            raise ValueError(
                f"a {self.kind} named {name!r} is already registered ({_qualified(held)}); "
                f"register {_qualified(cls)} under another name: @nb.register(name='...')"
            )
        self._classes[name] = cls
        return cls

    def get(self, name) -> type:
        """The class registered as ``name`` (or passed in ``custom_objects``)."""
        custom = _custom.get() or {}
        if isinstance(name, str) and name in custom:
            return custom[name]
        if isinstance(name, str) and name in self._classes:
            return self._classes[name]
        raise UnknownTypeError(
            f"unknown {self.kind} type {name!r}: registered are {', '.join(self._classes)}. "
            f"If it is your own class, decorate it with @nb.register, or pass "
            f"custom_objects={{{name!r}: {name if isinstance(name, str) else 'cls'}}} to nb.load"
        )

    def build(self, config, **kwargs):
        """An object from its ``config()`` (a dict naming its class under ``key``)."""
        if not isinstance(config, dict):
            raise ValueError(f"a {self.kind} config must be a dict, not {type(config).__name__}")
        config = dict(config)
        cls = self.get(config.pop(self.key, None))
        return cls.from_config(config, **kwargs)


def construct(cls: type, config: dict):
    """``cls(**config)``, with arguments that do not fit reported as a ValueError
    (the default ``from_config`` of every registered kind)."""
    try:
        return cls(**config)
    except TypeError as exc:
        raise ValueError(f"bad arguments for {cls.__name__}: {config} ({exc})") from None


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


LAYERS = Registry("layer")
LOSSES = Registry("loss")
OPTIMIZERS = Registry("optimizer")
SCHEDULES = Registry("schedule")
INITIALIZERS = Registry("initialiser", key="name", default_name=lambda cls: cls.name)
MODELS = Registry("model")


def register(cls: type | None = None, *, name: str | None = None):
    """Class decorator: make ``cls`` loadable by name (``@nb.register`` or
    ``@nb.register(name="MyLayer")``). The kind comes from its base class."""

    def add(cls: type) -> type:
        registry = getattr(cls, "registry", None)
        if not isinstance(registry, Registry):
            raise TypeError(
                f"{cls.__name__} is not a layer, loss, optimizer, schedule, initialiser or "
                "model: subclass one of nb.layers.Layer, nb.losses.Loss, nb.optim.Optimizer, "
                "nb.optim.Schedule, nb.init.Initializer before registering it"
            )
        return registry.add(cls, name)

    return add if cls is None else add(cls)


@contextlib.contextmanager
def custom_objects(objects: dict | None):
    """Inside the block, ``objects`` (name -> class) are found before the registries."""
    token = _custom.set({**(_custom.get() or {}), **(objects or {})})
    try:
        yield
    finally:
        _custom.reset(token)
