"""Edges of the fast paths (nnbackend.backend.fastpaths) and of compiling.py's kinds of
step that a mutation run of both found no test holding: each test fails under a mutant
the rest of the suite let pass (the comments name them)."""

from __future__ import annotations

import types

import array_api_compat.numpy
import numpy as np

import nnbackend as nb
from nnbackend.backend import fastpaths
from nnbackend.layers import MaxPool2D

NAMES = ("im2col", "conv2d", "conv2d_act", "conv2d_backward", "take", "take_rows",
         "max_pool", "max_pool_backward")  # fmt: skip
TORCH = {"conv2d", "conv2d_backward", "take", "max_pool", "max_pool_backward"}
CUPY = set(NAMES) - {"im2col", "take"}
FOUND_ON = {"numpy": {"im2col"}, "strict": set(), "torch": TORCH, "torch:cuda": TORCH,
            "cupy": CUPY}  # fmt: skip


def found(xp) -> set[str]:
    return {name for name in NAMES if fastpaths.native(name, xp) is not None}


def test_the_innermost_fast_paths_block_decides():
    """A fast_paths block inside another rules inside it; the outer one's choice
    comes back after it."""
    # kills fastpaths 7 (_forced[-1] -> _forced[0]: the outermost block ruled)
    xp = nb.get_backend("numpy").xp
    with nb.backend.fast_paths(True):
        with nb.backend.fast_paths(False):
            assert fastpaths.native("im2col", xp) is None
        assert fastpaths.native("im2col", xp) is not None
    with nb.backend.fast_paths(False):
        with nb.backend.fast_paths(True):
            assert fastpaths.native("im2col", xp) is not None
        assert fastpaths.native("im2col", xp) is None


def test_each_backend_finds_its_own_native_versions(backend):
    """NumPy's im2col; torch's convolution, rows and pooling; none on strict."""
    # kills fastpaths 22 and 23 (torch not recognised: its fast paths all dropped)
    assert found(backend.xp) == FOUND_ON[backend.name]
    with nb.backend.fast_paths(False):
        assert found(backend.xp) == set()


def test_numpy_and_cupy_are_known_by_their_plain_namespaces(monkeypatch):
    """array-api-compat's NumPy namespace and NumPy itself get NumPy's im2col, not only
    nnbackend's own NumPy namespace; a namespace named cupy gets CuPy's six (looked up
    by name, without importing CuPy)."""
    # kills fastpaths 16 (only nnbackend's NumPy namespace) and 25, 26 (CuPy not found)
    monkeypatch.setattr(fastpaths, "_libraries", {})  # no other test's lookups
    assert found(array_api_compat.numpy) == {"im2col"}
    assert found(np) == {"im2col"}
    cupy_like = types.ModuleType("cupy")
    assert found(cupy_like) == CUPY


# 4x4 image, 2x2 windows: maxima 3, 5, 4, 0, each the first of its window's equal
# largest ones, at flat indices 1, 6, 8 and 10
IMAGE = [[1, 3, 2, 2], [0, 3, 5, 1], [4, 4, 0, 0], [4, 1, 0, 0]]
MAXIMA, WHERE = [[3, 5], [4, 0]], [[1, 6], [8, 10]]
DY = [[1, 2], [3, 4]]
DX = [[0, 1, 0, 0], [0, 0, 2, 0], [3, 0, 4, 0], [0, 0, 0, 0]]


def test_max_pool_takes_the_first_largest_natively_where_there_is_a_native_version(backend):
    """MaxPool2D's values and gradient by hand; torch (and CuPy) have a native
    max_pool, torch's giving the flat index of each window's first largest value."""
    # kills fastpaths 87 (torch's max_pool gave None: the window slices instead)
    x = backend.asarray(np.array(IMAGE, dtype=float).reshape(1, 1, 4, 4))
    layer = MaxPool2D(2)
    y = layer.forward(x)
    np.testing.assert_array_equal(nb.to_numpy(y)[0, 0], MAXIMA)
    dy = backend.asarray(np.array(DY, dtype=float).reshape(1, 1, 2, 2))
    np.testing.assert_array_equal(nb.to_numpy(layer.backward(dy))[0, 0], DX)
    pool = fastpaths.native("max_pool", backend.xp)
    assert (pool is None) == (backend.name in ("numpy", "strict"))
    if backend.name.split(":")[0] == "torch":
        y, where = pool(x, (2, 2), (2, 2))
        np.testing.assert_array_equal(nb.to_numpy(y)[0, 0], MAXIMA)
        np.testing.assert_array_equal(nb.to_numpy(where)[0, 0], WHERE)


# --- compiling.py: the kinds of step a capture is kept for -----------------------------


def test_a_part_whose_config_fails_is_of_its_type_alone():
    """An optimizer whose rate is a plain function has no config: its kind is its type."""
    # kills compiling 60 (config unset after the TypeError)
    from nnbackend.backend import compiling

    class NoConfig:
        def config(self):
            raise TypeError("a rate from a function")

    assert compiling._settings(NoConfig()) == (NoConfig, ())


def test_a_config_s_lists_and_dicts_are_made_hashable():
    # kills compiling 66 and 67 (lists kept as lists, or all dropped to None)
    from nnbackend.backend import compiling

    frozen = compiling._frozen({"b": [1, [2, 3]], "a": {"d": (4,), "c": 5}})
    assert frozen == (("a", (("c", 5), ("d", (4,)))), ("b", (1, (2, 3))))
    hash(frozen)


def test_the_last_kinds_kept_keep_their_code_and_the_oldest_goes(monkeypatch):
    """KINDS_KEPT kinds at most, the least recent dropped; a kind met again is kept."""
    # kills compiling 75 (one fewer kept), 77 (none dropped) and 78 (the newest dropped)
    from nnbackend.backend import compiling

    monkeypatch.setattr(compiling, "_CODE_OF_KIND", compiling._CODE_OF_KIND.__class__())

    def step(x):
        return x + 1

    first = compiling._with_code_of_its_kind(step, 0)
    for kind in range(1, compiling.KINDS_KEPT):
        compiling._with_code_of_its_kind(step, kind)
    assert compiling._with_code_of_its_kind(step, 0).__code__ is first.__code__  # met again
    compiling._with_code_of_its_kind(step, "new")
    kept = list(compiling._CODE_OF_KIND)
    assert len(kept) == compiling.KINDS_KEPT
    assert 1 not in kept and kept[-2:] == [0, "new"]
    assert compiling._with_code_of_its_kind(step, "new")(2) == 3
