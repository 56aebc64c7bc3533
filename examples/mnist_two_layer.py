"""A two-layer net on MNIST, and why backpropagation beats numerical gradients.

The TwoLayerNet of Koki Saitoh's "Deep Learning from Scratch" (chapters 4 and 5):
784 -> 50 sigmoid -> 10 softmax, cross-entropy averaged over the batch, weights
randn * 0.01, biases 0, mini-batches of 100, learning rate 0.1.

``--grad numerical`` (chapter 4) takes each gradient by central differences,
(L(w + h) - L(w - h)) / 2h with h = 1e-4, two forward passes per weight: about 80000
passes per step. It runs a few steps, saying which weights it is on, compares each
gradient with backpropagation's, and prints the time per step of both (``--out``
plots one against the other). It computes in float64 unless ``--dtype`` says
otherwise: in float32, differences of h = 1e-4 are too coarse to agree closely.

``--grad backprop`` (chapter 5, the default) trains for the tutorial's 10000
iterations, rounded up to whole epochs (17 epochs of 600 steps on MNIST), printing
the accuracy on the training batches and on the test set as it goes. With
``--distributed`` under an MPI launcher the ranks train it together, each on its share
of every batch of 100, with the same results (rank 0 prints).

Data: the MNIST IDX files (or mnist.npz) in the folder ``--data`` names, directly or
in its mnist/ subfolder, else in $NNBACKEND_DATA by the same rule. Without either
(or with ``--digits``) scikit-learn's bundled 8x8 digits stand in: 1438 training
images, so the same 10000 iterations take 667 epochs.

    python examples/mnist_two_layer.py --backend numpy --out out
    python examples/mnist_two_layer.py --grad numerical --steps 2
    mpiexec -n 4 python examples/mnist_two_layer.py --distributed
"""

from __future__ import annotations

import math
import time

from tqdm.auto import tqdm

import nnbackend as nb
from nnbackend.gradcheck import numerical_gradient, relative_error
from nnbackend.layers import Dense, Sigmoid

ITERATIONS = 10000  # the tutorial's iters_num


def say(*text) -> None:
    """print, on rank 0 alone when several processes train together (--distributed)."""
    if nb.distributed.is_main():
        print(*text, flush=True)


def epochs_for(n_train: int, batch_size: int, iterations: int = ITERATIONS) -> int:
    """Whole epochs that make at least ``iterations`` steps."""
    steps_per_epoch = math.ceil(n_train / batch_size)
    return math.ceil(iterations / steps_per_epoch)


def two_layer_net(n_in: int, n_hidden: int, n_out: int, backend, seed: int) -> nb.Sequential:
    init = nb.init.Normal(0.01)  # the tutorial's weight_init_std
    layers = [Dense(n_in, n_hidden, init=init), Sigmoid(), Dense(n_hidden, n_out, init=init)]
    return nb.Sequential(layers, backend=backend, seed=seed)


def batch_loss(model, loss, xb, yb):
    """The loss on one batch as a function, for ``numerical_gradient`` to nudge the
    weights under (it changes them in place, so the argument is not needed)."""
    return lambda _: loss.forward(model.forward(xb), yb)


def numerical_gradients(model, objective, step: int) -> dict:
    """Every weight's gradient by central differences, saying what it is doing: a line
    per weight array, and a bar over its weights on a terminal."""
    grads = {}
    for name, w in model.params.items():
        size = math.prod(w.shape)
        print(
            f"step {step}: numerical gradient of {name} {tuple(w.shape)}, {size} weights "
            f"x 2 forward passes ...",
            flush=True,
        )
        start = time.perf_counter()
        with tqdm(total=size, unit="weight", leave=False, disable=None) as bar:
            grads[name] = numerical_gradient(objective, w, h=1e-4, progress=bar.update)
        print(f"  done in {time.perf_counter() - start:.1f} s", flush=True)
    return grads


def numerical_steps(model, loss, optimizer, X, y, args) -> dict:
    """Chapter 4: a few SGD steps on numerical gradients, each checked against backprop."""
    backend = model.backend
    rng = nb.Generator(args.seed).host()
    worst_diff = worst_rel = 0.0
    t_numerical = t_backprop = 0.0
    steps = nb.cli.max_steps(args.steps)
    n_weights = model.count_params()
    print(
        f"{steps} step{'s' * (steps != 1)} of SGD on numerical gradients: {n_weights} "
        "weights, 2 forward passes "
        f"of a batch of {args.batch_size} each, {2 * n_weights} passes per step"
    )
    for step in range(steps):
        batch = rng.choice(X.shape[0], args.batch_size, replace=False)
        xb, yb = backend.asarray(X[batch]), backend.asarray(y[batch])

        start = time.perf_counter()
        value = loss.forward(model.forward(xb), yb)
        model.backward(loss.backward())
        backprop = {name: backend.to_numpy(g) for name, g in model.grads.items()}
        t_backprop += time.perf_counter() - start

        start = time.perf_counter()
        numerical = numerical_gradients(model, batch_loss(model, loss, xb, yb), step)
        numerical_host = {name: backend.to_numpy(g) for name, g in numerical.items()}
        t_numerical += time.perf_counter() - start

        diffs = {n: float(abs(backprop[n] - numerical_host[n]).max()) for n in backprop}
        rels = {n: relative_error(backprop[n], numerical_host[n]) for n in backprop}
        worst_diff, worst_rel = max(worst_diff, *diffs.values()), max(worst_rel, *rels.values())
        print(
            f"step {step}: loss {backend.to_float(value):.4f}; max |backprop - numerical|: "
            + ", ".join(f"{n} {d:.1e}" for n, d in diffs.items())
        )
        optimizer.step(model.params, numerical)  # the tutorial trains on these

    per_numerical, per_backprop = t_numerical / steps, t_backprop / steps
    print(
        f"per step: numerical {per_numerical:.3f} s, backprop {per_backprop * 1e3:.2f} ms "
        f"({per_numerical / per_backprop:.0f}x slower)"
    )
    print(f"largest difference {worst_diff:.2e}, largest relative error {worst_rel:.2e}")
    result = {
        "max_abs_diff": worst_diff,
        "max_relative_error": worst_rel,
        "seconds_per_step_numerical": per_numerical,
        "seconds_per_step_backprop": per_backprop,
        "steps": steps,
    }
    if args.out:
        result["plots"] = [plot_agreement(backprop, numerical_host, args.out, step)]
        print(f"saved {result['plots'][0]}")
    return result


def plot_agreement(backprop: dict, numerical: dict, out, step: int):
    """Each weight's numerical gradient against its backprop one (the last step)."""
    import numpy as np

    from nnbackend import plot

    fig, ax = plot.figure(size=(5, 5))
    for name in backprop:
        ax.scatter(backprop[name].ravel(), numerical[name].ravel(), s=4, label=name)
    both = np.concatenate([g.ravel() for g in backprop.values()])
    ax.plot([both.min(), both.max()], [both.min(), both.max()], "k:", linewidth=1)
    ax.set_xlabel("backpropagation")
    ax.set_ylabel("central differences (h = 1e-4)")
    ax.set_title(f"the gradients of step {step}, weight by weight")
    ax.legend(markerscale=3)
    return plot.save(fig, out, "mnist_numerical_gradients")


def main(argv=None) -> dict:
    parser = nb.cli.example_parser(
        __doc__,
        dtype=None,  # decided below: float32 for backprop, float64 for numerical
        dtype_help="float dtype (default float32; float64 with --grad numerical)",
        data="mnist",
        distributed=True,
    )
    parser.add_argument(
        "--epochs",
        type=nb.cli.epoch_count,
        default=None,
        help=f"training epochs (default: the tutorial's {ITERATIONS} iterations in whole "
        "epochs: 17 on MNIST, 667 on the digits)",
    )
    parser.add_argument(
        "--grad",
        choices=["backprop", "numerical"],
        default="backprop",
        help="how to get the gradients (default backprop)",
    )
    parser.add_argument(
        "--steps", type=nb.cli.at_least(1), default=3, help="numerical steps (default 3)"
    )
    parser.add_argument(
        "--hidden", type=nb.cli.at_least(1), default=50, help="hidden units (default 50)"
    )
    parser.add_argument(
        "--batch-size", type=nb.cli.at_least(1), default=100, help="batch size (default 100)"
    )
    parser.add_argument(
        "--lr", type=nb.cli.positive, default=0.1, help="learning rate (default 0.1)"
    )
    parser.add_argument("--digits", action="store_true", help="use the 8x8 digits, not MNIST")
    args = parser.parse_args(argv)
    if args.distributed and args.grad == "numerical":
        parser.error("--distributed trains with backpropagation: leave out --grad numerical")
    if args.epochs is not None and args.grad == "numerical":
        parser.error("--grad numerical takes --steps, not --epochs")
    if args.dtype is None:
        args.dtype = "float64" if args.grad == "numerical" else "float32"
    backend = nb.cli.backend_from_args(args)
    ((X_train, y_train), (X_test, y_test)), name = nb.cli.mnist_or_digits(args)
    say(
        f"{name}: {X_train.shape[0]} training, {X_test.shape[0]} test images "
        f"of {X_train.shape[1]} pixels"
    )

    model = two_layer_net(X_train.shape[1], args.hidden, 10, backend, args.seed)
    loss = nb.losses.SoftmaxCrossEntropy()
    optimizer = nb.optim.SGD(lr=args.lr)
    result = {"backend": backend.name, "data": name, "grad": args.grad}
    if args.grad == "numerical":
        if args.batch_size > len(X_train):
            parser.error(f"--batch-size: at most the {len(X_train)} training images of {name}")
        result.update(numerical_steps(model, loss, optimizer, X_train, y_train, args))
        return result

    def report(epoch, logs, m):
        say(f"epoch {epoch}: train acc {logs['accuracy']:.4f}, test acc {logs['val_accuracy']:.4f}")

    epochs = args.epochs or epochs_for(X_train.shape[0], args.batch_size)
    epochs = nb.cli.max_steps(epochs)
    start = time.perf_counter()
    history = model.fit(
        X_train,
        y_train,
        loss=loss,
        optimizer=optimizer,
        epochs=epochs,
        batch_size=args.batch_size,
        validation_data=(X_test, y_test),
        callbacks=[nb.callbacks.LambdaCallback(report, every=max(1, epochs // 17))],
        verbose=0,
        distributed=args.distributed,
    )
    seconds = time.perf_counter() - start
    train_acc = model.evaluate(X_train, y_train)["accuracy"]
    test_acc = history["val_accuracy"][-1]
    steps = len(history) * -(-X_train.shape[0] // args.batch_size)
    say(
        f"{steps} steps in {seconds:.1f} s on {backend.name}: train accuracy {train_acc:.4f}, "
        f"test accuracy {test_acc:.4f}"
    )
    result.update(
        train_accuracy=train_acc,
        test_accuracy=test_acc,
        epochs=len(history),
        steps=steps,
        seconds=seconds,
    )

    if args.out and nb.distributed.is_main():
        from nnbackend import plot

        fig, ax = plot.figure(size=(6, 4))
        plot.curves(
            {"train (batches of the epoch)": history["accuracy"], "test": history["val_accuracy"]},
            keys=("train (batches of the epoch)", "test"),
            ax=ax,
            ylabel="accuracy",
            title=f"TwoLayerNet on {name}, {backend.name}",
            ylim=(0, 1),  # a fixed axis: chance (0.1) looks like chance
        )
        result["plots"] = [plot.save(fig, args.out, "mnist_accuracy")]
        say(f"saved {result['plots'][0]}")
    return result


if __name__ == "__main__":
    nb.cli.run(main)
