"""A conv net given no ``input_shape`` knows its outputs only from the data: one that
ends in global pooling or Flatten is checked against its targets and metrics by what
its layers make of X's samples, as the same net given input_shape is."""

from __future__ import annotations

import numpy as np
import pytest

import nnbackend as nb
from nnbackend.data_checks import outputs_per_sample
from nnbackend.layers import Conv2D, Dense, Flatten, GlobalAvgPool2D, ReLU, Sigmoid, Softmax

X = np.random.default_rng(0).random((24, 3, 9, 9)).astype("float32")
Y = np.arange(24) % 2


def pooled(backend, outputs: int, *tail, **given):
    """Conv2D(3, 4, 3, stride=2) -> ReLU -> Conv2D(4, outputs, 3) -> GlobalAvgPool2D."""
    layers = [Conv2D(3, 4, 3, stride=2), ReLU(), Conv2D(4, outputs, 3), GlobalAvgPool2D(), *tail]
    return nb.Sequential(layers, backend=backend, seed=0, **given)


def fit(model, y, loss="cross_entropy", **options):
    return model.fit(X, y, loss=loss, optimizer="adam", epochs=1, verbose=0, **options)


def test_the_outputs_a_conv_net_makes_of_the_data():
    assert pooled("numpy", 2).n_outputs is None  # no data: not known
    assert outputs_per_sample(pooled("numpy", 2), X) == 2
    assert outputs_per_sample(nb.Sequential([Conv2D(3, 1, 3), Flatten()]), X) == 49
    assert outputs_per_sample(nb.Sequential([Conv2D(3, 2, 3)]), X) is None  # images out
    assert outputs_per_sample(pooled("numpy", 2), X[:, :2]) is None  # X it cannot take
    assert outputs_per_sample(nb.Sequential([Dense(4, 3)]), X[:, 0, 0, :4]) == 3


@pytest.mark.parametrize("given", [{}, {"input_shape": (3, 9, 9)}])
def test_labels_past_the_outputs_are_refused_with_or_without_input_shape(backend, given):
    """Without input_shape, fit trained on labels 1 and 2 of two outputs, and evaluate
    scored labels 7 and 8 a loss of 0.0."""
    with pytest.raises(ValueError, match=r"labels from 1 to 2, .* 2 outputs.* Use y - 1"):
        fit(pooled(backend, 2, **given), Y + 1)
    model = pooled(backend, 2, **given)
    fit(model, Y)
    with pytest.raises(ValueError, match=r"y holds labels from 7 to 8, but the model has 2"):
        model.evaluate(X, Y + 7)
    with pytest.raises(ValueError, match=r"validation y holds labels from 3 to 4"):
        fit(pooled(backend, 2, **given), Y, validation_data=(X, Y + 3))


def test_cross_entropy_on_one_pooled_output_is_refused(backend):
    """Its loss was 0.0 at every step: a softmax of one output is 1."""
    with pytest.raises(ValueError, match="cross-entropy needs one output per class, but the "
                       "model has 1 output"):  # fmt: skip
        fit(pooled(backend, 1), Y)


def test_the_metrics_and_the_output_layer_are_checked_by_the_datas_outputs(backend):
    with pytest.raises(ValueError, match="top_5_accuracy of a model with 2 classes is always 1"):
        fit(pooled(backend, 2), Y, metrics=["top_k_accuracy"])
    with pytest.raises(ValueError, match=r"ends in Softmax\(\), a softmax of one output"):
        fit(pooled(backend, 1, Softmax()), Y, loss="bce")


def test_binary_targets_for_several_pooled_outputs_are_told_before_the_first_step(backend):
    """It failed in the loss at the first step, with a batch's shapes: (16,) for (16, 3)."""
    model = nb.Sequential(
        [Conv2D(3, 3, 3, stride=4), Sigmoid(), GlobalAvgPool2D()], backend=backend
    )
    with pytest.raises(ValueError, match=r"y has shape \(24,\), but the model has 3 outputs: "
                       "binary cross-entropy"):  # fmt: skip
        fit(model, Y, loss="bce")


def test_a_flattened_conv_net_takes_targets_of_its_outputs_for_the_data(backend):
    targets = np.random.default_rng(1).random((24, 49))
    model = nb.Sequential([Conv2D(3, 1, 3), Flatten()], backend=backend, seed=0)
    assert len(fit(model, targets, loss="mse").history["loss"]) == 1
    with pytest.raises(ValueError, match=r"y has shape \(24, 48\), but the model has 49 outputs"):
        fit(model, targets[:, :48], loss="mse")
    smaller = np.random.default_rng(2).random((5, 3, 6, 6))  # another size: its own count
    assert model.evaluate(smaller, targets[:5, :16], loss="mse")["loss"] > 0


def test_the_gradient_check_refuses_labels_past_a_pooled_nets_outputs(backend):
    """It reported 'wrong' gradients (relative errors 0.58 and 0.89) where fit refuses."""
    model = nb.Sequential([Conv2D(3, 2, 3), GlobalAvgPool2D()], backend=backend, seed=0)
    with pytest.raises(ValueError, match=r"y holds labels from 0 to 4, but the model has 2"):
        nb.gradcheck.check_gradients(model, "cross_entropy", X[:6], np.array([0, 1, 4, 3, 2, 4]))


def test_evaluate_checks_its_metrics_by_the_datas_outputs(backend):
    model = pooled(backend, 2)
    fit(model, Y)
    with pytest.raises(ValueError, match="top_5_accuracy of a model with 2 classes is always 1"):
        model.evaluate(X, Y, loss="cross_entropy", metrics=["top_k_accuracy"])


class FirstThree(nb.layers.Layer):
    """The first three features: a shape it changes without saying (Layer's output_shape)."""

    def forward(self, x, training=True):
        self._n = x.shape[1]
        return x[:, :3]

    def backward(self, dy, input_grad=True):
        xp = nb.backend.namespace_of(dy)
        zeros = xp.zeros((dy.shape[0], self._n - 3), dtype=dy.dtype, device=dy.device)
        return xp.concat([dy, zeros], axis=1)


def test_a_layer_of_ones_own_at_the_end_leaves_the_outputs_unknown(backend):
    """Counted through it as the layers before it give (4), its 3 targets were refused."""
    model = nb.Sequential([Conv2D(3, 4, 3), GlobalAvgPool2D(), FirstThree()], backend=backend)
    assert outputs_per_sample(model, X) is None
    targets = np.random.default_rng(4).random((24, 3))
    assert len(fit(model, targets, loss="mse").history["loss"]) == 1
