"""What a save may replace: a checkpoint, an empty file or a link, and nothing else.

A fit given a checkpoint path and no ``resume=True`` replaced whatever was there (a
data set, notes, a write-protected best model) without a word: the save renames its
file over the path, which needs no right to the old file."""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest

import nnbackend as nb
from nnbackend.layers import Dense

X, Y = nb.datasets.make_moons(40, seed=0)


def net() -> nb.Sequential:
    return nb.Sequential([Dense(2, 4), "tanh", Dense(4, 2)], seed=0)


def fit_with(path, how: str) -> list[str]:
    """Save ``net()`` to ``path`` by ``how``: nb.save, fit's checkpoint= or a callback;
    returns the warnings (a fit not resuming warns of a checkpoint it replaces)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if how == "nb.save":
            nb.save(net(), path)
        else:
            saving = nb.callbacks.ModelCheckpoint(path)
            given = {"checkpoint=": dict(checkpoint=path), "callbacks=": dict(callbacks=[saving])}
            given = given[how]
            net().fit(X, Y, loss="cross_entropy", optimizer="sgd", epochs=1, verbose=0, **given)
    return [str(w.message) for w in caught]


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


HOWS = ["nb.save", "checkpoint=", "callbacks="]


@pytest.mark.parametrize("how", HOWS)
def test_a_file_that_is_no_checkpoint_is_not_replaced(tmp_path, how):
    """A data set in HDF5 and a text file are refused by name, left byte for byte, and
    no temporary file stays beside them."""
    data, notes = tmp_path / "moons.h5", tmp_path / "notes.txt"
    with h5py.File(data, "w") as f:
        f["X"] = X
    notes.write_text("my notes\n")
    before = {p: digest(p) for p in (data, notes)}
    for path, what in ((data, "it is an HDF5 file of other data"), (notes, "cannot read file")):
        with pytest.raises(
            nb.CheckpointError, match=rf"holds a file that is not an nnbackend checkpoint \({what}"
        ):
            fit_with(path, how)
    assert {p: digest(p) for p in (data, notes)} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["moons.h5", "notes.txt"]


@pytest.mark.parametrize("how", HOWS)
def test_a_checkpoint_an_empty_file_or_a_link_is_replaced(tmp_path, how):
    """What a save may replace: its own kind, an empty file, a link (its target, here
    notes, left as it was)."""
    old, empty, link, notes = (tmp_path / n for n in ("old.h5", "empty.h5", "link.h5", "n.txt"))
    nb.save(nb.Sequential([Dense(2, 3)], seed=1), old)
    empty.touch()
    notes.write_text("my notes\n")
    link.symlink_to(notes)
    for path in (old, empty, link):
        said = fit_with(path, how)
        assert nb.load(path).config() == net().config() and not path.is_symlink()
        replaced = how != "nb.save" and path == old  # a fit says so, checkpoint= or callback
        other = "holds a model of another architecture than this one, which this fit replaces"
        assert [other in message for message in said] == [True] * replaced
    assert notes.read_text() == "my notes\n"


@pytest.mark.parametrize("how", HOWS)
def test_a_write_protected_file_is_not_replaced(tmp_path, how):
    """chmod 444 keeps a checkpoint: the rename needed only the folder's right, so a
    save replaced it (even as another user than root)."""
    best = tmp_path / "best.h5"
    nb.save(net(), best)
    best.chmod(0o444)
    before = digest(best)
    with pytest.raises(
        PermissionError, match=r"'.*best\.h5' is write-protected \(mode 0o444\): make it writable"
    ):
        fit_with(best, how)
    assert digest(best) == before and best.stat().st_mode & 0o777 == 0o444


@pytest.mark.parametrize("how", HOWS)
def test_a_path_ending_in_a_dot_names_no_file(tmp_path, how):
    """ "ckdir/." was read as "ckdir" (pathlib drops the dot) and a file took the folder's
    name once the folder was gone; as "ckdir/" it was refused."""
    folder = tmp_path / "ckdir"
    folder.mkdir()
    for text in (f"{folder}/.", f"{folder}/.."):
        with pytest.raises(ValueError, match=r"names no file: give a file's path"):
            fit_with(text, how)
    assert folder.is_dir() and not list(folder.iterdir())


def test_a_link_to_a_private_file_gives_a_private_checkpoint(tmp_path):
    """A save through a link to a 0o600 file wrote a 0o644 one (the umask's default); a
    link to a world-writable file still gives no more than the default, and one to a
    read-only file (or one of mode 0) a file its owner may read and write again."""
    umask = os.umask(0o022)
    try:
        for target_mode, expected in (
            (0o600, 0o600),
            (0o777, 0o644),
            (0o000, 0o600),
            (0o444, 0o644),
        ):
            target, link = tmp_path / f"{target_mode:o}.h5", tmp_path / f"link{target_mode:o}.h5"
            target.write_bytes(b"")
            target.chmod(target_mode)
            link.symlink_to(target)
            nb.save(net(), link)
            assert link.stat().st_mode & 0o777 == expected, oct(target_mode)
            nb.save(net(), link)  # its own file now, and the owner's to write again
    finally:
        os.umask(umask)


@pytest.mark.parametrize(
    "path, error, message",
    [
        ("missing/m.h5", FileNotFoundError, r"^path='.*missing/m\.h5': its folder does not exist"),
        (b"m.h5", TypeError, r"^path must be a file's path \(str or Path\), not b'm\.h5'"),
        (None, TypeError, r"^path must be a file's path \(str or Path\), not None"),
        (".", ValueError, r"^path: '\.' names no file"),
    ],
)
def test_nb_save_says_what_is_wrong_with_its_path_as_fit_does(
    tmp_path, monkeypatch, path, error, message
):
    """nb.save gave the OS's words (Errno 2, Errno 21 after building the whole file) or
    pathlib's for a bytes path; it names the argument as fit names checkpoint=."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error, match=message):
        nb.save(net(), path)
    assert not list(tmp_path.iterdir())


def test_the_refusal_keeps_the_resume_that_would_go_on(tmp_path):
    """A checkpoint is still resumed from and written on: the check reads its format tag."""
    path = tmp_path / "run.h5"
    fit_with(path, "checkpoint=")
    model = net()
    model.fit(X, Y, loss="cross_entropy", optimizer="sgd", epochs=2, verbose=0,
              checkpoint=path, resume=True)  # fmt: skip
    assert nb.load(path, with_optimizer=True)[2] == 1
    assert np.array_equal(
        nb.to_numpy(nb.load(path).params["0.W"]), nb.to_numpy(model.params["0.W"])
    )


@pytest.mark.parametrize("how", HOWS)
def test_a_save_under_a_umask_without_write_bits_can_replace_its_own_file(tmp_path, how):
    """A umask of 0o222 made the first save's file 0o444, which the next save refused as
    write-protected: a fit saving every epoch failed after its first."""
    path = tmp_path / "model.h5"
    old = os.umask(0o222)
    try:
        fit_with(path, how)
        fit_with(path, how)
        model = net()
        epochs = model.fit(X, Y, loss="cross_entropy", optimizer="sgd", epochs=3, verbose=0,
                           callbacks=[nb.callbacks.ModelCheckpoint(path, every=1)])  # fmt: skip
    finally:
        os.umask(old)
    assert len(epochs.history["loss"]) == 3
    assert os.stat(path).st_mode & 0o777 == 0o644  # the owner's read and write added
    np.testing.assert_array_equal(
        nb.to_numpy(nb.load(path).params["0.W"]), nb.to_numpy(model.params["0.W"])
    )


def test_a_resume_from_an_empty_file_starts_at_epoch_zero(backend, tmp_path):
    """An empty file is no checkpoint (a save replaces it): a fit given resume=True on
    every run, as the guide has it, failed at its first on a file from ``touch`` or
    ``mkstemp`` ("not a readable HDF5 file, or it is truncated")."""
    path = tmp_path / "run.h5"
    path.touch()
    model = nb.Sequential([Dense(2, 4), "tanh", Dense(4, 2)], backend=backend, seed=0)
    history = model.fit(X, Y, loss="cross_entropy", optimizer="sgd", epochs=2, verbose=0,
                        checkpoint=path, resume=True)  # fmt: skip
    assert history.epochs == [0, 1]
    assert nb.load(path, backend=backend, with_optimizer=True)[2] == 1


def test_a_pretrained_checkpoint_a_new_head_would_replace_is_warned_of(tmp_path):
    """Fine-tuning with the pretraining's checkpoint= replaced its file in silence (the
    model's own last save, but of other layers now); another model was told to resume
    from it, which the architectures refuse; a ModelCheckpoint said nothing at all."""
    path = tmp_path / "pre.h5"
    options = dict(loss="cross_entropy", optimizer="sgd", epochs=1, verbose=0)
    model = net()
    model.fit(X, Y, checkpoint=path, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(X, Y, checkpoint=path, **options)  # its own last save: it goes on
    model.layers[2] = Dense(4, 3)
    other = r"holds a model of another architecture than this one, which this fit replaces"
    with pytest.warns(UserWarning, match=rf"^checkpoint='.*pre\.h5' {other}.*keep it$"):
        model.fit(X, Y, checkpoint=path, **options)
    with warnings.catch_warnings():  # no epoch to run: nothing replaced, nothing said
        warnings.simplefilter("error")
        net().fit(X, Y, callbacks=[nb.callbacks.ModelCheckpoint(path)], **{**options, "epochs": 0})
    with pytest.warns(UserWarning, match=rf"^ModelCheckpoint path='.*pre\.h5' {other}"):
        net().fit(X, Y, callbacks=[nb.callbacks.ModelCheckpoint(path)], **options)
    with pytest.warns(UserWarning, match=r"holds epoch 0 of an earlier run, .* resume=True"):
        net().fit(X, Y, checkpoint=path, **options)  # the same layers: resume is the way
    # a resumed run's ModelCheckpoint of its own file, of the same layers: nothing to say
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        saving = [nb.callbacks.ModelCheckpoint(path)]
        net().fit(X, Y, checkpoint=path, resume=True, callbacks=saving, **{**options, "epochs": 3})


def test_a_checkpoint_whose_architecture_cannot_be_read_is_not_called_another(tmp_path):
    """Its architecture unread, a file is an earlier checkpoint to fit's checkpoint=, and
    nothing to a ModelCheckpoint, which warns only of another architecture."""
    path = tmp_path / "broken.h5"
    nb.save(net(), path)
    with h5py.File(path, "a") as f:
        f.attrs["architecture"] = "not json {"
    options = dict(loss="cross_entropy", optimizer="sgd", epochs=1, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net().fit(X, Y, callbacks=[nb.callbacks.ModelCheckpoint(path)], **options)
    with h5py.File(path, "a") as f:
        f.attrs["architecture"] = "not json {"
    with pytest.warns(UserWarning, match=r"holds an earlier checkpoint, which this fit replaces"):
        net().fit(X, Y, checkpoint=path, **options)


@pytest.mark.parametrize("how", ["nb.save", "checkpoint=", "callbacks="])
@pytest.mark.parametrize("as_path", [False, True])
def test_a_leading_tilde_is_the_home_folder_as_for_the_data(tmp_path, monkeypatch, how, as_path):
    """'~/ck.h5' was taken literally: "its folder does not exist", or a folder named ~
    made in the working directory, while the loaders and --out expand it."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "home").mkdir()
    path = Path("~/ck.h5") if as_path else "~/ck.h5"
    fit_with(path, how)
    assert os.listdir(tmp_path / "home") == ["ck.h5"] and not (tmp_path / "~").exists()
    again = nb.load(path)
    np.testing.assert_array_equal(
        again.params["0.W"], nb.load(tmp_path / "home/ck.h5").params["0.W"]
    )
    model = net()
    assert nb.restore(model, path) in (None, 0)
    if how != "nb.save":  # a fit's checkpoint: the optimizer's state to go on with
        model.fit(X, Y, loss="cross_entropy", optimizer="sgd", epochs=2, verbose=0,
                  checkpoint=path, resume=True)  # fmt: skip
        assert nb.load(tmp_path / "home/ck.h5", with_optimizer=True)[2] == 1


def test_a_plot_saved_under_a_tilde_goes_to_the_home_folder(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    history = net().fit(X, Y, loss="cross_entropy", optimizer="sgd", epochs=2, verbose=0)
    written = nb.plot.save(nb.plot.curves(history).figure, "~/plots", "loss")
    assert written == tmp_path / "home/plots/loss.png" and written.is_file()
    assert not (tmp_path / "~").exists()


def test_home_expanded_keeps_a_str_a_str_and_a_path_a_path(tmp_path, monkeypatch):
    """ModelCheckpoint('~/a.h5') showed path=PosixPath(...) had a str become a Path."""
    from nnbackend.checks import home_expanded

    monkeypatch.setenv("HOME", str(tmp_path))
    assert home_expanded("~/a.h5") == f"{tmp_path}/a.h5" and type(home_expanded("~/a")) is str
    assert home_expanded(Path("~/a.h5")) == tmp_path / "a.h5"
    assert repr(nb.callbacks.ModelCheckpoint("~/a.h5")).startswith(
        f"ModelCheckpoint(path='{tmp_path}"
    )


@pytest.mark.parametrize("path", ["..", "runs/..", "~/.."])
def test_a_load_from_a_path_naming_no_file_says_so(path):
    with pytest.raises(ValueError, match="names no file: give a checkpoint's path"):
        nb.load(path)
