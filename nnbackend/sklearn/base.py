"""What the classifier and the regressor share: parameters, the net, training, pickling.

The net is an ``nb.Sequential`` of ``Dense`` layers with the hidden activation between
them; its outputs are logits, and the loss (``heads.loss_for``) applies the link.
Training is the library's ``fit``, with scikit-learn's rules run as a callback
(``convergence.Convergence``). Weights start as scikit-learn draws them from
``random_state`` (Glorot-uniform, biases too), so the same seed starts from the same
numbers as ``sklearn.neural_network``.
"""

from __future__ import annotations

import math
from itertools import pairwise
from numbers import Integral, Real

from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import check_is_fitted

from nnbackend import layers
from nnbackend.backend import replay, to_numpy
from nnbackend.checks import warn_caller
from nnbackend.data import check_in_range
from nnbackend.fit_options import check_optimizer_state
from nnbackend.kept import batch_arrays, forget_last_batch, passing
from nnbackend.model import Sequential
from nnbackend.sklearn.convergence import Convergence
from nnbackend.sklearn.heads import loss_for
from nnbackend.sklearn.inputs import fit_inputs, input_kind, predict_input, read_only_copy
from nnbackend.sklearn.pickling import restored, snapshot
from nnbackend.sklearn.solvers import optimizer_for

NON_FINITE = (  # scikit-learn's MLP's words
    "Solver produced non-finite parameter weights. The input data may contain large values "
    "and need to be preprocessed (e.g. with StandardScaler), or learning_rate_init may be "
    "too large."
)

ACTIVATIONS = {
    "relu": layers.ReLU,
    "tanh": layers.Tanh,
    "logistic": layers.Sigmoid,
    "identity": layers.Identity,
}
#: scikit-learn's Glorot-uniform bound is sqrt(factor / (fan_in + fan_out))
GLOROT_FACTOR = {"logistic": 2.0}
#: batch_size="auto" is min(AUTO_BATCH, n_samples)
AUTO_BATCH = 200


class BaseMLP(BaseEstimator):
    """Base class of ``MLPClassifier`` and ``MLPRegressor``; not for direct use."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "solver": [StrOptions({"adam", "sgd"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {math.inf})],
        "backend": [str, None],
        "dtype": [StrOptions({"float32", "float64"}), None],
    }

    # --- the parts the subclasses fill in ---------------------------------------------

    #: whether y is converted to numbers (regression) or kept as labels
    _numeric_targets = False

    def _targets(self, y, *, first: bool, incremental: bool, classes=None):
        """y (host) -> (training targets on the host, the number of outputs)."""
        raise NotImplementedError

    def _score_arrays(self, X, y) -> float:
        """Accuracy or R² of the model on device X against host targets y."""
        raise NotImplementedError

    # --- fitting ----------------------------------------------------------------------

    def _fit(self, X, y, *, incremental: bool, classes=None):
        self._validate_params()
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        first = not hasattr(self, "model_") or not (self.warm_start or incremental)
        given = input_kind(X)  # what the caller passed, not where X is about to go
        X, y, backend = fit_inputs(
            self,
            X,
            y,
            reset=first,
            backend=None if first else self._backend_as_set(),
            y_numeric=self._numeric_targets,
        )
        targets, n_outputs = self._targets(y, first=first, incremental=incremental, classes=classes)
        rs = check_random_state(self.random_state)
        if first:
            self._initialize(backend, X.shape[1], n_outputs, rs)
        else:  # scikit-learn applies a changed activation to the weights it has
            self._check_fitted_sizes()
            if backend is not self.model_.backend:  # once the data is accepted
                self.model_.to(backend, optimizer=self.model_.optimizer)
            use_activation(self.model_, self.activation)
            self._follow_early_stopping()
        self._fit_input = given
        (X_train, Y_train), validation = self._split(X, targets, y, rs)
        self._train(X_train, Y_train, validation, rs, incremental)
        return self

    def _initialize(self, backend, n_features: int, n_outputs: int, rs) -> None:
        """A new net with scikit-learn's first weights, and fresh counters."""
        sizes = [n_features, *self._hidden_sizes(), n_outputs]
        self.n_layers_ = len(sizes)
        self.n_outputs_ = n_outputs
        self.model_ = build_net(sizes, self.activation, backend)
        self.model_.set_params(glorot_weights(self.model_, self.activation, rs))
        self.model_.loss = loss_for(self.out_activation_, n_outputs)
        self._start_counters()

    def _start_counters(self) -> None:
        """The schedule's counters as a new net starts them (``Convergence`` goes on)."""
        self.t_ = 0
        self.loss_curve_, self._no_improvement_count = [], 0
        if self.early_stopping:
            self.validation_scores_, self.best_validation_score_ = [], -math.inf
            self.best_loss_ = None
        else:
            self.validation_scores_, self.best_validation_score_ = None, None
            self.best_loss_ = math.inf

    def _follow_early_stopping(self) -> None:
        """A warm start or ``partial_fit`` after ``early_stopping`` was switched: the
        counters the first fit did not make, made as a first fit makes them."""
        if self.early_stopping and self.validation_scores_ is None:
            self.validation_scores_, self.best_validation_score_ = [], -math.inf
        elif not self.early_stopping and self.best_loss_ is None:
            self.best_loss_ = math.inf

    def _check_fitted_sizes(self) -> None:
        """New hidden_layer_sizes are refused where the fitted net trains on."""
        fitted = [W.shape[1] for name, W in self.model_.params.items() if name.endswith(".W")]
        if self._hidden_sizes() != fitted[:-1]:
            raise ValueError(
                f"hidden_layer_sizes is {self.hidden_layer_sizes!r}, but this "
                f"{type(self).__name__} was fitted with {tuple(fitted[:-1])}: a warm start or "
                "partial_fit trains the fitted net on; fit with warm_start=False for a new one"
            )

    def _hidden_sizes(self) -> list[int]:
        sizes = self.hidden_layer_sizes
        sizes = list(sizes) if hasattr(sizes, "__iter__") else [sizes]
        if not all(isinstance(s, Integral) and not isinstance(s, bool) for s in sizes):
            raise TypeError(f"hidden_layer_sizes must hold whole numbers of units, got {sizes!r}.")
        if any(s <= 0 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
        return [int(s) for s in sizes]

    def _split(self, X, targets, y, rs):
        """((X, targets) to train on, on the device), and the held-out (X_val on the
        device, y_val as given) when ``early_stopping`` — split as scikit-learn splits."""
        backend = self.model_.backend
        dtype = "int64" if targets.ndim == 1 else backend.dtype_name
        check_in_range(targets, backend.dtype_name, "y")  # 1e39: not "NaN or inf in y"
        if not self.early_stopping:
            return (X, backend.asarray(targets, dtype=dtype)), None
        stratify = targets if self._stratify_split() else None
        # train_test_split holds out ceil(fraction * rows): said before it (which names its
        # test_size for a fraction of 0), but for one sample, whose train set it says is empty
        if math.ceil(float(self.validation_fraction) * X.shape[0]) < min(2, X.shape[0]):
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' "
                "or the size of your dataset."
            )
        train, val = train_test_split(
            list(range(X.shape[0])),
            random_state=rs,
            test_size=float(self.validation_fraction),  # scikit-learn refuses np.float32
            stratify=stratify,
        )
        take = backend.xp.take
        X_train = take(X, backend.asarray(train), axis=0)
        X_val = take(X, backend.asarray(val), axis=0)
        return (X_train, backend.asarray(targets[train], dtype=dtype)), (X_val, y[val])

    def _backend_as_set(self):
        """Where a warm start or ``partial_fit`` trains: where ``backend`` and ``dtype``
        say now (changed by ``set_params`` since the last fit); None for either, or
        "auto" (resolved at the first fit, by the data), keeps the model's."""
        model = self.model_
        name = model.backend if self.backend in (None, "auto") else self.backend
        return model.backend.moved_to(name, self.dtype)

    def _stratify_split(self) -> bool:
        return False

    def _train(self, X, Y, validation, rs, incremental: bool) -> None:
        """Epochs of the library's fit under scikit-learn's rules."""
        model = self.model_
        n = X.shape[0]
        batch_size = self._batch_size(n)
        optimizer = model.optimizer if incremental and model.optimizer else optimizer_for(self)
        try:  # partial_fit after a fit that diverged: scikit-learn's words, not fit's advice
            check_optimizer_state(optimizer, model.backend)
        except ValueError:
            raise ValueError(self._non_finite) from None
        rule = Convergence(self, n, validation)
        self.n_iter_ = 0  # epochs of this call, as scikit-learn counts them
        try:
            model.fit(
                X,
                Y,
                loss=model.loss,
                optimizer=optimizer,
                epochs=1 if incremental else self.max_iter,
                batch_size=batch_size,
                shuffle=self.shuffle,
                l2=self.alpha / batch_size or None,
                callbacks=[rule],
                metrics=[],  # scikit-learn keeps the loss alone (and scores validation itself)
                verbose=0,
                seed=int(rs.randint(2**31 - 1)),
                on_device=True,
                compile=self._records(optimizer, incremental),
            )
        except KeyboardInterrupt:  # Ctrl-C, as scikit-learn's: a fitted estimator all the same
            warn_caller("Training interrupted by user.", UserWarning)
            rule.on_train_end(model, None)  # the best weights back, with early_stopping
        self._check_finite_weights(restored=getattr(rule, "best_params", None) is not None)
        if not incremental and not rule.converged and self.n_iter_ == self.max_iter:
            warn_caller(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and "
                "the optimization hasn't converged yet.",
                ConvergenceWarning,
            )

    def _records(self, optimizer, incremental: bool) -> bool:
        """Whether ``fit`` records the step as a CUDA graph (``compile=True`` on torch:cuda,
        where a step takes a fraction of the eager one's time): in a whole fit (a
        ``partial_fit`` call's few steps would all be warm-up), where the step can be
        replayed and the learning rate stays as it is (sgd's "invscaling" and "adaptive"
        rates change between epochs). Elsewhere, the eager step."""
        varying = self.solver == "sgd" and self.learning_rate != "constant"
        if incremental or varying:
            return False
        return replay.records_here(self.model_.backend, self.model_, optimizer)

    def _batch_size(self, n: int) -> int:
        if self.batch_size == "auto":
            return min(AUTO_BATCH, n)
        if self.batch_size > n:
            warn_caller(
                "Got `batch_size` less than 1 or larger than sample size. "
                "It is going to be clipped",
                UserWarning,
            )
        return min(self.batch_size, n)

    def _check_finite_weights(self, restored: bool = False) -> None:
        """scikit-learn's error where the weights went NaN or inf, or the loss did: the
        fit stops there, its weights finite but of no use (predictions of 1e200).
        ``restored``: early stopping put the best epoch's weights back, whatever the
        last epoch's loss."""
        xp = self.model_.backend.xp
        finite = [xp.all(xp.isfinite(W)) for W in self.model_.params.values()]
        lost = not restored and not math.isfinite(getattr(self, "loss_", None) or 0.0)
        if lost or not bool(to_numpy(xp.all(xp.stack(finite)))):
            raise ValueError(self._non_finite)

    # --- using the net ----------------------------------------------------------------

    def _outputs(self, X, method: str, check_input: bool = True):
        """The net's outputs for X through the link, on its backend: probabilities, or
        the regression values, (n_samples, n_outputs_). ``check_input=False``: X is
        already the model's (the held-out split that early stopping scores)."""
        check_is_fitted(self)
        if check_input:
            X = predict_input(self, X, method)
        kept = batch_arrays(self.model_.layers)
        with passing(self.model_):  # not while another thread's partial_fit trains it
            outputs = self.model_.forward(X, training=False)
            forget_last_batch(self.model_.layers, kept)  # a whole set's, held for no backward
        return self.model_.loss.link(outputs)

    @property
    def coefs_(self) -> list:
        """The weight matrices, layer by layer, (n_in, n_out), as read-only host copies."""
        return [read_only_copy(W) for W, _ in self._dense_params()]

    @property
    def intercepts_(self) -> list:
        """The bias vectors, layer by layer, (n_out,), as read-only host copies."""
        return [read_only_copy(b) for _, b in self._dense_params()]

    @coefs_.setter
    def coefs_(self, values) -> None:
        self._set_dense(values, 0, "coefs_")

    @intercepts_.setter
    def intercepts_(self, values) -> None:
        self._set_dense(values, 1, "intercepts_")

    def _set_dense(self, values, part: int, what: str) -> None:
        """scikit-learn's ``est.coefs_ = [...]``: one array a layer, each of the shape it
        replaces, all or none (``set_params`` refuses the rest)."""
        check_is_fitted(self)
        names = [pair[part] for pair in dense_names(self.model_)]
        values = list(values)
        if len(values) != len(names):
            raise ValueError(f"{what} takes {len(names)} arrays, one a layer, not {len(values)}")
        backend = self.model_.backend
        cast = [backend.asarray(v, dtype=backend.dtype_name) for v in values]
        self.model_.set_params(dict(zip(names, cast, strict=True)))

    def _dense_params(self) -> list[tuple]:
        check_is_fitted(self)
        params = self.model_.params
        return [(params[W], params[b]) for W, b in dense_names(self.model_)]

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "model_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.array_api_support = True
        return tags

    # --- pickling: weights as host arrays, the backend by name ------------------------

    def __getstate__(self):
        state = dict(super().__getstate__())
        if "model_" in state:
            state["model_"] = snapshot(self.model_)
        return state

    def __setstate__(self, state):
        if isinstance(state.get("model_"), dict):
            state = restored(state)
            state["model_"].loss = loss_for(state["out_activation_"], state["n_outputs_"])
        super().__setstate__(state)


def build_net(sizes: list[int], activation: str, backend) -> Sequential:
    """Dense layers of ``sizes`` (inputs, hidden..., outputs) with ``activation`` between."""
    chain = []
    for i, (n_in, n_out) in enumerate(pairwise(sizes)):
        if i > 0:
            chain.append(ACTIVATIONS[activation]())
        chain.append(layers.Dense(n_in, n_out))
    return Sequential(chain, backend=backend, seed=0)


def use_activation(model, activation: str) -> None:
    """The hidden activation layers of ``model`` made ``activation``'s; weights kept."""
    kind = ACTIVATIONS[activation]
    for i, layer in enumerate(model.layers):
        if not isinstance(layer, layers.Dense) and type(layer) is not kind:
            model.layers[i] = kind()
            model.layers[i].build(model.backend, model.rng)


def dense_names(model) -> list[tuple[str, str]]:
    """("i.W", "i.b") of each Dense layer of ``model``, in order."""
    return [
        (f"{i}.W", f"{i}.b")
        for i, layer in enumerate(model.layers)
        if isinstance(layer, layers.Dense)
    ]


def glorot_weights(model, activation: str, rs) -> dict:
    """name -> first weights, drawn from ``rs`` (a NumPy RandomState) in scikit-learn's
    order and form: each layer's W, then its b, uniform in ±sqrt(factor / (fan_in +
    fan_out)); drawn in float64 and cast, so the same seed gives the same numbers."""
    backend = model.backend
    weights = {}
    for W, b in dense_names(model):
        fan_in, fan_out = model.params[W].shape
        bound = math.sqrt(GLOROT_FACTOR.get(activation, 6.0) / (fan_in + fan_out))
        weights[W] = backend.asarray(rs.uniform(-bound, bound, (fan_in, fan_out)))
        weights[b] = backend.asarray(rs.uniform(-bound, bound, fan_out))
    return weights
