"""Train a small net on make_moons and print its accuracy, on the backend you choose.

python examples/quickstart.py --backend numpy      # or cupy, torch, torch:cuda, strict, auto
python examples/quickstart.py --out out            # and plot what it learned
"""

import nnbackend as nb


def main(argv=None) -> dict:
    args = nb.cli.example_parser(__doc__, epochs=300).parse_args(argv)
    X, y = nb.datasets.make_moons(200, noise=0.2, seed=args.seed)
    model = nb.Sequential(
        [nb.layers.Dense(2, 16), "tanh", nb.layers.Dense(16, 2)],
        backend=nb.cli.backend_from_args(args), seed=args.seed,
    )  # fmt: skip
    history = model.fit(X, y, loss="cross_entropy", optimizer=nb.optim.Adam(0.01),
                        epochs=nb.cli.max_steps(args.epochs), batch_size=None)  # fmt: skip
    accuracy = model.evaluate(X, y)["accuracy"]
    print(f"training accuracy on {model.backend.name}: {accuracy:.3f}")
    result = {"backend": model.backend.name, "accuracy": accuracy, "epochs": len(history)}

    if args.out:
        from nnbackend import plot

        fig, (left, right) = plot.figure(1, 2, size=(9, 4))
        plot.decision_boundary(model, X, y, ax=left, title=f"training accuracy {accuracy:.3f}")
        plot.curves(history, keys=("loss", "accuracy"), ax=right, title="while training")
        result["plots"] = [plot.save(fig, args.out, "quickstart")]
        print(f"saved {result['plots'][0]}")
    return result


if __name__ == "__main__":
    nb.cli.run(main)
