"""Mistakes a newcomer makes on a first day, each said plainly with what to do: an
optimizer's name where its object goes, a batch axis in ``input_shape``, torch's
``SGD(momentum=...)``, a backward with no forward before it."""

from __future__ import annotations

import functools
import warnings
from unittest import mock

import numpy as np
import pytest

import nnbackend as nb
from nnbackend.layers import Dense, Flatten, Tanh


def test_save_takes_an_optimizer_object_and_a_whole_epoch(tmp_path):
    """A name gave "'str' object has no attribute 'config'"; epoch 2.7 was saved as 2."""
    model = nb.Sequential([Dense(2, 3)], seed=0)
    path = tmp_path / "model.h5"
    with pytest.raises(TypeError, match=r"optimizer is the Optimizer .* not 'adam'"):
        nb.save(model, path, optimizer="adam")
    for epoch in ["abc", 2.7]:
        with pytest.raises(TypeError, match=r"epoch \(the last one trained, from 0\) must be"):
            nb.save(model, path, epoch=epoch)
    assert not path.exists()
    nb.save(model, path, optimizer=nb.optim.Adam(), epoch=np.int64(2))
    assert nb.load(path, with_optimizer=True)[2] == 2


@pytest.mark.parametrize(
    ("option", "says"),
    [
        (
            {"lr": 0.1},
            r"lr=; the learning rate is the optimizer's: optimizer=nb.optim.SGD\(lr=0.1\)",
        ),
        ({"epoch": 3}, r"epoch=; did you mean epochs=\?"),
        ({"validation": 0.2}, r"validation=; did you mean validation_data=\?"),
        ({"zzz": 1}, r"zzz=; it takes loss, optimizer, epochs, batch_size, .*, compile$"),
    ],
)
def test_an_option_fit_does_not_take_says_what_was_meant(option, says):
    """Python's own "unexpected keyword argument 'lr'" left out where the rate goes."""
    model = nb.Sequential([Dense(2, 3)], seed=0)
    with pytest.raises(TypeError, match=rf"fit\(\) takes no option {says}"):
        model.fit(np.ones((4, 2)), np.array([0, 1, 2, 0]), loss="cross_entropy",
                  optimizer="sgd", **option)  # fmt: skip
    assert model.optimizer is None  # refused before anything began


@pytest.mark.parametrize("nesterov", [None, True])
def test_sgd_with_momentum_points_to_momentum_and_nesterov(nesterov):
    kind = "Nesterov" if nesterov else "Momentum"
    with pytest.raises(TypeError, match=rf"nb.optim.{kind}\(lr=0.1, momentum=0.8\) is SGD with"):
        nb.optim.SGD(lr=0.1, momentum=0.8, nesterov=nesterov)
    assert nb.optim.SGD(0.1, momentum=0, nesterov=False).config() == {"type": "SGD", "lr": 0.1}


def test_a_batch_axis_in_input_shape_is_named():
    with pytest.raises(ValueError, match=r"without the batch axis: \(1, 4\), not \(None, 1, 4\)"):
        nb.Sequential([Flatten(), Dense(4, 2)], input_shape=(None, 1, 4))
    with pytest.raises(ValueError, match=r"axis: \(features,\) such as \(4,\), not \(None,\)"):
        nb.Sequential([Dense(4, 2)], input_shape=(None,))


def test_a_backward_before_any_forward_says_so(backend):
    """It was "'Dense' object has no attribute '_x'"."""
    model = nb.Sequential([Dense(2, 3), Tanh()], backend=backend, seed=0)
    dy = backend.asarray(np.ones((4, 3)), dtype=backend.dtype_name)
    with pytest.raises(AttributeError, match=r"Tanh has no _y, .* call forward\(x\) before"):
        model.backward(dy)
    model.forward(backend.asarray(np.ones((4, 2)), dtype=backend.dtype_name))
    del model.layers[0]._x  # as a layer whose forward never ran
    with pytest.raises(AttributeError, match=r"Dense has no _x, which its forward keeps"):
        model.backward(dy)


@pytest.mark.parametrize(
    "loss", [nb.losses.MSE(), nb.losses.SoftmaxCrossEntropy(), nb.losses.BinaryCrossEntropy()]
)
def test_a_loss_backward_before_its_forward_says_so(loss):
    """It was "'SoftmaxCrossEntropy' object has no attribute '_grad'"."""
    name = type(loss).__name__
    with pytest.raises(AttributeError, match=rf"{name} has no forward to differentiate: call "):
        loss.backward()


def _keep_input(layer, x):
    layer._x = x


def _logged(forward):
    @functools.wraps(forward)
    def logging(self, *args, **kwargs):
        return forward(self, *args, **kwargs)

    return logging


class _UsesInput(Tanh):
    def backward(self, dy, input_grad=True):
        return dy * self._x


class _BySetattr(_UsesInput):
    def forward(self, x, training=False):
        setattr(self, "_x", x)  # noqa: B010 (a layer's author may write it so)
        return x


class _ByHelper(_UsesInput):
    def forward(self, x, training=False):
        _keep_input(self, x)
        return x


class _Decorated(_UsesInput):
    @_logged
    def forward(self, x, training=False):
        self._x = x
        return x


class _ByClosure(_UsesInput):
    def forward(self, x, training=False):
        def keep():
            self._x = x

        keep()
        return x


class _ByStaticMethod(_UsesInput):
    def forward(self, x, training=False):
        self._keep(self, x)
        return x

    @staticmethod
    def _keep(layer, x):
        layer._x = x


@pytest.mark.parametrize("kind", [_BySetattr, _ByHelper, _Decorated, _ByClosure, _ByStaticMethod])
def test_a_backward_before_forward_says_so_however_forward_keeps_its_input(kind):
    """Only a STORE_ATTR in a method's own code was found: these five lost the message."""
    model = nb.Sequential([Dense(2, 3), kind()], seed=0)
    with pytest.raises(AttributeError, match=rf"{kind.__name__} has no _x, which its forward"):
        model.backward(np.ones((4, 3)))


class _WithAMock(_UsesInput):
    hook = mock.Mock()  # makes up fget, __wrapped__, ... for ever

    def forward(self, x, training=False):
        self._x = x
        return x


def test_a_mock_among_a_layers_attributes_does_not_hang_the_message():
    """The search for what forward keeps followed the Mock's made-up attributes without
    end (memory growing)."""
    model = nb.Sequential([Dense(2, 3), _WithAMock()], seed=0)
    with pytest.raises(AttributeError, match=r"_WithAMock has no _x, which its forward keeps"):
        model.backward(np.ones((4, 3)))


class _ReadByName(Tanh):
    def forward(self, x, training=False):
        self._saved = x
        return x

    def backward(self, dy, input_grad=True):
        return dy * getattr(self, "_save")  # noqa: B009 (the typo, by name)


def test_a_typo_read_by_getattr_keeps_pythons_error():
    """A string constant counted as setting the attribute: the typo was told to call
    forward first, after forward had run."""
    model = nb.Sequential([Dense(2, 3), _ReadByName()], seed=0)
    model.forward(np.ones((4, 2), np.float32))
    with pytest.raises(AttributeError, match=r"'_ReadByName' object has no attribute '_save'"):
        model.backward(np.ones((4, 3), np.float32))


class _Misspelt(Tanh):
    def backward(self, dy, input_grad=True):
        return dy * (1 - self._yy**2)  # the typo of a layer's author, not a missed forward


def test_a_typo_in_a_backward_keeps_pythons_error(backend):
    """The forward-first message is for what the layer's code keeps, not for every name."""
    model = nb.Sequential([Dense(2, 3), _Misspelt()], backend=backend, seed=0)
    model.forward(backend.asarray(np.ones((4, 2)), dtype=backend.dtype_name))
    with pytest.raises(AttributeError, match=r"'_Misspelt' object has no attribute '_yy'"):
        model.backward(backend.asarray(np.ones((4, 3)), dtype=backend.dtype_name))


def test_a_keras_hook_that_fit_never_calls_is_named(backend):
    """A callback written with Keras's on_batch_end would silently do nothing: fit
    warns, naming every such method and the hooks it does call, and trains as asked.
    Other on_ names (a helper, a property, a setting) are no hooks: nothing is said."""

    class StopOnBigLoss(nb.callbacks.Callback):
        on_error = "raise"

        def on_batch_end(self, batch, logs=None):
            raise AssertionError("never called")

        def on_train_epoch_start(self, trainer, module):
            raise AssertionError("never called")

        def on_log(self, logs):  # its own helper
            self.seen = logs

        @property
        def on_device(self):
            return True

        def on_epoch_end(self, epoch, logs, model):
            self.on_log(logs)

    X, y = nb.datasets.make_moons(20, seed=0)
    model = nb.Sequential([Dense(2, 2)], backend=backend, seed=0)
    callback = StopOnBigLoss()
    with pytest.warns(UserWarning) as caught:
        history = model.fit(X, y, loss="cross_entropy", optimizer="sgd", epochs=2, verbose=0,
                            callbacks=[callback])  # fmt: skip
    assert [str(w.message) for w in caught] == [
        "StopOnBigLoss has on_batch_end, on_train_epoch_start, which fit never calls: its "
        "hooks are on_train_begin, on_epoch_end, on_train_end"
    ]
    assert caught[0].filename == __file__
    assert history.epochs == [0, 1] and set(callback.seen) == {"loss", "accuracy"}


class _SummedOverTheBatch(Tanh):
    """A backward that sums its gradient over the batch, keeping the axis: (1, n)."""

    def backward(self, dy, input_grad=True):
        xp = nb.backend.namespace_of(dy)
        return xp.sum(super().backward(dy, input_grad), axis=0, keepdims=True)


class _Fold(nb.layers.Layer):
    """(N, T, F) -> (N * T, F): the steps of a sequence as rows of their own."""

    def forward(self, x, training=True):
        self._n = x.shape[0]
        return nb.backend.namespace_of(x).reshape(x, (-1, x.shape[2]))

    def backward(self, dy, input_grad=True):
        return nb.backend.namespace_of(dy).reshape(dy, (self._n, -1, dy.shape[1]))

    def output_shape(self, input_shape):
        return (input_shape[1],)


class _Unfold(_Fold):
    """(N * T, F) -> (N, T * F), T steps a sample."""

    def __init__(self, steps=3):
        super().__init__()
        self.steps = steps

    def forward(self, x, training=True):
        self._shape = x.shape
        return nb.backend.namespace_of(x).reshape(x, (-1, self.steps * x.shape[1]))

    def backward(self, dy, input_grad=True):
        return nb.backend.namespace_of(dy).reshape(dy, self._shape)

    def output_shape(self, input_shape):
        return (self.steps * input_shape[0],)


def test_layers_that_fold_steps_into_rows_train_with_their_own_batch_sizes(backend):
    """A layer's dL/dx is held to its own input's shape, not to the batch's rows: a step
    folded into rows and unfolded again was refused."""
    X = np.linspace(-1, 1, 4 * 3 * 2).reshape(4, 3, 2)
    model = nb.Sequential(
        [_Fold(), Dense(2, 5), "tanh", _Unfold(3), Dense(15, 1)], backend=backend, seed=0
    )
    history = model.fit(X, X[:, 0, :1], loss="mse", optimizer="sgd", epochs=3, verbose=0)
    assert history["loss"][-1] < history["loss"][0]


def test_a_backward_giving_one_row_for_the_batch_is_named_at_the_first_step(backend):
    """The layers below broadcast the (1, n) row into every row's gradient: the fit
    trained on, wrong, with no error (or failed in a Dense's matmul, naming no layer)."""
    X = np.linspace(-1, 1, 24).reshape(8, 3)
    for layers in (
        [Dense(3, 4), "tanh", _SummedOverTheBatch()],
        [Dense(3, 4), _SummedOverTheBatch()],
    ):
        model = nb.Sequential([*layers, Dense(4, 1)], backend=backend, seed=0)
        before = {k: nb.to_numpy(v).copy() for k, v in model.params.items()}
        index = len(layers) - 1
        said = (
            rf"^layer {index}, _SummedOverTheBatch\(\): its backward returned dL/dx of "
            r"shape \(1, 4\), its input had shape \(8, 4\)"
        )
        with pytest.raises(ValueError, match=said):
            model.fit(X, X[:, :1], loss="mse", optimizer="sgd", verbose=0)
        for k, v in model.params.items():  # refused before the step
            np.testing.assert_array_equal(nb.to_numpy(v), before[k])


class _NoSuperLayer(nb.layers.Layer):
    def __init__(self, a=1.0):  # no super().__init__(): no params, grads or state
        self.a = a


class _NoSuperLoss(nb.losses.MSE):
    def __init__(self, delta=1.0):  # no reduction
        self.delta = delta


class _NoSuperOptimizer(nb.optim.SGD):
    def __init__(self, lr=0.01):  # a rate, but no state
        self.lr = lr


def test_a_class_whose_init_skips_its_bases_is_told_to_call_it(backend):
    """Python's AttributeError ('params', 'reduction', 'state') came at first use, and
    check_layer blamed numpy for it in every row."""
    said = r"has no {}: its __init__ must call super\(\)\.__init__\(\.\.\.\) first \({}'s sets"
    X = np.linspace(-1, 1, 12).reshape(6, 2)
    with pytest.raises(TypeError, match="^_NoSuperLayer " + said.format("params", "Layer")):
        nb.Sequential([Dense(2, 2), _NoSuperLayer()], backend=backend)
    with pytest.raises(TypeError, match="^_NoSuperLayer " + said.format("params", "Layer")):
        nb.testing.check_layer(_NoSuperLayer, (3, 2), backends=[backend.name])
    model = nb.Sequential([Dense(2, 1)], backend=backend, seed=0)
    for loss, optimizer, what, base in [
        (_NoSuperLoss(), "sgd", "reduction", "Loss"),
        ("mse", _NoSuperOptimizer(), "state", "Optimizer"),
    ]:
        with pytest.raises(TypeError, match=said.format(what, base)):
            model.fit(X, X[:, :1], loss=loss, optimizer=optimizer, verbose=0)
    with pytest.raises(TypeError, match="^_NoSuperLoss " + said.format("reduction", "Loss")):
        nb.testing.check_loss(_NoSuperLoss, (4, 1), np.zeros((4, 1)), backends=[backend.name])
    with pytest.raises(TypeError, match="^_NoSuperOptimizer " + said.format("state", "Optimizer")):
        nb.testing.check_optimizer(_NoSuperOptimizer, lambda w, g, s, t: w - 0.01 * g)


class _HalvesTheFeatures(nb.layers.Layer):
    """A gated unit, x[:, :h] * sigmoid(x[:, h:]), that keeps Layer's output_shape."""

    def forward(self, x, training=True):
        h = x.shape[1] // 2
        return x[:, :h] * nb.functional.sigmoid(x[:, h:])


class _SaysItHalves(_HalvesTheFeatures):
    def output_shape(self, input_shape):
        return (input_shape[0] // 2,)


def test_a_shape_change_left_out_of_output_shape_is_named_with_the_mismatch(backend):
    """The mismatch named the features Layer's default gives (8), not what the forward
    gives (4): "Dense(8, 1)", as it suggested, failed at fit."""
    with pytest.raises(ValueError, match=r"_HalvesTheFeatures keeps Layer's default output_shape"):
        nb.Sequential([Dense(4, 8), _HalvesTheFeatures(), Dense(4, 1)], backend=backend)
    model = nb.Sequential([Dense(4, 8), _SaysItHalves(), Dense(4, 1)], backend=backend)
    assert model.output_shape == (1,)
    with pytest.raises(ValueError, match=r"takes 4 features, not 8 \(layer 2\)$"):
        nb.Sequential([Dense(4, 8), Tanh(), Dense(4, 1)], backend=backend)  # built-in: no hint


class _GivesANumber(Tanh):
    def backward(self, dy, input_grad=True):
        return 0.0


def test_a_backward_giving_no_array_is_named(backend):
    """A float from a backward was Python's "'float' object has no attribute 'shape'"."""
    X = np.linspace(-1, 1, 8).reshape(4, 2)
    model = nb.Sequential([Dense(2, 2), _GivesANumber(), Dense(2, 1)], backend=backend)
    with pytest.raises(ValueError, match=r"^layer 1, _GivesANumber\(\): .* dL/dx of a float, its"):
        model.fit(X, X[:, :1], loss="mse", optimizer="sgd", verbose=0)


class _Named:
    """A mixin of one's own, after the library's base in the class's bases."""


class _NoSuperMixedLayer(nb.layers.Layer, _Named):
    def __init__(self):  # no super().__init__()
        pass


def test_the_base_named_for_a_skipped_init_is_the_librarys():
    """With a mixin after Layer, the message named the mixin as the class that sets params."""
    with pytest.raises(TypeError, match=r"first \(Layer's sets params\)"):
        nb.Sequential([_NoSuperMixedLayer()])


@nb.register
class _UntypedDense(Dense):
    def config(self):  # {**super().config(), ...} left out: no "type"
        return {"n_in": self.n_in, "n_out": self.n_out}


@nb.register
class _UntypedSGD(nb.optim.SGD):
    def config(self):
        return {"lr": self.lr}


@pytest.mark.parametrize("untyped", ["layer", "optimizer"])
def test_a_config_without_its_type_is_refused_before_training(backend, tmp_path, untyped):
    """A config() that leaves out super().config()'s "type": the fit trained and wrote
    checkpoints no load reads ("unknown layer type None"), which no custom_objects mends."""
    X, y = nb.datasets.make_moons(20, seed=0)
    layer = _UntypedDense(2, 2) if untyped == "layer" else Dense(2, 2)
    optimizer = _UntypedSGD(0.1) if untyped == "optimizer" else nb.optim.SGD(0.1)
    model = nb.Sequential([layer], backend=backend, seed=0)
    path = tmp_path / "model.h5"
    untyped_class = type(layer if untyped == "layer" else optimizer).__name__
    says = rf'{untyped_class}\.config\(\) gives no "type"'
    with pytest.raises(ValueError, match=says):
        model.fit(X, y, loss="cross_entropy", optimizer=optimizer, epochs=1, verbose=0,
                  checkpoint=path)  # fmt: skip
    if untyped == "layer":
        with pytest.raises(ValueError, match=says):
            nb.save(model, path)
    assert not path.exists()


def test_a_backward_through_layers_that_keep_no_cache_needs_no_forward_first(backend):
    """Layers that keep nothing from their forward may be run backward at once; the
    dL/dx shape check has no forward's shapes to hold them to then."""

    class Double(nb.layers.Layer):
        def forward(self, x, training=True):
            return 2 * x

        def backward(self, dy, input_grad=True):
            return 2 * dy

    model = nb.Sequential([Double()], backend=backend, input_shape=(2,))
    dx = model.backward(backend.asarray(np.ones((3, 2))))
    np.testing.assert_array_equal(nb.to_numpy(dx), np.full((3, 2), 2.0))


class NoReturn(nb.layers.Layer):
    def forward(self, x, training=True):
        return 2 * x

    def backward(self, dy, input_grad=True):
        dy * 2  # noqa: B018 - the return forgotten


def test_a_backward_without_its_return_in_the_middle_is_named(backend):
    """A layer past the first whose backward forgot its return: the None reached the
    next layer down, and NumPy's matmul of an object array raised from inside."""
    X = np.random.default_rng(0).normal(size=(8, 3))
    model = nb.Sequential([Dense(3, 3), NoReturn(), Dense(3, 2)], backend=backend, seed=0)
    with pytest.raises(ValueError, match=r"^layer 1, NoReturn\(\): its backward returned None"):
        model.fit(X, (X[:, 0] > 0) * 1, loss="cross_entropy", optimizer="sgd", verbose=0)
    first = nb.Sequential([NoReturn(), Dense(3, 2)], backend=backend, seed=0)  # dx unneeded
    first.fit(X, (X[:, 0] > 0) * 1, loss="cross_entropy", optimizer="sgd", verbose=0)


class Mom(nb.optim.Optimizer):
    """Momentum of one's own that forgot slots = ("v",)."""

    def update(self, params, name, grad, lr):
        v = self._slot("v", name, grad)
        v[name] = 0.9 * v[name] + grad
        params[name] = params[name] - lr * v[name]


def test_state_in_a_slot_the_optimizer_does_not_name_is_told_to_declare_it(backend):
    """A raw KeyError: 'v' from inside the step (13 of them in check_optimizer)."""
    X = np.random.default_rng(0).normal(size=(8, 3))
    model = nb.Sequential([Dense(3, 2)], backend=backend, seed=0)
    with pytest.raises(TypeError, match=r"^Mom keeps state 'v', .*add slots = \('v',\) to the"):
        model.fit(X, (X[:, 0] > 0) * 1, loss="cross_entropy", optimizer=Mom(0.1), verbose=0)


@pytest.mark.parametrize("hook", ["on_train_start", "on_epoch_ends", "on_fit_end"])
def test_a_hook_fit_never_calls_is_warned_of(hook, backend):
    """Lightning's on_train_start and a misspelt on_epoch_ends ran silently never."""
    callback = type("Timer", (nb.callbacks.Callback,), {hook: lambda self, *a: None})()
    X = np.random.default_rng(0).normal(size=(8, 3))
    model = nb.Sequential([Dense(3, 2)], backend=backend, seed=0)
    with pytest.warns(UserWarning, match=rf"^Timer has {hook}, which fit never calls"):
        model.fit(X, (X[:, 0] > 0) * 1, loss="cross_entropy", optimizer="sgd", verbose=0,
                  callbacks=[callback])  # fmt: skip


class Counter(nb.callbacks.Callback):
    def __init__(self):
        self.epochs = 0

    def on_epoch_end(self, epoch, logs, model):
        self.epochs += 1

    def get_state(self):
        return {"epochs": self.epochs}


def test_a_callback_with_get_state_but_no_set_state_is_warned_of(backend):
    """Its state was saved in each checkpoint and given back to nothing at a resume."""
    X = np.random.default_rng(0).normal(size=(8, 3))
    model = nb.Sequential([Dense(3, 2)], backend=backend, seed=0)
    with pytest.warns(UserWarning, match=r"^Counter keeps a state \(get_state\) but has no set"):
        model.fit(X, (X[:, 0] > 0) * 1, loss="cross_entropy", optimizer="sgd", verbose=0,
                  callbacks=[Counter()])  # fmt: skip


class PairSum(nb.layers.Layer):
    """(batch, 2k) -> (batch, k), keeping Layer's default output_shape (which says 2k)."""

    def forward(self, x, training=True):
        xp = nb.backend.namespace_of(x)
        return xp.sum(xp.reshape(x, (x.shape[0], -1, 2)), axis=2)

    def backward(self, dy, input_grad=True):
        xp = nb.backend.namespace_of(dy)
        return xp.reshape(xp.stack([dy, dy], axis=2), (dy.shape[0], -1))


def test_outputs_counted_through_a_layer_keeping_the_default_output_shape_say_so(backend):
    """Dense(3, 2) -> PairSum gives one output, but fit counted 2 by the default
    output_shape and told y, right for the model, to become two columns."""
    X = np.random.default_rng(0).normal(size=(8, 3))
    model = nb.Sequential([Dense(3, 2), PairSum()], backend=backend, seed=0)
    with pytest.raises(
        ValueError, match=r"2 outputs.*; PairSum keeps Layer's default output_shape"
    ):
        model.fit(X, X[:, :1], loss="mse", optimizer="sgd", verbose=0)


class NpTanh(nb.layers.Layer):
    """Calls NumPy, not the standard: right on NumPy alone."""

    def forward(self, x, training=True):
        self.y = np.tanh(x)
        return self.y

    def backward(self, dy, input_grad=True):
        return dy * (1 - self.y**2)


def test_a_layer_that_calls_numpy_on_another_backend_is_named():
    """On strict, fit said arrays of two backends met in the loss (put both on one
    backend), and predict raised array-api-strict's TypeError from inside."""
    X = np.random.default_rng(0).normal(size=(8, 3))
    model = nb.Sequential([Dense(3, 3), NpTanh(), Dense(3, 2)], backend="strict", seed=0)
    said = r"^layer 1, NpTanh\(\): its forward gave a numpy\.ndarray, not an array of the model"
    with pytest.raises(TypeError, match=said):
        model.fit(X, (X[:, 0] > 0) * 1, loss="cross_entropy", optimizer="sgd", verbose=0)
    last = nb.Sequential([Dense(3, 2), NpTanh()], backend="strict", seed=0)
    last.loss = nb.losses.MSE()
    with pytest.raises(TypeError, match=r"^layer 1, NpTanh\(\): its forward gave a numpy"):
        last.predict(X)
    numpy = nb.Sequential([Dense(3, 3), NpTanh(), Dense(3, 2)], backend="numpy", seed=0)
    numpy.fit(X, (X[:, 0] > 0) * 1, loss="cross_entropy", optimizer="sgd", verbose=0)


class Forgetful(nb.layers.Layer):
    def forward(self, x, training=True):
        self.out = 2 * x  # the return forgotten

    def backward(self, dy, input_grad=True):
        return 2 * dy


class Cached(nb.layers.Layer):
    def forward(self, x, training=True):
        return 2 * x, x  # the course's (out, cache)

    def backward(self, dy, input_grad=True):
        return 2 * dy


@pytest.mark.parametrize(
    ("layer", "said"),
    [(Forgetful, r"returned None \(a missing return\?\)"), (Cached, r"returned a tuple: it")],
)
def test_a_forward_returning_none_or_a_pair_is_told_so_not_to_stop_calling_numpy(
    layer, said, backend
):
    X = np.random.default_rng(0).normal(size=(8, 4))
    model = nb.Sequential([Dense(4, 4), layer(), Dense(4, 1)], backend=backend, seed=0)
    with pytest.raises(TypeError, match=rf"^layer 1, {layer.__name__}\(\): its forward {said}"):
        model.fit(X, X[:, :1], loss="mse", optimizer="sgd", verbose=0)


class Swish(nb.layers.Layer):
    """An activation of one's own: its default output_shape is right."""

    def forward(self, x, training=True):
        self.x = x
        return x / (1 + nb.backend.namespace_of(x).exp(-x))

    def backward(self, dy, input_grad=True):
        xp = nb.backend.namespace_of(dy)
        s = 1 / (1 + xp.exp(-self.x))
        return dy * (s + self.x * s * (1 - s))


def test_no_default_output_shape_hint_for_a_layer_before_the_last_dense(backend):
    X = np.random.default_rng(0).normal(size=(20, 4))
    model = nb.Sequential([Dense(4, 8), Swish(), Dense(8, 3)], backend=backend, seed=0)
    with pytest.raises(ValueError, match="3 outputs") as told:
        model.fit(X, X[:, :2], loss="mse", optimizer="sgd", verbose=0)
    assert "Swish keeps" not in str(told.value)


def test_a_private_helper_of_a_callback_is_not_warned_of_as_a_hook(backend):
    class Logger(nb.callbacks.Callback):
        def _on_epoch_end(self, epoch):
            pass

        def on_epoch_end(self, epoch, logs, model):
            self._on_epoch_end(epoch)

    X = np.random.default_rng(0).normal(size=(8, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nb.Sequential([Dense(4, 1)], backend=backend, seed=0).fit(
            X, X[:, :1], loss="mse", optimizer="sgd", verbose=0, callbacks=[Logger()]
        )


class RowBias(nb.layers.Layer):
    """A bias whose backward keeps the batch axis: a (1, 4) gradient for a (4,) weight."""

    def param_shapes(self):
        return {"b": (4,)}

    def build(self, backend, rng):
        super().build(backend, rng)
        self.params["b"] = backend.xp.zeros((4,), dtype=backend.dtype)

    def forward(self, x, training=True):
        return x + self.params["b"]

    def backward(self, dy, input_grad=True):
        self.grads["b"] = nb.backend.namespace_of(dy).sum(dy, axis=0, keepdims=True)
        return dy


def test_check_gradients_names_the_weight_whose_gradient_has_another_shape(backend64):
    X = np.random.default_rng(0).normal(size=(6, 4))
    model = nb.Sequential([Dense(4, 4), RowBias(), Dense(4, 1)], backend=backend64, seed=0)
    with pytest.raises(ValueError, match=r"^the gradient of 1\.b has shape \(1, 4\), but 1\.b has"):
        nb.gradcheck.check_gradients(model, "mse", X, X[:, :1])
