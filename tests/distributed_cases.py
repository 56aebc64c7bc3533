"""What the distributed tests train, shared by the test (one process) and the worker
that ``mpiexec -n 2`` runs (``tests/mpi_worker.py``): the same data, models and fits.

Fifty steps: 100 samples in global batches of 11 make 10 steps an epoch, for 5 epochs.
On two ranks a batch of 11 rows splits 6 + 5, and each epoch's last batch has 1 row,
so rank 1's share of it is empty: the uneven and the empty share are in every run.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import textwrap

import numpy as np

import nnbackend as nb
from nnbackend.layers import BatchNorm, Dense, Dropout, Layer

N, BATCH, EPOCHS = 100, 11, 5
BACKENDS = ["numpy", "strict"] + (["torch"] if importlib.util.find_spec("torch") else [])


@dataclasses.dataclass(frozen=True)
class Case:
    backend: str
    dtype: str
    optimizer: str
    l2: float | None

    @property
    def name(self) -> str:
        return f"{self.backend}-{self.dtype}-{self.optimizer}-l2={self.l2}"


def cases_on(backends) -> list[Case]:
    return [
        Case(backend, dtype, optimizer, l2)
        for backend in backends
        for dtype in ("float64", "float32")
        for optimizer in ("sgd", "adam")
        for l2 in (None, 0.01)
    ]


CASES = cases_on(BACKENDS)
GPU_CASES = cases_on(["cupy"])
#: fits of a loss summed over each batch's rows (``train_summed``): the flat buffer's
#: step (numpy) and the packed one (strict), each with its L2 penalty
SUMMED_CASES = [Case("numpy", "float64", "sgd", 0.01), Case("strict", "float64", "sgd", 0.01)]
#: the fit ``early_stopping`` watches: its val_loss is best at epoch 3 and worse at 4, 5;
#: on strict, where the best weights rank 1 is told must become the backend's arrays
STOPPING_CASE = Case("strict", "float64", "sgd", None)


def data():
    """((X, y), validation (X, y)): host NumPy, 3 classes, the same on every rank."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N + 30, 5))
    y = (X[:, 0] + X[:, 1] ** 2 > 1).astype(np.int64) + (X[:, 2] > 1)
    return (X[:N], y[:N]), (X[N:], y[N:])


def model(case: Case, seed: int = 1) -> nb.Sequential:
    layers = [Dense(5, 8), "tanh", Dense(8, 3)]
    return nb.Sequential(layers, backend=case.backend, dtype=case.dtype, seed=seed)


def optimizer(case: Case):
    return nb.optim.SGD(lr=0.5) if case.optimizer == "sgd" else nb.optim.Adam(0.05)


def train(case: Case, distributed: bool, **options):
    """The case's model after its fit, and the fit's history."""
    (X, y), validation = data()
    net = model(case, options.pop("model_seed", 1))
    settings = dict(
        loss="cross_entropy", optimizer=optimizer(case), epochs=EPOCHS, batch_size=BATCH,
        l2=case.l2, seed=3, validation_data=validation, verbose=0, distributed=distributed,
        metrics=["accuracy", nb.metrics.TopKAccuracy(2)],
    )  # fmt: skip
    history = net.fit(X, y, **{**settings, **options})
    return net, history


def train_summed(case: Case, distributed: bool):
    """``train`` with the cross-entropy summed over each batch's rows (reduction="sum"),
    not averaged: each rank's share adds its rows' gradients unscaled."""
    loss = nb.losses.SoftmaxCrossEntropy(reduction="sum")
    return train(case, distributed, loss=loss, optimizer=nb.optim.SGD(lr=0.05))


def early_stopping() -> nb.callbacks.EarlyStopping:
    """EarlyStopping on val_loss, patience 2: on STOPPING_CASE a fit to 8 epochs stops
    after epoch 5 and puts back epoch 3's weights."""
    return nb.callbacks.EarlyStopping("val_loss", patience=2)


def weights(net) -> dict:
    return {name: nb.to_numpy(a).copy() for name, a in net.params.items()}


def manual_loop(distributed: bool, steps: int = 9) -> dict:
    """A hand-written loop on 99 samples in batches of 11, with ``allreduce_grads``
    weighting the uneven shares (6 + 5 rows) by their rows. Its weights after ``steps``."""
    (X, y), _ = data()
    case = Case("numpy", "float64", "sgd", None)
    net, opt, loss = model(case), optimizer(case), nb.losses.SoftmaxCrossEntropy()
    batches = nb.data.Batches(X[:99], y[:99], net.backend, batch_size=BATCH, rng=nb.Generator(5))
    for xb, yb in list(batches)[:steps]:
        mine = nb.distributed.my_share(xb.shape[0]) if distributed else slice(None)
        out = net.forward(xb[mine, ...])
        loss.forward(out, yb[mine, ...])
        net.backward(loss.backward())
        nb.distributed.allreduce_grads(net, rows=out.shape[0])
        opt.step(net.params, net.grads)
    return weights(net)


def documented_loop() -> dict:
    """The loop of one's own in ``nnbackend.distributed``'s docstring, run as written on
    99 samples: one batch of 99 rows, on two ranks shares of 50 + 49. Its weights."""
    doc = nb.distributed.__doc__
    start = doc.index("A loop of one's own:")
    code = textwrap.dedent(doc[start:].split("\n\n")[1])
    (X, y), _ = data()
    case = Case("numpy", "float64", "sgd", None)
    net, opt, loss = model(case), optimizer(case), nb.losses.SoftmaxCrossEntropy()
    exec(code, {"nb": nb, "X": X[:99], "y": y[:99], "model": net, "opt": opt, "loss": loss})
    return weights(net)


class Noise(Layer):
    """Gaussian noise in training, drawn with the generator's ``normal`` by rows."""

    stochastic = True

    def forward(self, x, training=True, rng=None):
        return x + rng.normal(tuple(x.shape), std=0.3, backend=self.backend) if training else x

    def backward(self, dy, input_grad=True):
        return dy


class FeatureMask(Layer):
    """One mask of features for the whole batch, drawn on the host (``rng.host()``)."""

    stochastic = True

    def forward(self, x, training=True, rng=None):
        keep = rng.host().random((1, x.shape[1])) < 0.5
        self._mask = self.backend.asarray(keep * 2.0) if training else None
        return x * self._mask if training else x

    def backward(self, dy, input_grad=True):
        return dy if self._mask is None else dy * self._mask


class RowShuffle(Layer):
    """Its batch's rows in a random order: what no share of a batch can do alone."""

    stochastic = True

    def forward(self, x, training=True, rng=None):
        order = rng.permutation(x.shape[0]) if training else np.arange(x.shape[0])
        self._back = self.backend.asarray(np.argsort(order))
        return self.backend.xp.take(x, self.backend.asarray(order), axis=0)

    def backward(self, dy, input_grad=True):
        return self.backend.xp.take(dy, self._back, axis=0)


WHOLE_BATCH_LAYERS = {  # layers that need the whole batch: its masks, its statistics
    "dropout": lambda: [Dense(5, 8), "relu", Dropout(0.5), Dense(8, 3)],
    "batchnorm": lambda: [Dense(5, 8), BatchNorm(8), "relu", Dense(8, 3)],
    "noise": lambda: [Noise(), Dense(5, 8), "relu", Dense(8, 3)],
    "feature_mask": lambda: [Dense(5, 8), "relu", FeatureMask(), Dense(8, 3)],
}


def train_whole_batch(layers: str, distributed: bool):
    """A fit of ``WHOLE_BATCH_LAYERS[layers]`` on 101 samples in batches of 11: on two
    ranks 6 + 5 rows, and each epoch's last batch of 2 rows is 1 + 1. Its weights and
    running state (by name), and a report: the history and the generator's counter."""
    (X, y), (X_val, y_val) = data()
    X, y = np.concatenate([X, X_val])[:101], np.concatenate([y, y_val])[:101]
    net = nb.Sequential(WHOLE_BATCH_LAYERS[layers](), backend="numpy", dtype="float64", seed=1)
    history = net.fit(X, y, loss="cross_entropy", optimizer=nb.optim.SGD(0.1), epochs=3,
                      batch_size=BATCH, seed=3, verbose=0, distributed=distributed)  # fmt: skip
    arrays = {**weights(net), **{k: nb.to_numpy(a).copy() for k, a in net.state.items()}}
    return arrays, {"history": history.history, "generator": net.rng.state}
