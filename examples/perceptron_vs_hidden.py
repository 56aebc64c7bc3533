"""A perceptron against a net with one hidden layer: only the hidden layer bends.

make_moons(100, noise=0.10) cannot be split by a straight line. A perceptron (2
inputs -> 1 sigmoid output) can only draw one, however long it trains. Put four
sigmoid units between them (2-4-1) and the boundary curves around the moons. Both
nets are trained alike: no biases, error = 1/2 * sum of squared errors over the
samples, full-batch gradient descent, learning rate 0.5. ``--bias`` gives both nets
biases, which lets the hidden layer finish the job.

Why it reports the best epoch, not the last: the step of 0.5 on a *summed* error of
100 samples is large, and without biases the 2-4-1 net never settles. It reaches an
error near 2.1, then keeps jumping out of that valley and falling back (between about
2.1 and 12.6 over its last 500 epochs at seed 0), so the last epoch's error is
chance: it changes with the CPU's rounding (the SIMD exp of one CPU against
another's). So each net keeps the best weights it passed through
(``EarlyStopping(restore_best_weights=True)`` with a patience that never stops it),
and the example prints the error of those weights, the epoch they come from, and the
range the last 500 epochs swept. The error of each epoch's weights is measured after
that epoch's update, by "validating" on the training points themselves: the loss fit
records is measured before the update, so it belongs to the previous weights.

    python examples/perceptron_vs_hidden.py --backend numpy --out out
"""

from __future__ import annotations

import nnbackend as nb
from nnbackend.layers import Dense, Sigmoid

LAST = 500  # the epochs whose spread is reported


def nets(backend, seed: int, bias: bool) -> dict[str, nb.Sequential]:
    return {
        "perceptron 2-1": nb.Sequential(
            [Dense(2, 1, bias=bias), Sigmoid()], backend=backend, seed=seed
        ),
        "hidden layer 2-4-1": nb.Sequential(
            [Dense(2, 4, bias=bias), Sigmoid(), Dense(4, 1, bias=bias), Sigmoid()],
            backend=backend,
            seed=seed,
        ),
    }


def train(model, X, target, args) -> dict:
    """Fit the tutorial's way, keep the best weights seen; their error and the last ones'."""
    epochs = nb.cli.max_steps(args.epochs)
    keep_best = nb.callbacks.EarlyStopping(
        monitor="val_loss", patience=epochs, restore_best_weights=True
    )
    history = model.fit(
        X,
        target,
        loss=nb.losses.MSE(reduction="sum", half=True),  # 1/2 * sum of squared errors
        optimizer=nb.optim.SGD(lr=args.lr),
        epochs=epochs,
        batch_size=None,
        validation_data=(X, target),  # the same points, measured after each update
        callbacks=[keep_best],
        verbose=0,
    )
    n = X.shape[0]  # the history holds the error per sample; the tutorial prints the sum
    errors = [value * n for value in history["val_loss"]]
    return {
        "error": model.evaluate(X, target)["loss"] * n,  # the weights kept
        "best_epoch": keep_best.best_epoch,
        "last_error": errors[-1],
        "last_range": (min(errors[-LAST:]), max(errors[-LAST:])),
        "epochs": len(history),
    }


def main(argv=None) -> dict:
    parser = nb.cli.example_parser(__doc__, epochs=10000, dtype="float64")
    parser.add_argument(
        "--lr", type=nb.cli.positive, default=0.5, help="learning rate (default 0.5)"
    )
    parser.add_argument("--bias", action="store_true", help="give both nets biases")
    args = parser.parse_args(argv)
    backend = nb.cli.backend_from_args(args)
    X, y = nb.datasets.make_moons(100, noise=0.10, seed=0)
    target = y.astype(float)  # the sigmoid output is compared with 0.0 / 1.0

    result = {"backend": backend.name, "bias": args.bias}
    models = nets(backend, args.seed, args.bias)
    for name, model in models.items():
        run = train(model, X, target, args)
        run["accuracy"] = float((model.predict(X) == y).mean())
        low, high = run["last_range"]
        print(
            f"{name:<20} error {run['error']:8.4f}   accuracy {run['accuracy']:.2f}   "
            f"(best of {run['epochs']} epochs: epoch {run['best_epoch']}; the last "
            f"{min(LAST, run['epochs'])} ranged {low:.4g} to {high:.4g})"
        )
        result[name] = run
    result["perceptron_error"] = result["perceptron 2-1"]["error"]
    result["hidden_error"] = result["hidden layer 2-4-1"]["error"]

    if args.out:
        from nnbackend import plot

        fig, axes = plot.figure(1, 2, size=(10, 4.3))
        for ax, (name, model) in zip(axes, models.items(), strict=True):
            r = result[name]
            title = f"{name}: error {r['error']:.2f}, accuracy {r['accuracy']:.2f}"
            plot.decision_boundary(model, X, y, ax=ax, title=title)
        fig.suptitle("make_moons(100, noise=0.1), " + ("with" if args.bias else "no") + " biases")
        name = "perceptron_vs_hidden_bias" if args.bias else "perceptron_vs_hidden"
        result["plots"] = [plot.save(fig, args.out, name)]
        print(f"saved {result['plots'][0]}")
    return result


if __name__ == "__main__":
    nb.cli.run(main)
