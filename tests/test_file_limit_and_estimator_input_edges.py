"""Edges of the HDF5 text reader (nnbackend.h5text), the checkpoint size and JSON
limits (nnbackend.checkpoint_sizes) and the scikit-learn inputs and heads that the
rest of a mutation run found no test holding: each test fails under a mutant the rest
of the suite let pass (the comments name them), or without a fix it led to."""

from __future__ import annotations

import math
import sys
import warnings

import h5py
import numpy as np
import pytest

import nnbackend as nb
from nnbackend import h5text
from nnbackend.layers import Layer
from nnbackend.losses import BinaryCrossEntropy
from nnbackend.schedules import StepDecay
from nnbackend.sklearn import MLPClassifier
from nnbackend.sklearn.heads import ClippedLogLoss


def test_an_empty_string_hides_no_nesting_from_the_depth_count():
    """After an empty string "", the brackets that follow are counted: 65 levels behind
    it are refused as 65 levels alone are."""
    # kills h5text 132 (the string's scan began one character late: an empty string's
    # closing quote missed, the brackets after it skipped as if inside a string)
    text = '["", ' + "[" * 64 + "]" * 64 + "]"
    with pytest.raises(ValueError, match="f.h5: its text is nested deeper than 64 levels"):
        h5text.parse_json("f.h5", text, "text", ValueError)
    assert h5text.parse_json("f.h5", '["", "", [[]]]', "text", ValueError) == ["", "", [[]]]


def test_an_integer_of_exactly_pythons_digit_limit_is_parsed():
    """An integer of 4300 digits (Python's default limit, which json.dumps can write)
    loads; one of 4301 digits is refused."""
    # kills h5text 153 (an integer of exactly the limit refused)
    limit = sys.get_int_max_str_digits()
    assert h5text.parse_json("f.h5", "7" * limit, "text", ValueError) == int("7" * limit)
    assert h5text.parse_json("f.h5", "-" + "7" * limit, "text", ValueError) < 0
    with pytest.raises(ValueError, match=f"an integer of {limit + 1} digits"):
        h5text.parse_json("f.h5", "7" * (limit + 1), "text", ValueError)


def test_no_digit_limit_lets_every_integer_through():
    """With Python's digit limit turned off (0), integers of any length are parsed."""
    # kills h5text 152 (with the limit 0 every integer refused: "more than 0 digits")
    before = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        assert h5text.parse_json("f.h5", "[5, -12]", "text", ValueError) == [5, -12]
        assert h5text.parse_json("f.h5", "9" * 5000, "text", ValueError) == 10**5000 - 1
    finally:
        sys.set_int_max_str_digits(before)


def compressed_dense(tmp_path, n_in: int, n_out: int):
    """A Dense(n_in, n_out)'s checkpoint of zero weights, rewritten deflated: a file of
    some kB that declares 4 * (n_in + 1) * n_out bytes."""
    saved, path = tmp_path / "saved.h5", tmp_path / f"dense-{n_in}x{n_out}.h5"
    nb.save(nb.Sequential([nb.layers.Dense(n_in, n_out)], seed=0), saved)
    with h5py.File(saved, "r") as f, h5py.File(path, "w") as out:
        out.attrs.update(f.attrs)
        for name in f:
            if name != "weights":
                f.copy(name, out)
        weights = out.create_group("weights")
        weights.attrs.update(f["weights"].attrs)
        for name, saved_array in f["weights"].items():
            zeros = np.zeros(saved_array.shape, saved_array.dtype)
            weights.create_dataset(name, data=zeros, compression="gzip", chunks=True)
    return path


def test_a_small_file_may_declare_up_to_64_mib_of_arrays(tmp_path):
    """A file of some kB may declare FREE_BYTES = 64 MiB of arrays whatever its size,
    counted at 8 bytes a value: a Dense(4096, 2030) (66,535,280 bytes) loads; a
    Dense(4096, 2100) (68,829,600 bytes, past 67,108,864) is refused by them."""
    # kills checkpoint_sizes 14 (63 MiB: the first refused) and 15 (128 MiB: the second
    # let through to be read)
    loaded = nb.load(compressed_dense(tmp_path, 4096, 2030))
    assert float(np.abs(nb.to_numpy(loaded.params["0.W"])).max()) == 0.0
    with pytest.raises(nb.CheckpointError, match=r"declare 8603700 values, up to 68829600 bytes"):
        nb.load(compressed_dense(tmp_path, 4096, 2100))


class BuiltScale(Layer):
    """A layer that sets its public ``k`` from its argument only in its build: a rebuilt,
    unbuilt one has no ``k`` to compare."""

    def __init__(self, k: float = 1.0):
        super().__init__()
        self._k = k

    def build(self, backend, rng):
        super().build(backend, rng)
        self.k = self._k

    def forward(self, x, training=True):
        return self._k * x

    def backward(self, dy, input_grad=True):
        return self._k * dy

    def config(self):
        return {**super().config(), "k": self._k}


def test_a_setting_only_a_build_makes_is_not_warned_of(tmp_path):
    """A constructor's argument that only a build sets as an attribute is passed over by
    the save's check (the rebuilt layer has not been built): no warning, and the file
    loads with its k."""
    # kills checkpoint_sizes 112 (missing_ok=False: "k: 3.0 -> '(missing)'" warned of)
    model = nb.Sequential([nb.layers.Dense(2, 2), BuiltScale(3.0)], seed=0)
    model.layers[1].build(model.backend, model.rng)
    assert model.layers[1].k == 3.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nb.save(model, tmp_path / "m.h5")
    again = nb.load(tmp_path / "m.h5", custom_objects={"BuiltScale": BuiltScale})
    assert again.layers[1]._k == 3.0


class UnitsOnceBuilt(Layer):
    """A layer whose ``units`` property, named like its constructor's argument, raises
    until the layer is built (a rebuilt one is not)."""

    def __init__(self, units: int = 2):
        super().__init__()
        self._units = units

    @property
    def units(self):
        if not hasattr(self, "_built_units"):
            raise RuntimeError("UnitsOnceBuilt.units: build the layer first")
        return self._built_units

    def build(self, backend, rng):
        super().build(backend, rng)
        self._built_units = self._units

    def forward(self, x, training=True):
        return x

    def backward(self, dy, input_grad=True):
        return dy

    def config(self):
        return {**super().config(), "units": self._units}


def test_a_setting_a_property_cannot_give_is_passed_over(tmp_path):
    """The save's comparison reads the constructor's names as attributes: a property
    that raises on the rebuilt, unbuilt layer is passed over (the save raised it)."""
    model = nb.Sequential([nb.layers.Dense(2, 2), UnitsOnceBuilt(2)], seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nb.save(model, tmp_path / "m.h5", optimizer=nb.optim.SGD(0.1))
    again = nb.load(tmp_path / "m.h5", custom_objects={"UnitsOnceBuilt": UnitsOnceBuilt})
    assert again.layers[1]._units == 2


class FixedRate(nb.optim.SGD):
    """An optimizer of one's own whose config() names a number where a schedule was."""

    def config(self):
        return {"type": "FixedRate", "lr": 0.1}


def test_an_optimizer_whose_config_leaves_out_its_schedule_is_warned_of(tmp_path):
    """Saved with a StepDecay its config() leaves out, the optimizer would load at a
    fixed rate: the save warns, naming the class and the schedule; a base optimizer's
    schedule is in its config and no warning comes."""
    model = nb.Sequential([nb.layers.Dense(2, 2)], seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nb.save(model, tmp_path / "m.h5", optimizer=nb.optim.SGD(StepDecay(0.1, step_size=10)))
    with pytest.warns(UserWarning, match="FixedRate's config\\(\\) leaves out its StepDecay"):
        nb.save(model, tmp_path / "m.h5", optimizer=FixedRate(StepDecay(0.1, step_size=10)))
    _, optimizer = nb.load(tmp_path / "m.h5", with_optimizer=True,
                           custom_objects={"FixedRate": FixedRate})[:2]  # fmt: skip
    assert optimizer.lr == 0.1  # what the warning is about


class ClippedSGD(nb.optim.SGD):
    """An optimizer of one's own whose config() leaves out its plain-number rate."""

    def __init__(self, lr=0.01, clip: float = 1.0):
        super().__init__(lr)
        self.clip = clip

    def config(self):
        return {"type": "ClippedSGD", "clip": self.clip}


def test_an_optimizer_whose_config_leaves_out_its_rate_is_warned_of_once(tmp_path):
    """The rate is kept as ``_lr`` behind the ``lr`` property, which the comparison of
    settings passed over: saved at 0.5, it loaded at 0.01 without a word. A warning
    made an error is raised at the next save too (it was marked as given first)."""
    model = nb.Sequential([nb.layers.Dense(2, 2)], seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(2):
            with pytest.raises(UserWarning, match=r"ClippedSGD's config\(\) .*\(lr: 0.5 -> 0.01\)"):
                nb.save(model, tmp_path / "m.h5", optimizer=ClippedSGD(0.5))
    assert not (tmp_path / "m.h5").exists()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            nb.save(model, tmp_path / "m.h5", optimizer=ClippedSGD(0.5))
    assert [str(w.message).count("lr: 0.5 -> 0.01") for w in caught] == [1]


def test_the_checkers_use_up_no_warning_of_a_lost_setting(tmp_path):
    """check_optimizer's own save was warned of, silenced, and marked as told: the
    user's save after it said nothing of the rate it loses."""

    class LostRate(ClippedSGD):
        def config(self):
            return {"type": "LostRate", "clip": self.clip}

    def sgd(w, g, state, t):
        return w - 0.5 * g

    with pytest.raises(nb.testing.CheckFailed, match="config"):
        nb.testing.check_optimizer(lambda: LostRate(0.5), sgd, backends=["numpy"])
    model = nb.Sequential([nb.layers.Dense(2, 2)], seed=0)
    with pytest.warns(UserWarning, match=r"LostRate's config\(\) .*\(lr: 0.5 -> 0.01\)"):
        nb.save(model, tmp_path / "m.h5", optimizer=LostRate(0.5))


def test_a_schedule_config_pins_is_told_once_as_the_optimizers(tmp_path):
    """A config() that writes another StepDecay than the one held: one warning, naming
    the optimizer's config(), not a second for the schedule's own settings."""

    class PinnedRate(nb.optim.SGD):
        def config(self):
            return {"type": "PinnedRate", "lr": StepDecay(0.1, step_size=10).config()}

    model = nb.Sequential([nb.layers.Dense(2, 2)], seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nb.save(model, tmp_path / "m.h5", optimizer=PinnedRate(StepDecay(0.5, step_size=3)))
    said = [str(w.message) for w in caught]
    assert len(said) == 1 and "PinnedRate's config() leaves out a setting" in said[0], said


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_backends_array_trains_in_its_own_float_dtype(backend):
    """With dtype=None, float32 X trains in float32 and float64 X in float64; integer
    X in float64, as scikit-learn turns it (float32 where the backend has no float64)."""
    # kills inputs 84 and 87 (float64 X trained in float32), 85 (float32 X in float64)
    # and 88 (integer X in float32), on array-api-strict and torch (NumPy X is host data)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    y = (X[:, 0] > 0).astype(np.int64)
    wide = "float64" if backend.supports("float64") else "float32"
    for given, want in (("float32", "float32"), (wide, wide), ("int64", wide)):
        est = MLPClassifier((4,), max_iter=2, random_state=0)
        est.fit(backend.asarray(np.round(X * 3), dtype=given), y)
        assert est.model_.backend.dtype_name == want, given


def test_a_logistic_output_far_below_0_costs_minus_log_eps_without_overflow(backend64):
    """A logit of -800 on a target of 1: expit's exp(800) would overflow, so z is held
    where exp(-z) stays finite; p then clips to eps, and the loss is -log(eps) = 52 log
    2, with no overflow warning."""
    # kills heads 134 (the bound past log(max): exp overflowed, a RuntimeWarning)
    loss = ClippedLogLoss(BinaryCrossEntropy(from_logits=True))
    pred, target = backend64.asarray(np.array([[-800.0]])), backend64.asarray(np.ones((1, 1)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = float(nb.to_numpy(loss.forward(pred, target)))
    assert got == pytest.approx(52 * math.log(2), rel=1e-12)
