"""Saves that cannot lose the file: concurrent writers killed at random moments, a
full disk (simulated, and a real tiny tmpfs where the machine allows one), cleanup
that fails, symbolic links, and names at the 255-byte limit."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

import nnbackend as nb
from nnbackend import atomic
from nnbackend.layers import Dense, Tanh

ROOT = os.path.dirname(os.path.dirname(__file__))
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def model(seed=0, hidden=16):
    return nb.Sequential([Dense(2, hidden), Tanh(), Dense(hidden, 2)], seed=seed)


def weights(m) -> bytes:
    return b"".join(nb.to_numpy(v).tobytes() for v in m.params.values())


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- concurrent writers, killed ---------------------------------------------------

TWO_WRITERS_KILLED = textwrap.dedent(
    """
    import json, os, random, signal, sys, time, traceback
    import nnbackend as nb
    from nnbackend import atomic
    from tests.test_saving import model, weights

    path, trials = sys.argv[1], int(sys.argv[2])
    writers = [model(seed=1), model(seed=2, hidden=64)]  # files of different sizes
    known = [weights(m) for m in writers]
    nb.save(writers[0], path)
    rng = random.Random(0)
    report = {"complete": 0, "bad_exits": [], "left_by_the_killed": 0}
    for trial in range(trials):
        pids = []
        for m in writers:
            pid = os.fork()
            if pid == 0:
                try:
                    while True:
                        nb.save(m, path)
                except BaseException:
                    traceback.print_exc()
                    os._exit(1)
            pids.append(pid)
        for pid in pids:  # each killed at its own random moment
            time.sleep(rng.uniform(0.002, 0.04))
            os.kill(pid, signal.SIGKILL)
        for pid in pids:
            status = os.waitpid(pid, 0)[1]
            if not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL):
                report["bad_exits"].append(status)
        report["complete"] += weights(nb.load(path)) in known
        report["left_by_the_killed"] += len(atomic.leftovers(path))
    nb.save(writers[0], path)
    report["left_after_a_save"] = [p.name for p in atomic.leftovers(path)]
    report["files"] = sorted(os.listdir(os.path.dirname(path)))
    print(json.dumps(report))
    """
)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_two_writers_killed_at_random_moments_never_lose_the_file(tmp_path):
    trials = 25
    child = subprocess.run(
        [sys.executable, "-c", TWO_WRITERS_KILLED, str(tmp_path / "ckpt.h5"), str(trials)],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout)
    assert report["complete"] == trials  # loadable, and one writer's whole model, every time
    assert report["bad_exits"] == [], child.stderr  # no writer ever failed: only killed
    assert report["left_after_a_save"] == []
    assert report["files"] == ["ckpt.h5"]


def test_a_live_writers_temporary_file_is_left_alone(tmp_path):
    path = tmp_path / "m.h5"
    fd, temporary = atomic._create_temporary(path)  # a writer still at work: locked
    try:
        nb.save(model(), path)
        assert temporary.exists()
    finally:
        os.close(fd)  # the writer dies: its lock goes
    nb.save(model(), path)
    assert files_in(tmp_path) == ["m.h5"]


def test_a_sweep_never_removes_a_file_that_is_not_a_temporary_one(tmp_path):
    path = tmp_path / "m.h5"
    keep = [".m.h5.notes", "m.h5.nnbackend-tmp", ".other.h5.0123abcd.nnbackend-tmp", "x.h5"]
    for name in keep:
        (tmp_path / name).write_text("mine")
    nb.save(model(), path)
    assert files_in(tmp_path) == sorted([*keep, "m.h5"])


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_fifo_named_like_a_leftover_neither_blocks_a_save_nor_is_removed(tmp_path):
    """Opening a FIFO to read waits for a writer: a save swept it and hung forever."""
    fifo = tmp_path / ".m.h5.deadbeef.nnbackend-tmp"
    os.mkfifo(fifo)
    saving = threading.Thread(target=nb.save, args=(model(), tmp_path / "m.h5"), daemon=True)
    saving.start()
    saving.join(10)
    if saving.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # lets the stuck open return
        saving.join(10)
        pytest.fail("nb.save hung opening a FIFO beside its target")
    assert files_in(tmp_path) == sorted([fifo.name, "m.h5"])


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_fifo_or_folder_at_the_checkpoint_is_refused_not_waited_on(tmp_path):
    """nb.load and a resumed fit opened a FIFO at the path, waiting for a writer for
    ever; a folder there trained an epoch before its save failed."""
    fifo = tmp_path / "run.h5"
    os.mkfifo(fifo)
    loading = threading.Thread(target=lambda: pytest.raises(nb.CheckpointError, nb.load, fifo))
    loading.start()
    loading.join(10)
    if loading.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # lets the stuck open return
        loading.join(10)
        pytest.fail("nb.load hung opening a FIFO")
    with pytest.raises(nb.CheckpointError, match="run.h5: it is not a regular file"):
        nb.load(fifo)
    trained = model()
    before = nb.to_numpy(trained.params["0.W"]).copy()
    with pytest.raises(ValueError, match="is a folder or other non-file: name a file in it"):
        trained.fit(np.zeros((4, 2)), np.zeros(4, dtype=int), loss="cross_entropy",
                    optimizer="sgd", epochs=1, verbose=0, checkpoint=tmp_path)  # fmt: skip
    np.testing.assert_array_equal(nb.to_numpy(trained.params["0.W"]), before)  # no epoch ran


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="Unix sockets are POSIX")
def test_a_socket_at_the_checkpoint_is_refused_as_no_regular_file(tmp_path):
    """A FIFO or a device got the library's error; a socket got the OS's 'No such
    device or address' (an OSError), as if nothing were there."""
    path = tmp_path / "run.h5"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        for read in (nb.load, lambda p: nb.restore(model(), p)):
            with pytest.raises(
                nb.CheckpointError, match=r"run\.h5: it is not a regular file \(a socket\)"
            ):
                read(path)


def test_a_save_never_replaces_a_fifo_or_device(tmp_path):
    """nb.save renamed its file over them: as root, nb.save(model, "/dev/null") would
    have replaced the system's null device."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="'.*pipe' is a device, FIFO or socket, not a file"):
        nb.save(model(), fifo)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and files_in(tmp_path) == ["pipe"]


@pytest.mark.parametrize("name", ["", ".", "..", "ckdir/"])
def test_a_path_that_names_no_file_is_refused(tmp_path, monkeypatch, name):
    """ "" and "." were "has an empty name", ".." a busy device, and "ckdir/" made a
    file named ckdir."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=f"'{re.escape(name)}' names no file: give a file's"):
        nb.save(model(), name)
    with pytest.raises(ValueError, match="names no file"):
        nb.callbacks.ModelCheckpoint(name).on_train_begin(model(), fit_of(epochs=1))
    assert files_in(tmp_path) == []


def fit_of(**options):
    return type("Fit", (), {"log_every": 1, "optimizer": None, "callbacks": (), **options})


def test_model_checkpoint_refuses_a_path_it_cannot_write_before_training(tmp_path):
    """fit(checkpoint=) was checked first, ModelCheckpoint's path only at its first
    save, after an epoch."""
    trained, X, y = model(), np.zeros((4, 2)), np.zeros(4, dtype=int)
    before = nb.to_numpy(trained.params["0.W"]).copy()
    for path, error, said in ((tmp_path / "no" / "m.h5", FileNotFoundError, "does not exist"),
                              (tmp_path, ValueError, "is a folder or other non-file")):  # fmt: skip
        with pytest.raises(error, match=f"ModelCheckpoint path=.*{said}"):
            trained.fit(X, y, loss="cross_entropy", optimizer="sgd", verbose=0,
                        callbacks=[nb.callbacks.ModelCheckpoint(path)])  # fmt: skip
    np.testing.assert_array_equal(nb.to_numpy(trained.params["0.W"]), before)  # no epoch ran
    with pytest.raises(TypeError, match="ModelCheckpoint's path must be a str or Path, not None"):
        nb.callbacks.ModelCheckpoint(None)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_a_folder_that_takes_no_new_file_is_named(tmp_path):
    """As a user who may write the file but not its folder: the save's error named the
    file alone, and fit(checkpoint=) trained an epoch before it."""
    reachable = Path(tempfile.mkdtemp())  # in /tmp: pytest's folders are its user's alone
    os.chmod(reachable, 0o755)
    folder = reachable / "ro"
    folder.mkdir()
    nb.save(model(seed=1), folder / "m.h5")
    os.chmod(folder / "m.h5", 0o666)
    script = textwrap.dedent(f"""
        import os
        import numpy as np, nnbackend as nb
        from nnbackend.layers import Dense
        m = nb.Sequential([Dense(2, 2)], seed=0)
        m.fit(np.zeros((4, 2)), np.zeros(4, dtype=int), loss="cross_entropy", optimizer="sgd",
              verbose=0)  # every module a fit imports, imported while this is root
        os.setgid(65534); os.setuid(65534)  # nobody: may write the file, not its folder
        for save in (lambda: nb.save(m, {str(folder / "m.h5")!r}),
                     lambda: m.fit(np.zeros((4, 2)), np.zeros(4, dtype=int), verbose=0,
                                   loss="cross_entropy", optimizer="sgd",
                                   checkpoint={str(folder / "m.h5")!r})):
            try:
                save()
            except PermissionError as exc:
                print(exc)
        """)  # fmt: skip
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd="/", env={**ENV, "PYTHONPATH": ROOT}, timeout=300)  # fmt: skip
    shutil.rmtree(reachable)
    said = done.stdout.splitlines()
    assert len(said) == 2, done.stdout + done.stderr[-2000:]
    for what, line in zip(("path", "checkpoint"), said, strict=True):
        shown = f"{what}={str(folder / 'm.h5')!r}"
        assert line == f"{shown}: cannot write in its folder: Permission denied"


# --- a full disk ------------------------------------------------------------------


def full_disk_after(limit: int):
    """A write that takes ``limit`` bytes, then finds the disk full."""
    written = [0]

    def write(fd, data):
        if written[0] >= limit:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = os.write(fd, data[: max(1, min(len(data), limit - written[0]))])
        written[0] += n
        return n

    return write


def test_full_disk_mid_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "m.h5"
    old = model(seed=1)
    nb.save(old, path)
    before = path.read_bytes()
    monkeypatch.setattr(atomic, "_write_some", full_disk_after(3000))
    with pytest.raises(OSError) as err:
        nb.save(model(seed=2, hidden=64), path)
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(path)
    assert "No space left on device" in str(err.value) and str(path) in str(err.value)
    assert path.read_bytes() == before and weights(nb.load(path)) == weights(old)
    assert files_in(tmp_path) == ["m.h5"]


def test_the_bytes_reach_the_disk_before_the_rename_and_the_rename_after(tmp_path, monkeypatch):
    """A power cut must leave the old file or the whole new one: the new file is
    flushed before it is renamed over the old, and the folder (the rename) after."""
    events = []
    fsync, replace = os.fsync, os.replace

    def flushing(fd):
        kind = "folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        events.append(f"fsync {kind} {os.fstat(fd).st_size if kind == 'file' else ''}".strip())
        fsync(fd)

    def renaming(source, target):
        events.append("rename")
        replace(source, target)

    monkeypatch.setattr(atomic.os, "fsync", flushing)
    monkeypatch.setattr(atomic.os, "replace", renaming)
    data = b"x" * 5000
    atomic.atomic_write(tmp_path / "m.bin", data)
    assert events == ["fsync file 5000", "rename", "fsync folder"]


def test_a_failing_cleanup_never_hides_the_original_error(tmp_path, monkeypatch):
    path = tmp_path / "m.h5"
    nb.save(model(seed=1), path)
    monkeypatch.setattr(atomic, "_write_some", full_disk_after(100))

    def unlink_fails(self, missing_ok=False):
        raise PermissionError(errno.EACCES, "cannot remove", str(self))

    monkeypatch.setattr(Path, "unlink", unlink_fails)
    with pytest.raises(OSError) as err:
        nb.save(model(seed=2), path)
    assert err.value.errno == errno.ENOSPC


def test_an_interrupt_mid_write_leaves_nothing_behind(tmp_path, monkeypatch):
    path = tmp_path / "m.h5"
    nb.save(model(seed=1), path)
    before = path.read_bytes()

    def interrupted(fd, data):
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic, "_write_some", interrupted)
    with pytest.raises(KeyboardInterrupt):
        nb.save(model(seed=2), path)
    assert path.read_bytes() == before and files_in(tmp_path) == ["m.h5"]


def test_an_interrupt_while_taking_the_lock_leaves_nothing_open(tmp_path, monkeypatch):
    """Ctrl-C between creating the temporary file and locking it left the file, and
    its descriptor open (and locked) for the life of the process."""
    path = tmp_path / "m.h5"
    nb.save(model(seed=1), path)
    opened = {}
    real_lock = atomic._lock

    def interrupted(fd, blocking):
        opened["fd"] = fd
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic, "_lock", interrupted)
    with pytest.raises(KeyboardInterrupt):
        nb.save(model(seed=2), path)
    assert files_in(tmp_path) == ["m.h5"]
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(opened["fd"])
    monkeypatch.setattr(atomic, "_lock", real_lock)


SAVE_ON_A_TINY_TMPFS = textwrap.dedent(
    """
    import errno, json, os, sys
    import nnbackend as nb
    from tests.test_saving import model, weights
    folder = sys.argv[1]
    path = os.path.join(folder, "m.h5")
    small = model(seed=1)
    nb.save(small, path)
    try:
        nb.save(model(seed=2, hidden=4000), path)  # ~100 KB more than the 64 KiB disk
        outcome = "saved"
    except OSError as exc:
        outcome = [exc.errno, exc.filename]
    print(json.dumps({"outcome": outcome, "files": sorted(os.listdir(folder)),
                      "intact": weights(nb.load(path)) == weights(small)}))
    """
)


@pytest.mark.skipif(sys.platform != "linux", reason="a tmpfs needs Linux")
def test_a_real_full_disk_on_a_tiny_tmpfs(tmp_path):
    """Where the machine lets a user namespace mount a 64 KiB tmpfs (``unshare -rm``)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("no unshare command to mount a private tmpfs")
    disk = tmp_path / "disk"
    disk.mkdir()
    command = 'mount -t tmpfs -o size=64k nnbackend-test "$1" || exit 77; exec "$2" -c "$3" "$1"'
    child = subprocess.run(
        [
            unshare,
            "-rm",
            "sh",
            "-c",
            command,
            "sh",
            str(disk),
            sys.executable,
            SAVE_ON_A_TINY_TMPFS,
        ],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if child.returncode == 77 or "unshare" in child.stderr and child.returncode != 0:
        pytest.skip(f"cannot mount a private tmpfs here: {child.stderr.strip()[:200]}")
    assert child.returncode == 0, child.stderr  # no crash inside HDF5
    report = json.loads(child.stdout)
    assert report["outcome"] == [errno.ENOSPC, str(disk / "m.h5")]
    assert report["files"] == ["m.h5"] and report["intact"]


# --- paths ------------------------------------------------------------------------


def test_a_symlink_at_the_target_is_replaced_and_its_target_left_alone(tmp_path):
    elsewhere = tmp_path / "precious.txt"
    elsewhere.write_text("do not overwrite me")
    link = tmp_path / "ckpt.h5"
    link.symlink_to(elsewhere)
    saved = model(seed=3)
    nb.save(saved, link)
    assert not link.is_symlink() and elsewhere.read_text() == "do not overwrite me"
    assert weights(nb.load(link)) == weights(saved)


def test_writing_through_a_link_when_asked(tmp_path):
    target = tmp_path / "run3.h5"
    nb.save(model(seed=1), target)
    link = tmp_path / "latest.h5"
    link.symlink_to(target)
    saved = model(seed=2)
    nb.save(saved, link.resolve())
    assert link.is_symlink() and weights(nb.load(link)) == weights(saved)


@pytest.mark.parametrize("name", ["a" * 252 + ".h5", "é" * 126 + ".h5", "ü" * 125 + "xy.h5"])
def test_names_at_the_255_byte_limit(tmp_path, name):
    assert len(os.fsencode(name)) in (255, 256 - 1)
    saved = model(seed=4)
    nb.save(saved, tmp_path / name)
    nb.save(saved, tmp_path / name)  # and again, over it
    assert files_in(tmp_path) == [name]
    assert weights(nb.load(tmp_path / name)) == weights(saved)


def test_a_path_no_save_can_write_is_named_before_any_work_and_leaves_nothing(tmp_path):
    """A folder at the path, or no folder for it, is named as fit names its checkpoint
    path (nb.save built the whole file first, then gave the OS's Errno 21 or 2)."""
    (tmp_path / "a-folder.h5").mkdir()
    folder, missing = tmp_path / "a-folder.h5", tmp_path / "no" / "such" / "m.h5"
    with pytest.raises(ValueError, match=rf"^path={re.escape(repr(str(folder)))} is a folder"):
        nb.save(model(), folder)
    with pytest.raises(FileNotFoundError, match=r"m\.h5': its folder does not exist$"):
        nb.save(model(), missing)
    assert files_in(tmp_path) == ["a-folder.h5"]


def test_the_saved_file_is_readable_by_others_as_usual(tmp_path):
    """The temporary file is created with the usual permissions (not mkstemp's 0600)."""
    umask = os.umask(0o022)
    os.umask(umask)
    path = nb.save(model(), tmp_path / "m.h5")
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX permission bits")
@pytest.mark.parametrize("mode", [0o600, 0o640, 0o664])
def test_a_file_saved_over_keeps_its_permissions(tmp_path, mode, monkeypatch):
    """A private checkpoint saved again stays private, its temporary file included."""
    path = nb.save(model(), tmp_path / "m.h5")
    path.chmod(mode)
    modes, write_some = [], atomic._write_some

    def watched(fd, data):
        modes.append(os.fstat(fd).st_mode)
        return write_some(fd, data)

    monkeypatch.setattr(atomic, "_write_some", watched)
    nb.save(model(seed=1), path)
    assert path.stat().st_mode & 0o777 == mode
    assert modes and all(m & 0o777 == mode for m in modes)


def test_a_save_leaves_the_bytes_it_built(tmp_path):
    """What lands on disk is exactly the HDF5 image built in memory."""
    path = nb.save(model(seed=5), tmp_path / "m.h5")
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89HDF\r\n\x1a\n"
    np.testing.assert_array_equal(
        nb.to_numpy(nb.load(path).params["0.W"]), nb.to_numpy(model(seed=5).params["0.W"])
    )


def test_a_trained_model_pickles_to_its_weights_and_optimizer_state(backend):
    """On torch every weight, gradient and Adam slot views one flat buffer, and a
    pickle of a torch view holds its whole storage: eight 256-wide layers pickled to
    128 MiB for 2 MiB of weights. Gradients are no part of a copy either."""
    import pickle

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64, 64)), rng.integers(0, 10, 64)
    layers = [Dense(64, 64), "relu", Dense(64, 64), "relu", Dense(64, 64), "relu", Dense(64, 10)]
    net = nb.Sequential(layers, backend=backend, seed=0)
    net.fit(X, y, loss="cross_entropy", optimizer="adam", batch_size=16, verbose=0)
    weights = sum(nb.to_numpy(w).nbytes for w in net.params.values())
    size = len(pickle.dumps(net))
    assert 3 * weights < size < 3 * weights + 40_000  # the weights and Adam's two slots
    twin = pickle.loads(pickle.dumps(net))
    assert len(twin.grads) == 0 and twin.optimizer.state["m"].keys() == net.params.keys()
    np.testing.assert_array_equal(nb.to_numpy(twin.predict_proba(X)), net.predict_proba(X))


def test_a_torch_model_sent_to_a_pool_worker_shares_no_array_with_it():
    """multiprocessing's pickler moves a torch tensor's storage into shared memory: a
    pool worker's fit wrote the model's BatchNorm statistics in place, and the model's
    own predictions moved by 0.1 (NumPy's arrays are sent as copies)."""
    import io
    from multiprocessing.reduction import ForkingPickler

    pytest.importorskip("torch")
    X, y = nb.datasets.make_moons(64, seed=0)
    net = nb.Sequential([Dense(2, 8), nb.layers.BatchNorm(8), "relu", Dense(8, 2)],
                        backend="torch", seed=0)  # fmt: skip
    net.fit(X, y, loss="cross_entropy", optimizer="adam", epochs=1, verbose=0)
    sent = io.BytesIO()
    ForkingPickler(sent).dump(net)
    arrays = {**net.params, **net.state, **net.optimizer.state["m"], **net.optimizer.state["v"]}
    assert [name for name, a in arrays.items() if a.is_shared()] == []
    before = net.predict_proba(X)
    ForkingPickler.loads(sent.getvalue()).fit(X, y, loss="cross_entropy", optimizer="adam",
                                              epochs=2, verbose=0)  # fmt: skip
    np.testing.assert_array_equal(net.predict_proba(X), before)


@pytest.mark.parametrize("copied", ["pickle", "deepcopy"])
def test_a_trained_model_pickles_and_deep_copies(backend64, copied):
    """A copy made after a fit (its layers' kept inputs, the flat buffer, the loss's
    cached class ids) predicts as the model does and trains on, on the same backend:
    a Backend travels as its name and dtype."""
    import copy
    import pickle

    rng = np.random.default_rng(0)
    X, y = rng.random((20, 1, 6, 6)), rng.integers(0, 3, 20)
    layers = [nb.layers.Conv2D(1, 2, 3), "relu", nb.layers.MaxPool2D(2), nb.layers.Flatten(),
              Dense(8, 3)]  # fmt: skip
    net = nb.Sequential(layers, backend=backend64, seed=0)
    settings = dict(loss="cross_entropy", optimizer="adam", epochs=1, batch_size=10, verbose=0)
    net.fit(X, y, **settings)
    twin = pickle.loads(pickle.dumps(net)) if copied == "pickle" else copy.deepcopy(net)
    assert twin.backend is net.backend
    predicted = nb.to_numpy(net.predict_proba(X))
    np.testing.assert_array_equal(nb.to_numpy(twin.predict_proba(X)), predicted)
    before = {k: nb.to_numpy(v).copy() for k, v in twin.params.items()}
    twin.fit(X, y, **settings)
    assert any(not np.array_equal(nb.to_numpy(v), before[k]) for k, v in twin.params.items())
