"""Philox4x32-10, the counter-based generator of Salmon et al. (2011), written with the
standard's integer operations so that it draws on the array's own device.

A counter-based generator is a keyed function: block ``i`` of the stream is
``philox(counter + i, key)``, four 32-bit words. Nothing is carried from one draw to the
next but the counter, a Python int on the host, so a draw needs no host-to-device copy
and the same key and counter give the same words on every backend. These are the
words of the reference implementation (Random123's ``philox4x32_10``; the tests check
its known-answer vectors).

Words are held in int64 arrays (values in [0, 2**32)): unsigned 32-bit arithmetic is
missing or partial in some libraries (torch), and a 32 x 32 -> 64-bit product overflows
int64. The product is therefore built from 16-bit halves of the constant multiplier,
whose partial products stay below 2**48.
"""

from __future__ import annotations

MULTIPLIERS = (0xD2511F53, 0xCD9E8D57)
WEYL = (0x9E3779B9, 0xBB67AE85)  # the key schedule's increments
ROUNDS = 10
MASK32 = 0xFFFFFFFF


def mulhilo(multiplier: int, x):
    """(low, high) 32-bit words of ``multiplier * x``, for ``x`` an int64 array of
    values in [0, 2**32)."""
    low_part = x * (multiplier & 0xFFFF)  # below 2**48
    high_part = x * (multiplier >> 16)  # below 2**48; counts in units of 2**16
    total = low_part + ((high_part & 0xFFFF) << 16)
    return total & MASK32, (high_part >> 16) + (total >> 32)


def philox4x32(counter, key: tuple[int, int], rounds: int = ROUNDS):
    """The four output words for the counter words ``counter`` (four int64 arrays of
    one shape, values in [0, 2**32)) under ``key`` (two ints)."""
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for _ in range(rounds):
        lo0, hi0 = mulhilo(MULTIPLIERS[0], c0)
        lo1, hi1 = mulhilo(MULTIPLIERS[1], c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0, k1 = (k0 + WEYL[0]) & MASK32, (k1 + WEYL[1]) & MASK32
    return c0, c1, c2, c3


def random_words(xp, device, n: int, key: tuple[int, int], counter: int, skip: int = 0):
    """``n`` 32-bit words (int64 array (n,), values in [0, 2**32)) of the stream that
    starts at block ``counter``, read in order, word by word, from word ``skip`` on
    (the blocks before it are not computed). The block number is the 128-bit counter's
    low 64 bits."""
    first, offset = divmod(skip, 4)
    blocks = blocks_for(offset + n)
    index = xp.arange(blocks, dtype=xp.int64, device=device) + (counter + first)
    zero = xp.zeros_like(index)
    words = philox4x32((index & MASK32, index >> 32, zero, zero), key)
    return xp.reshape(xp.stack(words, axis=1), (-1,))[offset : offset + n]


def blocks_for(n: int) -> int:
    """The number of 4-word blocks that ``n`` words take."""
    return -(-n // 4)
