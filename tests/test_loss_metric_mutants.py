"""Edges of the losses, metrics and output-range checks that a mutation run of
losses.py, loss_base.py, metrics.py and output_range.py (M68) found no test holding:
each test fails under a mutant the rest of the suite let pass."""

from __future__ import annotations

import copy
import pickle
import warnings

import numpy as np
import pytest

import nnbackend as nb
from nnbackend.layers import Dense, Sigmoid
from nnbackend.losses import MSE, BinaryCrossEntropy, SoftmaxCrossEntropy
from nnbackend.output_range import check_output_layer


def test_a_model_pickled_with_its_loss_under_the_old_name_keeps_it():
    """Models pickled before the loss became a slot kept it as plain ``loss``."""
    model = nb.Sequential([Dense(2, 1), Sigmoid()], seed=0)
    model.loss = "bce"
    model.__dict__["loss"] = model.__dict__.pop("_loss")  # as an older pickle holds it
    again = pickle.loads(pickle.dumps(model))
    assert type(again.loss) is BinaryCrossEntropy


def test_copies_of_a_loss_leave_its_class_ids_behind(backend):
    """The class ids made once per device (a CuPy or torch:cuda array) stayed in a pickle."""
    loss = SoftmaxCrossEntropy(from_logits=False)  # probabilities: one-hot rows made
    loss.forward(backend.asarray(np.full((2, 3), 1 / 3)), backend.asarray(np.array([0, 2])))
    assert loss._class_ids  # made by the forward
    for again in (pickle.loads(pickle.dumps(loss)), copy.deepcopy(loss), copy.copy(loss)):
        assert not again._class_ids and again.config() == loss.config()


@pytest.mark.parametrize("name, want", [("mse", 1.0 + 4.0), ("mae", 1.0 + 2.0)])
def test_the_regression_metrics_average_over_every_output_of_an_image(backend, name, want):
    """A mean over the channels alone gave 4 times the value for 2 x 2 images."""
    out = np.zeros((2, 1, 2, 2))
    target = np.stack([np.ones((1, 2, 2)), np.full((1, 2, 2), 2.0)])  # errors 1 and 2
    value, weight = nb.metrics.get(name).batch(backend.asarray(out), backend.asarray(target), MSE())
    assert weight == 1 and float(backend.to_numpy(value)) == pytest.approx(want)  # a sum


@pytest.mark.parametrize("dtype", ["int32", "uint8", "int64"])
def test_top_k_takes_labels_of_any_integer_type(backend, dtype):
    """torch's take_along_dim takes int64 indices alone (int32 labels raised there)."""
    scores = backend.asarray(np.array([[0.1, 0.5, 0.4], [0.3, 0.2, 0.5], [0.6, 0.3, 0.1]]))
    labels = backend.asarray(np.array([2, 1, 1]), dtype=dtype)
    count, weight = nb.metrics.TopKAccuracy(k=2).batch(scores, labels, SoftmaxCrossEntropy())
    assert int(backend.to_numpy(count)) == 2 and weight == 1  # rows 0 and 2 in the top two


class Noise(nb.layers.Layer):
    """Additive noise in training: stochastic, with no ``rate``."""

    stochastic = True

    def forward(self, x, training=True, rng=None):
        return x

    def backward(self, dy, input_grad=True):
        return dy


def test_a_noise_layer_of_ones_own_after_the_sigmoid_is_refused_without_a_rate():
    model = nb.Sequential([Dense(2, 1), Sigmoid(), Noise()], seed=0)
    with pytest.raises(ValueError, match=r"ends in Noise\(\), which draws at random in training"):
        check_output_layer(model, BinaryCrossEntropy(), np.zeros((4, 2)))


class RandomFlip(nb.layers.Layer):
    """Reverses the features of a batch at random in training: its outputs are its
    inputs, in another order, within their range."""

    stochastic = True
    keeps_range = True

    def forward(self, x, training=True, rng=None):
        self._flip = (
            training and rng is not None and float(rng.uniform((), backend=self.backend)) < 0.5
        )
        return x[:, ::-1] if self._flip else x

    def backward(self, dy, input_grad=True):
        return dy[:, ::-1] if self._flip else dy


def test_a_random_layer_that_keeps_its_range_after_the_sigmoid_trains_under_bce():
    """It was refused as Dropout is, which scales what it keeps past [0, 1]."""
    X, y = nb.datasets.make_moons(40, seed=0)
    model = nb.Sequential([Dense(2, 3), Sigmoid(), RandomFlip()], seed=0)
    history = model.fit(X, np.eye(3)[y], loss="bce", optimizer="adam", epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2


class HalfSigmoid(Sigmoid):
    """sigmoid / 2: outputs in [0, 0.5], within [0, 1]."""

    output_range = (0.0, 0.5)

    def forward(self, x, training=True):
        return super().forward(x, training) / 2

    def backward(self, dy, input_grad=True):
        return super().backward(dy / 2, input_grad)


def test_a_last_layer_of_a_range_within_zero_and_one_is_taken_for_probabilities():
    """Under MSE with targets other than 0 and 1 it is warned of, and predict gives labels."""
    model = nb.Sequential([Dense(2, 1), HalfSigmoid()], seed=0)
    X, y = np.zeros((4, 2)), np.array([0.1, 0.2, 0.3, 0.4])
    with pytest.warns(UserWarning, match="y holds values other than 0 and 1, but the model "
                      "ends in HalfSigmoid"):  # fmt: skip
        check_output_layer(model, MSE(), X, y)
    model.loss = MSE()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert set(np.asarray(model.predict(X)).ravel()) <= {0, 1}
