"""``BatchNorm``: each channel normalised by the batch's statistics while training, by
running averages of them otherwise (Ioffe & Szegedy, 2015)."""

from __future__ import annotations

import math

from nnbackend.checks import finite_float, positive_int
from nnbackend.layers.base import Layer, check_built
from nnbackend.registry import register, type_name


@register
class BatchNorm(Layer):
    """``y = gamma * (x - mean) / sqrt(var + eps) + beta`` per channel, for x of shape
    (batch, C) or (batch, C, H, W) (statistics over the batch, and over H and W).

    Training uses the batch's mean and (biased) variance and updates the running
    averages in place, ``state["running_mean"]`` and ``state["running_var"]``:
    ``running = momentum * running + (1 - momentum) * batch`` (the unbiased variance, as
    PyTorch keeps it; PyTorch's ``momentum`` is 1 minus this one). Evaluation
    (``training=False``: predict, evaluate, validation) uses the running averages.
    """

    output_range = (-math.inf, math.inf)
    batch_statistics = True  # a distributed fit's step: over every rank's rows
    nonnegative_state = frozenset({"running_var"})

    def __init__(self, num_features: int, momentum: float = 0.9, eps: float = 1e-5):
        super().__init__()
        self.num_features = positive_int(num_features, "BatchNorm num_features")
        self.momentum = finite_float(momentum, "BatchNorm momentum", low=0, high=1, high_open=True)
        self.eps = finite_float(eps, "BatchNorm eps", low=0, low_open=True)

    def min_batch(self, sample_shape: tuple) -> int:
        """2 for rows of features (a variance over one row is 0: every output would be
        beta); 1 for images of several pixels, whose variance is over rows and pixels."""
        return 2 if math.prod(sample_shape[1:]) < 2 else 1

    def param_shapes(self):
        return {"gamma": (self.num_features,), "beta": (self.num_features,)}

    def state_shapes(self):
        return {"running_mean": (self.num_features,), "running_var": (self.num_features,)}

    def build(self, backend, rng):
        super().build(backend, rng)
        xp, shape = backend.xp, (self.num_features,)

        def full(value):
            return xp.full(shape, value, dtype=backend.dtype, device=backend.device)

        self.params.update(gamma=full(1.0), beta=full(0.0))
        self.state.update(running_mean=full(0.0), running_var=full(1.0))

    def output_shape(self, input_shape):
        if len(input_shape) not in (1, 3) or input_shape[0] != self.num_features:
            raise ValueError(
                f"{self!r} takes samples of shape ({self.num_features},) or "
                f"({self.num_features}, H, W), not {tuple(input_shape)}"
            )
        if 0 in input_shape[1:]:  # a batch of any size has no values: no statistics
            height, width = input_shape[1:]
            raise ValueError(
                f"{self!r}: images of {height}x{width} pixels have nothing to normalise"
            )
        return tuple(input_shape)

    def forward(self, x, training=True):
        check_built(self, "gamma")
        xp = self.backend.xp
        if x.ndim not in (2, 4) or x.shape[1] != self.num_features:
            raise ValueError(
                f"{self!r} expects input of shape (batch, {self.num_features}) or "
                f"(batch, {self.num_features}, H, W), got {tuple(x.shape)}"
            )
        axes = (0,) if x.ndim == 2 else (0, 2, 3)
        shape = (1, -1) if x.ndim == 2 else (1, -1, 1, 1)
        if training:
            mean, var = self._batch_statistics(x, axes, shape)
        else:
            mean, var = self.state["running_mean"], self.state["running_var"]
        inv_std = 1.0 / xp.sqrt(var + self.eps)
        xhat = (x - xp.reshape(mean, shape)) * xp.reshape(inv_std, shape)
        self._cache = (xhat, inv_std, training, axes, shape, self.whole_batch)
        return xhat * xp.reshape(self.params["gamma"], shape) + xp.reshape(
            self.params["beta"], shape
        )

    def _batch_statistics(self, x, axes, shape):
        """The batch's mean and biased variance per channel; updates the running ones.
        In a distributed step (``whole_batch``), those of every rank's rows together."""
        xp, whole = self.backend.xp, self.whole_batch
        count = self._count(x.shape, whole)
        if count < 2:
            rows = "" if whole is None else f" (a batch of {whole.rows} rows over the ranks)"
            raise ValueError(
                f"{self!r} needs more than one value per channel to train on, got input of "
                f"shape {tuple(x.shape)}{rows}: use batches of 2 or more"
            )

        # Two passes, the second corrected by what the first missed: NumPy adds a column's
        # rows one after another, and in float32 a first mean of 10^6 rows near 1000 is
        # off by 9, many standard deviations. In a distributed step, the sums are the ranks'.
        def summed(*parts):
            return parts if whole is None else whole.sum(list(parts))

        (total,) = summed(xp.sum(x, axis=axes))
        first = total / count
        centred = x - xp.reshape(first, shape)
        residual, squares = summed(xp.sum(centred, axis=axes), xp.sum(centred * centred, axis=axes))
        correction = residual / count
        mean = first + correction
        var = squares / count - correction * correction
        var = xp.where(var > 0, var, xp.zeros_like(var))  # >= 0 in rounding too; no sync
        m, running = self.momentum, self.state
        # in place, as the weights are updated: a step recorded once (a CUDA graph) then
        # updates the same arrays at every replay
        running["running_mean"] *= m
        running["running_mean"] += (1 - m) * mean
        running["running_var"] *= m
        running["running_var"] += (1 - m) * (var * (count / (count - 1)))  # unbiased
        return mean, var

    def _count(self, shape, whole) -> int:
        """Values per channel in the batch (of every rank, in a distributed step)."""
        rows = shape[0] if whole is None else whole.rows
        return rows * math.prod(shape[2:])

    def backward(self, dy, input_grad=True):
        xhat, inv_std, training, axes, shape, whole = self._cache
        xp = self.backend.xp
        dgamma = xp.sum(dy * xhat, axis=axes)
        dbeta = xp.sum(dy, axis=axes)
        self.grads["gamma"], self.grads["beta"] = dgamma, dbeta
        if not input_grad:
            return None
        scale = xp.reshape(self.params["gamma"] * inv_std, shape)
        if not training:  # the running statistics are constants
            return dy * scale
        count = self._count(dy.shape, whole)
        if whole is not None:  # the batch's mean and variance came from every rank's rows
            dbeta, dgamma = whole.sum([dbeta, dgamma])
        mean_dy = xp.reshape(dbeta / count, shape)
        mean_dy_xhat = xp.reshape(dgamma / count, shape)
        return scale * (dy - mean_dy - xhat * mean_dy_xhat)

    def config(self):
        return {
            "type": type_name(self),
            "num_features": self.num_features,
            "momentum": self.momentum,
            "eps": self.eps,
        }
