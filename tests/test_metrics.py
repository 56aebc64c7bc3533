"""metrics= as Keras has it: accuracy, top-k accuracy, MSE and MAE, computed on the
device with the loss and brought to the host with it (no sync per step)."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import nnbackend as nb
from nnbackend.layers import Dense, Tanh

X_BLOBS, Y_BLOBS = nb.datasets.make_blobs(160, centers=8, cluster_std=3.0, seed=0)
RNG = np.random.default_rng(0)
X_LINE = RNG.normal(size=(60, 3))
Y_LINE = X_LINE @ np.array([[1.0, -2.0], [0.5, 0.0], [0.0, 3.0]]) + 0.1 * RNG.normal(size=(60, 2))


def classifier(backend):
    return nb.Sequential([Dense(2, 16), Tanh(), Dense(16, 8)], backend=backend, seed=0)


def top_k_by_hand(proba, labels, k):
    true_score = proba[np.arange(len(labels)), labels]
    return float(((proba > true_score[:, None]).sum(axis=1) < k).mean())


def test_classification_metrics_match_numpy(backend):
    model = classifier(backend)
    history = model.fit(
        X_BLOBS, Y_BLOBS, loss="cross_entropy", optimizer="adam", epochs=5, batch_size=32,
        metrics=["accuracy", "top_k_accuracy", nb.metrics.TopKAccuracy(k=2)],
        validation_split=0.25, verbose=0,
    )  # fmt: skip
    names = ["loss", "accuracy", "top_5_accuracy", "top_2_accuracy"]
    assert list(history.history) == names + [f"val_{n}" for n in names]
    got = model.evaluate(X_BLOBS, Y_BLOBS)  # the fit's metrics by default
    proba = model.predict_proba(X_BLOBS)
    assert got["accuracy"] == pytest.approx((proba.argmax(axis=1) == Y_BLOBS).mean())
    assert got["top_2_accuracy"] == pytest.approx(top_k_by_hand(proba, Y_BLOBS, 2))
    assert got["top_5_accuracy"] == pytest.approx(top_k_by_hand(proba, Y_BLOBS, 5))
    assert got["accuracy"] < got["top_2_accuracy"] < got["top_5_accuracy"] < 1.0


def test_top_k_takes_one_hot_targets_too(backend):
    model = classifier(backend)
    model.fit(X_BLOBS, Y_BLOBS, loss="cross_entropy", optimizer="adam", epochs=3, verbose=0)
    onehot = nb.datasets.one_hot(Y_BLOBS, 8)
    labels = model.evaluate(X_BLOBS, Y_BLOBS, metrics=[nb.metrics.TopKAccuracy(3)])
    rows = model.evaluate(X_BLOBS, onehot, metrics=[nb.metrics.TopKAccuracy(3)])
    assert labels["top_3_accuracy"] == pytest.approx(rows["top_3_accuracy"])
    proba = model.predict_proba(X_BLOBS)
    assert labels["top_3_accuracy"] == pytest.approx(top_k_by_hand(proba, Y_BLOBS, 3))


def test_top_k_of_soft_rows_and_masked_scores_is_that_of_their_labels(backend):
    """Label-smoothed rows count their largest weight's class, as accuracy does (top-1
    equals accuracy); a score of -inf off the label (a masked class) is no NaN that
    counts every row right."""
    top_1 = nb.metrics.TopKAccuracy(1)
    scores = np.random.default_rng(4).normal(size=(40, 8))
    labels = np.random.default_rng(5).integers(0, 8, 40)
    scores[np.arange(40), (labels + 1) % 8] = -np.inf
    soft = 0.9 * nb.datasets.one_hot(labels, 8) + 0.1 / 8
    out = backend.asarray(scores)
    loss = nb.losses.SoftmaxCrossEntropy()
    right = int(np.sum(np.argmax(scores, axis=1) == labels))
    for target in (labels, soft):
        count, _ = top_1.batch(out, backend.asarray(target), loss)
        assert int(count) == right == int(loss.count_correct(out, backend.asarray(target)))


def test_regression_metrics_match_numpy(backend):
    model = nb.Sequential([Dense(3, 2)], backend=backend, seed=0)
    history = model.fit(
        X_LINE, Y_LINE, loss="mse", optimizer="sgd", epochs=3, metrics=["mae", "mse"], verbose=0
    )
    assert list(history.history) == ["loss", "mae", "mse"]
    got = model.evaluate(X_LINE, Y_LINE, batch_size=16)
    error = model.predict_proba(X_LINE) - Y_LINE
    assert got["mae"] == pytest.approx(np.abs(error).mean(), rel=1e-5)
    assert got["mse"] == pytest.approx((error**2).mean(), rel=1e-5)
    assert got["mse"] == pytest.approx(got["loss"], rel=1e-5)  # the loss is the mean square


def test_mse_of_a_binary_classifier_is_on_probabilities(backend):
    """After a fused loss, MSE/MAE compare the probabilities (Brier score), as predict_proba
    gives them, with (batch,) targets against (batch, 1) outputs."""
    X, y = nb.datasets.make_moons(80, seed=1)
    model = nb.Sequential([Dense(2, 8), Tanh(), Dense(8, 1)], backend=backend, seed=0)
    model.fit(X, y, loss=nb.losses.BinaryCrossEntropy(from_logits=True), optimizer="adam",
              epochs=5, metrics=["accuracy", "mse"], verbose=0)  # fmt: skip
    got = model.evaluate(X, y)
    proba = model.predict_proba(X)[:, 0]
    assert got["mse"] == pytest.approx(((proba - y) ** 2).mean(), rel=1e-5)
    assert got["accuracy"] == pytest.approx(((proba > 0.5) == y).mean())


def test_metrics_add_no_host_transfer_per_step(backend):
    model = classifier(backend)
    with nb.count_host_transfers() as transfers:
        model.fit(X_BLOBS, Y_BLOBS, loss="cross_entropy", optimizer="sgd", epochs=40,
                  batch_size=10, log_every=20, metrics=["accuracy", "top_k_accuracy"],
                  verbose=0)  # fmt: skip
    assert transfers.count == 3  # the data check's, and the logs of epochs 0, 20, 39


def test_metrics_that_do_not_apply_say_so():
    model = classifier("numpy")
    fit = dict(optimizer="sgd", verbose=0)
    with pytest.raises(ValueError, match="accuracy needs a loss that classifies"):
        nb.Sequential([Dense(3, 2)]).fit(X_LINE, Y_LINE, loss="mse", metrics=["acc"], **fit)
    with pytest.raises(ValueError, match="top_5_accuracy of a model with 5 classes is always 1"):
        nb.Sequential([Dense(2, 5)]).fit(X_BLOBS, Y_BLOBS % 5, loss="cross_entropy",
                                         metrics=["top_k_accuracy"], **fit)  # fmt: skip
    with pytest.raises(ValueError, match="mae compares outputs with targets of the same shape"):
        model.fit(X_BLOBS, Y_BLOBS, loss="cross_entropy", metrics="mae", **fit)
    with pytest.raises(
        ValueError,
        match=r"unknown metric 'f1': known are Accuracy \(acc, sparse_categorical_acc.*\), TopK",
    ):
        model.fit(X_BLOBS, Y_BLOBS, loss="cross_entropy", metrics=["f1"], **fit)
    with pytest.raises(ValueError, match="distinct names"):
        model.fit(X_BLOBS, Y_BLOBS, loss="cross_entropy", metrics=["acc", "accuracy"], **fit)


class Largest(nb.metrics.Metric):
    """A metric of one's own: the largest output, returned as ``give`` makes it."""

    name = "largest"

    def __init__(self, give):
        self.give = give

    def batch(self, out, target, loss):
        return self.give(out)


def test_a_metric_that_returns_no_array_of_the_outputs_is_named_in_the_first_epoch(backend):
    """A Python float, a 1-element row, another library's scalar, no weight or a weight
    that is an array is refused by the metric's class name before the epoch ends, with
    what was wrong; the backend's own 0-d array with a number is taken, as a list too."""
    seen = []
    stop = nb.callbacks.LambdaCallback(lambda epoch, logs, model: seen.append(epoch))
    fit = dict(loss="cross_entropy", optimizer="sgd", epochs=2, verbose=0, callbacks=[stop])
    xp = backend.xp

    def host(out):
        return nb.to_numpy(xp.max(out))

    wrong = {
        "its value is a builtins.float, not a 0-d array of the outputs' library": lambda out: (
            float(host(out)), 1,
        ),
        r"its value has shape \(1,\): return a 0-d array": lambda out: (
            xp.reshape(xp.max(out), (1,)), 1,
        ),
        r"it returns a pair \(value, weight\)$": xp.max,
        "its weight is a [a-z_]+\\.[A-Za-z]+: a Python number": lambda out: (
            xp.max(out), xp.asarray(out.shape[0]),
        ),
    }  # fmt: skip
    if backend.name != "numpy":
        wrong["its value is a numpy.float32, not"] = lambda out: (np.float32(host(out)), 1)
    for said, give in wrong.items():
        with pytest.raises(TypeError, match=rf"^Largest.batch returned .*: {said}"):
            classifier(backend).fit(X_BLOBS, Y_BLOBS, metrics=[Largest(give)], **fit)
        assert seen == []
    right = (lambda out: (xp.max(out), 1), lambda out: [xp.max(out), np.int64(out.shape[0])])
    for give in right:
        history = classifier(backend).fit(X_BLOBS, Y_BLOBS, metrics=[Largest(give)], **fit)
        assert len(history.history["largest"]) == 2
    assert seen == [0, 1, 0, 1]


def test_a_metric_that_strays_after_its_first_batch_is_named_by_its_key_and_batch(backend):
    """A metric whose short last batch gives a Python 0.0, a row, no pair or an array as
    its weight (the first batch was checked) is named with its epoch and batch when the
    epoch's values come to the host: not the backend's own error, nor a History of
    tensors that JSON cannot write."""
    xp = backend.xp
    strays = {
        r"\(0.0, 0\)": lambda out: (0.0, 0),
        r"\(.*\)": lambda out: (xp.reshape(xp.max(out), (1,)), 1),
        r".*": xp.max,
        r"\(.*, .*\)": lambda out: (xp.max(out), xp.asarray(out.shape[0])),
    }
    fit = dict(loss="cross_entropy", optimizer="sgd", batch_size=48, verbose=0)
    last = X_BLOBS.shape[0] // 48
    assert X_BLOBS.shape[0] % 48  # the last batch is short
    for shown, stray in strays.items():
        short = Largest(lambda out, s=stray: (xp.max(out), 1) if out.shape[0] == 48 else s(out))
        said = rf"^'largest' of epoch 0, batch {last}, is {shown}: a metric's batch returns"
        with pytest.raises(TypeError, match=said):
            classifier(backend).fit(X_BLOBS, Y_BLOBS, metrics=[short], **fit)


def test_a_metrics_numpy_number_weight_is_summed_as_a_python_float(backend):
    """np.float32 weights are numbers: the History holds Python floats, summed in
    float64 (it held np.float32 values)."""
    xp = backend.xp
    history = classifier(backend).fit(
        X_BLOBS, Y_BLOBS, loss="cross_entropy", optimizer="sgd", epochs=1, verbose=0,
        metrics=[Largest(lambda out: (xp.max(out), np.float32(out.shape[0])))],
    )  # fmt: skip
    assert type(history["largest"][0]) is float


def test_early_stopping_in_auto_mode_maximises_accuracies_and_minimises_errors():
    """EarlyStopping(mode="auto") goes by each built-in metric's greater_is_better."""
    fit = dict(optimizer="sgd", epochs=1, verbose=0)
    rising = [nb.callbacks.EarlyStopping(m) for m in ("val_accuracy", "val_top_2_accuracy")]
    classifier("numpy").fit(X_BLOBS, Y_BLOBS, loss="cross_entropy", validation_split=0.25,
                            metrics=["accuracy", nb.metrics.TopKAccuracy(2)], callbacks=rising,
                            **fit)  # fmt: skip
    falling = [nb.callbacks.EarlyStopping(m) for m in ("val_mae", "val_mse")]
    nb.Sequential([Dense(3, 2)]).fit(X_LINE, Y_LINE, loss="mse", validation_split=0.25,
                                     metrics=["mae", "mse"], callbacks=falling, **fit)  # fmt: skip
    assert [s.direction for s in rising + falling] == ["max", "max", "min", "min"]


@pytest.mark.parametrize(
    ("metric", "shown"),
    [
        (nb.metrics.Accuracy(), "Accuracy()"),
        (nb.metrics.TopKAccuracy(3), "TopKAccuracy(k=3)"),
        (nb.metrics.MeanSquaredError(), "MeanSquaredError()"),
        (nb.metrics.MeanAbsoluteError(), "MeanAbsoluteError()"),
    ],
)
def test_a_metric_comes_back_from_its_config_and_shows_its_arguments(metric, shown):
    """The config is what the MPI ranks rebuild a fit's metrics from."""
    again = nb.metrics.get(metric.config())
    assert type(again) is type(metric) and again.name == metric.name
    assert again.config() == metric.config()
    assert repr(metric) == repr(again) == shown


def test_a_registered_metric_is_found_by_the_name_its_history_rows_get(backend):
    """metrics=["worst"] was an unknown metric though the History's key, and the name
    EarlyStopping monitors, is "worst"; a name another class holds stays that one's."""

    @nb.register
    class WorstAbsError(nb.metrics.Metric):
        name = "worst"

        def batch(self, out, target, loss):
            xp = nb.backend.namespace_of(out)
            return xp.max(xp.abs(out - xp.reshape(target, out.shape))), 1

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # its base's name, restated: nothing taken

        @nb.register
        class MyAccuracy(nb.metrics.Accuracy):
            name = "accuracy"  # Accuracy's: not taken from it

    @nb.register
    class FirstOfTwo(WorstAbsError):
        name = "second_of_two"

    @nb.register
    class SecondOfTwo(WorstAbsError):  # its own name outranks the other's shown one
        pass

    try:
        assert type(nb.metrics.get("worst")) is WorstAbsError
        assert type(nb.metrics.get("accuracy")) is nb.metrics.Accuracy
        assert type(nb.metrics.get("second_of_two")) is SecondOfTwo
        X = np.linspace(-1, 1, 8).reshape(4, 2)
        model = nb.Sequential([nb.layers.Dense(2, 1)], backend=backend, seed=0)
        history = model.fit(X, X[:, :1], loss="mse", optimizer="sgd", metrics=["worst"], verbose=0)
        assert list(history.history) == ["loss", "worst"]
    finally:
        from nnbackend.registry import METRICS

        for name in ("WorstAbsError", "MyAccuracy", "FirstOfTwo", "SecondOfTwo"):
            METRICS._classes.pop(name)
        METRICS._shown.pop("worst")


def test_a_metric_defined_again_under_another_class_name_takes_its_name(backend):
    """A notebook cell edited and run again (the class renamed, its `name` kept): the
    name found the first class, and the History showed the replaced code's numbers."""
    from nnbackend.registry import METRICS

    @nb.register
    class MaxError(nb.metrics.Metric):
        name = "max_err"

        def batch(self, out, target, loss):
            xp = nb.backend.namespace_of(out)
            return xp.max(xp.abs(out - xp.reshape(target, out.shape))), out.shape[0]

    @nb.register
    class DoubledMaxError(MaxError):
        name = "max_err"

        def batch(self, out, target, loss):
            value, rows = super().batch(out, target, loss)
            return 2 * value, rows

    try:
        assert type(nb.metrics.get("max_err")) is DoubledMaxError
        X = np.linspace(-1, 1, 8).reshape(4, 2)
        model = nb.Sequential([nb.layers.Dense(2, 1)], backend=backend, seed=0)
        out = nb.to_numpy(model.forward(model.backend.asarray(X, dtype=model.backend.dtype_name)))
        history = model.fit(X, X[:, :1], loss="mse", optimizer="sgd", epochs=1, verbose=0,
                            shuffle=False, metrics=["max_err"])  # fmt: skip
        want = 2 * np.max(np.abs(out - X[:, :1]))  # the metric sees the step's forward
        np.testing.assert_allclose(history.history["max_err"][0], want, rtol=1e-6)
    finally:
        for name in ("MaxError", "DoubledMaxError"):
            METRICS._classes.pop(name)
        METRICS._shown.pop("maxerr")


def test_a_metric_registered_under_a_name_of_its_own_is_found_by_its_history_key(backend):
    """@nb.register(name="my_worst") lost the `name` its History rows and EarlyStopping's
    monitor use: metrics=["worst"] was an unknown metric."""
    from nnbackend.registry import METRICS

    @nb.register(name="my_worst")
    class WorstAbsError(nb.metrics.Metric):
        name = "worst"

        def batch(self, out, target, loss):
            xp = nb.backend.namespace_of(out)
            return xp.max(xp.abs(out - xp.reshape(target, out.shape))), out.shape[0]

    try:
        assert type(nb.metrics.get("my_worst")) is type(nb.metrics.get("worst")) is WorstAbsError
        X = np.linspace(-1, 1, 8).reshape(4, 2)
        model = nb.Sequential([nb.layers.Dense(2, 1)], backend=backend, seed=0)
        out = nb.to_numpy(model.forward(model.backend.asarray(X, dtype=model.backend.dtype_name)))
        history = model.fit(X, X[:, :1], loss="mse", optimizer="sgd", epochs=1, verbose=0,
                            shuffle=False, metrics=["worst"])  # fmt: skip
        assert list(history.history) == ["loss", "worst"]
        want = np.max(np.abs(out - X[:, :1]))
        np.testing.assert_allclose(history.history["worst"][0], want, rtol=1e-6)
    finally:
        METRICS._classes.pop("my_worst")
        METRICS._shown.pop("worst")


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("sparse_categorical_accuracy", nb.metrics.Accuracy),
        ("categorical_accuracy", nb.metrics.CategoricalAccuracy),
        ("binary_accuracy", nb.metrics.Accuracy),
        ("top_k_categorical_accuracy", nb.metrics.TopKAccuracy),
    ],
)
def test_keras_metric_names_are_known(name, kind):
    """The guide said the names other libraries use work; Keras's accuracy names were
    refused as unknown."""
    assert type(nb.metrics.get(name)) is kind
    assert type(nb.init.get("kaiming_normal")) is nb.init.He  # torch's name for He


def test_a_metric_named_as_a_built_in_is_told_fit_keeps_the_built_in():
    """@nb.register class MyMAE(Metric): name = "mae" was registered without a word, and
    metrics=["mae"] went on taking nnbackend's mean absolute error."""
    from nnbackend.registry import METRICS

    with pytest.warns(UserWarning, match=r"name='mae' of MyMAE names .*of its own to use"):

        @nb.register
        class MyMAE(nb.metrics.Metric):
            name = "mae"

    try:
        assert type(nb.metrics.get("mae")) is not MyMAE
    finally:
        METRICS._classes.pop("MyMAE")


def test_a_metric_restating_its_parents_name_is_not_warned():
    """A subclass that writes its base's name (so the History's key stays "mae") behaves
    as one that inherits it: nothing is taken from another class."""
    from nnbackend.registry import METRICS

    with warnings.catch_warnings():
        warnings.simplefilter("error")

        @nb.register
        class WeightedMAE(nb.metrics.MeanAbsoluteError):
            name = "mae"

    METRICS._classes.pop("WeightedMAE")


def test_one_metric_as_a_config_dict_is_a_list_of_one():
    """metrics={"type": "TopKAccuracy", "k": 1} was read as its keys: "unknown metric 'type'"."""
    model = nb.Sequential([Dense(2, 3)], seed=0)
    X, y = nb.datasets.make_blobs(30, centers=3, seed=0)
    history = model.fit(X, y, loss="cross_entropy", optimizer="sgd", verbose=0,
                        metrics={"type": "TopKAccuracy", "k": 1})  # fmt: skip
    assert list(history.history) == ["loss", "top_1_accuracy"]


def test_hints_for_a_metric_the_loss_cannot_take_do_not_suggest_it():
    """EarlyStopping("accuracy") on an MSE fit was told metrics=['accuracy'], which the
    fit then refused; top-k accuracy on one output was told "choose k < 1"."""
    X, y = nb.datasets.make_moons(20, seed=0)
    regression = nb.Sequential([Dense(2, 1)], seed=0)
    with pytest.raises(
        ValueError, match=r"only \['loss'\]; and accuracy needs a loss that"
    ) as info:
        regression.fit(X, y.astype(float), loss="mse", optimizer="sgd", verbose=0,
                       callbacks=[nb.callbacks.EarlyStopping("accuracy")])  # fmt: skip
    assert "metrics=['accuracy']" not in str(info.value)
    with pytest.raises(ValueError, match="cross-entropy needs one output per class"):
        regression.fit(X, y, loss="cross_entropy", optimizer="sgd", verbose=0,
                       metrics=["top_k_accuracy"])  # fmt: skip


def test_monitoring_a_top_k_accuracy_is_told_how_to_record_it():
    """ "val_top_5_accuracy" was told to pass validation data, then nothing more."""
    X, y = nb.datasets.make_blobs(60, centers=10, seed=0)
    stop = nb.callbacks.EarlyStopping(monitor="val_top_5_accuracy")
    for options in ({}, {"validation_split": 0.2}):
        with pytest.raises(ValueError, match=r"metrics=\[nb.metrics.TopKAccuracy\(k=5\)\]"):
            nb.Sequential([Dense(2, 10)], seed=0).fit(
                X, y, loss="cross_entropy", optimizer="sgd", verbose=0, callbacks=[stop], **options
            )


def test_a_monitored_metric_the_loss_refuses_is_told_to_monitor_another():
    """ "val_accuracy" on a regression was told metrics=['mae'], and again once followed."""
    X, y = nb.datasets.make_moons(64, seed=0)
    stop = nb.callbacks.EarlyStopping(monitor="val_accuracy")
    with pytest.raises(ValueError, match=r"; monitor another, e.g. monitor='val_loss'$"):
        nb.Sequential([Dense(2, 1)], seed=0).fit(
            X, y.astype(float), loss="mse", optimizer="sgd", metrics=["mae"],
            validation_split=0.2, callbacks=[stop], verbose=0,
        )  # fmt: skip
    fit = dict(loss="mse", optimizer="sgd", epochs=2, verbose=0)  # no validation data:
    with pytest.raises(ValueError, match=r"monitor another, e.g. monitor='loss' \(or ") as told:
        nb.Sequential([Dense(2, 1)], seed=0).fit(X, y.astype(float), callbacks=[stop], **fit)
    hint = str(told.value).split("e.g. ")[1].split(" (or")[0]  # monitor='val_loss' failed
    stop = eval(f"nb.callbacks.EarlyStopping({hint})", {"nb": nb})  # noqa: S307 - its hint
    nb.Sequential([Dense(2, 1)], seed=0).fit(X, y.astype(float), callbacks=[stop], **fit)


def test_the_top_k_hint_with_a_leading_zero_runs():
    from types import SimpleNamespace

    from nnbackend.metrics import monitor_hint

    fit = SimpleNamespace(
        metrics={"loss": [], "accuracy": []}, loss=nb.losses.SoftmaxCrossEntropy()
    )
    made = re.search(r"metrics=\[(.+?)\]", monitor_hint("top_03_accuracy", fit, 6))[1]
    assert eval(made, {"nb": nb}).name == "top_3_accuracy"  # k=03 was a SyntaxError


def test_top_k_of_nan_scores_counts_no_row_right(backend):
    """x > NaN is False: rows of NaN scores had no class above their true one, and a
    model whose weights went NaN scored top-k 1.0 (EarlyStopping kept its epoch)."""
    scores = np.full((4, 6), np.nan)
    scores[1, 2] = 0.5
    scores[2] = np.arange(6.0)  # a clean row: label 5 is the top class
    scores[3] = [np.nan, 1.0, 2, 3, 4, 5]  # NaN at its label alone
    out = backend.asarray(scores)
    labels = backend.asarray(np.array([0, 1, 5, 0]))
    count, _ = nb.metrics.TopKAccuracy(2).batch(out, labels, nb.losses.SoftmaxCrossEntropy())
    assert int(backend.to_float(count)) == 1


@pytest.mark.parametrize("loss", [nb.losses.SoftmaxCrossEntropy(), nb.losses.BinaryCrossEntropy()])
def test_accuracy_of_nan_scores_counts_no_row_right(backend, loss):
    """argmax of a row of NaN is 0, and NaN > 0.5 is False: a model gone NaN scored the
    share of class 0, and EarlyStopping kept its NaN epoch as the best."""
    width = 3 if isinstance(loss, nb.losses.SoftmaxCrossEntropy) else 1
    scores = np.full((4, width), np.nan)
    scores[3] = [0.0, 1.0, 0.0][:width] if width == 3 else [0.9]  # a clean row, right
    scores[2] = [0.1, 0.2, np.nan][:width] if width == 3 else [np.nan]  # NaN at its label
    out, labels = backend.asarray(scores), backend.asarray(np.array([0, 0, 2, 1]))
    if width == 1:
        labels = backend.asarray(np.array([[0.0], [0.0], [0.0], [1.0]]))
    count, _ = nb.metrics.get("accuracy").batch(out, labels, loss)
    assert int(backend.to_float(count)) == 1


@pytest.mark.parametrize("loss", ["mse", "bce", "cross_entropy"])
def test_categorical_accuracy_counts_the_argmax_under_any_loss(backend, loss):
    """Keras's categorical accuracy, Nielsen's evaluate(): under bce it was accuracy's
    alias and counted outputs (0.9 for a net of all zeros on 10 one-hot outputs), under
    MSE refused ("for regression use mae")."""
    rng = np.random.default_rng(0)
    X, labels = rng.normal(size=(60, 8)), np.arange(60) % 5
    targets = labels if loss == "cross_entropy" else np.eye(5)[labels]
    tail = [] if loss == "cross_entropy" else ["sigmoid"]
    model = nb.Sequential([Dense(8, 6), "sigmoid", Dense(6, 5), *tail], backend=backend, seed=0)
    history = model.fit(X, targets, loss=loss, optimizer=nb.optim.SGD(0.5), epochs=2,
                        batch_size=10, metrics=["categorical_accuracy"], verbose=0)  # fmt: skip
    assert list(history.history) == ["loss", "categorical_accuracy"]
    by_hand = np.mean(nb.to_numpy(model.predict_proba(X)).argmax(axis=1) == labels)
    assert model.evaluate(X, targets)["categorical_accuracy"] == pytest.approx(by_hand)


def test_categorical_accuracy_counts_a_tie_for_the_first_and_a_nan_row_wrong(backend):
    metric = nb.metrics.CategoricalAccuracy()
    out = backend.asarray(np.array([[0.0, 0.0], [0.0, 0.0], [np.nan, 1.0], [0.2, 0.7]]))
    right, weight = metric.batch(out, backend.asarray(np.array([0, 1, 1, 1])), None)
    assert (nb.to_numpy(right), weight) == (2, 1)  # the first tie and the last row
    with pytest.raises(ValueError, match="has 1 output: metrics=\\['accuracy'\\] counts"):
        metric.check(nb.losses.BinaryCrossEntropy(), 1)
    with pytest.raises(ValueError, match=r"metrics=\['categorical_accuracy'\] counts its argmax"):
        nb.metrics.Accuracy().check(nb.losses.MSE(), 10)


def test_one_output_under_mse_is_told_an_accuracy_that_mse_takes(backend):
    """The tutorials' sigmoid neuron under MSE was told metrics=['accuracy'], which MSE
    then refused: the advice is now one that runs."""
    X, y = np.random.default_rng(0).normal(size=(40, 2)), np.arange(40) % 2
    model = nb.Sequential([Dense(2, 1), "sigmoid"], backend=backend, seed=0)
    said = r"has 1 output: MSE\(.*\) counts no accuracy: metrics=\['accuracy'\] counts one"
    with pytest.raises(ValueError, match=said):
        model.fit(X, y, loss="mse", optimizer="sgd", metrics=["categorical_accuracy"], verbose=0)
    history = model.fit(X, y, loss="bce", optimizer="sgd", metrics=["accuracy"], verbose=0)
    by_hand = np.mean(nb.to_numpy(model.predict(X)) == y)
    assert model.evaluate(X, y)["accuracy"] == pytest.approx(by_hand) and history.epochs == [0]
    raw = nb.Sequential([Dense(2, 1)], backend=backend, seed=0)  # no Sigmoid: the logits' loss
    with pytest.raises(ValueError, match=r"or loss=nb\.losses\.BinaryCrossEntropy\(from_logits"):
        raw.fit(X, y, loss="mse", optimizer="sgd", metrics=["categorical_accuracy"], verbose=0)
    raw.fit(X, y, loss=nb.losses.BinaryCrossEntropy(from_logits=True), optimizer="sgd",
            metrics=["accuracy"], verbose=0)  # fmt: skip
    by_hand = np.mean(nb.to_numpy(raw.predict(X)) == y)
    assert raw.evaluate(X, y)["accuracy"] == pytest.approx(by_hand)


def test_categorical_accuracy_refuses_multi_label_rows():
    """A model right on every output scored 0.0: the argmax of a row of two tags or none
    means nothing."""
    tags = np.array([[1, 1, 0, 0, 0], [0, 0, 0, 0, 0], [0, 1, 1, 1, 1]])
    model = nb.Sequential([Dense(3, 5)], seed=0)
    logits = nb.losses.BinaryCrossEntropy(from_logits=True)
    for run in (
        lambda: model.fit(
            np.eye(3),
            tags,
            loss=logits,
            optimizer="sgd",
            verbose=0,
            metrics=["categorical_accuracy"],
        ),  # fmt: skip
        lambda: model.evaluate(np.eye(3), tags, loss=logits, metrics=["categorical_accuracy"]),
    ):
        with pytest.raises(
            ValueError, match=r"y has rows with no label or several \(multi-label\)"
        ):
            run()
    one_hot = np.eye(5)[[0, 3, 4]]  # one class a sample, under bce: taken
    model.fit(np.eye(3), one_hot, loss=logits, optimizer="sgd", verbose=0,
              metrics=["categorical_accuracy"])  # fmt: skip


ROWS = np.random.default_rng(0).normal(size=(40, 4))
ONE_HOT = np.eye(3)[np.arange(40) % 3]


@pytest.mark.parametrize(
    ("targets", "last", "loss"),
    [(2 * ONE_HOT - 1, "tanh", "mse"), (0.1 + 0.8 * ONE_HOT, "sigmoid", "mse"),
     (0.9 * ONE_HOT + 0.05, "sigmoid", "bce")],
)  # fmt: skip
@pytest.mark.filterwarnings("ignore:y holds values other than 0 and 1")  # right: predict_proba
def test_categorical_accuracy_takes_rows_of_one_class_not_summing_to_1(targets, last, loss):
    """-1/+1 rows, 0.1/0.9 rows and smoothed labels have one class each: refused as
    multi-label, which only 0/1 rows of no 1 or several are."""
    model = nb.Sequential([Dense(4, 3), last], seed=0)
    history = model.fit(ROWS, targets, loss=loss, optimizer="sgd", verbose=0,
                        metrics=["categorical_accuracy"])  # fmt: skip
    by_hand = np.mean(nb.to_numpy(model.predict_proba(ROWS)).argmax(1) == np.arange(40) % 3)
    assert model.evaluate(ROWS, targets)["categorical_accuracy"] == pytest.approx(by_hand)
    assert "categorical_accuracy" in history.history


def test_categorical_accuracy_checks_the_validation_targets_and_refuses_images():
    """A multi-label validation y logged a meaningless val_categorical_accuracy, which
    evaluate refused; image outputs crashed in the first epoch with NumPy's words."""
    multi = (np.random.default_rng(1).random((40, 3)) > 0.5).astype(float)
    model = nb.Sequential([Dense(4, 3), "sigmoid"], seed=0)
    with pytest.raises(ValueError, match="categorical_accuracy counts one class a sample"):
        model.fit(ROWS, ONE_HOT, loss="bce", optimizer="sgd", verbose=0,
                  metrics=["categorical_accuracy"], validation_data=(ROWS, multi))  # fmt: skip
    images = np.random.default_rng(0).normal(size=(8, 2, 4, 4))
    conv = nb.Sequential([nb.layers.Conv2D(2, 3, 1)], seed=0)
    with pytest.raises(ValueError, match=r"outputs are not rows \(images, say\)"):
        conv.fit(images, np.zeros((8, 3, 4, 4)), loss="mse", optimizer="sgd", verbose=0,
                 metrics=["categorical_accuracy"])  # fmt: skip
    with pytest.raises(ValueError, match=r"for regression use metrics=\['mae'\]$"):
        conv.fit(images, np.zeros((8, 3, 4, 4)), loss="mse", optimizer="sgd", verbose=0,
                 metrics=["accuracy"])  # fmt: skip


def test_categorical_accuracy_counts_a_nan_row_wrong_whatever_its_label():
    """argmax of a row starting with NaN is 0: a row of label 0 counted right."""
    right, _ = nb.metrics.CategoricalAccuracy().batch(
        np.array([[np.nan, 1.0], [0.2, 0.7]]), np.array([0, 1]), None
    )
    assert int(right) == 1


@pytest.mark.parametrize(
    "rows",
    [np.r_[np.eye(3)[:-1], np.zeros((1, 3))],  # a row of no label, none of several
     np.eye(3, dtype=bool) | np.eye(3, k=1, dtype=bool)],  # booleans, several labels
)  # fmt: skip
def test_categorical_accuracy_refuses_a_row_of_no_label_or_boolean_multi_label(rows):
    model = nb.Sequential([Dense(4, 3), "sigmoid"], seed=0)
    with pytest.raises(ValueError, match="no label or several"):
        model.fit(ROWS[:3], rows, loss="bce", optimizer="sgd", verbose=0,
                  metrics=["categorical_accuracy"])  # fmt: skip
