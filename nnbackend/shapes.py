"""Sample shapes along a chain of layers: checking ``input_shape``, following it
through the layers, and the summary table that shows it."""

from __future__ import annotations

import inspect
import math
import numbers

from nnbackend.checks import integer
from nnbackend.hint_code import (
    batch_of_one,
    code_name,
    reshaped,
    rest_of_index,
    subject,
    transposed,
)


def sample_shape(shape) -> tuple[int, ...]:
    """``input_shape`` as a tuple of positive ints, or a ValueError."""
    if isinstance(shape, numbers.Integral):  # np.prod((2, 2)) too
        shape = (shape,)
    if not isinstance(shape, list | tuple):
        raise TypeError(
            f"input_shape must be the shape of one sample, e.g. (1, 28, 28), not {shape!r}"
        )
    if shape and shape[0] is None:
        sample = tuple(shape[1:]) if len(shape) > 1 else "(features,) such as (4,)"
        raise ValueError(
            f"input_shape is one sample's shape, without the batch axis: "
            f"{sample}, not {tuple(shape)}"
        )
    shape = tuple(integer(n, "input_shape") for n in shape)
    if not shape or min(shape) < 1:
        raise ValueError(f"input_shape must hold positive sizes, e.g. (1, 28, 28), not {shape}")
    return shape


def check_model_input(backend, given_shape, x) -> None:
    """Refuse a model's input ``x`` of another backend, sample shape (where the model
    was given ``input_shape``) or dtype than the model's."""
    backend.check_array(x, "model input")
    if given_shape is not None and tuple(x.shape[1:]) != given_shape:
        raise ValueError(
            f"the model takes samples of shape {given_shape} (input_shape), but its input "
            f"has shape {tuple(x.shape)}.{reshape_hint(x, given_shape)}"
        )
    if x.dtype != backend.dtype:
        raise TypeError(
            f"model input has dtype {str(x.dtype).rsplit('.', 1)[-1]}, but the model "
            f"computes in {backend.dtype_name}: convert it with model.backend.asarray(X, "
            f"dtype={backend.dtype_name!r}), or pass host data to fit/predict"
        )


def _input_shape_hint(layer, shape) -> str:
    """How a Keras-style input_shape, (H, W, C) or (H, W), is written channels first."""
    channels, shape = getattr(layer, "in_channels", None), tuple(shape)
    if channels is None or len(shape) not in (2, 3):
        return ""
    if len(shape) == 3 and not channels_last((1, *shape), channels):  # as a batch of one
        return ""
    form = ". input_shape is one sample's (channels, height, width)"
    if len(shape) == 2 and shape[0] == channels != shape[1]:  # channels first already
        return f"{form}: {shape} has no width"
    return f"{form}: input_shape={(channels, *shape[:2])}"


def shape_text(shape) -> str:
    return "?" if shape is None else str(tuple(shape))


def shape_words(shape) -> str:
    return f"{shape[0]} features" if len(shape) == 1 else f"samples of shape {shape}"


def chain_shapes(layers, shape, given: str = "input_shape", data=None) -> list:
    """Each layer's output sample shape, checked along the chain from ``shape`` (one
    sample's input shape, or None); None where it is not known yet (before the first
    layer that fixes its own, a Dense). A layer that cannot take what the one before
    gives is a ValueError (``given`` names the shape for layer 0's; ``data``, the array
    and its name in code, writes layer 0's hint for rows of pixels in their words)."""
    shapes = []
    for i, layer in enumerate(layers):
        if shape is None:
            shape = layer.input_shape
        if shape is not None:
            try:
                shape = layer.output_shape(shape)
            except ValueError as exc:
                if i == 0:
                    hint = _input_shape_hint(layer, shape) if given == "input_shape" else ""
                    said = getattr(exc, "without_hint", exc) if hint else exc
                    if data is not None and hasattr(exc, "without_hint"):
                        channels = getattr(layer, "in_channels", None)
                        said = f"{said.without_hint}; {rows_to_images_hint(channels, shape, *data)}"
                    raise ValueError(f"{given} does not fit layer 0: {said}{hint}") from None
                raise ValueError(
                    f"layer {i - 1}, {layers[i - 1]!r}, gives {shape_words(shape)} "
                    f"but the next, {getattr(exc, 'without_hint', exc)} (layer {i})"
                    f"{default_shape_hint(layers[i - 1])}"
                ) from None
        shapes.append(shape)
    return shapes


def default_shape_hint(layer) -> str:
    """Where ``layer`` is one's own and keeps Layer's ``output_shape`` (what it takes, it
    gives), that the shape named may be that default's, not what its forward gives."""
    owner = next(c for c in type(layer).__mro__ if "output_shape" in vars(c))
    built_in = type(layer).__module__.startswith("nnbackend.")
    if built_in or owner.__module__ != "nnbackend.layers.base":
        return ""
    return (
        f"; {type(layer).__name__} keeps Layer's default output_shape, which gives the "
        "shape it takes: a layer that changes its samples' shape says how in "
        "output_shape(input_shape)"
    )


def layer_text(layer) -> str:
    """``repr(layer)`` less the arguments left at their defaults, for a summary's line:
    ``Conv2D(in_channels=1, out_channels=30, kernel_size=(5, 5))``, not seven arguments.
    An argument's default is read from a twin built without it, so that it compares in
    the form ``config()`` gives it (a stride of 1 as (1, 1)) and as the others make it
    (a pool's stride is its pool size). Only the built-in layers are twinned: a
    constructor of one's own may do anything."""
    if not type(layer).__module__.startswith("nnbackend.layers."):
        return repr(layer)
    config = {k: v for k, v in layer.config().items() if k != "type"}
    parameters = inspect.signature(type(layer)).parameters.values()
    required = [p.name for p in parameters if p.default is p.empty and p.kind != p.VAR_KEYWORD]
    shown = [
        f"{k}={v!r}" for k, v in config.items() if k in required or _default(layer, config, k) != v
    ]
    return f"{type(layer).__name__}({', '.join(shown)})"


def _default(layer, config: dict, name: str):
    """What ``layer``'s ``name`` argument is when left out and the others are as given."""
    twin = type(layer).from_config({k: v for k, v in config.items() if k != name})
    return twin.config().get(name, _NO_DEFAULT)


_NO_DEFAULT = object()


def summary_table(layers, given_shape, input_shape) -> str:
    """The layers, the sample shape after each (from ``given_shape``, the model's
    ``input_shape=``) and their parameter counts, as aligned text columns. A chain that
    breaks (a layer put in that does not fit) shows "?" from the break on."""
    shapes, shape = [], given_shape
    for layer in layers:  # up to the break
        try:
            (shape,) = chain_shapes([layer], shape)
        except ValueError:
            break
        shapes.append(shape)
    shapes += [None] * (len(layers) - len(shapes))
    rows = [("#", "layer", "output shape", "params")]
    if input_shape is not None:
        rows.append(("", "input", shape_text(input_shape), ""))
    for i, (layer, shape) in enumerate(zip(layers, shapes, strict=True)):
        rows.append((str(i), layer_text(layer), shape_text(shape), str(_planned(layer))))
    widths = [max(len(row[k]) for row in rows) for k in range(4)]
    return "\n".join(
        f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:<{widths[2]}}  {d:>{widths[3]}}".rstrip()
        for a, b, c, d in rows
    )


def summary_text(model) -> str:
    """``Sequential.summary``: the table, the total and the model's backend."""
    table = summary_table(model.layers, model._given_shape, model.input_shape)
    return f"{table}\n{total_text(model.layers, model.count_params())} on {model.backend}"


def total_text(layers, count: int) -> str:
    """The summary's last line: the ``count`` of weights held, and what the rows of layers
    not built yet add (``build=False``, or one put in by ``model.layers[i] = ...``)."""
    planned = sum(_planned(layer) for layer in layers if not layer.params)
    if planned and count == 0:
        return f"total {planned} parameters (once built)"
    if planned:
        return f"total {count + planned} parameters ({planned} of them once built)"
    return f"total {count} parameters"


def _planned(layer) -> int:
    """The weights ``layer`` holds once built, by its ``param_shapes()``."""
    return sum(math.prod(s) for s in layer.param_shapes().values())


def channels_last_hint(array, name: str = "X") -> str:
    """What to do with images of shape (N, H, W, C) given to a layer that takes (N, C, H, W)."""
    return f"Channels last? Use {transposed(array, name, (0, 3, 1, 2))}."


def channels_last(shape: tuple[int, ...], channels: int, image=None) -> bool:
    """Whether a batch of ``shape`` looks like (N, H, W, C) images for a model of
    (N, C, H, W) with C = ``channels``: its last axis, not its second, is that (and its
    middle two are ``image``'s (H, W), where the model's are known)."""
    if len(shape) != 4 or shape[3] != channels:
        return False
    if image is None:  # by the channels alone: (N, C, H, C) reads as channels first
        return shape[1] != channels
    return tuple(shape[1:3]) == tuple(image)


def reshape_hint(X, sample_shape, n_targets: int | None = None, name: str = "X") -> str:
    """How to reshape ``X`` to fit: a single sample into a batch of one; one column of
    features out of a 1-D array; images flattened for a model of rows; channels-last
    images transposed, and rows reshaped (or given the channel axis) for a model of
    images, when the sizes agree; samples laid out as columns transposed, unless y's
    length (``n_targets``) says the rows are the samples. The code names X ``name``."""
    shape = tuple(X.shape)
    rows_are_samples = n_targets == shape[0] > 1  # y's length says so: not one sample
    if _without_ones(shape) == _without_ones(sample_shape) and not rows_are_samples:
        return f" A single sample? Give it as a batch of one: {_one_sample(X, sample_shape, name)}."
    grey = len(sample_shape) == 3 and sample_shape[0] == 1  # a colour one's order: unknown
    if X.ndim == 1 and grey and shape[0] == math.prod(sample_shape):  # one, flattened
        one = reshaped(X, name, ", ".join(map(str, (1, *sample_shape))), False)
        return f" A single flattened image? Give it as a batch of one: {one}."
    if len(sample_shape) == 3 and shape == (*sample_shape[1:], sample_shape[0]):
        image = batch_of_one(X, transposed(X, name, (2, 0, 1)))
        return f" A single channels-last image? Use {image}."
    if len(sample_shape) == 1:
        if X.ndim == 1 and sample_shape == (1,):
            return (
                f" One feature per sample? Make it a column: {reshaped(X, name, '-1, 1', False)}."
            )
        if X.ndim == 2 and shape[0] == sample_shape[0] and n_targets != shape[0]:
            return (
                " Samples as columns (features x samples)? Samples are rows here: pass "
                f"{subject(X, name)}.T."
            )
        if X.ndim > 1 and math.prod(shape) == sample_shape[0] and n_targets != shape[0]:
            return f" A single image? Give it as one row: {reshaped(X, name, '1, -1', False)}."
        if _stacked(shape, sample_shape):
            return _stacked_hint(X, sample_shape, name)
        fits = X.ndim > 2 and math.prod(shape[1:]) == sample_shape[0]  # flattened, it fits
        return f" Flatten images with {reshaped(X, name, '-1')}." if fits else ""
    if channels_last(shape, sample_shape[0], image=sample_shape[1:]):
        return f" {channels_last_hint(X, name)}"
    if _stacked(shape, sample_shape):
        return _stacked_hint(X, sample_shape, name)
    if math.prod(shape[1:]) != math.prod(sample_shape):
        return ""
    if X.ndim == 2:
        return f" Rows of pixels? {_rows_to_images(X, *sample_shape, name)}."
    return f" Reshape it: {reshaped(X, name, ', '.join(map(str, sample_shape)))}."


def _stacked(shape: tuple, sample_shape) -> bool:
    """Whether ``shape`` is batches of samples stacked on one axis more: (5, 100, 4) for
    rows of 4. Before samples without a channel axis, axes of 4 or fewer are channels,
    not batches: (6, 3, 28, 28) for (28, 28) is colour images, not 18 grey ones."""
    cut = len(shape) - len(sample_shape)  # where a sample's axes begin
    whole = len(sample_shape) == 3 and cut > 1  # with its channels: an axis more is batches
    return (whole or math.prod(shape[1:cut]) > 4) and shape[cut:] == tuple(sample_shape)


def _stacked_hint(X, sample_shape, name: str) -> str:
    joined = reshaped(X, name, ", ".join(map(str, (-1, *sample_shape))), False)
    said = _join(joined)
    return f" {said[0].upper()}{said[1:]}."


def _join(joined: str) -> str:
    """The stacked batches' advice, ``joined`` the code that joins them."""
    return f"batches stacked in one array? Join them: {joined} (and y's batches, if given)"


def check_target_samples(y, output_shape, what: str = "y") -> None:
    """Refuse targets whose samples are not of the model's output shape, where it gives
    more than rows (images): said with the data's shapes, not a batch's at the first
    step; channels-last targets are told to transpose, and targets that differ by an
    axis of 1 (a channel) to reshape."""
    have, output_shape = tuple(y.shape[1:]), tuple(output_shape)
    if have == output_shape:
        return
    fix = ""
    if len(output_shape) == 3 and channels_last((1, *have), output_shape[0], output_shape[1:]):
        fix = f". {channels_last_hint(y, code_name(what))}"
    elif _without_ones(have) == _without_ones(output_shape) or (  # an axis of 1 apart, or
        len(have) == 1 and have[0] == math.prod(output_shape) and output_shape[0] == 1
    ):  # flattened grey images (colour ones may have been flattened channels last)
        fix = f": {reshaped(y, code_name(what), ', '.join(map(str, output_shape)))}"
    raise ValueError(
        f"{what} has samples of shape {have}, but the model gives {tuple(output_shape)}{fix}"
    )


def rows_to_images_hint(channels: int | None, sample_shape, X=None, name: str = "X") -> str:
    """How samples of ``sample_shape`` (rows of pixels) become (channels, height,
    width) images: with the sizes worked out where they are square, say; in the words
    of ``X``'s library, where it is at hand, and its ``name``."""
    if len(sample_shape) > 3:
        return _batch_axis_hint(channels, tuple(sample_shape), X, name)
    if len(sample_shape) == 2:  # (height, width): grey images, one channel
        with_axis = f"{subject(X, name)}[:, None{rest_of_index(X)}]"
        if channels in (None, 1):
            return f"images of one channel need that axis: {with_axis}"
        return (f"images of one channel (grey), not {channels}: give each {channels} "
                f"alike (np.repeat({with_axis}, {channels}, axis=1)), or train a model whose "
                f"first layer is Conv2D(1, ...) on {with_axis}")  # fmt: skip
    size, c = math.prod(sample_shape), channels or "channels"
    side = math.isqrt(size // channels) if channels and size % channels == 0 else 0
    if side and side * side * channels == size:
        return f"rows of pixels? {_rows_to_images(X, channels, side, side, name)}"
    return f"rows of pixels need a reshape such as {reshaped(X, name, f'{c}, height, width')}"


def _batch_axis_hint(channels: int | None, sample_shape: tuple, X, name: str) -> str:
    """For samples of more than three axes: a batch axis in ``input_shape``, or (``X``
    given) batches stacked in one array, where the last three axes are images."""
    c, h, w = sample_shape[-3:]
    last = channels is not None and channels == w != c  # (..., height, width, channels)
    if channels not in (None, c) and not last:
        return f"images are samples of shape ({channels}, height, width)"
    image = ", ".join(map(str, (w, c, h) if last else (c, h, w)))
    if X is None:
        return f"input_shape is one sample's shape, without the batch axis: ({image})"
    joined = reshaped(X, name, f"-1, {c}, {h}, {w}", False)
    joined = transposed(X, joined, (0, 3, 1, 2)) if last else joined
    return _join(joined)


def _rows_to_images(X, channels, height, width, name: str = "X") -> str:
    """How rows of pixels (``X``) become (channels, height, width) images: colour ones by
    the order they were flattened in, which the rows do not tell."""
    first = reshaped(X, name, f"{channels}, {height}, {width}")
    if channels == 1:
        return f"Reshape them: {first}"
    last = transposed(X, reshaped(X, name, f"{height}, {width}, {channels}"), (0, 3, 1, 2))
    return (
        f"Flattened channels last (as load_catvnoncat and image files give them), {last}; "
        f"flattened channels first, {first}"
    )


def _without_ones(shape) -> tuple[int, ...]:
    return tuple(size for size in shape if size != 1)


def _one_sample(X, sample_shape, name: str = "X") -> str:
    """How to make one sample of ``sample_shape`` a batch of one."""
    if len(sample_shape) == 1:
        return reshaped(X, name, "1, -1", False)
    return reshaped(X, name, f"1, {', '.join(map(str, sample_shape))}", False)
