"""To and from scikit-learn's own fitted ``MLPClassifier``/``MLPRegressor``.

The two hold the same net (``coefs_``, ``intercepts_``, the hidden activation and the
output link), so a converted estimator predicts what the original did. The optimizer
state does not travel: training goes on with a fresh optimizer after a conversion.
"""

from __future__ import annotations

import copy

import sklearn.neural_network as sk
from sklearn.utils.validation import check_is_fitted

from nnbackend.backend import get_backend
from nnbackend.sklearn.base import build_net, dense_names
from nnbackend.sklearn.heads import LOSS_FOR_LINK, loss_for

#: Fitted attributes that mean the same on both sides (those present are copied).
FITTED = (
    "n_features_in_",
    "feature_names_in_",
    "classes_",
    "n_iter_",
    "t_",
    "loss_",
    "loss_curve_",
    "best_loss_",
    "validation_scores_",
    "best_validation_score_",
    "n_layers_",
    "n_outputs_",
    "out_activation_",
    "_label_binarizer",
    "_no_improvement_count",
)


class SklearnConversion:
    """``to_sklearn()`` and ``from_sklearn(est)`` for the estimators of this package."""

    def to_sklearn(self):
        """scikit-learn's own fitted estimator of the same net (host NumPy weights in
        this model's dtype), with the same parameters less ``backend``, ``dtype`` and
        any a subclass of one's own adds."""
        check_is_fitted(self)
        kind = _sklearn_kind(type(self))
        theirs = kind().get_params()  # not backend, dtype or a subclass's own
        est = kind(**{k: v for k, v in self.get_params().items() if k in theirs})
        _copy_fitted(self, est)
        est.coefs_ = [W.copy() for W in self.coefs_]  # its own: scikit-learn trains in place
        est.intercepts_ = [b.copy() for b in self.intercepts_]
        if self.early_stopping:  # the weights kept are the best: scikit-learn's copy of them
            est._best_coefs = [W.copy() for W in est.coefs_]
            est._best_intercepts = [b.copy() for b in est.intercepts_]
        return est

    @classmethod
    def from_sklearn(cls, est, *, backend=None, dtype=None):
        """This package's estimator of the net that scikit-learn's fitted ``est`` holds,
        on ``backend`` (default: the current one) in ``dtype`` (default: the weights').
        A net trained with solver="lbfgs" comes over with solver="adam", which matters
        only if training goes on."""
        kind = _sklearn_kind(cls)
        if not isinstance(est, kind):
            raise TypeError(
                f"{cls.__name__}.from_sklearn takes a fitted sklearn.neural_network."
                f"{kind.__name__}, not {type(est).__name__}"
            )
        check_is_fitted(est)
        if est.out_activation_ not in LOSS_FOR_LINK:
            raise ValueError(
                f"{type(est).__name__} with output {est.out_activation_!r} (loss "
                f"{getattr(est, 'loss', '?')!r}) has no counterpart here: only "
                f"{', '.join(LOSS_FOR_LINK)} outputs are supported"
            )
        ours = cls().get_params()
        params = {k: v for k, v in est.get_params().items() if k in ours}
        if params.get("solver") == "lbfgs":
            params["solver"] = "adam"
        new = cls(**params, backend=backend, dtype=dtype)
        new._start_counters()  # what lbfgs does not keep (a loss curve, the counts) starts anew
        _copy_fitted(est, new)
        backend = get_backend(backend, dtype=dtype or est.coefs_[0].dtype.name)
        sizes = [est.coefs_[0].shape[0], *(W.shape[1] for W in est.coefs_)]
        new.model_ = build_net(sizes, est.activation, backend)
        names = dense_names(new.model_)
        new.model_.set_params(
            {
                name: backend.asarray(a)
                for (W, b), Wa, ba in zip(names, est.coefs_, est.intercepts_, strict=True)
                for name, a in ((W, Wa), (b, ba))
            }
        )
        new.model_.loss = loss_for(new.out_activation_, new.n_outputs_)
        new._fit_input = None
        return new


def _copy_fitted(source, target) -> None:
    for name in FITTED:
        if hasattr(source, name):
            setattr(target, name, copy.deepcopy(getattr(source, name)))


def _sklearn_kind(cls: type) -> type:
    """scikit-learn's class of the same name as ``cls`` or, for a subclass of one's
    own, as the estimator it derives from."""
    return next(getattr(sk, c.__name__) for c in cls.__mro__ if hasattr(sk, c.__name__))
