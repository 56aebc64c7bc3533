"""Reading an HDF5 file that anyone may have written (a checkpoint, a data set).

HDF5 can keep a dataset's bytes in another file (external storage), link a name to
another file (external links), point at another name (soft links) or map a dataset
onto other files (virtual datasets). ``open_untrusted`` walks every link of the file
before a byte of data is read and refuses all of these, as it refuses filters that
would need a plugin (a plugin is code), and HDF5's own that nnbackend does not read.
What remains are datasets stored in the file itself, reached by hard links. Each
object may have one link only: a second makes the reader load the same bytes again
(67 links to one compressed weight made a 55 KB checkpoint allocate 67 copies) or
closes a cycle. Groups may nest MAX_DEPTH deep, and a file may hold MAX_LINKS links.
That walk runs first in a child process (``h5walk``), where HDF5's own crashes on a
crafted file stay. Then nothing is read before its size is known: ``dataset`` checks the declared
shape and dtype against what the caller expects and that the file really holds the
bytes (a tiny file cannot declare a huge, never-written dataset and make the reader
allocate it): compressed, at most MAX_COMPRESSION times what it stores (deflate's
limit), or the caller's ``max_ratio`` (64 for images, which compress far less).
Running out of memory while reading is reported as such, not as damage; a GPU's, as
the arrays move there, as the GPU's library says it. Text in such a file (attributes,
JSON) is read by ``nnbackend.h5text``.

Every problem raises ``error`` (a ValueError subclass chosen by the caller) with the
file's name; the operating system's own errors (missing file, permission) stay OSError.
Text from the file goes into a message through ``repr`` or ``printable``: a newline or a
terminal escape in it cannot forge a log line, nor a lone surrogate make the message
unprintable.
"""

from __future__ import annotations

import contextlib
import errno
import io
import math
import os
import stat
from pathlib import Path

import h5py
import numpy as np

from nnbackend.h5child import printable
from nnbackend.h5chunks import check_chunks_inflate
from nnbackend.h5types import NESTED, plain_dtype, shallow
from nnbackend.h5walk import walk_apart

try:
    import fcntl
except ImportError:  # Windows, which passes no descriptor to a child (h5child.handed)
    fcntl = None

#: filters HDF5 carries built in: deflate (gzip), shuffle, fletcher32. Not h5py's lzf:
#: its decoder retries with a buffer grown step by step (a 0.76 MB file took 26 s)
SAFE_FILTERS = {h5py.h5z.FILTER_DEFLATE, h5py.h5z.FILTER_SHUFFLE, h5py.h5z.FILTER_FLETCHER32}
#: those of them that compress (shuffle reorders bytes, fletcher32 adds a checksum)
COMPRESSING = {h5py.h5z.FILTER_DEFLATE}
LZF = 32000
#: HDF5's own filters that nnbackend does not read (no nnbackend file uses them)
BUILT_IN_FILTERS = {
    h5py.h5z.FILTER_SZIP: "HDF5's szip, which nnbackend does not read",
    h5py.h5z.FILTER_NBIT: "HDF5's nbit, which nnbackend does not read",
    h5py.h5z.FILTER_SCALEOFFSET: "HDF5's scaleoffset, which nnbackend does not read",
}  # fmt: skip
#: what h5py raises for a damaged file, besides OSError (an address past the end of
#: the file, or past any a seek takes; a dataspace that contradicts itself, a name that
#: is not UTF-8)
DAMAGE = (KeyError, RuntimeError, TypeError, ValueError, OverflowError)
#: deflate gives at most ~1032:1; a chunked dataset declaring more than this many
#: bytes per stored byte cannot be genuine
MAX_COMPRESSION = 1100
#: HDF5 allocates ~4 KB to read each chunk: 1-value chunks made a 2 MB file take 1.9 GB
MAX_SMALL_CHUNKS = 1024
MIN_CHUNK_BYTES = 4096
MAX_LINKS = 100_000
#: groups within groups; nnbackend's own files nest 2 deep (/callbacks/<key>)
MAX_DEPTH = 16

_LINK_KINDS = {h5py.h5l.TYPE_SOFT: "a soft link", h5py.h5l.TYPE_EXTERNAL: "an external link"}


def _open_regular(path: Path, error: type[ValueError], what: str):
    """``path`` opened for reading if it is a regular file. Opened without blocking: a
    FIFO named like a checkpoint would wait for a writer for ever. FileNotFoundError,
    PermissionError, ... stay as they are."""
    nonblocking = getattr(os, "O_NONBLOCK", 0)  # POSIX; Windows has no FIFOs to fear
    try:
        fd = os.open(path, os.O_RDONLY | nonblocking | getattr(os, "O_BINARY", 0))
    except OSError as exc:  # a socket cannot be opened: "No such device or address"
        if exc.errno == errno.ENXIO and _is_socket(path):
            raise error(f"cannot read {what} {path}: it is not a regular file (a socket)") from None
        raise
    if fd <= 2 and fcntl is not None:  # stdout or stderr closed: a child's pipes take 1, 2
        fd, low = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3), fd
        os.close(low)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):  # an OS error, as open() gives it
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        raise error(f"cannot read {what} {path}: it is not a regular file (a pipe or a device)")
    if nonblocking:
        os.set_blocking(fd, True)
    return _WholeReads(fd, "r")


class _WholeReads(io.FileIO):
    """A file read unbuffered (a child handed its descriptor, h5text's, moves the offset
    a buffer would count as its own), each read filled whole: h5py's driver takes a
    short read (one ``read`` gives at most 2 GiB on Linux) as the file's end and zeroes
    the rest, where a buffered reader had asked on, as this does."""

    def readinto(self, buffer) -> int:
        view, done = memoryview(buffer).cast("B"), 0
        while done < len(view):
            got = super().readinto(view[done:])
            if not got:
                break
            done += got
        return done


def _is_socket(path) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


#: the HDF5 file id of each file ``open_untrusted`` holds open -> its file descriptor,
#: for a child of ``h5text`` to read the very file, not its name again
OPEN_FILES: dict[int, int] = {}


#: the first bytes of files taken for checkpoints, which checkpoints are not (HDF5)
_OTHER_FORMATS = {b"PK\x03\x04": "a zip file (NumPy's .npz, torch's .pt)",
                  b"\x93NUMPY": "a NumPy .npy file",
                  **{bytes([0x80, n]): "a Python pickle" for n in range(2, 6)}}  # fmt: skip


def _other_format(fd: int) -> str | None:
    """What the file open at ``fd`` is, where its first bytes say another format."""
    head = os.pread(fd, 8, 0)
    kind = next((k for sig, k in _OTHER_FORMATS.items() if head.startswith(sig)), None)
    return kind and f"it is {kind}, not HDF5"


@contextlib.contextmanager
def open_untrusted(path, error: type[ValueError] = ValueError, what: str = "file"):
    """``h5py.File`` of ``path``, read-only, once every link and dataset in it has been
    checked (see the module's docstring). OS errors stay OSError; anything else that is
    wrong with the file raises ``error``. ``what`` names the file in messages."""
    path = Path(path)
    with _open_regular(path, error, what) as handle:
        walked = walk_apart(path, handle.fileno(), error, what, MAX_LINKS, MAX_DEPTH)
        try:
            f = h5py.File(handle, "r")
        except (OSError, *DAMAGE) as exc:  # h5py's reader of a file object raises ValueError too
            said = _other_format(handle.fileno()) or "not a readable HDF5 file, or it is truncated"
            raise error(f"cannot read {what} {path}: {said} ({printable(str(exc))})") from None
        if not walked:  # HDF5 opened it here, not in the child: no walk vouches for it
            f.close()
            raise error(f"cannot read {what} {path}: it could not be walked apart first")
        key = f.id.id
        OPEN_FILES[key] = handle.fileno()
        with f:
            try:
                check_structure(path, f, error)
                yield f
            except error:
                raise
            except (OSError, MemoryError, *DAMAGE) as exc:  # h5py's: damaged data, not the OS
                if type(exc).__name__ == "OutOfMemoryError":  # a GPU's (torch's, CuPy's)
                    raise  # as it is: the file read
                if isinstance(exc, MemoryError) or "can't allocate memory" in str(exc):
                    raise error(  # the second, torch's CPU allocator (a RuntimeError)
                        f"{path}: it declares more data than fits in memory; it was written on "
                        "a machine with more, or crafted to exhaust memory"
                    ) from None
                reason = f"{_read_failure(exc)} ({printable(str(exc))})"
                raise error(f"{path}: cannot read it, {reason}") from None
            finally:
                OPEN_FILES.pop(key, None)


def _read_failure(exc: BaseException) -> str:
    """What a read error says of the file. HDF5 reports a damaged compressed chunk (the
    usual cause) and a decompression that ran out of memory alike, as a filter's
    failure, so damage is named first."""
    if "filter returned failure" in str(exc):
        return "it is damaged, or it declares more data than fits in memory"
    return "it is damaged"


def check_structure(path: Path, f: h5py.File, error) -> None:
    """Refuse soft, external and user-defined links, any dataset that is virtual, stored
    outside the file or filtered by a plugin, any object reached by two links, groups
    nested over MAX_DEPTH deep, and files with over MAX_LINKS links.

    The walk goes group by group, each one's own links, from a stack: HDF5's own
    recursive visit overflowed the C stack on a 20,000-deep chain of groups (a crash,
    not an error), and looking each full path up from the root took quadratic time."""
    count, seen = 0, {h5py.h5o.get_info(f.id).addr}  # objects met, by address: the root's
    pending = [(f.id, b".", "", 0)]  # groups to read: (parent, name, shown path, depth)
    while pending:
        parent, name, where, depth = pending.pop()
        group = h5py.h5g.open(parent, name)
        room = MAX_LINKS - count  # a group's count of links is known before they are listed
        links = _own_links(group, room) if len(group) <= room else None
        count += len(group) if links is None else len(links)
        if count > MAX_LINKS:
            raise error(
                f"{path} holds more than {MAX_LINKS} links; no nnbackend file has that many"
            )
        for link, kind in links:
            shown = _link_name(path, link, where, error)
            target = _hard_target(path, group, link, kind, shown, error, seen)
            if target == h5py.h5o.TYPE_DATASET:
                _check_storage(path, shown, h5py.h5d.open(group, link), error)
            elif target != h5py.h5o.TYPE_GROUP:
                raise error(f"{path}: {shown!r} is neither a group nor a dataset")
            elif depth + 1 > MAX_DEPTH:
                raise error(
                    f"{path}: the group {shown!r} lies {depth + 1} levels deep, more than the "
                    f"{MAX_DEPTH} allowed; the files nnbackend reads nest groups 2 deep at most"
                )
            else:
                pending.append((group, link, shown, depth + 1))


def _own_links(group, room: int) -> list[tuple[bytes, int]]:
    """(name, link type) of the links in ``group`` itself (not below it): at most
    ``room + 1`` of them, so that a file with too many is found without listing all."""
    links = []

    def take(name: bytes, info) -> int | None:
        links.append((name, info.type))
        return 1 if len(links) > room else None  # a non-None return stops the iteration

    group.links.iterate(take, info=True)
    return links


def _link_name(path: Path, name: bytes, where: str, error) -> str:
    """The path of the link ``name`` in the group at ``where``, as messages show it."""
    text = name.decode(errors="replace")
    shown = f"{where}/{text}" if where else text
    if text != name.decode(errors="ignore"):
        raise error(f"{path}: the name {shown!r} is not UTF-8; no nnbackend file holds one")
    return shown


def _hard_target(path: Path, group, name: bytes, kind: int, shown: str, error, seen) -> int:
    """The type of the object the link ``name`` in ``group`` leads to, once the link is
    a hard link (to this file) and the object has no other link: by its header's count,
    and by its address, not in ``seen`` (the count of a header without a checksum can
    be edited to 1)."""
    if kind != h5py.h5l.TYPE_HARD:
        what = _LINK_KINDS.get(kind, "a user-defined link")
        raise error(
            f"{path}: {shown!r} is {what}, which could read another file; "
            "only objects stored in the file itself are read"
        )
    info = h5py.h5o.get_info(group, name)
    if info.rc > 1 or info.addr in seen:  # nb.save links each object once
        raise error(
            f"{path}: {shown!r} is reached by {max(info.rc, 2)} hard links; nnbackend files "
            "link each object once (several links could make the reader load one array "
            "many times, or walk a cycle)"
        )
    seen.add(info.addr)
    return info.type


def _check_storage(path: Path, name: str, dataset, error) -> None:
    plist = dataset.get_create_plist()
    if plist.get_layout() == h5py.h5d.VIRTUAL:
        raise error(
            f"{path}: dataset {name!r} is virtual (mapped onto other files); "
            "only data stored in the file itself is read"
        )
    if plist.get_external_count():
        raise error(
            f"{path}: dataset {name!r} keeps its bytes in another file "
            "(external storage); only data stored in the file itself is read"
        )
    for i in range(plist.get_nfilters()):
        code = plist.get_filter(i)[0]
        if code not in SAFE_FILTERS:
            why = "h5py's lzf, whose decoder a crafted chunk keeps busy for minutes"
            why = why if code == LZF else BUILT_IN_FILTERS.get(code, "which would need a plugin")
            raise error(
                f"{path}: dataset {name!r} uses HDF5 filter {code}, {why}; only gzip, "
                "shuffle and fletcher32 are read"
            )


# --- datasets ---------------------------------------------------------------------


def dataset(
    path,
    group: h5py.Group,
    name: str,
    error,
    *,
    shape=None,
    kinds="f",
    max_bytes: int | None = None,
    max_ratio: int = MAX_COMPRESSION,
    needs: str = "the reader",
) -> np.ndarray:
    """The array stored as ``group[name]``, read only once its declared shape (if
    ``shape`` is given, or at most ``max_bytes``), dtype kind (``kinds``: "f" float,
    "iu" integers, "S" fixed-length bytes) and stored size are checked: compressed, it
    may declare at most ``max_ratio`` bytes per stored byte (images compress far less
    than the 1100 that deflate's limit allows).
    ``needs`` says in errors who expects the shape ("the architecture")."""
    where = f"{group.name.rstrip('/')}/{name}"
    item = _hard_item(path, group, name, where, error)
    if not isinstance(item, h5py.Dataset):
        raise error(f"{path}: {where} is a group, not a dataset")
    dtype = plain_dtype(path, where, item, kinds, error)
    declared = tuple(int(n) for n in item.shape) if item.shape is not None else None
    if declared is None:
        raise error(f"{path}: {where} has no data (an empty dataspace)")
    if shape is not None and declared != tuple(shape):
        raise error(f"{path}: {where} has shape {declared}, but {needs} needs {tuple(shape)}")
    nbytes = math.prod(declared) * dtype.itemsize
    if max_bytes is not None and nbytes > max_bytes:
        raise error(
            f"{path}: {where} declares {declared} {dtype} ({nbytes} bytes), more "
            f"than the {max_bytes} bytes allowed"
        )
    _check_stored_size(path, where, item, nbytes, error, max_ratio)
    check_chunks_inflate(path, where, item, error)
    return item[()]


def dataset_info(path, group: h5py.Group, name: str, error) -> tuple[tuple, np.dtype]:
    """(shape, dtype) that ``group[name]`` declares, without reading it."""
    where = f"{group.name.rstrip('/')}/{name}"
    item = _hard_item(path, group, name, where, error)
    if not isinstance(item, h5py.Dataset) or item.shape is None:
        raise error(f"{path}: {where} is not a dataset with data")
    if not shallow(item.id.get_type()):
        raise error(f"{path}: {where} holds values of {NESTED}")
    return tuple(int(n) for n in item.shape), item.dtype


def _hard_item(path, group, name, where, error):
    link = group.get(name, getlink=True)
    if link is None:
        raise error(f"{path}: {where} is missing")
    if not isinstance(link, h5py.HardLink):  # check_structure refused these already
        raise error(f"{path}: {where} is not stored in the file itself")
    return group[name]


def _check_stored_size(path, where, item, nbytes: int, error, max_ratio: int) -> None:
    """The file must hold the bytes it declares: all of them for plain data, at least
    1/max_ratio of them for compressed chunks. What the chunk index says is stored is
    trusted no further than the file's size (its entries may all name one chunk)."""
    stored = min(item.id.get_storage_size(), item.file.id.get_filesize())
    plist = item.id.get_create_plist()
    if plist.get_layout() == h5py.h5d.CHUNKED:
        chunk = math.prod(item.chunks) * item.dtype.itemsize
        if chunk > max(nbytes, 1 << 20):
            raise error(f"{path}: {where} has chunks of {chunk} bytes for {nbytes} bytes of data")
        chunks = math.prod(-(-n // c) for n, c in zip(item.shape, item.chunks, strict=True))
        if chunks > max(MAX_SMALL_CHUNKS, nbytes // MIN_CHUNK_BYTES):
            raise error(
                f"{path}: {where} is stored in {chunks} chunks of {chunk} bytes; HDF5 takes "
                f"kilobytes to read each, so at most {MAX_SMALL_CHUNKS} chunks, or one per "
                f"{MIN_CHUNK_BYTES} bytes, are read"
            )
        if item.id.get_num_chunks() < chunks:  # the rest would be the fill value, unread
            raise error(
                f"{path}: {where} stores {item.id.get_num_chunks()} of its {chunks} chunks; "
                "it is truncated or was crafted to force a large allocation"
            )
    filters = {plist.get_filter(i)[0] for i in range(plist.get_nfilters())}
    if filters & COMPRESSING:
        enough = stored * max_ratio >= nbytes and (stored > 0 or nbytes == 0)
    else:
        enough = stored >= nbytes
    if not enough:
        compressed = (
            f" (compressed, at most {max_ratio} times that)" if filters & COMPRESSING else ""
        )
        raise error(
            f"{path}: {where} declares {nbytes} bytes but the file stores {stored}{compressed}; "
            "it is truncated or was crafted to force a large allocation"
        )
