"""Reading an HDF5 file that anyone may have written (a checkpoint, a data set).

HDF5 can keep a dataset's bytes in another file (external storage), link a name to
another file (external links), point at another name (soft links) or map a dataset
onto other files (virtual datasets). ``open_untrusted`` walks every link of the file
before a byte of data is read and refuses all of these, as it refuses filters that
would need a plugin (a plugin is code). What remains are datasets stored in the file
itself, reached by hard links. Each object may have one link only: a second makes
the reader load the same bytes again (67 links to one compressed weight made a 55 KB
checkpoint allocate 67 copies) or closes a cycle. Groups may nest MAX_DEPTH deep, and
a file may hold MAX_LINKS links.

Then nothing is read before its size is known: ``dataset`` checks the declared
shape and dtype against what the caller expects and that the file really holds the
bytes (a tiny file cannot declare a huge, never-written dataset and make the reader
allocate it): compressed, at most MAX_COMPRESSION times what it stores (deflate's
limit), or the caller's ``max_ratio`` (64 for images, which compress far less);
``attribute`` reads only small scalar attributes; ``parse_json`` bounds the text's
length and nesting before ``json.loads`` can recurse. Running out of memory while
reading is reported as such, not as damage.

A variable-length string is kept in the file's global heap, and HDF5 reading a
damaged heap can loop forever (one byte changed is enough, and the loop ignores
Ctrl-C). nnbackend writes fixed-length strings (``write_text``); a variable-length one,
as files written before those have, is read by a child process that is killed after
``HEAP_SECONDS``.

Every problem raises ``error`` (a ValueError subclass chosen by the caller) with the
file's name; the operating system's own errors (missing file, permission) stay OSError.
Text from the file goes into a message through ``repr`` or ``printable``: a newline or a
terminal escape in it cannot forge a log line, nor a lone surrogate make the message
unprintable.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np

#: filters HDF5 or h5py carry built in: deflate (gzip), shuffle, fletcher32, lzf
SAFE_FILTERS = {h5py.h5z.FILTER_DEFLATE, h5py.h5z.FILTER_SHUFFLE, h5py.h5z.FILTER_FLETCHER32, 32000}
#: those of them that compress (shuffle reorders bytes, fletcher32 adds a checksum)
COMPRESSING = {h5py.h5z.FILTER_DEFLATE, 32000}
#: what h5py raises for a damaged file, besides OSError (an address past the end of
#: the file, a dataspace that contradicts itself, a name that is not UTF-8)
DAMAGE = (KeyError, RuntimeError, TypeError, ValueError)
#: deflate gives at most ~1032:1; a chunked dataset declaring more than this many
#: bytes per stored byte cannot be genuine
MAX_COMPRESSION = 1100
MAX_LINKS = 100_000
#: groups within groups; nnbackend's own files nest 2 deep (/callbacks/<key>)
MAX_DEPTH = 16
MAX_JSON_CHARS = 1 << 20
MAX_JSON_DEPTH = 64
MAX_ATTR_BYTES = 1 << 20
#: how long a child process may take to read one variable-length string
HEAP_SECONDS = 20

_LINK_KINDS = {h5py.h5l.TYPE_SOFT: "a soft link", h5py.h5l.TYPE_EXTERNAL: "an external link"}


@contextlib.contextmanager
def open_untrusted(path, error: type[ValueError] = ValueError, what: str = "file"):
    """``h5py.File`` of ``path``, read-only, once every link and dataset in it has been
    checked (see the module's docstring). OS errors stay OSError; anything else that is
    wrong with the file raises ``error``. ``what`` names the file in messages."""
    path = Path(path)
    with open(path, "rb") as handle:  # FileNotFoundError, PermissionError, ... as they are
        try:
            f = h5py.File(handle, "r")
        except OSError as exc:
            raise error(
                f"cannot read {what} {path}: not a readable HDF5 file, or it is truncated "
                f"({printable(str(exc))})"
            ) from None
        with f:
            try:
                check_structure(path, f, error)
                yield f
            except error:
                raise
            except MemoryError:
                raise error(
                    f"{path}: it declares more data than fits in memory; it was written on a "
                    "machine with more, or crafted to exhaust memory"
                ) from None
            except (OSError, *DAMAGE) as exc:  # h5py's read errors: damaged data, not the OS
                reason = f"{_read_failure(exc)} ({printable(str(exc))})"
                raise error(f"{path}: cannot read it, {reason}") from None


def printable(text: str) -> str:
    """``text`` with each character that is not printable (newline, terminal escape,
    lone surrogate) written as its escape, for a message that may show text of a file."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


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
    count = 0
    pending = [(f.id, b".", "", 0)]  # groups to read: (parent, name, shown path, depth)
    while pending:
        parent, name, where, depth = pending.pop()
        group = h5py.h5g.open(parent, name)
        links = _own_links(group, MAX_LINKS - count)
        count += len(links)
        if count > MAX_LINKS:
            raise error(
                f"{path} holds more than {MAX_LINKS} links; no nnbackend file has that many"
            )
        for link, kind in links:
            shown = _link_name(path, link, where, error)
            target = _hard_target(path, group, link, kind, shown, error)
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


def _hard_target(path: Path, group, name: bytes, kind: int, shown: str, error) -> int:
    """The type of the object the link ``name`` in ``group`` leads to, once the link is
    a hard link (to this file) and the object has no other link."""
    if kind != h5py.h5l.TYPE_HARD:
        what = _LINK_KINDS.get(kind, "a user-defined link")
        raise error(
            f"{path}: {shown!r} is {what}, which could read another file; "
            "only objects stored in the file itself are read"
        )
    info = h5py.h5o.get_info(group, name)
    if info.rc > 1:  # nb.save links each object once; more could make it read one many times
        raise error(
            f"{path}: {shown!r} is reached by {info.rc} hard links; nnbackend files link "
            "each object once (several links could make the reader load one array many "
            "times, or walk a cycle)"
        )
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
            raise error(
                f"{path}: dataset {name!r} uses HDF5 filter {code}, which would "
                "need a plugin; only gzip, shuffle, fletcher32 and lzf are read"
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
    dtype = _plain_dtype(path, where, item, kinds, error)
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
    return item[()]


def dataset_info(path, group: h5py.Group, name: str, error) -> tuple[tuple, np.dtype]:
    """(shape, dtype) that ``group[name]`` declares, without reading it."""
    where = f"{group.name.rstrip('/')}/{name}"
    item = _hard_item(path, group, name, where, error)
    if not isinstance(item, h5py.Dataset) or item.shape is None:
        raise error(f"{path}: {where} is not a dataset with data")
    return tuple(int(n) for n in item.shape), item.dtype


def _hard_item(path, group, name, where, error):
    link = group.get(name, getlink=True)
    if link is None:
        raise error(f"{path}: {where} is missing")
    if not isinstance(link, h5py.HardLink):  # check_structure refused these already
        raise error(f"{path}: {where} is not stored in the file itself")
    return group[name]


def _plain_dtype(path, where, item, kinds: str, error) -> np.dtype:
    classes = {h5py.h5t.INTEGER, h5py.h5t.FLOAT}
    type_id = item.id.get_type()
    cls = type_id.get_class()
    fixed_string = cls == h5py.h5t.STRING and not type_id.is_variable_str()
    dtype = item.dtype
    plain = cls in classes or fixed_string
    if not plain or dtype.kind not in kinds or dtype.itemsize > 8 and dtype.kind != "S":
        raise error(f"{path}: {where} holds {dtype} values, but {_kind_names(kinds)} are expected")
    return dtype


def _kind_names(kinds: str) -> str:
    names = {"f": "floats", "i": "integers", "u": "integers", "S": "strings"}
    return " or ".join(dict.fromkeys(names[k] for k in kinds))


def _check_stored_size(path, where, item, nbytes: int, error, max_ratio: int) -> None:
    """The file must hold the bytes it declares: all of them for plain data, at least
    1/max_ratio of them for compressed chunks."""
    stored = item.id.get_storage_size()
    plist = item.id.get_create_plist()
    if plist.get_layout() == h5py.h5d.CHUNKED:
        chunk = math.prod(item.chunks) * item.dtype.itemsize
        if chunk > max(nbytes, 1 << 20):
            raise error(f"{path}: {where} has chunks of {chunk} bytes for {nbytes} bytes of data")
        chunks = math.prod(-(-n // c) for n, c in zip(item.shape, item.chunks, strict=True))
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


# --- attributes and JSON ----------------------------------------------------------


def attribute(path, obj, name: str, error, kind: str, *, default=...):
    """The scalar attribute ``obj.attrs[name]`` as a Python ``str`` or ``int`` (``kind``
    "str" or "int"). Its shape, type and size are checked before it is read.
    Missing: ``default`` if one is given, else ``error``."""
    where = f"{obj.name.rstrip('/')}/@{name}"
    if name not in obj.attrs:
        if default is ...:
            raise error(f"{path}: the attribute {where} is missing")
        return default
    attr = h5py.h5a.open(obj.id, name.encode())
    wanted = h5py.h5t.STRING if kind == "str" else h5py.h5t.INTEGER
    if attr.shape != () or attr.get_type().get_class() != wanted:
        raise error(
            f"{path}: the attribute {where} should be a single {kind}, "
            f"but is {attr.dtype} of shape {attr.shape}"
        )
    if attr.get_storage_size() > MAX_ATTR_BYTES:
        raise error(f"{path}: the attribute {where} is larger than {MAX_ATTR_BYTES} bytes")
    if kind == "str" and attr.get_type().is_variable_str():
        text = _read_apart(path, obj.name, name, where, error)
    elif kind == "int":
        return int(obj.attrs[name])
    else:
        value = obj.attrs[name]
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    if len(text) > MAX_ATTR_BYTES:
        raise error(f"{path}: the attribute {where} is longer than {MAX_ATTR_BYTES} characters")
    return text


def write_text(obj, name: str, text: str) -> None:
    """``obj.attrs[name] = text`` as a fixed-length UTF-8 string, kept in the object's
    header rather than in the global heap (see the module's docstring)."""
    obj.attrs[name] = np.bytes_(text.encode("utf-8"))


# Runs in a child: reads one attribute, with its address space capped (where it can
# be), and prints it as JSON. What HDF5 does with a damaged heap stays in the child.
_READ_ONE = """
import json, sys
try:
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
except (ImportError, ValueError, OSError):
    pass
import h5py
with h5py.File(sys.argv[1], "r") as f:
    value = f[sys.argv[2]].attrs[sys.argv[3]]
text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
sys.stdout.write(json.dumps(text))
"""


def _read_apart(path, obj_name: str, name: str, where: str, error) -> str:
    """A variable-length string attribute, read in a child process given HEAP_SECONDS."""
    command = [sys.executable, "-I", "-c", _READ_ONE, str(path), obj_name, name]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=HEAP_SECONDS)
    except subprocess.TimeoutExpired:
        raise error(
            f"{path}: reading the string {where} did not end in {HEAP_SECONDS} s: the "
            "file's string heap is damaged"
        ) from None
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise error(f"{path}: cannot read the string {where}, it is damaged ({printable(reason)})")
    if len(done.stdout) > 8 * MAX_ATTR_BYTES:  # JSON escapes at most 6 characters per one
        raise error(f"{path}: the string {where} is longer than {MAX_ATTR_BYTES} characters")
    return json.loads(done.stdout)


_STRING_REST = re.compile(r'(?:[^"\\]|\\.)*"', re.S)  # a string after its opening quote
_BRACKET = re.compile(r"[\[\]{}]")


def _nesting(text: str) -> int:
    """The deepest nesting of brackets outside strings, in one pass over ``text`` (a
    string left open ends the count: json.loads refuses the text anyway)."""
    depth = deepest = position = 0
    while position < len(text) and deepest <= MAX_JSON_DEPTH:
        quote = text.find('"', position)
        end = len(text) if quote < 0 else quote
        for match in _BRACKET.finditer(text, position, end):
            depth += 1 if match.group() in "[{" else -1
            deepest = max(deepest, depth)
        string = None if quote < 0 else _STRING_REST.match(text, quote + 1)
        position = len(text) if string is None else string.end()
    return deepest


def parse_json(path, text: str, what: str, error, max_chars: int = MAX_JSON_CHARS):
    """``json.loads(text)`` once its length and nesting depth are within bounds;
    NaN, Infinity and numbers that overflow to inf are refused."""
    if len(text) > max_chars:
        raise error(f"{path}: its {what} is {len(text)} characters long, more than {max_chars}")
    if _nesting(text) > MAX_JSON_DEPTH:
        raise error(f"{path}: its {what} is nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except (ValueError, RecursionError) as exc:
        raise error(f"{path}: its {what} is not valid JSON ({printable(str(exc))})") from None


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number a file may hold")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} overflows to {value}")
    return value
