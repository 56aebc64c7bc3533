"""Activation functions and their derivatives: sigmoid, tanh, ReLU and leaky ReLU.

What the tutorials say about each, and the plots show:

- sigmoid squashes to (0, 1); its slope is at most 0.25 and vanishes for |x| > 5,
  so gradients shrink layer after layer (the "vanishing gradient");
- tanh squashes to (-1, 1), centred on 0, slope at most 1, and vanishes too;
- ReLU is x for x > 0, else 0: slope 1 where active, so gradients pass unchanged,
  but a unit that is never active never learns ("dead ReLU");
- leaky ReLU keeps a small slope (alpha = 0.1 here, for the plot) below 0.

The functions come from ``nnbackend.functional``, computed on the backend you pick.

    python examples/activations.py --backend strict --out out
"""

from __future__ import annotations

import numpy as np

import nnbackend as nb
from nnbackend import functional as F

ALPHA = 0.1

FUNCTIONS = {
    "sigmoid": (F.sigmoid, F.sigmoid_grad),
    "tanh": (F.tanh, F.tanh_grad),
    "ReLU": (F.relu, F.relu_grad),
    f"leaky ReLU (alpha={ALPHA})": (
        lambda x: F.leaky_relu(x, ALPHA),
        lambda x: F.leaky_relu_grad(x, ALPHA),
    ),
}


def main(argv=None) -> dict:
    parser = nb.cli.example_parser(__doc__, seed=None)  # nothing here is drawn
    parser.add_argument(
        "--points", type=nb.cli.at_least(2), default=401, help="points in [-10, 10] (401)"
    )
    args = parser.parse_args(argv)
    backend = nb.cli.backend_from_args(args)
    # the points are made on the host, so every backend gets exactly the same ones
    x = backend.asarray(np.linspace(-10.0, 10.0, args.points))

    curves, slopes = {}, {}
    print(f"{'function':<24}{'f(-10)':>10}{'f(0)':>10}{'f(10)':>10}{'max slope':>11}")
    zero = backend.asarray(np.zeros(1))  # not a point for an even count
    for name, (f, grad) in FUNCTIONS.items():
        y, dy = nb.to_numpy(f(x)), nb.to_numpy(grad(x))
        at_zero = nb.to_numpy(f(zero))[0]
        steepest = max(float(dy.max()), float(nb.to_numpy(grad(zero))[0]))  # at 0, for some
        curves[name], slopes[name] = (y, dy), steepest
        print(f"{name:<24}{y[0]:>10.4f}{at_zero:>10.4f}{y[-1]:>10.4f}{steepest:>11.4f}")
    result = {
        "backend": backend.name,
        "max_slope": slopes,
        "range": {name: (float(y.min()), float(y.max())) for name, (y, _) in curves.items()},
    }

    if args.out:
        from nnbackend import plot

        host_x = nb.to_numpy(x)
        fig, axes = plot.figure(2, 2, size=(10, 8))
        for ax, (name, (y, dy)) in zip(axes.flat, curves.items(), strict=True):
            ax.plot(host_x, y, label=f"{name.split(' (')[0]}(x)")
            ax.plot(host_x, dy, "--", label="derivative")
            ax.axhline(0, color="grey", linewidth=0.6)
            ax.axvline(0, color="grey", linewidth=0.6)
            ax.set_title(name)
            ax.set_xlabel("x")
            ax.grid(alpha=0.3)
            ax.legend(loc="upper left")
        fig.suptitle("Activation functions and their derivatives")
        result["plots"] = [plot.save(fig, args.out, "activations")]
        print(f"saved {result['plots'][0]}")
    return result


if __name__ == "__main__":
    nb.cli.run(main)
