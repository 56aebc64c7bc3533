"""scikit-learn estimators that train on any nnbackend backend.

    from nnbackend.sklearn import MLPClassifier, MLPRegressor

    clf = MLPClassifier(hidden_layer_sizes=(256,), max_iter=10, backend="cupy")
    clf.fit(X_train, y_train)            # host NumPy in: trained on the GPU
    clf.predict(X_test)                  # NumPy out
    clf.to_sklearn()                     # scikit-learn's own MLPClassifier, same net

They take scikit-learn's ``MLPClassifier``/``MLPRegressor`` parameters with the same
meaning, plus ``backend`` and ``dtype``, and work wherever a scikit-learn estimator
does: ``Pipeline``, ``GridSearchCV``, ``cross_val_score``, ``clone``, pickle and joblib.
Unpickling (``pickle.load``, ``joblib.load``) runs whatever code the pickle's maker
chose: never load one from a source you do not trust. Share a trained net as an
``nb.save`` checkpoint of ``est.model_`` instead, which is data, read with checks.
Importing ``nnbackend`` does not import this module (nor scikit-learn): it loads on
``import nnbackend.sklearn`` or first use of ``nb.sklearn``.
"""

from nnbackend.sklearn.classifier import MLPClassifier
from nnbackend.sklearn.heads import ClippedLogLoss, SquaredErrorOverOutputs, SumOverOutputs
from nnbackend.sklearn.regressor import MLPRegressor

__all__ = [
    "ClippedLogLoss",
    "MLPClassifier",
    "MLPRegressor",
    "SquaredErrorOverOutputs",
    "SumOverOutputs",
]
