"""nnbackend.plot: decision boundaries and curves written as PNG files, on any backend."""

from __future__ import annotations

import pathlib
import re
import sys
import types

import numpy as np
import pytest

import nnbackend as nb
from nnbackend import plot
from nnbackend.layers import Dense, Tanh

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def moons_model(backend):
    X, y = nb.datasets.make_moons(60, noise=0.2, seed=0)
    model = nb.Sequential([Dense(2, 4), Tanh(), Dense(4, 2)], backend=backend, seed=0)
    history = model.fit(
        X, y, loss=nb.losses.SoftmaxCrossEntropy(), optimizer=nb.optim.Adam(0.05),
        epochs=30, batch_size=None, verbose=0,
    )  # fmt: skip
    return model, X, y, history


def test_decision_boundary_on_every_backend(moons_model, tmp_path):
    model, X, y, _ = moons_model
    fig, ax = plot.figure()
    returned = plot.decision_boundary(model, X, y, ax=ax, title="moons", resolution=50)
    assert returned is ax
    assert ax.get_title() == "moons"
    assert ax.get_xlabel() and ax.get_ylabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["class 0", "class 1"]
    path = plot.save(fig, tmp_path / "new" / "folder", "boundary")
    assert path == tmp_path / "new" / "folder" / "boundary.png"
    assert path.read_bytes()[:8] == PNG
    # a Path as the name, too: its .endswith was an AttributeError
    assert plot.save(fig, tmp_path, pathlib.Path("again.png")) == tmp_path / "again.png"


def test_decision_boundary_of_a_single_sigmoid_output(tmp_path):
    X, y = nb.datasets.make_moons(40, noise=0.1, seed=1)
    model = nb.Sequential([Dense(2, 1), nb.layers.Sigmoid()], backend="strict", seed=0)
    model.fit(X, y.astype(float), loss=nb.losses.BinaryCrossEntropy(),
              optimizer=nb.optim.SGD(0.5), epochs=20, batch_size=None, verbose=0)  # fmt: skip
    ax = plot.decision_boundary(model, X, y, resolution=40)
    assert plot.save(ax.figure, tmp_path, "sigmoid.png").name == "sigmoid.png"


def test_decision_boundary_of_continuous_predictions_is_refused_and_the_told_way_draws():
    """A regression model's predict gives floats: each was drawn as a class of its own
    (one contour band and one scatter each: past 10 minutes at the default grid)."""
    X, y = nb.datasets.make_moons(40, noise=0.2, seed=0)
    model = nb.Sequential([Dense(2, 4), Tanh(), Dense(4, 1)], seed=0)
    model.fit(X, y.astype(float), loss="mse", optimizer="adam", epochs=2, verbose=0)
    with pytest.raises(ValueError, match="predicts continuous values") as info:
        plot.decision_boundary(model, X, y, resolution=20)
    told = re.search(r"e\.g\. (types\.SimpleNamespace\(.*\))$", str(info.value))[1]
    thresholded = eval(told, {"types": types, "model": model})
    ax = plot.decision_boundary(thresholded, X, y, resolution=20)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["class 0", "class 1"]


def test_decision_boundary_of_many_whole_classes_draws_them_or_says_how_many():
    """80 classes (whole numbers) were called a regression's continuous values, and told
    to threshold them at 0.5; past 256, it says how many it cannot colour."""
    X = np.random.default_rng(0).uniform(-1, 1, (200, 2))

    def classes(n):
        return lambda A: np.clip(np.floor((np.asarray(A)[:, 0] + 1) * n / 2), 0, n - 1).astype(int)

    eighty = types.SimpleNamespace(predict=classes(80))
    ax = plot.decision_boundary(eighty, X, eighty.predict(X), resolution=100)
    assert len(ax.get_legend().get_texts()) == 80
    cells = lambda A: classes(20)(A) * 20 + classes(20)(A[:, ::-1])  # noqa: E731 (400 of them)
    many = types.SimpleNamespace(predict=cells)
    with pytest.raises(ValueError, match=r"gives \d+ classes over the plane; .* most 256") as info:
        plot.decision_boundary(many, X, many.predict(X), resolution=100)
    assert "continuous" not in str(info.value)


def test_decision_boundary_needs_two_features():
    model = nb.Sequential([Dense(3, 2)], seed=0)
    with pytest.raises(ValueError, match="2-D inputs"):
        plot.decision_boundary(model, np.zeros((5, 3)), np.zeros(5))


def test_each_class_has_one_colour_for_its_points_and_its_region():
    """The regions took a colour map of their own: with three classes, red points sat
    on grey and green ones on red (two classes happened to match)."""
    X, y = nb.datasets.make_blobs(90, centers=3, seed=0)
    model = nb.Sequential([Dense(2, 3)], seed=0)
    model.fit(X, y, loss="cross_entropy", optimizer=nb.optim.Adam(0.1), epochs=100,
              batch_size=None, verbose=0)  # fmt: skip
    assert (model.predict(X) == y).mean() > 0.9
    ax = plot.decision_boundary(model, X, y, resolution=40)
    regions = [ax.collections[0].get_facecolor()[k][:3] for k in range(3)]
    points = [c.get_facecolor()[0][:3] for c in ax.collections[1:]]
    np.testing.assert_array_equal(regions, points)
    assert len({tuple(p) for p in points}) == 3


def test_the_plane_spans_the_data_at_any_scale():
    """A margin of 0.5 in the data's units left data of extent 0.03 a thin stripe."""
    X, y = nb.datasets.make_moons(40, seed=0)
    model = nb.Sequential([Dense(2, 2)], seed=0)
    for scale in (0.01, 1.0, 100.0):
        ax = plot.decision_boundary(model, X * scale, y, resolution=10)
        extent = np.ptp(X[:, 0] * scale)
        assert ax.get_xlim() == pytest.approx(
            (X[:, 0].min() * scale - 0.15 * extent, X[:, 0].max() * scale + 0.15 * extent)
        )
    flat = plot.decision_boundary(model, np.ones((3, 2)), [0, 1, 0], resolution=10)
    assert flat.get_xlim() == (0.5, 1.5)


def test_the_points_are_checked_before_the_grid():
    model = nb.Sequential([Dense(2, 2)], seed=0)
    X, y = nb.datasets.make_moons(20, seed=0)
    with pytest.raises(ValueError, match="X must hold finite numbers"):  # it named the grid's
        plot.decision_boundary(model, np.where(X == X[3, 1], np.nan, X), y)
    one_hot = nb.datasets.one_hot(y, 2)  # as fit takes them: an IndexError
    ax = plot.decision_boundary(model, X, one_hot, resolution=10)
    assert [len(c.get_offsets()) for c in ax.collections[1:]] == [10, 10]
    with pytest.raises(ValueError, match="X has 20 points but y has 19 labels"):
        plot.decision_boundary(model, X, y[:19])
    with pytest.raises(ValueError, match="y must hold integer class labels.*<U1"):
        plot.decision_boundary(model, X, np.array(list("ab") * 10))
    with pytest.raises(ValueError, match=r"n at least 1; got shape \(0, 3, 3\)"):
        plot.image_grid(np.zeros((0, 3, 3)))


def test_a_failed_save_leaves_the_previous_plot(tmp_path, monkeypatch):
    fig, _ = plot.figure()
    path = plot.save(fig, tmp_path, "kept")
    before = path.read_bytes()
    fig2, ax = plot.figure()
    ax.plot([0, 1], [1, 0])

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("nnbackend.atomic._write_all", full_disk)
    with pytest.raises(OSError, match="No space left"):
        plot.save(fig2, tmp_path, "kept")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.png"]


def test_curves_from_a_history_and_from_a_dict(moons_model, tmp_path):
    _, _, _, history = moons_model
    fig, (left, right) = plot.figure(1, 2)
    plot.curves(history, keys=("loss", "accuracy", "val_loss"), ax=left, title="fit")
    assert [line.get_label() for line in left.get_lines()] == ["loss", "accuracy"]
    assert len(left.get_lines()[0].get_xdata()) == 30
    plot.curves({"cost": ([0, 100, 200], [0.7, 0.5, 0.4])}, keys="cost", ax=right, logy=True)
    assert list(right.get_lines()[0].get_xdata()) == [0, 100, 200]
    assert right.get_yscale() == "log"
    assert plot.save(fig, tmp_path, "curves").read_bytes()[:8] == PNG


def test_a_resumed_fits_curves_start_at_its_first_epoch(tmp_path):
    X, y = nb.datasets.make_moons(40, seed=0)
    path = tmp_path / "run.h5"
    fit = dict(loss="cross_entropy", optimizer="adam", batch_size=None, verbose=0,
               checkpoint=path)  # fmt: skip
    nb.Sequential([nb.layers.Dense(2, 2)], seed=0).fit(X, y, epochs=6, **fit)
    resumed = nb.Sequential([nb.layers.Dense(2, 2)], seed=0).fit(
        X, y, epochs=10, resume=True, **fit
    )
    ax = plot.curves(resumed, keys="loss")
    assert list(ax.get_lines()[0].get_xdata()) == [6, 7, 8, 9]


def test_accuracy_curves_sit_on_a_fixed_0_to_1_axis():
    """Chance on the digits (0.078 to 0.117) filled an auto-scaled axis and looked like
    learning; accuracies now get the whole 0-1 range, other curves their own."""
    chance = {"accuracy": [0.078, 0.117, 0.09], "val_accuracy": [0.08, 0.1, 0.11]}
    fig, (a, b, c, d) = plot.figure(1, 4)
    plot.curves(chance, keys=("accuracy", "val_accuracy"), ax=a)
    plot.curves({"train": [0.1, 0.12]}, keys="train", ax=b, ylabel="accuracy")
    plot.curves({"loss": [0.7, 0.5]}, keys="loss", ax=c)
    plot.curves(chance, keys="accuracy", ax=d, ylim=None)
    assert a.get_ylim() == b.get_ylim() == (0.0, 1.0)
    assert c.get_ylim()[1] < 0.8 and d.get_ylim()[1] < 0.2


def test_curves_with_no_known_key_is_a_clear_error():
    with pytest.raises(ValueError, match="none of \\['acc'\\]"):
        plot.curves({"loss": [1.0, 0.5]}, keys="acc")


def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"pip install 'nnbackend\[plot\]'"):
        plot.figure()


def test_decision_boundary_takes_exactly_max_classes():
    from nnbackend.plot import MAX_CLASSES, _class_labels

    assert _class_labels(np.arange(MAX_CLASSES)).size == MAX_CLASSES
    with pytest.raises(ValueError, match=f"colours at most {MAX_CLASSES}"):
        _class_labels(np.arange(MAX_CLASSES + 1))
