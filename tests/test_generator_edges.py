"""Edges of the seeded Generator (nnbackend.backend.random) that a mutation run of
random.py found no test holding: each test fails under a mutant the rest of the suite
let pass (the comments name them; the thread settings' are in test_threads.py)."""

from __future__ import annotations

import numpy as np
import pytest

import nnbackend as nb
from nnbackend.backend.random import as_generator


def host(a) -> np.ndarray:
    return nb.to_numpy(a)


# --- the Generator --------------------------------------------------------------------


def test_a_generator_says_its_seed():
    """repr names the seed it was made from (None: fresh entropy)."""
    # kills random 6 (self.seed never set) and 22 (repr returned None)
    assert repr(nb.Generator(3)) == "Generator(seed=3)"
    assert repr(nb.Generator()) == "Generator(seed=None)"


def test_the_device_key_is_the_first_two_words_of_the_seed_s_first_child():
    """The Philox key is NumPy's SeedSequence(seed).spawn(1)[0] state, two 32-bit words
    (for seed 0: 3757552657 and 2018376492); two seeds never share it."""
    # kills random 16 and 18 (one word used twice) and 55 (the key property gave None)
    for seed in range(4):
        child = np.random.SeedSequence(seed).spawn(1)[0]
        words = child.generate_state(2, np.uint32)
        assert nb.Generator(seed).key == (int(words[0]), int(words[1]))
    assert nb.Generator(0).key == (3757552657, 2018376492)
    assert len({nb.Generator(seed).key for seed in range(4)}) == 4


def test_normal_draws_are_numpy_s_standard_normal_times_std(backend64):
    """One seed gives NumPy's own standard normal draws, scaled by std (1 by default)."""
    # kills random 23 (default std 2) and 25 (draws divided by std)
    want = np.random.default_rng(7).standard_normal((4, 3))
    got = host(nb.Generator(7).normal((4, 3), backend=backend64))
    np.testing.assert_array_equal(got, want)
    got = host(nb.Generator(7).normal((4, 3), std=0.25, backend=backend64))
    np.testing.assert_array_equal(got, want / 4)


def test_uniform_draws_default_to_zero_to_one(backend64):
    """uniform(shape) is NumPy's uniform(0, 1, shape) for the same seed."""
    # kills random 26 (default low 1) and 27 (default high 2)
    want = np.random.default_rng(7).uniform(0.0, 1.0, 6)
    np.testing.assert_array_equal(host(nb.Generator(7).uniform(6, backend=backend64)), want)


def test_draws_take_a_backend_by_name_or_the_current_one():
    """backend= takes a name, or nothing (the current backend, float32 by default)."""
    # kills random 28 (uniform never resolved its backend), 60 (nor random_bits_of_rows)
    # and 121 (nor normal's placing)
    for backend in (None, "numpy"):
        rng = nb.Generator(1)
        assert rng.normal((2, 3), backend=backend).dtype == np.float32
        draws = rng.uniform((5,), -1.0, 1.0, backend=backend)
        assert draws.dtype == np.float32 and ((-1 <= draws) & (draws < 1)).all()
        share = rng.random_bits_of_rows((2, 3), 1, 4, backend=backend)
        whole = nb.Generator(1)  # the host draws above leave the device stream alone
        np.testing.assert_array_equal(host(share), host(whole.random_bits((4, 3)))[1:3])


def test_a_share_of_rows_takes_shapes_as_random_bits_does():
    """An int shape is (n,); a negative size is refused before anything is drawn."""
    # kills random 61 (the shape not read with _shape: 5[0] and a row of -3 words)
    rng = nb.Generator(2)
    np.testing.assert_array_equal(
        host(rng.random_bits_of_rows(2, 1, 4)), host(nb.Generator(2).random_bits(4))[1:3]
    )
    with pytest.raises(ValueError, match="no negative size"):
        rng.random_bits_of_rows((2, -3), 0, 4)
    assert rng.counter == 1  # four words: one block, the refused draw moved nothing


def test_a_state_at_the_bounds_loads():
    """Key words 0 and 2**32 - 1 and a counter of 2**62 are in range: all three load."""
    # kills random 1 and 5 (MAX_COUNTER 124 and 2**61), 102 and 106 (key 0 refused),
    # 104 (key 2**32 - 1 refused) and 109 (counter 2**62 refused)
    rng = nb.Generator(0)
    rng.state = {**rng.state, "philox": {"key": [0, 2**32 - 1], "counter": 2**62}}
    assert rng.key == (0, 2**32 - 1) and rng.counter == 2**62


@pytest.mark.parametrize(
    "philox",
    [{"key": [1.0, 2], "counter": 0}, {"key": [1, 2], "counter": True}],
)
def test_a_state_of_floats_or_booleans_is_refused(philox):
    """Key words and the counter are whole numbers: 1.0 and True are not."""
    # kills random 101 (a float key word taken) and 142 (True taken as counter 1)
    rng = nb.Generator(0)
    with pytest.raises(ValueError, match="philox part needs"):
        rng.state = {**rng.state, "philox": philox}
    assert rng.counter == 0


def test_loading_a_state_leaves_the_given_dict_as_it_was():
    """The dict given to .state keeps its "philox" part: it can be loaded again."""
    # kills random 88 (the caller's dict lost "philox" to pop)
    saved = nb.Generator(5).state
    saved["philox"]["counter"] = 9
    first, second = nb.Generator(0), nb.Generator(1)
    first.state = saved
    assert saved["philox"] == {"key": list(nb.Generator(5).key), "counter": 9}
    second.state = saved
    assert first.state == second.state and second.counter == 9


def test_host_gives_the_numpy_generator_the_seed_started():
    """host() is the NumPy generator under permutation, for draws of one's own."""
    # kills random 85 (host() gave None)
    rng = nb.Generator(4)
    assert isinstance(rng.host(), np.random.Generator)
    want = np.random.default_rng(4)
    assert rng.host().integers(100, size=5).tolist() == want.integers(100, size=5).tolist()
    assert rng.permutation(6).tolist() == want.permutation(6).tolist()


def test_as_generator_keeps_a_generator_and_seeds_the_rest():
    """A Generator is passed through as it is (its stream goes on); an int seeds one."""
    # kills random 127 and 128 (a Generator given was not returned)
    rng = nb.Generator(3)
    assert as_generator(rng) is rng
    assert as_generator(3).key == nb.Generator(3).key
    assert as_generator(None).seed is None


@pytest.mark.parametrize("dtype", [int, "int64", "bool"])
def test_draws_in_an_integer_dtype_are_refused_by_name(backend, dtype):
    """uniform's int dtype failed in NumPy's casting words, and normal cut its draws to
    integers ([0, 0, 3] for a std of 5) without a word."""
    rng = nb.Generator(0)
    with pytest.raises(ValueError, match=r"dtype must be 'float32' or 'float64'"):
        rng.uniform((3,), 0.0, 10.0, backend=backend, dtype=dtype)
    with pytest.raises(ValueError, match=r"dtype must be 'float32' or 'float64'"):
        rng.normal((3,), 5.0, backend=backend, dtype=dtype)
    assert host(rng.uniform((3,), backend=backend, dtype=float)).dtype == np.float64
