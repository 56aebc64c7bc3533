"""An L-layer network that tells cat pictures from others (deeplearning.ai, course 1).

The tutorial "Deep Neural Network for Image Classification: Application": 64x64 RGB
images flattened to 12288 numbers and scaled to [0, 1]; layers [12288, 20, 7, 5, 1],
ReLU hidden, sigmoid output, binary cross-entropy, learning rate 0.0075, 2500
full-batch gradient descent iterations; cost printed every 100.

It also shows why the initial weights matter. ``--init normal`` is the tutorial's
first try, randn * 0.01: fine for two layers, but through four the signal shrinks
layer after layer, the output sits at the share of cats (0.34) and the cost stalls
at 0.644, what answering 0.34 for every image costs. Scaling each layer by its
fan-in fixes it: ``--init lecun`` (randn / sqrt(fan_in), what the tutorial switches to) or
``--init he`` (randn * sqrt(2 / fan_in), made for ReLU).

Data: train_catvnoncat.h5 and test_catvnoncat.h5 in the folder ``--data`` names,
directly or in its catvnoncat/ subfolder, else in $NNBACKEND_DATA by the same rule.

    python examples/cat_classifier.py --backend numpy --init lecun --out out
    python examples/cat_classifier.py --init all --out out    # the three, one plot
"""

from __future__ import annotations

import math
import time

import nnbackend as nb
from nnbackend.layers import Dense, ReLU, Sigmoid

LAYER_SIZES = (12288, 20, 7, 5, 1)
INITS = {"normal": nb.init.Normal(0.01), "lecun": nb.init.LeCun(), "he": nb.init.He()}


def build(sizes, init, backend, seed: int) -> nb.Sequential:
    """Dense + ReLU for each hidden layer, Dense + Sigmoid at the end."""
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        last = i == len(sizes) - 2
        layers += [Dense(n_in, n_out, init=init), Sigmoid() if last else ReLU()]
    return nb.Sequential(layers, backend=backend, seed=seed)


def base_rate_cost(y) -> float:
    """The cost of answering every image with the share of cats: where a stalled net sits."""
    p = float(y.mean())
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))


def train(init: str, data, backend, args) -> dict:
    """Build the net with ``init`` and fit it the tutorial's way; its numbers and history."""
    (X_train, y_train), (X_test, y_test) = data
    model = build(LAYER_SIZES, INITS[init], backend, args.seed)
    report = nb.callbacks.LambdaCallback(
        lambda epoch, logs, m: print(f"Cost after iteration {epoch}: {logs['loss']:f}"), every=100
    )
    start = time.perf_counter()
    history = model.fit(
        X_train,
        y_train,
        loss=nb.losses.BinaryCrossEntropy(),  # of the Sigmoid's probabilities, as the tutorial
        optimizer=nb.optim.SGD(lr=args.lr),
        epochs=nb.cli.max_steps(args.epochs),
        batch_size=None,  # each iteration sees all 209 images
        callbacks=[report],
        verbose=0,
    )
    seconds = time.perf_counter() - start
    run = {
        "cost": history["loss"][-1],
        "train_accuracy": model.evaluate(X_train, y_train)["accuracy"],
        "test_accuracy": model.evaluate(X_test, y_test)["accuracy"],
        "epochs": len(history),
        "seconds": seconds,
        "history": history,
    }
    print(
        f"init {init} on {backend.name}: train accuracy {run['train_accuracy']:.3f}, "
        f"test accuracy {run['test_accuracy']:.3f} ({run['epochs']} iterations in "
        f"{seconds:.1f} s)"
    )
    return run


def main(argv=None) -> dict:
    parser = nb.cli.example_parser(__doc__, epochs=2500, data="catvnoncat")
    parser.add_argument(
        "--init",
        choices=[*INITS, "all"],
        default="lecun",
        help="initial weights: normal (x0.01), lecun or he, or all three "
        "one after the other (default lecun)",
    )
    parser.add_argument("--lr", type=nb.cli.positive, default=0.0075, help="learning rate (0.0075)")
    args = parser.parse_args(argv)
    backend = nb.cli.backend_from_args(args)
    data = nb.cli.load_data(nb.datasets.load_catvnoncat, args)
    (X_train, y_train), (X_test, _) = data
    base = base_rate_cost(y_train)
    print(
        f"{X_train.shape[0]} training and {X_test.shape[0]} test images of "
        f"{X_train.shape[1]} numbers; {int(y_train.sum())} cats in training, so always "
        f"answering {y_train.mean():.2f} costs {base:.4f}"
    )

    runs = {}
    for init in INITS if args.init == "all" else [args.init]:
        runs[init] = train(init, data, backend, args)
    result = {"backend": backend.name, "base_rate_cost": base, "runs": runs}

    if args.out:
        from nnbackend import plot

        fig, ax = plot.figure(size=(6.5, 4.2))
        plot.curves(
            {f"init {init}": run["history"]["loss"] for init, run in runs.items()},
            keys=[f"init {init}" for init in runs],
            ax=ax,
            xlabel="iteration",
            ylabel="cost (binary cross-entropy)",
            title=f"[12288, 20, 7, 5, 1] on cat vs non-cat, lr {args.lr:g}",
            logy=True,
        )
        ax.axhline(
            base,
            color="black",
            linestyle=":",
            linewidth=1.2,
            zorder=3,
            label=f"always answering {y_train.mean():.2f}",
        )
        ax.legend()
        name = "cat_cost_" + ("all" if args.init == "all" else args.init)
        result["plots"] = [plot.save(fig, args.out, name)]
        print(f"saved {result['plots'][0]}")
    return result


if __name__ == "__main__":
    nb.cli.run(main)
