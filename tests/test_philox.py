"""The device generator: Philox4x32-10 on the standard's integer operations gives the
reference implementation's words on every backend, with no host copy per draw."""

from __future__ import annotations

import json

import numpy as np
import pytest

import nnbackend as nb
from nnbackend.backend import philox
from tests.conftest import CPU_BACKEND_NAMES

# Random123's known-answer vectors (kat_vectors): rounds, counter (4 words), key
# (2 words), the output (4 words).
KAT_4X32 = [
    (7, (0, 0, 0, 0), (0, 0), (0x5F6FB709, 0x0D893F64, 0x4F121F81, 0x4F730A48)),
    (7, (0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x5207DDC2, 0x45165E59, 0x4D8EE751, 0x8C52F662)),
    (
        7,
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0x4DFCCABA, 0x190A87F0, 0xC47362BA, 0xB6B5242A),
    ),
    (10, (0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    (10, (0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        10,
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]
KAT_4X64 = [
    (
        10,
        (0, 0, 0, 0),
        (0, 0),
        (0x16554D9ECA36314C, 0xDB20FE9D672D0FDC, 0xD7E772CEE186176B, 0x7E68B68AEC7BA23B),
    ),
    (
        10,
        (0x243F6A8885A308D3, 0x13198A2E03707344, 0xA4093822299F31D0, 0x082EFA98EC4E6C89),
        (0x452821E638D01377, 0xBE5466CF34E90C6C),
        (0xA528F45403E61D95, 0x38C72DBD566E9788, 0xA5A1610E72FD18B5, 0x57BD43B5E52B7FE6),
    ),
]
CONSTANTS = {  # word bits -> (multipliers, key increments), as Random123 defines them
    32: ((0xD2511F53, 0xCD9E8D57), (0x9E3779B9, 0xBB67AE85)),
    64: ((0xD2E7470EE14C6C93, 0xCA5A826395121157), (0x9E3779B97F4A7C15, 0xBB67AE8584CAA73B)),
}


def reference_philox(counter, key, bits: int = 32, rounds: int = 10):
    """Philox4xW-R in Python integers, straight from the paper: the independent check.
    Its 64-bit form is NumPy's ``np.random.Philox``; its 32-bit form is nnbackend's."""
    (m0, m1), (w0, w1) = CONSTANTS[bits]
    mask = (1 << bits) - 1
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for _ in range(rounds):
        p0, p1 = m0 * c0, m1 * c2
        c0, c1, c2, c3 = (p1 >> bits) ^ c1 ^ k0, p1 & mask, (p0 >> bits) ^ c3 ^ k1, p0 & mask
        k0, k1 = (k0 + w0) & mask, (k1 + w1) & mask
    return c0, c1, c2, c3


def words_on(backend, values):
    return backend.asarray(np.asarray(values, dtype=np.int64))


@pytest.mark.parametrize("rounds, counter, key, expected", KAT_4X32)
def test_reference_gives_random123s_known_answers(rounds, counter, key, expected):
    assert reference_philox(counter, key, 32, rounds) == expected


@pytest.mark.parametrize("rounds, counter, key, expected", KAT_4X64)
def test_64_bit_reference_gives_random123s_known_answers(rounds, counter, key, expected):
    assert reference_philox(counter, key, 64, rounds) == expected


def test_64_bit_reference_is_numpys_philox():
    """NumPy's Philox is Philox4x64-10: the reference's 64-bit form gives its raw
    output (NumPy steps its counter before each block)."""
    rng = np.random.default_rng(7)
    for _ in range(5):
        counter = [int(c) for c in rng.integers(0, 2**63, 4)]
        key = [int(k) for k in rng.integers(0, 2**63, 2)]
        raw = np.random.Philox(counter=counter, key=key).random_raw(8)
        first = reference_philox([counter[0] + 1, *counter[1:]], key, 64)
        second = reference_philox([counter[0] + 2, *counter[1:]], key, 64)
        assert [int(v) for v in raw] == [*first, *second]


@pytest.mark.parametrize("rounds, counter, key, expected", KAT_4X32)
def test_device_philox_gives_the_known_answers(rounds, counter, key, expected, backend):
    words = philox.philox4x32([words_on(backend, [c]) for c in counter], key, rounds)
    assert tuple(int(backend.to_numpy(w)[0]) for w in words) == expected


def test_mulhilo_is_the_full_64_bit_product(backend):
    rng = np.random.default_rng(1)
    x = np.concatenate([[0, 1, 2**16 - 1, 2**16, 2**31, 2**32 - 1], rng.integers(0, 2**32, 200)])
    for multiplier in philox.MULTIPLIERS:
        low, high = philox.mulhilo(multiplier, words_on(backend, x))
        products = [multiplier * int(v) for v in x]
        assert backend.to_numpy(low).tolist() == [p & 0xFFFFFFFF for p in products]
        assert backend.to_numpy(high).tolist() == [p >> 32 for p in products]


def test_device_words_follow_the_reference_across_the_counter_words(backend):
    """Blocks 2**32 - 2 .. 2**32 + 1 cross from the counter's first word to its second."""
    key = (0x12345678, 0x9ABCDEF0)
    words = philox.random_words(backend.xp, backend.device, 15, key, 2**32 - 2)
    expected = []
    for block in range(2**32 - 2, 2**32 + 2):
        expected += reference_philox((block & 0xFFFFFFFF, block >> 32, 0, 0), key)
    assert backend.to_numpy(words).tolist() == expected[:15]


# --- the Generator's device stream -------------------------------------------------


def test_one_seed_gives_the_same_bits_on_every_backend():
    draws = {}
    for name in CPU_BACKEND_NAMES:
        rng = nb.Generator(3)
        draws[name] = [nb.to_numpy(rng.random_bits(s, backend=name)) for s in [(5, 7), (3,)]]
    for name in CPU_BACKEND_NAMES[1:]:
        for got, want in zip(draws[name], draws["numpy"], strict=True):
            np.testing.assert_array_equal(got, want)


def test_draws_continue_the_stream_block_by_block(backend):
    """A draw of 5 words takes two blocks (8 words); the next draw starts at block 2."""
    rng = nb.Generator(11)
    first = backend.to_numpy(rng.random_bits((5,), backend=backend))
    second = backend.to_numpy(rng.random_bits((2, 3), backend=backend))
    whole = backend.to_numpy(nb.Generator(11).random_bits((16,), backend=backend))
    np.testing.assert_array_equal(first, whole[:5])
    np.testing.assert_array_equal(second.reshape(-1), whole[8:14])
    assert second.dtype == np.int64 and second.shape == (2, 3)
    np.testing.assert_array_equal(  # an int shape, as normal() and NumPy take it
        backend.to_numpy(nb.Generator(11).random_bits(5, backend=backend)), first
    )


@pytest.mark.parametrize("first, rows", [(0, 6), (6, 5), (10, 1), (11, 0), (3, 2)])
def test_a_share_of_rows_is_those_rows_of_the_whole_draw(backend, first, rows):
    """Rows first .. first + rows of a draw of (11, 3) words (33: nine blocks, the rows
    starting mid-block), and the generator moves on as the whole draw moves it."""
    share, whole = nb.Generator(4), nb.Generator(4)
    share.random_bits((1,), backend=backend)  # a counter that is not 0
    whole.random_bits((1,), backend=backend)
    got = backend.to_numpy(share.random_bits_of_rows((rows, 3), first, 11, backend=backend))
    expected = backend.to_numpy(whole.random_bits((11, 3), backend=backend))[first : first + rows]
    np.testing.assert_array_equal(got, expected)
    assert got.shape == (rows, 3) and share.state == whole.state
    with pytest.raises(ValueError, match="rows 10..12 are not rows of 11"):
        share.random_bits_of_rows((2, 3), 10, 11, backend=backend)


def test_bits_are_uniform():
    bits = nb.to_numpy(nb.Generator(0).random_bits((200_000,), backend="numpy"))
    assert bits.min() >= 0 and bits.max() < 2**32
    assert abs(bits.mean() / 2**32 - 0.5) < 0.003  # sd of the mean: 0.29 / sqrt(2e5)
    ones = ((bits[:, None] >> np.arange(32)) & 1).mean(axis=0)
    assert np.all(np.abs(ones - 0.5) < 0.006), ones  # every bit is a fair coin
    counts = np.bincount((bits >> 28).astype(np.intp), minlength=16)
    chi2 = ((counts - bits.size / 16) ** 2 / (bits.size / 16)).sum()
    assert chi2 < 37.7  # the 0.001 tail of chi-squared with 15 degrees of freedom


def test_draws_make_no_host_copies(backend, monkeypatch):
    rng = nb.Generator(0)
    copies = []
    real = type(backend).asarray
    monkeypatch.setattr(type(backend), "asarray", lambda *a, **k: copies.append(1) or real(*a, **k))
    with nb.count_host_transfers() as transfers:
        bits = rng.random_bits((64, 32), backend=backend)
    assert copies == [] and transfers.count == 0
    assert backend.owns(bits)


def test_state_holds_the_device_stream_and_survives_json(backend):
    rng = nb.Generator(5)
    rng.random_bits((10,), backend=backend)
    saved = json.loads(json.dumps(rng.state))
    assert saved["philox"]["counter"] == 3
    after = backend.to_numpy(rng.random_bits((9,), backend=backend))
    other = nb.Generator(99)
    other.state = saved
    np.testing.assert_array_equal(backend.to_numpy(other.random_bits((9,), backend=backend)), after)
    assert other.permutation(10).tolist() == nb.Generator(5).permutation(10).tolist()


def test_a_state_saved_before_the_device_stream_still_loads():
    host_only = np.random.default_rng(4).bit_generator.state
    rng = nb.Generator(0)
    rng.state = host_only
    assert rng.permutation(6).tolist() == np.random.default_rng(4).permutation(6).tolist()
    assert rng.state["philox"] == nb.Generator(0).state["philox"]


def test_seeds_give_different_streams():
    a = nb.to_numpy(nb.Generator(0).random_bits((8,), backend="numpy"))
    b = nb.to_numpy(nb.Generator(1).random_bits((8,), backend="numpy"))
    assert not np.array_equal(a, b)


def test_a_shape_must_be_whole_numbers_of_no_negative_size():
    # (-5, 4) drew nothing and moved the counter back; (2.7,) drew 2 words
    rng = nb.Generator(0)
    with pytest.raises(ValueError, match="no negative size"):
        rng.random_bits((-5, 4))
    with pytest.raises(TypeError, match="whole numbers"):
        rng.random_bits((2.7,))
    assert rng.counter == 0
    assert rng.random_bits(np.int64(3)).shape == (3,)


@pytest.mark.parametrize(
    "philox",
    [{"key": [1], "counter": 0}, {"key": [1, 2**32], "counter": 0},
     {"key": [1, 2], "counter": 2**62 + 1}, {"key": [1, 2], "counter": 1.5}],
)  # fmt: skip
def test_a_refused_state_changes_nothing(philox):
    rng, other = nb.Generator(0), nb.Generator(1)
    with pytest.raises(ValueError, match="philox part needs"):
        rng.state = {**other.state, "philox": philox}
    assert rng.state == nb.Generator(0).state  # the host stream too


def test_float32_uniform_draws_stay_below_high():
    # a float64 draw just below high rounds to it in float32: 40 % of these did
    draws = nb.Generator(0).uniform(1000, 1.0, 1.0 + 1e-7, backend="numpy", dtype="float32")
    assert draws.dtype == np.float32
    assert (draws >= np.float32(1.0)).all() and (draws < np.float32(1.0 + 1e-7)).all()


def test_uniform_takes_a_backend_s_own_dtype(backend):
    draws = nb.Generator(0).uniform((3,), backend=backend, dtype=backend.xp.float64)
    assert draws.dtype == backend.xp.float64
