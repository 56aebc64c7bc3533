"""Registries: built-ins and users' classes are found by the name a checkpoint stores."""

from __future__ import annotations

import importlib
import json
import sys

import h5py
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
    """The remedy comes before the list of registered layers, which the load's message
    cuts at 300 characters: it was cut off at custom_objects={'Swi..."""

    class SwishOfOneself(Swish):
        pass

    class SwishOfOneselfWithANameAsLongAsTheLongestAClassNeedsToBeItsOwnToo(Swish):
        pass

    model = nb.Sequential([Dense(2, 3), SwishOfOneself(), Dense(3, 1)], seed=0)
    nb.save(model, tmp_path / "swish.h5")
    said = r"'SwishOfOneself'.*custom_objects=\{'SwishOfOneself': SwishOfOneself\} to nb.load"
    with pytest.raises(nb.CheckpointError, match=rf"unknown layer type {said}"):
        nb.load(tmp_path / "swish.h5")
    long = SwishOfOneselfWithANameAsLongAsTheLongestAClassNeedsToBeItsOwnToo
    nb.save(nb.Sequential([Dense(2, 3), long(), Dense(3, 1)], seed=0), tmp_path / "long.h5")
    said = rf"custom_objects=\{{'{long.__name__}': {long.__name__}\}} to nb.load or nb.restore;"
    with pytest.raises(nb.CheckpointError, match=said):
        nb.load(tmp_path / "long.h5")


def test_custom_objects_load_an_unregistered_layer(tmp_path):
    model = nb.Sequential([Dense(2, 3), Swish(), Dense(3, 1)], seed=0)
    nb.save(model, tmp_path / "swish.h5")
    again = nb.load(tmp_path / "swish.h5", custom_objects={"Swish": Swish})
    assert isinstance(again.layers[1], Swish)
    for name, value in model.params.items():
        np.testing.assert_array_equal(nb.to_numpy(again.params[name]), nb.to_numpy(value))
    with pytest.raises(nb.CheckpointError, match="unknown layer type 'Swish'"):
        nb.load(tmp_path / "swish.h5")  # only inside that one load


class HalfSGD(nb.optim.SGD):
    """W -= lr / 2 * dW, a user's optimizer (not registered)."""

    def update(self, params, name, grad, lr):
        params[name] -= 0.5 * lr * grad


class HalfMSE(nb.losses.MSE):
    """A user's loss (not registered)."""


def test_a_fit_resumes_from_a_file_of_its_own_unregistered_classes(tmp_path):
    """The model is built of them, so the file naming them is read with them: the
    resume said to pass custom_objects to nb.load, which fit does not take."""
    X, y = nb.datasets.make_moons(30, seed=0)
    path, options = tmp_path / "run.h5", dict(loss=HalfMSE(), batch_size=8, verbose=0)

    def fit(epochs, **more):
        model = nb.Sequential([Dense(2, 3), Swish(), Dense(3, 1)], seed=0)
        history = model.fit(X, y[:, None], optimizer=HalfSGD(0.1), epochs=epochs, **options, **more)
        return model, history

    whole, _ = fit(4)
    fit(2, checkpoint=path)
    resumed, history = fit(4, checkpoint=path, resume=True)
    assert len(history["loss"]) == 2
    for name, value in whole.params.items():
        np.testing.assert_array_equal(nb.to_numpy(resumed.params[name]), nb.to_numpy(value))
    with pytest.raises(nb.CheckpointError, match="unknown layer type 'Swish'"):
        nb.load(path)  # the fit's classes answered inside its resume only


@pytest.mark.parametrize("slot", ["optimizer", "schedule"])
def test_a_custom_layer_is_no_optimizer_or_schedule_whatever_the_file_says(tmp_path, slot):
    """custom_objects answered for every kind: a file naming the user's layer as its
    optimizer failed deep inside, and as its schedule trained with the layer as the
    learning rate (growing each step) without a word."""
    model = nb.Sequential([Dense(2, 3), Swish(), Dense(3, 1)], seed=0)
    optimizer = nb.optim.SGD(nb.schedules.StepDecay(0.1, 10))
    optimizer.train_for(model)
    nb.save(model, tmp_path / "evil.h5", optimizer=optimizer)
    with h5py.File(tmp_path / "evil.h5", "r+") as f:
        config = json.loads(f["optimizer"].attrs["config"])
        if slot == "optimizer":
            config["type"] = "Swish"
        else:
            config["lr"] = {"type": "Swish"}
        f["optimizer"].attrs["config"] = json.dumps(config)
    with pytest.raises(nb.CheckpointError, match=f"unknown {slot} type 'Swish'"):
        nb.load(tmp_path / "evil.h5", custom_objects={"Swish": Swish}, with_optimizer=True)


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
    monkeypatch.setattr(registry.OPTIMIZERS, "_classes", dict(registry.OPTIMIZERS._classes))

    class Adam(nb.optim.Optimizer):
        pass

    with pytest.raises(ValueError, match="^an optimizer named 'Adam' is already"):  # not "a"
        nb.register(Adam)


def test_a_class_registered_under_another_name_saves_and_loads_by_it(tmp_path, monkeypatch):
    """What the clash's message advises: the config wrote the class name, which no
    registry held, so nb.load refused the file and asked for @nb.register again."""
    for kind in (registry.LAYERS, registry.OPTIMIZERS, registry.LOSSES):
        monkeypatch.setattr(kind, "_classes", dict(kind._classes))

    @nb.register(name="MyTanh")
    class Tanh2(Tanh):
        pass

    @nb.register(name="MySGD")
    class SGD(nb.optim.SGD):  # a built-in's name, as in a user's own module
        pass

    @nb.register(name="MyMSE")
    class MSE(nb.losses.MSE):
        pass

    model = nb.Sequential([Dense(2, 2), Tanh2()], seed=0)
    model.loss = MSE()
    assert model.config()["layers"][1] == {"type": "MyTanh"}
    assert (SGD(0.1).config()["type"], model.loss.config()["type"]) == ("MySGD", "MyMSE")
    nb.save(model, tmp_path / "m.h5", optimizer=SGD(0.1))
    again, optimizer, _ = nb.load(tmp_path / "m.h5", with_optimizer=True)
    assert isinstance(again.layers[1], Tanh2) and type(optimizer) is SGD
    assert type(again.loss) is MSE


def test_an_older_state_of_a_class_registered_under_another_name_loads(monkeypatch):
    """States saved before configs wrote the registered name hold the class's name."""
    monkeypatch.setattr(registry.OPTIMIZERS, "_classes", dict(registry.OPTIMIZERS._classes))

    @nb.register(name="MyAdam")
    class Adam(nb.optim.Adam):
        pass

    first = Adam(0.01)
    first.step({"w": np.ones(3)}, {"w": np.full(3, 0.5)})
    state = first.state_dict()
    assert state["type"] == "MyAdam"
    second = Adam(0.01)
    second.load_state_dict(dict(state, type="Adam"))  # as an older file has it
    assert second.iterations == 1
    assert np.array_equal(second.state["m"]["w"], first.state["m"]["w"])
    with pytest.raises(ValueError, match="the state is RMSProp's; MyAdam cannot take it"):
        second.load_state_dict(dict(state, type="RMSProp"))


def test_only_the_known_kinds_register():
    with pytest.raises(TypeError, match="subclass one of nb.layers.Layer"):
        nb.register(dict)
    with pytest.raises(TypeError, match="len is not a layer, loss"):
        nb.register(len)
    # 'str' object has no attribute '__name__', for a slip Keras users make
    with pytest.raises(TypeError, match=r"a name as a keyword: @nb.register\(name='Swish'\)"):
        nb.register("Swish")
    with pytest.raises(TypeError, match=r"takes a class, not an object of one: Dense\("):
        nb.register(Dense(2, 2))


def test_a_custom_initialiser_is_saved_and_built_as_itself(monkeypatch):
    """It wrote its base's name ('he') and came back as He, its weights 10 times smaller;
    one with no name of its own was 'initializer', which a second such class clashed with."""
    monkeypatch.setattr(registry.INITIALIZERS, "_classes", dict(registry.INITIALIZERS._classes))

    @nb.register(name="scaled_he")
    class ScaledHe(nb.init.He):
        def std(self, fan_in, fan_out):
            return 10 * super().std(fan_in, fan_out)

    @nb.register
    class Tiny(nb.init.Initializer):
        def std(self, fan_in, fan_out):
            return 1e-3

    model = nb.Sequential([Dense(40, 30, init=ScaledHe()), Dense(30, 2, init=Tiny())], seed=0)
    assert [layer["init"] for layer in model.config()["layers"]] == [
        {"name": "scaled_he"},
        {"name": "Tiny"},
    ]
    again = nb.Sequential.from_config(json.loads(json.dumps(model.config())), seed=0)
    assert [type(layer.init) for layer in again.layers] == [ScaledHe, Tiny]
    for name, value in model.params.items():
        np.testing.assert_array_equal(nb.to_numpy(again.params[name]), nb.to_numpy(value))
    assert nb.init.He().config() == {"name": "he"}  # the built-ins keep their names

    class Unregistered(nb.init.He):  # used to build, never registered: saved as He
        def std(self, fan_in, fan_out):
            return 2 * super().std(fan_in, fan_out)

    assert Unregistered().config() == {"name": "he"}
    built = nb.Sequential([Dense(4, 3, init=Unregistered())], seed=0)
    again = nb.Sequential.from_config(json.loads(json.dumps(built.config())), seed=0)
    assert type(again.layers[0].init) is nb.init.He


def made_before_a_reload(tmp_path, monkeypatch, module: str, source: str, class_name: str):
    """An object of ``module``'s class ``class_name``, made before the module was
    reloaded: the registry then holds the new class, the object the old one."""
    (tmp_path / f"{module}.py").write_text("import nnbackend as nb\n" + source)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        loaded = importlib.import_module(module)
        old = getattr(loaded, class_name)()
        importlib.reload(loaded)
    finally:
        sys.modules.pop(module, None)
    return old


def test_an_object_made_before_its_module_was_reloaded_saves_by_its_registered_name(
    tmp_path, monkeypatch
):
    """The save of an old object wrote its class name, which nb.load then refused."""
    monkeypatch.setattr(registry.LAYERS, "_classes", dict(registry.LAYERS._classes))
    source = "@nb.register(name='Scaled')\nclass Scale(nb.layers.Tanh):\n    pass\n"
    old = made_before_a_reload(tmp_path, monkeypatch, "mylayers", source, "Scale")
    assert registry.LAYERS.get("Scaled") is not type(old)  # the new class holds the name
    model = nb.Sequential([Dense(2, 2), old], seed=0)
    assert model.config()["layers"][1] == {"type": "Scaled"}
    nb.save(model, tmp_path / "m.h5")
    assert type(nb.load(tmp_path / "m.h5").layers[1]).__name__ == "Scale"


def test_an_initialiser_made_before_a_reload_saves_by_its_registered_name(tmp_path, monkeypatch):
    monkeypatch.setattr(registry.INITIALIZERS, "_classes", dict(registry.INITIALIZERS._classes))
    source = "@nb.register\nclass MyHe(nb.init.He):\n    name = 'my_he'\n"
    old = made_before_a_reload(tmp_path, monkeypatch, "myinits", source, "MyHe")
    assert old.config() == {"name": "my_he"}  # it fell through to its base's, 'he'


def make_scaled():
    """A class of the same module and qualified name at every call."""

    class Scaled(Tanh):
        pass

    return Scaled


def test_classes_one_function_makes_are_never_taken_for_each_other(monkeypatch):
    """They share module and qualified name: the reload rule saved the second, which
    was never registered, under the first one's name (and it came back as the first)."""
    monkeypatch.setattr(registry.LAYERS, "_classes", dict(registry.LAYERS._classes))
    first, second = make_scaled(), make_scaled()
    nb.register(name="Scaled2")(first)
    assert registry.LAYERS.name_of(first) == "Scaled2"
    assert registry.LAYERS.name_of(second) == "Scaled"


def test_classes_one_function_makes_do_not_replace_each_other(monkeypatch):
    """Registering the second took it for a reload of the first: a model of the first
    saved, then loaded as the second (3.0 where 2.0 was saved)."""
    monkeypatch.setattr(registry.LAYERS, "_classes", dict(registry.LAYERS._classes))
    first, second = make_scaled(), make_scaled()
    nb.register(first)
    with pytest.raises(ValueError, match=r"a layer named 'Scaled' is already registered"):
        nb.register(second)
    assert registry.LAYERS.get("Scaled") is first


@pytest.mark.parametrize(
    ("name", "aliases", "taken_by"),
    [
        ("CrossEntropy", (), nb.losses.SoftmaxCrossEntropy),  # the alias cross_entropy
        ("Mse", (), nb.losses.MSE),  # MSE, whatever its case
        ("MyMSE", ("mean_squared_error",), nb.losses.MSE),  # MSE's alias
    ],
)
def test_a_name_or_alias_that_reads_as_one_taken_is_refused(monkeypatch, name, aliases, taken_by):
    """A loss registered as CrossEntropy took the string "cross_entropy" from
    SoftmaxCrossEntropy, and an alias of one's own overwrote a built-in's, silently."""
    monkeypatch.setattr(registry.LOSSES, "_classes", dict(registry.LOSSES._classes))
    monkeypatch.setattr(registry.LOSSES, "_aliases", dict(registry.LOSSES._aliases))
    loss = type(name, (nb.losses.MSE,), {"aliases": aliases})
    with pytest.raises(ValueError, match=rf"reads the same, or an alias\) .*{taken_by.__name__}"):
        nb.register(loss)
    assert nb.losses.get("cross_entropy").__class__ is nb.losses.SoftmaxCrossEntropy
    assert nb.losses.get("mean_squared_error").__class__ is nb.losses.MSE


# --- the strings users write: one registry per kind turns them into objects -----------


@pytest.mark.parametrize(
    ("get", "name", "expected"),
    [
        (nb.losses.get, "cross_entropy", nb.losses.SoftmaxCrossEntropy),
        (nb.losses.get, "categorical_crossentropy", nb.losses.SoftmaxCrossEntropy),
        (nb.losses.get, "sparse_categorical_crossentropy", nb.losses.SoftmaxCrossEntropy),
        (nb.losses.get, "SoftmaxCrossEntropy", nb.losses.SoftmaxCrossEntropy),
        (nb.losses.get, "bce", nb.losses.BinaryCrossEntropy),
        (nb.losses.get, "binary_crossentropy", nb.losses.BinaryCrossEntropy),
        (nb.losses.get, "mse", nb.losses.MSE),
        (nb.losses.get, "mean_squared_error", nb.losses.MSE),
        (nb.optim.get, "sgd", nb.optim.SGD),
        (nb.optim.get, "Adam", nb.optim.Adam),
        (nb.optim.get, "rmsprop", nb.optim.RMSProp),
        (nb.optim.get, "adagrad", nb.optim.AdaGrad),
        (nb.optim.get, "nesterov", nb.optim.Nesterov),
        (nb.layers.get, "relu", nb.layers.ReLU),
        (nb.layers.get, "leaky_relu", nb.layers.LeakyReLU),
        (nb.layers.get, "tanh", nb.layers.Tanh),
        (nb.layers.get, "sigmoid", nb.layers.Sigmoid),
        (nb.layers.get, "softmax", nb.layers.Softmax),
        (nb.layers.get, "linear", nb.layers.Identity),
        (nb.init.get, "He", nb.init.He),
        (nb.init.get, "he_normal", nb.init.He),
        (nb.init.get, "glorot_normal", nb.init.Xavier),
        (nb.init.get, "lecun", nb.init.LeCun),
        (nb.metrics.get, "acc", nb.metrics.Accuracy),
        (nb.metrics.get, "mean_absolute_error", nb.metrics.MeanAbsoluteError),
    ],
)
def test_the_obvious_strings_name_the_obvious_objects(get, name, expected):
    made = get(name)
    assert type(made) is expected
    assert get(made) is made  # an object passes through


def test_fit_takes_names_and_trains_as_the_objects_do(backend):
    X, y = nb.datasets.make_moons(64, seed=0)
    runs = []
    by_name, by_object = (
        ("cross_entropy", "adam"),
        (nb.losses.SoftmaxCrossEntropy(), nb.optim.Adam()),
    )
    for loss, optimizer in (by_name, by_object):
        model = nb.Sequential([Dense(2, 4), "tanh", Dense(4, 2)], backend=backend, seed=0)
        runs.append(model.fit(X, y, loss=loss, optimizer=optimizer, epochs=3, verbose=0)["loss"])
        assert type(model.optimizer) is nb.optim.Adam and model.optimizer.lr == 0.001
    assert runs[0] == runs[1]
    assert isinstance(model.layers[1], Tanh)
    assert model.evaluate(X, y, loss="cross_entropy")["loss"] == pytest.approx(
        model.evaluate(X, y)["loss"]
    )


@pytest.mark.parametrize(
    ("get", "name", "listed"),
    [
        (nb.losses.get, "crossentropyy", "unknown loss 'crossentropyy': known are MSE (mean_"),
        (nb.optim.get, "adamw", "unknown optimizer 'adamw': known are SGD, Momentum, "),
        (nb.layers.get, "gelu", "unknown layer 'gelu': known are Identity (linear), Sigmoid, "),
        (nb.init.get, "kaiming", "unknown initialiser 'kaiming': known are normal, lecun (lec"),
    ],
)
def test_an_unknown_string_gets_the_list(get, name, listed):
    with pytest.raises(ValueError) as err:
        get(name)
    assert str(err.value).startswith(listed)


def test_the_loss_list_names_the_aliases_too():
    with pytest.raises(ValueError) as err:
        nb.losses.get("hinge")
    for name in ["SoftmaxCrossEntropy", "cross_entropy", "categorical_crossentropy", "bce"]:
        assert name in str(err.value)


@pytest.mark.parametrize(
    "layers, says",
    [
        ([Dense(2, 2), np.tanh], r"layer 1 is <ufunc 'tanh'>, no nnbackend Layer: .*by name"),
        ([Dense(2, 2), nb.losses.MSE()], r"layer 1 is MSE\(.*a loss goes to fit\(loss=...\)"),
        ([Dense(2, 2), None], r"layer 1 is None, no nnbackend Layer$"),
        ([nb.Sequential([Dense(2, 2)])], r"layer 0 is Sequential\(.*models do not nest"),
        (Dense(2, 2), r"the layers are a list, not Dense\(.*a list of one for one layer"),
        ("tanh", r"the layers are a list, not 'tanh'"),
    ],
)
def test_what_is_no_layer_is_refused_by_its_place(layers, says):
    """Each raised AttributeError ('... has no attribute params'), or for a model in a
    model its weights; a string was read letter by letter as layer names."""
    with pytest.raises(TypeError, match=says):
        nb.Sequential(layers)


def test_a_class_where_an_object_belongs_says_so():
    with pytest.raises(TypeError, match=r"give a layer object, Tanh\(...\), not the class"):
        nb.Sequential([Dense(2, 2), Tanh])
    with pytest.raises(TypeError, match="a loss is given as an object, a name"):
        nb.losses.get(3)
    with pytest.raises(ValueError, match="bad arguments for Dense"):
        nb.layers.get("dense")  # a name makes a layer with its defaults: Dense has none
