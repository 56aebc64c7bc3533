"""A small convolutional net on cat vs non-cat, against the L-layer dense net.

The same 209 training and 50 test images as ``cat_classifier.py``, now as 3x64x64
images instead of rows of 12288 numbers: three blocks of Conv2D 3x3 (16, 32, 64
filters, zero padding 1, no bias) -> BatchNorm -> ReLU, the first two followed by MaxPool 2x2,
the last by GlobalAvgPool2D, then Dropout 0.3 and one output (a logit; binary
cross-entropy from logits), Adam (learning rate 0.001, shrinking by 0.95 per epoch),
batches of 32, 40 epochs.

With so few images the net learns the training set long before it generalises:
``--flip`` (on by default; ``--no-flip`` to compare) adds each training image mirrored
left to right, which a cat survives. The printout gives the test accuracy every few
epochs (it moves by several images from one epoch to the next, so the summary also
gives its range and mean over the last ten), and ``--dense`` trains the tutorial's
dense net (12288-20-7-5-1, 2500 full-batch steps) on the same split for comparison.
With 50 test images, one image is 0.02.

Data: train_catvnoncat.h5 and test_catvnoncat.h5, found through ``--data FOLDER`` or
$NNBACKEND_DATA (its catvnoncat/ folder). $NNBACKEND_MAX_STEPS=N caps the epochs, the
dense net's steps and the conv net's training images (N batches).

    python examples/cat_cnn.py --backend numpy --dense --out out
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import nnbackend as nb
from nnbackend.layers import (
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    GlobalAvgPool2D,
    MaxPool2D,
    ReLU,
    Sigmoid,
)


def conv_net(backend, seed: int) -> nb.Sequential:
    layers = []
    for i, (n_in, n_out) in enumerate(((3, 16), (16, 32), (32, 64))):
        layers += [Conv2D(n_in, n_out, 3, padding=1, bias=False), BatchNorm(n_out), ReLU()]
        layers.append(MaxPool2D(2) if i < 2 else GlobalAvgPool2D())
    layers += [Dropout(0.3), Dense(64, 1)]
    return nb.Sequential(layers, backend=backend, seed=seed, input_shape=(3, 64, 64))


def dense_net(backend, seed: int) -> nb.Sequential:
    """cat_classifier.py's net: [12288, 20, 7, 5, 1], ReLU, sigmoid, LeCun weights."""
    sizes = (12288, 20, 7, 5, 1)
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [Dense(n_in, n_out), ReLU()]
    return nb.Sequential([*layers[:-1], Sigmoid()], backend=backend, seed=seed)


def with_mirrors(X, y):
    """The images and the same images mirrored left to right (the width axis)."""
    return np.concatenate([X, X[..., ::-1]]), np.concatenate([y, y])


def train_conv(data, backend, args) -> dict:
    (X_train, y_train), (X_test, y_test) = data
    batches = nb.cli.max_steps(-(-len(X_train) // args.batch_size))
    n = batches * args.batch_size  # all 209 unless $NNBACKEND_MAX_STEPS caps the batches
    X_train, y_train = X_train[:n], y_train[:n]
    if args.flip:
        X_train, y_train = with_mirrors(X_train, y_train)
    model = conv_net(backend, args.seed)
    steps_per_epoch = -(-len(X_train) // args.batch_size)
    schedule = nb.optim.ExponentialDecay(args.lr, args.decay, steps_per_epoch)
    report = nb.callbacks.LambdaCallback(
        lambda epoch, logs, m: print(
            f"epoch {epoch}: loss {logs['loss']:.4f}, train acc {logs['accuracy']:.3f}, "
            f"test acc {logs['val_accuracy']:.3f}",
            flush=True,
        ),
        every=args.print_every,
    )
    start = time.perf_counter()
    history = model.fit(
        X_train, y_train, loss=nb.losses.BinaryCrossEntropy(from_logits=True),
        optimizer=nb.optim.Adam(schedule), epochs=nb.cli.max_steps(args.epochs),
        batch_size=args.batch_size, validation_data=(X_test, y_test), callbacks=[report],
        verbose=0,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    last = history["val_accuracy"][-10:]
    return {
        "train_accuracy": model.evaluate(*data[0])["accuracy"],
        "test_accuracy": history["val_accuracy"][-1],
        "best_test_accuracy": max(history["val_accuracy"]),
        "last_test_accuracies": (min(last), sum(last) / len(last), max(last)),
        "epochs": len(history),
        "seconds": seconds,
        "seconds_per_epoch": seconds / len(history),
        "history": history,
        "parameters": model.count_params(),
    }


def train_dense(data, backend, args) -> dict:
    """The tutorial's dense net, trained as cat_classifier.py trains it."""
    (X_train, y_train), (X_test, y_test) = data
    flat_train, flat_test = rows(X_train), rows(X_test)
    model = dense_net(backend, args.seed)
    start = time.perf_counter()
    model.fit(
        flat_train, y_train, loss=nb.losses.BinaryCrossEntropy(), optimizer=nb.optim.SGD(0.0075),
        epochs=nb.cli.max_steps(2500), batch_size=None, verbose=0,
    )  # fmt: skip
    return {
        "train_accuracy": model.evaluate(flat_train, y_train)["accuracy"],
        "test_accuracy": model.evaluate(flat_test, y_test)["accuracy"],
        "seconds": time.perf_counter() - start,
    }


def rows(images):
    """(N, 3, 64, 64) back to the tutorial's rows: (N, 12288) in (H, W, C) order."""
    return np.ascontiguousarray(images.transpose(0, 2, 3, 1)).reshape(len(images), -1)


def main(argv=None) -> dict:
    parser = nb.cli.example_parser(__doc__, epochs=40)
    parser.add_argument(
        "--lr", type=nb.cli.positive, default=0.001, help="Adam's first learning rate"
    )
    parser.add_argument(
        "--decay",
        type=nb.cli.decay,
        default=0.95,
        help="learning rate factor per epoch (default 0.95)",
    )
    parser.add_argument(
        "--batch-size", type=nb.cli.at_least(1), default=32, help="batch size (default 32)"
    )
    parser.add_argument(
        "--flip", action=argparse.BooleanOptionalAction, default=True,
        help="add mirrored training images (default on)",
    )  # fmt: skip
    parser.add_argument("--dense", action="store_true", help="also train the dense net")
    parser.add_argument(
        "--print-every", type=nb.cli.at_least(1), default=5, help="print every N epochs"
    )
    parser.add_argument(
        "--data", default=None, metavar="FOLDER", type=nb.cli.data_folder,
        help="folder with the two cat .h5 files (or a folder above it, e.g. ../shared/data; "
        "default: $NNBACKEND_DATA)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    backend = nb.cli.backend_from_args(args)
    data = nb.cli.load_data(nb.datasets.load_catvnoncat, args, flatten=False)
    result = {"backend": backend.name, "flip": args.flip}
    conv = train_conv(data, backend, args)
    low, mean, high = conv["last_test_accuracies"]
    print(
        f"conv net on {backend.name}: train accuracy {conv['train_accuracy']:.3f}, test accuracy "
        f"{conv['test_accuracy']:.3f} after {conv['epochs']} epochs (over the last "
        f"{min(conv['epochs'], 10)}: {low:.2f} to {high:.2f}, mean {mean:.3f}), "
        f"{conv['seconds_per_epoch']:.2f} s per epoch"
    )
    result["conv"] = conv
    if args.dense:
        dense = train_dense(data, backend, args)
        print(
            f"dense net on {backend.name}: train accuracy {dense['train_accuracy']:.3f}, test "
            f"accuracy {dense['test_accuracy']:.3f} ({dense['seconds']:.1f} s)"
        )
        result["dense"] = dense
    if args.out:
        result["plots"] = [plot_curves(conv["history"], result.get("dense"), args.out)]
    return result


def plot_curves(history, dense, out):
    from nnbackend import plot

    fig, ax = plot.figure(size=(6, 4))
    plot.curves(history, keys=("accuracy", "val_accuracy"), ax=ax, ylabel="accuracy",
                title="conv net on cat vs non-cat")  # fmt: skip
    if dense is not None:
        ax.axhline(dense["test_accuracy"], color="gray", linestyle=":", label="dense net, test")
        ax.legend()
    path = plot.save(fig, out, "cat_cnn_accuracy")
    print(f"saved {path}")
    return path


if __name__ == "__main__":
    nb.cli.run(main)
