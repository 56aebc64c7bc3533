"""A perceptron against a net with one hidden layer: only the hidden layer bends.

make_moons(100, noise=0.10) cannot be split by a straight line. A perceptron (2
inputs -> 1 sigmoid output) can only draw one, however long it trains. Put four
sigmoid units between them (2-4-1) and the boundary curves around the moons. Both
nets are trained alike: no biases, error = 1/2 * sum of squared errors over the
samples, full-batch gradient descent, learning rate 0.5. The printed error is that
sum; ``--bias`` gives both nets biases, which lets the hidden layer finish the job.

    python examples/perceptron_vs_hidden.py --backend numpy --out out
"""

from __future__ import annotations

import nnbackend as nb
from nnbackend.layers import Dense, Sigmoid


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


def main(argv=None) -> dict:
    parser = nb.cli.example_parser(__doc__, epochs=10000, dtype="float64")
    parser.add_argument("--lr", type=float, default=0.5, help="learning rate (default 0.5)")
    parser.add_argument("--bias", action="store_true", help="give both nets biases")
    args = parser.parse_args(argv)
    backend = nb.cli.backend_from_args(args)
    X, y = nb.datasets.make_moons(100, noise=0.10, seed=0)
    target = y.astype(float)  # the sigmoid output is compared with 0.0 / 1.0

    result = {"backend": backend.name, "bias": args.bias}
    models = nets(backend, args.seed, args.bias)
    for name, model in models.items():
        history = model.fit(
            X,
            target,
            loss=nb.losses.MSE(reduction="sum", half=True),  # 1/2 * sum of squared errors
            optimizer=nb.optim.SGD(lr=args.lr),
            epochs=nb.cli.max_steps(args.epochs),
            batch_size=None,
            verbose=0,
        )
        error = model.evaluate(X, target)["loss"] * X.shape[0]  # evaluate gives it per sample
        accuracy = float((nb.to_numpy(model.predict(X)) == y).mean())
        print(f"{name:<20} error {error:8.4f}   accuracy {accuracy:.2f}   ({len(history)} epochs)")
        result[name] = {"error": error, "accuracy": accuracy}
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
        result["plots"] = [plot.save(fig, args.out, "perceptron_vs_hidden")]
        print(f"saved {result['plots'][0]}")
    return result


if __name__ == "__main__":
    main()
