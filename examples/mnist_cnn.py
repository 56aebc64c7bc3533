"""Convolutional nets on MNIST: the classic simple conv net, and a deeper one.

The simple net is the SimpleConvNet of Koki Saitoh's "Deep Learning from Scratch"
(chapter 7): Conv2D 30 filters 5x5 -> ReLU -> MaxPool 2x2 -> Dense 100 -> ReLU ->
Dense 10, softmax cross-entropy, Adam (learning rate 0.001), batches of 100; here
with He initial weights (the tutorial's randn * 0.01 learns too, more slowly) and the
learning rate shrinking by 0.7 every epoch: at a constant rate the net, with 434000
weights for 60000 images, overfits after 4 or 5 epochs and its test accuracy drifts
down again.

``--deep`` stacks two blocks of Conv2D 3x3 (32, then 64 filters, zero padding 1, no
bias) -> BatchNorm -> ReLU -> MaxPool 2x2, then Dense 128 (no bias) -> BatchNorm -> ReLU
-> Dropout 0.5 -> Dense 10, trained the same way for 12 epochs (the rate shrinking by
0.8), each epoch on the training images moved at random by up to 2 pixels in each
direction (``--shift``): without that (and at 0.7 per epoch) its test accuracy stayed
at 0.9921-0.9926 from the sixth epoch to the tenth.

After each epoch it prints the accuracy on the epoch's training batches and on the
10000 test images (measured in evaluation mode: BatchNorm's running statistics, no
dropout) and the epoch's training time. ``--out DIR`` draws the accuracy curves and
the first layer's filters.

Under an MPI launcher, ``--distributed`` trains it on several processes, each on its
share of every batch (``mpiexec -n 4 python examples/mnist_cnn.py --distributed``).

Data: the MNIST IDX files, found through ``--data FOLDER`` or $NNBACKEND_DATA (a
``--data`` folder without them is an error); with neither (or with ``--digits``)
scikit-learn's 8x8 digits stand in, as 1x8x8
images. $NNBACKEND_MAX_STEPS=N caps the epochs and the batches used per epoch.

    python examples/mnist_cnn.py --backend numpy --out out
    python examples/mnist_cnn.py --deep --epochs 12
"""

from __future__ import annotations

import math
import time

import numpy as np

import nnbackend as nb
from nnbackend.layers import BatchNorm, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU


def say(*text) -> None:
    """print, on rank 0 alone when several processes train together (--distributed)."""
    if nb.distributed.is_main():
        print(*text, flush=True)


def flat_size(layers, input_shape) -> int:
    """How many numbers one sample is after ``layers``: what the first Dense takes."""
    shape = input_shape
    for layer in layers:
        shape = layer.output_shape(shape)
    return math.prod(shape)


def simple_net(input_shape) -> list:
    features = [Conv2D(input_shape[0], 30, 5), ReLU(), MaxPool2D(2), Flatten()]
    n = flat_size(features, input_shape)
    return [*features, Dense(n, 100, init="he"), ReLU(), Dense(100, 10)]


def deep_net(input_shape) -> list:
    # no biases before BatchNorm: it takes the mean out, and a bias with it
    features = []
    for n_in, n_out in ((input_shape[0], 32), (32, 64)):
        conv = Conv2D(n_in, n_out, 3, padding=1, bias=False)
        features += [conv, BatchNorm(n_out), ReLU(), MaxPool2D(2)]
    features.append(Flatten())
    n = flat_size(features, input_shape)
    dense = Dense(n, 128, bias=False, init="he")
    return [*features, dense, BatchNorm(128), ReLU(), Dropout(0.5), Dense(128, 10)]


def capped(X, y, batch_size: int):
    """(X, y), or its first $NNBACKEND_MAX_STEPS batches when that is set."""
    n = nb.cli.max_steps(-(-X.shape[0] // batch_size)) * batch_size
    return X[:n], y[:n]


def shifted(X, pixels: int, rng):
    """Each image (N, C, H, W) moved by up to ``pixels`` rows and columns either way,
    at random; zeros come in at the edges."""
    n, c, h, w = X.shape
    padded = np.pad(X, ((0, 0), (0, 0), (pixels, pixels), (pixels, pixels)))
    down, right = rng.integers(0, 2 * pixels + 1, (2, n))
    rows = (down[:, None] + np.arange(h))[:, None, :, None]
    cols = (right[:, None] + np.arange(w))[:, None, None, :]
    return padded[np.arange(n)[:, None, None, None], np.arange(c)[None, :, None, None], rows, cols]


def train(model, train_set, test_set, epochs: int, args) -> dict:
    """``epochs`` passes of Adam over ``train_set`` (freshly shifted each epoch with
    ``--shift``), with the test accuracy after each. Returns the per-epoch numbers."""
    (X, y), (X_test, y_test) = train_set, test_set
    steps_per_epoch = math.ceil(X.shape[0] / args.batch_size)
    schedule = nb.optim.ExponentialDecay(args.lr, args.decay, steps_per_epoch)
    optimizer, rng = nb.optim.Adam(schedule), np.random.default_rng(args.seed)
    log = {"train": [], "test": [], "seconds": []}
    for epoch in range(epochs):
        start = time.perf_counter()
        X_epoch = shifted(X, args.shift, rng) if args.shift else X
        history = model.fit(
            X_epoch, y, loss=nb.losses.SoftmaxCrossEntropy(), optimizer=optimizer, epochs=1,
            batch_size=args.batch_size, verbose=0, distributed=args.distributed,
        )  # fmt: skip
        log["seconds"].append(time.perf_counter() - start)
        log["train"].append(history["accuracy"][-1])
        # in batches: the activations of 10000 images at once would take gigabytes
        log["test"].append(model.evaluate(X_test, y_test, batch_size=1000)["accuracy"])
        say(
            f"epoch {epoch}: train acc {log['train'][-1]:.4f}, test acc {log['test'][-1]:.4f} "
            f"({log['seconds'][-1]:.1f} s)"
        )
    return log


def main(argv=None) -> dict:
    parser = nb.cli.example_parser(__doc__, epochs=None, distributed=True)
    parser.add_argument("--deep", action="store_true", help="the deeper net (BatchNorm, Dropout)")
    parser.add_argument(
        "--epochs",
        type=nb.cli.epoch_count,
        default=None,
        help="training epochs (default 10; 12 with --deep)",
    )
    parser.add_argument(
        "--batch-size", type=nb.cli.at_least(1), default=100, help="batch size (default 100)"
    )
    parser.add_argument(
        "--lr", type=nb.cli.positive, default=0.001, help="Adam's first learning rate"
    )
    parser.add_argument(
        "--decay", type=nb.cli.decay, default=None,
        help="learning rate factor per epoch (default 0.7; 0.8 with --deep)",
    )  # fmt: skip
    parser.add_argument(
        "--shift", type=nb.cli.at_least(0), default=None,
        help="move each training image by up to this many pixels, afresh every epoch "
        "(default 2 with --deep, else 0)",
    )  # fmt: skip
    parser.add_argument(
        "--data", default=None, metavar="FOLDER", type=nb.cli.data_folder,
        help="folder with the MNIST IDX files (or a folder above it, e.g. ../shared/data; "
        "default: $NNBACKEND_DATA)",
    )  # fmt: skip
    parser.add_argument("--digits", action="store_true", help="use the 8x8 digits, not MNIST")
    args = parser.parse_args(argv)
    epochs = nb.cli.max_steps(args.epochs or (12 if args.deep else 10))
    if args.shift is None:
        args.shift = 2 if args.deep else 0
    if args.decay is None:
        args.decay = 0.8 if args.deep else 0.7
    backend = nb.cli.backend_from_args(args)
    ((X_train, y_train), (X_test, y_test)), name = nb.cli.mnist_or_digits(args, flatten=False)
    height, width = X_train.shape[2:]
    if args.shift >= min(height, width):  # every pixel could leave the image
        parser.error(f"--shift: at most {min(height, width) - 1} pixels for "
                     f"{height}x{width} images, not '{args.shift}'")  # fmt: skip
    X_train, y_train = capped(X_train, y_train, args.batch_size)
    X_test, y_test = capped(X_test, y_test, args.batch_size)
    if args.deep and 1 in (args.batch_size, X_train.shape[0] % args.batch_size):
        parser.error(f"--batch-size: the deep net's BatchNorm needs batches of 2 or more "
                     f"images, and {X_train.shape[0]} in batches of {args.batch_size} leave "
                     "one of 1; choose another")  # fmt: skip
    input_shape = tuple(X_train.shape[1:])
    layers = deep_net(input_shape) if args.deep else simple_net(input_shape)
    model = nb.Sequential(layers, backend=backend, seed=args.seed, input_shape=input_shape)
    say(model.summary())
    say(f"{name}: {X_train.shape[0]} training, {X_test.shape[0]} test images {input_shape}")

    log = train(model, (X_train, y_train), (X_test, y_test), epochs, args)
    seconds, net = sum(log["seconds"]), "deep" if args.deep else "simple"
    say(
        f"{net} conv net, {epochs} epochs in {seconds:.1f} s on {backend.name} "
        f"({seconds / epochs:.1f} s per training epoch): test accuracy {log['test'][-1]:.4f}"
    )
    result = {
        "backend": backend.name,
        "data": name,
        "net": net,
        "epochs": epochs,
        "train_accuracy": log["train"][-1],
        "test_accuracy": log["test"][-1],
        "test_accuracies": log["test"],
        "seconds": seconds,
        "seconds_per_epoch": log["seconds"],
        "parameters": model.count_params(),
    }
    if args.out and nb.distributed.is_main():
        curves = {"train (batches of the epoch)": log["train"], "test": log["test"]}
        stem = "mnist_cnn_deep" if args.deep else "mnist_cnn"  # a --deep run beside the other
        result["plots"] = plots(model, curves, args.out, f"{net} conv net on {name}", stem)
    return result


def plots(model, curves, out, title, stem) -> list:
    from nnbackend import plot

    fig, ax = plot.figure(size=(6, 4))
    plot.curves(
        curves,
        keys=tuple(curves),
        ax=ax,
        ylabel="accuracy",
        title=f"{title}, {model.backend.name}",
    )
    filters = nb.to_numpy(model.params["0.W"])  # (out_channels, in_channels, kh, kw)
    grid = plot.image_grid(filters[:, 0], title=f"first layer's {len(filters)} filters")
    paths = [plot.save(fig, out, f"{stem}_accuracy"), plot.save(grid, out, f"{stem}_filters")]
    for path in paths:
        print(f"saved {path}")
    return paths


if __name__ == "__main__":
    nb.cli.run(main)
