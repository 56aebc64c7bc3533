"""Edges of nnbackend.plot that a mutation run of plot.py found no test holding: what
is drawn (the grid, the regions, the points, the axes and their labels), the figure's
and the saved file's size, and the errors for bad input. Each test fails under a
mutant that the rest of the suite let pass; they read back the Figure and Axes objects
rather than compare images."""

from __future__ import annotations

import struct
import warnings

import numpy as np
import pytest

import nnbackend as nb
from nnbackend import plot
from nnbackend.layers import Dense

pytest.importorskip("matplotlib")

# Four points, two a side of x1 = 0: x1 spans -2..2 (margin 0.6), x2 spans -1..1 (0.3).
X = np.array([[-2.0, -1.0], [2.0, 1.0], [-1.0, 0.0], [1.0, 0.5]])
Y = np.array([1, 0, 1, 0])


def sign_model(backend=None):
    """Dense(2, 2) with logits (x1, -x1): class 0 right of x1 = 0, class 1 left of it."""
    model = nb.Sequential([Dense(2, 2)], backend=backend, seed=0)
    xp, dtype = model.backend.xp, model.params["0.W"].dtype
    model.set_params({
        "0.W": xp.asarray(np.array([[1.0, -1.0], [0.0, 0.0]]), dtype=dtype),
        "0.b": xp.asarray(np.zeros(2), dtype=dtype),
    })  # fmt: skip
    return model


class Recorder:
    """A model whose predict says whether x2 > 0, and keeps the grid it was given."""

    def __init__(self):
        self.grids = []

    def predict(self, grid):
        self.grids.append(np.array(grid))
        return (grid[:, 1] > 0).astype(np.int64)


def png_size(path) -> tuple[int, int]:
    """(width, height) in pixels, read from the PNG's IHDR chunk."""
    return struct.unpack(">II", path.read_bytes()[16:24])


def test_figure_gives_each_axes_4_5_by_4_inches():
    """The default size grows with the grid of axes; ``size`` overrides it."""
    fig, axes = plot.figure(2, 3)
    assert axes.shape == (2, 3)
    assert tuple(fig.get_size_inches()) == (13.5, 8.0)
    fig, ax = plot.figure(size=(3.0, 2.0))
    assert tuple(fig.get_size_inches()) == (3.0, 2.0)
    assert ax in fig.axes


def test_decision_boundary_draws_the_models_regions_and_the_points(backend):
    """Each class's region holds the plane where predict gives it, the points are
    scattered by class, and the axes span the data with a margin of 15 %."""
    ax = plot.decision_boundary(sign_model(backend), X, Y, title="sign", resolution=30)
    regions = ax.collections[0]
    np.testing.assert_array_equal(regions.levels, [-0.5, 0.5, 1.5])  # a band per class
    class0, class1 = regions.get_paths()
    assert class0.contains_point((1.5, 0.0)) and not class0.contains_point((-1.5, 0.0))
    assert class1.contains_point((-1.5, 0.0)) and not class1.contains_point((1.5, 0.0))
    points = [c.get_offsets().tolist() for c in ax.collections[1:]]
    assert points == [[[2.0, 1.0], [1.0, 0.5]], [[-2.0, -1.0], [-1.0, 0.0]]]
    assert ax.get_xlim() == pytest.approx((-2.6, 2.6))
    assert ax.get_ylim() == pytest.approx((-1.3, 1.3))
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("$x_1$", "$x_2$", "sign")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["class 0", "class 1"]


def test_decision_boundary_asks_predict_for_a_300_by_300_grid_over_the_span():
    """By default the grid is 300 x 300 points from the lower-left corner of the span to
    its upper-right one, x1 running fastest; without a title none is set."""
    model = Recorder()
    ax = plot.decision_boundary(model, X, Y)
    (grid,) = model.grids
    assert grid.shape == (90_000, 2)
    np.testing.assert_allclose(grid[0], [-2.6, -1.3])
    np.testing.assert_allclose(grid[1], [-2.6 + 5.2 / 299, -1.3])
    np.testing.assert_allclose(grid[-1], [2.6, 1.3])
    below, above = ax.collections[0].get_paths()  # predict: class 1 where x2 > 0
    assert below.contains_point((0.0, -1.0)) and above.contains_point((0.0, 1.0))
    assert ax.get_title() == ""


def test_classes_predicted_but_not_in_y_get_a_band_and_a_legend_entry():
    """The bands cover every class that predict or y names (here 0, 1 and 2)."""
    model = Recorder()
    ax = plot.decision_boundary(model, X, np.array([2, 2, 2, 2]), resolution=10)
    np.testing.assert_array_equal(ax.collections[0].levels, [-0.5, 0.5, 1.5, 2.5])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["class 0", "class 1", "class 2"]
    assert [len(c.get_offsets()) for c in ax.collections[1:]] == [0, 0, 4]


def test_decision_boundary_refuses_inputs_that_are_not_n_by_2():
    """X of shape (n,), (n, 2, 2) or (n, 1) is refused with the shape it has."""
    model = Recorder()
    for bad in (np.zeros(4), np.zeros((4, 2, 2)), np.zeros((4, 1))):
        with pytest.raises(ValueError, match=r"2-D inputs, got X of shape \(4"):
            plot.decision_boundary(model, bad, Y)
    assert model.grids == []


def test_decision_boundary_refuses_non_numbers_and_inf():
    """Strings or an inf in X, and fractional labels in y, are each a clear error."""
    model = Recorder()
    with pytest.raises(ValueError, match="X must hold finite numbers"):
        plot.decision_boundary(model, np.array([["a", "b"]] * 4), Y)
    with pytest.raises(ValueError, match="X must hold finite numbers"):
        plot.decision_boundary(model, np.where(X == 2.0, np.inf, X), Y)
    with pytest.raises(ValueError, match="y must hold integer class labels"):
        plot.decision_boundary(model, X, Y + 0.5)
    with pytest.raises(ValueError, match="at least one point to span a plane: X has none"):
        plot.decision_boundary(model, np.zeros((0, 2)), np.zeros(0))
    assert model.grids == []


def test_decision_boundary_draws_boolean_inputs_as_0_and_1():
    """Boolean features span 0..1 (each side 15 % wider) and their points sit at 0 or 1."""
    ax = plot.decision_boundary(Recorder(), X > 0, Y, resolution=10)
    assert ax.get_xlim() == pytest.approx((-0.15, 1.15))
    points = [c.get_offsets().tolist() for c in ax.collections[1:]]
    assert points == [[[1.0, 1.0], [1.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]]]


def test_decision_boundary_reads_labels_given_as_a_column_or_one_hot_rows():
    """y of shape (n, 1), or one-hot (n, k), or floats 0.0/1.0, draws as its classes."""
    for labels in (Y[:, None], np.eye(2)[Y], Y.astype(float)):
        ax = plot.decision_boundary(Recorder(), X, labels, resolution=10)
        points = [c.get_offsets().tolist() for c in ax.collections[1:]]
        assert points == [[[2.0, 1.0], [1.0, 0.5]], [[-2.0, -1.0], [-1.0, 0.0]]]


def test_the_span_of_points_that_share_a_value_along_one_axis():
    """Along an axis with one value the span is that value +- 0.5, along the other one
    15 % of the extent."""
    ax = plot.decision_boundary(Recorder(), [[0.0, 3.0], [10.0, 3.0]], [0, 1], resolution=5)
    assert ax.get_xlim() == pytest.approx((-1.5, 11.5))
    assert ax.get_ylim() == pytest.approx((2.5, 3.5))


def test_curves_label_the_axes_and_number_the_epochs_from_0():
    """A dict's values are drawn at 0, 1, 2, ... against the epoch; the y label is the
    one key's name, or "value" for several (with a legend); the y scale is linear, the
    grid on, and the title absent unless given."""
    one = plot.curves({"loss": [3.0, 2.0, 1.5]})
    (line,) = one.get_lines()
    assert line.get_xdata().tolist() == [0, 1, 2] and line.get_ydata().tolist() == [3, 2, 1.5]
    assert (one.get_xlabel(), one.get_ylabel(), one.get_title()) == ("epoch", "loss", "")
    assert one.get_yscale() == "linear" and one.get_legend() is None
    assert all(g.get_visible() for g in one.xaxis.get_gridlines())
    two = plot.curves({"a": [1.0, 2.0], "b": [2.0, 1.0]}, keys=("a", "b"), xlabel="step")
    assert (two.get_xlabel(), two.get_ylabel()) == ("step", "value")
    assert [t.get_text() for t in two.get_legend().get_texts()] == ["a", "b"]
    assert plot.curves({"a": [1.0, 2.0]}, keys="a", ylabel="cost").get_ylabel() == "cost"
    assert plot.curves({"a": [1.0, 2.0]}, keys="a", title="run 1").get_title() == "run 1"


def test_curves_take_a_tuple_of_values_or_a_pair_of_steps_and_values():
    """A tuple of three values is three epochs; a pair (xs, values) sets the x values."""
    ax = plot.curves({"loss": (3.0, 2.0, 1.5)})
    assert ax.get_lines()[0].get_xydata().tolist() == [[0, 3.0], [1, 2.0], [2, 1.5]]
    ax = plot.curves({"loss": ([10, 20], [3.0, 2.0])})
    assert ax.get_lines()[0].get_xydata().tolist() == [[10, 3.0], [20, 2.0]]
    ax = plot.curves({"loss": (0.7, 0.5)})  # two numbers are two epochs, not (xs, values)
    assert ax.get_lines()[0].get_xydata().tolist() == [[0, 0.7], [1, 0.5]]
    ax = plot.curves({"loss": (np.float32(0.5), np.array(0.25))})
    assert ax.get_lines()[0].get_xydata().tolist() == [[0, 0.5], [1, 0.25]]
    steps = {0: 0.9, 100: 0.5}
    for xs in (steps.keys(), (s for s in steps), map(int, steps)):  # steps of any iterable
        ax = plot.curves({"loss": (xs, steps.values())})
        assert ax.get_lines()[0].get_xydata().tolist() == [[0, 0.9], [100, 0.5]]


def test_curves_of_a_history_draw_every_metric_at_its_epoch():
    """A History's metrics are drawn against its epochs, one line per key asked for
    that it has; a fixed ylim is applied as given."""
    X2, y2 = nb.datasets.make_moons(20, seed=0)
    history = nb.Sequential([Dense(2, 2)], seed=0).fit(
        X2, y2, loss="cross_entropy", optimizer="adam", epochs=3, batch_size=None, verbose=0
    )
    ax = plot.curves(history, keys=("loss", "nothing"), ylim=(-1.0, 5.0))
    (line,) = ax.get_lines()
    assert line.get_xdata().tolist() == [0, 1, 2]
    np.testing.assert_allclose(line.get_ydata(), history.history["loss"])
    assert ax.get_ylim() == (-1.0, 5.0)


def test_a_loss_named_with_accuracy_alongside_is_not_fixed_to_0_1():
    """Only when every key (or the y label) names an accuracy is the axis 0 to 1: a loss
    of 3 drawn next to an accuracy keeps its own range."""
    data = {"loss": [3.0, 2.5], "accuracy": [0.1, 0.2]}
    ax = plot.curves(data, keys=("loss", "accuracy"))
    assert ax.get_ylim()[1] > 2.9
    ax = plot.curves(data, keys=("loss", "accuracy"), ylabel="cost")
    assert ax.get_ylim()[1] > 2.9


def test_curves_name_a_curve_whose_steps_and_values_differ_in_length():
    """(steps, values) of unequal lengths: the curve's key and both counts, not
    matplotlib's shapes; (None, 0.5) is two epochs, the first a gap."""
    with pytest.raises(ValueError, match=r"^curves: 'val_loss' has 3 steps but 2 values$"):
        plot.curves(
            {"loss": [1.0, 0.5], "val_loss": ([1, 2, 3], [0.5, 0.25])}, keys=("loss", "val_loss")
        )
    ax = plot.curves({"loss": (None, 0.5)})
    xs, ys = ax.lines[0].get_data()
    assert list(xs) == [0, 1] and list(ys) == [None, 0.5]


def test_accuracies_on_a_log_axis_keep_matplotlibs_limits():
    """logy=True leaves out the 0-1 fix (a log axis has no 0: matplotlib warned and
    ignored the lower limit); the axis spans the values drawn."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ax = plot.curves({"accuracy": [0.01, 0.1, 0.5]}, keys="accuracy", logy=True)
    low, high = ax.get_ylim()
    assert ax.get_yscale() == "log" and 0 < low <= 0.01 and 0.5 <= high < 1.0


def test_image_grid_lays_images_out_in_a_near_square_grid():
    """Five images go in a 2 x 3 grid (the last axes empty), every axes hidden, the
    figure 1.1 inches a cell plus 0.4 for the title; ncols fixes the columns."""
    images = np.arange(5 * 4 * 3, dtype=float).reshape(5, 4, 3)
    fig = plot.image_grid(images, title="filters")
    assert len(fig.axes) == 6
    assert tuple(fig.get_size_inches()) == pytest.approx((3.3, 2.6))
    assert fig.get_suptitle() == "filters"
    assert not any(ax.axison for ax in fig.axes)
    shown = [ax.get_images() for ax in fig.axes]
    assert [len(s) for s in shown] == [1, 1, 1, 1, 1, 0]
    for k in range(5):
        np.testing.assert_array_equal(shown[k][0].get_array(), images[k])
        assert shown[k][0].get_cmap().name == "gray"
    wide = plot.image_grid(images, ncols=5)
    assert len(wide.axes) == 5 and wide.get_suptitle() == ""
    assert tuple(wide.get_size_inches()) == pytest.approx((5.5, 1.5))
    one = plot.image_grid(images[:1])  # one axes, still in a grid of its own
    assert len(one.axes) == 1 and len(one.axes[0].get_images()) == 1
    listed = plot.image_grid(list(images[:2]))  # a list of (h, w) arrays
    np.testing.assert_array_equal(listed.axes[1].get_images()[0].get_array(), images[1])


def test_image_grid_draws_a_conv_layers_filters_from_any_backend(backend):
    """The docstring's example: a conv layer's weights, on the model's backend, come
    to the host and are drawn one filter an axes."""
    model = nb.Sequential(
        [nb.layers.Conv2D(1, 3, 2)], input_shape=(1, 4, 4), backend=backend, seed=0
    )
    fig = plot.image_grid(model.params["0.W"][:, 0, ...])
    filters = nb.to_numpy(model.params["0.W"])[:, 0]
    for k, ax in enumerate(fig.axes[:3]):
        np.testing.assert_array_equal(ax.get_images()[0].get_array(), filters[k])


def test_image_grid_scales_colour_filters_and_draws_colour_images_as_they_are():
    """A Conv2D(3, k)'s filters, the docstring's example, went to matplotlib as they
    were: half their weights clipped to black or white, a warning a filter."""
    W = np.random.default_rng(0).normal(0, 0.5, size=(4, 3, 3, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib's "Clipping input data" is a log line
        drawn = [ax.get_images()[0].get_array() for ax in plot.image_grid(W).axes[:4]]
    for k, image in enumerate(drawn):
        filt = np.moveaxis(W[k], 0, -1)
        span = filt.max() - filt.min()
        np.testing.assert_allclose(image, (filt - filt.min()) / span, rtol=1e-12)
    photos = np.random.default_rng(1).random((2, 4, 4, 3))  # in [0, 1]: as given
    photos[1, 0, 0, 0] = np.nan  # one NaN pixel turned the whole image to NaN
    shown = plot.image_grid(photos).axes[1].get_images()[0].get_array()
    np.testing.assert_array_equal(np.ma.getdata(shown), photos[1])  # (matplotlib masks NaN)


def test_image_grid_refuses_a_stack_that_is_not_of_images():
    """A single (h, w) image or a 5-D array is refused with its shape."""
    for shape in [(3, 3), (1, 2, 2, 3, 1)]:
        with pytest.raises(
            ValueError, match=r"shape \(n, h, w\), \(n, h, w, 3\) or \(n, 3, h, w\)"
        ):
            plot.image_grid(np.zeros(shape))
    assert len(plot.image_grid(np.zeros((2, 2, 2, 3))).axes) == 2  # colour images


def test_image_grid_draws_images_as_the_conv_layers_take_them():
    """(n, 3, h, w) colour and (n, 1, h, w) grey images, the datasets' flatten=False
    layout, are drawn as (h, w, 3) and (h, w) (matplotlib refused their shape)."""
    colour = np.random.default_rng(0).uniform(size=(2, 3, 4, 5))
    fig = plot.image_grid(colour)
    np.testing.assert_array_equal(
        fig.axes[1].get_images()[0].get_array(), colour[1].transpose(1, 2, 0)
    )
    grey = colour[:, :1]
    fig = plot.image_grid(grey)
    np.testing.assert_array_equal(fig.axes[0].get_images()[0].get_array(), grey[0, 0])
    with pytest.raises(ValueError, match=r"got shape \(2, 2, 4, 5\)"):
        plot.image_grid(np.zeros((2, 2, 4, 5)))


def test_image_grid_reads_a_conv_layers_filters_as_channels_first():
    """W of Conv2D(1, 8, 3), (8, 1, 3, 3), was drawn as (1, 3) colour strips, and W of
    Conv2D(3, 4, 3), (4, 3, 3, 3), with its channel and width axes swapped."""
    rng = np.random.default_rng(0)
    grey, colour = rng.uniform(size=(8, 1, 3, 3)), rng.uniform(size=(4, 3, 3, 3))
    drawn = [ax.get_images()[0].get_array() for ax in plot.image_grid(grey).axes[:8]]
    for k in range(8):
        np.testing.assert_array_equal(drawn[k], grey[k, 0])
    drawn = [ax.get_images()[0].get_array() for ax in plot.image_grid(colour).axes]
    for k in range(4):
        np.testing.assert_array_equal(drawn[k], colour[k].transpose(1, 2, 0))


def test_image_grid_and_decision_boundary_check_their_sizes():
    """ncols is a whole number of at least 1 (0 was taken as "choose"), at most n;
    the boundary's resolution a whole number from 2 to 4000 (matplotlib's or NumPy's
    errors, or a grid of 10**12 points, otherwise)."""
    images = np.zeros((3, 2, 2))
    for bad, error in ((0, ValueError), ("3", TypeError), (2.0, TypeError)):
        with pytest.raises(error, match="ncols must be"):
            plot.image_grid(images, ncols=bad)
    assert len(plot.image_grid(images, ncols=10).axes) == 3
    for bad, error in ((1, ValueError), (True, TypeError), (2.5, TypeError), (10**12, ValueError)):
        with pytest.raises(error, match="decision_boundary resolution must be"):
            plot.decision_boundary(sign_model(), X, Y, resolution=bad)
    ax = plot.decision_boundary(sign_model(), X, Y, resolution=2)
    assert ax is not None


def test_save_writes_the_figure_at_110_dpi(tmp_path):
    """A 4.5 x 4 inch figure is saved as 495 x 440 pixels by default; dpi sets that."""
    fig, _ = plot.figure()
    assert png_size(plot.save(fig, tmp_path, "default")) == (495, 440)
    assert png_size(plot.save(fig, tmp_path, "small", dpi=20)) == (90, 80)


def test_save_takes_the_folder_as_a_string(tmp_path):
    """As the module's docstring does: ``save(fig, "out", "moons")``."""
    fig, _ = plot.figure()
    path = plot.save(fig, str(tmp_path / "out"), "moons")
    assert path == tmp_path / "out" / "moons.png" and path.is_file()


def test_seven_classes_reuse_the_first_colour():
    """The palette has six colours: the seventh class takes the first again."""
    model = Recorder()
    X7 = np.column_stack([np.arange(7.0), np.arange(7.0)])
    ax = plot.decision_boundary(model, X7, np.arange(7), resolution=5)
    colours = [tuple(c.get_facecolor()[0]) for c in ax.collections[1:]]
    assert len(set(colours[:6])) == 6 and colours[6] == colours[0]


def test_curves_leave_a_side_given_as_none_to_matplotlib():
    """ylim=(0, None), matplotlib's own way to fix the bottom alone, was refused as not
    two finite numbers; a side of NaN is still refused."""
    history = {"loss": [2.0, 1.0, 0.5]}
    low, high = plot.curves(history, ylim=(0, None)).get_ylim()
    assert low == 0.0 and high > 2.0  # the top is matplotlib's, above the curve
    low, high = plot.curves(history, ylim=[None, 1.5]).get_ylim()
    assert high == 1.5 and low < 0.5
    with pytest.raises(ValueError, match=r"^ylim is \(low, high\)"):
        plot.curves(history, ylim=(None, float("nan")))
    for bad in [(None,), ("0", "1")]:  # strings: matplotlib's TypeError after the drawing
        with pytest.raises(ValueError, match=r"^ylim is \(low, high\)"):
            plot.curves(history, ylim=bad)


def test_image_grid_loses_only_an_infinite_pixel_of_a_colour_filter():
    """A diverged weight of inf blackened the whole filter (-inf blanked it): the range
    is the finite pixels'."""
    image = np.random.default_rng(0).normal(size=(4, 4, 3))
    for bad in (np.inf, -np.inf):
        image[0, 0, 0] = bad
        drawn = plot._drawable(image, True).reshape(-1)
        assert np.isnan(drawn[0]) and np.isfinite(drawn[1:]).all() and drawn[1:].std() > 0


# --- a user's plots and histories (U34) -----------------------------------------------


def fitted(epochs: int, **options):
    model = nb.Sequential([Dense(2, 2)], seed=0)
    return model.fit(X, Y, loss="cross_entropy", optimizer="sgd", epochs=epochs, verbose=0,
                     batch_size=None, **options)  # fmt: skip


def test_a_point_with_no_neighbour_is_drawn_with_a_marker():
    """`neuron.py --epochs 1 --out`: a line through one point drew an empty axes."""
    assert plot.curves(fitted(1)).lines[0].get_marker() == "o"
    ax = plot.curves({"loss": [0.5, None, 0.4, float("nan"), 0.3, 0.2]})
    assert ax.lines[0].get_marker() == "o"  # 0.4 alone between two gaps
    assert plot.curves(fitted(3)).lines[0].get_marker() == "None"  # a line is a line


def test_curves_of_a_history_of_no_epochs_say_why():
    with pytest.raises(ValueError, match=r"this history has no epochs to draw \(epochs=0\)"):
        plot.curves(fitted(0))


def test_decision_boundary_names_a_model_of_several_outputs():
    """A multi-label net's predict gives (n, 2): NumPy's reshape error named nothing."""
    two = Recorder()
    two.predict = lambda grid: np.zeros((len(grid), 2), dtype=np.int64)
    with pytest.raises(ValueError, match=r"gives shape \(400, 2\) for 400 points: a decision"):
        plot.decision_boundary(two, X, Y, resolution=20)


@pytest.mark.parametrize(("name", "written", "magic"), [
    ("loss.svg", "loss.svg", b"<?xml"), ("loss.pdf", "loss.pdf", b"%PDF"),
    ("loss.PNG", "loss.PNG", b"\x89PNG"), ("loss", "loss.png", b"\x89PNG"),
    ("run.v2", "run.v2.png", b"\x89PNG"), ("sub/loss", "sub/loss.png", b"\x89PNG"),
])  # fmt: skip
def test_save_writes_the_format_its_name_asks_for(tmp_path, name, written, magic):
    """.svg and .pdf were PNG bytes under loss.svg.png; a name's folder was not made."""
    fig, ax = plot.figure()
    ax.plot([0, 1])
    path = plot.save(fig, tmp_path, name)
    assert path == tmp_path / written and path.read_bytes().startswith(magic)


def test_save_refuses_a_file_as_its_folder_and_a_dpi_of_no_use(tmp_path):
    fig, _ = plot.figure()
    (tmp_path / "afile").write_text("")
    with pytest.raises(NotADirectoryError, match=r"afile is a file: give save a folder"):
        plot.save(fig, tmp_path / "afile", "loss")
    for dpi in (10**6, "high"):
        with pytest.raises((ValueError, TypeError), match="save dpi"):
            plot.save(fig, tmp_path, "loss", dpi=dpi)


def test_a_history_is_told_what_to_ask_for_a_metric_it_did_not_record():
    """'val_mae' was told to pass validation data, which still gave no val_mae; a
    metric the fit's loss refuses was offered; a slice was Python's "unhashable type"."""
    history = fitted(2)  # cross-entropy on 2 classes: neither mae nor top-2 records
    with pytest.raises(KeyError, match=r"this fit's loss cannot record it: mae compares"):
        history["val_mae"]
    with pytest.raises(KeyError, match=r"cannot record it: top_2_accuracy of a model with 2"):
        history["top_2_accuracy"]
    with pytest.raises(KeyError, match=r"slice\(0, 2, None\): this fit recorded"):
        history[0:2]
    with pytest.raises(KeyError, match=r"'val_acc'.*pass validation_data or validation_split"):
        history["val_acc"]
    targets = X[:, :1]
    regression = nb.Sequential([Dense(2, 1)], seed=0)
    fit = dict(loss="mse", optimizer="sgd", epochs=1, verbose=0, batch_size=None)
    alone = regression.fit(X, targets, **fit)
    with pytest.raises(KeyError, match=r"ask for it: metrics=\['mae'\] and validation data"):
        alone["val_mae"]
    with pytest.raises(KeyError, match=r"cannot record it: accuracy needs a loss that classif"):
        alone["accuracy"]
    validated = regression.fit(X, targets, validation_data=(X, targets), **fit)
    with pytest.raises(KeyError) as err:
        validated["val_mae"]
    assert str(err.value).endswith("ask for it: metrics=['mae']\"")


def test_a_value_between_nan_gaps_gets_a_marker():
    assert plot.curves({"loss": [float("nan"), 0.4, float("nan")]}).lines[0].get_marker() == "o"


def test_curves_of_a_resume_with_nothing_left_say_its_reason(tmp_path):
    fit = dict(loss="cross_entropy", optimizer="sgd", epochs=2, verbose=0,
               checkpoint=tmp_path / "r.h5")  # fmt: skip
    nb.Sequential([Dense(2, 2)], seed=0).fit(X, Y, **fit)
    history = nb.Sequential([Dense(2, 2)], seed=0).fit(X, Y, resume=True, **fit)
    with pytest.raises(ValueError, match=r"no epochs to draw \(nothing left to train"):
        plot.curves(history)
