"""What ``Sequential.predict`` and ``predict_proba`` do: check X as ``fit`` would, run
the model in evaluation mode (``batch_size`` rows at a time, if given), and turn its
raw outputs into probabilities or labels. Host data in, host NumPy out; the backend's
arrays in, its arrays out."""

from __future__ import annotations

from nnbackend.backend import to_numpy
from nnbackend.backend.threads import apply_in_this_thread
from nnbackend.checks import positive_int
from nnbackend.data import as_array, is_host
from nnbackend.data_checks import check_layers_take, checked_features
from nnbackend.kept import batch_arrays, forget_last_batch, passing
from nnbackend.layers.activations import Softmax
from nnbackend.layers.base import check_all_built
from nnbackend.output_range import gives_probabilities, output_layer_fits


def probabilities(model, X, batch_size: int | None = None):
    """(batch, outputs): the loss's link (softmax, sigmoid) of the outputs, or the
    outputs as they are where the last layer gives [0, 1]."""
    inputs = _inputs(model, X, batch_size)  # the data's errors first
    link = _link(model, "predict_proba")  # then this, before the forward pass
    proba = link(_outputs(model, inputs, batch_size))
    return to_numpy(proba) if is_host(X) else proba


def labels(model, X, batch_size: int | None = None):
    """(batch,) int64 labels, or the outputs themselves for a regression (see
    ``Sequential.predict``)."""
    xp, loss = model.backend.xp, model.loss
    inputs = _inputs(model, X, batch_size)
    needs_link = loss is not None or model.n_outputs in (1, None)  # argmax needs none
    link = _link(model, "predict") if needs_link else None
    out = _outputs(model, inputs, batch_size)
    # under MSE, labels only from a model that ends in probabilities (not pooled ones)
    if loss is not None and not loss.has_accuracy and not gives_probabilities(model, True):
        found = out if link is None else link(out)
    elif (loss is None or loss.target_kind == "labels" or _one_class(model, loss)) and (
        out.shape[1] > 1
    ):
        found = xp.argmax(out, axis=1)  # the softmax keeps the order: as the accuracy counts
    else:
        found = xp.astype(_above_threshold(out, loss, link), xp.int64)
        one = found.ndim == 2 and found.shape[1] == 1  # several: multi-label; or an image's
        found = found[:, 0] if one else found
    return to_numpy(found) if is_host(X) else found


def _one_class(model, loss) -> bool:
    """A model ending in a Softmax fitted to one-hot rows under another loss than binary
    cross-entropy (MSE): its outputs sum to 1, a class each (not 0/1 columns, which
    tested against 0.5 named no class for most rows)."""
    return isinstance(model.layers[-1], Softmax) and loss.target_kind != "probabilities"


def _above_threshold(out, loss, link):
    """Which outputs say 1: on the side of ``loss.threshold`` that its accuracy counts
    (a logit above 0: a float32 sigmoid rounds 1e-8 to 0.5), else a probability above 0.5."""
    threshold = getattr(loss, "threshold", None)
    if threshold is None:
        return (out if link is None else link(out)) > 0.5
    return out > threshold


def _link(model, purpose: str):
    """What turns the outputs into probabilities: the loss's link, or nothing where
    the last layer gives [0, 1] already. A model that no ``fit`` trained (a loop
    written by hand, or none yet) has no loss to say whether its raw scores are
    logits for a softmax, a sigmoid, or no probabilities at all: a ValueError."""
    one, probabilities = model.n_outputs == 1, gives_probabilities(model)
    bce = "BinaryCrossEntropy()" if probabilities else "BinaryCrossEntropy(from_logits=True)"
    if model.loss is not None and one and model.loss.target_kind == "labels":  # as fit
        raise ValueError(
            f"{purpose}: model.loss is {model.loss!r}, which needs one output per class, "
            f"but the model has 1 output: set model.loss = nb.losses.{bce}"
        )
    if model.loss is not None:  # one set by hand refused as fit refuses it, and a logits
        output_layer_fits(model, model.loss)  # loss after a Sigmoid put in since, warned of
        return model.loss.link
    if probabilities:
        return lambda out: out
    fits = bce if one else "SoftmaxCrossEntropy() (classes), or nb.losses." + bce + " (labels)"
    raise ValueError(
        f"{purpose}: the model has no loss to turn its outputs into probabilities (it "
        f"was not trained by fit, which sets model.loss), and its last layer, "
        f"{type(model.layers[-1]).__name__}, gives raw scores. Set model.loss to the loss "
        f"it was trained with (e.g. model.loss = nb.losses.{fits}), or train it with fit"
    )


def _inputs(model, X, batch_size):
    """X checked (real, finite, within the dtype's range, of the model's sample shape)
    and on the model's backend in its dtype, as ``fit`` takes it (a device array of
    another backend is refused); ``batch_size`` checked."""
    if batch_size is not None:
        positive_int(batch_size, "batch_size (None for all at once)")
    backend = model.backend
    check_all_built(model)
    X = checked_features(as_array(X), dtype=backend.dtype_name, sample_shape=model.input_shape)
    check_layers_take(model, X)
    if batch_size is not None and is_host(X):
        return X  # cast a batch at a time: a float64 set is not copied whole
    return backend.asarray(X, dtype=backend.dtype_name)


def _outputs(model, X, batch_size):
    """The raw outputs for X, ``batch_size`` rows at a time (host rows cast to the
    model's backend and dtype a batch at a time); the layers keep none of it after."""
    apply_in_this_thread()  # torch's thread count is the calling thread's own
    n, backend, kept = X.shape[0], model.backend, batch_arrays(model.layers)
    size = n if batch_size is None else min(batch_size, n)
    starts = range(0, n, size) if n else [0]  # no rows: one pass, of none
    dtype = backend.dtype_name  # a stop past the end: array-api-strict refuses it
    with passing(model):  # not while another thread fits it, nor a fit meanwhile
        parts = [
            model.forward(
                backend.asarray(X[i : min(i + size, n), ...], dtype=dtype), training=False
            )
            for i in starts
        ]
        forget_last_batch(model.layers, kept)
    model._out_like = None  # no batch held for a backward: it says to call forward
    return parts[0] if len(parts) == 1 else backend.xp.concat(parts, axis=0)
