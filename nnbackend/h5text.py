"""Text in an HDF5 file that anyone may have written: small scalar attributes
(``attribute``), a few variable-length strings stored as a dataset (``strings``),
nnbackend's own fixed-length strings (``write_text``), and JSON
bounded in length and nesting before ``json.loads`` can recurse (``parse_json``).

A variable-length string is kept in the file's global heap, and HDF5 reading a
damaged heap can loop forever (one byte changed is enough, and the loop ignores
Ctrl-C). nnbackend writes fixed-length strings; a variable-length one, as files
written before those have, is read by a child process that is killed after
``HEAP_SECONDS``. Problems raise the caller's ``error`` with the file's name, as in
``nnbackend.h5safe``.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import h5py
import numpy as np

from nnbackend.h5child import (
    ChildDied,
    NoChild,
    handed,
    last_words,
    printable,
    run_child,
    warn_no_child,
)
from nnbackend.h5safe import OPEN_FILES
from nnbackend.h5types import NESTED, shallow

MAX_JSON_CHARS = 1 << 20
MAX_JSON_DEPTH = 64
MAX_ATTR_BYTES = 1 << 20
#: how long a child process may take to read one variable-length string
HEAP_SECONDS = 20


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
        held = attr.dtype if shallow(attr.get_type()) else NESTED
        raise error(
            f"{path}: the attribute {where} should be a single {kind}, "
            f"but is {held} of shape {attr.shape}"
        )
    if attr.get_storage_size() > MAX_ATTR_BYTES:
        raise error(f"{path}: the attribute {where} is larger than {MAX_ATTR_BYTES} bytes")
    if kind == "int":
        return int(obj.attrs[name])
    text = None
    if attr.get_type().is_variable_str():
        text = _read_apart(path, obj, name, where, error)  # None: no child to read it
    if text is None:
        text = _text(obj.attrs[name])
    if len(text) > MAX_ATTR_BYTES:
        raise error(f"{path}: the attribute {where} is longer than {MAX_ATTR_BYTES} characters")
    return text


def write_text(obj, name: str, text: str) -> None:
    """``obj.attrs[name] = text`` as a fixed-length UTF-8 string, kept in the object's
    header rather than in the global heap (see the module's docstring)."""
    obj.attrs[name] = np.bytes_(text.encode("utf-8"))


def strings(path, f, name: str, error, max_chars: int) -> list[str]:
    """The variable-length strings of the dataset ``f[name]`` (a few: the caller checks
    its shape), read as a string attribute is (they too are kept in the global heap);
    refused past ``max_chars`` characters together, or where they are no UTF-8 text (as
    fixed-length names are)."""
    where = f[name].name
    texts = _read_apart(path, f[name], "", where, error, max_chars)
    if texts is None:  # no child to read them
        values = f[name][()].tolist()
        try:
            texts = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]
        except UnicodeDecodeError:
            raise error(
                f"{path}: {where} holds {printable(repr(values)[:200])}, which is not UTF-8 text"
            ) from None
        if sum(map(len, texts)) > max_chars:
            raise error(f"{path}: the strings of {where} are longer than {max_chars} characters")
    return texts


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


# Runs in a child (``h5child``): reads one attribute, or a dataset's strings (``name``
# empty), and prints it as JSON after RESULT. What HDF5 does with a damaged heap stays
# in the child.
RESULT = b"nnbackend result "
_READ_ONE = f"""
source, obj_name, name, max_chars = ARGS
try:
    with h5py.File(opened(source), "r", locking=False) as f:
        value = f[obj_name].attrs[name] if name else f[obj_name][()].tolist()
except Exception as exc:
    sys.stderr.write(type(exc).__name__ + ": " + " ".join(str(exc).split()))
    finish(1)
errors = "replace" if name else "strict"  # a dataset's names: no UTF-8, refused
try:
    text = lambda v: v.decode("utf-8", errors) if isinstance(v, bytes) else str(v)
    value = [text(v) for v in value] if isinstance(value, list) else text(value)
except UnicodeDecodeError:
    sys.stderr.write(repr(value)[:200])
    finish(6)
if sum(map(len, value)) > int(max_chars):  # characters, of a string or of each
    finish(4)  # said by its code: the parent need not take in what it refuses
sys.stdout.write(chr(10) + "{RESULT.decode()}" + json.dumps(value))
finish(0)
"""


def _read_apart(path, obj, name: str, where: str, error, max_chars=MAX_ATTR_BYTES):
    """A variable-length string attribute of ``obj`` (or its strings, where ``name`` is
    empty), read in a child process given HEAP_SECONDS (of the file ``open_untrusted``
    opened, where it did); None, warned of, where no child can start."""
    source, fds = handed(path, OPEN_FILES.get(obj.file.id.id))
    args = [source, obj.name, name, str(max_chars)]
    try:
        done = run_child(_READ_ONE, args, HEAP_SECONDS, fds)
    except NoChild as exc:
        warn_no_child(exc)
        return None
    except subprocess.TimeoutExpired:
        raise error(
            f"{path}: reading the string {where} did not end in {HEAP_SECONDS} s: the "
            "file's string heap is damaged"
        ) from None
    except ChildDied as exc:
        raise error(f"{path}: cannot read the string {where}, it is damaged ({exc})") from None
    reason = last_words(done)
    if done.returncode == 6:
        raise error(f"{path}: {where} holds {reason}, which is not UTF-8 text")
    if done.returncode != 0 and done.returncode != 4:
        raise error(f"{path}: cannot read the string {where}, it is damaged ({reason})")
    mark = b"\n" + RESULT  # JSON (ASCII) holds no newline: a string holding RESULT is no mark
    said = done.stdout.rpartition(mark)[2]  # after what a sitecustomize may print
    if done.returncode == 4 or len(said) > 12 * max_chars + 64:  # JSON: 12 a character
        longer = f"the string {where} is" if name else f"the strings of {where} are"
        raise error(f"{path}: {longer} longer than {max_chars} characters")
    if mark not in done.stdout:
        raise error(f"{path}: cannot read the string {where}, it is damaged (no result)")
    return json.loads(said.decode())


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
        return json.loads(
            text, parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=_short_int
        )
    except (ValueError, RecursionError) as exc:
        raise error(f"{path}: its {what} is not valid JSON ({printable(str(exc))})") from None


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number a file may hold")


def _short_int(text: str) -> int:
    """``int(text)``, or a ValueError naming the digits past Python's limit (which
    ``json.dumps`` holds to as well: ``nb.save`` cannot write more)."""
    digits, limit = len(text.lstrip("-")), sys.get_int_max_str_digits()
    if limit and digits > limit:
        raise ValueError(f"an integer of {digits} digits, past Python's limit of {limit}")
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} overflows to {value}")
    return value
