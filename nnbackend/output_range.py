"""Mistakes caught before training starts, with what to do about them.

A loss that takes probabilities (``BinaryCrossEntropy()``, ``SoftmaxCrossEntropy(
from_logits=False)``) fed the raw scores of a ``Dense`` layer clips them to [0, 1]: the
gradients then point nowhere, training ends at chance, and nothing says why. The
model's last layer tells (``Layer.output_range``) before any step is taken; a layer
that does not say is probed once, on a few samples, at the start of ``fit``.
"""

from __future__ import annotations

import math

from nnbackend.backend import namespace_of
from nnbackend.checks import warn_caller
from nnbackend.data_checks import outputs_per_sample
from nnbackend.layers.activations import Softmax

PROBE_SAMPLES = 256


def output_layer_fits(model, loss, n_outputs: int | None = None) -> bool:
    """Raise ValueError when ``model``'s last layer cannot give what ``loss`` takes;
    warn when a loss computed from logits follows a layer that already gives
    probabilities. True when the layer's range is known (or nothing is needed),
    False when only its outputs can tell (see ``check_outputs``). ``n_outputs``: the
    model's, where only the data tells (default: ``model.n_outputs``)."""
    n_outputs = getattr(model, "n_outputs", None) if n_outputs is None else n_outputs
    wanted = loss.input_range
    last = model.layers[-1] if getattr(model, "layers", None) else None
    tail = _range_tail(model)
    source = tail[0] if tail else None
    stochastic = [  # a random flip or crop keeps the range, by its word (check_layer's)
        layer
        for layer in tail
        if getattr(layer, "stochastic", False) and not getattr(layer, "keeps_range", False)
    ]
    if wanted is not None and stochastic and getattr(stochastic[0], "rate", 1):
        after = tail[tail.index(stochastic[0]) + 1 :]  # pooling or Flatten at the end
        ends = " then ".join(repr(layer) for layer in [stochastic[0], *after])
        rate = hasattr(stochastic[0], "rate")  # a noise layer of one's own may have none
        does = "scales what it keeps by 1 / (1 - rate)" if rate else "draws at random"
        raise ValueError(
            f"the model ends in {ends}, which {does} in training, so its outputs leave "
            f"[{wanted[0]:g}, {wanted[1]:g}], which {type(loss).__name__} takes (a probe in "
            "evaluation, where it passes all, cannot see it): put it before the layer that "
            "computes the outputs (the last Dense or Conv2D)"
        )
    have = getattr(source, "output_range", None)
    ends = "ends in " + " then ".join(repr(layer) for layer in tail or [last])
    if wanted is not None and have is not None and not _within(have, wanted):
        problem = f"the model {ends}, whose outputs {_range_words(have)}"
        raise ValueError(_raw_scores_message(loss, problem))
    shared = isinstance(source, Softmax) and loss.target_kind == "probabilities"
    if isinstance(source, Softmax) and n_outputs == 1:  # Keras's
        way = "Sigmoid() (or no activation, with from_logits=True)" if shared else "no Softmax"
        raise ValueError(  # Dense(1, activation="softmax")
            f"the model {ends}, a softmax of one output, which is always 1: for a 0/1 "
            f"target or one value end in {way}"
        )
    if wanted is None and getattr(loss, "from_logits", False) and have == (0.0, 1.0):
        warn_caller(
            f"{loss!r} takes raw scores (logits) and applies the {_link_name(loss)} itself, "
            f"but the model already {ends}: drop {source!r}"
            + ("" if shared else ", or pass from_logits=False"),
            UserWarning,
        )
    elif shared and n_outputs != 1:  # a multi-label net, say
        warn_caller(
            f"the model {ends}, whose outputs sum to 1: under binary cross-entropy at most "
            "one label a sample passes 0.5. For several labels a sample end in Sigmoid() "
            "(or no activation, with from_logits=True); for one class a sample use "
            "loss='cross_entropy'",
            UserWarning,
        )
    return wanted is None or have is not None


def _range_tail(model) -> list:
    """The last layer that sets the outputs' range, then those after it that keep their
    input's (pooling, Flatten); [] for a model of no layers."""
    layers = list(getattr(model, "layers", None) or [])
    start = len(layers) - 1
    while start > 0 and getattr(layers[start], "keeps_range", False):
        start -= 1
    return layers[max(start, 0) :]


def gives_probabilities(model, last_layer: bool = False) -> bool:
    """Whether ``model``'s outputs lie in [0, 1] by its layers' word (a sigmoid last,
    or before pooling; ``last_layer``: the last layer itself says so)."""
    layers = getattr(model, "layers", None) or [None]
    layer = layers[-1] if last_layer else (_range_tail(model) or [None])[0]
    have = getattr(layer, "output_range", None)
    return have is not None and _within(have, (0.0, 1.0))


def check_output_layer(model, loss, X, y=None) -> None:
    """Refuse a loss that cannot take the model's outputs (probabilities from a Dense
    layer): by the last layer's range, else by one probe of the first samples of ``X``.
    Given the targets ``y`` (a fit's), warn where ``predict`` will take the model for a
    classifier that is fitted as a regression (``warn_of_labels``)."""
    if not output_layer_fits(model, loss, outputs_per_sample(model, X)):
        check_outputs(model, loss, X)
    if y is not None:
        warn_of_labels(model, loss, y)


def warn_of_labels(model, loss, y) -> None:
    """Warn where MSE's targets are not all 0 and 1 but the last layer's outputs lie in
    [0, 1] (a sigmoid, a softmax): ``predict`` gives labels (those outputs above 0.5, a
    softmax's argmax), not the values such a regression means."""
    if loss.has_accuracy or not loss.targets_like_outputs or not gives_probabilities(model, True):
        return
    xp = namespace_of(y)
    if y.dtype != xp.bool and not bool(xp.all((y == 0) | (y == 1))):  # booleans: 0 and 1
        last = type(model.layers[-1]).__name__
        labels = "one class a sample, the argmax" if last == "Softmax" else "each output above 0.5"
        warn_caller(
            f"y holds values other than 0 and 1, but the model ends in {last}, "
            f"whose outputs lie in [0, 1]: predict(X) will give labels ({labels}); "
            "model.predict_proba(X) gives the outputs themselves",
            UserWarning,
        )


def check_outputs(model, loss, X) -> None:
    """Run the model on the first samples of ``X`` (one host transfer) and raise
    ValueError when its outputs leave the range ``loss`` takes."""
    out = model.forward(model.backend.asarray(X[:PROBE_SAMPLES, ...]), training=False)
    host = model.backend.to_numpy(out)
    low, high = loss.input_range
    if host.size and (host.min() < low or host.max() > high):
        problem = f"the model gives outputs from {host.min():.3g} to {host.max():.3g}"
        raise ValueError(_raw_scores_message(loss, problem))


def _raw_scores_message(loss, problem: str) -> str:
    name = type(loss).__name__
    layer = "Sigmoid()" if name == "BinaryCrossEntropy" else "Softmax()"
    return (
        f"{loss!r} takes probabilities in [0, 1], but {problem}: use "
        f"{name}(from_logits=True) (fused with the {_link_name(loss)}, stable for any "
        f"output), or add a {layer} layer at the end of the model"
    )


def _link_name(loss) -> str:
    return "sigmoid" if type(loss).__name__ == "BinaryCrossEntropy" else "softmax"


def _range_words(bounds) -> str:
    low, high = bounds
    if bounds == (-math.inf, math.inf):
        return "can be any real number"
    return f"lie in [{low:g}, {high:g}]"


def _within(have, wanted) -> bool:
    return wanted[0] <= have[0] and have[1] <= wanted[1]
