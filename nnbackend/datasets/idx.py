"""IDX files (MNIST's format), raw or gzipped, read as untrusted input.

The header (magic number, dimensions) is read and checked first; the size it
declares is checked against the file's length (raw) or MAX_GZIP_RATIO times it
(gzip; labels MAX_LABELS_GZIP_RATIO), and against ``MAX_IDX_BYTES``; only then is the
body read, streamed into an array of exactly that size. A gzip stream holding more
than the header declares is refused as soon as the extra byte appears, so a small
file cannot make the reader decompress gigabytes.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from nnbackend.datasets.pixels import MAX_IMAGE_RATIO

IDX_IMAGES, IDX_LABELS = 0x803, 0x801  # unsigned bytes, 3 and 1 dimensions
#: the most bytes of data one IDX file may declare (MNIST's largest holds 47 MB)
MAX_IDX_BYTES = 1 << 30
#: bytes of data a gzipped IDX file may declare per stored byte: images compress far
#: less than deflate's ~1032 on constant data; labels sorted by class come near it
MAX_GZIP_RATIO = MAX_IMAGE_RATIO
MAX_LABELS_GZIP_RATIO = 1100
_CHUNK = 1 << 20
_GZIP_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile)


class IdxFile:
    """One IDX file, open: ``shape`` is known once built; ``read()`` gives the body.

    Use as a context manager: ``with IdxFile(path, IDX_LABELS) as labels: ...``.
    """

    def __init__(self, path, magic: int):
        self.path = Path(path)
        self._raw = open(self.path, "rb")  # noqa: SIM115 - closed by __exit__
        try:
            self._stream, compressed = self._open_stream()
            self.shape = self._header(magic, compressed)
        except BaseException:
            self._raw.close()
            raise

    def __enter__(self) -> IdxFile:
        return self

    def __exit__(self, *exc) -> None:
        self._raw.close()

    def _open_stream(self):
        """The stream of IDX bytes, and the compressed size (None for a raw file)."""
        signature = self._raw.read(2)
        self._raw.seek(0)
        if signature != b"\x1f\x8b":
            return self._raw, None
        return gzip.GzipFile(fileobj=self._raw, mode="rb"), os.fstat(self._raw.fileno()).st_size

    def _header(self, magic: int, compressed: int | None) -> tuple[int, ...]:
        found = int.from_bytes(self._exactly(4, "header"), "big")
        if found != magic:
            kind = "images" if magic == IDX_IMAGES else "labels"
            raise ValueError(
                f"{self.path}: IDX magic number is {found:#x}, expected {magic:#x} ({kind}); "
                "is it the right file, or a damaged download?"
            )
        ndim = magic & 0xFF  # the low byte is the number of dimensions
        raw = self._exactly(4 * ndim, "header")
        shape = tuple(int.from_bytes(raw[i : i + 4], "big") for i in range(0, 4 * ndim, 4))
        ratio = MAX_LABELS_GZIP_RATIO if magic == IDX_LABELS else MAX_GZIP_RATIO
        self._check_size(shape, 4 + 4 * ndim, compressed, ratio)
        return shape

    def _check_size(self, shape, header: int, compressed: int | None, ratio: int) -> None:
        """The declared size against the file's (raw), or ``ratio`` times it (gzip)."""
        declared = math.prod(shape)
        if declared > MAX_IDX_BYTES:
            raise ValueError(
                f"{self.path}: header declares {shape} = {declared} bytes of data, more than "
                f"the {MAX_IDX_BYTES} an IDX file may hold here; it is damaged or not MNIST"
            )
        if compressed is None:
            held = os.fstat(self._raw.fileno()).st_size - header
            if held != declared:
                raise ValueError(
                    f"{self.path}: header promises {shape} = {declared} bytes of data but "
                    f"the file holds {held}; the file is truncated or damaged, download it again"
                )
        elif declared > ratio * compressed:
            what = "images do not" if ratio == MAX_GZIP_RATIO else "no data does"
            raise ValueError(
                f"{self.path}: header promises {shape} = {declared} bytes of data, over "
                f"{ratio} times the {compressed} bytes of the gzip file; {what} "
                "compress that well, so it is damaged or crafted"
            )

    def read(self) -> np.ndarray:
        """The body as uint8 of ``shape``; ValueError if the file holds less or more."""
        try:
            out = np.empty(self.shape, dtype=np.uint8)
        except MemoryError:
            raise MemoryError(
                f"{self.path}: its header declares {self.shape} = {math.prod(self.shape)} "
                "bytes, more than this machine has free now"
            ) from None
        view = memoryview(out.reshape(-1))
        done = 0
        while done < len(view):
            got = self._guarded(self._stream.readinto, view[done : done + _CHUNK])
            if not got:
                raise ValueError(
                    f"{self.path}: header promises {self.shape} = {len(view)} bytes of data "
                    f"but the file holds {done}; the file is truncated, download it again"
                )
            done += got
        if self._guarded(self._stream.read, 1):
            raise ValueError(
                f"{self.path}: holds more data than its header's {self.shape} promises; "
                "the file is damaged or not MNIST"
            )
        return out

    def _exactly(self, n: int, what: str) -> bytes:
        data = self._guarded(self._stream.read, n)
        if len(data) < n:
            raise ValueError(f"{self.path}: truncated IDX {what} ({len(data)} of {n} bytes)")
        return data

    def _guarded(self, call, argument):
        """``call(argument)``, with gzip's errors as a ValueError naming the file."""
        try:
            return call(argument)
        except _GZIP_ERRORS as err:
            raise ValueError(
                f"{self.path}: broken gzip data ({err}); the download is truncated or "
                "corrupt, delete it and download it again"
            ) from err
