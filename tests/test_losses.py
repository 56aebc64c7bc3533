"""Losses: values against the textbook formulas, gradients against numerical ones and
torch, and finite results at the extremes."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nnbackend as nb
from nnbackend import losses
from nnbackend.gradcheck import check_loss
from tests.conftest import HAVE_TORCH

LABELS = np.array([0, 2, 1, 2, 0], dtype=np.int64)


def logits(backend, scale=3.0):
    return nb.Generator(5).normal((5, 3), std=scale, backend=backend)


def host_softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def host_sigmoid(z):
    return 1 / (1 + np.exp(-z))


# name -> (loss, make (pred, target) on a backend, textbook value from host pred/target)
def _softmax_case(backend):
    return logits(backend), backend.asarray(LABELS)


def _onehot_case(backend):
    return logits(backend), backend.asarray(np.eye(3)[LABELS], dtype=backend.dtype_name)


def _proba_case(backend):
    p = nb.Generator(6).uniform((5, 3), 0.05, 1.0, backend=backend)
    return p / backend.xp.sum(p, axis=1, keepdims=True), backend.asarray(LABELS)


def _binary_case(backend):
    p = nb.Generator(6).uniform((5, 1), 0.05, 0.95, backend=backend)
    return p, backend.asarray([1.0, 0.0, 1.0, 1.0, 0.0], dtype=backend.dtype_name)


def _binary_logits_case(backend):
    z = nb.Generator(7).normal((5, 1), std=3.0, backend=backend)
    return z, backend.asarray([1.0, 0.0, 1.0, 1.0, 0.0], dtype=backend.dtype_name)


def _multi_binary_case(backend):  # three labels a sample: "mean" divides by 15, not 5
    z = nb.Generator(9).normal((5, 3), std=3.0, backend=backend)
    t = np.array([[1, 0, 1], [0, 0, 1], [1, 1, 1], [0, 1, 0], [0, 0, 0]], dtype=float)
    return z, backend.asarray(t, dtype=backend.dtype_name)


def _regression_case(backend):
    gen = nb.Generator(8)
    return gen.normal((5, 2), backend=backend), gen.normal((5, 2), backend=backend)


def _ce(p, t):
    return -np.log(p[np.arange(len(t)), t])


def _bce(p, t):
    t = t.reshape(p.shape)
    return -(t * np.log(p) + (1 - t) * np.log(1 - p))


CASES = {
    "softmax-ce-labels": (losses.SoftmaxCrossEntropy(), _softmax_case,
                          lambda z, t: _ce(host_softmax(z), t).mean()),
    "softmax-ce-onehot-sum": (losses.SoftmaxCrossEntropy(reduction="sum"), _onehot_case,
                              lambda z, t: _ce(host_softmax(z), t.argmax(1)).sum()),
    "ce-from-probabilities": (losses.SoftmaxCrossEntropy(from_logits=False), _proba_case,
                              lambda p, t: _ce(p, t).mean()),
    "bce-probabilities": (losses.BinaryCrossEntropy(), _binary_case,
                          lambda p, t: _bce(p, t).mean()),
    "bce-logits": (losses.BinaryCrossEntropy(from_logits=True), _binary_logits_case,
                   lambda z, t: _bce(host_sigmoid(z), t).mean()),
    "bce-logits-3-outputs": (losses.BinaryCrossEntropy(from_logits=True), _multi_binary_case,
                             lambda z, t: _bce(host_sigmoid(z), t).mean()),
    "mse-mean": (losses.MSE(), _regression_case, lambda p, t: ((p - t) ** 2).mean()),
    "mse-half-sum": (losses.MSE(reduction="sum", half=True), _regression_case,
                     lambda p, t: 0.5 * ((p - t) ** 2).sum()),
}  # fmt: skip


@pytest.mark.parametrize("name", CASES)
def test_value_matches_the_textbook_formula(name, backend64):
    loss, make, formula = CASES[name]
    pred, target = make(backend64)
    value = loss.forward(pred, target)
    assert value.shape == ()
    expected = formula(backend64.to_numpy(pred), backend64.to_numpy(target))
    np.testing.assert_allclose(backend64.to_float(value), expected, rtol=1e-12)


@pytest.mark.parametrize("name", CASES)
def test_gradient_matches_numerical(name, backend64):
    loss, make, _ = CASES[name]
    assert check_loss(loss, *make(backend64)) < 1e-6


@pytest.mark.parametrize("name", CASES)
def test_float32_stays_float32(name, backend):
    loss, make, _ = CASES[name]
    pred, target = make(backend)
    assert loss.forward(pred, target).dtype == backend.xp.float32
    assert loss.backward().dtype == backend.xp.float32


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
@pytest.mark.parametrize("name", CASES)
def test_value_and_gradient_match_torch(name, backend64):
    import torch
    import torch.nn.functional as tf

    loss, make, _ = CASES[name]
    pred, target = make(backend64)
    value = backend64.to_float(loss.forward(pred, target))
    grad = backend64.to_numpy(loss.backward())
    tp = torch.tensor(backend64.to_numpy(pred), requires_grad=True)
    tt = torch.tensor(backend64.to_numpy(target))
    reference = {
        "softmax-ce-labels": lambda: tf.cross_entropy(tp, tt),
        "softmax-ce-onehot-sum": lambda: tf.cross_entropy(tp, tt, reduction="sum"),
        "ce-from-probabilities": lambda: tf.nll_loss(torch.log(tp), tt),
        "bce-probabilities": lambda: tf.binary_cross_entropy(tp, tt.reshape(tp.shape)),
        "bce-logits": lambda: tf.binary_cross_entropy_with_logits(tp, tt.reshape(tp.shape)),
        "bce-logits-3-outputs": lambda: tf.binary_cross_entropy_with_logits(tp, tt),
        "mse-mean": lambda: tf.mse_loss(tp, tt),
        "mse-half-sum": lambda: 0.5 * tf.mse_loss(tp, tt, reduction="sum"),
    }[name]()
    reference.backward()
    np.testing.assert_allclose(value, reference.item(), rtol=1e-12)
    np.testing.assert_allclose(grad, tp.grad.numpy(), rtol=1e-10, atol=1e-15)


def test_the_neuron_tutorials_mse(backend):
    """MSE of [1, 0, 0, 1] against predictions [0, 0, 0, 0] is 0.5."""
    y_true = backend.asarray([1.0, 0.0, 0.0, 1.0], dtype="float32")
    y_pred = backend.xp.zeros_like(y_true)
    assert backend.to_float(losses.MSE()(y_pred, y_true)) == 0.5


# --- the extremes -----------------------------------------------------------------


def _finite(backend, *arrays):
    return all(bool(np.all(np.isfinite(backend.to_numpy(a)))) for a in arrays)


def test_softmax_ce_with_logits_of_1e4(backend):
    loss = losses.SoftmaxCrossEntropy(reduction="sum")
    z = backend.asarray([[1e4, -1e4], [-1e4, 1e4]], dtype="float32")
    y = backend.asarray([1, 1])
    value = loss.forward(z, y)
    grad = loss.backward()
    assert _finite(backend, value, grad)
    assert backend.to_float(value) == 2e4  # the wrong row costs 2e4, the right one 0
    np.testing.assert_array_equal(backend.to_numpy(grad), [[1, -1], [0, 0]])


@pytest.mark.parametrize("classes", [5, 80])  # NumPy: one-hot rows below 16, picked labels above
@pytest.mark.parametrize("targets", ["labels", "one-hot"])
@pytest.mark.parametrize("fused", [True, False])
def test_a_masked_class_adds_nothing_to_the_loss(backend, classes, targets, fused):
    """A logit of -inf off the label (a masked class) costs what a very low one costs,
    not NaN, with the fused kernels and without; at the label it costs inf (the label
    is impossible), and NaN scores still give NaN."""
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(4, classes)).astype(np.float32)
    scores[:, 0] = -np.inf
    labels = rng.integers(1, classes, 4)
    loss = losses.SoftmaxCrossEntropy(reduction="sum")

    def value_and_gradient(z, y):
        y = y if targets == "labels" else np.eye(classes)[y]
        with nb.backend.fused(fused):
            value = loss.forward(backend.asarray(z), backend.asarray(y))
            return backend.to_float(value), backend.to_numpy(loss.backward())

    masked, grad = value_and_gradient(scores, labels)
    low, low_grad = value_and_gradient(np.where(np.isinf(scores), -1e30, scores), labels)
    assert np.isfinite(masked) and masked == pytest.approx(low, rel=1e-6)
    np.testing.assert_allclose(grad, low_grad, rtol=1e-6, atol=1e-7)
    assert grad[0, 0] == 0.0
    assert value_and_gradient(scores, np.array([0, *labels[1:]]))[0] == np.inf
    scores[1, 2] = np.nan
    assert np.isnan(value_and_gradient(scores, labels)[0])


@pytest.mark.parametrize("classes", [5, 80])  # NumPy: one-hot rows below 16, picked labels above
@pytest.mark.parametrize("fused", [True, False])
def test_a_label_outside_the_classes_is_trained_not_skipped(backend, classes, fused):
    """A direct call's label of -1 adds nothing to the loss, but its row still gets
    softmax's gradient (the docstring says so: such rows are not skipped)."""
    scores = np.random.default_rng(4).normal(size=(2, classes))
    loss = losses.SoftmaxCrossEntropy(reduction="sum")
    with nb.backend.fused(fused):
        value = loss.forward(backend.asarray(scores), backend.asarray(np.array([0, -1])))
        grad = backend.to_numpy(loss.backward())
        alone = loss.forward(backend.asarray(scores[:1]), backend.asarray(np.array([0])))
    softmax = np.exp(scores[1] - scores[1].max()) / np.exp(scores[1] - scores[1].max()).sum()
    assert backend.to_float(value) == pytest.approx(backend.to_float(alone), rel=1e-6)
    np.testing.assert_allclose(grad[1], softmax, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("z, t, expected", [(1e4, 0.0, 1e4), (-1e4, 1.0, 1e4), (1e4, 1.0, 0.0)])
def test_bce_with_logits_of_1e4(backend, z, t, expected):
    loss = losses.BinaryCrossEntropy(from_logits=True)
    value = loss.forward(
        backend.asarray([[z]], dtype="float32"), backend.asarray([t], dtype="float32")
    )
    grad = loss.backward()
    assert _finite(backend, value, grad)
    assert backend.to_float(value) == pytest.approx(expected)
    assert abs(backend.to_float(grad[0, 0])) == pytest.approx(abs(expected) / 1e4)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("z, t", [(30.0, 1.0), (40.0, 1.0), (-30.0, 0.0), (-40.0, 0.0)])
def test_bce_with_logits_is_exact_in_the_tails(backend, dtype, z, t):
    """A confident right answer costs log(1 + exp(-|z|)): 4.2e-18 at z = 40. Added before
    max(z, 0) - z t cancelled, it was lost (0, and 1.3 % off at z = 30). torch's own
    operator rounds the other tail (t = 0) to 0, as the loss's docstring says."""
    if backend.name.startswith("torch") and t == 0.0:
        pytest.skip("torch's binary_cross_entropy_with_logits rounds this tail to 0")
    loss = losses.BinaryCrossEntropy(from_logits=True, reduction="sum")
    value = loss.forward(backend.asarray([[z]], dtype=dtype), backend.asarray([t], dtype=dtype))
    exact = math.log1p(math.exp(-abs(z)))
    rel = 1e-6 if dtype == "float32" else 1e-14
    assert backend.to_float(value) == pytest.approx(exact, rel=rel, abs=0)


def test_bce_on_probabilities_of_exactly_0_and_1(backend):
    """Probabilities are clipped to [eps, 1 - eps] (eps of float32): a right row costs
    -log(1 - eps), a wrong one -log(eps), and the gradient (p - t) / (p (1 - p)) of each
    row, over the batch of 4, is +-1 / (4 (1 - eps)) when right and +-1 / (4 eps) when
    wrong."""
    loss = losses.BinaryCrossEntropy()
    p = backend.asarray([[0.0], [1.0], [0.0], [1.0]], dtype="float32")
    t = backend.asarray([0.0, 1.0, 1.0, 0.0], dtype="float32")
    value = loss.forward(p, t)
    grad = backend.to_numpy(loss.backward())
    eps = float(np.finfo(np.float32).eps)
    right, wrong = -np.log1p(-eps), -np.log(eps)
    assert backend.to_float(value) == pytest.approx((2 * right + 2 * wrong) / 4, rel=1e-6)
    want = np.array([[1 / (1 - eps)], [-1 / (1 - eps)], [-1 / eps], [1 / eps]]) / 4
    np.testing.assert_allclose(grad, want, rtol=1e-6)


@pytest.mark.parametrize("dtype, p", [("float32", 1e-6), ("float32", 1e-4), ("float64", 1e-12)])
def test_bce_on_a_small_probability_of_a_0_is_exact(backend, dtype, p):
    """-log(1 - p) as log(1 - p) lost 1 - p's rounding: 1.3 % too much at p = 1e-6 in
    float32; log1p(-p) keeps it."""
    loss = losses.BinaryCrossEntropy(reduction="sum")
    value = loss.forward(backend.asarray([[p]], dtype=dtype), backend.asarray([0.0], dtype=dtype))
    stored = float(np.asarray(p, dtype=dtype))  # p as the dtype holds it
    rel = 1e-6 if dtype == "float32" else 1e-14
    assert backend.to_float(value) == pytest.approx(-math.log1p(-stored), rel=rel, abs=0)


@pytest.mark.parametrize("reduction, scale", [("mean", 1 / 2), ("sum", 1.0)])
def test_ce_on_probabilities_of_exactly_0_costs_log_eps(backend, reduction, scale):
    """A true class given probability 0 is clipped to eps of float32: it costs -log(eps)
    and its gradient entry, -1 / p, is -1 / eps; the other row is the plain -log(0.75)."""
    loss = losses.SoftmaxCrossEntropy(from_logits=False, reduction=reduction)
    p = backend.asarray([[1.0, 0.0], [0.25, 0.75]], dtype="float32")
    value = loss.forward(p, backend.asarray([1, 1]))
    grad = backend.to_numpy(loss.backward())
    eps = float(np.finfo(np.float32).eps)
    want = scale * (-np.log(eps) - np.log(0.75))
    assert backend.to_float(value) == pytest.approx(want, rel=1e-6)
    np.testing.assert_allclose(grad, scale * np.array([[0, -1 / eps], [0, -1 / 0.75]]), rtol=1e-6)


def test_softmax_layer_is_stable_at_1e4(backend):
    y = nb.layers.Softmax().forward(backend.asarray([[1e4, -1e4, 0.0]], dtype="float32"))
    np.testing.assert_array_equal(backend.to_numpy(y), [[1.0, 0.0, 0.0]])


# --- bad input --------------------------------------------------------------------


@pytest.mark.parametrize("from_logits", [True, False])
def test_softmax_ce_takes_targets_of_any_integer_or_bool_type(backend, from_logits):
    # one-hot rows were kept in their own dtype (a float64 loss from float32 scores; raw
    # promotion errors on strict and torch), unsigned labels met an int64 arange
    loss = losses.SoftmaxCrossEntropy(from_logits=from_logits)
    pred = logits(backend)
    if not from_logits:
        pred = backend.asarray(host_softmax(backend.to_numpy(pred)))
    want = backend.to_numpy(loss.forward(pred, backend.asarray(LABELS)))
    want_grad = backend.to_numpy(loss.backward())
    onehot = np.eye(3)[LABELS]
    targets = [LABELS.astype(t) for t in ("uint8", "int16", "uint32", "uint64")]
    targets += [onehot.astype(t) for t in ("float64", "int64", "bool")]
    for target in targets:
        value = loss.forward(pred, backend.asarray(target))
        assert value.dtype == pred.dtype, target.dtype
        np.testing.assert_allclose(backend.to_numpy(value), want, rtol=1e-6)
        np.testing.assert_allclose(backend.to_numpy(loss.backward()), want_grad, rtol=1e-6)


def test_float_labels_are_refused(backend):
    with pytest.raises(TypeError, match="integer class labels"):
        losses.SoftmaxCrossEntropy().forward(logits(backend), backend.asarray([0.0] * 5))


def test_target_of_the_wrong_shape(backend):
    with pytest.raises(ValueError, match=r"target of shape \(4,\) does not fit scores \(5, 3\)"):
        losses.SoftmaxCrossEntropy().forward(logits(backend), backend.asarray([0, 1, 2, 0]))
    with pytest.raises(ValueError, match="MSE: target of shape"):
        losses.MSE().forward(logits(backend), logits(backend)[:, :2])


def test_labels_as_many_as_the_classes_but_not_the_rows_are_refused(backend):
    """3 labels for 4 rows of 3 classes: the rows are what the labels must match."""
    scores = backend.asarray(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"target of shape \(3,\) does not fit scores \(4, 3\)"):
        losses.SoftmaxCrossEntropy().forward(scores, backend.asarray([0, 2, 1]))
    with pytest.raises(ValueError, match=r"wants \(batch, classes\) scores, got \(4,\)"):
        losses.SoftmaxCrossEntropy().forward(backend.asarray(np.zeros(4)), backend.asarray([0] * 4))


def test_bce_counts_right_rows_of_one_output_and_ties_as_predict_does(backend):
    """A (batch, 1) output counts a row each; a probability of exactly 0.5 (a logit of
    0: a model of zero weights) is class 0, as predict says."""
    probabilities = backend.asarray([[0.9], [0.2], [0.6]])
    right = losses.BinaryCrossEntropy().count_correct(probabilities, backend.asarray([1.0] * 3))
    assert float(right) == 2.0
    for from_logits, tie in ((False, 0.5), (True, 0.0)):
        loss = losses.BinaryCrossEntropy(from_logits=from_logits)
        ties = backend.asarray(np.full((4, 1), tie))
        assert float(loss.count_correct(ties, backend.asarray([0.0, 0.0, 0.0, 1.0]))) == 3.0


def test_one_loss_for_heads_of_other_class_counts(backend):
    """Its class ids are kept by count as well as by batch size: 3 classes, then 5."""
    loss, rng = losses.SoftmaxCrossEntropy(), np.random.default_rng(0)
    three, five = rng.normal(size=(4, 3)), rng.normal(size=(4, 5))
    loss.forward(backend.asarray(three), backend.asarray([0, 1, 2, 0]))
    got = float(loss.forward(backend.asarray(five), backend.asarray([4, 3, 2, 1])))
    fresh = losses.SoftmaxCrossEntropy()
    assert got == float(fresh.forward(backend.asarray(five), backend.asarray([4, 3, 2, 1])))


def test_unknown_reduction():
    with pytest.raises(ValueError, match="reduction must be one of"):
        losses.MSE(reduction="average")


def test_arrays_of_two_backends():
    pred = nb.get_backend("numpy").asarray(np.zeros((2, 1)))
    target = nb.get_backend("strict").asarray([0.0, 1.0])
    with pytest.raises(nb.BackendMismatchError, match="two backends"):
        losses.MSE().forward(pred, target)


def test_l2_penalty_and_gradient(backend64):
    W = backend64.asarray([[1.0, -2.0], [3.0, 0.5]])
    l2 = losses.L2(0.1)
    assert backend64.to_float(l2.penalty([W, W])) == pytest.approx(0.1 / 2 * 14.25 * 2)
    grads = {"W": backend64.xp.zeros_like(W)}
    l2.add_to_gradients({"W": W}, grads)
    np.testing.assert_allclose(backend64.to_numpy(grads["W"]), 0.1 * backend64.to_numpy(W))


def test_l2_of_no_weights_is_0(backend):
    # a model with no decayed weights (BatchNorm alone) fits with l2 as without it
    assert losses.L2(0.1).penalty([]) == 0.0
    X = np.random.default_rng(0).normal(size=(16, 3))
    runs = [
        nb.Sequential([nb.layers.BatchNorm(3)], backend=backend, seed=0).fit(
            X, X[:, ::-1].copy(), loss="mse", optimizer="sgd", l2=l2, epochs=2, verbose=0
        )["loss"]
        for l2 in (None, 0.1)
    ]
    assert runs[0] == runs[1]


@pytest.mark.parametrize("name", CASES)
def test_a_copy_of_a_loss_leaves_the_last_batch_behind(name, backend):
    """A pickled or copied model held its loss's last gradient (its labels could be read
    back from it: argmin of softmax - onehot) and a trained model pickled 200 times
    larger; copies keep the settings and compute the same."""
    import copy
    import pickle

    loss, make, _ = CASES[name]
    pred, target = make(backend)
    value = backend.to_float(loss.forward(pred, target))
    for copied in (pickle.loads(pickle.dumps(loss)), copy.deepcopy(loss), copy.copy(loss)):
        assert [key for key in vars(copied) if key in ("_grad", "_diff", "_counted")] == []
        assert copied.config() == loss.config()
        assert backend.to_float(copied.forward(pred, target)) == value


def test_a_copy_of_a_loss_keeps_a_subclass_s_private_settings():
    import copy

    class Weighted(losses.MSE):
        def __init__(self, w=2.0, **options):
            super().__init__(**options)
            self._w = float(w)

        def forward(self, pred, target):
            return self._w * super().forward(pred, target)

    loss, pred = Weighted(), np.ones((3, 1))
    loss.forward(pred, pred * 0)
    assert float(copy.deepcopy(loss).forward(pred, pred * 0)) == 2.0


def test_a_fused_count_is_handed_over_once_and_only_for_its_own_arrays(backend):
    """The count a fused kernel made in the forward (CuPy's) stands for that very batch:
    asked about other arrays, or a second time, there is none (a stale count would be
    another batch's accuracy)."""
    loss = losses.SoftmaxCrossEntropy()
    pred, target = backend.asarray(np.zeros((2, 3))), backend.asarray(np.array([0, 1]))
    other = backend.asarray(np.array([0, 1]))
    for asked in [(other, target), (pred, other), (target, target), (pred, pred)]:
        loss._keep_count(pred, target, 7)
        assert loss._kept_count(*asked) is None
    loss._keep_count(pred, target, 7)
    assert loss._kept_count(pred, target) == 7
    assert loss._kept_count(pred, target) is None
    loss._keep_count(pred, target)  # a forward that made no count
    assert loss._kept_count(pred, target) is None


@pytest.mark.parametrize("batch_size", [None, 16, 7])
def test_an_epochs_loss_is_a_per_sample_mean_with_either_reduction(backend, batch_size):
    """A batch's mean is weighted by its size, a batch's sum by 1, and the total divided
    by the number of samples, uneven last batch or not: "mean" gives the mean square
    over every output, "sum" the squared errors of a sample, on average."""
    X = np.random.default_rng(0).normal(size=(50, 3))
    y = X @ np.array([[1.0, -1.0], [2.0, 0.0], [0.5, 1.0]]) + 0.3
    model = nb.Sequential([nb.layers.Dense(3, 2)], backend=backend, seed=0)
    model.loss = losses.MSE()
    error = model.predict_proba(X) - y
    by_mean = model.evaluate(X, y, batch_size=batch_size)["loss"]
    by_sum = model.evaluate(X, y, loss=losses.MSE(reduction="sum"), batch_size=batch_size)
    assert by_mean == pytest.approx(np.mean(error**2), rel=1e-5)
    assert by_sum["loss"] == pytest.approx(np.sum(error**2) / 50, rel=1e-5)


def test_a_loss_shows_its_arguments_and_comes_back_from_its_config():
    shown = {
        losses.MSE(reduction="sum"): "MSE(reduction='sum', half=False)",
        losses.BinaryCrossEntropy(): "BinaryCrossEntropy(reduction='mean', ",
    }
    for loss, starts in shown.items():
        assert repr(loss).startswith(starts)
        again = losses.get(loss.config())
        assert type(again) is type(loss) and again.config() == loss.config()


@pytest.mark.parametrize("from_logits", [True, False])
def test_a_column_of_labels_is_refused_by_softmax_cross_entropy(from_logits):
    """Mutation run: (4, 1) labels against (4, 3) scores held no test of its words."""
    loss = nb.losses.SoftmaxCrossEntropy(from_logits=from_logits)
    with pytest.raises(ValueError, match=r"target of shape \(4, 1\) does not fit scores \(4, 3\)"):
        loss.forward(np.full((4, 3), 1 / 3), np.array([[0.0], [1.0], [2.0], [1.0]]))


@pytest.mark.parametrize("loss", [nb.losses.MSE(), nb.losses.BinaryCrossEntropy()])
def test_a_batch_of_targets_does_not_fit_several_outputs(loss):
    with pytest.raises(ValueError, match=r"target of shape \(4,\) does not fit output \(4, 3\)"):
        loss.forward(np.full((4, 3), 0.5), np.ones(4))
