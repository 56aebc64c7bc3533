"""Plots for the examples: decision boundaries and training curves (matplotlib).

matplotlib is optional (``pip install 'nnbackend[plot]'``) and imported only when a
function here is called. Figures are made with ``matplotlib.figure.Figure``, not
pyplot, so nothing opens a window and no global figure state is kept: draw, then save.

    fig, ax = nb.plot.figure()
    nb.plot.decision_boundary(model, X, y, ax=ax, title="hidden layer of 3")
    nb.plot.save(fig, "out", "moons")          # -> out/moons.png
    nb.plot.image_grid(model.params["0.W"][:, 0, ...])  # a conv layer's filters

This module is an edge of the library, like the data loaders: it works on host NumPy
arrays and brings the model's outputs back with ``nb.to_numpy``.
"""

from __future__ import annotations

import io
import math
import numbers
import os
from pathlib import Path

import numpy as np

from nnbackend.atomic import atomic_write
from nnbackend.backend import to_numpy
from nnbackend.checks import finite_float, home_expanded, integer, positive_int
from nnbackend.data import is_host

INSTALL_HINT = (
    "plotting needs matplotlib: pip install 'nnbackend[plot]' (or pip install matplotlib)"
)
#: the most classes decision_boundary colours (a plot of more would not end soon)
MAX_CLASSES = 256


def _matplotlib():
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return matplotlib, Figure


def figure(nrows: int = 1, ncols: int = 1, *, size: tuple[float, float] | None = None, **kw):
    """A new window-less figure and its axes (one Axes, or an array of them).

    ``size`` is the whole figure's (width, height) in inches; by default 4.5 x 4 per axes.
    Other keywords go to ``Figure.subplots`` (``sharex``, ``squeeze``, ...).
    """
    _, Figure = _matplotlib()
    size = size or (4.5 * ncols, 4.0 * nrows)
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.subplots(nrows, ncols, **kw)


def decision_boundary(model, X, y, ax=None, title: str | None = None, resolution: int = 300):
    """Colour the plane by ``model.predict`` and scatter the points (X, y) over it, each
    class in one colour, its region a paler one.

    ``X``: host (n, 2) inputs; ``y``: (n,) integer class labels (or one-hot rows). The
    grid spans X with a margin of 15 % of its extent, goes to the model's backend through
    ``model.predict`` (which takes host data) and comes back with ``nb.to_numpy``.
    Returns the Axes.
    """
    X, y = _points(X, y)
    resolution = integer(resolution, "decision_boundary resolution", low=2, high=4000)
    if ax is None:
        _, ax = figure()
    (x0, y0), (x1, y1) = _span(X)
    gx, gy = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    predicted = to_numpy(model.predict(grid))
    if predicted.size != grid.shape[0]:  # a label per row, not a row of outputs
        raise ValueError(
            f"model.predict gives shape {tuple(predicted.shape)} for {grid.shape[0]} points: "
            "a decision boundary needs one class per point; for one of several outputs "
            "pass an object whose predict picks it, e.g. types.SimpleNamespace(predict="
            "lambda X: model.predict(X)[:, k])"
        )
    labels = _class_labels(predicted).reshape(gx.shape)
    classes = np.unique(np.concatenate([np.unique(labels), np.unique(y)]))
    colours = _class_colours(len(classes))
    levels = np.concatenate([classes - 0.5, [classes[-1] + 0.5]])  # one band per class
    ax.contourf(gx, gy, labels, levels=levels, colors=colours, alpha=0.35)
    for k, colour in zip(classes, colours, strict=True):
        mine = y == k
        ax.scatter(X[mine, 0], X[mine, 1], s=14, color=colour, edgecolor="k", linewidth=0.4,
                   label=f"class {int(k)}")  # fmt: skip
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.legend(loc="upper right", fontsize="small", framealpha=0.8)
    if title:
        ax.set_title(title)
    return ax


def _class_labels(predicted: np.ndarray) -> np.ndarray:
    """``model.predict``'s classes, refused where they are continuous values: each one
    would be a class of its own (90,000 contours and scatters at the default grid)."""
    whole = predicted.dtype.kind in "biu" or np.array_equal(predicted, np.round(predicted))
    if whole and np.unique(predicted).size > MAX_CLASSES:
        raise ValueError(
            f"model.predict gives {np.unique(predicted).size} classes over the plane; "
            f"decision_boundary colours at most {MAX_CLASSES}"
        )
    if not whole:
        raise ValueError(
            "decision_boundary colours the classes model.predict gives, but this model "
            "predicts continuous values (a regression loss, such as MSE): train it with a "
            "classifying loss, or give an object whose predict thresholds them, e.g. "
            "types.SimpleNamespace(predict=lambda X: model.predict(X) > 0.5)"
        )
    return predicted


def _points(X, y) -> tuple[np.ndarray, np.ndarray]:
    """(X, y) as host arrays: X (n, 2) of finite numbers, y (n,) int64 labels."""
    X, y = (np.asarray(a) if is_host(a) else to_numpy(a) for a in (X, y))
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"decision_boundary draws 2-D inputs, got X of shape {X.shape}")
    if X.shape[0] == 0:
        raise ValueError("decision_boundary needs at least one point to span a plane: X has none")
    if X.dtype.kind not in "biuf" or not np.isfinite(X).all():
        raise ValueError("X must hold finite numbers: a plane cannot span NaN or inf")
    if y.ndim == 2 and y.shape[1] > 1:
        y = y.argmax(axis=1)  # one-hot rows, as fit takes them
    y = y.reshape(-1)
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} points but y has {y.shape[0]} labels")
    if y.dtype.kind not in "biuf" or not (np.isfinite(y).all() and np.array_equal(y, np.round(y))):
        raise ValueError(
            f"y must hold integer class labels, as predict gives them (it holds {y.dtype}): "
            "encode other labels as 0..k-1 first"
        )
    return X.astype(np.float64), y.astype(np.int64)  # booleans cannot be subtracted


def _span(X) -> tuple[np.ndarray, np.ndarray]:
    """The lower-left and upper-right corners of the plane drawn: X's extent and 15 % of
    it on each side (0.5 along an axis where every point has one value)."""
    low, high = X.min(axis=0), X.max(axis=0)
    margin = np.where(high > low, 0.15 * (high - low), 0.5)
    return low - margin, high + margin


def curves(
    history_or_dict,
    keys=("loss",),
    ax=None,
    *,
    xlabel: str = "epoch",
    ylabel: str | None = None,
    title: str | None = None,
    logy: bool = False,
    ylim="auto",
):
    """Plot metrics against epochs: from a ``History`` (``model.fit``'s return) or a dict
    ``{name: list of values}`` (or ``{name: (xs, values)}`` for values at chosen steps).
    ``keys`` names the curves to draw (missing ones are skipped).

    ``ylim``: (low, high), or None for matplotlib's choice (of both sides, or of one
    given as None: (0, None)); "auto" (the default) fixes accuracies (every key, or the
    ylabel, names one) to 0-1 on a linear axis, so that noise between 0.08 and 0.12 does
    not fill the plot and look like learning. Returns the Axes."""
    _check_limits(ylim)
    data = history_or_dict.history if hasattr(history_or_dict, "history") else history_or_dict
    epochs = getattr(history_or_dict, "epochs", None)  # a History's: a resumed fit counts on
    if isinstance(keys, str):
        keys = (keys,)
    drawn = [k for k in keys if k in data]
    if epochs is not None and not epochs:  # a History of no epochs says why
        reason = getattr(history_or_dict, "stop_reason", None) or "epochs=0"
        raise ValueError(f"this history has no epochs to draw ({reason})")
    if not drawn:
        raise ValueError(f"none of {list(keys)} are in the history (it has {list(data)})")
    if ax is None:
        _, ax = figure()
    for key in drawn:
        values = data[key]
        if isinstance(values, tuple) and len(values) == 2 and not _is_number(values[0]):
            xs, values = values  # (steps, values); a tuple of two numbers is two epochs
        else:
            xs = epochs if epochs is not None else range(len(values))
        xs, values = list(xs), list(values)
        if len(xs) != len(values):
            raise ValueError(f"curves: {key!r} has {len(xs)} steps but {len(values)} values")
        ax.plot(xs, values, label=key, **_lone_points_marked(values))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel or (drawn[0] if len(drawn) == 1 else "value"))
    if logy:
        ax.set_yscale("log")
    if isinstance(ylim, str) and ylim == "auto":  # not an array's elementwise ==
        accuracies = all("accuracy" in k for k in drawn) or "accuracy" in (ylabel or "")
        ylim = (0.0, 1.0) if accuracies and not logy else None  # a log axis has no 0
    if ylim is not None:
        ax.set_ylim(*ylim)
    if len(drawn) > 1:
        ax.legend()
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    return ax


def _lone_points_marked(values: list) -> dict:
    """A marker where a finite value has no finite neighbour (one epoch alone, or one
    between two NaN gaps): a line through one point draws nothing."""
    finite = [v is not None and math.isfinite(float(v)) for v in values]
    lone = any(
        here and not (i > 0 and finite[i - 1]) and not (i + 1 < len(finite) and finite[i + 1])
        for i, here in enumerate(finite)
    )
    return {"marker": "o", "markersize": 3} if lone else {}


def _check_limits(ylim) -> None:
    """``curves``' ylim: "auto", None, or (low, high) as finite numbers or None."""
    if ylim is None or (isinstance(ylim, str) and ylim == "auto"):
        return
    try:  # a side of None is matplotlib's own choice: (0, None) fixes the bottom alone
        sides = list(ylim) if isinstance(ylim, tuple | list | np.ndarray) else None
        pair = None if sides is None else [v if v is None else _number(v) for v in sides]
    except (TypeError, ValueError):
        pair = None
    if pair is None or len(pair) != 2 or not all(v is None or np.isfinite(v) for v in pair):
        raise ValueError(
            f"ylim is (low, high) as finite numbers (a side None for matplotlib's choice), "
            f"None or 'auto', not {ylim!r}"
        )


def _number(value) -> float:
    if isinstance(value, str | bytes):  # float("1") would take it, matplotlib would not
        raise TypeError(f"{value!r} is no number")
    return float(value)


def image_grid(images, ncols: int | None = None, *, title: str | None = None, cmap="gray"):
    """A figure of small images side by side, without axes: ``images`` (n, h, w), e.g. a
    conv layer's filters ``W[:, 0]`` (grey, each scaled to its own range), or colour
    images, (n, h, w, 3) or as the conv layers take them, (n, 3, h, w) (and (n, 1, h, w)
    grey): a second axis of 1 or 3 is read as channels, as in a conv layer's filters
    ``W`` (k, 3, 3, 3) or (k, 1, 3, 3). Colour floats in [0, 1] and integers are drawn as
    they are, other floats (filters) each scaled to its own range. ``ncols``: images a
    row (at most n; by default a near square). Returns the figure."""
    images = np.asarray(images if is_host(images) else to_numpy(images))
    if images.ndim == 4 and images.shape[1] in (1, 3):
        images = np.moveaxis(images, 1, -1)  # channels first, as the conv layers take them
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    colour = images.ndim == 4 and images.shape[-1] == 3
    if not (images.ndim == 3 or colour) or images.shape[0] == 0:
        raise ValueError(
            "image_grid draws images of shape (n, h, w), (n, h, w, 3) or (n, 3, h, w), n at "
            f"least 1; got shape {images.shape}"
        )
    n = images.shape[0]
    ncols = math.ceil(math.sqrt(n)) if ncols is None else min(positive_int(ncols, "ncols"), n)
    nrows = math.ceil(n / ncols)
    fig, axes = figure(nrows, ncols, size=(1.1 * ncols, 1.1 * nrows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.set_axis_off()
        if i < n:
            ax.imshow(_drawable(images[i], colour), cmap=cmap, interpolation="nearest")
    if title:
        fig.suptitle(title)
    return fig


def _drawable(image, colour: bool):
    """A colour float image outside [0, 1] (a filter's weights) scaled to its own range,
    which matplotlib would clip; the rest as they are (it scales grey ones itself)."""
    finite = np.isfinite(image) if image.dtype.kind == "f" else None
    if not colour or finite is None or not finite.any():
        return image
    low, high = image[finite].min(), image[finite].max()  # a NaN or inf pixel is lost alone
    image = np.where(finite, image, np.nan)
    if low >= 0 and high <= 1:
        return image
    return (image - low) / (high - low if high > low else 1)


def save(fig, out_dir, name: str, dpi: int = 110) -> Path:
    """Write ``fig`` to ``out_dir/name`` (creating the folders), as PNG unless ``name``
    ends in another format matplotlib writes (.svg, .pdf); a name without one gets .png.
    Returns the path. The file is replaced whole or not at all: a full disk leaves the
    previous plot."""
    _matplotlib()
    out_dir, name = Path(home_expanded(out_dir)), os.fspath(name)  # a Path as the name too
    dpi = finite_float(dpi, "save dpi", low=1, high=2400)  # matplotlib takes 150.0 too
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"{out_dir} is a file: give save a folder for its plots")
    kind = Path(name).suffix[1:].lower()
    if kind not in fig.canvas.get_supported_filetypes():  # "loss", "run.v2": add .png
        kind, name = "png", f"{name}.png"
    path = out_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    written = io.BytesIO()
    fig.savefig(written, format=kind, dpi=dpi)
    return atomic_write(path, written.getbuffer())


def _is_number(value) -> bool:
    """A Python or NumPy number, None (a gap in a curve), or a 0-d array of any library."""
    return value is None or isinstance(value, numbers.Number) or getattr(value, "ndim", None) == 0


def _class_colours(n: int):
    base = ["#1f5fbf", "#c8321e", "#2a9d3a", "#8e44ad", "#e69f00", "#555555"]
    return [base[i % len(base)] for i in range(n)]
