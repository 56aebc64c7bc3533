"""The kernel table (nnbackend.backend.kernels): every fused kernel gives what the
standard-only reference in its layer, loss or optimizer gives, on every backend that
has one (CuPy's under -m gpu). NumPy's keep the reference's order of operations, so
they agree bit for bit, except where a sum is taken as a product with ones (a bias
gradient, softmax's row sums: the BLAS adds in its own order); CuPy's may contract
a * b + c into one rounding, and torch's operators order their arithmetic in their
own way."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nnbackend as nb
from nnbackend.backend import fastpaths, fused, kernels
from nnbackend.sklearn.solvers import EfficientAdam


@pytest.fixture(params=["float32", "float64"])
def dtype(request) -> str:
    return request.param


@pytest.fixture
def backend(backend, dtype):
    """Each backend under test (the plugin's ``backend``) in float32 and in float64: in
    float64 a kernel that orders its arithmetic wrongly (eps added before Adam's division
    by its root: about 3e-7 of the update) stands out of rounding, in float32 not."""
    return backend.with_dtype(dtype)


def tolerance(backend, sums: bool = False) -> float:
    """0 where the fused kernel must match bit for bit (NumPy, unless ``sums``: its
    sums as products with ones round in the BLAS's order), else rounding: 100 eps in
    float32 (1.2e-5), 1e-12 in float64."""
    if backend.name == "numpy" and not sums:
        return 0.0
    return 1e-12 if backend.dtype_name == "float64" else 100 * np.finfo(np.float32).eps


def same(backend, got, want, sums: bool = False):
    got, want = nb.to_numpy(got), nb.to_numpy(want)
    assert got.dtype == want.dtype and got.shape == want.shape
    close = tolerance(backend, sums)
    np.testing.assert_allclose(got, want, rtol=close, atol=close)


def entry(backend, *names: str):
    """The first of ``names`` that the backend's table has (a test skips where none)."""
    table = kernels.table(backend.xp)
    found = next((getattr(table, n) for n in names if getattr(table, n) is not None), None)
    if found is None:
        pytest.skip(f"{backend.name} has no fused {' or '.join(names)}")
    return found


def normal(backend, shape, seed=0, scale=3.0):
    return backend.asarray(np.random.default_rng(seed).normal(size=shape) * scale)


def test_fused_kernels_can_be_turned_off(backend):
    with fused(False):
        assert all(getattr(kernels.table(backend.xp), n) is None for n in kernels.NAMES)
    if backend.name == "numpy":
        assert kernels.table(backend.xp).softmax_xent is not None


def test_a_users_switches_do_not_reach_the_tests():
    """The README tells of NNBACKEND_FUSED=0 and NNBACKEND_FAST_PATHS=0: exported in the
    shell, they failed every test of the defaults (the flat buffer's, the native
    im2col's), the fused kernels' switch read once for the whole run."""
    env = {**os.environ, "NNBACKEND_FUSED": "0", "NNBACKEND_FAST_PATHS": "0"}
    tests = [
        "tests/test_kernels.py::test_fused_kernels_can_be_turned_off",
        "tests/test_fastpath_edges.py::test_numpy_and_cupy_are_known_by_their_plain_namespaces",
    ]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        cwd=Path(__file__).parent.parent, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:]


WORDS = [("0", False), ("false", False), ("OFF", False), ("no", False),
         ("1", True), ("True", True), ("on", True), ("", True)]  # fmt: skip


@pytest.mark.parametrize("text, on", WORDS)
def test_the_environment_turns_them_on_or_off_by_any_usual_word(monkeypatch, text, on):
    monkeypatch.setenv(kernels.ENV_VAR, text)
    monkeypatch.setattr(kernels, "_environment", [])  # read again
    assert kernels.enabled() is on
    monkeypatch.setenv(fastpaths.ENV_VAR, text)
    assert fastpaths.enabled() is on


def test_a_word_that_says_neither_is_refused_by_name(monkeypatch):
    """ "false" and "off" meant on: anything but "0" did."""
    monkeypatch.setenv(kernels.ENV_VAR, "maybe")
    monkeypatch.setattr(kernels, "_environment", [])
    with pytest.raises(ValueError, match=r"\$NNBACKEND_FUSED is 'maybe': set it to 1 \(on\) or 0"):
        kernels.enabled()
    monkeypatch.setenv(fastpaths.ENV_VAR, "yes please")
    with pytest.raises(ValueError, match=r"\$NNBACKEND_FAST_PATHS is 'yes please'"):
        fastpaths.enabled()


def test_dense_forward_matches_its_reference(backend):
    entry(backend, "linear")
    layer = nb.layers.Dense(5, 3)
    layer.build(backend, nb.Generator(0))
    layer.params["b"] = normal(backend, (3,), seed=2)
    x = normal(backend, (7, 5), seed=1)
    got = layer.forward(x)
    with fused(False):
        want = layer.forward(x)
    same(backend, got, want)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_a_dense_layer_and_its_activation_in_one_call_match_their_reference(
    backend, monkeypatch, activation
):
    """Sequential hands each Dense layer the activation after it (``dense_act``): the
    outputs, and every gradient after backward, are the two layers' own."""
    fused_call, calls = entry(backend, "dense_act"), []
    counted = lambda *args: calls.append(args[3]) or fused_call(*args)  # noqa: E731
    monkeypatch.setattr(kernels.table(backend.xp), "dense_act", counted)
    x = normal(backend, (7, 5), scale=2.0)
    runs = []
    for on in (True, False):
        model = nb.Sequential([nb.layers.Dense(5, 4), activation, nb.layers.Dense(4, 3)],
                              backend=backend, seed=0)  # fmt: skip
        model.params["0.b"] = normal(backend, (4,), seed=3)
        with fused(on):
            out = model.forward(x)
            model.backward(normal(backend, (7, 3), seed=2))
        runs.append([out, *model.grads.values()])
    assert calls == [activation]  # the first Dense took its activation; the last has none
    for got, want in zip(*runs, strict=True):
        same(backend, got, want, sums=True)  # the bias gradients: sum_into


@pytest.mark.parametrize("layer", ["sigmoid", "relu"])
def test_activation_forward_matches_its_reference(backend, layer):
    entry(backend, layer)
    x = normal(backend, (7, 5), scale=10.0)  # into both tails
    got = nb.layers.get(layer).forward(x)
    with fused(False):
        want = nb.layers.get(layer).forward(x)
    same(backend, got, want)


@pytest.mark.parametrize("layer", ["tanh", "sigmoid", "relu"])
def test_activation_backward_matches_its_reference(backend, layer):
    entry(backend, f"{layer}_backward")
    x, dy = normal(backend, (7, 5)), normal(backend, (7, 5), seed=1)
    act = nb.layers.get(layer)
    act.forward(x)
    got = act.backward(dy)
    with fused(False):
        want = act.backward(dy)
    same(backend, got, want)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("labels", [True, False])
@pytest.mark.parametrize("classes", [4, 20])  # NumPy picks labels' entries from 16 on
def test_softmax_cross_entropy_matches_its_reference(backend, reduction, labels, classes):
    entry(backend, "softmax_xent")
    z = normal(backend, (9, classes))
    y = np.random.default_rng(2).integers(0, classes, 9)
    target = backend.asarray(y if labels else np.eye(classes)[y])
    loss = nb.losses.SoftmaxCrossEntropy(reduction=reduction)
    got = (loss.forward(z, target), loss.backward())
    with fused(False):
        want = (loss.forward(z, target), loss.backward())
    for g, w in zip(got, want, strict=True):
        same(backend, g, w, sums=True)


@pytest.mark.parametrize("label", [-1, 20])
def test_a_label_out_of_range_is_a_row_of_zeros_as_in_the_reference(backend, label):
    """The loss itself does not check labels (fit does, once); a fused kernel must then
    not read outside the row, nor wrap -1 around to the last class."""
    entry(backend, "softmax_xent_labels", "softmax_xent_counted")
    z = normal(backend, (5, 20))
    target = backend.asarray(np.array([3, label, 0, 19, 7]))
    loss = nb.losses.SoftmaxCrossEntropy()
    got = (loss.forward(z, target), loss.backward())
    with fused(False):
        want = (loss.forward(z, target), loss.backward())
    for g, w in zip(got, want, strict=True):
        same(backend, g, w, sums=True)


@pytest.mark.parametrize("classes", [5, 80])  # CuPy: a thread per row, or the row reductions
@pytest.mark.parametrize("ties", [False, True])
def test_right_rows_counted_with_the_loss_match_the_reference(backend, ties, classes):
    """Where the loss's kernel counts the accuracy's right rows too (CuPy), the count is
    argmax's: the first of equal largest scores, never a label out of range; the loss
    and its gradient stay the reference's."""
    entry(backend, "softmax_xent_counted")
    rng = np.random.default_rng(4)
    shape = (64, classes)
    scores = rng.integers(0, 3, shape) if ties else rng.normal(size=shape)
    labels = rng.integers(0, classes, 64)
    labels[::2] = np.argmax(scores[::2] + rng.integers(0, 2, shape)[::2], axis=1)  # some right
    labels[:2] = -1, classes
    z, target = backend.asarray(scores.astype(float)), backend.asarray(labels)
    loss = nb.losses.SoftmaxCrossEntropy()
    got = (loss.forward(z, target), loss.backward(), handed_over(loss, z, target))
    with fused(False):
        want = (loss.forward(z, target), loss.backward(), loss.count_correct(z, target))
    for g, w in zip(got[:2], want[:2], strict=True):
        same(backend, g, w, sums=True)
    right = int(np.sum(np.argmax(scores, axis=1) == labels))
    assert 0 < right < 62 and int(got[2]) == int(want[2]) == right
    loss.forward(z, target)
    flipped = scores[::-1]  # not the batch the loss saw: counted afresh
    right = int(np.sum(np.argmax(flipped, axis=1) == labels))
    assert int(loss.count_correct(backend.asarray(flipped.astype(float)), target)) == right


def handed_over(loss, pred, target):
    """The count of right rows the loss's kernel made in the forward: given to
    ``count_correct`` once, for those very arrays."""
    count = loss._kept_count(pred, target)
    assert count is not None and loss._kept_count(pred, target) is None
    return count


@pytest.mark.parametrize("classes", [5, 80])
def test_counted_rows_at_nan_and_masked_logits(backend, classes):
    """A logit of -inf off the label (a masked class) gives the loss of a very low one,
    not NaN; a row holding NaN counts as wrong, even where argmax picks its label."""
    entry(backend, "softmax_xent_counted")
    rng = np.random.default_rng(8)
    scores = rng.normal(size=(6, classes))
    labels = np.argmax(scores, axis=1)
    scores[0, labels[0] - 1] = -np.inf
    low = scores.copy()
    low[0, labels[0] - 1] = -1e30
    scores[1:3, 2] = scores[2, 1] = np.nan  # row 1: NaN at its label; row 2: before it
    scores[3, (labels[3] + 1) % classes] = np.nan  # row 3: NaN after its top class
    labels[1:3] = 2
    loss = nb.losses.SoftmaxCrossEntropy(reduction="sum")
    masked = loss.forward(backend.asarray(scores[:1]), backend.asarray(labels[:1]))
    with fused(False):
        want = loss.forward(backend.asarray(low[:1]), backend.asarray(labels[:1]))
    same(backend, masked, want, sums=True)
    z, target = backend.asarray(scores), backend.asarray(labels)
    loss.forward(z, target)
    right = int(np.sum((np.argmax(scores, axis=1) == labels) & ~np.isnan(scores).any(axis=1)))
    assert right == 3 and int(handed_over(loss, z, target)) == right == int(
        loss.count_correct(z, target)
    )


@pytest.mark.parametrize("shape", [(30,), (30, 1), (30, 3)])  # targets; outputs (30, k)
def test_right_outputs_counted_with_bce_match_the_reference(backend, shape):
    """Where the BCE kernel counts the accuracy's right outputs too (CuPy): a logit of 0
    is no 1, a target of 0.5 no 1 either, a row of several outputs counts their share;
    a (batch,) target counts as the (batch, 1) it stands for."""
    entry(backend, "sigmoid_bce_counted")
    rng = np.random.default_rng(7)
    logits = rng.normal(size=(30, shape[1] if len(shape) == 2 else 1))
    logits[:3] = 0.0
    logits[5:7] = np.nan  # a model gone NaN: on neither side, whatever the target
    targets = rng.integers(0, 2, shape).astype(float)
    targets[3:5] = 0.5
    z, t = backend.asarray(logits), backend.asarray(targets)
    loss = nb.losses.BinaryCrossEntropy(from_logits=True)
    got = (loss.forward(z, t), loss.backward(), handed_over(loss, z, t))
    with fused(False):
        want = (loss.forward(z, t), loss.backward(), loss.count_correct(z, t))
    for g, w in zip(got[:2], want[:2], strict=True):
        same(backend, g, w, sums=True)
    sides = (logits > 0) == (targets.reshape(logits.shape) > 0.5)
    right = np.sum(sides & ~np.isnan(logits)) / logits.shape[1]
    assert 0 < right < 27 and float(got[2]) == float(want[2]) == right


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_sigmoid_bce_matches_its_reference(backend, reduction):
    entry(backend, "sigmoid_bce", "sigmoid_bce_counted")
    z = normal(backend, (11, 1), scale=20.0)  # far into both tails
    t = backend.asarray(np.random.default_rng(3).integers(0, 2, (11, 1)).astype(float))
    loss = nb.losses.BinaryCrossEntropy(from_logits=True, reduction=reduction)
    got = (loss.forward(z, t), loss.backward())
    with fused(False):
        want = (loss.forward(z, t), loss.backward())
    for g, w in zip(got, want, strict=True):
        same(backend, g, w)


def test_sigmoid_bce_keeps_a_confident_right_answer(backend):
    """log(1 + exp(-z)) at z = 30 and 40 with t = 1, added after max(z, 0) - z t cancel
    (added before, it was 1.3 % off and 0)."""
    entry(backend, "sigmoid_bce", "sigmoid_bce_counted")
    z, t = backend.asarray([[30.0], [40.0]]), backend.asarray([1.0, 1.0])
    loss = nb.losses.BinaryCrossEntropy(from_logits=True, reduction="sum")
    exact = math.log1p(math.exp(-30.0)) + math.log1p(math.exp(-40.0))
    assert float(nb.to_numpy(loss.forward(z, t))) == pytest.approx(exact, rel=1e-6, abs=0)


OPTIMIZER_CASES = [
    ("sgd", lambda: nb.optim.SGD(lr=0.1)),
    ("momentum", lambda: nb.optim.Momentum(lr=0.1, momentum=0.8)),
    ("adam", lambda: nb.optim.Adam(lr=0.01)),
    ("adam", lambda: EfficientAdam(lr=0.01)),  # scikit-learn's ordering, root 1
]


@pytest.mark.parametrize("calls", ["array by array", "all arrays at once"])
@pytest.mark.parametrize("kernel, make", OPTIMIZER_CASES)
def test_optimizer_update_matches_its_reference(backend, monkeypatch, kernel, make, calls):
    """``Optimizer.step`` takes the multi-array kernel (``adam_many``: torch's) where the
    table has one; the single-array kernel (``adam``) is what the other backends' steps
    and every flat fit's ``step_flat`` call. Each is counted, so the path is the one named."""
    name = kernel if calls == "array by array" else f"{kernel}_many"
    found, used = entry(backend, name), []
    table = kernels.table(backend.xp)
    monkeypatch.setattr(table, name, lambda *args: used.append(name) or found(*args))
    if calls == "array by array":
        monkeypatch.setattr(table, f"{kernel}_many", None)
    start = {"W": normal(backend, (6, 3)), "b": normal(backend, (3,), seed=4)}
    runs = []
    for on in (True, False):
        params = {k: backend.xp.asarray(v, copy=True) for k, v in start.items()}
        opt = make()
        with fused(on):
            for step in range(3):
                grads = {k: normal(backend, v.shape, seed=10 + step) for k, v in start.items()}
                opt.step(params, grads)
        runs.append((params, opt.state_dict()["slots"]))
    assert len(used) == 3 * (len(start) if calls == "array by array" else 1)
    (params, slots), (want_params, want_slots) = runs
    for k in start:
        same(backend, params[k], want_params[k])
    for slot in slots:
        for k in start:
            same(backend, slots[slot][k], want_slots[slot][k])


@pytest.mark.parametrize(
    "kernel, make",
    [
        ("sgd_many", lambda: nb.optim.SGD(lr=0.1)),
        ("momentum_many", lambda: nb.optim.Momentum(lr=0.1)),
        ("adam_many", lambda: nb.optim.Adam(lr=0.01)),
    ],
)
def test_one_call_updates_every_parameter_where_the_backend_can(backend, monkeypatch, kernel, make):
    many, calls = entry(backend, kernel), []
    counted = lambda *args: calls.append(len(args[0])) or many(*args)  # noqa: E731
    monkeypatch.setattr(kernels.table(backend.xp), kernel, counted)
    shapes = {"0.W": (4, 3), "0.b": (3,), "2.W": (3, 2)}
    params = {k: normal(backend, shape, seed=i) for i, (k, shape) in enumerate(shapes.items())}
    before = {k: np.array(nb.to_numpy(v)) for k, v in params.items()}  # copies
    make().step(params, {k: normal(backend, v.shape, seed=9) for k, v in params.items()})
    assert calls == [3]  # one call, for the three parameters
    assert all(not np.array_equal(nb.to_numpy(params[k]), before[k]) for k in params)


@pytest.mark.parametrize("n_in, n_out", [(5, 3), (80, 3), (20, 40)])
def test_dense_gradients_written_into_a_buffer_match_its_reference(backend, n_in, n_out):
    """Dense writes dW = x.T @ dy and db = sum(dy) into the flat buffer's views
    (``matmul_into``, ``sum_into``) where a model is bound to one; torch's CPU takes
    a tall, narrow dW (80 x 3: 64 rows or more) as the transpose of dy.T @ x, into
    the buffer or not: dW is the same bit for bit either way."""
    entry(backend, "matmul_into")
    layer = nb.layers.Dense(n_in, n_out)
    layer.build(backend, nb.Generator(0))
    x, dy = normal(backend, (7, n_in)), normal(backend, (7, n_out), seed=1)
    layer.forward(x)
    want = {
        k: backend.xp.asarray(v, copy=True)
        for k, v in {"dx": layer.backward(dy), **layer.grads}.items()
    }
    size = n_in * n_out
    buffer = backend.xp.zeros((size + n_out,), dtype=backend.dtype, device=backend.device)
    W, b = backend.xp.reshape(buffer[:size], (n_in, n_out)), buffer[size:]
    layer.grad_buffers = {"W": W, "b": b}
    got = {"dx": layer.backward(dy), **layer.grads}
    assert got["W"] is W and got["b"] is b
    for k in want:
        same(backend, got[k], want[k], sums=k == "b")
    np.testing.assert_array_equal(nb.to_numpy(buffer[:size]), nb.to_numpy(want["W"]).ravel())


def test_a_fit_with_fused_kernels_ends_where_the_reference_does(backend):
    """The whole step (tanh and sigmoid layers, L2, softmax cross-entropy, Adam)."""
    entry(backend, "softmax_xent")
    X = np.random.default_rng(5).normal(size=(40, 3))
    y = np.random.default_rng(6).integers(0, 3, 40)
    weights = []
    for on in (True, False):
        model = nb.Sequential(
            [nb.layers.Dense(3, 8), "tanh", nb.layers.Dense(8, 6), "sigmoid",
             nb.layers.Dense(6, 3)],
            backend=backend, seed=0,
        )  # fmt: skip
        with fused(on):
            model.fit(X, y, loss="cross_entropy", optimizer="adam", epochs=3, batch_size=16,
                      l2=0.01, verbose=0, seed=0)  # fmt: skip
        weights.append(model.copy_params())
    for name in weights[0]:
        same(backend, weights[0][name], weights[1][name], sums=True)


@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_numpy_adam_in_slices_matches_its_reference(monkeypatch, layout):
    """NumPy's Adam runs over slices of CHUNK elements in kept scratch rows; with a
    chunk of 7, a 5 x 6 weight crosses four slice edges, the last one short."""
    from nnbackend.backend import kernels_numpy

    monkeypatch.setattr(kernels_numpy, "CHUNK", 7)
    backend = nb.get_backend("numpy", dtype="float64")
    start = normal(backend, (6, 5))
    start = start.T if layout == "transposed" else start
    runs = []
    for on in (True, False):
        params = {"W": np.array(start, copy=True, order="K")}
        opt = nb.optim.Adam(lr=0.01)
        with fused(on):
            for step in range(3):
                opt.step(params, {"W": normal(backend, start.shape, seed=10 + step)})
        runs.append((params["W"], opt.state_dict()["slots"]))
    assert runs[0][0].flags.f_contiguous == (layout == "transposed")
    same(backend, runs[0][0], runs[1][0])
    for slot in ("m", "v"):
        same(backend, runs[0][1][slot]["W"], runs[1][1][slot]["W"])
