"""Keras's, PyTorch's and Chainer's spellings where this library's differ: an
optimizer's ``learning_rate=`` or ``weight_decay=``, a layer's ``activation=`` or
``strides=``, a model's ``zero_grad()`` or ``compile()``. A class made with one is told
ours (Python's words named only the argument it did not expect); a class of one's own
that takes the name keeps it."""

from __future__ import annotations

import inspect
from types import GeneratorType

from nnbackend.kept import sets_attribute
from nnbackend.registry import LAYERS, UnknownTypeError

#: Keras's and torch's names of arguments named otherwise here
OTHER_NAMES = {"learning_rate": "lr", "beta_1": "beta1", "beta_2": "beta2", "epsilon": "eps",
               "on_epoch_end": "fn", "strides": "stride", "filters": "out_channels",
               "use_bias": "bias", "kernel_initializer": "init", "p": "rate",
               "negative_slope": "alpha", "in_features": "n_in", "out_features": "n_out",
               "units": "n_out", "initial_learning_rate": "lr", "kernel_size": "pool_size",
               "alpha": "rho"}  # fmt: skip
#: Keras's names that say a Conv2D call is Keras's: its first arguments are then
#: (filters, kernel_size), where ours are (in_channels, out_channels)
_KERAS_CONV = {"strides", "filters", "use_bias", "kernel_initializer"}
#: no argument of ours: said otherwise
_OTHER_WAYS = {"activation", "weight_decay", "betas", "clipnorm", "clipvalue", "amsgrad",
               "staircase"}  # fmt: skip

_NOTHING_TO_CLEAR = "each backward writes the gradients afresh: there is nothing to clear"
_PARAMS = "model.params is {name: array}, as optimizer.step(model.params, model.grads) takes it"
#: other libraries' methods of a model, each told what does its work here
MODEL_METHODS = dict.fromkeys(("zero_grad", "cleargrads", "zerograds"), _NOTHING_TO_CLEAR) | {
    "train": "the mode is forward's argument: model.forward(x, training=True); fit passes it",
    "eval": "model.predict(X) and model(x) run in inference, as model.forward(x, training=False)",
    **dict.fromkeys(
        (
            "parameters",
            "named_parameters",
            "namedparams",
            "weights",
            "trainable_variables",
        ),
        _PARAMS,
    ),  # fmt: skip
    "set_weights": "model.set_params({name: array}) sets them",
    "get_weights": "model.copy_params() gives copies; model.params holds the live arrays, "
    "which training changes in place",
    "state_dict": "model.params and model.state hold the arrays; nb.save(model, path) writes them",
    "load_state_dict": "model.set_params({name: array}); nb.restore(model, path) from a file",
    **dict.fromkeys(("to_gpu", "cuda"), "model.to('cupy') or model.to('torch:cuda')"),
    **dict.fromkeys(("to_cpu", "cpu"), "model.to('numpy')"),
    "compile": "fit takes the loss and optimizer: model.fit(X, y, loss=..., optimizer=...)",
    **dict.fromkeys(("save", "save_weights"), "nb.save(model, path)"),
    "load_weights": "nb.restore(model, path)",
    "add": "a model takes its layers at once: nb.Sequential([layer, ...])",
}
#: other libraries' settings, told ours when set as well as when read
_FROZEN = (
    "no step reads a trainable flag: it moves the weights that have gradients, so a layer is "
    "frozen by a backward that leaves its grads unset (the guide's Extending page), or a hand "
    "loop steps the others alone: keep = lambda d: {k: v for k, v in d.items() if not "
    "k.startswith('0.')}; opt.step(keep(model.params), keep(model.grads))"
)
MODEL_SETTINGS = {"trainable": _FROZEN}
LAYER_SETTINGS = {"trainable": _FROZEN}
OPTIMIZER_SETTINGS = {"learning_rate": "the rate is optimizer.lr: optimizer.lr = 1e-4 sets it"}
#: other libraries' methods of an optimizer, each told what does its work here
OPTIMIZER_METHODS = {
    "zero_grad": _NOTHING_TO_CLEAR,
    "setup": "an optimizer holds no model: optimizer.step(model.params, model.grads) after "
    "each backward, or model.fit(..., optimizer=optimizer)",
    "param_groups": "the learning rate is optimizer.lr",
}


class OtherLibrarys:
    """A class attribute named as another library's method (torch's ``zero_grad``):
    reading it raises the AttributeError that says what does its work here, so
    ``hasattr`` stays False. Unlike a ``__getattr__``, it costs no other attribute's
    lookup anything (a hand loop's step of a small net lost 3 us to one)."""

    def __init__(self, name: str, hint: str):
        self.name, self.hint = name, hint

    def __get__(self, obj, owner=None):
        cls = owner if obj is None else type(obj)
        raise AttributeError(
            f"{cls.__name__!r} object has no attribute {self.name!r} ({self.hint})",
            name=self.name, obj=obj,
        )  # fmt: skip


class OtherSetting(OtherLibrarys):
    """An ``OtherLibrarys`` for a setting (Keras's ``layer.trainable = False``): set, it
    raises too, for it would change nothing; a class of one's own whose code sets an
    attribute of the name keeps it."""

    def __get__(self, obj, owner=None):
        if obj is not None and self.name in vars(obj):
            return vars(obj)[self.name]
        return super().__get__(obj, owner)

    def __set__(self, obj, value):
        if not sets_attribute(obj, self.name):
            raise AttributeError(
                f"setting {type(obj).__name__}.{self.name} would change nothing ({self.hint})"
            )
        vars(obj)[self.name] = value

    def __delete__(self, obj):
        if self.name not in vars(obj):
            self.__get__(obj)  # raises: there is none
        del vars(obj)[self.name]


def others_told(methods: dict, settings: dict | None = None):
    """A class decorator putting an ``OtherLibrarys`` on the class for each of
    ``methods``' names, an ``OtherSetting`` for each of ``settings``' (a subclass's own
    method of the name wins)."""

    def told(cls):
        for name, hint in methods.items():
            setattr(cls, name, OtherLibrarys(name, hint))
        for name, hint in (settings or {}).items():
            setattr(cls, name, OtherSetting(name, hint))
        return cls

    return told


class LazyText:
    """An exception's message worked out when it is read: ``getattr(obj, name,
    default)``, which never reads it, pays nothing for a hint that costs. Pickled (to a
    pool's worker) as the text itself."""

    def __init__(self, make):
        self.make = make

    def __str__(self) -> str:
        return self.make()

    def __repr__(self) -> str:
        return repr(str(self))

    def __reduce__(self):
        return str, (str(self),)


def no_attribute(obj, name: str, said=""):
    """What ``Layer.__getattr__`` raises for ``name``, missing from ``obj``: Python's
    error with ``said`` after it, a function worked out only when the message is read.
    A property whose own body raised the AttributeError is run again, for that error."""
    for klass in type(obj).__mro__:
        if hasattr(vars(klass).get(name), "__get__"):
            return vars(klass)[name].__get__(obj, type(obj))

    def text() -> str:
        hint = said() if callable(said) else said
        return f"{type(obj).__name__!r} object has no attribute {name!r}" + (
            f" ({hint})" if hint else ""
        )

    raise AttributeError(LazyText(text), name=name, obj=obj)


def takes(cls, name: str) -> bool:
    """Whether ``cls(...)`` takes the keyword argument ``name``, by name or in its
    ``**kwargs`` (a class of one's own taking any name judges them itself)."""
    taken = inspect.signature(cls.__init__).parameters
    return name in taken or any(p.kind is p.VAR_KEYWORD for p in taken.values())


def told_ours(cls, given: dict, args: tuple = ()) -> None:
    """A TypeError naming ours where ``given`` (keyword arguments to ``cls``) holds
    another library's name of an argument ``cls`` takes under another, or one whose
    work is done otherwise here (a layer's activation, torch's weight decay); ``args``,
    an optimizer's: torch's weights first."""
    _no_weights_given(cls, args, given)
    if not any(name in OTHER_NAMES or name in _OTHER_WAYS for name in given):
        return  # most calls: the signature is read for such a name alone
    renamed = {n: OTHER_NAMES[n] for n in given if _renames(cls, n)}
    if renamed:  # every one at once: torch's Dense(in_features=, out_features=)
        names = "names" if len(renamed) > 1 else "name"
        raise TypeError(f"{cls.__name__} takes {'=, '.join(renamed.values())}=, not "
                        f"{'=, '.join(renamed)}= (another library's {names}): "
                        f"{_call(cls, args, given, renamed)}")  # fmt: skip
    for name, value in given.items():
        if name in _OTHER_WAYS and not takes(cls, name):
            _other_way(cls, name, value, args, given)


def _renames(cls, name: str) -> bool:
    """Whether ``name`` is another library's for an argument ``cls`` takes as ours."""
    ours = OTHER_NAMES.get(name)
    return ours is not None and takes(cls, ours) and not takes(cls, name)


def _shown(value) -> str:
    return "..." if callable(value) else repr(value)  # a function's repr says little


def _call(cls, args: tuple, given: dict, renamed: dict) -> str:
    """The call as made, with ours for ``renamed``'s names, torch's ``betas=`` split,
    ``name=...`` for what it still lacks (Keras's Conv2D(filters=8, kernel_size=3):
    in_channels), and what it does not take left out and said after it."""
    kwargs, said = {}, ""
    if _keras_conv(cls, args, given):
        kwargs.update(zip(("out_channels", "kernel_size"), args, strict=False))
        args = ()
    for name, value in given.items():
        ours = renamed.get(name, name)
        pair = isinstance(value, tuple | list) and len(value) == 2
        if ours == "betas" and pair and takes(cls, "beta1"):
            kwargs["beta1"], kwargs["beta2"] = value
        elif takes(cls, ours):
            kwargs[ours] = value
        elif ours == "weight_decay":
            said += f"; weight_decay is fit(..., l2={value!r})"
        else:
            said += f"; {ours}= is no argument of it"
    taken = list(inspect.signature(cls.__init__).parameters.values())[1:]
    lacking = [p.name for p in taken[len(args) :] if p.default is p.empty and p.kind in
               (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in kwargs]  # fmt: skip
    shown = [*map(_shown, args), *(f"{n}=..." for n in lacking)]
    shown += [f"{name}={_shown(value)}" for name, value in kwargs.items()]
    return f"{cls.__name__}({', '.join(shown)}){said}"


def _keras_conv(cls, args: tuple, given: dict) -> bool:
    """Whether a call of a conv layer is Keras's, ``Conv2D(32, 3, strides=1)``: its
    positional arguments are (filters, kernel_size), not our (in_channels, out_channels)."""
    ours = {"in_channels", "out_channels"}.intersection(given)
    shown = len(args) + ("kernel_size" in given)  # Keras's: filters, then kernel_size
    keras = _KERAS_CONV.intersection(given)
    return takes(cls, "in_channels") and bool(keras) and not ours and 1 <= shown <= 2


def _other_way(cls, name: str, value, args: tuple, given: dict) -> None:
    """Raise what does the work of ``name=`` here, where ``cls`` would take that."""
    said = f"{cls.__name__} takes no {name}="
    if name == "activation":  # Keras's Dense(128, activation="relu")
        raise TypeError(f"{said}: {_activation_hint(cls.__name__, value)}")
    if name == "weight_decay" and takes(cls, "lr"):  # torch's coupled decay: l2's gradient
        raise TypeError(f"{said}: fit(..., l2={value!r}) adds l2 * W to each weight's "
                        "gradient, as torch's weight_decay does (not to the biases)")  # fmt: skip
    if name in ("clipnorm", "clipvalue", "amsgrad", "staircase") and not value:
        raise TypeError(f"{said}: leave {name}={value!r} out, which asks for nothing more")
    if name in ("clipnorm", "clipvalue"):
        raise TypeError(f"{said}: clip the gradients in a subclass's step, before "
                        "super().step(params, grads) (the guide's Extending page)")  # fmt: skip
    if name == "staircase":
        way = "StepDecay(lr, step_size, gamma) drops the rate in steps"
        raise TypeError(f"{said}: {'it steps already' if takes(cls, 'step_size') else way}")
    if name == "amsgrad":
        raise TypeError(f"{said}: AMSGrad is an optimizer of one's own (the guide's Extending "
                        "page writes AdamW)")  # fmt: skip
    if name == "betas" and takes(cls, "beta1"):  # the call as made, the pair split
        if not (isinstance(value, tuple | list) and len(value) == 2):
            raise TypeError(f"{said}: {cls.__name__}(beta1=..., beta2=...)")
        raise TypeError(f"{said}: {_call(cls, args, given, {})}")


def _no_weights_given(cls, args: tuple, given: dict) -> None:
    """Refuse torch's ``Adam(model.parameters(), lr=...)``: an optimizer here holds no
    weights; each step is handed them."""
    first = args[0] if args else None
    weights = hasattr(first, "keys") or isinstance(first, list | tuple | GeneratorType)
    taken = inspect.signature(cls.__init__).parameters if weights else {}
    if list(taken)[1:2] == ["lr"]:
        default = taken["lr"].default
        lr = given["lr"] if "lr" in given else args[1] if len(args) > 1 else default
        rate = f"lr={lr!r}"  # torch's SGD(params, 0.1) too; else the class's own default
        where = "nb.optim." if cls.__module__.startswith("nnbackend.") else ""
        raise TypeError(
            f"{cls.__name__} is made without the weights (torch's {cls.__name__}(params, "
            f"lr=...)): {where}{cls.__name__}({rate}), then opt.step(model.params, "
            "model.grads) after each backward, or model.fit(..., optimizer=opt)"
        )


def _activation_hint(layer: str, value) -> str:
    """Where the activation goes instead: after the layer, as the layer list takes it."""
    if value is None:
        return "leave it out (None is none)"
    if isinstance(value, str):
        try:
            LAYERS.find(value)
        except UnknownTypeError as exc:  # Keras's "gelu": the names there are
            return f"an activation is a layer of its own, after it in the list; {exc}"
    shown = repr(value) if isinstance(value, str) or hasattr(value, "forward") else "'relu'"
    return (
        "an activation is a layer of its own, after it in the list, by name or as a Layer: "
        f"[..., {layer}(...), {shown}, ...]"
    )
