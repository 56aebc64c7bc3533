"""Edges of the checkers' report (nnbackend.testing.report), of which backends a check
runs on (nnbackend.testing.backends) and of fit's lines and bar (nnbackend.progress)
that a mutation run of those modules found no test holding: each test fails under a
mutant the rest of the suite let pass (the comments name them)."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest

import nnbackend as nb
from nnbackend.backend import namespace_of
from nnbackend.layers import Layer, Tanh
from nnbackend.progress import Progress
from nnbackend.registry import LAYERS
from nnbackend.testing import (
    ULPS,
    CheckFailed,
    Report,
    assert_backend_parity,
    available_names,
    check_layer,
    check_loss,
)
from nnbackend.testing import backends as testing_backends
from nnbackend.testing.report import Row, close, config_round_trip, custom_for
from tests.conftest import CPU_BACKEND_NAMES

EPS = np.finfo(np.float64).eps
OTHERS = [name for name in CPU_BACKEND_NAMES if name != "numpy"]  # compared with numpy
X = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -3.0]])


class Terminal(io.StringIO):
    """A file that says it is a terminal, as stderr does in a shell."""

    def isatty(self):
        return True


# --- the report ------------------------------------------------------------------------


def test_add_returns_whether_the_row_passed_and_the_table_lines_up():
    """``add`` returns True for a passed row and False for a failed one (its docstring);
    the table pads check, backend and result to their widest cell."""
    # kills report 8 (add returned None) and 9 (add returned the opposite)
    report = Report("Swish(beta=1.5)")
    assert report.add("forward", "numpy", None, "within 100 ulps") is True
    assert report.add("gradient", "strict", "d/dx is off") is False
    assert not report.ok and report.failures == [report.rows[1]]
    assert str(report) == (
        "Swish(beta=1.5)\n"
        "check     backend  result  detail\n"
        "forward   numpy    ok      within 100 ulps\n"
        "gradient  strict   FAILED  d/dx is off"
    )
    with pytest.raises(CheckFailed) as caught:
        report.raise_if_failed()
    assert str(caught.value) == (
        "Swish(beta=1.5): 1 check failed\n"
        "check     backend  result  detail\n"
        "gradient  strict   FAILED  d/dx is off"
    )


def test_close_allows_100_ulps_of_the_largest_value_plus_100_of_each_element():
    """The default ``ULPS`` (100): for want = [1], the bound is 100 * eps * (1 + 1)."""
    # kills report 1 (ULPS 101) and 2 (ULPS 99)
    assert ULPS == 100
    want = np.array([1.0])
    assert close(np.array([1.0 + 200 * EPS]), want) is None
    assert close(np.array([1.0 + 202 * EPS]), want) is not None
    assert close(np.array([1.0 + 202 * EPS]), want, ulps=101) is None


def test_close_refuses_another_shape_or_dtype_even_with_the_same_values():
    """Shapes and dtypes must match exactly: (3,) is not (1, 3), float32 not float64,
    though the values agree (and would broadcast)."""
    # kills report 45 (the shape not compared; 48, the mismatch not returned, is killed
    # elsewhere too)
    assert close(np.ones(3), np.ones((1, 3))) == "float64[3] where float64[1, 3] was expected"
    got = np.ones(2, dtype=np.float32)
    assert close(got, np.ones(2)) == "float32[2] where float64[2] was expected"


def test_close_passes_empty_arrays_of_the_same_shape():
    """Two empty float arrays agree (no largest value to scale by: no error)."""
    # kills report 53 (np.max of an empty array raised a ValueError)
    assert close(np.ones((0, 3)), np.ones((0, 3))) is None
    assert (
        close(np.ones((0, 3)), np.ones((0, 2))) == "float64[0, 3] where float64[0, 2] was expected"
    )


def test_close_says_by_how_many_ulps_of_the_largest_value_it_differs():
    """want [1, 2], got [1, 2 + 2000 eps]: off by 2000 eps = 1000 ulps of max|want| = 2."""
    # kills report 75 and 76 (the count divided wrongly) and 77 (min for max)
    got, want = np.array([1.0, 2.0 + 2000 * EPS]), np.array([1.0, 2.0])
    assert close(got, want) == "differs by 1e+03 ulps of max|value| = 2 (allowed: 100)"


def test_close_against_a_reference_of_zeros_says_by_how_much():
    """Against zeros no ulps can be counted: it said "differs by 4.5e+304 ulps of
    max|value| = 0", a count of float64's smallest normal."""
    assert close(np.array([0.0, 1e-3]), np.zeros(2)) == (
        "differs by up to 0.001 where every value is 0"
    )
    assert close(np.array([0.0, -0.0]), np.zeros(2)) is None
    assert close(np.array([1.0, np.inf]), np.array([0.0, np.inf])) == (
        "differs by up to 1 where every finite value is 0"
    )


def test_close_holds_inf_and_nan_to_the_same_places_and_scales_without_them():
    """A reference inf made every finite value pass (an inf scale), and equal infs or
    NaNs fail (inf - inf is NaN): now they must match, and the rest is scaled by its
    own largest value."""
    inf, nan = np.inf, np.nan
    want = np.array([inf, -inf, nan, 1.0])
    assert close(np.array([inf, -inf, nan, 1.0]), want) is None
    assert close(np.array([inf, -inf, nan, 1.0 + 100 * EPS]), want) is None
    assert close(np.array([inf, -inf, nan, 1.0 + 300 * EPS]), want) is not None
    for got in ([0.0, -inf, nan, 1.0], [-inf, -inf, nan, 1.0], [inf, -inf, 1.0, 1.0]):
        assert close(np.array(got), want) == "differs where the reference holds inf or NaN"
    said = "holds inf or NaN where the reference holds numbers"
    assert close(np.array([nan, 1.0]), np.array([1.0, 1.0])) == said


def test_close_keeps_its_bound_finite_near_the_top_of_the_range():
    """3e38 + 3e38 is inf in float32: the bound was inf, and -3e38 passed for 3e38."""
    assert close(np.float32([3e38]), np.float32([3e38])) is None
    assert close(np.float32([-3e38]), np.float32([3e38])) is not None
    assert close(np.float32([2e38, 1]), np.float32([3e38, 1])) is not None
    assert close(np.array([-1.5e308]), np.array([1.5e308])) is not None
    assert close(np.array([1.5e308]), np.array([1.5e308])) is None


class SoftmaxWithoutTheMax(Layer):
    """exp(x) / sum(exp(x)): right in float64, inf / inf = NaN in float32 past x = 88."""

    def forward(self, x, training=False):
        xp = namespace_of(x)
        e = xp.exp(x)
        self.y = e / xp.sum(e, axis=-1, keepdims=True)
        return self.y

    def backward(self, dy, input_grad=True):
        xp = namespace_of(dy)
        return self.y * (dy - xp.sum(dy * self.y, axis=-1, keepdims=True))


class CrossEntropyWithoutTheMax(nb.losses.SoftmaxCrossEntropy):
    """The same softmax inside a cross-entropy: NaN in float32 for logits past 88."""

    def forward(self, pred, target):
        xp = namespace_of(pred)
        e = xp.exp(pred)
        self.p = e / xp.sum(e, axis=-1, keepdims=True)
        self.target = target
        picked = xp.take_along_axis(self.p, xp.reshape(target, (-1, 1)), axis=-1)
        total = -xp.sum(xp.log(picked))
        return total / pred.shape[0] if self.reduction == "mean" else total

    def backward(self):
        xp = namespace_of(self.p)
        classes = xp.arange(self.p.shape[-1], device=self.p.device)
        one_hot = xp.astype(self.target[:, None] == classes, self.p.dtype)
        return (self.p - one_hot) / (self.p.shape[0] if self.reduction == "mean" else 1)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_float32_overflow_fails_the_float32_row_on_every_backend(backend):
    """float64 holds exp(400); float32 gives NaN on every backend alike, which parity
    (NaN where NaN) now passes: the float32 row says so instead."""
    said = rf"float32 +{backend.name} +FAILED +y, dx hold inf or NaN in float32: keep what"
    with pytest.raises(CheckFailed, match=said):
        check_layer(SoftmaxWithoutTheMax, (4, 3), input_std=200, backends=[backend.name])
    pred = np.array([[100.0, 95.0, 120.0], [110.0, 90.0, 99.0]])
    said = rf"float32 +{backend.name} +FAILED +value, backward\(\) hold inf or NaN in float32"
    with pytest.raises(CheckFailed, match=said):
        check_loss(CrossEntropyWithoutTheMax, pred, np.array([2, 0]), backends=[backend.name])
    check_loss(CrossEntropyWithoutTheMax, pred / 100, np.array([2, 0]), backends=[backend.name])


class ForgetsToReturn(nb.losses.MSE):
    """A backward() that works the gradient out and returns nothing."""

    def backward(self):
        super().backward()


def test_a_backward_that_returns_nothing_is_named_in_the_arrays_rows(backend):
    """The float32 row's finiteness check must not take a None to the host first (it
    raised, and the rows naming the mistake went missing)."""
    with pytest.raises(CheckFailed) as caught:
        check_loss(ForgetsToReturn, (4, 2), np.ones((4, 2)), backends=[backend.name])
    for check in ("arrays", "float32"):
        said = rf"{check} +{backend.name} +FAILED +backward\(\) is a builtins.NoneType, not an"
        assert re.search(said, str(caught.value)), check
    assert "raised BackendMismatchError" not in str(caught.value)  # None taken to the host


@pytest.mark.filterwarnings("ignore:divide by zero encountered in log:RuntimeWarning")
@pytest.mark.parametrize("other", OTHERS)
def test_parity_fails_a_finite_result_where_the_reference_is_infinite(other):
    """log on NumPy gives -inf at 0; a backend giving 0 there (and 5x elsewhere) passed,
    as every finite value was within inf ulps. A log the same everywhere passes."""

    def log_on_numpy_only(x):
        return np.log(x) if isinstance(x, np.ndarray) else x * 5

    zero_one_two = np.array([0.0, 1.0, 2.0])
    with pytest.raises(CheckFailed, match=rf"parity +{other} +FAILED +result: differs where"):
        assert_backend_parity(log_on_numpy_only, zero_one_two, backends=["numpy", other])
    results = assert_backend_parity(
        lambda x: namespace_of(x).log(x), zero_one_two, backends=["numpy", other]
    )
    assert results[other][0] == -np.inf and results[other][1] == 0.0


# --- the config row -------------------------------------------------------------------


class WrongType(Tanh):
    """A layer whose config() writes its parent's name."""

    def config(self):
        return {"type": "Tanh"}


class Forgetful(Layer):
    """A layer whose from_config drops its one setting (k back to 2)."""

    def __init__(self, k=2):
        super().__init__()
        self.k = k

    def config(self):
        return {**super().config(), "k": self.k}

    @classmethod
    def from_config(cls, config):
        return cls()


class Dense(Layer):
    """A user's layer under a built-in layer's name, not registered."""


def config_row(obj):
    report = Report(repr(obj))
    config_round_trip(report, obj, LAYERS)
    [row] = report.rows
    return row


def test_the_config_row_fails_a_wrong_type_name_and_a_lossy_from_config():
    """config()'s "type" must be the name the class is saved under ("WrongType", not
    "Tanh"); from_config(config()) must give the same config back (k 5, not 2)."""
    # kills report 85 (the wrong name let through) and 87 (the other config let through)
    row = config_row(WrongType())
    assert not row.ok and row.detail == "config()['type'] is 'Tanh', not 'WrongType'"
    row = config_row(Forgetful(k=5))
    assert not row.ok and row.detail == (
        "from_config(config()) has config {'type': 'Forgetful', 'k': 2}, "
        "not {'type': 'Forgetful', 'k': 5}"
    )
    assert config_row(Forgetful(k=2)).ok


def test_custom_objects_are_needed_only_for_a_class_the_registry_does_not_hold():
    """A built-in layer loads through the registry (no custom_objects, "registered"); a
    user's unregistered class needs itself under its name, even under a name that the
    registry holds for another class (its "Dense" is not nb.layers.Dense)."""
    # kills report 91 (the detail the wrong way round), 97 (the name alone taken as
    # registered) and 100 (the registered class taken as not)
    assert custom_for(Tanh()) == {}
    assert config_row(Tanh()) == Row("config", "-", True, "registered")
    assert custom_for(Dense()) == {"Dense": Dense}
    assert custom_for(Forgetful()) == {"Forgetful": Forgetful}
    row = config_row(Forgetful())
    assert row.ok and row.detail == "not registered: nb.load needs custom_objects"


# --- assert_backend_parity --------------------------------------------------------------


@pytest.mark.parametrize("other", OTHERS)
def test_parity_fails_a_backend_whose_result_has_another_shape_or_dtype(other):
    """A (1, 2, 3) result where the reference's is (2, 3), or float32 where it is
    float64, is a failure, though the values agree (and broadcast)."""
    # kills report 45 (the shape not compared) through assert_backend_parity

    def reshaped_off_numpy(x):
        return x if isinstance(x, np.ndarray) else namespace_of(x).reshape(x, (1, 2, 3))

    expected = rf"parity +{other} +FAILED +result: float64\[1, 2, 3\] where float64\[2, 3\] was"
    with pytest.raises(CheckFailed, match=expected):
        assert_backend_parity(reshaped_off_numpy, X, backends=["numpy", other])

    def narrowed_off_numpy(x):
        xp = namespace_of(x)
        return x if isinstance(x, np.ndarray) else xp.astype(x, xp.float32)

    expected = rf"parity +{other} +FAILED +result: float32\[2, 3\] where float64\[2, 3\] was"
    with pytest.raises(CheckFailed, match=expected):
        assert_backend_parity(narrowed_off_numpy, X, backends=["numpy", other])


@pytest.mark.parametrize("other", OTHERS)
def test_parity_passes_empty_results(other):
    """An empty result agrees with an empty result: the call returns both, no error."""
    # kills report 53 through assert_backend_parity (a ValueError, not a pass)
    results = assert_backend_parity(lambda x: x[:0, :], X, backends=["numpy", other])
    assert {name: a.shape for name, a in results.items()} == {"numpy": (0, 3), other: (0, 3)}


def test_parity_takes_one_backend_by_name_or_as_a_backend(backend):
    """``backends`` may be one name or one Backend, not only a list (a lone string is
    not read as a list of one-letter names); an empty list is refused by name."""
    # kills backends 18 (a lone name or Backend left unwrapped) and 20 (no refusal of [])
    results = assert_backend_parity(lambda x: x * 2, X, backends=backend)
    assert list(results) == [backend.name]
    np.testing.assert_array_equal(results[backend.name], X * 2)
    assert list(assert_backend_parity(lambda x: x, X, backends="numpy")) == ["numpy"]
    with pytest.raises(ValueError, match=r"backends is empty: name at least one"):
        assert_backend_parity(lambda x: x, X, backends=[])


@pytest.mark.parametrize("other", OTHERS)
def test_parity_compares_numbers_and_dicts_of_arrays(other):
    """A result may be a dict of arrays and Python numbers: each entry comes back on the
    host, and a failure names the entry that differs."""
    # kills backends 33 (a Python number sent to to_numpy) and 37 (a dict not flattened)

    def stats(x):
        scale = 2.0 if isinstance(x, np.ndarray) else 2.5
        return {"doubled": x * 2, "rows": 2, "scale": scale}

    with pytest.raises(CheckFailed, match=rf"parity +{other} +FAILED +result\['scale'\]: differs"):
        assert_backend_parity(stats, X, backends=["numpy", other])
    results = assert_backend_parity(
        lambda x: {"doubled": x * 2, "rows": 2}, X, backends=["numpy", other]
    )
    for name in ("numpy", other):
        np.testing.assert_array_equal(results[name]["doubled"], X * 2)
        assert results[name]["rows"] == 2 and results[name]["rows"].shape == ()


@pytest.mark.parametrize("other", OTHERS)
def test_parity_compares_each_item_of_a_tuple_and_the_keys_of_a_dict(other):
    """A tuple's items are compared one by one (result[1] named where it differs), and
    a dict with a key the reference lacks fails with both sets of keys."""
    # kills backends 39 and 41 (a tuple or list not flattened) and 43 and 44 (another
    # set of keys let through)

    def pair(x):
        return x, x * (2.0 if isinstance(x, np.ndarray) else 3.0)

    with pytest.raises(CheckFailed, match=rf"parity +{other} +FAILED +result\[1\]: differs by"):
        assert_backend_parity(pair, X, backends=["numpy", other])

    def extra_key_off_numpy(x):
        return {"y": x} if isinstance(x, np.ndarray) else {"y": x, "z": x}

    keys = """gives ["result['y']", "result['z']"] where the reference gives ["result['y']"]"""
    expected = rf"parity +{other} +FAILED +{re.escape(keys)}"
    with pytest.raises(CheckFailed, match=expected):
        assert_backend_parity(extra_key_off_numpy, X, backends=["numpy", other])


def test_available_names_add_the_gpus_that_answer(monkeypatch):
    """Where CuPy and torch see a CUDA device, "cupy" and "torch:cuda" join the CPU
    backends (torch:cuda only where torch is installed)."""
    # kills backends 7 (cupy never added), 12 and 13 (torch:cuda never added)
    monkeypatch.setattr(testing_backends, "cuda_available", lambda: True)
    monkeypatch.setattr(testing_backends, "torch_cuda_available", lambda: True)
    gpus = ["cupy", "torch:cuda"] if "torch" in CPU_BACKEND_NAMES else ["cupy"]
    assert available_names() == CPU_BACKEND_NAMES + gpus
    monkeypatch.setattr(testing_backends, "cuda_available", lambda: False)
    monkeypatch.setattr(testing_backends, "torch_cuda_available", lambda: False)
    assert available_names() == CPU_BACKEND_NAMES


# --- fit's lines and bar ----------------------------------------------------------------


def test_a_line_on_a_terminal_clears_the_bar_first(monkeypatch, capsys):
    """With the bar on stderr (a terminal), an epoch's line goes to stdout after the bar
    is wiped (a frame of blanks), so the two do not share a row."""
    # kills progress 27 (the line printed past the bar, which stayed)
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    with Progress(10, 1, ["loss"], ncols=60) as progress:
        progress.update()
        progress.log(0, {"loss": 0.5})
    frames = terminal.getvalue().split("\r")
    assert " " * 60 in frames  # the bar wiped before the line
    assert capsys.readouterr().out == "epoch 0: loss 0.5\n"


def test_each_line_is_flushed_at_once(monkeypatch):
    """In a pipe or a nohup log (no bar), each epoch's line is flushed as it is printed,
    not held in a buffer until the run ends."""
    # kills progress 29 (print without flush)

    class Log(io.StringIO):
        flushes = 0

        def flush(self):
            self.flushes += 1

    log = Log()
    monkeypatch.setattr("sys.stdout", log)
    progress = Progress(10, 1, ["loss"], file=io.StringIO())
    progress.log(0, {"loss": 0.25})
    assert log.getvalue() == "epoch 0: loss 0.25\n" and log.flushes >= 1
    progress.close()


class NoIsatty:
    """A file-like object that writes and has no ``isatty``."""

    def __init__(self):
        self.text = ""

    def write(self, text):
        self.text += text

    def flush(self):
        pass


def test_no_bar_on_a_file_without_isatty_or_a_closed_one(capsys):
    """A file with no ``isatty`` (or a closed one) is not a terminal: no bar is drawn
    there, and the lines still go to stdout."""
    # kills progress 36 (either one taken for a terminal)
    plain = NoIsatty()
    with Progress(10, 1, ["loss"], file=plain) as progress:
        assert progress.bar.disable
        progress.update()
        progress.log(0, {"loss": 0.5})
    assert plain.text == ""
    closed = io.StringIO()
    closed.close()
    with Progress(10, 1, ["loss"], file=closed) as progress:
        assert progress.bar.disable
    assert capsys.readouterr().out == "epoch 0: loss 0.5\n"
