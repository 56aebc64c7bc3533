"""A neural network from scratch on make_moons: one tanh hidden layer, softmax output.

The classic first tutorial (Denny Britz, "Implementing a Neural Network from
Scratch"). Logistic regression can only draw a straight line between the two moons;
a hidden layer of 3 tanh units bends it around them. The tutorial's choices, kept:

- 200 points, noise 0.20; a 2-H-2 net, tanh hidden, softmax output;
- cross-entropy summed over the samples, plus L2 decay reg_lambda/2 * sum(W**2)
  (its gradient is reg_lambda * W: ``l2=0.01``), printed every 1000 passes as
  (sum + L2 term) / N, measured in that pass before its update;
- weights randn / sqrt(fan_in) (the library's default, "lecun"), biases 0;
- full-batch gradient descent, learning rate 0.01, 20000 passes, float64.

A learning rate of 0.01 on a loss *summed* over 200 samples is at the edge of
stability here: after about 2000 passes the loss stops falling and alternates, one
pass to the next, between two values (0.070758 and 0.071316 at seed 0). Which of the
two the tutorial's print of every 1000th pass lands on depends on the CPU's rounding,
so the example also prints the mean of the last two passes (the same on every CPU to
about 1e-9) and the lowest loss seen.

    python examples/moons_softmax.py --backend numpy --out out
    python examples/moons_softmax.py --grid --out out     # H = 1, 2, 3, 4, 5, 20, 50
"""

from __future__ import annotations

import time
import warnings

import nnbackend as nb
from nnbackend.layers import Dense, Tanh

GRID_SIZES = (1, 2, 3, 4, 5, 20, 50)


def build(n_hidden: int, backend, seed: int) -> nb.Sequential:
    return nb.Sequential(
        [Dense(2, n_hidden), Tanh(), Dense(n_hidden, 2)], backend=backend, seed=seed
    )


def train(X, y, n_hidden: int, backend, args, print_every: int | None = 1000):
    """Build a 2-n_hidden-2 net and fit it the tutorial's way; returns (model, history)."""
    model = build(n_hidden, backend, args.seed)
    report = nb.callbacks.LambdaCallback(
        lambda epoch, logs, m: print(f"Loss after iteration {epoch}: {logs['loss']:f}"),
        every=print_every or 1,
    )
    history = model.fit(
        X,
        y,
        loss=nb.losses.SoftmaxCrossEntropy(reduction="sum"),  # the gradient of the sum
        optimizer=nb.optim.SGD(lr=args.lr),
        l2=args.reg_lambda,
        epochs=nb.cli.max_steps(args.epochs),
        batch_size=None,  # full-batch gradient descent
        callbacks=[report] if print_every else [],
        verbose=0,
    )
    return model, history


def logistic_regression_accuracy(X, y) -> float:
    """The tutorial's baseline: scikit-learn's LogisticRegressionCV, a straight line."""
    from sklearn.linear_model import LogisticRegressionCV

    with warnings.catch_warnings():  # newer scikit-learn warns about changing defaults
        warnings.simplefilter("ignore", FutureWarning)
        return float(LogisticRegressionCV().fit(X, y).score(X, y))


def main(argv=None) -> dict:
    parser = nb.cli.example_parser(__doc__, epochs=20000, dtype="float64")
    parser.add_argument(
        "--hidden", type=nb.cli.at_least(1), default=3, help="hidden units (default 3)"
    )
    parser.add_argument(
        "--lr", type=nb.cli.positive, default=0.01, help="learning rate (default 0.01)"
    )
    parser.add_argument(
        "--reg-lambda", type=nb.cli.non_negative, default=0.01, help="L2 strength (0.01)"
    )
    parser.add_argument(
        "--samples",
        type=nb.cli.at_least(10),
        default=200,
        help="points (default 200; at least 10, for the baseline's 5-fold search)",
    )
    parser.add_argument(
        "--grid", action="store_true", help=f"also train H in {GRID_SIZES} and plot them"
    )
    args = parser.parse_args(argv)
    backend = nb.cli.backend_from_args(args)
    X, y = nb.datasets.make_moons(args.samples, noise=0.20, seed=0)

    baseline = logistic_regression_accuracy(X, y)
    print(f"logistic regression (scikit-learn) training accuracy: {baseline:.3f}")

    start = time.perf_counter()
    model, history = train(X, y, args.hidden, backend, args)
    seconds = time.perf_counter() - start
    accuracy = model.evaluate(X, y)["accuracy"]
    print(
        f"2-{args.hidden}-2 net on {backend.name}: training accuracy {accuracy:.3f} "
        f"({len(history)} passes in {seconds:.1f} s)"
    )
    losses = history["loss"]
    result = {
        "backend": backend.name,
        "logistic_accuracy": baseline,
        "hidden": args.hidden,
        "loss": sum(losses[-2:]) / len(losses[-2:]),  # the alternation's middle
        "alternates_between": sorted(losses[-2:]),
        "min_loss": min(losses),
        "min_loss_pass": losses.index(min(losses)),
        "accuracy": accuracy,
        "epochs": len(history),
        "seconds": seconds,
    }
    last = " and ".join(f"{loss:f}" for loss in result["alternates_between"])  # one: --epochs 1
    print(
        f"the last two passes' losses: {last} (mean {result['loss']:f}); "
        f"lowest {result['min_loss']:f} at pass {result['min_loss_pass']}"
    )

    if args.grid:
        grid = {}
        for n_hidden in GRID_SIZES:
            grid[n_hidden] = train(X, y, n_hidden, backend, args, print_every=None)[0]
            acc = grid[n_hidden].evaluate(X, y)["accuracy"]
            print(f"hidden layer size {n_hidden:>2}: training accuracy {acc:.3f}")
            result.setdefault("grid_accuracy", {})[n_hidden] = acc

    if args.out:
        from nnbackend import plot

        fig, ax = plot.figure()
        plot.decision_boundary(
            model, X, y, ax=ax, title=f"hidden layer of {args.hidden} (accuracy {accuracy:.3f})"
        )
        result["plots"] = [plot.save(fig, args.out, f"moons_h{args.hidden}")]
        if args.grid:
            fig, axes = plot.figure(2, 4, size=(16, 8))
            for ax, (n_hidden, m) in zip(axes.flat, grid.items(), strict=False):
                acc = result["grid_accuracy"][n_hidden]
                plot.decision_boundary(m, X, y, ax=ax, title=f"H = {n_hidden} (accuracy {acc:.3f})")
            fig.suptitle("make_moons: the size of the hidden layer")
            axes.flat[-1].set_axis_off()
            result["plots"].append(plot.save(fig, args.out, "moons_grid"))
        for path in result["plots"]:
            print(f"saved {path}")
    return result


if __name__ == "__main__":
    nb.cli.run(main)
