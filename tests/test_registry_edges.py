"""Edges of the registries (nnbackend.registry) and of the checkpoint size checks
(nnbackend.checkpoint_sizes) that a mutation run of registry.py and checkpoint_sizes.py
found no test holding: each test fails under a mutant the rest of the suite let pass
(the comments name them)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

import nnbackend as nb
from nnbackend import registry
from nnbackend.checkpoint_sizes import declared_shapes
from nnbackend.registry import Registry, UnknownTypeError, init_parameters, lost_setting


class Gear:
    """A plain class for a registry of one's own."""


class Wheel:
    """Another."""


def widgets() -> Registry:
    reg = Registry("widget")
    reg.add(Gear)
    reg.add(Wheel)
    return reg


def test_a_registry_shows_its_kind_and_names_and_holds_exact_names_only():
    """``repr`` lists the names in the order they were added; ``in`` takes the exact
    name, not one that reads the same whatever its case."""
    # kills registry 1 (__repr__ gave None: repr raised) and 2 (__contains__ gave None)
    reg = widgets()
    assert repr(reg) == "Registry('widget': Gear, Wheel)"
    assert "Gear" in reg and "Wheel" in reg
    assert "gear" not in reg and "Axle" not in reg
    assert "Dense" in registry.LAYERS and "SGD" not in registry.LAYERS


@pytest.mark.parametrize("name", [None, ["Dense"], {"type": "Dense"}, 3])
def test_a_type_that_is_no_string_is_an_unknown_type(name):
    """A config whose "type" is missing, a list or a dict (a hand-written or crafted
    file) is an UnknownTypeError naming it, with no hint to register a class of that
    name: not a TypeError of an unhashable key or an AttributeError of isidentifier."""
    # kills registry 65, 72 (list and dict: unhashable), 87, 89 (isidentifier of None)
    with pytest.raises(UnknownTypeError) as err:
        registry.LAYERS.get(name)
    assert str(err.value).startswith(f"unknown layer type {name!r}; registered: Identity, ")
    assert "custom_objects" not in str(err.value)
    with pytest.raises(UnknownTypeError, match=r"^a layer config dict names its class under"):
        nb.layers.get({"n_in": 2, "n_out": 3})  # a config dict without its "type"


def test_an_unknown_name_is_shown_whole_up_to_100_characters_then_cut():
    """The name's repr is shown as it is up to 100 characters; a longer one is cut to its
    first 97 and "..." (a crafted file's megabyte name stays out of the message). A name
    that is no identifier gets no hint to register a class of that name."""
    # kills registry 77-84 (the cut: its test, bound and length) and 85, 88 (the hint)
    with pytest.raises(UnknownTypeError) as err:
        registry.LAYERS.get("-" * 98)  # repr: 100 characters
    assert str(err.value).startswith("unknown layer type '" + "-" * 98 + "'; registered: ")
    assert "custom_objects" not in str(err.value)
    with pytest.raises(UnknownTypeError) as err:
        registry.LAYERS.get("-" * 99)  # repr: 101 characters -> 97 of them and "..."
    assert str(err.value).startswith("unknown layer type '" + "-" * 96 + "...; registered: ")
    with pytest.raises(UnknownTypeError) as err:
        registry.LAYERS.get("Swish")  # a short identifier: whole, with the hint
    assert str(err.value).startswith(
        "unknown layer type 'Swish'; if it is your own class, decorate it with @nb.register, "
        "or pass custom_objects={'Swish': Swish} to nb.load or nb.restore; registered: Identity, "
    )
    with pytest.raises(UnknownTypeError) as err:
        registry.LAYERS.get("A" * 10_000)  # an identifier too long to show: no hint either
    assert "custom_objects" not in str(err.value) and len(str(err.value)) < 1000


@pytest.mark.parametrize(
    ("config", "says"),
    [
        (None, "a layer config must be a dict, not NoneType"),
        ("Tanh", "a layer config must be a dict, not str"),
        ([("type", "Tanh")], "a layer config must be a dict, not list"),
    ],
)
def test_build_takes_a_config_dict_only(config, says):
    """A list of pairs built a Tanh, a string failed in dict()'s own words."""
    # kills registry 130 (the refusal of what is no dict dropped)
    with pytest.raises(ValueError, match=f"^{says}$"):
        registry.LAYERS.build(config)


def test_a_class_of_another_kind_is_refused_as_no_object_of_this_one():
    """The Adam class given as a loss is not told to be made "a loss object, Adam(...)"."""
    # kills registry 123, 124 (the class test alone)
    with pytest.raises(TypeError, match=r"^a loss is given as an object, a name \(MSE, "):
        nb.losses.get(nb.optim.Adam)
    with pytest.raises(TypeError, match=r"give a loss object, MSE\(...\), not the class"):
        nb.losses.get(nb.losses.MSE)


def test_from_config_takes_a_whole_config_of_its_own_class_only():
    """``Adam.from_config(adam.config())`` leaves out the "type" that names Adam; a
    config naming another class is refused, not built as this one."""
    # kills registry 136, 140, 141, 142 (the type kept, or all but it left out) and
    # 137, 138 (any type left out: an SGD config built an Adam)
    adam = nb.optim.Adam.from_config(nb.optim.Adam(0.01, beta1=0.5).config())
    assert type(adam) is nb.optim.Adam and (adam.lr, adam.beta1, adam.beta2) == (0.01, 0.5, 0.999)
    leaky = nb.layers.LeakyReLU.from_config({"type": "LeakyReLU", "alpha": 0.25})
    assert leaky.alpha == 0.25
    with pytest.raises(ValueError, match=r"Adam.from_config was given the config of 'SGD': "
                       r"SGD.from_config\(config\) builds it"):  # fmt: skip
        nb.optim.Adam.from_config(nb.optim.SGD(0.1).config())
    with pytest.raises(ValueError, match=r"Schedule.from_config was given the config of 'StepD"):
        nb.schedules.Schedule.from_config(nb.schedules.StepDecay(1.0, 3, 0.5).config())


def test_init_parameters_takes_the_names_of_a_base_just_above_object():
    """A loss or an optimizer of the user's with no constructor of its own takes its
    base's arguments (Loss's reduction, Optimizer's lr)."""
    # kills registry 146 (__mro__[:-2] passed over the base below object)

    class Plain(nb.losses.Loss):
        pass

    class Half(nb.optim.Optimizer):
        pass

    assert init_parameters(Plain) == {"reduction"}
    assert init_parameters(Half) == {"lr"}
    assert init_parameters(nb.optim.Nesterov) == {"lr", "momentum"}  # Momentum's, Optimizer's


def settings(**values) -> SimpleNamespace:
    return SimpleNamespace(**values)


def test_lost_setting_reports_a_missing_setting_unless_told_to_pass_it_over():
    """What the rebuilt object lacks is lost, shown as '(missing)'; with ``missing_ok``
    it is passed over, and a setting both hold alike still is not."""
    # kills registry 156 (missing_ok on by default), 172 (a missing one always passed
    # over) and 174 (never passed over)
    assert lost_setting(settings(gamma=3.0), settings()) == "gamma: 3.0 -> '(missing)'"
    assert lost_setting(settings(gamma=3.0), settings(), missing_ok=True) is None
    assert lost_setting(settings(gamma=3.0, k=2), settings(k=1), missing_ok=True) == "k: 2 -> 1"


def test_lost_setting_takes_nan_as_equal_to_nan_only():
    """NaN kept as NaN is no loss; NaN turned into a number, or a number into NaN, is."""
    # kills registry 177, 181-185 (the NaN exception: dropped, widened or turned round)
    nan = float("nan")
    assert lost_setting(settings(alpha=nan), settings(alpha=nan)) is None
    assert lost_setting(settings(alpha=nan), settings(alpha=0.5)) == "alpha: nan -> 0.5"
    assert lost_setting(settings(alpha=0.5), settings(alpha=nan)) == "alpha: 0.5 -> nan"


class NoJSON:
    def config(self):
        return {"fn": print}  # json.dumps refuses it


class Named:
    def config(self):
        return {"name": "he"}


def test_lost_setting_compares_only_what_is_a_setting():
    """An empty list is a setting (lost where it grew); a tuple holding an array, an
    array, an object whose config() is no JSON are none, passed over even where the
    rebuilt object holds something else."""
    # kills registry 197 (all() for any(): [] was no setting, (1, array) one),
    # 207 (a config that is no JSON compared as None) and 208 (an array as None)
    assert lost_setting(settings(sizes=[]), settings(sizes=[4])) == "sizes: [] -> [4]"
    assert lost_setting(settings(pair=(1, np.ones(2))), settings(pair=(2, np.ones(2)))) is None
    assert lost_setting(settings(init=NoJSON()), settings(init=Named())) is None
    assert lost_setting(settings(w=np.ones(2)), settings(w=0.5)) is None
    assert lost_setting(settings(init=Named()), settings(init=NoJSON())) is not None


def declaring(tmp_path, n_in: int, n_out: int):
    """A Dense(2, 3)'s checkpoint whose architecture declares a Dense(n_in, n_out)."""
    path = tmp_path / f"dense-{n_in}x{n_out}.h5"
    nb.save(nb.Sequential([nb.layers.Dense(2, 3)], seed=0), path)
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["architecture"])
        config["layers"][0].update(n_in=n_in, n_out=n_out)
        f.attrs["architecture"] = json.dumps(config)
    return path


def test_the_default_cap_is_100_million_weights(tmp_path, monkeypatch):
    """12,003,000 declared weights are within the default max_params: the load goes on
    to find the saved weight of another shape; 100,020,001 are past it."""
    # kills checkpoint_sizes 5 (DEFAULT_MAX_PARAMS 10**7: a 12-million-weight net refused)
    monkeypatch.setattr(nb.checkpoint_sizes, "FREE_BYTES", 1 << 30)  # a small file's 96 MB
    with pytest.raises(nb.CheckpointError, match=r"0.W has shape \(2, 3\), but the archi"):
        nb.load(declaring(tmp_path, 4000, 3000))
    with pytest.raises(nb.CheckpointError, match=r"declares 100020001 weights, more than max_p"):
        nb.load(declaring(tmp_path, 10000, 10001))


class Declaring:
    """A layer's stand-in that declares one weight of ``shape`` and no running state."""

    def __init__(self, shape):
        self.shape = shape

    def param_shapes(self):
        return {"W": self.shape}

    def state_shapes(self):
        return {}


@pytest.mark.parametrize(
    ("shape", "ok"),
    [((2, 3), True), ((0, 3), True), ((2, -1), False), ((2.0, 3), False), ((2, "3"), False)],
)
def test_declared_shapes_take_whole_numbers_of_0_and_more_only(shape, ok):
    """A user's layer built from a crafted config may declare any shape: a negative
    or a non-integer size is refused by name before any array is made; an empty 0."""
    # kills checkpoint_sizes 23-26, 28 (the test of each size loosened or tightened)
    # and 29 (no test)
    model = SimpleNamespace(layers=[Declaring((4,)), Declaring(shape)])
    if ok:
        got = declared_shapes("run.h5", model, nb.CheckpointError)
        assert got == {"params": {"0.W": (4,), "1.W": shape}, "state": {}}
    else:
        with pytest.raises(nb.CheckpointError, match=r"^run.h5: layer 1 \(Declaring\) declares "):
            declared_shapes("run.h5", model, nb.CheckpointError)


class Tanh(nb.layers.Layer):
    """Not registered, and named as the built-in: a scaled tanh of one's own."""

    def forward(self, x, training=True):
        self.y = nb.backend.namespace_of(x).tanh(x)
        return 2 * self.y

    def backward(self, dy, input_grad=True):
        return 2 * dy * (1 - self.y**2)


def test_a_class_of_ones_own_named_as_a_built_in_is_refused_at_the_save(tmp_path, backend):
    """It was saved, and loaded back as nnbackend's Tanh without a word: other outputs."""
    model = nb.Sequential([nb.layers.Dense(2, 2), Tanh()], backend=backend, seed=0)
    path = tmp_path / "model.h5"
    with pytest.raises(
        ValueError, match=r"^Tanh is not registered, .*@nb\.register\(name='MyTanh'\)"
    ):
        nb.save(model, path)
    assert not path.exists()
    X, y = np.zeros((4, 2)), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"nb\.load would build that one"):
        model.fit(X, y, loss="cross_entropy", optimizer="sgd", checkpoint=path, verbose=0)


class Counted(nb.layers.Layer):
    """Keeps a running count it does not declare in state_shapes()."""

    def build(self, backend, rng):
        super().build(backend, rng)
        self.state["seen"] = backend.xp.zeros((1,))

    def forward(self, x, training=True):
        return x

    def backward(self, dy, input_grad=True):
        return dy


def test_running_state_not_declared_is_pointed_to_a_layer_that_has_one(tmp_path, backend):
    """The error named Dense's param_shapes() as the example for state_shapes(): Dense
    keeps no running state."""
    model = nb.Sequential([nb.layers.Dense(2, 2), Counted()], backend=backend, seed=0)
    with pytest.raises(
        ValueError, match=r"state_shapes\(\) declares none: .* as BatchNorm's does$"
    ):
        nb.save(model, tmp_path / "m.h5")


def test_a_users_config_dict_names_a_built_in_in_any_case_and_needs_its_type():
    """{"type": "adam"} (names match whatever their case elsewhere) was told to register
    its class or pass custom_objects to nb.load; a dict without "type" was "type None"."""
    opt = nb.optim.get({"type": "adam", "lr": 0.01})
    assert type(opt) is nb.optim.Adam and opt.lr == 0.01
    assert type(nb.layers.get({"type": "DENSE", "n_in": 2, "n_out": 3})) is nb.layers.Dense
    with pytest.raises(ValueError, match=r"names its class under 'type', as in \{'type': 'SGD'\}"):
        nb.optim.get({"lr": 0.1})
    with pytest.raises(UnknownTypeError, match=r"unknown optimizer type 'nope'.*registered: SGD"):
        nb.optim.get({"type": "nope"})


def test_an_initialiser_dict_is_told_its_key_is_name():
    """{"type": "he"}, the other kinds' key, was told "not as None (it has 'type')"."""
    said = r"names its class under 'name', as in \{'name': '.*'\}, not under \['type'\]$"
    with pytest.raises(UnknownTypeError, match=said):
        nb.init.get({"type": "he"})
    assert type(nb.init.get({"name": "He_Normal"})) is type(nb.init.get("he"))


def test_a_config_dict_naming_its_class_by_no_string_says_so():
    """{"type": Adam} (the class) was an AttributeError of 'lower'."""
    with pytest.raises(ValueError, match="names its class under 'type'"):
        nb.optim.get({"type": nb.optim.Adam})
