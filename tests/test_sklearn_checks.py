"""scikit-learn's own estimator checks on nnbackend.sklearn's estimators.

Every check runs on both estimators (max_iter=100, as scikit-learn runs its own MLP's
checks), as made and in float32, on array-api-strict and on torch; one is expected to
fail (``expected_failed_checks``). The array API checks need SciPy's array API mode,
which must be switched on before SciPy is imported: without it they skip here, and
``test_array_api_checks_pass`` runs them in a process of their own with it on.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from nnbackend.sklearn import MLPClassifier, MLPRegressor
from tests.conftest import HAVE_CUDA, HAVE_TORCH

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

ESTIMATORS = [
    Estimator(max_iter=100, **settings)
    for settings in [{}, {"dtype": "float32"}, {"backend": "strict"}]
    + ([{"backend": "torch"}] if HAVE_TORCH else [])
    for Estimator in (MLPClassifier, MLPRegressor)
]


def expected_failed_checks(estimator) -> dict[str, str]:
    """check name -> why it fails: one, where float32 is asked for on purpose."""
    if isinstance(estimator, MLPRegressor) and estimator.dtype == "float32":
        return {
            "check_regressor_multioutput": "float32 predictions, as dtype='float32' asks; "
            "the check wants float64"
        }
    return {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_estimator_check(estimator, check):
    check(estimator)


def test_array_api_checks_pass():
    """scikit-learn's array API checks (array-api-strict and torch arrays in, the same
    namespace out; mixed namespaces, which need torch; predict refusing another namespace
    under dispatch). They check namespaces, devices, dtypes and shapes, not accuracy: 10
    epochs do. Without torch the strict ones run all the same (they were skipped whole)."""
    # scikit-learn skips CuPy only where it is not installed; installed without a GPU
    # (the cuda-compile extra), its checks fail on CUDA's "insufficient driver"
    script = textwrap.dedent(f"""
        from sklearn.utils.estimator_checks import estimator_checks_generator
        from nnbackend.sklearn import MLPClassifier, MLPRegressor
        from unittest import SkipTest
        for est in (MLPClassifier(max_iter=10), MLPRegressor(max_iter=10)):
            for est, check in estimator_checks_generator(est):
                name = getattr(check, "func", check).__name__
                on_cupy = str(getattr(check, "keywords", {{}}).get("array_namespace")) == "cupy"
                if "array_api" in name and not (on_cupy and not {HAVE_CUDA}):
                    try:
                        check(est)
                        print("passed", name, check.keywords.get("array_namespace"),
                              check.keywords.get("dtype_name"))
                    except SkipTest:
                        pass
    """)
    env = {**os.environ, "SCIPY_ARRAY_API": "1"}
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    passed = done.splitlines()
    inputs = [line for line in passed if line.startswith("passed check_array_api_input")]
    namespaces = ["array_api_strict", *(["torch"] if HAVE_TORCH else [])]
    assert inputs.count("passed check_array_api_input numpy None") == 2
    for namespace in namespaces:
        for dtype in ("float64", "float32"):
            assert inputs.count(f"passed check_array_api_input {namespace} {dtype}") == 2
    mixed = sum(line.startswith("passed check_array_api_mixed_inputs") for line in passed)
    assert mixed == (2 if HAVE_TORCH else 0)
    assert sum(line.startswith("passed check_array_api_same_namespace") for line in passed) == 2


def test_host_data_trained_on_another_backend_predicts_under_dispatch():
    """With ``array_api_dispatch`` on, what ``fit`` was given is what predict must get:
    NumPy in, trained on strict (or torch) as asked, predicts from NumPy again."""
    backends = ["strict", "torch"] if HAVE_TORCH else ["strict"]
    script = textwrap.dedent(f"""
        import numpy as np, sklearn
        from sklearn.model_selection import cross_val_score
        from nnbackend.sklearn import MLPClassifier
        X = np.random.RandomState(0).randn(60, 3); y = (X[:, 0] > 0).astype(int)
        with sklearn.config_context(array_api_dispatch=True):
            for backend in {backends!r}:
                est = MLPClassifier((5,), max_iter=5, backend=backend).fit(X, y)
                assert type(est.predict(X)) is np.ndarray, type(est.predict(X))
                scores = cross_val_score(est, X, y, cv=2, error_score="raise")
                print(backend, est.model_.backend.name, est.predict(X).shape, len(scores))
    """)
    env = {**os.environ, "SCIPY_ARRAY_API": "1"}
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:-1] == [f"{b} {b} (60,) 2" for b in backends]
