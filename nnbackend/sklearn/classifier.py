"""``MLPClassifier``: scikit-learn's multi-layer perceptron classifier, trained by nnbackend."""

from __future__ import annotations

from sklearn.base import ClassifierMixin
from sklearn.metrics import accuracy_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
from sklearn.utils.validation import column_or_1d

from nnbackend.backend import to_numpy
from nnbackend.sklearn.base import NON_FINITE, BaseMLP
from nnbackend.sklearn.convert import SklearnConversion
from nnbackend.sklearn.inputs import is_device, output


class MLPClassifier(ClassifierMixin, SklearnConversion, BaseMLP):
    """Multi-layer perceptron classifier with scikit-learn's parameters and behaviour,
    trained on any nnbackend backend (NumPy, CuPy, torch, array-api-strict).

    Parameters are scikit-learn's ``MLPClassifier``'s, with the same meaning
    (``solver`` is "adam" or "sgd"; "lbfgs", and its ``max_fun``, are not offered), plus:

    backend : str or None, default=None
        Where to train: "numpy", "cupy", "torch", "torch:cuda", "strict", "auto"; None
        takes the current nnbackend backend (``nb.use_backend``, ``nb.set_backend``,
        ``$NNBACKEND``, else NumPy) where ``fit`` runs: in the worker processes of
        ``GridSearchCV(n_jobs=2)`` that is ``$NNBACKEND`` or NumPy, in worker threads
        ``nb.set_backend``'s choice, so name it for a parallel search. Arrays of a
        device library train where they live.
    dtype : {"float32", "float64"} or None, default=None
        The float type it computes in; None follows X, as scikit-learn does
        (float32 stays float32, everything else becomes float64). A model fitted in
        float32 computes in float32 whatever X's dtype later (scikit-learn's follows X).

    A warm start or ``partial_fit`` after ``set_params(backend=..., dtype=...)`` first
    moves the model and its optimizer's state there.

    Host data in gives NumPy arrays out; CuPy or torch arrays in give arrays of that
    library out, computed on its device. ``sample_weight`` is not supported.

    Attributes are scikit-learn's (``classes_``, ``n_features_in_``,
    ``feature_names_in_``, ``n_iter_``, ``loss_``, ``loss_curve_``, ``best_loss_``,
    ``validation_scores_``, ``best_validation_score_``, ``t_``, ``n_layers_``,
    ``n_outputs_``, ``out_activation_``; ``coefs_`` and ``intercepts_`` as read-only host
    copies, assignable as a whole), plus ``model_``, the trained ``nb.Sequential``.

    ``alpha`` is divided by the batch size, as in scikit-learn; for the last, smaller
    batch of an epoch scikit-learn divides by that batch's own size instead (with a
    large ``alpha`` and a last batch of a few rows, a different net: a ``batch_size``
    that divides the training set trains as scikit-learn's).
    """

    _non_finite = NON_FINITE

    def __init__(
        self,
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
        """Train on X (n_samples, n_features) and labels y (n_samples,) of any type, or
        a label-indicator matrix (n_samples, n_classes) for multi-label. Returns self."""
        return self._fit(X, y, incremental=False)

    def partial_fit(self, X, y, *, classes=None):
        """One epoch over (X, y), going on from where the last call left the net.
        ``classes`` (all the labels there will be) is needed on the first call; it is
        keyword-only, as scikit-learn's third argument is ``sample_weight``. A first call
        that failed fitted nothing: the next is a first call again, ``classes`` and all."""
        fitted = hasattr(self, "model_")  # classes_ is set before a first call can fail
        if not fitted and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        if fitted and classes is not None:
            if list(unique_labels(classes)) != list(self.classes_):
                raise ValueError(
                    f"`classes={classes!r}` is not the same as on last call to "
                    f"partial_fit, was: {self.classes_!r}"
                )
        return self._fit(X, y, incremental=True, classes=classes)

    def predict(self, X):
        """Labels (n_samples,), or an indicator matrix (n_samples, n_classes) for
        multi-label, as NumPy for host X and on X's device for device X (where the
        labels are numbers)."""
        return self._predict(X)

    def _predict(self, X, check_input: bool = True):
        proba = self._outputs(X, "predict", check_input)
        xp = self.model_.backend.xp
        kind = self._label_binarizer.y_type_
        if kind == "multilabel-indicator":
            return output(xp.astype(proba > 0.5, xp.int64), X)
        if kind == "multiclass":
            index = xp.argmax(proba, axis=1)
        else:  # binary: the second class where p > 0.5 (the only one, if y had one)
            index = xp.astype(proba[:, 0] > 0.5, xp.int64) * int(len(self.classes_) > 1)
        if is_device(X) and self.classes_.dtype.kind in "biuf":
            return self._device_labels(index)
        return self.classes_[to_numpy(index)]

    def _device_labels(self, index):
        """``classes_[index]`` on the model's device, for numeric labels; float ones in
        float64, not the model's float32 (16777217.0 stays itself)."""
        backend, classes = self.model_.backend, self.classes_
        if classes.dtype.kind == "u" and classes.dtype.itemsize > 1:
            # torch indexes no uint16/32/64 array: picked on the host, sent back
            return backend.asarray(classes[to_numpy(index)])
        floats = "float64" if classes.dtype.kind == "f" else None
        return backend.xp.take(backend.asarray(classes, dtype=floats), index)

    def predict_proba(self, X):
        """Class probabilities (n_samples, n_classes), columns in ``classes_`` order."""
        return output(self._proba(X, "predict_proba"), X)

    def predict_log_proba(self, X):
        """log of ``predict_proba``."""
        proba = self._proba(X, "predict_log_proba")
        return output(self.model_.backend.xp.log(proba), X)

    def _proba(self, X, method: str):
        proba = self._outputs(X, method)
        if self._label_binarizer.y_type_ == "binary":
            proba = self.model_.backend.xp.concat([1 - proba, proba], axis=1)
        return proba

    def score(self, X, y, sample_weight=None) -> float:
        """Mean accuracy of ``predict(X)`` against y (host or device arrays)."""
        return self._score_arrays(X, y, sample_weight)

    def _score_arrays(self, X, y, sample_weight=None, check_input: bool = True) -> float:
        y_pred = self._predict(X, check_input)
        y, y_pred = (to_numpy(a) if is_device(a) else a for a in (y, y_pred))
        return float(accuracy_score(y, y_pred, sample_weight=sample_weight))

    def _targets(self, y, *, first, incremental, classes=None):
        """Labels -> training targets: class indices (n,) for multi-class, 0/1 columns
        (n, 1) for binary and (n, k) for multi-label; sets ``classes_``."""
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        multilabel = type_of_target(y).startswith("multilabel")
        if first:
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y if classes is None or multilabel else classes)
            self.classes_ = self._label_binarizer.classes_
            multiclass = self._label_binarizer.y_type_ == "multiclass"
            self.out_activation_ = "softmax" if multiclass else "logistic"
            if multilabel and classes is not None:
                _check_columns_named(classes, self.classes_)
        if not first or classes is not None:
            self._check_same_classes(y, incremental)  # partial_fit's classes= included
        Y = self._label_binarizer.transform(y)
        if self._label_binarizer.y_type_ == "multiclass":
            return Y.argmax(axis=1), Y.shape[1]
        return Y, Y.shape[1]

    def _check_same_classes(self, y, incremental: bool) -> None:
        fitted, kind = self._label_binarizer.y_type_, type_of_target(y)
        if fitted.startswith("multilabel") != kind.startswith("multilabel"):
            raise ValueError(  # else a Sequential's words on outputs and losses
                f"y is {kind}, but this {type(self).__name__} was fitted on {fitted} "
                "targets: fit it anew (warm_start=False) to change the kind"
            )
        classes = unique_labels(y)
        if self.warm_start and set(classes) != set(self.classes_):  # partial_fit's too
            raise ValueError(
                "warm_start can only be used where `y` has the same classes as in the "
                f"previous call to fit. Previously got {self.classes_}, `y` has {classes}"
            )
        if not set(classes) <= set(self.classes_):
            raise ValueError(
                f"`y` has classes not in `self.classes_`. `self.classes_` has "
                f"{self.classes_}. 'y' has {classes}."
            )

    def _stratify_split(self) -> bool:
        return self.n_outputs_ == 1  # as scikit-learn: binary only

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


def _check_columns_named(classes, columns) -> None:
    """partial_fit's ``classes`` for a label-indicator y: its columns, and no others
    (the first call took any; the second then refused the same as "not the same")."""
    if list(unique_labels(classes)) != list(columns):
        raise ValueError(
            f"classes={classes!r} does not name y's {len(columns)} label columns: give "
            f"classes={columns.tolist()!r}"
        )
