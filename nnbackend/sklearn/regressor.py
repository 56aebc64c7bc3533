"""``MLPRegressor``: scikit-learn's multi-layer perceptron regressor, trained by nnbackend."""

from __future__ import annotations

import math

from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import column_or_1d

from nnbackend.backend import to_numpy
from nnbackend.sklearn.base import NON_FINITE, BaseMLP
from nnbackend.sklearn.convert import SklearnConversion
from nnbackend.sklearn.inputs import is_device, output


class MLPRegressor(RegressorMixin, SklearnConversion, BaseMLP):
    """Multi-layer perceptron regressor with scikit-learn's parameters and behaviour,
    trained on any nnbackend backend (NumPy, CuPy, torch, array-api-strict).

    Parameters are scikit-learn's ``MLPRegressor``'s, with the same meaning (``loss``
    is "squared_error" only; ``solver`` is "adam" or "sgd", without lbfgs's ``max_fun``),
    plus ``backend`` and ``dtype`` as in ``nnbackend.sklearn.MLPClassifier``. Targets may
    have several columns (multi-output). ``sample_weight`` is not supported.

    As scikit-learn's, it trains on half the squared error summed over the outputs and
    reports (``loss_curve_``, and what ``tol`` is held to) the error averaged over them.
    """

    _non_finite = NON_FINITE + (  # X scaled alone, targets in the thousands still diverge
        " Targets of a large scale need it too: TransformedTargetRegressor(regressor, "
        "transformer=StandardScaler())."
    )

    _parameter_constraints: dict = {
        **BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error"})],
    }
    _numeric_targets = True

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        backend=None,
        dtype=None,
    ):
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.backend = backend
        self.dtype = dtype

    def fit(self, X, y):
        """Train on X (n_samples, n_features) and targets y (n_samples,) or
        (n_samples, n_outputs). Returns self."""
        return self._fit(X, y, incremental=False)

    def partial_fit(self, X, y):
        """One epoch over (X, y), going on from where the last call left the net."""
        return self._fit(X, y, incremental=True)

    def predict(self, X):
        """Predictions (n_samples,), or (n_samples, n_outputs) for several outputs: NumPy
        for host X, on X's device for device X."""
        return self._predict(X)

    def _predict(self, X, check_input: bool = True):
        out = self._outputs(X, "predict", check_input)
        if self.n_outputs_ == 1:
            out = self.model_.backend.xp.reshape(out, (-1,))
        return output(out, X)

    def score(self, X, y, sample_weight=None) -> float:
        """R² of ``predict(X)`` against y (host or device arrays)."""
        return self._score_arrays(X, y, sample_weight)

    def _score_arrays(self, X, y, sample_weight=None, check_input: bool = True) -> float:
        y_pred = self._predict(X, check_input)
        y, y_pred = (to_numpy(a) if is_device(a) else a for a in (y, y_pred))
        if not check_input and not _finite(y_pred):  # an epoch's held-out score: as
            return math.nan  # scikit-learn's, NaN where r2_score would refuse the input
        return float(r2_score(y, y_pred, sample_weight=sample_weight))

    def _targets(self, y, *, first, incremental, classes=None):
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if first:
            self.out_activation_ = "identity"
        Y = y.reshape(y.shape[0], -1)
        if not first and Y.shape[1] != self.n_outputs_:
            anew = "fit it anew (warm_start=False)"  # partial_fit: fit(X, y) does, not warm
            anew = "fit(X, y) starts a new net" if incremental and not self.warm_start else anew
            raise ValueError(
                f"y has {Y.shape[1]} outputs, but this {type(self).__name__} was fitted "
                f"with {self.n_outputs_}: {anew} to change them"
            )
        return Y, Y.shape[1]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


def _finite(values) -> bool:
    """Whether a NumPy array holds no NaN or inf (its min and max carry either)."""
    return values.size == 0 or (math.isfinite(values.min()) and math.isfinite(values.max()))
