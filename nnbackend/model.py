"""``Sequential``: layers in a chain, and the training loop that fits them.

    model = nb.Sequential([Dense(2, 3), Tanh(), Dense(3, 2)], seed=0)
    history = model.fit(X, y, loss=nb.losses.SoftmaxCrossEntropy(),
                        optimizer=nb.optim.SGD(lr=0.01), epochs=100, batch_size=None)
    model.predict(X)                # class labels, on the model's backend

The model lives on the backend it was built on (``backend=``, else the current one);
``model.to("cupy")`` moves it. ``forward``/``backward`` take arrays of that backend
only; ``fit``/``predict``/``evaluate`` also take host NumPy data and move it.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from types import SimpleNamespace

from nnbackend import callbacks as cb
from nnbackend import layers as layer_types
from nnbackend.backend import Generator, as_generator, dtype_name, get_backend, to_numpy
from nnbackend.data import Batches, check_inputs, check_targets
from nnbackend.history import EpochLogs, History
from nnbackend.losses import L2
from nnbackend.progress import Progress


class Sequential:
    """Layers applied in order. Parameters are named ``"<layer index>.<name>"``."""

    def __init__(self, layers, *, backend=None, seed: int | Generator | None = None):
        self.layers = list(layers)
        self.backend = get_backend(backend)
        self.rng = as_generator(seed)
        self.loss = None
        self.optimizer = None
        self.stop_training = False
        for layer in self.layers:
            layer.build(self.backend, self.rng)
        self._check_sizes_chain()

    # --- parameters -----------------------------------------------------------

    @property
    def params(self) -> ArrayView:
        """name -> weight array, assignable: ``model.params["0.W"] = new``."""
        return ArrayView(self, "params")

    @property
    def grads(self) -> ArrayView:
        """name -> gradient array, filled by ``backward``."""
        return ArrayView(self, "grads")

    @property
    def state(self) -> ArrayView:
        """name -> running-state array of layers that keep one (saved with the weights)."""
        return ArrayView(self, "state")

    def decayed_names(self) -> list[str]:
        """The names of the weights that L2 decay applies to (not biases)."""
        return [f"{i}.{k}" for i, layer in enumerate(self.layers) for k in layer.decayed]

    def copy_params(self) -> dict:
        xp = self.backend.xp
        return {name: xp.asarray(a, copy=True) for name, a in self.params.items()}

    def set_params(self, values) -> None:
        params = self.params
        for name, value in values.items():
            params[name] = value

    def count_params(self) -> int:
        return sum(_size(a) for a in self.params.values())

    @property
    def n_inputs(self) -> int | None:
        dense = [layer for layer in self.layers if hasattr(layer, "n_in")]
        return dense[0].n_in if dense else None

    @property
    def n_outputs(self) -> int | None:
        dense = [layer for layer in self.layers if hasattr(layer, "n_out")]
        return dense[-1].n_out if dense else None

    # --- forward and backward -------------------------------------------------

    def forward(self, x, training: bool = True):
        """(batch, n_inputs) -> (batch, n_outputs): raw outputs (logits, if the loss takes them)."""
        self._check_input(x)
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    def __call__(self, x):
        return self.forward(x, training=False)

    def backward(self, dy):
        """dL/d(output) -> dL/d(input); fills every layer's grads."""
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
        return dy

    def predict_proba(self, X, batch_size: int | None = None):
        """Probabilities: the loss's link (softmax, sigmoid) applied to the outputs."""
        out = self._predict_raw(X, batch_size)
        return self.loss.link(out) if self.loss is not None else out

    def predict(self, X, batch_size: int | None = None):
        """Class labels (batch,): argmax of the outputs, or output > 0.5 for one output."""
        xp = self.backend.xp
        proba = self.predict_proba(X, batch_size)
        if proba.shape[1] == 1:
            return xp.astype(proba[:, 0] > 0.5, xp.int64)
        return xp.argmax(proba, axis=1)

    def evaluate(self, X, y, loss=None, batch_size: int | None = None) -> dict[str, float]:
        """Loss and accuracy on (X, y), as Python floats (one host transfer)."""
        loss = loss or self.loss
        if loss is None:
            raise ValueError("evaluate needs a loss: pass loss=..., or fit the model first")
        metrics = self._measure(X, y, loss, batch_size)
        return dict(EpochLogs(0, metrics, self.backend))

    # --- training -------------------------------------------------------------

    def train_step(self, xb, yb, loss, optimizer, l2: L2 | None = None):
        """One step: forward, loss, backward, update. Returns (loss value, outputs) on device."""
        out = self.forward(xb, training=True)
        value = loss.forward(out, yb)
        self.backward(loss.backward())
        if l2 is not None:
            names = self.decayed_names()
            params, grads = self.params, self.grads
            value = value + l2.penalty([params[name] for name in names])
            l2.add_to_gradients(params, grads, names)
        optimizer.step(self.params, self.grads)
        return value, out

    def fit(
        self,
        X,
        y,
        *,
        loss,
        optimizer,
        epochs: int = 1,
        batch_size: int | None = 32,
        shuffle: bool = True,
        validation_data=None,
        validation_split: float = 0.0,
        l2: float | None = None,
        callbacks=(),
        verbose: int = 1,
        log_every: int | None = None,
        seed: int | None = None,
        on_device="auto",
    ) -> History:
        """Train for ``epochs`` passes over (X, y); returns the per-epoch History.

        ``batch_size=None`` is full-batch gradient descent, ``1`` per-sample SGD.
        ``l2`` adds ``l2/2 * sum(W**2)`` of the weights to the loss. ``verbose``:
        0 silent, 1 a progress bar (on a terminal only), 2 a line per log.
        Metrics stay on the device and come to the host every ``log_every`` epochs
        (default: about 20 times per fit), so there is no host sync per step.
        ``seed`` reshuffles from a fresh generator; by default the model's own is used.
        """
        self.loss, self.optimizer = loss, optimizer
        rng = self.rng if seed is None else Generator(seed)
        X, y, validation_data = self._split_validation(X, y, validation_data, validation_split, rng)
        self._check_data(X, y, loss)
        batches = Batches(
            X, y, self.backend, batch_size, shuffle=shuffle, rng=rng,
            y_dtype=self._target_dtype(loss, y), on_device=on_device,
        )  # fmt: skip
        validation = self._validation_batches(validation_data, loss)
        log_every = log_every or max(1, epochs // 20)
        fit = SimpleNamespace(
            epochs=epochs, log_every=log_every, optimizer=optimizer,
            metrics=self._metric_names(loss, validation is not None),
        )  # fmt: skip
        callbacks = [cb.TerminateOnNaN(), *callbacks]
        history = History(self.backend)
        progress = Progress(epochs * len(batches), verbose, fit.metrics)
        l2_term = L2(l2) if l2 else None
        self.stop_training = False  # a callback sets it to end training after this epoch
        for callback in callbacks:
            callback.on_train_begin(self, fit)
        try:
            for epoch in range(epochs):
                metrics = self._train_epoch(batches, loss, optimizer, l2_term, progress)
                if validation is not None:
                    metrics.update(_prefixed("val_", self._measure_batches(validation, loss)))
                logs = EpochLogs(epoch, metrics, self.backend)
                history.append(logs)
                if epoch % log_every == 0 or epoch == epochs - 1:
                    history.flush()
                    progress.log(epoch, logs)
                for callback in callbacks:
                    callback.on_epoch_end(epoch, logs, self)
                if self.stop_training:
                    break
        finally:
            progress.close()
        for callback in callbacks:
            callback.on_train_end(self, history)
        return history

    def _train_epoch(self, batches, loss, optimizer, l2, progress) -> dict:
        """One pass over the batches; the epoch's mean loss (and accuracy), on device."""
        total_loss = total_correct = 0.0
        for xb, yb in batches:
            value, out = self.train_step(xb, yb, loss, optimizer, l2)
            total_loss = total_loss + loss.per_batch_total(value, xb.shape[0])
            if loss.has_accuracy:
                total_correct = total_correct + loss.count_correct(out, yb)
            progress.update()
        return _epoch_metrics(loss, total_loss, total_correct, batches.n)

    # --- moving and describing ------------------------------------------------

    def to(self, backend, dtype: str | None = None, optimizer=None) -> Sequential:
        """Move the weights, state and optimizer state to ``backend`` (through the host).
        Returns the model itself."""
        backend = get_backend(backend, dtype=dtype)
        for layer in self.layers:
            for store in (layer.params, layer.state):
                for name, a in store.items():
                    host = to_numpy(a)
                    store[name] = backend.asarray(host, dtype=_float_or_keep(backend, host))
            layer.grads.clear()
            layer.backend = backend
        self.backend = backend
        for opt in {id(o): o for o in (optimizer, self.optimizer) if o is not None}.values():
            opt.to(backend)
        return self

    def config(self) -> dict:
        return {"type": "Sequential", "layers": [layer.config() for layer in self.layers]}

    @classmethod
    def from_config(cls, config: dict, backend=None, seed=None) -> Sequential:
        if config.get("type") != "Sequential" or "layers" not in config:
            raise ValueError(f"not a Sequential model's config: {str(config)[:200]}")
        return cls(
            [layer_types.from_config(c) for c in config["layers"]], backend=backend, seed=seed
        )

    def summary(self) -> str:
        """A table of layers and their parameter counts."""
        rows = [f"{'#':<4}{'layer':<40}{'params':>10}"]
        for i, layer in enumerate(self.layers):
            rows.append(f"{i:<4}{layer!r:<40}{sum(_size(a) for a in layer.params.values()):>10}")
        rows.append(f"total {self.count_params()} parameters on {self.backend}")
        return "\n".join(rows)

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"Sequential([{inner}], backend={self.backend.name!r})"

    # --- helpers --------------------------------------------------------------

    def _check_input(self, x) -> None:
        self.backend.check_array(x, "model input")
        if x.dtype != self.backend.dtype:
            raise TypeError(
                f"model input has dtype {dtype_name(self.backend.xp, x.dtype)}, "
                "but the model computes in "
                f"{self.backend.dtype_name}: convert it with backend.asarray(X, "
                f"dtype={self.backend.dtype_name!r}), or pass host data to fit/predict"
            )

    def _check_sizes_chain(self) -> None:
        dense = [layer for layer in self.layers if hasattr(layer, "n_in")]
        for a, b in zip(dense, dense[1:], strict=False):
            if a.n_out != b.n_in:
                raise ValueError(
                    f"{a!r} gives {a.n_out} features but the next, {b!r}, takes {b.n_in}"
                )

    def _as_input(self, X):
        """Host data converted to the model's backend and dtype; device arrays checked."""
        if _is_foreign(X):
            self._check_input(X)
            return X
        return self.backend.asarray(X, dtype=self.backend.dtype_name)

    def _predict_raw(self, X, batch_size):
        X = self._as_input(X)
        n = X.shape[0]
        if batch_size is None or batch_size >= n:
            return self.forward(X, training=False)
        parts = [
            self.forward(X[i : min(i + batch_size, n), ...], training=False)
            for i in range(0, n, batch_size)
        ]
        return self.backend.xp.concat(parts, axis=0)

    def _check_data(self, X, y, loss) -> None:
        if not isinstance(X, self.backend.array_types) and _is_foreign(X):
            self.backend.check_array(X, "X")
        check_inputs(X, self.n_inputs)
        check_targets(y, X.shape[0], self.n_outputs, loss.target_kind)

    def _target_dtype(self, loss, y) -> str:
        if loss.target_kind == "labels" and y.ndim == 1:
            return "int64"
        return self.backend.dtype_name

    def _validation_batches(self, validation_data, loss):
        if validation_data is None:
            return None
        Xv, yv = validation_data
        self._check_data(Xv, yv, loss)
        return Batches(
            Xv, yv, self.backend, None, shuffle=False, y_dtype=self._target_dtype(loss, yv)
        )

    def _split_validation(self, X, y, validation_data, fraction, rng):
        if not fraction:
            return X, y, validation_data
        if validation_data is not None:
            raise ValueError("give validation_data or validation_split, not both")
        if not 0 < fraction < 1:
            raise ValueError(f"validation_split must be between 0 and 1, got {fraction}")
        order = rng.permutation(X.shape[0])
        n_val = max(1, int(round(fraction * X.shape[0])))
        val, train = order[:n_val], order[n_val:]
        return X[train], y[train], (X[val], y[val])

    def _measure(self, X, y, loss, batch_size) -> dict:
        self._check_data(X, y, loss)
        batches = Batches(
            X, y, self.backend, batch_size, shuffle=False, y_dtype=self._target_dtype(loss, y)
        )
        return self._measure_batches(batches, loss)

    def _measure_batches(self, batches, loss) -> dict:
        """Mean loss (and accuracy) over ``batches`` without training, on device."""
        total_loss = total_correct = 0.0
        for xb, yb in batches:
            out = self.forward(xb, training=False)
            total_loss = total_loss + loss.per_batch_total(loss.forward(out, yb), xb.shape[0])
            if loss.has_accuracy:
                total_correct = total_correct + loss.count_correct(out, yb)
        return _epoch_metrics(loss, total_loss, total_correct, batches.n)

    @staticmethod
    def _metric_names(loss, has_validation: bool) -> list[str]:
        names = ["loss", "accuracy"] if loss.has_accuracy else ["loss"]
        return names + [f"val_{n}" for n in names] if has_validation else names


class ArrayView(MutableMapping):
    """The model's arrays of one kind ("params", "grads", "state") by dotted name.

    Reads and writes go straight to the layers; a write must keep the array's shape,
    dtype and backend. Names cannot be added or removed.
    """

    def __init__(self, model: Sequential, kind: str):
        self._model = model
        self._stores = {
            f"{i}.{name}": (getattr(layer, kind), name)
            for i, layer in enumerate(model.layers)
            for name in getattr(layer, kind)
        }

    def __getitem__(self, name):
        store, key = self._stores[name]
        return store[key]

    def __setitem__(self, name, value):
        if name not in self._stores:
            raise KeyError(f"no array named {name!r}; the names are {list(self._stores)}")
        store, key = self._stores[name]
        current = store.get(key)
        if value is not current:
            self._check(name, value, current)
        store[key] = value

    def _check(self, name, value, current) -> None:
        self._model.backend.check_array(value, name)
        if current is not None and (value.shape != current.shape or value.dtype != current.dtype):
            raise ValueError(
                f"{name} is {current.dtype} {tuple(current.shape)}; "
                f"cannot assign {value.dtype} {tuple(value.shape)}"
            )

    def __delitem__(self, name):
        raise TypeError("a model's arrays cannot be removed")

    def __iter__(self):
        return iter(self._stores)

    def __len__(self):
        return len(self._stores)

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k!r}: {tuple(v.shape)}" for k, v in self.items()) + "}"


def _size(a) -> int:
    n = 1
    for d in a.shape:
        n *= d
    return n


def _is_foreign(X) -> bool:
    """An array of some library's own (not host NumPy)."""
    return hasattr(X, "__array_namespace__") and type(X).__module__.split(".")[0] != "numpy"


def _epoch_metrics(loss, total_loss, total_correct, n: int) -> dict:
    """Per-sample means over an epoch of ``n`` samples."""
    metrics = {"loss": total_loss / n}
    if loss.has_accuracy:
        metrics["accuracy"] = total_correct / n
    return metrics


def _float_or_keep(backend, host) -> str | None:
    """Float arrays take the backend's float dtype; others keep theirs."""
    return backend.dtype_name if host.dtype.kind == "f" else None


def _prefixed(prefix: str, metrics: dict) -> dict:
    return {prefix + k: v for k, v in metrics.items()}
