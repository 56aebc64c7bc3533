"""The wording of fit's refusals and hints where a mutation of the code showed no test
held it: hints that must not show (a 1-D hint for targets of another length, a
transpose for other images' targets, a resume for a run a callback ended), hints
written as code of the whole shape and of the array's name, and a refusal that names
its subject once."""

from __future__ import annotations

import numpy as np
import pytest

import nnbackend as nb
from nnbackend.layers import BatchNorm, Conv2D, Dense, Dropout, Flatten, Sigmoid

GREY = np.random.default_rng(0).normal(size=(6, 1, 8, 8))
SGD = dict(optimizer="sgd", verbose=0)


def test_foreign_data_is_named_as_x():
    import array_api_strict as xs

    model = nb.Sequential([Dense(4, 2)], backend="numpy", seed=0)
    X = xs.asarray(np.ones((8, 4), dtype=np.float32))
    with pytest.raises(nb.BackendMismatchError, match=r"^X is a"):
        model.fit(X, np.zeros(8, dtype=np.int64), loss="cross_entropy", **SGD)


@pytest.mark.parametrize("shape", [(28, 30), (480, 640)])
def test_a_single_grey_image_not_square_is_told_a_batch_of_one(shape, backend):
    model = nb.Sequential([Conv2D(1, 2, 3), Flatten()], backend=backend)
    model.loss = nb.losses.MSE()
    with pytest.raises(ValueError, match=r"A single grey image\? .*: X\[None, None"):
        model.predict(np.zeros(shape))


def test_targets_of_another_length_get_no_one_d_hint(backend):
    X, y = nb.datasets.make_moons(40, noise=0.2, seed=0)
    two = nb.Sequential([Dense(2, 2)], backend=backend, seed=0)
    with pytest.raises(ValueError, match=r"must match$"):
        two.fit(X, y[None, :30], loss="cross_entropy", **SGD)
    three = nb.Sequential([Dense(2, 3)], backend=backend, seed=0)
    with pytest.raises(ValueError, match=r"the model has 3 outputs$"):
        three.fit(X, np.eye(2)[y], loss="cross_entropy", **SGD)


def test_image_target_reshape_hints_are_code_of_the_whole_shape(backend):
    denoiser = nb.Sequential([Conv2D(1, 1, 3, padding=1)], backend=backend, seed=0)
    with pytest.raises(ValueError, match=r": y_val\.reshape\(len\(y_val\), 1, 8, 8\)$"):
        denoiser.fit(GREY, GREY, loss="mse", validation_data=(GREY, GREY[:, 0]), **SGD)
    with pytest.raises(ValueError, match=r"gives \(1, 8, 8\)$"):  # 100 values fill no (1, 8, 8)
        denoiser.fit(GREY, np.zeros((6, 100)), loss="mse", **SGD)


def test_channels_last_targets_of_other_images_are_not_told_to_transpose(backend):
    X = np.random.default_rng(1).normal(size=(20, 3, 8, 8))
    colour = nb.Sequential([Conv2D(3, 3, 3, padding=1)], backend=backend, seed=0)
    with pytest.raises(ValueError, match=r"\(4, 4, 3\), but the model gives \(3, 8, 8\)$"):
        colour.fit(X, np.zeros((20, 4, 4, 3)), loss="mse", **SGD)


def test_targets_of_two_axes_are_checked_against_the_outputs(backend):
    """Said with the data's shapes, not a batch's at the first step."""
    X = np.random.default_rng(0).random((16, 4, 5))
    model = nb.Sequential([Sigmoid()], backend=backend, seed=0)
    with pytest.raises(ValueError, match=r"^y has samples of shape \(5, 4\), .* gives \(4, 5\)$"):
        model.fit(X, X.transpose(0, 2, 1), loss="mse", **SGD)


def test_monitor_hints_name_the_metric_without_its_prefix(backend):
    X, y = nb.datasets.make_moons(40, noise=0.2, seed=0)
    fit = dict(loss="cross_entropy", epochs=2, metrics=["acc"], **SGD)
    stop = nb.callbacks.EarlyStopping(monitor="val_acc")
    with pytest.raises(ValueError, match=r": 'acc' is recorded by its own name"):
        nb.Sequential([Dense(2, 2)], backend=backend, seed=0).fit(
            X, y, callbacks=[stop], validation_split=0.25, **fit
        )


def test_a_run_a_callback_ended_is_not_offered_a_resume(tmp_path, backend):
    """A resume of it would train nothing: the file holds the run's end."""
    X, y = nb.datasets.make_moons(40, noise=0.2, seed=0)
    fit = dict(loss="cross_entropy", epochs=5, checkpoint=tmp_path / "run.h5", **SGD)
    stop = nb.callbacks.EarlyStopping(monitor="loss", patience=1, min_delta=1e9)
    nb.Sequential([Dense(2, 2)], backend=backend, seed=0).fit(X, y, callbacks=[stop], **fit)
    with pytest.warns(UserWarning, match=r"holds a run a callback ended at epoch 1, .*keep it$"):
        nb.Sequential([Dense(2, 2)], backend=backend, seed=0).fit(X, y, **fit)


def test_a_layer_that_cannot_take_x_is_said_once(backend):
    X = np.random.default_rng(0).random((16, 4, 5))
    model = nb.Sequential([BatchNorm(4), Sigmoid()], backend=backend, seed=0)
    with pytest.raises(
        ValueError, match=r"^X \(samples of shape \(4, 5\)\) does not fit layer 0: "
    ):
        model.fit(X, X, loss="mse", **SGD)


def test_a_dropout_of_rate_zero_after_the_sigmoid_is_accepted(backend):
    X, y = nb.datasets.make_moons(40, noise=0.2, seed=0)
    model = nb.Sequential([Dense(2, 1), Sigmoid(), Dropout(0.0)], backend=backend, seed=0)
    assert np.isfinite(model.fit(X, y, loss="bce", epochs=1, **SGD)["loss"][0])


@pytest.mark.parametrize(("shape", "n"), [((3, 6, 6), 108), ((1, 6, 6), 40)])
def test_a_1d_x_of_colour_or_of_another_length_is_told_no_reshape(shape, n, backend):
    """One flattened grey image is told its reshape; a colour one's order is not known,
    and 40 values fill no (1, 6, 6)."""
    model = nb.Sequential([Conv2D(shape[0], 2, 3, padding=1), Flatten(), Dense(72, 2)],
                          input_shape=shape, backend=backend, seed=0)  # fmt: skip
    model.loss = nb.losses.SoftmaxCrossEntropy()
    with pytest.raises(ValueError, match=r"\(samples of shape \(\)\)\.$"):
        model.predict(np.zeros(n))


def test_rows_that_fill_no_square_colour_image_are_not_given_sizes(backend):
    model = nb.Sequential([Conv2D(3, 4, 3)], backend=backend, seed=0)
    model.loss = nb.losses.MSE()
    with pytest.raises(ValueError, match=r"such as X\.reshape\(len\(X\), 3, height, width\)$"):
        model.predict(np.zeros((10, 150)))  # 150 = 3 * 50: no side


def test_targets_of_another_column_count_are_not_told_to_transpose(backend):
    X, y = np.zeros((20, 4)), np.zeros((3, 25))
    model = nb.Sequential([Dense(4, 3)], backend=backend, seed=0)
    with pytest.raises(ValueError, match=r"has 20 samples: they must match$"):
        model.fit(X, y, loss="mse", **SGD)


def test_a_val_alias_without_its_metric_is_told_to_ask_for_the_metric(backend):
    """metrics=[] records no accuracy: the fix is the metric, not the monitor's name."""
    X, y = np.zeros((20, 4)), np.arange(20) % 2
    stop = nb.callbacks.EarlyStopping(monitor="val_acc")
    model = nb.Sequential([Dense(4, 2)], backend=backend, seed=0)
    said = r"validation_split, and metrics=\['acc'\] and monitor='val_accuracy'$"
    with pytest.raises(ValueError, match=said):
        model.fit(X, y, loss="cross_entropy", metrics=[], callbacks=[stop], **SGD)


def test_a_val_metric_not_asked_for_is_told_metrics(backend):
    """EarlyStopping(monitor="val_mae") was told validation data, then refused again
    with no word of the metric the fit did not record."""
    X, y = np.random.default_rng(0).random((20, 3)), np.random.default_rng(1).random((20, 1))
    model = nb.Sequential([Dense(3, 1)], backend=backend, seed=0)
    stop = nb.callbacks.EarlyStopping(monitor="val_mae")
    with pytest.raises(ValueError, match=r"validation_split, and metrics=\['mae'\]$"):
        model.fit(X, y, loss="mse", callbacks=[stop], **SGD)
    with pytest.raises(ValueError, match=r"\['loss', 'val_loss'\]; pass metrics=\['mae'\]$"):
        model.fit(X, y, loss="mse", callbacks=[stop], validation_split=0.25, **SGD)


class Swish(nb.layers.Layer):
    def forward(self, x, training=True):
        return x / (1 + nb.backend.namespace_of(x).exp(-x))

    def backward(self, dy, input_grad=True):
        return dy


def test_the_output_count_doubt_follows_no_full_stop_nor_a_fix_of_y(backend):
    X = np.random.default_rng(0).random((10, 4))
    model = nb.Sequential([Dense(4, 2), Swish()], backend=backend, seed=0)
    doubt = r"lie in 0\.\.1\. 5 classes\? End the model in Dense\(\.\.\., 5\); Swish keeps Layer's"
    with pytest.raises(ValueError, match=doubt) as told:
        model.fit(X, np.arange(10) % 5, loss="cross_entropy", **SGD)
    with pytest.raises(ValueError, match=r"Labels 1\.\.n\? Use y - 1\.$"):
        model.fit(X, np.arange(10) % 2 + 1, loss="cross_entropy", **SGD)
    assert ".;" not in str(told.value)


def test_rows_with_a_target_each_are_not_told_they_are_one_image(backend):
    """Three rows of 2 for a net of 6 inputs: "A single image? X.reshape(1, -1)", which
    the 3 targets then refute."""
    model = nb.Sequential([Dense(6, 2)], backend=backend, seed=0)
    with pytest.raises(ValueError, match=r"\(samples of shape \(2,\)\)\.$"):
        model.fit(np.zeros((3, 2)), np.array([0, 1, 0]), loss="cross_entropy", **SGD)


def test_too_few_rows_left_by_validation_split_are_not_said_to_be_all_of_x(backend):
    X, y = np.random.default_rng(0).normal(size=(3, 4)), np.array([0, 1, 0])
    model = nb.Sequential([Dense(4, 3), BatchNorm(3), Dense(3, 2)], backend=backend, seed=0)
    with pytest.raises(ValueError, match=r"^the fit trains on 1 sample\(s\) \(X's, less any "):
        model.fit(X, y, loss="cross_entropy", validation_split=0.5, **SGD)


def test_a_monitor_on_top_k_is_told_the_name_fit_records_not_metrics_metric(backend):
    """TopKAccuracy's name is made in __init__: the class's, "metric", was offered as
    metrics=['metric'], an unknown metric."""
    X, y = np.random.default_rng(0).normal(size=(40, 4)), np.arange(40) % 8
    stop = nb.callbacks.EarlyStopping(monitor="top_k_accuracy")
    model = nb.Sequential([Dense(4, 8)], backend=backend, seed=0)
    with pytest.raises(ValueError, match=r"by its own name, so monitor='top_5_accuracy'$"):
        model.fit(X, y, loss="cross_entropy", metrics=["top_k_accuracy"], callbacks=[stop], **SGD)


def test_a_checkpoint_of_the_wrong_type_is_named_as_fits_option(backend):
    model = nb.Sequential([Dense(4, 3)], backend=backend, seed=0)
    for wrong in (5, True, b"ck_{epoch}.h5"):
        with pytest.raises(TypeError, match=r"^checkpoint must be a file's path"):
            model.fit(np.ones((8, 4)), np.arange(8) % 3, loss="cross_entropy", checkpoint=wrong,
                      **SGD)  # fmt: skip


def test_a_monitor_by_an_alias_of_a_metric_not_asked_for_is_told_both_fixes(backend):
    """monitor="acc" with metrics=[] was told metrics=['accuracy'] alone, and then,
    that done, to monitor 'accuracy'."""
    X, y = np.zeros((20, 4)), np.arange(20) % 2
    stop = nb.callbacks.EarlyStopping(monitor="acc")
    model = nb.Sequential([Dense(4, 2)], backend=backend, seed=0)
    with pytest.raises(ValueError, match=r"; pass metrics=\['acc'\] and monitor='accuracy'$"):
        model.fit(X, y, loss="cross_entropy", metrics=[], callbacks=[stop], **SGD)


class Same(nb.layers.Layer):
    def forward(self, x, training=True):
        return x

    def backward(self, dy, input_grad=True):
        return dy


def test_the_output_doubt_is_not_added_to_other_target_errors(backend):
    X, y = nb.datasets.make_moons(20, noise=0.2, seed=0)
    model = nb.Sequential([Dense(2, 2), Same()], backend=backend, seed=0)
    for targets in (y[:19], y + 0.5):  # a count that differs, labels that are not integers
        with pytest.raises(ValueError) as told:
            model.fit(X, targets, loss="cross_entropy", **SGD)
        assert "output_shape" not in str(told.value)


def test_a_forward_returning_a_list_is_told_so(backend):
    class Pair(Same):
        def forward(self, x, training=True):
            return [x, x]

    model = nb.Sequential([Dense(2, 2), Pair(), Dense(2, 2)], backend=backend, seed=0)
    model.loss = nb.losses.SoftmaxCrossEntropy()
    with pytest.raises(TypeError, match=r"^layer 1, Pair\(\): its forward returned a list: it"):
        model.predict(np.zeros((4, 2)))


def test_restating_a_bases_alias_as_its_own_name_is_warned():
    """A subclass named "acc", Accuracy's alias, takes no name of its base's own."""
    from nnbackend.registry import METRICS

    with pytest.warns(UserWarning, match=r"name='acc' of MyAcc names nnbackend\.metrics\.Accuracy"):

        @nb.register
        class MyAcc(nb.metrics.Accuracy):
            name = "acc"

    METRICS._classes.pop("MyAcc")


def test_a_monitor_on_a_top_k_fit_does_not_record_is_told_a_metric_string_fit_takes(backend):
    """The advice was metrics=['top_5_accuracy'], an instance's name that fit refuses."""
    X, y = np.random.default_rng(0).normal(size=(40, 4)), np.arange(40) % 8
    stop = nb.callbacks.EarlyStopping(monitor="top_k_accuracy")
    model = nb.Sequential([Dense(4, 8)], backend=backend, seed=0)
    said = r"; pass metrics=\['top_k_accuracy'\] and monitor='top_5_accuracy'$"
    with pytest.raises(ValueError, match=said):
        model.fit(X, y, loss="cross_entropy", metrics=[], callbacks=[stop], **SGD)
    stop = nb.callbacks.EarlyStopping(monitor="top_5_accuracy")
    model.fit(X, y, loss="cross_entropy", metrics=["top_k_accuracy"], callbacks=[stop], **SGD)
