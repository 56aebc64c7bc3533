"""A script ported from Keras: its spellings, where this library says things otherwise,
are told ours (Python's words named only the argument it did not expect), and none
trains an epoch before it is refused."""

from __future__ import annotations

import pickle
import re

import numpy as np
import pytest

import nnbackend as nb
from nnbackend.layers import Conv2D, Dense


def data():
    X = np.random.default_rng(0).normal(size=(40, 4))
    return X, (X[:, 0] > 0).astype(np.int64)


def test_a_callback_with_keras_s_hook_arguments_is_refused_before_training(backend):
    """on_epoch_end(self, epoch, logs=None) trained an epoch, then failed in Python's
    words, with the weights moved."""

    class PrintLoss(nb.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            pass

    model = nb.Sequential([Dense(4, 2)], seed=0, backend=backend)
    before = nb.to_numpy(model.params["0.W"]).copy()
    said = (
        r"PrintLoss.on_epoch_end\(epoch, logs=None\) cannot take what fit passes it, "
        r"\(epoch, logs, model\): write it as on_epoch_end\(self, epoch, logs, model\)"
    )
    with pytest.raises(TypeError, match=said):
        model.fit(*data(), loss="cross_entropy", optimizer="sgd", epochs=2, verbose=0,
                  callbacks=[PrintLoss()])  # fmt: skip
    np.testing.assert_array_equal(nb.to_numpy(model.params["0.W"]), before)


def test_hooks_taking_what_fit_passes_in_any_form_are_taken(backend):
    seen = []

    class Flexible(nb.callbacks.Callback):
        def on_train_begin(self, *args, **kwargs):
            seen.append("begin")

        def on_epoch_end(self, epoch, logs, model, extra=None):
            seen.append(epoch)

    model = nb.Sequential([Dense(4, 2)], seed=0, backend=backend)
    each_epoch = nb.callbacks.LambdaCallback(lambda epoch, logs, model: None)
    model.fit(*data(), loss="cross_entropy", optimizer="sgd", epochs=2, verbose=0,
              callbacks=[Flexible(), each_epoch])  # fmt: skip
    assert seen == ["begin", 0, 1]


def test_a_history_key_by_keras_s_name_is_told_its_own_name():
    """'val_acc' with validation data given was told to pass validation data."""
    model = nb.Sequential([Dense(4, 2)], seed=0)
    history = model.fit(*data(), loss="cross_entropy", optimizer="sgd", verbose=0,
                        validation_split=0.25, metrics=["accuracy"])  # fmt: skip
    with pytest.raises(KeyError) as err:
        history["val_acc"]
    assert str(err.value).endswith("'acc' is recorded by its own name: history['val_accuracy']\"")
    with pytest.raises(KeyError, match=r"recorded by its own name: history\['accuracy'\]"):
        history["acc"]
    with pytest.raises(KeyError) as err:
        history["val_mae"]  # validation was given: no hint to give it
    assert "validation" not in str(err.value).split(";")[-1]
    alone = model.fit(*data(), loss="cross_entropy", optimizer="sgd", verbose=0)
    with pytest.raises(KeyError, match="for 'val_\\*' pass validation_data or validation_split"):
        alone["val_loss"]


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (lambda: nb.optim.Adam(learning_rate=1e-3), r"Adam takes lr=, not learning_rate="),
        (lambda: nb.optim.Adam(beta_1=0.8), r"name\): Adam\(beta1=0.8\)"),
        (lambda: nb.optim.RMSProp(epsilon=1e-6), r"RMSProp takes eps=, not epsilon="),
        (lambda: nb.optim.get({"type": "adam", "learning_rate": 0.1}), r"Adam\(lr=0.1\)"),
        (lambda: Dense(128, activation="relu"), r"Dense takes no activation=: an activation"),
        (lambda: Conv2D(1, 4, 3, activation="relu"), r"\[\.\.\., Conv2D\(\.\.\.\), 'relu', "),
        (
            lambda: nb.callbacks.ModelCheckpoint("c.h5", monitor="val_loss", save_best_only=True),
            r"takes no monitor=, save_best_only= \(Keras's\): it saves the run, every=N epochs",
        ),
    ],
)
def test_keras_s_spelling_of_an_argument_is_told_ours(make, said):
    with pytest.raises((TypeError, ValueError), match=said):
        make()


def test_following_the_told_spelling_works():
    assert nb.optim.Adam(lr=1e-3, beta1=0.8).config()["beta1"] == 0.8
    assert nb.optim.SGD(lr=0.1).lr == 0.1  # no Keras name given: nothing read


@pytest.mark.parametrize(
    ("option", "said"),
    [
        ("validation_steps", "validation runs over all of the validation data each epoch"),
        ("validation_freq", "validation runs every epoch"),
        ("steps_per_epoch", "an epoch is one pass over X"),
        ("initial_epoch", "with checkpoint=path, resume=True"),
        ("class_weight", "resample X and y to weight the classes"),
    ],
)
def test_keras_s_fit_options_are_not_told_a_look_alike(option, said):
    """validation_steps was told validation_split=, a fraction for a count of batches."""
    with pytest.raises(TypeError) as err:
        nb.Sequential([Dense(4, 2)]).fit(*data(), loss="cross_entropy", optimizer="sgd",
                                         verbose=0, **{option: 1})  # fmt: skip
    assert said in str(err.value) and "did you mean" not in str(err.value)


# --- classes of one's own that take those names keep them (M53) ----------------------


def test_classes_of_one_s_own_that_take_keras_s_names_are_made(tmp_path):
    """A subclass's own monitor=, or a layer's activation= by name or through **kwargs,
    was refused before its __init__ ran."""

    class BestCheckpoint(nb.callbacks.ModelCheckpoint):
        def __init__(self, path, monitor="val_loss"):
            super().__init__(path)
            self.monitor = monitor

    class Gated(nb.layers.Layer):
        def __init__(self, activation=None):
            super().__init__()
            self.activation = activation

    class Scaled(nb.layers.Layer):
        def __init__(self, factor=2.0, **kwargs):
            super().__init__()
            self.factor, self.activation = factor, kwargs.get("activation")

    class BothNames(nb.optim.SGD):
        def __init__(self, lr=0.01, learning_rate=None):
            super().__init__(lr if learning_rate is None else learning_rate)

    assert BestCheckpoint(tmp_path / "run.h5", monitor="val_accuracy").monitor == "val_accuracy"
    assert Gated(activation="relu").activation == "relu"
    assert Scaled(3.0, activation="relu").activation == "relu"
    assert BothNames(learning_rate=0.5).lr == 0.5


@pytest.mark.parametrize(("keras", "ours"), [("beta_2", "beta2"), ("epsilon", "eps")])
def test_every_keras_spelling_of_adam_is_told_ours(keras, ours):
    with pytest.raises(TypeError, match=f"Adam takes {ours}=, not {keras}="):
        nb.optim.Adam(**{keras: 0.5})


@pytest.mark.parametrize("option", ["mode", "save_weights_only", "save_freq"])
def test_every_keras_checkpoint_option_is_told(tmp_path, option):
    with pytest.raises(TypeError, match=rf"ModelCheckpoint takes no {option}= \(Keras's\)"):
        nb.callbacks.ModelCheckpoint(tmp_path / "run.h5", **{option: True})


class BuiltinHook(nb.callbacks.Callback):
    on_train_end = staticmethod(max)  # no signature to read: called, and seen then


def test_a_hook_without_a_signature_to_read_is_not_refused():
    from nnbackend.fit_options import checked_callbacks

    assert len(checked_callbacks([BuiltinHook()])) == 1


def test_an_alias_of_a_metric_not_recorded_is_not_told_a_key_that_is_missing():
    history = nb.Sequential([Dense(4, 2)], seed=0).fit(
        *data(), loss="cross_entropy", optimizer="sgd", verbose=0, metrics=[]
    )
    with pytest.raises(KeyError) as err:
        history["acc"]
    assert "history['accuracy']" not in str(err.value)


def test_an_early_stopping_on_an_unasked_top_k_is_told_the_metric():
    model = nb.Sequential([Dense(4, 3)], seed=0)
    stop = nb.callbacks.EarlyStopping(monitor="top_2_accuracy")
    with pytest.raises(ValueError, match=r"metrics=\[nb.metrics.TopKAccuracy\(k=2\)\]"):
        model.fit(*data(), loss="cross_entropy", optimizer="sgd", verbose=0, callbacks=[stop])


@pytest.mark.parametrize("activation", [None, np.tanh])
def test_an_activation_hint_names_what_the_list_takes(activation):
    """Dense(..., activation=None) was told [..., Dense(...), None, ...], which the
    model refuses; a function the same."""
    with pytest.raises(TypeError) as told:
        Dense(2, 3, activation=activation)
    said = str(told.value)
    assert "leave it out" in said if activation is None else "'relu'" in said
    assert f"Dense(...), {activation!r}" not in said


@pytest.mark.parametrize("layer", [nb.layers.Tanh(), nb.layers.LeakyReLU(0.2)])
def test_an_activation_given_as_a_layer_is_shown_as_itself(layer):
    """A Tanh given was told 'relu': following the hint changed the net."""
    with pytest.raises(TypeError, match=rf"\[\.\.\., Dense\(\.\.\.\), {re.escape(repr(layer))}, "):
        Dense(2, 3, activation=layer)


def test_an_activation_this_library_lacks_is_told_the_names_it_has():
    with pytest.raises(TypeError) as told:
        Dense(2, 3, activation="gelu")
    assert "unknown layer 'gelu': known are" in str(told.value)
    assert "Dense(...), 'gelu'" not in str(told.value)


def test_a_history_of_a_loss_of_one_s_own_pickles_and_holds_no_model():
    """The History's hint kept a deep copy of the loss: a class made in a function did
    not pickle, and a loss holding the model held a copy of its weights."""

    def make(model):
        class Penalised(nb.losses.MSE):
            def __init__(self):
                super().__init__()
                self.model = model

        return Penalised()

    X = np.random.default_rng(0).normal(size=(40, 2))
    model = nb.Sequential([Dense(2, 500), "tanh", Dense(500, 1)], seed=0)
    history = model.fit(X, X[:, :1], loss=make(model), optimizer="sgd", verbose=0)
    again = pickle.loads(pickle.dumps(history))
    assert again["loss"] == history["loss"] and len(pickle.dumps(history)) < 10_000
    with pytest.raises(KeyError, match=r"cannot record it: accuracy needs a loss that classif"):
        again["accuracy"]


def test_a_val_alias_without_validation_is_told_the_key_to_read_then():
    history = nb.Sequential([Dense(4, 2)], seed=0).fit(
        *data(), loss="cross_entropy", optimizer="sgd", verbose=0
    )
    with pytest.raises(KeyError, match=r"validation_split, then read history\['val_accuracy'\]"):
        history["val_acc"]


def test_a_lambda_callback_by_keras_s_keyword_is_told_fn():
    """LambdaCallback(on_epoch_end=...) got Python's "unexpected keyword argument"."""
    with pytest.raises(
        TypeError, match=r"LambdaCallback takes fn=, not on_epoch_end= .*\(fn=\.\.\.\)"
    ):
        nb.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: None)
    assert nb.callbacks.LambdaCallback(fn=lambda epoch, logs, model: None).every == 1


def test_keras_s_settings_set_on_ours_are_told_what_works(backend):
    """optimizer.learning_rate = 1e-6 and layer.trainable = False were taken in silence:
    the rate stayed, the layer trained. Said, each with what does the work here, which
    is run as written: the hand loop's keep(...) leaves layer 0 as it was."""
    X, y = data()
    model = nb.Sequential([Dense(4, 8), "tanh", Dense(8, 2)], backend=backend, seed=0)
    opt = nb.optim.Adam(0.01)
    with pytest.raises(AttributeError, match=r"^setting Adam\.learning_rate would change nothing"):
        opt.learning_rate = 1e-6
    opt.lr = 1e-3  # as told
    assert opt.lr == 1e-3 and not hasattr(opt, "learning_rate")
    for obj in (model, model.layers[0]):
        with pytest.raises(AttributeError, match=r"trainable would change nothing .* keep = ") as e:
            obj.trainable = False
        assert not hasattr(obj, "trainable")
        with pytest.raises(AttributeError, match=r"has no attribute 'trainable' \(no step"):
            del obj.trainable
    code = str(e.value).split("steps the others alone: ")[1][:-1]
    loss, before = nb.losses.SoftmaxCrossEntropy(), model.copy_params()
    for xb, yb in nb.data.Batches(X, y, model.backend, batch_size=16, rng=model.rng):
        loss.forward(model.forward(xb), yb)
        model.backward(loss.backward())
        exec(code, {"opt": opt, "model": model})  # noqa: S102
    after = model.copy_params()
    for name in before:
        same = np.array_equal(nb.to_numpy(before[name]), nb.to_numpy(after[name]))
        assert same == name.startswith("0."), name

    class Gated(nb.layers.Layer):  # a class of one's own keeps an attribute of the name
        def __init__(self):
            super().__init__()
            self.trainable = False

    gated = Gated()
    assert gated.trainable is False
    del gated.trainable  # its own attribute, gone as any other
    assert not hasattr(gated, "trainable")

    class Plain(nb.layers.Layer):  # one that sets no such attribute is told as ours are
        pass

    with pytest.raises(AttributeError, match=r"^setting Plain\.trainable would change nothing"):
        Plain().trainable = False
