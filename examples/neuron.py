"""A single neuron, a 2-2-1 network, and training it to tell women from men.

The "introduction to neural networks" tutorial (Victor Zhou), step by step:

1. a neuron is a weighted sum plus a bias, squashed by a sigmoid:
   w = [0, 1], b = 4 on x = [2, 3] gives sigmoid(7) = 0.9990889488055994;
2. a network is neurons feeding neurons: two hidden and one output neuron, each with
   weights [0, 1] and bias 0, on the same x, give 0.7216325609518421;
3. a loss says how wrong predictions are: the mean squared error of [1, 0, 0, 1]
   against [0, 0, 0, 0] is 0.5;
4. training lowers the loss: per-sample SGD (one person at a time, in order), MSE,
   learning rate 0.1, 1000 epochs, on four people's (weight - 135 lb, height - 66 in).
   Then the net guesses for two people it never saw: Emily (-7, -3) and Frank (20, 2).

    python examples/neuron.py --backend torch
"""

from __future__ import annotations

import nnbackend as nb
from nnbackend.layers import Dense, Sigmoid

NEW_PEOPLE = {"Emily": (-7.0, -3.0), "Frank": (20.0, 2.0)}


def network(backend, seed: int = 0) -> nb.Sequential:
    """Two inputs -> two sigmoid neurons -> one sigmoid neuron."""
    return nb.Sequential(
        [Dense(2, 2), Sigmoid(), Dense(2, 1), Sigmoid()], backend=backend, seed=seed
    )


def fixed_weights(backend) -> dict:
    """Steps 1-3 with weights set by hand: the tutorial's three numbers."""
    x = backend.asarray([[2.0, 3.0]])  # one sample, a row

    neuron = nb.Sequential([Dense(2, 1), Sigmoid()], backend=backend)
    neuron.params["0.W"] = backend.asarray([[0.0], [1.0]])  # (n_in, n_out): a column per neuron
    neuron.params["0.b"] = backend.asarray([4.0])
    neuron_out = backend.to_float(neuron(x)[0, 0])
    print(f"one neuron, w = [0, 1], b = 4, x = [2, 3]: {neuron_out!r}")

    net = network(backend)
    net.params["0.W"] = backend.asarray([[0.0, 0.0], [1.0, 1.0]])  # h1 and h2: w = [0, 1]
    net.params["0.b"] = backend.asarray([0.0, 0.0])
    net.params["2.W"] = backend.asarray([[0.0], [1.0]])  # o1: w = [0, 1]
    net.params["2.b"] = backend.asarray([0.0])
    network_out = backend.to_float(net(x)[0, 0])
    print(f"2-2-1 network, every w = [0, 1], b = 0, x = [2, 3]: {network_out!r}")

    mse = nb.losses.MSE()(backend.asarray([1.0, 0.0, 0.0, 1.0]), backend.asarray([0.0] * 4))
    mse = backend.to_float(mse)
    print(f"MSE of [1, 0, 0, 1] against [0, 0, 0, 0]: {mse!r}")
    return {"neuron": neuron_out, "network": network_out, "mse": mse}


def main(argv=None) -> dict:
    parser = nb.cli.example_parser(__doc__, epochs=1000, dtype="float64")
    parser.add_argument(
        "--lr", type=nb.cli.positive, default=0.1, help="learning rate (default 0.1)"
    )
    args = parser.parse_args(argv)
    backend = nb.cli.backend_from_args(args)
    result = fixed_weights(backend)

    X, y, names = nb.datasets.load_people()
    model = network(backend, seed=args.seed)

    def report(epoch, logs, m):  # the tutorial's print: MSE over all four after the epoch
        print(f"Epoch {epoch} loss: {m.evaluate(X, y)['loss']:.3f}")

    history = model.fit(
        X,
        y,
        loss=nb.losses.MSE(),
        optimizer=nb.optim.SGD(lr=args.lr),
        epochs=nb.cli.max_steps(args.epochs),
        batch_size=1,
        shuffle=False,  # one person at a time, in order
        callbacks=[nb.callbacks.LambdaCallback(report, every=10)],
        verbose=0,
    )
    final = model.evaluate(X, y)["loss"]

    people = list(NEW_PEOPLE)
    proba = nb.to_numpy(model.predict_proba([NEW_PEOPLE[p] for p in people]))[:, 0]
    guesses = {}
    for person, p in zip(people, proba, strict=True):
        guesses[person] = float(p)
        print(f"{person}: {p:.3f} ({'F' if p > 0.5 else 'M'})")
    result.update(
        backend=backend.name,
        loss=final,
        epochs=len(history),
        predictions=guesses,
        trained_on=names,
    )

    if args.out:
        from nnbackend import plot

        fig, ax = plot.figure()
        plot.curves(
            history,
            keys="loss",
            ax=ax,
            ylabel="mean squared error",
            title="2-2-1 sigmoid net on four people",
        )
        result["plots"] = [plot.save(fig, args.out, "neuron_loss")]
        print(f"saved {result['plots'][0]}")
    return result


if __name__ == "__main__":
    nb.cli.run(main)
