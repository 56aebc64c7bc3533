"""A checkpoint's filtered chunks at their edges (filters skipped by a chunk's mask, a
checksum inside the deflate stream, an old h5py without chunk_iter, a deflate bomb
held to the chunk's size, streams cut short or not zlib's), and the sums and digest
the ranks of a distributed fit compare (every array, state too, every value)."""

from __future__ import annotations

import zlib

import h5py
import numpy as np
import pytest

from nnbackend.backend import get_backend
from nnbackend.distributed import fingerprints
from tests.conftest import HAVE_TORCH
from tests.test_reader_edges import read


def _one_chunk(path, stream, **options):
    with h5py.File(path, "w") as f:
        x = f.create_dataset("x", (2, 8), "f4", chunks=(2, 8), compression="gzip", **options)
        x.id.write_direct_chunk((0, 0), stream)


def test_a_deflate_stream_cut_before_its_end_is_refused(tmp_path):
    """All 64 bytes come out, but the stream's end (its adler32) is missing."""
    _one_chunk(tmp_path / "cut.h5", zlib.compress(bytes(64), 9)[:-4])
    with pytest.raises(ValueError, match=r"/x is damaged: a compressed chunk ends too soon"):
        read(tmp_path / "cut.h5", "x", kinds="f")


def test_a_chunk_that_is_no_deflate_stream_is_refused(tmp_path):
    _one_chunk(tmp_path / "junk.h5", b"this is no zlib stream at all")
    with pytest.raises(ValueError, match=r"/x is damaged: a chunk does not inflate"):
        read(tmp_path / "junk.h5", "x", kinds="f")


def test_a_chunk_checksummed_before_deflate_is_read(tmp_path):
    """fletcher32 before deflate: the checksum is inside the stream (64 + 4 bytes)."""
    path = tmp_path / "order.h5"
    data = np.arange(16, dtype="f4").reshape(2, 8)
    with h5py.File(path, "w") as f:
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_chunk((2, 8))
        dcpl.set_fletcher32()
        dcpl.set_deflate(6)
        space = h5py.h5s.create_simple((2, 8))
        dsid = h5py.h5d.create(f.id, b"x", h5py.h5t.IEEE_F32LE, space, dcpl=dcpl)
        h5py.Dataset(dsid)[...] = data
    np.testing.assert_array_equal(read(path, "x", kinds="f"), data)


def test_a_chunk_whose_checksum_filter_was_skipped_is_read(tmp_path):
    """A chunk stored with fletcher32 marked skipped (bit 1 of its filter mask) holds
    no checksum: its 64 bytes are all data, and read back."""
    path = tmp_path / "skipped.h5"
    data = np.arange(16, dtype="f4").reshape(2, 8)
    with h5py.File(path, "w") as f:
        x = f.create_dataset("x", (2, 8), "f4", chunks=(2, 8), shuffle=True, fletcher32=True)
        shuffled = data.view("u1").reshape(-1, 4).T.copy().tobytes()
        x.id.write_direct_chunk((0, 0), shuffled, filter_mask=0b10)
    np.testing.assert_array_equal(read(path, "x", kinds="f"), data)


def test_a_deflated_chunk_whose_checksum_filter_was_skipped_is_read(tmp_path):
    """gzip then fletcher32, the checksum marked skipped for this chunk: its stream has
    no 4 checksum bytes to take off before it is inflated."""
    path = tmp_path / "skipped.h5"
    data = np.arange(16, dtype="f4").reshape(2, 8)
    with h5py.File(path, "w") as f:
        x = f.create_dataset("x", (2, 8), "f4", chunks=(2, 8), compression="gzip", fletcher32=True)
        x.id.write_direct_chunk((0, 0), zlib.compress(data.tobytes()), filter_mask=0b10)
    np.testing.assert_array_equal(read(path, "x", kinds="f"), data)


def test_the_chunk_index_is_read_one_chunk_at_a_time_where_h5py_cannot_walk_it():
    """h5py before 3.8 has no chunk_iter: every chunk's info is asked for by number."""
    from nnbackend.h5chunks import _chunk_infos

    class OldDatasetID:
        def get_num_chunks(self):
            return 3

        def get_chunk_info(self, i):
            return f"chunk {i}"

    assert _chunk_infos(OldDatasetID()) == ["chunk 0", "chunk 1", "chunk 2"]


def test_a_bomb_is_inflated_no_further_than_its_limit():
    """A stream of 64 MiB of zeros, for a chunk of 68 bytes, is stopped at 69 bytes:
    not inflated whole (the point of the check) before it is refused."""
    import tracemalloc

    from nnbackend.h5chunks import _inflated

    bomb = zlib.compress(bytes(64 << 20), 9)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"inflates past its size of 68 bytes"):
            _inflated("f.h5", "/x", bomb, 68, ValueError)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_a_chunk_four_bytes_long_is_named_by_its_length(tmp_path):
    """A deflated 64-byte chunk that inflates to 68 bytes (its limit, for a checksum it
    has not got) is named by its length, not as a bomb."""
    _one_chunk(tmp_path / "long.h5", zlib.compress(bytes(68), 9))
    with pytest.raises(ValueError, match=r"/x has a chunk of 68 bytes where its size is 64"):
        read(tmp_path / "long.h5", "x", kinds="f")


@pytest.fixture(params=["numpy", "strict"])
def backend(request):
    return get_backend(request.param)


def test_a_small_difference_in_a_large_sum_is_told_apart(backend):
    """A thousandth in sums of 66,000: 12 digits see it (6 would not)."""
    X = np.arange(12.0).reshape(4, 3) * 1000
    y = np.zeros(4)
    moved = X.copy()
    moved[2, 1] += 0.001
    assert (
        fingerprints.checksums(backend.asarray(moved), backend.asarray(y))[0]
        != fingerprints.checksums(backend.asarray(X), backend.asarray(y))[0]
    )


def test_features_in_another_order_are_told_apart(backend):
    X, y = np.arange(12.0).reshape(4, 3), np.zeros(4)
    same = fingerprints.checksums(backend.asarray(X), backend.asarray(y))
    swapped = fingerprints.checksums(backend.asarray(X[:, ::-1]), backend.asarray(y))
    assert swapped[:2] == same[:2] and swapped[2] != same[2]


def test_sums_of_rounding_noise_either_side_of_0_are_alike():
    """-1e-14 and 1e-14 as a share round to 0 and -0: written alike, not "-0.000..."."""
    y = np.zeros(3, dtype=np.int64)
    below, above = np.array([[1.0], [-1.0], [-1e-14]]), np.array([[1.0], [-1.0], [1e-14]])
    assert fingerprints.checksums(below, y) == fingerprints.checksums(above, y)
    assert fingerprints.checksums(below, y)[0] == "0.00000000000 of 2"


def test_standardised_data_in_another_layout_gives_the_same_sums():
    """Its sums are rounding noise near 0, which the 12 digits of each sum showed: ranks
    holding the same data, one in Fortran order or as a torch tensor, were refused."""
    raw = np.random.default_rng(0).normal(size=(500, 7)) * [1, 10, 100, 1e3, 1e4, 2, 3] + 5
    X, y = (raw - raw.mean(axis=0)) / raw.std(axis=0), np.arange(500.0) % 3
    same = fingerprints.checksums(X, y)
    assert fingerprints.checksums(np.asfortranarray(X), y) == same
    if HAVE_TORCH:
        import torch

        assert fingerprints.checksums(torch.tensor(X), torch.tensor(y)) == same
    assert fingerprints.checksums(X[:, ::-1].copy(), y)[2] != same[2]  # features' order
    assert fingerprints.checksums(X[::-1].copy(), y)[1] != same[1]  # rows' order
    assert fingerprints.checksums(2 * X, y)[0] != same[0]


def test_complex_data_is_compared_by_dtype_and_shape(backend):
    X = np.ones((4, 3)) * (1 + 2j)
    sums = fingerprints.checksums(backend.xp.asarray(X), backend.asarray(np.zeros(4)))
    assert sums[0].endswith("complex128 of shape (4, 3)")


def _model(backend_name):
    import nnbackend as nb
    from nnbackend.layers import BatchNorm, Dense

    return nb.Sequential([Dense(2, 3), BatchNorm(3), Dense(3, 2)], backend=backend_name, seed=0)


@pytest.mark.parametrize("backend_name", ["numpy", "strict"])
def test_the_digest_sees_every_weight_and_the_running_state(backend_name):
    """Ranks whose BatchNorm running statistics, or any weight's last entry (the first
    in name order too), differ end with different digests."""
    base = fingerprints.digest(_model(backend_name))
    assert fingerprints.digest(_model(backend_name)) == base
    for part in ("params", "state"):
        for name in sorted(getattr(_model(backend_name), part)):
            model = _model(backend_name)
            table = getattr(model, part)
            host = np.asarray(fingerprints.to_numpy(table[name])).copy()
            host.reshape(-1)[-1] += 1.0
            table[name] = model.backend.asarray(host)
            assert fingerprints.digest(model) != base, (part, name)
