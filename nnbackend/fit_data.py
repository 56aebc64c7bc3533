"""The data a ``fit`` or ``evaluate`` takes: (X, y) checked against the model and the
loss (``check_data``, with ``data_checks``' checks), then batched on the model's
backend (``batches_for``)."""

from __future__ import annotations

from nnbackend.data import Batches, is_foreign, target_dtype
from nnbackend.data_checks import (
    check_inputs,
    check_layers_take,
    check_targets,
    known_shapes,
)
from nnbackend.shapes import chain_shapes, check_target_samples

VALIDATION_NAMES = ("validation X", "validation y")


def check_data(model, X, y, loss, names=("X", "y")) -> None:
    """Refuse (X, y) that ``model`` and ``loss`` cannot take; errors call them ``names``."""
    backend = model.backend
    for array, what in zip((X, y), names, strict=True):
        if not isinstance(array, backend.array_types) and is_foreign(array):
            backend.check_array(array, what)
    check_inputs(X, model.input_shape, names[0], y)
    check_layers_take(model, X, names[0])
    check_targets(y, X.shape[0], model.n_outputs, loss, names[1], inputs=names[0])
    if model.n_outputs is None and getattr(loss, "targets_like_outputs", False):
        _check_image_targets(model, X, y, names[1])


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
        y_dtype=target_dtype(loss, y, backend), on_device=on_device,
    )  # fmt: skip
