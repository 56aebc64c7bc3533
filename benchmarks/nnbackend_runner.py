"""nnbackend's own run of a workload, as a user would write it: Sequential + fit.

Contract with the harness:

    train = run_nnbackend(workload, backend_name, data)
    train()          # timed: one full training run, as workloads.Workload describes it

``run_nnbackend`` does the untimed part: build the model for ``workload.sizes`` /
``hidden`` / ``output`` on ``nb.get_backend(backend_name, dtype=workload.dtype)``, set
its weights to ``data.init`` (the start every implementation shares), and move
``data.X`` / ``data.y`` to the device. ``train`` is one ``fit`` call with the library's
defaults (metrics on, NaN watch on, data checks on), shuffling with seed 0 as the
reference loops do. Workload 1 trains on the summed loss with L2, as the tutorial:
``SoftmaxCrossEntropy(reduction="sum")`` and ``l2=0.01``, no rescaling needed.
"""

from __future__ import annotations

import nnbackend as nb

ACTIVATIONS = {"tanh": nb.layers.Tanh, "sigmoid": nb.layers.Sigmoid, "relu": nb.layers.ReLU}


def build(workload, backend, init) -> nb.Sequential:
    """Dense layers of ``workload.sizes`` with its hidden activation; the output layer
    gives logits (the fused losses take them). A conv workload starts with Conv2D ->
    ReLU -> MaxPool2D -> Flatten."""
    front = []
    if workload.conv is not None:
        filters, kernel, pool = workload.conv
        conv = nb.layers.Conv2D(workload.image[0], filters, kernel)
        front = [conv, nb.layers.ReLU(), nb.layers.MaxPool2D(pool), nb.layers.Flatten()]
    layers = []
    for n_in, n_out in zip(workload.sizes, workload.sizes[1:], strict=False):
        layers += [nb.layers.Dense(n_in, n_out), ACTIVATIONS[workload.hidden]()]
    model = nb.Sequential(
        [*front, *layers[:-1]], backend=backend, seed=0, input_shape=workload.image
    )
    weighted = [i for i, layer in enumerate(model.layers) if "W" in layer.params]
    for i, (W, b) in zip(weighted, init, strict=True):
        model.params[f"{i}.W"] = backend.asarray(W)
        model.params[f"{i}.b"] = backend.asarray(b)
    return model


def loss_for(workload):
    reduction = "sum" if workload.loss_sum else "mean"
    if workload.output == "softmax":
        return nb.losses.SoftmaxCrossEntropy(reduction=reduction)
    return nb.losses.BinaryCrossEntropy(from_logits=True, reduction=reduction)


def run_nnbackend(workload, backend_name, data, compile=False, **fit_options):
    """``compile``: fit's option (True or a torch.compile backend: torch backends only);
    ``fit_options``: more of fit's options (``metrics=[]``: benchmarks/fit_parts.py)."""
    backend = nb.get_backend(backend_name, dtype=workload.dtype)
    model = build(workload, backend, data.init)
    X, y = backend.asarray(data.X), backend.asarray(data.y)

    def train():
        history = model.fit(
            X, y, loss=loss_for(workload), optimizer=nb.optim.SGD(lr=workload.lr),
            epochs=workload.epochs, batch_size=workload.batch_size, l2=workload.reg_lambda,
            seed=0, verbose=0, compile=compile, **fit_options,
        )  # fmt: skip
        return history["loss"][-1]

    train.model = model  # for the checks in test_references.py
    return train
