"""The child's walk (nnbackend.h5walk) and the reader's own checks (h5safe, h5text,
h5types) at their limits: each test holds a line a mutation run of those modules
found no test holding, or a defect it found (the comments say which)."""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import h5py
import numpy as np
import pytest

from nnbackend import h5child, h5safe, h5text, h5types, h5walk
from nnbackend.datasets import load_catvnoncat


class Finished(Exception):
    """The child's ``finish(status)``, here: the walk's end, with its status."""


def finish(status):
    raise Finished(status)


def walk_here(path, max_links, monkeypatch) -> tuple[list[bytes], int]:
    """The child's walk run in this process: the objects whose headers it read, and the
    status it finished with."""
    seen, get_info = [], h5py.h5o.get_info
    monkeypatch.setattr(
        h5py.h5o, "get_info", lambda g, n, *a, **k: seen.append(n) or get_info(g, n, *a, **k)
    )
    child = {"ARGS": [str(path), str(max_links), "16"], "h5py": h5py, "sys": sys,
             "opened": str, "finish": finish}  # fmt: skip
    with pytest.raises(Finished) as finished:
        exec(h5walk._WALK, child)
    return seen, finished.value.args[0]


def groups(path, n: int) -> None:
    with h5py.File(path, "w") as f:
        for i in range(n):
            f.create_group(f"g{i}")


def test_the_walk_stops_at_a_group_of_too_many_links_without_listing_them(tmp_path, monkeypatch):
    # the early return dropped: millions of links were listed for a minute, then called a loop
    groups(tmp_path / "many.h5", 60)
    assert walk_here(tmp_path / "many.h5", 50, monkeypatch) == ([], 0)  # the caller refuses


def test_the_walk_visits_every_object_of_a_file_of_exactly_max_links(tmp_path, monkeypatch):
    # <= made <, > made >=: a file of exactly MAX_LINKS links was walked in part
    groups(tmp_path / "exact.h5", 3)
    seen, status = walk_here(tmp_path / "exact.h5", 3, monkeypatch)
    assert sorted(seen) == [b"g0", b"g1", b"g2"] and status == 0


def test_the_walk_goes_into_groups_below_the_root(tmp_path, monkeypatch):
    # depth < max_depth made depth < 0: a crafted B-tree in a subgroup reached the reader
    path = tmp_path / "nested.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("callbacks/early/best", data=[1.0])  # nb.save nests 2 deep
    seen, status = walk_here(path, 100_000, monkeypatch)
    assert sorted(seen) == [b"best", b"callbacks", b"early"] and status == 0


def test_the_walk_says_4_for_a_file_it_cannot_open(tmp_path, monkeypatch):
    # 4 made 0: a file the child could not open was vouched for, and remembered
    (tmp_path / "not.h5").write_bytes(b"not an HDF5 file" * 64)
    child = {"ARGS": [str(tmp_path / "not.h5"), "100000", "16"], "h5py": h5py, "sys": sys,
             "opened": str, "finish": finish}  # fmt: skip
    with pytest.raises(Finished) as finished:
        exec(h5walk._WALK, child)
    assert finished.value.args == (4,)


def test_the_walk_is_given_the_readers_own_limits(tmp_path, monkeypatch):
    # MAX_LINKS and MAX_DEPTH swapped: the child stopped after 16 links
    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as f:
        f["x"] = [1.0]
    given, run = [], h5walk.run_child

    def recorded(code, args, *rest):
        given.append(args)
        return run(code, args, *rest)

    monkeypatch.setattr(h5walk, "run_child", recorded)
    h5walk.forget_harmless()
    with h5safe.open_untrusted(path):
        pass
    assert given[0][1:] == [str(h5safe.MAX_LINKS), str(h5safe.MAX_DEPTH)]


def test_a_childs_last_words_leave_out_its_start_and_end_marks():
    # STARTED kept: a child killed by a signal gave the reason "nnbackend child started"
    done = subprocess.CompletedProcess([], -11, b"", h5child.STARTED + b"\n")
    assert h5child.last_words(done) == "no message"
    done.stderr += b"KeyError: 'x'\n" + h5child.ENDED + b"1"
    assert h5child.last_words(done) == "KeyError: 'x'"


def test_an_object_reached_twice_is_refused_whatever_its_header_counts(tmp_path):
    """The oldest format's object headers have no checksum: a second link to the same
    dataset passed once its count was edited to 1 (one array loaded many times)."""
    path = tmp_path / "twice.h5"
    with h5py.File(path, "w", libver="earliest") as f:
        f["a"] = [0.0, 1.0]
        f["b"] = f["a"]
        addr = h5py.h5o.get_info(f.id, b"a").addr
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, addr + 4, 1)  # the v1 header's reference count says 1
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="is reached by 2 hard links"):
        with h5safe.open_untrusted(path):
            pass


def test_strings_of_characters_past_the_basic_plane_under_the_cap_are_read(tmp_path):
    """JSON writes such a character as 12 bytes: 800,000 emoji, under the 1 MiB cap,
    were refused as "longer than 1048576 characters" (read in-process, they came)."""
    path = tmp_path / "astral.h5"
    with h5py.File(path, "w") as f:
        f.attrs["note"] = "\U0001f600" * 800_000
        f.attrs["cap"] = "x" * h5text.MAX_ATTR_BYTES  # exactly the cap: read, not "longer"
    with h5py.File(path, "r") as f:
        assert len(h5text.attribute(path, f, "note", ValueError, "str")) == 800_000
        assert len(h5text.attribute(path, f, "cap", ValueError, "str")) == h5text.MAX_ATTR_BYTES


def test_open_untrusted_forgets_the_descriptor_of_a_file_it_closed(tmp_path):
    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as f:
        f["x"] = [1.0]
    with h5safe.open_untrusted(path):
        assert len(h5safe.OPEN_FILES) == 1
    assert h5safe.OPEN_FILES == {}


def test_a_file_opened_with_stdout_closed_leaves_no_descriptor_behind(tmp_path):
    # os.close(low) dropped: descriptor 1 stayed open on the checkpoint
    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as f:
        f["x"] = [1.0]
    code = (
        "import os, sys\nfrom nnbackend import h5safe\nos.close(1)\n"
        f"with h5safe.open_untrusted({str(path)!r}) as f: pass\n"
        "try:\n    os.fstat(1)\nexcept OSError:\n    sys.exit(0)\nsys.exit(7)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_readers_handle_reads_right_after_a_child_moved_the_offset(tmp_path):
    # a buffered handle: a read across its buffer's end after the child's seek came wrong
    path = tmp_path / "f.bin"
    data = bytes(range(256)) * 256
    path.write_bytes(data)
    with h5safe._open_regular(path, ValueError, "file") as handle:
        handle.seek(0)
        handle.readinto(bytearray(10))
        os.lseek(handle.fileno(), 50_000, os.SEEK_SET)  # a child handed the descriptor read
        handle.seek(100)
        buffer = bytearray(20_000)
        handle.readinto(buffer)
    assert bytes(buffer) == data[100:20_100]


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no Unix sockets")
def test_a_socket_at_the_path_is_named_as_one(tmp_path, monkeypatch):
    path = tmp_path / "m.h5"
    monkeypatch.chdir(tmp_path)  # a socket's path holds 108 bytes at most: a long TMPDIR
    with socket.socket(socket.AF_UNIX) as server:
        server.bind("m.h5")
        with pytest.raises(ValueError, match=r"not a regular file \(a socket\)"):
            with h5safe.open_untrusted(path):
                pass


def nested_type(depth: int):
    """A variable-length type of ... (``depth`` deep) of bytes."""
    vlen, uint8 = bytes.fromhex("1900000010000000"), bytes.fromhex("100000000100000000000800")
    return h5py.h5t.decode(b"\x03\x00" + vlen * depth + uint8)


def test_types_nest_at_most_max_type_depth_deep_and_every_member_counts():
    assert h5types.shallow(nested_type(h5types.MAX_TYPE_DEPTH))
    assert not h5types.shallow(nested_type(h5types.MAX_TYPE_DEPTH + 1))
    assert h5types.shallow(h5py.h5t.vlen_create(h5py.h5t.IEEE_F64LE))
    deep = nested_type(h5types.MAX_TYPE_DEPTH + 1)
    compound = h5py.h5t.create(h5py.h5t.COMPOUND, 8 + deep.get_size())
    compound.insert(b"plain", 0, h5py.h5t.IEEE_F64LE)
    compound.insert(b"deep", 8, deep)  # all made any: h5py's dtype takes depth-squared memory
    assert not h5types.shallow(compound)


def test_a_dataset_of_strings_is_refused_by_what_it_holds(tmp_path):
    """A nested type is refused before h5py makes its dtype; variable-length strings
    (h5py's way with a list of str) were called "object values"."""
    path = tmp_path / "classes.h5"
    with h5py.File(path, "w") as f:
        h5py.h5d.create(f.id, b"nested", nested_type(5), h5py.h5s.create_simple((2,)))
        f["names"] = ["non-cat", "cat"]
    with h5safe.open_untrusted(path, ValueError) as f:
        with pytest.raises(ValueError, match="a type nested more than 3 deep"):
            h5safe.dataset(path, f, "nested", ValueError, kinds="S", max_bytes=4096)
        with pytest.raises(ValueError, match="holds variable-length strings .* fixed-length"):
            h5safe.dataset(path, f, "names", ValueError, kinds="S", max_bytes=4096)


def test_a_child_writes_no_core_file():
    """With core files allowed (ulimit -c unlimited), each crafted file that crashed the
    walk left a core of up to 1 GiB in the user's working folder."""
    resource = pytest.importorskip("resource")
    before = resource.getrlimit(resource.RLIMIT_CORE)
    resource.setrlimit(resource.RLIMIT_CORE, (before[1], before[1]))
    try:
        code = "import resource\nprint(resource.getrlimit(resource.RLIMIT_CORE)[0])\nfinish(0)\n"
        done = h5child.run_child(code, [], 60)
    finally:
        resource.setrlimit(resource.RLIMIT_CORE, before)
    assert done.stdout.split() == [b"0"]


def cat_files(folder, classes) -> None:
    """Two small cat files whose class names h5py writes as variable-length strings."""
    for split in ("train", "test"):
        with h5py.File(folder / f"{split}_catvnoncat.h5", "w") as f:
            f[f"{split}_set_x"] = np.zeros((2, 4, 4, 3), dtype=np.uint8)
            f[f"{split}_set_y"] = np.array([0, 1])
            f.create_dataset("list_classes", data=classes, dtype=h5py.string_dtype())


def test_class_names_read_without_a_child_keep_the_cap(tmp_path, monkeypatch):
    """Where no child starts (a frozen app), 10 million characters came back."""
    cat_files(tmp_path, ["x" * 5000, "cat"])
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(h5child, "_warned", [True])
    with pytest.raises(
        ValueError, match="strings of /list_classes are longer than 4096 characters"
    ):
        load_catvnoncat(tmp_path, return_classes=True)


def test_what_a_sitecustomize_prints_in_the_child_is_no_damage(tmp_path, monkeypatch):
    """The child's whole output was parsed as JSON: a sitecustomize's banner (it runs
    under -I) made every variable-length string a damaged file's."""
    monkeypatch.setattr(h5text, "_READ_ONE", "print('site banner')\n" + h5text._READ_ONE)
    cat_files(tmp_path, ["non-cat", "cat"])
    assert load_catvnoncat(tmp_path, return_classes=True)[2] == ["non-cat", "cat"]


@pytest.mark.parametrize("child", [True, False])
def test_class_names_that_are_no_utf8_are_refused_as_fixed_length_ones_are(
    tmp_path, monkeypatch, child
):
    """Read apart, they came back with U+FFFD in them; fixed-length ones are refused."""
    for split in ("train", "test"):
        with h5py.File(tmp_path / f"{split}_catvnoncat.h5", "w") as f:
            f[f"{split}_set_x"] = np.zeros((2, 4, 4, 3), dtype=np.uint8)
            f[f"{split}_set_y"] = np.array([0, 1])
            names = [b"\xff\xfenon-cat", b"cat"]
            f.create_dataset("list_classes", data=names, dtype=h5py.string_dtype("utf-8"))
    if not child:
        monkeypatch.setattr(sys, "frozen", True, raising=False)
        monkeypatch.setattr(h5child, "_warned", [True])
    said = r"/list_classes holds \[b'\\xff\\xfenon-cat', b'cat'\], which is not UTF-8 text"
    with pytest.raises(ValueError, match=said):
        load_catvnoncat(tmp_path, return_classes=True)


def test_two_names_under_the_cap_each_are_not_called_one_long_string(tmp_path):
    cat_files(tmp_path, ["a" * 3000, "b" * 3000])
    with pytest.raises(ValueError, match="the strings of /list_classes are longer than 4096"):
        load_catvnoncat(tmp_path, return_classes=True)


def test_a_name_holding_the_result_mark_is_read_as_it_is(tmp_path):
    """The mark was looked for anywhere in the output: a name holding its words cut the
    JSON short, and a genuine file was called damaged."""
    cat_files(tmp_path, ["non-cat", "cat (nnbackend result 2)"])
    assert load_catvnoncat(tmp_path, return_classes=True)[2] == [
        "non-cat",
        "cat (nnbackend result 2)",
    ]


def test_the_finished_status_is_read_where_sigchld_is_ignored():
    """With SIGCHLD ignored the OS reaps the child and Python reads its status as 0: a
    walk that finished 1 (an error) or 5 (out of memory) would read as a clean one."""
    old = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        done = h5child.run_child("finish(3)\n", [], 60)
    finally:
        signal.signal(signal.SIGCHLD, old)
    assert done.returncode == 3


def test_the_child_has_a_cpu_limit_past_its_seconds():
    """A child left behind by a killed parent ends; a genuine walk is not cut short."""
    resource = pytest.importorskip("resource")
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    if hard != resource.RLIM_INFINITY and hard <= 31:
        pytest.skip(f"this process may not give a child {31} s of CPU (its hard limit: {hard})")
    code = "import resource\nprint(resource.getrlimit(resource.RLIMIT_CPU)[0])\nfinish(0)\n"
    limit = int(h5child.run_child(code, [], 30).stdout)
    assert 30 < limit < 3600


def test_a_held_ctrl_c_never_leaves_a_file_unwalked():
    """A SIGINT to the group between the child's fork and its setsid killed it (CPython
    resets its handlers there): two such in a row, and the file was read unwalked."""
    code = """
import os, signal, sys, time
signal.signal(signal.SIGINT, lambda *a: None)
from nnbackend import h5child
pid = os.fork()
if pid == 0:  # a Ctrl-C held down: the group signalled every 0.2 ms
    while True:
        time.sleep(0.0002)
        os.killpg(0, signal.SIGINT)
try:
    for _ in range(30):
        h5child.run_child("finish(0)" + chr(10), [], 60)
    print("all started")
finally:
    os.kill(pid, signal.SIGKILL)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, start_new_session=True)  # fmt: skip
    assert "all started" in done.stdout, done.stderr[-2000:]


def test_only_the_childs_last_end_mark_counts_and_its_last_words_are_its_own():
    code = 'sys.stderr.write("nnbackend child ended 7" + chr(10))\nfinish(0)\n'
    assert h5child.run_child(code, [], 60).returncode == 0
    done = h5child.run_child('sys.stderr.write("boom")\nfinish(1)\n', [], 60)
    assert (done.returncode, h5child.last_words(done)) == (1, "boom")


def test_a_string_child_that_dies_is_a_damaged_string_and_the_cap_counts_characters(
    tmp_path, monkeypatch
):
    path = tmp_path / "a.h5"
    with h5py.File(path, "w") as f:
        f.attrs["note"] = "text"  # variable-length: read in a child
        f["names"] = ["\U0001f600" * 2, "\U0001f600" * 2]  # exactly a cap of 4 characters
    with h5py.File(path, "r") as f:
        assert h5text.strings(path, f, "names", ValueError, max_chars=4) == ["\U0001f600" * 2] * 2
        monkeypatch.setattr(h5text, "_READ_ONE", "import os\nos._exit(0)\n")
        with pytest.raises(ValueError, match=r"damaged \(it ended without a word\)"):
            h5text.attribute(path, f, "note", ValueError, "str")


def test_class_names_are_read_from_the_first_file_that_has_them(tmp_path):
    """The test file's names are not read where the train file's were (its fault, in a
    file whose names were not needed, refused the load)."""
    for split, n, names in (("train", 4, [b"non-cat", b"cat"]), ("test", 2, [b"a", b"b", b"c"])):
        with h5py.File(tmp_path / f"{split}_catvnoncat.h5", "w") as f:
            f[f"{split}_set_x"] = np.zeros((n, 4, 4, 3), np.uint8)
            f[f"{split}_set_y"] = np.array([0, 1] * (n // 2))
            f["list_classes"] = names
    assert load_catvnoncat(tmp_path, return_classes=True)[2] == ["non-cat", "cat"]


@pytest.fixture
def children_made(monkeypatch):
    """The Popen objects h5child makes, for a test to look at."""
    made, real = [], subprocess.Popen

    def popen(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(h5child.subprocess, "Popen", popen)
    return made


def test_a_ctrl_c_held_while_the_child_is_made_ends_the_child(monkeypatch, children_made):
    """The held SIGINT came as the mask was restored, before the wait that kills the
    child on any exception: it was left waiting on its stdin."""
    real = h5child.subprocess.Popen

    def interrupted(*args, **kwargs):
        # to this thread, held until the child is made (one to the process may go to
        # another thread of the test run, and come at once)
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(h5child.subprocess, "Popen", interrupted)
    with pytest.raises(KeyboardInterrupt):
        h5child.run_child("finish(0)\n", [], 30)
    assert children_made[0].returncode is not None  # killed and reaped


def test_a_ctrl_c_mid_walk_kills_and_reaps_the_child(children_made):
    threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()
    with pytest.raises(KeyboardInterrupt):
        h5child.run_child("import time\ntime.sleep(30)\nfinish(0)\n", [], 20)
    assert children_made[0].returncode is not None  # no zombie left


def test_the_timeout_holds_when_the_child_left_a_process_on_its_pipes(tmp_path, monkeypatch):
    """A sys.executable that does not exec (a wrapper) left its own child holding the
    pipes: the wait for their end outlasted the timeout by as long as it lived."""
    script = tmp_path / "python"
    script.write_text("#!/bin/sh\nsleep 8\n")
    script.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(script))
    start = time.monotonic()
    with pytest.raises(h5child.NoChild, match="no answer in 1 s"):
        h5child.run_child("finish(0)\n", [], 1)
    assert time.monotonic() - start < 5
