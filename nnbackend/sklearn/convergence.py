"""scikit-learn's MLP schedule, run as a callback of the library's ``fit``: after each
epoch, record the loss, set the learning rate, and stop once the training loss (or,
with ``early_stopping``, the validation score) has not improved by ``tol`` for more
than ``n_iter_no_change`` epochs in a row.

The counters live on the estimator, as scikit-learn keeps them there: a ``partial_fit``
goes on counting where the last one stopped.
"""

from __future__ import annotations

from nnbackend.callbacks import Callback

#: "adaptive" divides the learning rate by this when training stops improving ...
ADAPTIVE_FACTOR = 5.0
#: ... until it falls to this, when training stops.
ADAPTIVE_FLOOR = 1e-6


class Convergence(Callback):
    """``est``: the estimator being fitted; ``n_samples``: the training samples per epoch;
    ``validation``: ``(X_val, y_val)`` scored with ``est._score_arrays`` after each
    epoch (accuracy or R²), or None to watch the training loss."""

    def __init__(self, est, n_samples: int, validation=None):
        self.est, self.n_samples, self.validation = est, n_samples, validation
        self.converged = False

    def on_train_begin(self, model, fit):
        self.optimizer = fit.optimizer

    def on_epoch_end(self, epoch, logs, model):
        est = self.est
        loss = logs["loss"]
        est.n_iter_ += 1
        est.t_ += self.n_samples
        est.loss_ = loss
        est.loss_curve_.append(loss)
        if est.verbose:
            print(f"Iteration {est.n_iter_}, loss = {loss:.8f}")
        if self.validation is None:
            self._watch_loss(loss)
        else:
            self._watch_score(model)
        if est.solver == "sgd" and est.learning_rate == "invscaling":
            self.optimizer.lr = est.learning_rate_init / (est.t_ + 1) ** est.power_t
        if est._no_improvement_count > est.n_iter_no_change:
            self._no_improvement(model)

    def _watch_loss(self, loss: float) -> None:
        est = self.est
        worse = loss > est.best_loss_ - est.tol
        est._no_improvement_count = est._no_improvement_count + 1 if worse else 0
        est.best_loss_ = min(est.best_loss_, loss)

    def _watch_score(self, model) -> None:
        """Score the held-out set; keep a copy of the best weights (restored at the end)."""
        est = self.est
        score = est._score_arrays(*self.validation, check_input=False)  # already checked
        est.validation_scores_.append(score)
        if est.verbose:
            print(f"Validation score: {score:f}")
        worse = score < est.best_validation_score_ + est.tol
        est._no_improvement_count = est._no_improvement_count + 1 if worse else 0
        if score > est.best_validation_score_:
            est.best_validation_score_ = score
            self.best_params = model.copy_params()

    def _no_improvement(self, model) -> None:
        """Stop, or (sgd with learning_rate="adaptive") divide the learning rate by 5."""
        est = self.est
        watched = "Validation score" if self.validation is not None else "Training loss"
        message = (
            f"{watched} did not improve more than tol={est.tol:f} "
            f"for {est.n_iter_no_change} consecutive epochs."
        )
        adaptive = est.solver == "sgd" and est.learning_rate == "adaptive"
        if adaptive and self.optimizer.lr > ADAPTIVE_FLOOR:
            self.optimizer.lr /= ADAPTIVE_FACTOR
            est._no_improvement_count = 0
            if est.verbose:
                print(f"{message} Setting learning rate to {self.optimizer.lr:f}")
            return
        if est.verbose:
            print(f"{message} {'Learning rate too small. ' if adaptive else ''}Stopping.")
        self.converged = True
        model.stop_training = True

    def on_train_end(self, model, history):
        best = getattr(self, "best_params", None)
        if best is not None:
            model.set_params(best)
