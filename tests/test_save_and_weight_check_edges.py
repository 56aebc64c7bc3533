"""Edges of the checks of a save's target, a metric's weight, the model's shapes and the
settings warnings that a mutation run found no test holding: each test fails under a
mutant the rest of the suite let pass."""

from __future__ import annotations

import os
import stat

import pytest

import nnbackend as nb
from nnbackend.layers import Dense, Tanh

X_BLOBS, Y_BLOBS = nb.datasets.make_blobs(160, centers=8, cluster_std=3.0, seed=0)


def classifier(backend):
    return nb.Sequential([Dense(2, 16), Tanh(), Dense(16, 8)], backend=backend, seed=0)


class Given(nb.metrics.Metric):
    """A metric of one's own: full batches of 48 give (1, 48), the short last one
    ``last(out)``."""

    name = "given"

    def __init__(self, last):
        self.last = last

    def batch(self, out, target, loss):
        one = out[0, 0] * 0 + 1  # a 0-d array of the outputs' library and device
        return (one, 48) if out.shape[0] == 48 else self.last(out, one)


def test_a_metric_batch_of_weight_zero_is_taken_and_counts_for_nothing(backend):
    """A weight of 0 (int or float) is a number >= 0: the batch is taken and adds
    nothing, the epoch's value sum(weight * value) / rows being the full batches' 144 /
    160, not a TypeError."""
    fit = dict(loss="cross_entropy", optimizer="sgd", batch_size=48, epochs=1, verbose=0)
    assert X_BLOBS.shape[0] % 48  # the last batch is short
    for zero in (0, 0.0):
        metric = Given(lambda out, one, z=zero: (one * 100, z))
        history = classifier(backend).fit(X_BLOBS, Y_BLOBS, metrics=[metric], **fit)
        assert history["given"] == [pytest.approx(144 / 160)]


def test_a_metric_batch_weight_between_zero_and_one_is_taken(backend):
    """A weight of 0.5 (the value stands for half a row) is a number >= 0, taken:
    sum(weight * value) / rows."""
    fit = dict(loss="cross_entropy", optimizer="sgd", batch_size=48, epochs=1, verbose=0)
    metric = Given(lambda out, one: (one * 3, 0.5))
    history = classifier(backend).fit(X_BLOBS, Y_BLOBS, metrics=[metric], **fit)
    full = X_BLOBS.shape[0] // 48
    assert history["given"][0] == pytest.approx((full * 48 + 3 * 0.5) / X_BLOBS.shape[0])


def test_a_metric_batch_of_three_parts_after_the_first_is_named_by_its_batch(backend):
    """A later batch that gives (value, weight, extra) is no pair: refused as a
    TypeError naming the key, epoch and batch, not Python's unpacking ValueError."""
    fit = dict(loss="cross_entropy", optimizer="sgd", batch_size=48, epochs=1, verbose=0)
    last = X_BLOBS.shape[0] // 48
    for stray in ((lambda out, one: (one, 1, 1)), (lambda out, one: (one,))):
        said = rf"^'given' of epoch 0, batch {last}, is \(.*\): a metric's batch returns"
        with pytest.raises(TypeError, match=said):
            classifier(backend).fit(X_BLOBS, Y_BLOBS, metrics=[Given(stray)], **fit)


def test_a_save_over_a_dangling_link_gets_a_new_files_mode(tmp_path):
    """A link to no file gives no bits to copy: the new file is a new file's 0o666,
    less the umask (0 here), not a narrower guess."""
    from nnbackend.atomic import atomic_write

    link = tmp_path / "model.h5"
    link.symlink_to(tmp_path / "gone.h5")
    old = os.umask(0)
    try:
        atomic_write(link, b"new")
    finally:
        os.umask(old)
    assert not link.is_symlink() and link.read_bytes() == b"new"
    assert stat.S_IMODE(link.stat().st_mode) == 0o666
    assert not (tmp_path / "gone.h5").exists()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
def test_a_failed_atomic_write_leaves_no_descriptor_open(tmp_path):
    """Data that is not bytes-like fails inside the write: the temporary file is
    removed and its descriptor closed, however many times it fails."""
    from nnbackend.atomic import atomic_write

    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        with pytest.raises(TypeError):
            atomic_write(tmp_path / "model.h5", object())
    assert len(os.listdir("/proc/self/fd")) == before
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("bits", [0o444, 0o555, 0o400])
def test_a_file_with_no_write_bit_is_refused_as_write_protected(tmp_path, bits):
    """No write bit for anyone (read or execute bits aside): refused before the
    save, the file left as it was."""
    path = tmp_path / "best.h5"
    path.write_bytes(b"")
    path.chmod(bits)
    with pytest.raises(PermissionError, match=r"is write-protected \(mode 0o"):
        nb.save(nb.Sequential([Dense(2, 2)], seed=0), path)
    assert path.read_bytes() == b"" and stat.S_IMODE(path.stat().st_mode) == bits


@pytest.mark.parametrize("bits", [0o644, 0o464, 0o446])
def test_a_file_with_any_write_bit_may_be_replaced(tmp_path, bits):
    """A write bit for the owner, the group or others: an empty file there is
    replaced by the checkpoint, which keeps its bits."""
    path = tmp_path / "best.h5"
    path.write_bytes(b"")
    path.chmod(bits)
    nb.save(nb.Sequential([Dense(2, 2)], seed=0), path)
    assert path.stat().st_size > 0 and stat.S_IMODE(path.stat().st_mode) == bits


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
def test_a_read_only_fifo_is_refused_as_no_file_not_as_write_protected(tmp_path):
    """A FIFO (mode 0o444) is no file a save replaces: the device/FIFO refusal, a
    ValueError, not the write-protection one."""
    path = tmp_path / "pipe"
    os.mkfifo(path, 0o444)
    with pytest.raises(ValueError, match="is a device, FIFO or socket, not a file"):
        nb.save(nb.Sequential([Dense(2, 2)], seed=0), path)


def test_a_save_by_hand_is_resumed_from_as_a_run_that_was_not_stopped(tmp_path):
    """nb.save's default stopped=False: a fit resumed from it trains the epochs left."""
    x, y = nb.datasets.make_moons(40, seed=0)
    fit = dict(loss="cross_entropy", optimizer="sgd", verbose=0)
    model = nb.Sequential([Dense(2, 4), "tanh", Dense(4, 2)], seed=0)
    model.fit(x, y, epochs=1, **fit)
    path = nb.save(model, tmp_path / "run.h5", model.optimizer, epoch=0)
    again = nb.Sequential([Dense(2, 4), "tanh", Dense(4, 2)], seed=0)
    history = again.fit(x, y, epochs=3, checkpoint=path, resume=True, **fit)
    assert len(history["loss"]) == 2


class _OnlyLayers:
    layers: list = []


class _OnlyParams:
    params: dict = {}


@pytest.mark.parametrize("thing", [_OnlyLayers(), _OnlyParams()])
def test_save_refuses_a_thing_with_layers_or_params_but_not_both(tmp_path, thing):
    """A model has both layers and params: half of one is refused by nb.save's own
    TypeError, before any file is written."""
    with pytest.raises(TypeError, match=r"^nb.save\(model, path\) saves a model, not "):
        nb.save(thing, tmp_path / "model.h5")
    assert os.listdir(tmp_path) == []


def test_restore_with_an_optimizer_from_a_file_of_no_optimizer_takes_the_weights(tmp_path):
    """A file saved without an optimizer has no state to give: restore(model, path,
    optimizer) takes the weights and leaves the optimizer as it was, no refusal, but a
    warning that it starts afresh."""
    saved = nb.Sequential([Dense(2, 2)], seed=0)
    path = nb.save(saved, tmp_path / "weights.h5", epoch=4)
    model = nb.Sequential([Dense(2, 2)], seed=1)
    optimizer = nb.optim.SGD(lr=0.25)
    with pytest.warns(UserWarning, match="holds no optimizer state"):
        assert nb.restore(model, path, optimizer) == 4
    for name, value in saved.params.items():
        assert (nb.to_numpy(model.params[name]) == nb.to_numpy(value)).all()
    assert optimizer.lr == 0.25


def test_an_architecture_that_differs_outside_its_layers_is_named_by_its_key():
    """Same layers, another model-level setting: the message names that key with both
    values, and no key that is the same (nor "layers")."""
    from nnbackend.io import _difference

    layers = [{"type": "Dense", "n_in": 2, "n_out": 2}]
    saved = {"type": "Wide", "layers": layers, "seed": 1, "name": "a"}
    mine = {"type": "Sequential", "layers": list(layers), "seed": 1, "name": "b"}
    assert _difference(saved, mine) == (
        "its type is 'Wide', the model's 'Sequential', its name is 'a', the model's 'b'"
    )
    assert _difference({"layers": layers}, {"layers": layers, "extra": 2}) == (
        "its extra is None, the model's 2"
    )


@pytest.mark.parametrize("optimizer", ["sgd", {"type": "SGD"}])
def test_save_refuses_an_optimizer_given_by_name_before_writing(tmp_path, optimizer):
    """nb.save saves an Optimizer's state: a name or config is refused by its own
    TypeError, and no file is written."""
    with pytest.raises(TypeError, match="^optimizer is the Optimizer whose state to save"):
        nb.save(nb.Sequential([Dense(2, 2)], seed=0), tmp_path / "m.h5", optimizer)
    assert os.listdir(tmp_path) == []


def test_settings_unwarned_hides_its_warnings_and_uses_none_up():
    """A config warning inside settings_unwarned (the checkers' saves) is not shown and
    not marked as given: the same warning after it is still shown, once; one given
    before it stays given."""
    import warnings

    from nnbackend import checkpoint_sizes

    key, earlier = ("test_settings_unwarned", "a setting"), ("test_settings_unwarned", "seen")
    try:
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            checkpoint_sizes._warn_once(earlier, "before")
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            with checkpoint_sizes.settings_unwarned():
                checkpoint_sizes._warn_once(key, "inside")
            assert seen == []
            checkpoint_sizes._warn_once(key, "after")
            checkpoint_sizes._warn_once(key, "again")
            checkpoint_sizes._warn_once(earlier, "before, again")
        assert [str(w.message) for w in seen] == ["after"]
        assert all(w.category is UserWarning for w in seen)
    finally:
        checkpoint_sizes._WARNED.discard(key)
        checkpoint_sizes._WARNED.discard(earlier)


def test_a_metric_whose_first_batch_gives_three_parts_is_refused_as_no_pair(backend):
    """(value, weight, extra) at the first batch: the metric's TypeError asking for a
    pair, not Python's unpacking ValueError."""
    fit = dict(loss="cross_entropy", optimizer="sgd", epochs=1, verbose=0)
    metric = Given(lambda out, one: (one, 1, 1))
    metric.batch = lambda out, target, loss: (out[0, 0] * 0 + 1, 1, 1)
    with pytest.raises(TypeError, match=r"^Given.batch returned .*: it returns a pair"):
        classifier(backend).fit(X_BLOBS, Y_BLOBS, metrics=[metric], **fit)


@pytest.mark.parametrize("weight", [-1, float("nan"), float("inf")])
def test_a_first_batch_weight_below_zero_or_not_finite_is_refused_by_the_metric(weight):
    """The first batch is checked by the metric's class name: a weight of -1, NaN or
    inf is no count of rows, refused before the epoch ends."""
    metric = Given(lambda out, one: (one, 1))
    metric.batch = lambda out, target, loss: (out[0, 0] * 0 + 1, weight)
    said = rf"^Given.batch returned .*: its weight is {weight!r}: the rows the value"
    with pytest.raises(TypeError, match=said):
        classifier("numpy").fit(
            X_BLOBS, Y_BLOBS, loss="cross_entropy", optimizer="sgd", epochs=1, verbose=0,
            metrics=[metric],
        )  # fmt: skip


def test_a_metric_of_ones_own_named_loss_is_refused():
    """ "loss" is the History's key of the loss: a metric named so is refused."""

    class Named(Given):
        name = "loss"

    with pytest.raises(ValueError, match="distinct names other than 'loss'"):
        classifier("numpy").fit(
            X_BLOBS, Y_BLOBS, loss="cross_entropy", optimizer="sgd", epochs=1, verbose=0,
            metrics=[Named(lambda out, one: (one, 1))],
        )  # fmt: skip


class _Doubles(nb.layers.Layer):
    """One's own layer with its own (here: wrong) output_shape."""

    def forward(self, x, training=True):
        return x

    def output_shape(self, input_shape):
        return (input_shape[0] * 2,)


def test_an_input_shape_that_layer_0_refuses_is_named_as_the_input_shape():
    """Layer 0's refusal names input_shape, not a layer before it (there is none)."""
    with pytest.raises(ValueError, match=r"^input_shape does not fit layer 0: Dense\(.* not 4$"):
        nb.Sequential([Dense(3, 2)], input_shape=(4,))


def test_a_layer_with_its_own_output_shape_gets_no_hint_of_the_default():
    """The hint that Layer's default output_shape may be at fault is for layers that
    keep it: one that defines its own gets the plain mismatch."""
    with pytest.raises(
        ValueError, match=r"^layer 1, _Doubles\(\), gives 8 features .*\(layer 2\)$"
    ):
        nb.Sequential([Dense(4, 4), _Doubles(), Dense(4, 1)])
