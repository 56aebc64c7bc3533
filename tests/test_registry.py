"""Registries: built-ins and users' classes are found by the name a checkpoint stores."""

from __future__ import annotations

import numpy as np
import pytest

import nnbackend as nb
from nnbackend import registry
from nnbackend.layers import Dense, Layer, Tanh


class Swish(Layer):
    """x * sigmoid(x), a user's layer (not registered here)."""

    def forward(self, x, training=True):
        self._x = x
        return x * nb.functional.sigmoid(x)

    def backward(self, dy, input_grad=True):
        s = nb.functional.sigmoid(self._x)
        return dy * (s + self._x * s * (1 - s))


def test_builtins_are_registered_under_their_names():
    assert {"Dense", "Tanh", "Softmax"} <= set(registry.LAYERS.names())
    assert {"SGD", "Adam"} <= set(registry.OPTIMIZERS.names())
    assert {"MSE", "SoftmaxCrossEntropy"} <= set(registry.LOSSES.names())
    assert {"StepDecay"} <= set(registry.SCHEDULES.names())
    assert {"lecun", "he", "glorot"} <= set(registry.INITIALIZERS.names())
    assert registry.MODELS.get("Sequential") is nb.Sequential


def test_an_unknown_type_says_how_to_register_it(tmp_path):
    model = nb.Sequential([Dense(2, 3), Swish(), Dense(3, 1)], seed=0)
    nb.save(model, tmp_path / "swish.h5")
    with pytest.raises(nb.CheckpointError, match=r"unknown layer type 'Swish'.*@nb.register"):
        nb.load(tmp_path / "swish.h5")


def test_custom_objects_load_an_unregistered_layer(tmp_path):
    model = nb.Sequential([Dense(2, 3), Swish(), Dense(3, 1)], seed=0)
    nb.save(model, tmp_path / "swish.h5")
    again = nb.load(tmp_path / "swish.h5", custom_objects={"Swish": Swish})
    assert isinstance(again.layers[1], Swish)
    for name, value in model.params.items():
        np.testing.assert_array_equal(nb.to_numpy(again.params[name]), nb.to_numpy(value))
    with pytest.raises(nb.CheckpointError, match="unknown layer type 'Swish'"):
        nb.load(tmp_path / "swish.h5")  # only inside that one load


def test_register_makes_a_user_layer_loadable(tmp_path, monkeypatch):
    monkeypatch.setattr(registry.LAYERS, "_classes", dict(registry.LAYERS._classes))

    @nb.register
    class Cube(Tanh):
        pass

    nb.save(nb.Sequential([Dense(2, 2), Cube()], seed=0), tmp_path / "cube.h5")
    assert isinstance(nb.load(tmp_path / "cube.h5").layers[1], Cube)


def test_a_second_class_of_the_same_name_is_refused(monkeypatch):
    monkeypatch.setattr(registry.LAYERS, "_classes", dict(registry.LAYERS._classes))

    class Dense(Layer):  # noqa: F811 - the clash is the point
        pass

    with pytest.raises(ValueError, match="a layer named 'Dense' is already registered"):
        nb.register(Dense)
    assert nb.register(name="MyDense")(Dense) is Dense


def test_only_the_known_kinds_register():
    with pytest.raises(TypeError, match="subclass one of nb.layers.Layer"):
        nb.register(dict)
