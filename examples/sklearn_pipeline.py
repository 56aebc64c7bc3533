"""scikit-learn's way of working, on nnbackend's backends: a Pipeline of StandardScaler
and ``nnbackend.sklearn.MLPClassifier(backend=...)``, tuned by GridSearchCV on the 8x8
digits.

The estimator takes scikit-learn's MLPClassifier parameters (here the hidden layer's
size and ``alpha``, the L2 penalty) and trains on the backend named by ``--backend``:
the data stays NumPy on the scikit-learn side, predictions come back as NumPy. The
best pipeline is scored on a held-out fifth of the digits, then handed over to
scikit-learn's own MLPClassifier with ``to_sklearn()``, which predicts the same.

    python examples/sklearn_pipeline.py --backend numpy
    python examples/sklearn_pipeline.py --backend torch --jobs 2 --out out
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import nnbackend as nb
from nnbackend.sklearn import MLPClassifier

GRID = {
    "mlpclassifier__hidden_layer_sizes": [(32,), (64,)],
    "mlpclassifier__alpha": [1e-4, 3.0],
}


def job_count(text: str) -> int:
    """``--jobs``' type: joblib's n_jobs, a whole number >= 1 or -1 (every core)."""
    if text.strip() == "-1":
        return -1
    try:
        return nb.cli.at_least(1)(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"a whole number >= 1, or -1, not {text!r}") from None


def main(argv=None) -> dict:
    parser = nb.cli.example_parser(__doc__, epochs=200)
    parser.add_argument(
        "--jobs", type=job_count, default=1, help="GridSearchCV n_jobs (default 1; -1: all cores)"
    )
    parser.add_argument(
        "--cv", type=nb.cli.at_least(2), default=5, help="cross-validation folds (default 5)"
    )
    args = parser.parse_args(argv)
    backend = nb.cli.backend_from_args(args)

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, stratify=y, random_state=args.seed
    )
    fewest = min(np.bincount(y_train))  # each fold needs a digit of every class
    if args.cv > fewest:
        parser.error(f"--cv: at most {fewest} folds (the rarest digit's training count), "
                     f"not '{args.cv}'")  # fmt: skip
    mlp = MLPClassifier(
        max_iter=nb.cli.max_steps(args.epochs),
        random_state=args.seed,
        backend=backend.name,
        dtype=args.dtype,
    )
    search = GridSearchCV(make_pipeline(StandardScaler(), mlp), GRID, cv=args.cv, n_jobs=args.jobs)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # capped runs stop early
        search.fit(X_train, y_train)
    seconds = time.perf_counter() - start

    best = search.best_estimator_
    scaler, net = best[0], best[-1]
    test_accuracy = best.score(X_test, y_test)
    same = (net.to_sklearn().predict(scaler.transform(X_test)) == best.predict(X_test)).mean()
    results = search.cv_results_
    for params, score in zip(results["params"], results["mean_test_score"], strict=True):
        shown = {k.split("__")[1]: v for k, v in params.items()}
        print(f"{shown}: cross-validated accuracy {score:.4f}")
    print(f"best: {search.best_params_} on {net.model_.backend.name} ({seconds:.1f} s)")
    print(f"test accuracy {test_accuracy:.4f}; scikit-learn's MLPClassifier with the same")
    print(f"weights agrees on {same:.0%} of the test digits; {net.n_iter_} epochs")
    result = {
        "backend": net.model_.backend.name,
        "best_params": search.best_params_,
        "cv_accuracy": float(search.best_score_),
        "test_accuracy": float(test_accuracy),
        "sklearn_agreement": float(same),
        "epochs": net.n_iter_,
        "seconds": seconds,
    }
    if args.out:
        from nnbackend import plot

        fig, ax = plot.figure()
        plot.curves({"training loss": net.loss_curve_}, ["training loss"], ax,
                    title=f"best of the grid, on {net.model_.backend.name}")  # fmt: skip
        result["plots"] = [str(plot.save(fig, args.out, "sklearn_pipeline_loss"))]
        print(f"saved {result['plots'][0]}")
    return result


if __name__ == "__main__":
    nb.cli.run(main)
