"""What the ranks of a data-parallel fit compare before and after it: sums of their
data (the same data in the same order gives the same sums), a hash of the weights and
one of the random generator's state."""

from __future__ import annotations

import hashlib
import json
import math

from nnbackend.backend import namespace_of, to_numpy


def checksums(X, y) -> tuple[str, ...]:
    """The sums of X and of y: plain, with each row's sum weighted by its number, and
    each column's sum of absolute values by its number, each as a share of the most it
    could be, to 11 places (the plain one with the sum of absolute values, 11 digits).
    The same data gives the same sums; its rows in another order (each rank shuffled by
    a seed of its own), or its columns (features listed from a set), other weighted
    ones. Shares, not the sums themselves: standardised data sums to rounding noise,
    which another memory layout (Fortran order, a torch tensor) summed otherwise."""
    sums = []
    for a in (X, y):
        xp = namespace_of(a)
        structured = getattr(a.dtype, "names", None)  # a record array's: isdtype refuses it
        if (
            a.ndim == 0
            or structured
            or not xp.isdtype(a.dtype, ("bool", "integral", "real floating"))
        ):
            # None, strings, complex: compared as such; fit's checks then say what is wrong
            sums.append(f"{a.dtype} of shape {tuple(a.shape)}")
            continue
        sums += _shares(xp, a)
    return tuple(sums)


def _shares(xp, a) -> list[str]:
    if xp.isdtype(a.dtype, "bool"):  # the standard sums numbers only
        a = xp.astype(a, xp.int8)
    n, m = a.shape[0], math.prod(a.shape[1:])
    table = xp.reshape(a, (n, m))
    rows = xp.sum(table, axis=1, dtype=xp.float64)
    columns = xp.sum(xp.abs(table), axis=0, dtype=xp.float64)  # standardised: not all 0
    row_number = xp.arange(1, n + 1, dtype=xp.float64, device=a.device)
    column_number = xp.arange(1, m + 1, dtype=xp.float64, device=a.device)
    found = [xp.sum(rows), xp.sum(rows * row_number), xp.sum(columns * column_number)]
    *sums, size = (float(v) for v in to_numpy(xp.stack([*found, xp.sum(columns)])))
    bounds = [size, size * n, size * m]  # each sum's largest magnitude
    shares = [round(v / b, 11) + 0.0 if b else 0.0 for v, b in zip(sums, bounds, strict=True)]
    plain, *weighted = (f"{share:.11f}" for share in shares)  # + 0.0 above: no "-0.0"
    return [f"{plain} of {size:.11g}", *weighted]


def digest(model) -> str:
    """A hash of the model's weights and running state, bit for bit."""
    found = hashlib.sha256()
    for part in (model.params, model.state):
        for name in sorted(part):
            found.update(to_numpy(part[name]).tobytes())
    return found.hexdigest()[:16]


def generator_digest(rng) -> str:
    """A hash of a generator's state: its host draws' and its device stream's counter."""
    return hashlib.sha256(json.dumps(rng.state, sort_keys=True).encode()).hexdigest()[:16]
