"""Files whose HDF5 structure harms the process that walks it (nnbackend.h5walk).

A crafted B-tree or heap hurts HDF5's C code itself: a SIGSEGV or all of memory,
nothing Python can catch. Each load runs in a subprocess here, so that a regression
fails the test instead of killing the test run.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import warnings

import h5py
import numpy as np
import pytest

import nnbackend as nb
from nnbackend import h5child, h5safe, h5walk

resource = pytest.importorskip("resource")  # the memory cap: POSIX
if not os.path.exists("/proc/self/status"):  # the peak memory: Linux's
    pytest.skip("needs Linux's /proc/self/status", allow_module_level=True)


def oldest_format_copy(tmp_path, name: str):
    """A genuine checkpoint rewritten in HDF5's oldest format (v1 B-trees and local
    heaps, as the course's cat files are: no checksums), and its bytes to change."""
    saved, path = tmp_path / "saved.h5", tmp_path / name
    nb.save(nb.Sequential([nb.layers.Dense(2, 2)], seed=0), saved)
    with h5py.File(saved, "r") as src, h5py.File(path, "w", libver="earliest") as dst:
        for key, value in src.attrs.items():
            dst.attrs[key] = value
        for key in src:
            src.copy(src[key], dst, name=key)
    return path, bytearray(path.read_bytes())


def looping_btree(tmp_path, name="cyclic.h5"):
    path, data = oldest_format_copy(tmp_path, name)
    node = data.index(b"TREE")  # the root group's B-tree node
    data[node + 5] = 1  # level 1: its children are nodes, and the first ...
    struct.pack_into("<Q", data, node + 32, node)  # ... is the node itself
    path.write_bytes(bytes(data))
    return path


def looping_heap(tmp_path, name="looping.h5"):
    path, data = oldest_format_copy(tmp_path, name)
    heap = data.index(b"HEAP")  # the root group's local heap (its links' names)
    free, start = struct.unpack_from("<QQ", data, heap + 16)  # free list head, data address
    struct.pack_into("<Q", data, start + free, free)  # the free block's "next" is itself
    path.write_bytes(bytes(data))
    return path


def apart(call: str) -> tuple[subprocess.CompletedProcess, str, int]:
    """``call`` run in a fresh process capped at 3 GiB: the result, the error's message
    (or "no error") and the process's peak memory in MB (its children's, the walk's,
    in ``result.children``). The peak is VmHWM's, which starts afresh at exec:
    ru_maxrss keeps the forking parent's, the whole test run's."""
    code = (
        "import resource\n"
        "resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))\n"
        "import nnbackend as nb\n"
        f"try:\n    {call}\n    said = 'no error'\n"
        "except (nb.CheckpointError, ValueError) as exc:\n    said = str(exc)\n"
        "peak = [line for line in open('/proc/self/status') if line.startswith('VmHWM')]\n"
        "print(int(peak[0].split()[1]) // 1024)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)\nprint(said)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"the load killed its process ({done.returncode}): {done.stderr}"
    megabytes, children, said = done.stdout.split("\n", 2)
    done.children = int(children)
    return done, said.strip(), int(megabytes)


def test_a_group_btree_that_points_at_itself_is_refused_not_a_crash(tmp_path):
    """HDF5 recursed through the node until the C stack overflowed: nb.load died of
    SIGSEGV, with no error to catch."""
    path = looping_btree(tmp_path)
    _, said, _ = apart(f"nb.load({str(path)!r})")
    assert said == (
        f"cannot read checkpoint {path}: HDF5 crashed walking its structure (signal 11); "
        "it is damaged or crafted (a B-tree that loops)"
    )


def test_a_save_over_such_a_file_and_a_fit_that_checkpoints_there_are_refused(tmp_path):
    """check_can_save opens the file a save would replace: it crashed as a load did."""
    path = looping_btree(tmp_path)
    model = "nb.Sequential([nb.layers.Dense(2, 2)], seed=0)"
    _, said, _ = apart(f"nb.save({model}, {str(path)!r})")
    assert said.startswith(f"path={str(path)!r} holds a file that is not an nnbackend checkpoint")
    assert "HDF5 crashed walking its structure" in said
    data = "*nb.datasets.make_moons(20, seed=0)"
    fit = f"loss='cross_entropy', optimizer='sgd', epochs=1, verbose=0, checkpoint={str(path)!r}"
    _, said, _ = apart(f"{model}.fit({data}, {fit})")
    assert "HDF5 crashed walking its structure" in said


def test_a_cat_file_with_such_a_btree_is_refused_not_a_crash(tmp_path):
    """The course's cat files are in the oldest format: load_catvnoncat crashed too."""
    looping_btree(tmp_path, "train_catvnoncat.h5")
    (tmp_path / "test_catvnoncat.h5").write_bytes((tmp_path / "saved.h5").read_bytes())
    _, said, _ = apart(f"nb.datasets.load_catvnoncat(path={str(tmp_path)!r})")
    assert said.startswith(f"cannot read data file {tmp_path / 'train_catvnoncat.h5'}: HDF5")


def test_a_local_heap_free_list_that_loops_is_refused_in_bounded_memory(tmp_path):
    """HDF5 allocated free-list entries until memory ran out (3.8 GB in 6 s under a
    4 GB cap; the machine's all, without one)."""
    path = looping_heap(tmp_path)
    done, said, megabytes = apart(f"nb.load({str(path)!r})")
    assert said.startswith(f"{path}: walking its structure took more than 1024 MB")
    assert megabytes < 500 and done.children < 1100  # the child, stopped by its own cap


def test_a_file_is_walked_apart_once_while_it_stays_the_same(tmp_path, monkeypatch):
    """The walk costs a process start: a file nb.save wrote, or one walked already, is
    not walked again; the same path holding other bytes is."""
    children = []
    run = h5child._run
    monkeypatch.setattr(h5child, "_run", lambda *a, **k: children.append(a) or run(*a, **k))
    model = nb.Sequential([nb.layers.Dense(2, 2)], seed=0)
    nb.save(model, tmp_path / "ours.h5")
    nb.load(tmp_path / "ours.h5")
    assert children == []
    path, _ = oldest_format_copy(tmp_path, "theirs.h5")
    for _ in range(2):
        nb.load(path)
    assert len(children) == 1
    path.write_bytes(looping_btree(tmp_path, "cyclic.h5").read_bytes())
    with pytest.raises(nb.CheckpointError, match="HDF5 crashed walking its structure"):
        nb.load(path)
    assert len(children) == 2


def test_a_walk_that_does_not_end_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(h5walk, "WALK_SECONDS", 5)  # a loaded machine starts the child in it
    monkeypatch.setattr(h5walk, "_WALK", "import time\ntime.sleep(60)\n")  # started, then stuck
    path, _ = oldest_format_copy(tmp_path, "slow.h5")
    with pytest.raises(nb.CheckpointError, match=r"walking its structure did not end in 5 s"):
        nb.load(path)


@pytest.mark.parametrize("executable", ["", "/bin/sh", "/bin/true", "no h5py"])
def test_no_python_to_walk_with_is_warned_of_not_blamed_on_the_file(
    tmp_path, monkeypatch, executable
):
    """sys.executable is no Python under uWSGI, or a frozen app (or None): the walk's
    child never started, and every genuine file was called damaged ("/bin/true" even
    passed the walk unwalked). Now the file is walked in this process, with a warning."""
    path = nb.save(nb.Sequential([nb.layers.Dense(2, 2)], seed=0), tmp_path / "m.h5")
    h5walk.forget_harmless()  # not one saved here (a rewrite may keep its identity)
    if executable == "no h5py":  # a Python whose h5py does not import
        broken = tmp_path / "elsewhere" / "h5py"
        broken.mkdir(parents=True)
        (broken / "__init__.py").write_text("raise ImportError('a broken h5py')\n")
        monkeypatch.syspath_prepend(str(broken.parent))
    else:
        monkeypatch.setattr(sys, "executable", executable)
    monkeypatch.setattr(h5child, "_warned", [])
    with pytest.warns(RuntimeWarning, match="cannot start a child Python .* read in this") as said:
        assert nb.load(path).layers[0].n_out == 2
    assert said[0].filename == __file__  # the user's line, not contextlib's
    nb.load(path)  # warned once a process


def test_a_crafted_file_locked_by_another_process_is_still_walked_apart(tmp_path):
    """The child opened the file with HDF5's lock: a lock held elsewhere (a writer's, or
    the crafter's own) failed that open, the walk was skipped, and the load crashed."""
    fcntl = pytest.importorskip("fcntl")
    path = looping_btree(tmp_path)
    with open(path, "rb") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        _, said, _ = apart(f"nb.load({str(path)!r})")
    assert "HDF5 crashed walking its structure" in said


def test_the_walk_is_of_the_file_the_reader_opened_not_of_its_name(tmp_path):
    """The child opened the path again: a file put in its place after the reader opened
    the crafted one was walked instead, and the reader crashed on what it had opened."""
    path = looping_btree(tmp_path)
    genuine = nb.save(nb.Sequential([nb.layers.Dense(2, 2)], seed=0), tmp_path / "genuine.h5")
    swap = f"os.replace({str(genuine)!r}, {str(path)!r})"  # once the reader has it open
    call = (
        "import os; from nnbackend import h5walk; run = h5walk.run_child; "
        f"h5walk.run_child = lambda *args: ({swap}, run(*args))[1]; nb.load({str(path)!r})"
    )
    _, said, _ = apart(call)
    assert "HDF5 crashed walking its structure" in said


def test_a_file_the_walk_cannot_open_but_the_reader_can_is_refused(tmp_path, monkeypatch):
    """Whatever made the child's open fail (its memory cap, a lock), a file no walk
    vouched for is not read."""
    monkeypatch.setattr(h5walk, "_WALK", "finish(4)\n")
    path, _ = oldest_format_copy(tmp_path, "unwalked.h5")
    with pytest.raises(nb.CheckpointError, match="it could not be walked apart first"):
        nb.load(path)


def test_a_group_of_too_many_links_is_refused_by_its_count(tmp_path, monkeypatch):
    """The child listed every link of a group before counting them: 7 million took the
    whole minute and were told "a loop in its B-trees", not their number."""
    monkeypatch.setattr(h5safe, "MAX_LINKS", 50)
    path = tmp_path / "many.h5"
    with h5py.File(path, "w", libver="latest") as f:
        for i in range(60):
            f.create_group(f"g{i}")
    listed = []
    monkeypatch.setattr(h5safe, "_own_links", lambda group, room: listed.append(room) or [])
    with pytest.raises(nb.CheckpointError, match="holds more than 50 links"):
        nb.load(path)
    assert listed == []  # refused by the root group's count, before listing it


def nested_type(depth: int):
    """A variable-length type of a variable-length type of ... (``depth`` deep) of bytes."""
    vlen, uint8 = bytes.fromhex("1900000010000000"), bytes.fromhex("100000000100000000000800")
    return h5py.h5t.decode(b"\x03\x00" + vlen * depth + uint8)


def test_an_attribute_of_a_deeply_nested_type_is_refused_in_bounded_memory(tmp_path):
    """h5py's dtype of it, made for the message, took memory growing with the square of
    its depth: 8,100 levels in a 77 KB file, 14 GB and 80 s (the walk makes no dtype)."""
    path = nb.save(nb.Sequential([nb.layers.Dense(2, 2)], seed=0), tmp_path / "nested.h5")
    with h5py.File(path, "r+", libver=("v110", "latest")) as f:
        del f.attrs["format"]
        h5py.h5a.create(f.id, b"format", nested_type(1500), h5py.h5s.create(h5py.h5s.SCALAR))
    _, said, megabytes = apart(f"nb.load({str(path)!r})")
    assert said.endswith(
        "/@format should be a single str, but is a type nested more than 3 deep of shape ()"
    )
    assert megabytes < 300


def test_a_cat_file_of_a_deeply_nested_type_is_refused_in_bounded_memory(tmp_path):
    for split in ("train", "test"):
        with h5py.File(tmp_path / f"{split}_catvnoncat.h5", "w") as f:
            space = h5py.h5s.create_simple((3, 64, 64, 3))
            h5py.h5d.create(f.id, f"{split}_set_x".encode(), nested_type(1500), space)
            f[f"{split}_set_y"] = [0, 1, 0]
    _, said, megabytes = apart(f"nb.datasets.load_catvnoncat(path={str(tmp_path)!r})")
    assert said.endswith("/train_set_x holds values of a type nested more than 3 deep")
    assert megabytes < 300


def test_the_walk_goes_through_the_roots_own_attributes(tmp_path, monkeypatch):
    """The child listed the attributes of every object a link reaches, not the root's:
    the ones the reader reads first (format, architecture), which a large architecture
    keeps in HDF5's dense storage, a heap and a B-tree of their own."""
    path = nb.save(nb.Sequential([nb.layers.Dense(2, 2)], seed=0), tmp_path / "m.h5")
    seen, iterate = [], h5py.h5a.iterate
    monkeypatch.setattr(h5py.h5a, "iterate", lambda obj, *a, **k: seen.append(
        h5py.h5i.get_name(obj)) or iterate(obj, *a, **k))  # fmt: skip
    finished = []
    child = {"ARGS": [str(path), "100000", "16"], "h5py": h5py, "sys": sys, "opened": str,
             "finish": finished.append}  # fmt: skip
    exec(h5walk._WALK, child)  # the child's code, here, after CHILD_START's names
    assert seen[0] == b"/" and b"/weights" in seen
    assert finished == [0]


@pytest.mark.parametrize("closed", [1, 2])
def test_a_file_loads_in_a_process_whose_stdout_or_stderr_is_closed(tmp_path, closed):
    """The file took descriptor 1 or 2, which the walk's child has as its output pipe:
    the child walked its own stdout, and every load was refused (a daemon run >&-)."""
    path = nb.save(nb.Sequential([nb.layers.Dense(2, 3)], seed=0), tmp_path / "m.h5")
    code = (
        f"import os, sys, nnbackend as nb; os.close({closed}); "
        f"sys.exit(0 if nb.load({str(path)!r}).layers[0].n_out == 3 else 9)"
    )  # a fresh process: one that saved the file would not walk it
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_file_no_walk_vouched_for_is_refused_every_time(tmp_path, monkeypatch):
    """Not remembered as harmless: a second load would read it unwalked."""
    monkeypatch.setattr(h5walk, "_WALK", "finish(4)\n")
    path = nb.save(nb.Sequential([nb.layers.Dense(2, 2)], seed=0), tmp_path / "m.h5")
    h5walk.forget_harmless()  # not one saved here (a rewrite may keep its identity)
    for _ in range(2):
        with pytest.raises(nb.CheckpointError, match="could not be walked apart first"):
            nb.load(path)


def test_a_crash_of_the_walk_is_seen_where_sigchld_is_ignored(tmp_path):
    """Where SIGCHLD is ignored (a shell's trap "" CHLD, inherited), the OS reaps the
    child and Python reads its status as 0: the walk's crash was taken for a clean walk,
    and the reader then crashed on the file itself."""
    path = looping_btree(tmp_path)
    ignored = "import signal; signal.signal(signal.SIGCHLD, signal.SIG_IGN); "
    _, said, _ = apart(ignored + f"nb.load({str(path)!r})")
    assert "HDF5 crashed walking its structure (it ended without a word)" in said
    genuine = nb.save(nb.Sequential([nb.layers.Dense(2, 5)], seed=0), tmp_path / "m.h5")
    _, said, _ = apart(ignored + f"assert nb.load({str(genuine)!r}).layers[0].n_out == 5")
    assert said == "no error"


def test_a_walk_that_does_not_finish_is_no_clean_walk(tmp_path, monkeypatch):
    """The child's word, not its exit status, says how it finished."""
    monkeypatch.setattr(h5walk, "_WALK", "import os\nos._exit(0)\n")
    path = nb.save(nb.Sequential([nb.layers.Dense(2, 2)], seed=0), tmp_path / "m.h5")
    h5walk.forget_harmless()  # not one saved here (a rewrite may keep its identity)
    with pytest.raises(nb.CheckpointError, match=r"crashed .* \(it ended without a word\)"):
        nb.load(path)


def test_a_ctrl_c_that_the_program_catches_leaves_the_walk_alone(tmp_path):
    """The child was in the caller's process group: a Ctrl-C at the terminal killed it
    too, and where the program caught SIGINT itself (to stop after this epoch), or the
    load ran in a thread, a genuine file was called crafted ("HDF5 crashed walking its
    structure (signal 2)"), or read unwalked after a warning."""
    path = nb.save(nb.Sequential([nb.layers.Dense(2, 2)], seed=0), tmp_path / "m.h5")
    code = f"""
import os, signal, time, warnings
signal.signal(signal.SIGINT, lambda *args: None)
if os.fork() == 0:  # the terminal: Ctrl-C to the whole group, again and again
    for _ in range(40):
        time.sleep(0.05)
        os.killpg(0, signal.SIGINT)
    os._exit(0)
warnings.simplefilter("error")
import nnbackend as nb
from nnbackend import h5walk
for _ in range(12):
    h5walk.forget_harmless()
    nb.load({str(path)!r})
os.wait()
print("all loaded")
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
        start_new_session=True,
    )  # fmt: skip
    assert "all loaded" in done.stdout, done.stderr[-2000:]


def test_a_long_import_path_still_walks_in_a_child(tmp_path, monkeypatch):
    """sys.path went to the child as one argument, which Linux caps at 128 KiB: a path
    of 1,200 long entries (a Bazel or pex layout) failed every start, and every file was
    read unwalked after a warning."""
    path = nb.save(nb.Sequential([nb.layers.Dense(2, 2)], seed=0), tmp_path / "m.h5")
    h5walk.forget_harmless()  # not one saved here (a rewrite may keep its identity)
    long = [str(tmp_path / ("x" * 120) / str(i)) for i in range(1200)]
    monkeypatch.setattr(sys, "path", sys.path + long)
    monkeypatch.setattr(h5child, "_warned", [])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert nb.load(path).layers[0].n_out == 2


def test_a_program_that_never_starts_a_child_is_no_crafted_file(tmp_path, monkeypatch):
    """A sys.executable that neither starts Python nor ends: no child, not a walk that
    did not end (which would call a genuine file crafted)."""
    hangs = tmp_path / "hangs"
    hangs.write_text("#!/bin/sh\nexec sleep 5\n")
    hangs.chmod(0o755)
    path = nb.save(nb.Sequential([nb.layers.Dense(2, 2)], seed=0), tmp_path / "m.h5")
    h5walk.forget_harmless()  # not one saved here (a rewrite may keep its identity)
    monkeypatch.setattr(h5walk, "WALK_SECONDS", 1)
    monkeypatch.setattr(sys, "executable", str(hangs))
    monkeypatch.setattr(h5child, "_warned", [])
    with pytest.warns(RuntimeWarning, match="no answer in 1 s"):
        assert nb.load(path).layers[0].n_out == 2
    other = tmp_path / "other.h5"
    other.write_bytes(path.read_bytes())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once a process
        nb.load(other)


def test_an_nbit_dataset_is_named_as_hdf5s_own_filter(tmp_path):
    path = tmp_path / "nbit.h5"
    with h5py.File(path, "w") as f:
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_chunk((4,))
        dcpl.set_filter(h5py.h5z.FILTER_NBIT)
        space = h5py.h5s.create_simple((8,))
        data = h5py.h5d.create(f.id, b"x", h5py.h5t.STD_I32LE, space, dcpl=dcpl)
        data.write(h5py.h5s.ALL, h5py.h5s.ALL, np.arange(8, dtype="<i4"))
    with pytest.raises(ValueError, match="filter 5, HDF5's nbit, which nnbackend does not"):
        with h5safe.open_untrusted(path):
            pass
