"""A loop written with PyTorch's habits: what does not do here what torch's would is
told, where it ran on in silence (a step that moved nothing, a step in inference mode)
or met Python's bare words."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import nnbackend as nb
from nnbackend.layers import BatchNorm, Conv2D, Dense, Dropout, LeakyReLU, MaxPool2D


def moons_batch(model):
    X, y = nb.datasets.make_moons(32, seed=0)
    return next(iter(nb.data.Batches(X, y, model.backend, batch_size=32, rng=model.rng)))


def test_a_step_after_loss_backward_alone_is_refused(backend):
    """torch's loss.backward() fills the weights' gradients; here it gives dL/d(output)
    only, and every step after it moved nothing, in silence."""
    model = nb.Sequential([Dense(2, 4), "tanh", Dense(4, 2)], backend=backend, seed=0)
    loss, opt = nb.losses.SoftmaxCrossEntropy(), nb.optim.Adam(0.01)
    xb, yb = moons_batch(model)
    loss.forward(model.forward(xb), yb)
    loss.backward()
    with pytest.raises(RuntimeError, match=r"no model.backward: .* model.backward\(loss.backward"):
        opt.step(model.params, model.grads)
    assert opt.iterations == 0
    model.backward(loss.backward())
    opt.step(model.params, model.grads)  # in order, it steps
    assert opt.iterations == 1


def test_a_step_with_every_gradient_cleared_by_its_layer_stays_quiet(backend):
    """A layer frozen by clearing its grads in backward: the backward ran, nothing to do."""

    class Frozen(Dense):
        def backward(self, dy, input_grad=True):
            dx = super().backward(dy, input_grad)
            self.grads.clear()
            return dx

    model = nb.Sequential([Frozen(2, 2)], backend=backend, seed=0)
    loss, opt = nb.losses.SoftmaxCrossEntropy(), nb.optim.SGD(0.1)
    xb, yb = moons_batch(model)
    loss.forward(model.forward(xb), yb)
    model.backward(loss.backward())
    opt.step(model.params, model.grads)
    assert opt.iterations == 0


@pytest.mark.parametrize("modal", [lambda: BatchNorm(4), lambda: Dropout(0.5)])
def test_a_step_after_the_backward_of_model_call_warns_of_inference_mode(backend, modal):
    """model(x) is forward(x, training=False): a torch-style loop trained with BatchNorm
    on its starting statistics and Dropout off, in silence."""
    layer = modal()
    model = nb.Sequential([Dense(2, 4), layer, "relu", Dense(4, 2)], backend=backend, seed=0)
    loss, opt = nb.losses.SoftmaxCrossEntropy(), nb.optim.SGD(0.1)
    xb, yb = moons_batch(model)
    loss.forward(model(xb), yb)
    model.backward(loss.backward())
    name = type(layer).__name__
    with pytest.warns(UserWarning, match=rf"inference forward, model\(x\) .*: {name} ran as in"):
        opt.step(model.params, model.grads)
    loss.forward(model.forward(xb), yb)
    model.backward(loss.backward())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step(model.params, model.grads)  # a training forward's: no word
        model(xb)  # a look at the outputs between backward and step, as the guide has it
        opt.step(model.params, model.grads)
    assert "training=False" in nb.Sequential.__call__.__doc__


def test_model_call_without_modal_layers_backs_and_steps_quietly(backend):
    """Input gradients of a plain net through model(x) are no mistake: no warning."""
    model = nb.Sequential([Dense(2, 4), "tanh", Dense(4, 2)], backend=backend, seed=0)
    loss, opt = nb.losses.SoftmaxCrossEntropy(), nb.optim.SGD(0.1)
    xb, yb = moons_batch(model)
    loss.forward(model(xb), yb)
    model.backward(loss.backward())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step(model.params, model.grads)
    assert opt.iterations == 1


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (lambda: nb.optim.SGD(0.1, weight_decay=1e-4),
         r"SGD takes no weight_decay=: fit\(\.\.\., l2=0\.0001\) adds l2 \* W"),
        (lambda: nb.optim.Adam(0.01, betas=(0.8, 0.99)),
         r"Adam takes no betas=: Adam\(0\.01, beta1=0\.8, beta2=0\.99\)$"),
        (lambda: nb.optim.Adam(nb.Sequential([Dense(2, 2)], seed=0).params, lr=0.5),
         r"Adam is made without the weights .*: nb\.optim\.Adam\(lr=0\.5\), then "
         r"opt\.step\(model\.params, model\.grads\)"),
        (lambda: nb.optim.SGD(iter_of_arrays()), r"SGD is made without the weights"),
        (lambda: Dense(in_features=2, out_features=3),
         r"Dense takes n_in=, n_out=, not in_features=, out_features= \(another library's "
         r"names\): Dense\(n_in=2, n_out=3\)$"),
        (lambda: Dropout(p=0.2), r"Dropout takes rate=, not p= .*: Dropout\(rate=0\.2\)$"),
        (lambda: LeakyReLU(negative_slope=0.2), r"LeakyReLU\(alpha=0\.2\)$"),
        (lambda: Conv2D(1, 4, 3, strides=2), r"Conv2D takes stride=, not strides="),
        (lambda: MaxPool2D(2, strides=2), r"MaxPool2D takes stride=, .*MaxPool2D\(2, stride=2\)$"),
        (lambda: Conv2D(3, 8, 3, use_bias=False), r"Conv2D takes bias=, not use_bias="),
        (lambda: Dense(4, 2, kernel_initializer="he_normal"), r"Dense\(4, 2, init='he_normal'\)$"),
        # were Python's bare words: an unexpected keyword argument
        (lambda: Dense(units=16), r"Dense takes n_out=, not units= .*: Dense\(n_in=\.\.\., "
         r"n_out=16\)$"),
        (lambda: MaxPool2D(kernel_size=2), r"MaxPool2D takes pool_size=, .*\(pool_size=2\)$"),
        (lambda: nb.optim.RMSProp(alpha=0.99), r"RMSProp takes rho=, not alpha= .*\(rho=0\.99\)$"),
        (lambda: nb.optim.Adam(0.01, clipnorm=1.0), r"Adam takes no clipnorm=: clip the gradients"),
        (lambda: nb.optim.SGD(clipvalue=0.5), r"SGD takes no clipvalue=: clip the gradients"),
        (lambda: nb.optim.Adam(amsgrad=True), r"Adam takes no amsgrad=: AMSGrad is an optimizer"),
        (lambda: nb.schedules.ExponentialDecay(initial_learning_rate=0.1, decay_rate=0.9),
         r"ExponentialDecay takes lr=, not initial_learning_rate= .*: ExponentialDecay\(lr=0\.1, "
         r"decay_rate=0\.9\)$"),
        (lambda: nb.schedules.ExponentialDecay(0.1, 0.9, 10, staircase=True),
         r"takes no staircase=: StepDecay\(lr, step_size, gamma\) drops the rate in steps$"),
        (lambda: nb.schedules.StepDecay(0.1, 10, staircase=True),
         r"StepDecay takes no staircase=: it steps already$"),
        # ported code spells out the "off" value: told to leave it out, not to write a class
        (lambda: nb.optim.Adam(0.001, amsgrad=False),
         r"Adam takes no amsgrad=: leave amsgrad=False out, which asks for nothing more$"),
        (lambda: nb.optim.SGD(0.1, clipnorm=None), r"leave clipnorm=None out"),
        # Keras's Conv2D(filters, kernel_size, strides=): was told Conv2D(32, 3, stride=1),
        # 32 input channels and 3 output ones
        (lambda: Conv2D(32, 3, strides=1),
         r"Conv2D\(in_channels=\.\.\., out_channels=32, kernel_size=3, stride=1\)$"),
        (lambda: Conv2D(32, kernel_size=(3, 3), strides=2),
         r"Conv2D\(in_channels=\.\.\., out_channels=32, kernel_size=\(3, 3\), stride=2\)$"),
        (lambda: Conv2D(3, 8, kernel_size=3, strides=2), r"\(3, 8, kernel_size=3, stride=2\)$"),
    ],
)  # fmt: skip
def test_torch_and_keras_arguments_are_told_ours(make, said):
    with pytest.raises(TypeError, match=said):
        make()


def iter_of_arrays():
    return (w for w in [np.zeros(2)])  # torch's model.parameters() is a generator


def test_told_names_followed_make_the_object():
    assert nb.optim.Adam(beta1=0.8, beta2=0.99).beta1 == 0.8
    assert Dense(n_in=2, n_out=3).n_out == 3 and Dropout(rate=0.2).rate == 0.2
    assert Conv2D(1, 4, 3, stride=2).stride == (2, 2)


def test_an_optimizer_of_ones_own_taking_a_list_first_keeps_it():
    class Scheduled(nb.optim.SGD):
        def __init__(self, rates, lr=0.1):
            super().__init__(lr)
            self.rates = rates

    assert Scheduled([0.1, 0.01]).rates == [0.1, 0.01]


def test_layers_given_one_by_one_are_told_to_make_a_list():
    with pytest.raises(TypeError, match=r"one list, not 3 arguments: put them in \[ \]"):
        nb.Sequential(Dense(2, 4), "tanh", Dense(4, 2))
    model = nb.Sequential([Dense(2, 4), "tanh", Dense(4, 2)], seed=0)  # as told
    assert len(model.layers) == 3


def test_fit_given_a_loader_of_batches_says_to_join_them():
    """fit(loader) was Python's "missing 1 required positional argument: 'y'"."""
    X, y = nb.datasets.make_moons(64, seed=0)
    model = nb.Sequential([Dense(2, 2)], seed=0)
    with pytest.raises(ValueError, match=r"X is a list of 2 \(x, y\) batches: .*join"):
        model.fit([(X[:32], y[:32]), (X[32:], y[32:])], loss="cross_entropy", optimizer="sgd")
    with pytest.raises(TypeError, match=r"y is None: give targets y"):
        model.fit(X, loss="cross_entropy", optimizer="sgd", verbose=0)


def test_a_layer_called_with_another_backends_array_is_refused():
    """conv(x) met array-api-strict's own words; dense(x) gave back a NumPy array from
    a strict model."""
    model = nb.Sequential([Conv2D(1, 2, 3), "flatten", Dense(18, 2)], backend="strict", seed=0)
    with pytest.raises(nb.BackendMismatchError, match=r"Conv2D's input is a numpy\.ndarray"):
        model.layers[0](np.ones((2, 1, 5, 5), "float32"))
    with pytest.raises(nb.BackendMismatchError, match=r"Dense's input is a numpy\.ndarray"):
        model.layers[2](np.ones((2, 18), "float32"))
    x = model.backend.asarray(np.ones((2, 18), "float32"))
    assert model.layers[2](x).shape == (2, 2)


def test_a_step_after_forward_without_backward_is_refused_after_an_earlier_backward(backend):
    """With a backward's gradients still there, loss.backward() alone stepped on the
    last batch's gradients at every step."""
    model = nb.Sequential([Dense(2, 4), "tanh", Dense(4, 2)], backend=backend, seed=0)
    loss, opt = nb.losses.SoftmaxCrossEntropy(), nb.optim.SGD(0.1)
    xb, yb = moons_batch(model)
    loss.forward(model.forward(xb), yb)
    model.backward(loss.backward())
    opt.step(model.params, model.grads)
    loss.forward(model.forward(xb), yb)
    loss.backward()
    with pytest.raises(RuntimeError, match=r"no model.backward: the gradients are the last step.s"):
        opt.step(model.params, model.grads)
    assert opt.iterations == 1
    own = {name: 0.5 * g for name, g in model.grads.items()}  # a step on one's own: taken
    opt.step(model.params, own)
    assert opt.iterations == 2


def test_a_look_through_model_call_between_backward_and_step_keeps_the_warning():
    """model(x) twice with a backward between: the step still follows an inference
    forward's backward."""
    model = nb.Sequential([Dense(2, 4), BatchNorm(4), Dense(4, 2)], seed=0)
    loss, opt = nb.losses.SoftmaxCrossEntropy(), nb.optim.SGD(0.1)
    xb, yb = moons_batch(model)
    loss.forward(model(xb), yb)
    model.backward(loss.backward())
    model(xb)
    with pytest.warns(UserWarning, match="BatchNorm ran as in inference"):
        opt.step(model.params, model.grads)


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (lambda: nb.Sequential([Dense(2, 4)], "strict"),
         r"one list of layers, the rest by name: got \('strict',\) .*backend='strict'"),
        (lambda: nb.optim.Adam(0.01, betas=0.9), r"Adam\(beta1=\.\.\., beta2=\.\.\.\)$"),
        (lambda: nb.optim.Adam(lr=0.01, betas=[0.8, 0.99]),
         r"Adam\(lr=0\.01, beta1=0\.8, beta2=0\.99\)$"),
        (lambda: nb.optim.SGD(nb.Sequential([Dense(2, 2)], seed=0).params, 0.5),
         r"nb\.optim\.SGD\(lr=0\.5\)"),
        (lambda: nb.optim.Adam(list(nb.Sequential([Dense(2, 2)], seed=0).params.values())),
         r"Adam is made without the weights"),
        (lambda: Conv2D(1, kernel_size=3, filters=8), r"Conv2D takes out_channels=, not filters="),
        (lambda: Dense(2, 3, p=0.5), r"unexpected keyword argument 'p'"),
    ],
)  # fmt: skip
def test_hints_say_what_was_given(make, said):
    with pytest.raises(TypeError, match=said):
        make()


def test_betas_to_an_optimizer_without_beta1_is_not_told_beta1():
    with pytest.raises(TypeError) as info:
        nb.optim.SGD(0.1, betas=(0.9, 0.99))
    assert "beta1" not in str(info.value)


def test_forwards_between_backward_and_step_let_the_step_through(backend64):
    """A numerical check of the gradient (training forwards of the same batch) between
    backward and step was refused as a step with no backward."""
    model = nb.Sequential([Dense(2, 3), "tanh", Dense(3, 2)], backend=backend64, seed=0)
    loss, opt = nb.losses.MSE(), nb.optim.SGD(0.1)
    xb = backend64.asarray(np.ones((4, 2)))
    yb = backend64.asarray(np.zeros((4, 2)))
    for _ in range(2):
        loss.forward(model.forward(xb), yb)
        model.backward(loss.backward())
        numerical = nb.gradcheck.numerical_gradient(
            lambda _: loss.forward(model.forward(xb), yb), model.params["0.W"]
        )
        np.testing.assert_allclose(
            nb.to_numpy(numerical), nb.to_numpy(model.grads["0.W"]), atol=1e-7
        )
        opt.step(model.params, model.grads)
    assert opt.iterations == 2


def test_a_sequential_with_a_backward_of_its_own_steps():
    class Mine(nb.Sequential):
        def backward(self, dy, input_grad=True):
            for layer in reversed(self.layers):
                dy = layer.backward(dy, input_grad=True)
            return dy

    model = Mine([Dense(2, 4), "tanh", Dense(4, 2)], seed=0)
    loss, opt = nb.losses.SoftmaxCrossEntropy(), nb.optim.SGD(0.1)
    xb, yb = moons_batch(model)
    for _ in range(2):
        loss.forward(model.forward(xb), yb)
        model.backward(loss.backward())
        opt.step(model.params, model.grads)
    assert opt.iterations == 2


@pytest.mark.parametrize(
    "call",
    ["Conv2D(3, 8, 3, strides=2)", "Dense(4, out_features=3)", "MaxPool2D(2, strides=2)",
     "Dense(in_features=4, out_features=3)", "Conv2D(3, 8, 3, use_bias=False)"],
)  # fmt: skip
def test_a_renamed_argument_hint_runs_as_written(call):
    """The hint wrote the renamed argument alone, Conv2D(stride=2), which lacked the rest."""
    names = {"Conv2D": Conv2D, "Dense": Dense, "MaxPool2D": MaxPool2D}
    with pytest.raises(TypeError) as info:
        eval(call, names)
    written = str(info.value).rsplit(": ", 1)[1]
    assert type(eval(written, names)).__name__ == call.split("(")[0]


def test_keras_filters_are_told_the_channels_it_lacks():
    with pytest.raises(
        TypeError, match=r"Conv2D\(in_channels=\.\.\., out_channels=32, kernel_size=3\)$"
    ):
        Conv2D(filters=32, kernel_size=3)


def test_a_backend_given_by_position_is_told_by_its_own_value():
    with pytest.raises(
        TypeError, match=r"nb\.Sequential\(\[\.\.\.\], backend='torch', dtype='float64'\)$"
    ):
        nb.Sequential([Dense(2, 2)], "torch", "float64")


def test_weights_given_to_adam_are_told_adams_own_default_rate():
    """The hint wrote lr=0.01, ten times Adam's (and torch's) default."""
    with pytest.raises(TypeError, match=r"nb\.optim\.Adam\(lr=0\.001\)"):
        nb.optim.Adam(nb.Sequential([Dense(2, 2)], seed=0).params)


@pytest.mark.parametrize("first", ["fit", "train_step"])
def test_loss_backward_alone_after_fit_or_train_step_is_refused(first):
    """The gradients fit and train_step stepped on were taken again, at every step."""
    X, y = nb.datasets.make_moons(64, seed=0)
    model = nb.Sequential([Dense(2, 4), "tanh", Dense(4, 2)], seed=0)
    loss, opt = nb.losses.SoftmaxCrossEntropy(), nb.optim.SGD(0.1)
    xb, yb = moons_batch(model)
    if first == "fit":
        model.fit(X, y, loss=loss, optimizer=opt, epochs=1, verbose=0)
    else:
        model.train_step(xb, yb, loss=loss, optimizer=opt)
    loss.forward(model.forward(xb), yb)
    loss.backward()
    with pytest.raises(RuntimeError, match="no model.backward"):
        opt.step(model.params, model.grads)
    model.backward(loss.backward())
    opt.step(model.params, model.grads)  # the loop as written: stepped


def test_uneven_list_of_x_batches_is_told_to_join_them():
    X, y = nb.datasets.make_moons(50, seed=0)
    model = nb.Sequential([Dense(2, 2)], seed=0)
    with pytest.raises(ValueError, match=r"the last one short\? Join them: np\.concatenate\(X\)"):
        model.fit([X[:32], X[32:]], [y[:32], y[32:]], loss="cross_entropy", optimizer="sgd",
                  verbose=0)  # fmt: skip


@pytest.mark.parametrize(
    ("call", "said"),
    [
        (lambda m, o: m.zero_grad(), r"'zero_grad' \(each backward writes the gradients afresh"),
        (lambda m, o: o.zero_grad(), r"'zero_grad' \(each backward writes the gradients afresh"),
        (lambda m, o: m.cleargrads(), "each backward writes the gradients afresh"),
        (lambda m, o: m.eval(), r"model.forward\(x, training=False\)"),
        (lambda m, o: m.train(), r"model.forward\(x, training=True\)"),
        (lambda m, o: m.parameters(), r"model.params is \{name: array\}"),
        # model.params, as it was told, is live: a snapshot of it restored nothing
        (lambda m, o: m.get_weights(), r"model.copy_params\(\) gives copies; model.params "),
        (lambda m, o: m.to_gpu(), r"model.to\('cupy'\)"),
        (lambda m, o: m.compile(loss="mse"), r"model.fit\(X, y, loss=\.\.\., optimizer=\.\.\.\)"),
        (lambda m, o: m.save("m.h5"), r"nb.save\(model, path\)"),
        (lambda m, o: m.load_weights("m.h5"), r"nb.restore\(model, path\)"),
        (lambda m, o: o.setup(m), r"optimizer.step\(model.params, model.grads\)"),
    ],
)
def test_other_libraries_methods_are_told_ours(call, said):
    """torch's zero_grad/eval/parameters, Keras's compile/save, Chainer's cleargrads,
    to_gpu and setup were "object has no attribute" alone."""
    model, opt = nb.Sequential([Dense(2, 2)], seed=0), nb.optim.Adam()
    with pytest.raises(AttributeError, match=said):
        call(model, opt)


def test_a_missing_attribute_keeps_pythons_suggestion_and_a_propertys_own_error():
    """The hints come from __getattr__: a typo still gets Python's "Did you mean", and a
    property whose body raised AttributeError is not reported as missing itself."""
    model = nb.Sequential([Dense(2, 2)], seed=0)
    with pytest.raises(AttributeError) as caught:
        model.parms  # noqa: B018
    assert (caught.value.name, caught.value.obj) == ("parms", model)  # what Python reads

    class Scaled(Dense):
        @property
        def scale(self):
            return self.gain * 2  # no gain: the property's own error

    layer = Scaled(2, 2)
    with pytest.raises(AttributeError, match="'gain'"):
        layer.scale  # noqa: B018


def test_a_base_class_propertys_own_error_is_said():
    """An optimizer of one's own whose __init__ forgot super().__init__: reading lr is
    told of '_lr', which the base's property reads, not that lr is missing."""

    class Forgot(nb.optim.SGD):
        def __init__(self, lr=0.1):
            pass

    with pytest.raises(AttributeError, match="'_lr'"):
        Forgot().lr  # noqa: B018


def test_the_other_libraries_names_leave_hasattr_false_and_a_subclasss_own_method():
    """The names are class attributes that raise: hasattr stays False (code that tells
    a torch module by hasattr(x, "parameters") is not fooled), a method of one's own wins."""
    model = nb.Sequential([Dense(2, 2)], seed=0)
    assert not hasattr(model, "parameters") and not hasattr(nb.optim.Adam(), "zero_grad")

    class WithTrain(nb.Sequential):
        def train(self):
            return "mine"

    assert WithTrain([Dense(2, 2)], seed=0).train() == "mine"
