"""Edges of nb.save and nb.load (nnbackend.io) that a mutation run of io.py and
atomic.py found no test holding: each test fails under a mutant the rest of the suite
let pass (the comments name them)."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest

import nnbackend as nb
from nnbackend import atomic
from nnbackend.layers import Dense, Identity
from tests.test_checkpoint_edges import open_descriptors
from tests.test_testing import ScaledByK


def host(a) -> np.ndarray:
    return nb.to_numpy(a)


def files_in(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


class Scaled(ScaledByK):
    """A layer of one's own with one float setting, k, which its config() holds."""

    def config(self):
        return {**super().config(), "k": self.k}


class WeightedMSE(nb.losses.MSE):
    """A loss of one's own with one float setting, weight."""

    def __init__(self, weight: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.weight = weight

    def config(self):
        return {**super().config(), "weight": self.weight}


class CappedSGD(nb.optim.SGD):
    """An optimizer of one's own with one float setting, cap."""

    def __init__(self, lr=0.1, cap: float = 1.0):
        super().__init__(lr)
        self.cap = cap

    def _hyper(self):
        return {**super()._hyper(), "cap": self.cap}


class Rows(Identity):
    """A layer whose weights W have ``n`` rows of 3, zero rows allowed."""

    def __init__(self, n: int = 0):
        super().__init__()
        self.n = n

    def build(self, backend, rng):
        super().build(backend, rng)
        self.params["W"] = backend.asarray(np.arange(self.n * 3.0).reshape(self.n, 3))
        self.grads["W"] = backend.asarray(np.zeros((self.n, 3)))

    def param_shapes(self):
        return {"W": (self.n, 3)}

    def config(self):
        return {**super().config(), "n": self.n}


OWN = {"Scaled": Scaled, "WeightedMSE": WeightedMSE, "CappedSGD": CappedSGD, "Rows": Rows}


def test_a_save_without_an_epoch_loads_with_none(tmp_path):
    """No epoch given, none comes back (not 0, which would skip epoch 0 of a resume)."""
    # kills io 53 (the missing epoch written as 0, not -1)
    model = nb.Sequential([Dense(2, 2)], seed=0)
    path = nb.save(model, tmp_path / "m.h5", optimizer=nb.optim.SGD(0.1))
    loaded, optimizer, epoch = nb.load(path, with_optimizer=True)
    assert epoch is None and isinstance(optimizer, nb.optim.SGD)
    assert nb.restore(model, path) is None


SETTING_OF = {
    "layer": r"the model cannot be saved: its config\(\) sets config\['layers'\]\[1\]\['k'\]",
    "loss": r"the loss cannot be saved: its config\(\) sets config\['weight'\]",
    "optimizer": r"the optimizer cannot be saved: its config\(\) sets config\['cap'\]",
}


@pytest.mark.parametrize("part", ["layer", "loss", "optimizer"])
def test_a_setting_json_cannot_hold_keeps_the_old_file(tmp_path, part):
    """An infinite setting in a layer's, the loss's or the optimizer's config is
    refused before the write, naming the setting: the file there stays as it was,
    and loads."""
    # kills io 35, 40, 47 (allow_nan=True: Infinity written over the old file, which
    # nb.load then refused as "not valid JSON"), with check_rebuilds' JSON check undone
    path = tmp_path / "m.h5"
    nb.save(nb.Sequential([Dense(2, 2), Scaled(2.0)], seed=0), path)
    before = path.read_bytes()
    inf = float("inf")
    model = nb.Sequential([Dense(2, 2), Scaled(inf if part == "layer" else 3.0)], seed=1)
    model.loss = WeightedMSE(inf if part == "loss" else 1.0)
    optimizer = CappedSGD(0.1, inf if part == "optimizer" else 1.0)
    with pytest.raises(ValueError, match=SETTING_OF[part] + " to inf; a file holds no inf or NaN"):
        nb.save(model, path, optimizer=optimizer)
    assert path.read_bytes() == before
    assert nb.load(path, custom_objects=OWN).layers[1].k == 2.0


def test_a_numpy_scalar_setting_is_named_with_the_way_to_mend_it(tmp_path):
    """np.float32(2.0) in a layer's config is no JSON: the save names the setting and
    says float(x), before anything is written."""
    model = nb.Sequential([Dense(2, 2), Scaled(np.float32(2.0))], seed=0)
    said = SETTING_OF["layer"] + r" to np.float32\(2.0\); .*float\(x\) makes a NumPy scalar"
    with pytest.raises(TypeError, match=said):
        nb.save(model, tmp_path / "m.h5")
    assert list(tmp_path.iterdir()) == []


def test_a_setting_that_holds_itself_or_an_odd_key_is_named(tmp_path):
    """A list holding itself is named where it holds itself (the search for the bad
    setting went round it to a RecursionError); a dict key of a NumPy integer is named
    as a key, not its whole dict as a value."""
    itself = [1.0]
    itself.append(itself)
    keyed = {"a": 1, np.int64(0): "x"}
    cases = [
        (itself, r"holds config\['layers'\]\[1\]\['k'\]\[1\] inside itself", ValueError),
        (keyed, r"has the key np.int64\(0\) in config\['layers'\]\[1\]\['k'\]", TypeError),
    ]
    for k, says, error in cases:
        with pytest.raises(error, match="the model cannot be saved: its config\\(\\) " + says):
            nb.save(nb.Sequential([Dense(2, 2), Scaled(k)], seed=0), tmp_path / "m.h5")
    assert list(tmp_path.iterdir()) == []


def test_a_setting_no_load_would_read_is_refused_at_the_save(tmp_path):
    """Nested 70 deep, 2 MB long, or with an int key (which JSON writes as "0", to
    load as another key): each was saved, to be refused or changed at the load; a
    callback's state alike (nested past Python's own limit, a RecursionError)."""
    deep = 1.0
    for _ in range(70):
        deep = [deep]
    cases = [
        (deep, ValueError, r"its config\(\) is nested deeper than 64 levels"),
        ("x" * 2_000_000, ValueError, r"its config\(\) is \d+ characters long, more than"),
        ({0: 2.0}, TypeError, r"its config\(\) has the key 0 in config\['layers'\]\[1\]\['k'\];"),
    ]
    for k, error, says in cases:
        with pytest.raises(error, match="the model cannot be saved: " + says):
            nb.save(nb.Sequential([Dense(2, 2), Scaled(k)], seed=0), tmp_path / "m.h5")
    deepest = 1.0
    for _ in range(5000):  # past Python's recursion limit
        deepest = [deepest]
    model = nb.Sequential([Dense(2, 2)], seed=0)
    for state, error, says in [
        ({"v": deep}, ValueError, r"is nested deeper than 64 levels"),
        ({"v": deepest}, ValueError, r"is nested deeper than 64 levels"),
        ({"v": {0: 1}}, TypeError, r"has the key 0 in state\['v'\]; JSON's keys are strings"),
    ]:
        with pytest.raises(
            error, match=r"callback 'Own' cannot be saved: its get_state\(\) " + says
        ):
            nb.save(model, tmp_path / "m.h5", callbacks={"Own": state})
    assert list(tmp_path.iterdir()) == []
    shallow = [[[1.0]]]  # and what a load reads is saved as before
    path = nb.save(nb.Sequential([Dense(2, 2), Scaled(shallow)], seed=0), tmp_path / "m.h5")
    assert nb.load(path, custom_objects=OWN).layers[1].k == shallow


def test_a_callback_state_a_resume_would_refuse_is_refused_at_the_save(tmp_path):
    """Copies under "arrays" of arrays the model does not have, or of other shapes,
    were written, then refused by the resume; a state or "arrays" that is no dict gave
    a bare AttributeError. A state that holds itself is named where it does."""
    path = nb.save(nb.Sequential([Dense(2, 2)], seed=0), tmp_path / "m.h5")
    before = path.read_bytes()
    model = nb.Sequential([Dense(2, 2)], seed=1)
    itself = {"a": 1}
    itself["me"] = itself
    what = r"callback 'Own' cannot be saved: its get_state\(\)"
    for state, error, says in [
        ({"arrays": {"w": np.ones(2)}}, ValueError, r"\['arrays'\] names 'w', which the model"),
        (
            {"arrays": {"0.W": np.ones(3)}},
            ValueError,
            r"\['arrays'\]\['0.W'\] has the shape \(3,\), where 0.W has \(2, 2\)",
        ),
        ({"arrays": [1, 2]}, TypeError, r"\['arrays'\] is a list, not a dict"),
        ([1, 2], TypeError, r" gives a list, not a dict"),
        (itself, ValueError, r" holds state\['me'\] inside itself"),
    ]:
        with pytest.raises(error, match=what + says):
            nb.save(model, path, callbacks={"Own": state})
        assert path.read_bytes() == before
    copies = {"arrays": {"0.b": np.full(2, 0.5)}, "count": 3}
    nb.save(model, path, callbacks={"Own": copies})
    saved = nb.io.restore_checkpoint(model, path).callbacks["Own"]
    assert saved["count"] == 3 and host(saved["arrays"]["0.b"]).tolist() == [0.5, 0.5]


def test_a_callback_state_without_arrays_saves_and_loads(tmp_path):
    """A callback's state need not hold "arrays": it comes back with none."""
    # kills io 72 (None.items() where "arrays" is missing)
    model = nb.Sequential([Dense(2, 2)], seed=0)
    path = nb.save(model, tmp_path / "m.h5", callbacks={"Counter": {"count": 3}})
    saved = nb.io.restore_checkpoint(model, path)
    assert saved.callbacks == {"Counter": {"count": 3, "arrays": {}}}


def test_weights_with_no_rows_save_and_load(backend, tmp_path):
    """A (0, 3) weight of a layer of one's own is saved (with no chunks: HDF5 takes no
    chunk of 0 rows) and loads as (0, 3), beside the others' values."""
    # kills io 100 (max(parts, 0): a division by zero), 103-106 (chunks of 0 rows)
    model = nb.Sequential([Dense(2, 3), Rows(0)], backend=backend, seed=0)
    path = nb.save(model, tmp_path / "m.h5")
    loaded = nb.load(path, backend=backend, custom_objects=OWN)
    assert host(loaded.params["1.W"]).shape == (0, 3)
    np.testing.assert_array_equal(host(loaded.params["0.W"]), host(model.params["0.W"]))


def test_weights_whose_rows_pass_a_mebibyte_save_and_load(backend, tmp_path):
    """W of Dense(2, 300000), float32: rows of 1.2 MB, more than a chunk of whole rows
    may hold, go in HDF5's own chunks, and load exactly."""
    # kills io 110 (chunks=False with fletcher32: "Chunked format required")
    model = nb.Sequential([Dense(2, 300_000)], backend=backend, seed=0)
    path = nb.save(model, tmp_path / "m.h5")
    loaded = nb.load(path, backend=backend)
    w = host(loaded.params["0.W"])
    assert w.shape == (2, 300_000) and w.dtype == np.float32
    assert w.tobytes() == host(model.params["0.W"]).tobytes()


def test_a_flipped_bit_in_the_weights_fails_the_load(tmp_path):
    """Every array carries a checksum: one bit flipped in 0.W's stored data makes the
    load fail, not give other weights."""
    # kills io 112 (fletcher32=False: the damaged file loaded)
    path = nb.save(nb.Sequential([Dense(4, 8)], seed=0), tmp_path / "m.h5")
    with h5py.File(path, "r") as f:
        start = f["weights/0.W"].id.get_chunk_info(0).byte_offset
    data = bytearray(path.read_bytes())
    data[start + 5] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(nb.CheckpointError, match="damaged"):
        nb.load(path)


def test_an_unknown_backend_is_named_not_blamed_on_the_file(tmp_path):
    """nb.load(backend="nosuch") gives the backend's own error, not a CheckpointError
    saying the file "holds float32 weights"."""
    # kills io 174 (the backend checked only once the file was read)
    path = nb.save(nb.Sequential([Dense(2, 2)], seed=0), tmp_path / "m.h5")
    with pytest.raises(ValueError, match="unknown backend 'nosuch'") as err:
        nb.load(path, backend="nosuch")
    assert not isinstance(err.value, nb.CheckpointError)


# --- atomic.py: the checks before a save, and the write itself --------------------


def test_a_checkpoint_that_is_no_path_is_refused_by_name():
    """fit(checkpoint=123) is refused in fit's words before training, not with an
    UnboundLocalError from the path check."""
    # kills atomic 35 (the TypeError of check_can_write dropped)
    X, Y = nb.datasets.make_moons(12, noise=0.2, seed=0)
    model = nb.Sequential([Dense(2, 2)], seed=0)
    before = host(model.params["0.W"]).copy()
    with pytest.raises(
        TypeError, match=r"checkpoint must be a file's path \(str or Path\), not 123"
    ):
        model.fit(X, Y, loss="cross_entropy", optimizer="sgd", epochs=1, verbose=0, checkpoint=123)
    np.testing.assert_array_equal(host(model.params["0.W"]), before)  # nothing trained


def test_a_temporary_file_swept_before_its_lock_is_replaced_by_another(tmp_path, monkeypatch):
    """A second save's sweep may remove a new temporary file before its writer locks
    it: the writer then takes another name, and its save goes through."""
    # kills atomic 80, 81 (the lock alone trusted) and 132 (a vanished file taken as
    # still there): the bytes went to the unlinked file and the rename failed; and
    # atomic 89 (the swept file's descriptor left open)
    path, swept, real_lock = tmp_path / "m.h5", [], atomic._lock

    def swept_first(fd, blocking):
        if blocking and not swept:
            swept.extend(atomic.leftovers(path))
            for temporary in swept:
                temporary.unlink()
        return real_lock(fd, blocking)

    monkeypatch.setattr(atomic, "_lock", swept_first)
    model = nb.Sequential([Dense(2, 2)], seed=3)
    before = open_descriptors()
    nb.save(model, path)
    assert len(swept) == 1 and files_in(tmp_path) == ["m.h5"]
    assert open_descriptors() <= before  # the swept file's descriptor closed too
    assert host(nb.load(path).params["0.W"]).tobytes() == host(model.params["0.W"]).tobytes()


def test_a_save_sweeps_only_its_own_paths_leftovers(tmp_path):
    """A save to m.h5 removes a killed save's leftover of m.h5, not that of m.x.h5."""
    # kills atomic 136 (rsplit(".", 3): the prefix ".m." took in m.x.h5's leftovers)
    # and 158 (the leftover's descriptor left open)
    own, other = ".m.h5.0123abcd.nnbackend-tmp", ".m.x.h5.0123abcd.nnbackend-tmp"
    for name in (own, other):
        (tmp_path / name).write_bytes(b"left by a killed save")
    before = open_descriptors()
    nb.save(nb.Sequential([Dense(2, 2)], seed=0), tmp_path / "m.h5")
    assert files_in(tmp_path) == sorted(["m.h5", other])
    assert open_descriptors() <= before  # the leftover, opened to test its lock, closed


def test_a_folder_that_cannot_be_listed_still_takes_a_save(tmp_path, monkeypatch):
    """A folder one may write in but not list (mode -wx): the sweep finds nothing to
    remove, and the save stands."""

    # kills atomic 140 (leftovers gave None, and the sweep a TypeError after the write)
    def refused(folder):
        raise PermissionError(13, "Permission denied", str(folder))

    path = tmp_path / "m.h5"
    monkeypatch.setattr(atomic.os, "listdir", refused)
    model = nb.Sequential([Dense(2, 2)], seed=4)
    assert nb.save(model, path) == path
    assert atomic.leftovers(path) == []
    monkeypatch.undo()
    assert host(nb.load(path).params["0.W"]).tobytes() == host(model.params["0.W"]).tobytes()


def test_a_link_at_the_target_lends_the_new_file_none_of_its_targets_permissions(tmp_path):
    """A link planted at the path, to a world-writable file, is replaced by a file of
    the usual permissions (0o666 less the umask), not the link target's 0o777."""
    # kills atomic 66 (the mode read through the link: the checkpoint came out 0o777)
    umask = os.umask(0o022)
    os.umask(umask)
    elsewhere = tmp_path / "open.txt"
    elsewhere.write_text("anyone's")
    elsewhere.chmod(0o777)
    link = tmp_path / "m.h5"
    link.symlink_to(elsewhere)
    nb.save(nb.Sequential([Dense(2, 2)], seed=0), link)
    assert not link.is_symlink() and link.stat().st_mode & 0o777 == 0o666 & ~umask
    assert elsewhere.read_text() == "anyone's" and elsewhere.stat().st_mode & 0o777 == 0o777


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_link_to_a_fifo_at_the_target_is_replaced_like_any_link(tmp_path):
    """The refusal of a FIFO looks at the path itself: a link there to a FIFO is a link,
    replaced by the file, the FIFO left as it was."""
    # kills atomic 59 (the stat followed the link, and the save was refused)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "m.h5"
    link.symlink_to(fifo)
    nb.save(nb.Sequential([Dense(2, 2)], seed=0), link)
    assert not link.is_symlink() and nb.load(link).config()["layers"][0]["n_in"] == 2
    assert fifo.is_fifo()


class Wrapping(nb.optim.Optimizer):
    """An optimizer of one's own around another, whose config() writes it as a config."""

    def __init__(self, inner="sgd", lr=0.1):
        super().__init__(lr)
        self.inner = nb.optim.get(inner)

    def update(self, params, name, grad, lr):
        self.inner.update(params, name, grad, lr)

    def _hyper(self):
        return {"inner": self.inner.config()}


def test_a_resume_keeps_a_wrapped_optimizer_an_optimizer(tmp_path):
    """take_settings put config()'s dict in place of the optimizer it wraps: the first
    step after nb.restore or fit(resume=True) failed in the user's update."""
    X = np.random.default_rng(0).normal(size=(16, 2))
    y = (X[:, 0] > 0).astype(np.int64)
    path, own = tmp_path / "w.h5", {"Wrapping": Wrapping}

    def fit(epochs, resume=False, checkpoint=path):
        model = nb.Sequential([Dense(2, 2)], seed=0)
        model.fit(X, y, loss="cross_entropy", optimizer=Wrapping(nb.optim.SGD(0.1)),
                  epochs=epochs, checkpoint=checkpoint, resume=resume, verbose=0)  # fmt: skip
        return model

    whole = host(fit(4, checkpoint=tmp_path / "whole.h5").params["0.W"])
    fit(2)
    resumed = fit(4, resume=True)
    assert isinstance(resumed.optimizer.inner, nb.optim.SGD)
    np.testing.assert_array_equal(host(resumed.params["0.W"]), whole)
    opt = Wrapping(nb.optim.SGD(0.5))
    nb.restore(nb.Sequential([Dense(2, 2)], seed=0), path, opt, custom_objects=own)
    assert isinstance(opt.inner, nb.optim.SGD) and opt.inner.lr == 0.1


def test_a_rate_a_callback_ran_down_to_0_saves_and_loads(tmp_path):
    """The setter takes 0 (a decay run out), the constructor does not: nb.save refused
    the optimizer, telling the user to mend a built-in Adam's config(), and a fit with
    checkpoint= and a linear decay to 0 failed at its last save."""
    X = np.random.default_rng(0).normal(size=(16, 2))
    y = (X[:, 0] > 0).astype(np.int64)

    def decay(epoch, logs, model):
        model.optimizer.lr = 0.1 * (1 - (epoch + 1) / 3)

    model, each_epoch = nb.Sequential([Dense(2, 2)], seed=0), nb.callbacks.LambdaCallback(decay)
    model.fit(X, y, loss="cross_entropy", optimizer=nb.optim.Adam(0.1), epochs=3, verbose=0,
              checkpoint=tmp_path / "run.h5", callbacks=[each_epoch])  # fmt: skip
    _, back, _ = nb.load(tmp_path / "run.h5", with_optimizer=True)
    assert back.lr == 0.0 and back.iterations == model.optimizer.iterations
    with pytest.raises(ValueError, match="learning rate must be a finite number above 0"):
        nb.optim.Adam(0.0)  # a rate of 0 by hand is still a mistake


def test_a_save_leaves_the_leftovers_of_a_longer_name_alone(tmp_path):
    """Mutation run: m.h5.bak's dead temporary file was taken for m.h5's and removed
    (the rule held only for m.x.h5, which the prefix alone told apart)."""
    other = tmp_path / ".m.h5.bak.0123abcd.nnbackend-tmp"
    other.write_bytes(b"left by a killed save to m.h5.bak")
    assert atomic.leftovers(tmp_path / "m.h5") == []
    assert atomic.leftovers(tmp_path / "m.h5.bak") == [other]
    nb.save(nb.Sequential([Dense(2, 2)], seed=0), tmp_path / "m.h5")
    assert other.exists()


class OutOfMemoryError(RuntimeError):
    """Named as torch's (torch.OutOfMemoryError, a RuntimeError)."""


class OutOfMemoryError2(MemoryError):
    """Named as CuPy's (cupy.cuda.memory.OutOfMemoryError, a MemoryError)."""


OutOfMemoryError2.__name__ = "OutOfMemoryError"


@pytest.mark.parametrize("raised", [OutOfMemoryError, OutOfMemoryError2])
def test_a_gpu_out_of_memory_while_loading_is_not_called_damage(tmp_path, monkeypatch, raised):
    """A good checkpoint loaded onto a full GPU was 'damaged' (torch's error is a
    RuntimeError, which h5py raises for damage): one may delete it on that word."""
    from nnbackend import checkpoint

    path = nb.save(nb.Sequential([Dense(2, 3)], seed=0), tmp_path / "good.h5")

    def full(backend, host):
        raise raised("CUDA out of memory. Tried to allocate 2.00 MiB")

    monkeypatch.setattr(checkpoint, "_to_backend", full)
    with pytest.raises(raised, match="^CUDA out of memory"):
        nb.load(path)
    with pytest.raises(raised, match="^CUDA out of memory"):
        nb.restore(nb.Sequential([Dense(2, 3)]), path)
    monkeypatch.setattr(
        checkpoint, "_to_backend", lambda b, h: (_ for _ in ()).throw(RuntimeError("x"))
    )
    with pytest.raises(nb.io.CheckpointError, match="cannot read it, it is damaged"):
        nb.load(path)  # any other RuntimeError of the read: damage, as h5py says it


def test_a_cpu_allocator_out_of_memory_while_loading_is_memory_not_damage(tmp_path, monkeypatch):
    """torch's CPU allocator raises a RuntimeError: it was 'cannot read it, it is damaged'."""
    from nnbackend import checkpoint

    path = nb.save(nb.Sequential([Dense(2, 3)], seed=0), tmp_path / "good.h5")

    def full(backend, host):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate")

    monkeypatch.setattr(checkpoint, "_to_backend", full)
    with pytest.raises(nb.io.CheckpointError, match="declares more data than fits in memory"):
        nb.load(path)
