"""nnbackend.plot: decision boundaries and curves written as PNG files, on any backend."""

from __future__ import annotations

import sys

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


def test_decision_boundary_of_a_single_sigmoid_output(tmp_path):
    X, y = nb.datasets.make_moons(40, noise=0.1, seed=1)
    model = nb.Sequential([Dense(2, 1), nb.layers.Sigmoid()], backend="strict", seed=0)
    model.fit(X, y.astype(float), loss=nb.losses.BinaryCrossEntropy(),
              optimizer=nb.optim.SGD(0.5), epochs=20, batch_size=None, verbose=0)  # fmt: skip
    ax = plot.decision_boundary(model, X, y, resolution=40)
    assert plot.save(ax.figure, tmp_path, "sigmoid.png").name == "sigmoid.png"


def test_decision_boundary_needs_two_features():
    model = nb.Sequential([Dense(3, 2)], seed=0)
    with pytest.raises(ValueError, match="2-D inputs"):
        plot.decision_boundary(model, np.zeros((5, 3)), np.zeros(5))


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
