"""What check_layer and check_loss hold a class of one's own to beyond its gradient:
the range its outputs are said to take, what predict_proba and the accuracy read of a
loss, targets fit would refuse, and a layer that holds a layer of its own."""

from __future__ import annotations

import numpy as np
import pytest

import nnbackend as nb
from nnbackend.backend import namespace_of
from nnbackend.layers import Dense
from nnbackend.testing import CheckFailed, check_layer, check_loss
from tests.test_checker_edges import Residual

BACKENDS = ["numpy", "strict"]


def failed(info) -> set[tuple[str, str]]:
    return {(row.check, row.backend) for row in info.value.report.failures}


class HalfShift(nb.layers.Layer):
    """0.5 * x + 0.5, said to give probabilities: BCE trained on it, and predict_proba
    gave 2.3 and -1.4."""

    output_range = (0.0, 1.0)

    def forward(self, x, training=True):
        return 0.5 * x + 0.5

    def backward(self, dy, input_grad=True):
        return 0.5 * dy


class Doubles(nb.layers.Layer):
    """2 * x, said to keep its input's range (as pooling does)."""

    keeps_range = True

    def forward(self, x, training=True):
        return 2 * x

    def backward(self, dy, input_grad=True):
        return 2 * dy


def test_check_layer_refuses_outputs_outside_the_range_the_layer_declares():
    with pytest.raises(CheckFailed) as info:
        check_layer(HalfShift, (5, 3), backends=BACKENDS)
    assert failed(info) == {("range", "numpy"), ("range", "strict"), ("range", "strict:device1"),
                            ("range", "strict:device2")}  # fmt: skip
    assert "outside its output_range (0.0, 1.0), which fit believes" in str(info.value)


def test_check_layer_refuses_outputs_outside_the_input_where_it_keeps_range():
    with pytest.raises(CheckFailed, match=r"outside its input's range \[-?[\d.]+, [\d.]+\], as "
                       r"keeps_range = True says.*say keeps_range = False"):  # fmt: skip
        check_layer(Doubles, (5, 3), backends=["numpy"])


class HalvesAndSaysNonNegative(nb.layers.Layer):
    """x / 2, said to give what ReLU gives, [0, inf): an unbounded top let any low pass."""

    output_range = (0.0, float("inf"))

    def forward(self, x, training=True):
        return x / 2

    def backward(self, dy, input_grad=True):
        return dy / 2


def test_a_range_open_at_the_top_still_holds_its_bottom():
    with pytest.raises(CheckFailed, match=r"outside its output_range \(0.0, inf\)"):
        check_layer(HalvesAndSaysNonNegative, (5, 3), backends=["numpy"])


@pytest.mark.parametrize(
    "make, shape",
    [(nb.layers.Sigmoid, (5, 3)), (nb.layers.Softmax, (5, 3)), (nb.layers.ReLU, (5, 3)),
     (lambda: nb.layers.AvgPool2D(2), (2, 3, 4, 4)), (nb.layers.Flatten, (2, 3, 4, 4))],
)  # fmt: skip
def test_the_built_in_layers_stay_within_their_range(make, shape):
    report = check_layer(make, shape, backends=["numpy"])
    assert [row.ok for row in report.rows if row.check == "range"] == [True]


def test_an_average_rounds_within_the_range_it_keeps():
    """The mean of three 0.1s is 0.10000000000000002 in float64: not a range left."""
    from nnbackend.testing.report import range_problem

    x = np.full((1, 1, 1, 3), 0.1)
    y = np.array([[[[x.sum() / 3]]]])
    assert y.max() > x.max() and range_problem(nb.layers.AvgPool2D(1), x, y) is None
    assert range_problem(nb.layers.AvgPool2D(1), x, y + 1e-9) is not None
    x32 = x.astype(np.float32)  # float32's rounding, not float32's whole eps times 1000
    assert range_problem(nb.layers.AvgPool2D(1), x32, x32 + np.float32(1e-5)) is not None
    with_nan = np.array([[0.5, np.nan]])  # the float32 row says NaN: no range row of it
    assert range_problem(nb.layers.Sigmoid(), x, with_nan) is None


@nb.register
class Focal(nb.losses.Loss):
    """The guide's focal loss, on logits."""

    target_kind = "labels"
    has_accuracy = True

    def __init__(self, gamma: float = 2.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.gamma = float(gamma)

    def forward(self, pred, target):
        xp = namespace_of(pred)
        shifted = pred - xp.max(pred, axis=1, keepdims=True)
        log_p = shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))
        classes = xp.arange(pred.shape[1], device=pred.device)
        labels = xp.astype(target, classes.dtype)
        onehot = xp.astype(classes[None, :] == labels[:, None], pred.dtype)
        log_pt = xp.sum(log_p * onehot, axis=1, keepdims=True)
        pt, gamma = xp.exp(log_pt), self.gamma
        scale = 1.0 / pred.shape[0] if self.reduction == "mean" else 1.0
        g = gamma * pt * (1 - pt) ** (gamma - 1) * log_pt - (1 - pt) ** gamma
        self._grad = scale * g * (onehot - xp.exp(log_p))
        return -scale * xp.sum((1 - pt) ** gamma * log_pt)

    def backward(self):
        return self._grad

    def link(self, pred):
        return nb.functional.softmax(pred)

    def count_correct(self, pred, target):
        xp = namespace_of(pred)
        return xp.sum(xp.astype(xp.argmax(pred, axis=1) == xp.astype(target, xp.int64), xp.int64))

    def config(self):
        return {**super().config(), "gamma": self.gamma}


class ScaledLink(Focal):
    """predict_proba gave 4.85 and -2.32."""

    def link(self, pred):
        return 3 * pred


class UnnormalisedLink(Focal):
    def link(self, pred):
        xp = namespace_of(pred)
        return xp.exp(pred) / (1 + xp.exp(pred))


class CountsTheLeastLikely(Focal):
    """The history's accuracy read 0.01 for a net right on 99 rows in 100."""

    def count_correct(self, pred, target):
        xp = namespace_of(pred)
        return xp.sum(xp.astype(xp.argmin(pred, axis=1) == xp.astype(target, xp.int64), xp.int64))


class CountsAShare(Focal):
    def count_correct(self, pred, target):
        return super().count_correct(pred, target) / pred.shape[0]


LABELS = np.array([0, 2, 1, 1, 0, 2])


def test_check_loss_passes_the_guides_focal_loss_with_its_link_and_accuracy_rows():
    report = check_loss(Focal, (6, 3), LABELS, backends=BACKENDS)
    assert {row.check for row in report.rows} >= {"link", "accuracy"}


@pytest.mark.parametrize(
    "cls, check, said",
    [
        (ScaledLink, "link", r"link\(pred\) gives values in \[-[\d.]+, [\d.]+\], which "),
        (UnnormalisedLink, "link", r"link\(pred\)'s rows sum to [\d.]+ \.\. [\d.]+, not 1"),
        (CountsTheLeastLikely, "accuracy", r"count_correct gave 1; rows right by link\(pred\)'s "
                                           r"likeliest class: 2"),
        (CountsAShare, "accuracy", r"count_correct gave 0\.3+; rows right"),
    ],
)  # fmt: skip
def test_check_loss_refuses_a_link_or_count_that_predict_proba_and_accuracy_would_misread(
    cls, check, said
):
    with pytest.raises(CheckFailed, match=said) as info:
        check_loss(cls, (6, 3), LABELS, backends=BACKENDS)
    assert failed(info) == {(check, "numpy")}


def test_check_loss_counts_binary_outputs_by_their_side_of_a_half():
    """BCE's count on logits: outputs on the target's side of 0 (0.5 by the link), a
    share of the row's outputs where it has several."""
    target = (np.arange(24).reshape(6, 4) % 3 == 0) * 1.0
    report = check_loss(
        lambda: nb.losses.BinaryCrossEntropy(from_logits=True), (6, 4), target, backends=BACKENDS
    )
    assert [row.check for row in report.rows if row.check in ("link", "accuracy")] == [
        "link",
        "accuracy",
    ]

    class CountsEveryOutput(nb.losses.BinaryCrossEntropy):
        def count_correct(self, pred, target):
            return super().count_correct(pred, target) * 4

    with pytest.raises(CheckFailed, match="count_correct gave") as info:
        check_loss(lambda: CountsEveryOutput(from_logits=True), (6, 4), target, backends=["numpy"])
    assert failed(info) == {("accuracy", "numpy")}


def test_check_loss_refuses_labels_past_preds_columns_as_fit_does():
    with pytest.raises(ValueError, match=r"check_loss: pred \(6, 3\) as a model's outputs: "
                       r"target holds labels from 0 to 3"):  # fmt: skip
        check_loss(Focal, (6, 3), np.array([0, 2, 1, 1, 0, 3]), backends=["numpy"])


@nb.register
class HeldDense(Residual):
    """Residual's x + Dense(x), as the guide writes a layer that holds one: its forward
    hands the Dense the outer layer's params and, unless ``hand_backend`` is False, its
    backend."""

    def __init__(self, units: int = 3, bias: bool = True, hand_backend: bool = True):
        super().__init__(units, bias)
        self.hand_backend = hand_backend

    def forward(self, x, training=True):
        self.inner.params = self.params
        if self.hand_backend:
            self.inner.backend = self.backend
        return super().forward(x, training)

    def config(self):
        return {**super().config(), "hand_backend": self.hand_backend}


def test_a_layer_holding_a_dense_as_the_guide_writes_it_loads_on_another_backend(tmp_path):
    X, y = nb.datasets.make_moons(60, seed=0)
    model = nb.Sequential([Dense(2, 3), HeldDense(3), "tanh", Dense(3, 2)], seed=0)
    model.fit(X, y, loss="cross_entropy", optimizer="adam", epochs=3, verbose=0)
    path = nb.save(model, tmp_path / "held.h5")
    again = nb.load(path, backend="strict")
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    assert again.layers[1].inner.backend.name == "strict"
    check_layer(HeldDense, (4, 3), backends=BACKENDS)


def test_check_layer_tells_a_held_layer_wants_the_backend_too():
    """nb.load calls no build: the held Dense had no backend ('NoneType' object has no
    attribute 'xp'), and the hint spoke of config() and params alone."""
    with pytest.raises(CheckFailed, match="hand a layer it holds its params and backend") as info:
        check_layer(lambda: HeldDense(3, hand_backend=False), (4, 3), backends=BACKENDS)
    assert {check for check, _ in failed(info)} == {"save/load"}


class Pairs(nb.layers.Layer):
    """Sums neighbouring features: half the features out, Layer's output_shape kept."""

    def forward(self, x, training=True):
        return x[:, 0::2] + x[:, 1::2]

    def backward(self, dy, input_grad=True):
        xp = namespace_of(dy)
        return xp.reshape(xp.stack([dy, dy], axis=2), (dy.shape[0], -1))


def test_check_layer_names_the_default_output_shape_as_sequential_does():
    said = r"y has shape \(5, 2\), not \(5, 4\); Pairs keeps Layer's default output_shape"
    with pytest.raises(CheckFailed, match=said) as info:
        check_layer(Pairs, (5, 4), backends=["numpy"])
    assert {check for check, _ in failed(info)} == {"arrays", "float32"}  # no range row


class Float64Out(nb.layers.Layer):
    def forward(self, x, training=True):
        return nb.backend.namespace_of(x).astype(x, nb.backend.namespace_of(x).float64)

    def backward(self, dy, input_grad=True):
        return dy


def test_a_dtype_fault_is_not_told_of_output_shape():
    with pytest.raises(CheckFailed, match="y is float64, not float32") as info:
        check_layer(Float64Out, (5, 4), backends=["numpy"])
    assert "output_shape" not in str(info.value)


class CountsExactRows(nb.losses.BinaryCrossEntropy):
    """Multi-label accuracy as an exact match: a row is right in every output or not."""

    def count_correct(self, pred, target):
        xp = namespace_of(pred)
        return xp.count_nonzero(xp.all((pred > 0) == (target > 0.5), axis=1))


@pytest.mark.parametrize("make", [nb.losses.BinaryCrossEntropy, CountsExactRows])
def test_check_loss_takes_a_share_in_float32_or_an_exact_match_of_binary_outputs(make):
    """11 / 3 in float32 is not 11 / 3 in float64: the built-in BCE of 3 outputs failed."""
    target = (np.random.default_rng(1).random((7, 3)) > 0.5) * 1.0
    report = check_loss(lambda: make(from_logits=True), (7, 3), target, backends=["numpy"],
                        dtype="float32")  # fmt: skip
    assert [row.ok for row in report.rows if row.check == "accuracy"] == [True]


class LogitsAsProbabilities(nb.losses.BinaryCrossEntropy):
    """BCE on logits whose link hands the logits on: predict_proba gave raw scores."""

    def link(self, pred):
        return pred * 1.0


class ShapedCount(Focal):
    def count_correct(self, pred, target):
        return nb.backend.namespace_of(pred).reshape(super().count_correct(pred, target), (1,))


class NegatedLink(Focal):
    def link(self, pred):
        return -3 * pred


class NinetyFivePercent(Focal):
    def link(self, pred):
        return 0.95 * nb.functional.softmax(pred)


class CountsALittleMore(Focal):
    def count_correct(self, pred, target):
        return super().count_correct(pred, target) + 0.001


BINARY = (np.arange(18).reshape(6, 3) % 2) * 1.0


@pytest.mark.parametrize(
    "make, target, failed_rows",
    [
        (lambda: LogitsAsProbabilities(from_logits=True), BINARY, {"link"}),
        (ShapedCount, LABELS, {"accuracy"}),
        (NegatedLink, LABELS, {"link"}),  # the link alone: the count is right
        (NinetyFivePercent, LABELS, {"link"}),
        (CountsALittleMore, LABELS, {"accuracy"}),
    ],
)
def test_check_loss_names_the_row_that_is_wrong(make, target, failed_rows):
    with pytest.raises(CheckFailed) as info:
        check_loss(make, (6, 3), target, backends=["numpy"])
    assert {check for check, _ in failed(info)} == failed_rows
    if make is ShapedCount:
        assert "a 0-d count between 0 and 6" in str(info.value)


class MSEWithAHit(nb.losses.MSE):
    """A regression loss with an accuracy of its own: a hit within 0.5 of the target."""

    has_accuracy = True

    def count_correct(self, pred, target):
        xp = nb.backend.namespace_of(pred)
        return xp.count_nonzero(xp.all(xp.abs(pred - target) < 0.5, axis=1))


@pytest.mark.parametrize(
    "make, pred, target",
    [
        (nb.losses.SoftmaxCrossEntropy, (6, 3), np.eye(3)[LABELS]),  # one-hot rows
        (lambda: nb.losses.BinaryCrossEntropy(from_logits=True), np.zeros((6, 3)), BINARY),
        (MSEWithAHit, (6, 3), np.zeros((6, 3))),  # no rule for its count: its range alone
        (  # probabilities that need not sum to 1: the link is pred itself, not checked
            lambda: nb.losses.SoftmaxCrossEntropy(from_logits=False),
            np.random.default_rng(0).uniform(0.1, 0.9, (6, 3)),
            LABELS,
        ),
    ],
)
def test_check_loss_passes_the_links_and_counts_that_are_right(make, pred, target):
    report = check_loss(make, pred, target, backends=["numpy"])
    assert all(row.ok for row in report.rows if row.check in ("link", "accuracy"))
