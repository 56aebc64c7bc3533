"""A notebook's habits: cells re-run in one process (a class registered again, the
model cell not), a value shown by its repr, a kernel's stdout that is no terminal."""

from __future__ import annotations

import sys
import types
import warnings

import numpy as np
import pytest

import nnbackend as nb
from nnbackend import registry

CELL = """
@nb.register
class NotebookScale(nb.layers.Layer):
    def __init__(self, {name}=1.0):
        super().__init__()
        self.{name} = float({name})

    def forward(self, x, training=True):
        return x * self.{name}

    def backward(self, dy, input_grad=True):
        return dy * self.{name}

    def config(self):
        return {{**super().config(), "{name}": self.{name}}}
"""


@pytest.fixture
def cells(monkeypatch):
    """A notebook's namespace, and the layer registry as it was after the test."""
    monkeypatch.setattr(registry.LAYERS, "_classes", dict(registry.LAYERS._classes))
    return {"nb": nb, "__name__": "__main__"}


def test_a_layer_cell_re_run_unchanged_saves_and_changed_is_refused(cells, tmp_path):
    """After the class's cell was edited and re-run, nb.save wrote a file nb.load then
    refused ("unexpected keyword argument 'factor'"): the check built the old class."""
    exec(CELL.format(name="factor"), cells)  # noqa: S102 - a notebook's cell
    model = nb.Sequential([nb.layers.Dense(2, 3), cells["NotebookScale"]()], seed=0)
    exec(CELL.format(name="factor"), cells)  # noqa: S102 - the same cell, run again
    loaded = nb.load(nb.save(model, tmp_path / "same.h5"))
    assert type(loaded.layers[1]) is cells["NotebookScale"]
    exec(CELL.format(name="gain"), cells)  # noqa: S102 - the cell edited, run again
    with pytest.raises(ValueError, match="cannot be saved .*unexpected keyword argument 'factor'"):
        nb.save(model, tmp_path / "edited.h5")
    assert not (tmp_path / "edited.h5").exists()


def test_a_fit_in_a_kernel_without_ipywidgets_warns_nothing(monkeypatch):
    """tqdm.auto chose the notebook's widget bar, which without ipywidgets warned
    "IProgress not found" at the first fit, though no bar is shown off a terminal."""
    monkeypatch.setitem(sys.modules, "ipykernel.zmqshell", types.ModuleType("ipykernel.zmqshell"))
    shell = types.ModuleType("IPython")
    shell.get_ipython = lambda: type("ZMQInteractiveShell", (), {})()
    monkeypatch.setitem(sys.modules, "IPython", shell)
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    for name in [m for m in sys.modules if m == "tqdm" or m.startswith("tqdm.")]:
        monkeypatch.delitem(sys.modules, name)
    X = np.random.default_rng(0).normal(size=(16, 4))
    model = nb.Sequential([nb.layers.Dense(4, 2)], seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X, np.arange(16) % 2, loss="cross_entropy", optimizer="sgd", verbose=0)
    assert [str(w.message) for w in caught] == []


def test_the_summary_is_a_plain_str_that_h5py_stores(tmp_path):
    """A str subclass shown as its table was refused by h5py's attributes."""
    import h5py

    text = nb.Sequential([nb.layers.Dense(2, 3)], seed=0).summary()
    assert type(text) is str
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.attrs["summary"] = text
        assert f.attrs["summary"] == text
