"""The data a ``fit`` or ``evaluate`` takes: (X, y) checked against the model and the
loss (``check_data``, with ``data_checks``' checks), then batched on the model's
backend (``batches_for``), with every batch one that the layers take
(``check_last_batch``); the validation data split off or given beside
(``split_validation``)."""

from __future__ import annotations

from nnbackend.data import Batches, as_array, check_in_range, is_foreign, target_dtype
from nnbackend.data_checks import (
    check_finite,
    check_inputs,
    check_layers_take,
    check_targets,
    known_shapes,
    outputs_per_sample,
)
from nnbackend.hint_code import same_source
from nnbackend.layers.base import Layer
from nnbackend.shapes import chain_shapes, check_target_samples, default_shape_hint

VALIDATION_NAMES = ("validation X", "validation y")


def check_data(model, X, y, loss, names=("X", "y")) -> None:
    """Refuse (X, y) that ``model`` and ``loss`` cannot take; errors call them ``names``."""
    backend = model.backend
    for array, what in zip((X, y), names, strict=True):
        if not isinstance(array, backend.array_types) and is_foreign(array):
            backend.check_array(array, what)
    check_inputs(X, model.input_shape, names[0], y)
    check_layers_take(model, X, names[0], y)
    outputs = outputs_per_sample(model, X)  # a conv net given no input_shape: by X's
    try:
        check_targets(y, X.shape[0], outputs, loss, names[1], inputs=names[0])
    except ValueError as exc:  # the outputs counted through a layer that may change them
        doubt, said = _doubted_outputs(model.layers), str(exc)
        if not doubt or "output" not in said or "Labels 1..n?" in said:  # that fix is y's
            raise
        raise ValueError(f"{said.rstrip('.')}{doubt}") from None
    if target_dtype(loss, y, backend) != "int64":  # float64 targets past float32's: inf
        check_in_range(y, backend.dtype_name, names[1])
    if outputs is None and getattr(loss, "targets_like_outputs", False):
        _check_image_targets(model, X, y, names[1])


def _doubted_outputs(layers) -> str:
    """The hint of the last layer of one's own that keeps Layer's default output_shape,
    where no layer after it sets its own (a Dense after a Swish of one's own does)."""
    for layer in reversed(layers):
        hint = default_shape_hint(layer)
        if hint or type(layer).output_shape is not Layer.output_shape:
            return hint
    return ""


def _check_image_targets(model, X, y, what: str) -> None:
    """y's samples against the model's image outputs (a denoiser's), worked out from X's
    shape where the model was given none; not past a layer of one's own that keeps
    ``Layer.output_shape``, which may well change the shape."""
    known = known_shapes(model.layers)
    if len(known) == len(model.layers):
        gives = chain_shapes(known, tuple(X.shape[1:]))[-1]
        if len(gives) > 1:
            check_target_samples(y, gives, what)


def batches_for(
    model, X, y, loss, batch_size, *, shuffle, on_device="auto", names=("X", "y"), rng=None
) -> Batches:
    """(X, y) checked (``check_data``), then batched on the model's backend, shuffled by
    ``rng`` (else the model's generator)."""
    check_data(model, X, y, loss, names)
    backend = model.backend
    return Batches(
        X, y, backend, batch_size, shuffle=shuffle, rng=rng or model.rng,
        y_dtype=target_dtype(loss, y, backend), on_device=on_device, names=names,
    )  # fmt: skip


def check_last_batch(model, batches, sample_shape: tuple) -> None:
    """Refuse, before any step, an epoch whose last batch is too small for a layer
    (one row of features, for BatchNorm): it would fail only after the rest of the
    epoch trained. ``sample_shape``: one input sample's."""
    try:
        shapes = [sample_shape, *chain_shapes(model.layers, sample_shape)[:-1]]
    except ValueError:  # X does not fit: the first step's input check says how, in full
        return
    needs = {x: _min_batch(x, shape) for x, shape in zip(model.layers, shapes, strict=True)}
    layer = max(needs, key=needs.get, default=None)
    need = needs.get(layer, 1)
    last = batches.n % batches.batch_size or batches.batch_size
    name = type(layer).__name__
    if batches.n < need:
        raise ValueError(
            f"the fit trains on {batches.n} sample(s) (X's, less any validation_split), but "
            f"{name} needs batches of at least {need}: train on {need} samples or more"
        )
    if batches.batch_size < need:
        raise ValueError(
            f"batch_size={batches.batch_size} gives batches of {batches.batch_size} row(s), "
            f"but {name} needs batches of at least {need}: choose batch_size={need} or more"
        )
    if last < need:
        raise ValueError(
            f"the last batch of each epoch would hold {last} row(s) ({batches.n} samples, "
            f"batch_size={batches.batch_size}), but {name} needs batches "
            f"of at least {need}: choose a batch_size that leaves none or {need} and more, or drop "
            f"{last} sample(s)"
        )


def _min_batch(layer, sample_shape: tuple) -> int:
    """``layer.min_batch(sample_shape)``; a number where a layer of the user's own sets
    ``min_batch = 2`` in its class, as it was once written."""
    need = layer.min_batch
    return need(sample_shape) if callable(need) else need


# --- validation data ---------------------------------------------------------------


def split_validation(X, y, validation_data, fraction: float, dtype: str = "float64"):
    """Hold out the last ``fraction`` of the samples (as given, before any shuffling:
    the same split on every run, resumed runs included). A NaN, or a value past
    ``dtype``'s range, is refused first, at its index in the arrays as given."""
    if validation_data is not None:
        validation_data = _validation_pair(validation_data)
    if not fraction:
        return X, y, validation_data
    if validation_data is not None:
        raise ValueError("give validation_data or validation_split, not both")
    if not 0 < fraction < 1:
        raise ValueError(f"validation_split must be between 0 and 1, got {fraction}")
    if X.ndim == 0:
        raise ValueError("X is a single value; give an array of samples, one per row")
    if X.shape[:1] != y.shape[:1]:  # said before they are cut apart, not of the parts
        check_targets(y, X.shape[0] if X.ndim else 0, None)
    check_finite(X, "X")
    check_finite(y, "y")
    check_in_range(X, dtype)
    n_train = X.shape[0] - max(1, round(fraction * X.shape[0]))
    if n_train < 1:
        raise ValueError(
            f"validation_split={fraction} of {X.shape[0]} samples leaves none to train on"
        )
    train, held_out = slice(None, n_train), slice(n_train, None)
    X_train, X_val = (same_source(X[rows, ...], X) for rows in (train, held_out))
    y_train, y_val = (same_source(y[rows, ...], y) for rows in (train, held_out))
    return X_train, y_train, (X_val, y_val)


def _validation_pair(data) -> tuple:
    """``validation_data`` as (X, y) arrays, lists taken as ``fit`` takes them."""
    if not isinstance(data, tuple | list) or len(data) != 2:
        got = f"{len(data)} items" if isinstance(data, tuple | list) else type(data).__name__
        samples = isinstance(data, list) and data and isinstance(data[0], tuple | list)
        if samples or hasattr(data, "__next__"):  # test (x, y) samples, or a zip of them
            as_array(data, "validation_data")
        raise ValueError(f"validation_data is a pair (X_val, y_val), got {got}")
    try:
        X_val = as_array(data[0], "validation X")
    except ValueError:
        if isinstance(data, list) and all(isinstance(part, tuple) for part in data):
            as_array(data, "validation_data")  # two (x, y) samples: how to stack them
        raise
    return X_val, as_array(data[1], "validation y")
