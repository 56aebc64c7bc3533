"""An untrusted HDF5 file's structure walked first in a child process.

HDF5's C code follows a file's B-trees and heaps as they say. In a crafted file a
group's B-tree node can name itself as its child (HDF5 recurses until the C stack
overflows: the process dies of SIGSEGV, no exception to catch), or a heap's free list
can loop (HDF5 allocates until memory runs out). ``walk_apart`` lets a child, its
address space capped and the caller's open file handed to it (not the name, which
may name another file by then), touch what the reader will touch (each group's
links, each object's header and attributes, each chunk index) before the caller
reads the file: a crash, a memory bomb or a walk that does not end stays in the
child and becomes the caller's error. The child stops where
``h5safe.check_structure`` refuses (more than MAX_LINKS links, groups past
MAX_DEPTH), leaving that refusal, and its message, to the caller's own walk.

A file walked without harm, or written by this process's ``nb.save``, is not walked
again while it stays the same file (its device, inode, size and change times): the
walk costs a process start, about 0.1 s.
"""

from __future__ import annotations

import os
import subprocess

from nnbackend.h5child import (
    CHILD_BYTES,
    ChildDied,
    NoChild,
    handed,
    last_words,
    run_child,
    warn_no_child,
)

#: how long the child may walk (100,000 links take about 10 s)
WALK_SECONDS = 60
#: files known to be harmless, by identity (see the module's docstring)
_harmless: set[tuple] = set()
_MAX_KNOWN = 4096

# Runs in a child (``h5child``): it finishes with 0 walked, 4 not HDF5 (left to the
# caller's open), 5 out of its memory, 1 another error; one that does not finish died
# (HDF5 crashed). It leaves what check_structure refuses by count (links, depth) to
# the caller.
_WALK = """
source, max_links, max_depth = ARGS[0], int(ARGS[1]), int(ARGS[2])
try:  # no lock: another process's (a writer's, or a crafter's) must not skip the walk
    f = h5py.File(opened(source), "r", locking=False)
except Exception:
    finish(4)  # not HDF5, or truncated: the caller's open says so in its words


def walk():
    h5py.h5a.iterate(h5py.h5g.open(f.id, b"."), lambda n, i: None, info=True)  # the root's
    count, pending = 0, [(f.id, b".", 0)]
    while pending and count <= max_links:
        parent, name, depth = pending.pop()
        group = h5py.h5g.open(parent, name)
        if count + len(group) > max_links:
            return  # the caller's walk refuses so many, by their count
        links = []
        group.links.iterate(lambda n, i: links.append((n, i.type)) or None, info=True)
        count += len(links)
        for link, kind in links[: max_links + 1]:
            if kind == h5py.h5l.TYPE_HARD:
                visit(group, link, depth, pending)


def visit(group, link, depth, pending):
    info = h5py.h5o.get_info(group, link)
    if info.rc > 1:
        return  # refused by the caller's walk: not to be walked twice here
    item = h5py.h5o.open(group, link)
    h5py.h5a.iterate(item, lambda n, i: None, info=True)
    if info.type == h5py.h5o.TYPE_DATASET:
        if item.get_create_plist().get_layout() == h5py.h5d.CHUNKED:
            item.get_num_chunks()
            try:
                item.chunk_iter(lambda chunk: None)
            except (AttributeError, NotImplementedError):  # h5py before 3.8
                pass
    elif info.type == h5py.h5o.TYPE_GROUP and depth < max_depth:
        pending.append((group, link, depth + 1))


try:
    walk()
except Exception as exc:
    sys.stderr.write(" ".join(str(exc).split()))
    finish(5 if isinstance(exc, MemoryError) or "memory allocation" in str(exc) else 1)
finish(0)
"""


def identity(info: os.stat_result) -> tuple:
    """What tells a file (``os.stat``'s ``info`` of it) from any other, or from itself
    changed."""
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns


def known_harmless(key: tuple) -> None:
    """Remember the file of ``identity`` ``key`` as one not to walk again."""
    if len(_harmless) >= _MAX_KNOWN:
        _harmless.clear()
    _harmless.add(key)


def forget_harmless() -> None:
    """Walk every file again, as a first load does (what benchmarks time)."""
    _harmless.clear()


def walk_apart(
    path, fd: int, error: type[ValueError], what: str, max_links: int, max_depth: int
) -> bool:
    """Walk ``path``, open as ``fd``, in a child (see the module's docstring); ``error``
    if the child died, ran out of its memory or time, or could not say why it failed.
    False where the child could not open the file as HDF5 (the caller's open will say
    why: if it opens the file all the same, it must refuse it, not walked); else True.
    Where no child Python can start, a warning says so once, and True."""
    key = identity(os.fstat(fd))
    if key in _harmless:
        return True
    source, fds = handed(path, fd)
    try:
        done = run_child(_WALK, [source, str(max_links), str(max_depth)], WALK_SECONDS, fds)
    except NoChild as exc:
        warn_no_child(exc)
        return True
    except subprocess.TimeoutExpired:
        raise error(
            f"cannot read {what} {path}: walking its structure did not end in "
            f"{WALK_SECONDS} s; it is damaged or crafted (a loop in its B-trees or heaps)"
        ) from None
    except ChildDied as exc:
        raise error(
            f"cannot read {what} {path}: HDF5 crashed walking its structure ({exc}); it is "
            "damaged or crafted (a B-tree that loops)"
        ) from None
    if done.returncode in (0, 4):
        if done.returncode == 0:
            known_harmless(key)
        return done.returncode == 0
    reason = last_words(done)
    if done.returncode == 5:
        raise error(
            f"{path}: walking its structure took more than {CHILD_BYTES >> 20} MB; it is "
            f"damaged or crafted (a heap whose free list loops) ({reason})"
        )
    raise error(f"{path}: cannot read it, it is damaged ({reason})")
