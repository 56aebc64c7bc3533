"""Keras's spellings where this library's differ: a layer's ``activation=``, an
optimizer's ``learning_rate=``. A class made with one is told ours (Python's words
named only the argument it did not expect); a class of one's own that takes the name
keeps it."""

from __future__ import annotations

import inspect

from nnbackend.registry import LAYERS, UnknownTypeError

#: Keras's names of arguments named otherwise here (optimizers', LambdaCallback's)
KERAS_NAMES = {"learning_rate": "lr", "beta_1": "beta1", "beta_2": "beta2", "epsilon": "eps",
               "on_epoch_end": "fn"}  # fmt: skip


def takes(cls, name: str) -> bool:
    """Whether ``cls(...)`` takes the keyword argument ``name``, by name or in its
    ``**kwargs`` (a class of one's own taking any name judges them itself)."""
    taken = inspect.signature(cls.__init__).parameters
    return name in taken or any(p.kind is p.VAR_KEYWORD for p in taken.values())


def keras_names(cls, given: dict) -> None:
    """A TypeError naming ours where ``given`` (keyword arguments to ``cls``) holds
    Keras's name of an argument ``cls`` takes under another, or a layer's activation."""
    if not any(name in KERAS_NAMES or name == "activation" for name in given):
        return  # most calls: the signature is read for a Keras name alone
    for name, value in given.items():
        ours = KERAS_NAMES.get(name)
        if ours is not None and takes(cls, ours) and not takes(cls, name):
            shown = "..." if callable(value) else repr(value)  # a function's repr says little
            raise TypeError(f"{cls.__name__} takes {ours}=, not {name}= (Keras's name): "
                            f"{cls.__name__}({ours}={shown})")  # fmt: skip
        if name == "activation" and not takes(cls, name):  # Keras's Dense(128, activation=)
            said = f"{cls.__name__} takes no activation="
            raise TypeError(f"{said}: {_activation_hint(cls.__name__, value)}")


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
