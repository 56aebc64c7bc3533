"""Edges of nnbackend.testing's check_optimizer and check_loss that a mutation run of
testing/optimizers.py and testing/losses.py found no test holding: each test fails
under a mutant the rest of the suite let pass (the comments name them)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import nnbackend as nb
from nnbackend.backend import namespace_of
from nnbackend.registry import type_name
from nnbackend.testing import CheckFailed, check_loss, check_optimizer


def failed_rows(caught) -> set[tuple[str, str]]:
    return {(row.check, row.backend) for row in caught.value.report.failures}


def sgd(w, g, state, t, lr=0.1):
    return w - lr * g


def momentum(w, g, state, t, lr=0.1, mu=0.9):
    """nb.optim.Momentum's formula: v = mu v - lr g; w + v."""
    state["v"] = mu * state.get("v", 0.0) - lr * g
    return w + state["v"]


def float64_runs(backend) -> set[str]:
    """Where a check in float64 runs for ``backends=[backend.name]``: there, and on
    array-api-strict's device1 and device2 too where that is strict."""
    devices = ("strict:device1", "strict:device2") if backend.name == "strict" else ()
    return {backend.name, *devices}


# --- check_optimizer --------------------------------------------------------------------


class Float64Step(nb.optim.Optimizer):
    """W - lr * dW worked out in float64: right in float64, float64 weights in float32."""

    def update(self, params, name, grad, lr):
        xp = namespace_of(grad)
        params[name] = params[name] - lr * xp.astype(grad, xp.float64)


def test_a_float32_step_that_turns_the_weights_float64_is_caught(backend):
    """The float32 row runs on each backend of a float64 check: the weights come back
    float64 where float32 went in, and no float64 row can see it."""
    # kills testing/optimizers 20 (the float32 row dropped) and 22 (it ran 0 steps)
    with pytest.raises(CheckFailed) as caught:
        check_optimizer(lambda: Float64Step(0.1), sgd, backends=[backend.name])
    failed = failed_rows(caught)
    assert {("float32", f"{backend.name} step 1"), ("float32 arrays", backend.name)} <= failed
    assert not any(check in ("formula", "flat", "moves") for check, _ in failed)
    assert "0.W: float64[4, 3] where float32[4, 3] was expected" in str(caught.value)


class WithMomentum(nb.optim.Optimizer):
    """The constructor and settings of the momentum optimizers below."""

    def __init__(self, lr=0.1, momentum: float = 0.9):
        super().__init__(lr)
        self.momentum = momentum

    def _hyper(self):
        return {"momentum": self.momentum}


class Float64Velocity(WithMomentum):
    """Momentum kept in float64 whatever the weights' dtype, each step cast back: the
    float32 weights are right, the state is not float32."""

    slots = ("v",)

    def update(self, params, name, grad, lr):
        xp = namespace_of(grad)
        v = self.state["v"]
        v[name] = self.momentum * v.get(name, 0.0) - lr * xp.astype(grad, xp.float64)
        params[name] = params[name] + xp.astype(v[name], params[name].dtype)


def test_state_kept_in_float64_under_float32_weights_is_caught(backend):
    """Only the float32 arrays row reads the state's dtype: the weights match the formula."""
    # kills testing/optimizers 88 and 91 (the arrays row never fails)
    with pytest.raises(CheckFailed) as caught:
        check_optimizer(lambda: Float64Velocity(0.1), momentum, backends=[backend.name])
    failed = failed_rows(caught) - {("float32", "strict:no_float64")}  # no float64 there
    assert failed == {("float32 arrays", backend.name)}
    row = next(r for r in caught.value.report.failures if r.check == "float32 arrays")
    assert row.detail.startswith("state['v']['0.W'] is ")
    assert row.detail.endswith("float64, not float32")


class InPlaceMomentum(WithMomentum):
    """torch's momentum buffer, b = mu b + dW and W - lr b (nb.optim.Momentum's v is
    -lr b), summed into the caller's gradient array: at step 1 b is 0 and the
    gradient keeps its values; from step 2 on it does not."""

    slots = ("b",)

    def update(self, params, name, grad, lr):
        b = self._slot("b", name, grad)
        grad += self.momentum * b[name]  # in place: the caller's gradient
        b[name] = grad + 0.0
        params[name] = params[name] - lr * b[name]


def test_a_gradient_changed_from_the_second_step_on_is_caught(backend):
    """The unchanged row reads the float64 steps (three of them), not the float32 row's
    one step, in which this optimizer leaves the gradients as they were."""
    # kills testing/optimizers 92 (the row read the float32 run), 93 and 96 (no row)
    with pytest.raises(CheckFailed) as caught:
        check_optimizer(lambda: InPlaceMomentum(0.1), momentum, backends=[backend.name])
    assert failed_rows(caught) == {("unchanged", name) for name in float64_runs(backend)}
    assert all(
        r.detail == "changed the gradients ['0.W', '0.b']" for r in caught.value.report.failures
    )


def test_a_check_of_one_step_runs(backend):
    """steps=1 still has the two steps the moves row takes from the formula."""
    # kills testing/optimizers 55 (the formula worked out for steps, not steps + 2)
    report = check_optimizer(lambda: nb.optim.SGD(0.1), sgd, backends=[backend.name], steps=1)
    formula = [r.backend for r in report.rows if r.check == "formula"]
    assert formula[0] == f"{backend.name} step 1" and f"{backend.name} step 2" not in formula


class ForgetsOnMove(nb.optim.Momentum):
    """A to() of its own that starts the state afresh rather than moving it."""

    def to(self, backend):
        self.state = {slot: {} for slot in self.slots}
        return self


def test_state_lost_by_a_move_is_caught_at_the_next_step(backend):
    """After model.to the velocity is gone: the step there is plain SGD, which only the
    next-step row compares with the formula (the save and load that follow keep the
    loss faithfully, and an empty state is on no wrong device)."""
    # kills testing/optimizers 178 (the next step after the move not compared)
    with pytest.raises(CheckFailed) as caught:
        check_optimizer(lambda: ForgetsOnMove(0.1), momentum, backends=[backend.name])
    assert failed_rows(caught) == {("moves: next step", f"{backend.name} -> {backend.name}")}


class KeepsLastStep(nb.optim.Optimizer):
    """W - lr dW, the step kept in a slot it writes and never reads; a to() of its own
    leaves the state where it was."""

    slots = ("last",)

    def update(self, params, name, grad, lr):
        last = self._slot("last", name, grad)
        last[name] = -lr * grad
        params[name] = params[name] + last[name]

    def to(self, backend):
        return self


@pytest.mark.filterwarnings("ignore:__array_wrap__:DeprecationWarning")
def test_state_left_on_the_old_backend_by_a_move_is_caught():
    """The next step rebinds the slot, so nothing raises: only the moves row, which
    looks at the state right after model.to, sees NumPy arrays beside torch's."""
    # kills testing/optimizers 170 (the moves row never fails)
    pytest.importorskip("torch")
    with pytest.raises(CheckFailed) as caught:
        check_optimizer(lambda: KeepsLastStep(0.1), sgd, backends=["numpy", "torch"])
    assert failed_rows(caught) == {("moves", "numpy -> torch"), ("moves", "torch -> numpy")}
    assert "state['last']['0.W'] is a numpy.ndarray, not an array of torch" in str(caught.value)


class RestartsCount(nb.optim.Momentum):
    """A load_state_dict of its own that starts the step count again: momentum never
    reads it, so the next step is right; a schedule would start over."""

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.iterations = 0


def test_a_step_count_a_checkpoint_loses_is_caught(backend):
    """Two steps saved; the loaded optimizer counts 0, and only the save/load row,
    which compares the count as well as the state, says so."""
    # kills testing/optimizers 187 (the state and count after a load not compared)
    with pytest.raises(CheckFailed) as caught:
        check_optimizer(lambda: RestartsCount(0.1), momentum, backends=[backend.name])
    assert [(r.check, r.backend, r.detail) for r in caught.value.report.failures] == [
        ("save/load", backend.name, "iterations: differs")
    ]


class DecayedSGD(nb.optim.SGD):
    """weight_decay, which _hyper() leaves out (and the step never reads)."""

    def __init__(self, lr=0.1, weight_decay: float = 0.01):
        super().__init__(lr)
        self.weight_decay = weight_decay


def test_a_setting_config_leaves_out_is_one_config_row_and_no_warning():
    """The save inside the moves row would warn of it too: the config row names it,
    and no warning escapes the check (under warnings-as-errors the moves row raised)."""
    # kills testing/optimizers 179 (the save's warning let through)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(CheckFailed) as caught:
            check_optimizer(lambda: DecayedSGD(0.1, 0.1), sgd, backends=["numpy"])
    assert failed_rows(caught) == {("config", "-")}


class RateFreeSGD(nb.optim.SGD):
    """A config() that leaves out the rate, kept as _lr behind the lr property."""

    def config(self):
        return {"type": type_name(self)}


def test_a_rate_config_leaves_out_is_named_by_the_config_row(backend):
    """The config row names "lr: 0.3 -> 0.01" (it compared public attributes alone, and
    the rate is a property); the save/load row sees the steps differ."""
    with pytest.raises(CheckFailed) as caught:
        check_optimizer(
            lambda: RateFreeSGD(0.3), lambda *a: sgd(*a, lr=0.3), backends=[backend.name]
        )
    config = [r.detail for r in caught.value.report.failures if r.check == "config"]
    assert len(config) == 1 and config[0].startswith("from_config(config()) has lr: 0.3 -> 0.01:")


# --- check_loss -------------------------------------------------------------------------


class DoubledOffNumPy(nb.losses.MSE):
    """Value and gradient twice MSE's where the arrays are not NumPy's: right for
    themselves (the gradient rows pass), wrong against NumPy."""

    def forward(self, pred, target):
        self._twice = not isinstance(pred, np.ndarray)
        value = super().forward(pred, target)
        return 2 * value if self._twice else value

    def backward(self):
        grad = super().backward()
        return 2 * grad if self._twice else grad


@pytest.mark.parametrize("other", ["strict", "torch"])
def test_a_loss_that_differs_from_the_first_backend_fails_parity(other):
    """Only the parity rows, float64 and float32, compare one backend with another."""
    # kills testing/losses 13, 16, 17, 19, 21, 22, 23 (parity never compared) and 133
    # (no results to compare)
    if other == "torch":
        pytest.importorskip("torch")
    with pytest.raises(CheckFailed) as caught:
        check_loss(DoubledOffNumPy, (4, 2), np.ones((4, 2)), backends=["numpy", other])
    assert failed_rows(caught) == {("parity", other), ("parity float32", other)}


class NumPyOnly(nb.losses.MSE):
    """Refuses any array but NumPy's."""

    def forward(self, pred, target):
        if not isinstance(pred, np.ndarray):
            raise TypeError("NumPy arrays only")
        return super().forward(pred, target)


@pytest.mark.parametrize("other", ["strict", "torch"])
def test_a_loss_that_raises_on_one_backend_gets_a_report(other):
    """The backend it raised on has no results: it is left out of parity, not compared
    as None (a TypeError out of check_loss) or read unset (an UnboundLocalError)."""
    # kills testing/losses 18 (None compared) and 80 (the results of a run that raised
    # read before they were set)
    if other == "torch":
        pytest.importorskip("torch")
    with pytest.raises(CheckFailed) as caught:
        check_loss(NumPyOnly, (4, 2), np.ones((4, 2)), backends=["numpy", other])
    failed = failed_rows(caught)
    assert {("runs", other), ("float32", other)} <= failed
    assert not any(check.startswith("parity") for check, _ in failed)
    assert "raised TypeError: NumPy arrays only" in str(caught.value)


class ConstantOffDevice(nb.losses.MSE):
    """The gradient times a 1.0 made with no device=: on the default device."""

    def backward(self):
        grad = super().backward()
        return grad * namespace_of(grad).asarray(1.0, dtype=grad.dtype)


def test_a_loss_is_run_on_strict_s_devices():
    """It passes on the default device and fails on device1, device2 and no_float64."""
    # kills testing/losses 24, 25, 26, 29 (the devices never run)
    with pytest.raises(CheckFailed) as caught:
        check_loss(ConstantOffDevice, (4, 2), np.ones((4, 2)), backends=["numpy", "strict"])
    assert failed_rows(caught) == {
        ("runs", "strict:device1"),
        ("runs", "strict:device2"),
        ("float32", "strict:no_float64"),
    }
    assert "Arrays from two different devices" in str(caught.value)


class SubtractsInPlace(nb.losses.MSE):
    """diff = pred; diff -= target: the caller's predictions become the differences."""

    def forward(self, pred, target):
        xp = namespace_of(pred)
        diff = pred
        diff -= target
        self._diff, self._factor = diff, self._scale(math.prod(diff.shape))
        return self._factor * xp.sum(diff * diff)


def test_a_loss_that_changes_its_predictions_is_caught(backend):
    """The unchanged row, once per float64 run: here and on strict's two devices (the
    gradients go wrong too, as the differences move pred under them)."""
    # kills testing/losses 103 (the row read the float32 runs), 104, 107, 108 (no row)
    with pytest.raises(CheckFailed) as caught:
        check_loss(SubtractsInPlace, (4, 2), np.ones((4, 2)), backends=[backend.name])
    unchanged = {
        r.backend: r.detail for r in caught.value.report.failures if r.check == "unchanged"
    }
    assert unchanged == dict.fromkeys(
        float64_runs(backend), "changed its argument pred; work on a copy"
    )


class HalfMeanGradient(nb.losses.MSE):
    """Half the gradient with reduction="mean", the default; right with "sum"."""

    def backward(self):
        grad = super().backward()
        return 0.5 * grad if self.reduction == "mean" else grad


def test_a_wrong_gradient_of_the_default_reduction_is_caught(backend):
    """The gradient row, once per backend asked for: the reduction row checks "sum",
    which is right, and strict's devices run no gradient check."""
    # kills testing/losses 132 (the gradient row never fails), 109, 110 and 112 (the
    # row moved to the float32 and device runs)
    with pytest.raises(CheckFailed) as caught:
        check_loss(HalfMeanGradient, (4, 2), np.ones((4, 2)), backends=[backend.name])
    assert [(r.check, r.backend) for r in caught.value.report.failures] == [
        ("gradient", backend.name)
    ]
    assert "the analytic gradient is 0.5 times the right one" in str(caught.value)


class SumOfSquares(nb.losses.MSE):
    """Summed always: its config has no reduction to flip."""

    def __init__(self):
        super().__init__(reduction="sum")

    def config(self):
        return {"type": type_name(self)}


def test_a_loss_with_no_reduction_setting_has_no_reduction_row(backend):
    """Nothing to flip: no reduction row, rather than a KeyError in one."""
    # kills testing/losses 41, 43, 50 (the reduction row run without a reduction)
    report = check_loss(SumOfSquares, (4, 2), np.ones((4, 2)), backends=[backend.name])
    assert "reduction" not in {r.check for r in report.rows}


def test_a_batch_of_one_has_the_same_value_with_either_reduction(backend):
    """Softmax cross-entropy of one sample: its mean over the batch is its sum, which
    is no sign of a loss that ignores reduction."""
    # kills testing/losses 42 and 49 (the reduction row run on a batch of 1)
    report = check_loss(
        nb.losses.SoftmaxCrossEntropy, (1, 3), np.array([2]), backends=[backend.name]
    )
    assert "reduction" not in {r.check for r in report.rows}


class AlwaysMeanValue(nb.losses.MSE):
    """forward averages over the batch whatever reduction says (backward follows it)."""

    def forward(self, pred, target):
        value = super().forward(pred, target)
        return value / pred.shape[0] if self.reduction == "sum" else value


def test_a_batch_of_two_is_enough_to_see_a_loss_ignore_its_reduction():
    """With 2 samples of 1 value, the mean is half the sum: this loss gives the mean
    either way."""
    # kills testing/losses 45 and 48 (the reduction row skipped below 3 samples)
    with pytest.raises(CheckFailed) as caught:
        check_loss(AlwaysMeanValue, (2, 1), np.ones(2), backends=["numpy"])
    [row] = caught.value.report.failures
    assert (row.check, row.backend) == ("reduction", "numpy")
    assert "with either reduction" in row.detail


def test_a_loss_of_zero_passes_the_reduction_row(backend):
    """pred equal to the targets: 0 summed or averaged, which is not a loss ignoring
    its reduction."""
    # kills testing/losses 63 and 66 (a value of 0 taken for the same value twice)
    report = check_loss(nb.losses.MSE, np.ones((4, 2)), np.ones((4, 2)), backends=[backend.name])
    row = next(r for r in report.rows if r.check == "reduction")
    assert (row.ok, row.detail) == (True, "reduction='sum'")


def test_predictions_and_targets_may_be_lists(backend):
    """Host values as nested lists, as numbers go in elsewhere: taken as float64 arrays."""
    # kills testing/losses 4 (lists kept as they came: a list has no .shape)
    pred, target = [[0.5, -1.0], [2.0, 0.0]], [[1.0, 1.0], [0.0, 0.0]]
    report = check_loss(nb.losses.MSE, pred, target, backends=[backend.name])
    assert report.subject == (
        "check_loss(MSE(reduction='mean', half=False), pred (2, 2), target (2, 2))"
    )


def test_a_loss_checked_only_where_there_is_no_float64_runs_in_float32():
    """On array-api-strict's no_float64 device no float64 twin can be made: the
    gradient and reduction rows check float32 (to float32's tolerance) instead."""
    # kills testing/losses 34, 116, 117 (a float64 twin made where float64 is missing)
    report = check_loss(
        nb.losses.MSE, (4, 2), np.ones((4, 2)), backends=["strict:no_float64"], dtype="float32"
    )
    rows = {r.check: (r.backend, r.ok) for r in report.rows}
    assert rows["gradient"] == rows["reduction"] == ("strict:no_float64", True)
