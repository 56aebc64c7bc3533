"""Each chunk of a filtered HDF5 dataset checked before HDF5 reads it (``h5safe``'s
``dataset`` calls ``check_chunks_inflate``): HDF5 inflates a deflated chunk's whole
stream whatever its length, and fills a chunk that comes back short from stale memory."""

from __future__ import annotations

import math
import zlib

import h5py

#: the bytes fletcher32 adds to a chunk
CHECKSUM_BYTES = 4


def check_chunks_inflate(path, where, item, error) -> None:
    """Each filtered chunk must come back to its own size, no more and no less; HDF5
    checks neither. Its deflate inflates a chunk's whole stream, however long, before it
    keeps a chunk's worth (one 1 MB chunk of zeros took 1 GiB), and a chunk that comes
    back short leaves the rest of its buffer as the memory held it (read as weights).
    A deflated chunk is inflated here first, stopped past its size; the others' lengths
    are the chunk index's (shuffle keeps a length, fletcher32 adds its checksum)."""
    plist = item.id.get_create_plist()
    filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    if not filters or plist.get_layout() != h5py.h5d.CHUNKED:
        return
    size = math.prod(item.chunks) * item.dtype.itemsize
    for info in _chunk_infos(item.id):
        done = [f for i, f in enumerate(filters) if not info.filter_mask & (1 << i)]
        if h5py.h5z.FILTER_DEFLATE in done:
            length = len(_unfiltered(path, where, item, info.chunk_offset, filters, size, error))
        else:
            length = info.size - CHECKSUM_BYTES * done.count(h5py.h5z.FILTER_FLETCHER32)
        if length != size:
            raise error(
                f"{path}: {where} has a chunk of {length} bytes where its size is {size}; "
                "it is damaged or crafted (HDF5 would fill the rest from stale memory)"
            )


def _chunk_infos(dataset_id) -> list:
    """Each chunk's StoreInfo from one walk of the chunk index: ``get_chunk_info(i)``
    walks it from the start each time (16,384 chunks of a 2 MB file took a minute)."""
    infos = []
    try:
        dataset_id.chunk_iter(infos.append)
    except (AttributeError, NotImplementedError):  # h5py before 3.8, HDF5 before 1.12.3
        infos = [dataset_id.get_chunk_info(i) for i in range(dataset_id.get_num_chunks())]
    return infos


def _unfiltered(path, where, item, offset, filters, size: int, error) -> bytes:
    """The chunk at ``offset`` with its filters undone, inflated no further than its
    size (and the checksums a filter after deflate may have added)."""
    mask, data = item.id.read_direct_chunk(offset)
    for i in reversed(range(len(filters))):  # the read undoes the filters last first
        if mask & (1 << i):  # this filter was skipped for this chunk
            continue
        if filters[i] == h5py.h5z.FILTER_FLETCHER32:
            data = data[:-CHECKSUM_BYTES]
        elif filters[i] == h5py.h5z.FILTER_DEFLATE:
            data = _inflated(path, where, data, size + CHECKSUM_BYTES * len(filters), error)
    return data


def _inflated(path, where, data: bytes, limit: int, error) -> bytes:
    inflate = zlib.decompressobj()
    try:
        out = inflate.decompress(data, limit + 1)
    except zlib.error as exc:
        raise error(f"{path}: {where} is damaged: a chunk does not inflate ({exc})") from None
    if len(out) > limit:
        raise error(
            f"{path}: {where} has a compressed chunk that inflates past its size of {limit} "
            "bytes; it was crafted to make the reader inflate far more than the file holds"
        )
    if not inflate.eof:
        raise error(f"{path}: {where} is damaged: a compressed chunk ends too soon")
    return out
