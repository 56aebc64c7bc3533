"""Edges of the argument checks in nnbackend.plot (image_grid, curves) and in the toy
data sets' helpers that a mutation run of plot.py and datasets/toy.py found no test
holding. Each test fails under a mutant that the rest of the suite let pass."""

from __future__ import annotations

import numpy as np
import pytest

from nnbackend import datasets, plot

pytest.importorskip("matplotlib")


def drawn(fig) -> list[np.ndarray]:
    """The array each axes of an image_grid figure shows, in order."""
    return [np.asarray(ax.get_images()[0].get_array()) for ax in fig.axes if ax.get_images()]


def test_image_grid_reads_channels_first_colour_of_any_width_and_count():
    """(n, 3, h, w) colour images are drawn as (h, w, 3) whatever w (2 and 4 too, not
    only widths that cannot be a channel axis) and whatever n (1 and 3 too)."""
    rng = np.random.default_rng(0)
    for shape in [(3, 3, 4, 2), (1, 3, 4, 2), (2, 3, 5, 4), (3, 3, 2, 5)]:
        images = rng.uniform(size=shape)
        shown = drawn(plot.image_grid(images))
        assert len(shown) == shape[0]
        for k in range(shape[0]):
            np.testing.assert_array_equal(shown[k], images[k].transpose(1, 2, 0))


def test_image_grid_draws_grey_images_of_any_height_as_given():
    """(n, h, w) grey images of height 1 or 3 are drawn as they are, not taken for
    channels (only a 4-D stack's second axis is)."""
    for shape in [(2, 3, 5), (2, 1, 4)]:
        images = np.arange(float(np.prod(shape))).reshape(shape)
        shown = drawn(plot.image_grid(images))
        assert [s.shape for s in shown] == [shape[1:]] * 2
        np.testing.assert_array_equal(shown[1], images[1])


def test_curves_draw_a_faint_grid():
    """The grid lines are drawn at alpha 0.3, behind the curves."""
    ax = plot.curves({"loss": [3.0, 2.0]})
    lines = ax.xaxis.get_gridlines() + ax.yaxis.get_gridlines()
    assert lines and all(g.get_visible() and g.get_alpha() == 0.3 for g in lines)


def test_curves_take_0_d_arrays_as_epoch_values():
    """A tuple of two 0-d arrays (metrics as a backend gives them) is two epochs, not a
    pair of steps and values."""
    ax = plot.curves({"loss": (np.array(0.5), np.array(0.25))})
    assert ax.get_lines()[0].get_xydata().tolist() == [[0, 0.5], [1, 0.25]]


class Reached(Exception):
    """Raised by a stand-in for the step after the argument checks."""


def test_decision_boundary_takes_a_resolution_up_to_4000(monkeypatch):
    """4000 is the largest resolution taken (the check passes it on to the span), 4001
    the smallest refused."""
    X = np.array([[0.0, 0.0], [1.0, 1.0]])

    def reached(_):
        raise Reached

    monkeypatch.setattr(plot, "_span", reached)
    with pytest.raises(Reached):
        plot.decision_boundary(None, X, [0, 1], resolution=4000)
    with pytest.raises(ValueError, match="decision_boundary resolution must be"):
        plot.decision_boundary(None, X, [0, 1], resolution=4001)


class Above:
    """A model whose predict says whether x2 > 0."""

    def predict(self, grid):
        return (grid[:, 1] > 0).astype(np.int64)


def test_decision_boundary_draws_pale_regions_and_small_outlined_points():
    """The regions at alpha 0.35; each class's points at size 14 with a 0.4 black
    outline."""
    X = np.array([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.5]])
    ax = plot.decision_boundary(Above(), X, [0, 1, 1], resolution=5)
    regions, *points = ax.collections
    assert regions.get_alpha() == 0.35
    assert len(points) == 2
    for p in points:
        assert p.get_sizes().tolist() == [14.0]
        assert p.get_linewidths().tolist() == [0.4]
        assert p.get_edgecolor()[0].tolist() == [0.0, 0.0, 0.0, 1.0]


def test_decision_boundary_on_a_used_axes_fills_it_with_the_plane():
    """On an Axes that already holds a far line, the limits are the plane's span
    (X's extent and 15 %), not an autoscale over the old line too."""
    _, ax = plot.figure()
    ax.plot([-100.0, 100.0], [-50.0, 50.0])
    X = np.array([[-2.0, -1.0], [2.0, 1.0]])
    plot.decision_boundary(Above(), X, [0, 1], ax=ax, resolution=5)
    assert ax.get_xlim() == pytest.approx((-2.6, 2.6))
    assert ax.get_ylim() == pytest.approx((-1.3, 1.3))


def test_per_class_counts_may_add_up_to_10_to_the_8_and_no_more():
    """Counts per class adding up to exactly 10**8 pass the count check (the spread's
    check comes next), as do ones adding up to 1; one more than 10**8 is refused, as
    is a sum of 0; 100 in all is taken."""
    with pytest.raises(ValueError, match="^noise must be a finite number at least 0"):
        datasets.make_moons((5 * 10**7, 5 * 10**7), noise=-1.0)
    for counts, total in (((5 * 10**7, 5 * 10**7 + 1), 10**8 + 1), ((0, 0), 0)):
        with pytest.raises(
            ValueError, match=f"^n_samples must add up to 1 to 100000000, got {total}$"
        ):
            datasets.make_moons(counts, noise=-1.0)
    with pytest.raises(ValueError, match="^noise must be a finite number at least 0"):
        datasets.make_moons((0, 1), noise=-1.0)  # a sum of 1 passes too
    X, y = datasets.make_blobs([50, 50], centers=None, seed=0)
    assert X.shape == (100, 2) and np.bincount(y).tolist() == [50, 50]


def test_per_class_spreads_are_finite_and_at_least_0():
    """A list of spreads with a negative or an infinite entry is refused in the
    library's words; one with a 0 entry (a class on one point) is taken."""
    for bad in ([1.0, -1.0, 1.0], [1.0, np.inf, 1.0]):
        with pytest.raises(ValueError, match="^cluster_std must be finite numbers of at least 0"):
            datasets.make_blobs(30, cluster_std=bad)
    X, y = datasets.make_blobs(30, cluster_std=[0.0, 1.0, 1.0], seed=0)
    assert X.shape == (30, 2)
    assert np.ptp(X[y == 0], axis=0).tolist() == [0.0, 0.0]


def test_a_draws_seed_runs_from_0_to_2_to_the_32_minus_1():
    """2**32 - 1 is the largest seed taken (scikit-learn's random_state limit), 2**32
    refused in the library's words, not scikit-learn's."""
    X, _ = datasets.make_moons(10, seed=2**32 - 1)
    assert X.shape == (10, 2)
    for make in (datasets.make_moons, datasets.make_circles, datasets.make_blobs):
        with pytest.raises(ValueError, match="^seed must be"):
            make(10, seed=2**32)


def test_standardize_takes_a_given_std_of_0_or_under_1():
    """A given std of 0 (a constant feature) is taken as 1, one of 0.5 divides by 0.5."""
    X = np.array([[1.0, 2.0], [3.0, 4.0]])
    scaled, mean, std = datasets.standardize(X, [1.0, 1.0], [0.0, 0.5])
    assert scaled.tolist() == [[0.0, 2.0], [2.0, 6.0]]
    assert std.tolist() == [1.0, 0.5] and mean.tolist() == [1.0, 1.0]


def test_decision_boundary_refuses_an_infinite_label():
    """inf equals its own rounding, and became class -9223372036854775808 in the legend."""
    import nnbackend as nb

    model = nb.Sequential([nb.layers.Dense(2, 2)], seed=0)
    with pytest.raises(ValueError, match="y must hold integer class labels"):
        plot.decision_boundary(model, [[0.0, 0.0], [1.0, 1.0]], np.array([0.0, np.inf]))


def test_curves_take_limits_as_an_array():
    """ylim=np.array([0, 3]) met `ylim == "auto"`, an array's elementwise ==, and failed."""
    ax = plot.curves({"loss": [1.0, 2.0]}, ylim=np.array([0.0, 3.0]))
    assert ax.get_ylim() == (0.0, 3.0)


def test_curves_refuse_limits_that_are_no_pair_of_numbers_before_drawing():
    """ "Auto", (0, nan) and (0,) failed in matplotlib's words after the curves were drawn."""
    for ylim in ("Auto", (0.0, float("nan")), (0.0,), ("a", "b"), {"low": 0}):
        with pytest.raises(ValueError, match=r"^ylim is \(low, high\) as finite numbers"):
            plot.curves({"loss": [1.0, 2.0]}, ylim=ylim)
    assert plot.curves({"loss": [1.0, 2.0]}, ylim=(0, 5)).get_ylim() == (0.0, 5.0)


def test_moons_and_circles_take_no_noise_as_scikit_learn_does():
    """noise=None, scikit-learn's "no noise", was refused as not finite."""
    for make in (datasets.make_moons, datasets.make_circles):
        X, _ = make(10, noise=None, seed=0)
        np.testing.assert_array_equal(X, make(10, noise=0.0, seed=0)[0])
    with pytest.raises(ValueError, match="cluster_std must be finite numbers"):
        datasets.make_blobs(10, cluster_std=None)


def test_blobs_bound_their_features_and_centres_before_drawing():
    """make_blobs(10**6, n_features=10**6) drew terabytes before a MemoryError."""
    with pytest.raises(ValueError, match=r"at most 200000000 values, got 1000000 x 1000000"):
        datasets.make_blobs(10**6, n_features=10**6)
    with pytest.raises(ValueError, match=r"values, got 100000 x 2001$"):
        datasets.make_blobs(10**5, n_features=2001)
    assert datasets.make_blobs(100, n_features=50, seed=0)[0].shape == (100, 50)
    with pytest.raises(ValueError, match="n_features must be at least 1, got 0"):
        datasets.make_blobs(10, n_features=0)
    with pytest.raises(ValueError, match="centers must be between 1 and 1000000, got 10000000"):
        datasets.make_blobs(10, centers=10**7)
    X, y = datasets.make_blobs(10, centers=np.zeros((2, 3)), seed=0)  # centres given
    assert X.shape == (10, 3) and set(y.tolist()) == {0, 1}
    with pytest.raises(ValueError, match=r"values, got 100000 x 10000$"):  # their width
        datasets.make_blobs(10**5, centers=np.zeros((2, 10**4)))
    X, _ = datasets.make_blobs(10**5, n_features=10**4, centers=np.zeros((2, 2)), seed=0)
    assert X.shape == (10**5, 2)
