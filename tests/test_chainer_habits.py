"""A model written as Chainer's and DeZero's users write one (a Sequential with its own
forward and backward), and their other habits: what fit, the checks and a save make of
them."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import nnbackend as nb
from nnbackend.layers import Dense
from nnbackend.testing import check_layer, check_loss, check_optimizer


class Negated(nb.Sequential):
    """The layers' outputs negated: forward and backward of its own, consistent."""

    def forward(self, x, training=True):
        return -super().forward(x, training)

    def backward(self, dy, input_grad=True):
        return super().backward(-dy, input_grad)


class Forgot(nb.Sequential):
    """A forward of its own whose backward is still the layers' chain: wrong gradients."""

    def forward(self, x, training=True):
        return -super().forward(x, training)


def moons():
    return nb.datasets.make_moons(64, noise=0.1, seed=0)


def test_fit_trains_what_a_subclass_s_forward_computes(backend):
    """fit ran the layers' chain, not the class's forward: 0.91 in its history, 0.09
    at evaluate, which runs the class's forward."""
    X, y = moons()
    model = Negated([Dense(2, 8), "tanh", Dense(8, 2)], seed=0, backend=backend)
    history = model.fit(X, y, loss="cross_entropy", optimizer=nb.optim.Adam(0.05), epochs=30,
                        batch_size=16, verbose=0)  # fmt: skip
    scored = model.evaluate(X, y)
    assert scored["accuracy"] > 0.85
    assert scored["accuracy"] == pytest.approx(history["accuracy"][-1], abs=0.1)


def test_check_gradients_checks_the_subclass_s_own_passes():
    """The check ran on a plain Sequential copy: a wrong backward passed at 4e-11."""
    X, y = moons()
    wrong = nb.gradcheck.check_gradients(Forgot([Dense(2, 4), "tanh", Dense(4, 2)], seed=0),
                                         "cross_entropy", X[:8], y[:8])  # fmt: skip
    assert max(wrong.values()) > 1e-3
    right = nb.gradcheck.check_gradients(Negated([Dense(2, 4), "tanh", Dense(4, 2)], seed=0),
                                         "cross_entropy", X[:8], y[:8])  # fmt: skip
    assert max(right.values()) < 1e-6


def test_a_copy_keeps_the_class_and_its_settings():
    model = Negated([Dense(2, 4)], seed=0)
    model.scale = 3.0
    twin = model.copy()
    assert type(twin) is Negated and twin.scale == 3.0


def test_saving_a_subclass_warns_that_it_loads_as_a_sequential(tmp_path):
    model = Negated([Dense(2, 4), "tanh", Dense(4, 2)], seed=0)
    with pytest.warns(
        UserWarning,
        match=r"Negated loads as a Sequential .*mine = Negated\(\.\.\.\); nb\.restore\(mine",
    ):
        nb.save(model, tmp_path / "n.h5")
    mine = Negated([Dense(2, 4), "tanh", Dense(4, 2)], seed=1)
    nb.restore(mine, tmp_path / "n.h5")  # as told: the weights in one of the class
    np.testing.assert_array_equal(nb.to_numpy(mine.params["0.W"]), nb.to_numpy(model.params["0.W"]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nb.save(nb.Sequential([Dense(2, 2)], seed=0), tmp_path / "plain.h5")


@pytest.mark.parametrize("given", [32, "numpy"])
def test_batches_take_a_backend_s_name_and_say_where_the_batch_size_goes(given):
    """An iterator's Batches(X, y, 32) and Batches(X, y, 'numpy') met AttributeError."""
    X, y = np.zeros((4, 2), np.float32), np.zeros(4, np.int64)
    if isinstance(given, str):
        assert len(list(nb.data.Batches(X, y, given, batch_size=2))) == 2
        return
    with pytest.raises(TypeError, match=r"not 32; the batch size goes by name, batch_size="):
        nb.data.Batches(X, y, given)


@pytest.mark.parametrize(
    ("check", "thing", "args"),
    [
        (check_layer, Dense(3, 2), ((5, 3),)),
        (check_loss, nb.losses.MSE(), ((4, 3), np.zeros((4, 3)))),
        (check_optimizer, nb.optim.SGD(0.1), (lambda w, g, s, t: w - 0.1 * g,)),
    ],
)
def test_the_checks_given_the_thing_itself_say_to_give_what_makes_it(check, thing, args):
    """Chainer's check_backward takes the link: here Layer.__call__'s missing x."""
    name = type(thing).__name__
    with pytest.raises(TypeError, match=rf"takes what makes the .*\(lambda: {name}\(\.\.\.\)"):
        check(thing, *args, backends=["numpy"])


@pytest.mark.parametrize(
    ("write", "said"),
    [
        (lambda p: np.savez(p, W=np.zeros(3)), "a zip file"),
        (lambda p: np.save(p, np.zeros(3)), "a NumPy .npy file"),
    ],
)
def test_a_file_of_another_format_is_named_for_what_it_is(tmp_path, write, said):
    """A NumPy .npz (Chainer's save_npz) was 'not a readable HDF5 file, or truncated'."""
    path = tmp_path / "weights.bin"
    with open(path, "wb") as f:
        write(f)
    with pytest.raises(nb.CheckpointError, match=rf"it is {said}.*, not HDF5") as info:
        nb.load(path)
    assert "truncated" not in str(info.value)


class Scaled(nb.Sequential):
    """A setting of its own kept private, set in an __init__ of its own."""

    def __init__(self, scale, **kwargs):
        super().__init__([Dense(2, 4), "tanh", Dense(4, 2)], **kwargs)
        self._scale = scale

    def forward(self, x, training=True):
        return super().forward(x, training) * self._scale

    def backward(self, dy, input_grad=True):
        return super().backward(dy * self._scale, input_grad)


class Links(nb.Sequential):
    """Chainer's own style: the layers held by name, run by name."""

    def __init__(self, **kwargs):
        self.l1, self.act, self.l2 = Dense(2, 4), nb.layers.Tanh(), Dense(4, 2)
        super().__init__([self.l1, self.act, self.l2], **kwargs)

    def forward(self, x, training=True):
        return self.l2.forward(self.act.forward(self.l1.forward(x, training), training), training)

    def backward(self, dy, input_grad=True):
        return self.l1.backward(self.act.backward(self.l2.backward(dy)), input_grad=input_grad)


class DyAlone(nb.Sequential):
    """DeZero's backward(self, gy): no input_grad."""

    def forward(self, x, training=True):
        return -super().forward(x, training)

    def backward(self, dy):
        return super().backward(-dy)


@pytest.mark.parametrize("make", [lambda: Scaled(2.0, seed=0), lambda: Links(seed=0)])
def test_a_copy_keeps_what_a_subclass_holds_and_the_check_runs(make):
    """copy() dropped a private setting (AttributeError in check_gradients) and gave a
    Links copy layers of its own outside its params (KeyError '0.W')."""
    X, y = moons()
    model = make()
    twin = model.copy()
    xb = model.backend.asarray(X[:8].astype(np.float32))
    np.testing.assert_array_equal(nb.to_numpy(twin.forward(xb, False)),
                                  nb.to_numpy(model.forward(xb, False)))  # fmt: skip
    if isinstance(model, Links):
        assert twin.l1 is twin.layers[0] and twin.l2 is twin.layers[2]
    assert max(nb.gradcheck.check_gradients(model, "cross_entropy", X[:8], y[:8]).values()) < 1e-6


def test_fit_runs_a_subclass_backward_that_takes_dy_alone():
    """fit called backward(dy, False): Python's 'takes 2 positional arguments'."""
    X, y = moons()
    model = DyAlone([Dense(2, 8), "tanh", Dense(8, 2)], seed=0)
    model.fit(X, y, loss="cross_entropy", optimizer=nb.optim.Adam(0.05), epochs=30,
              batch_size=16, verbose=0)  # fmt: skip
    assert model.evaluate(X, y)["accuracy"] > 0.85


def test_an_optimizer_of_ones_own_given_weights_is_not_told_nb_optim():
    class MyOpt(nb.optim.SGD):
        pass

    with pytest.raises(TypeError, match=r"\): MyOpt\(lr=0\.01\), then opt\.step") as info:
        MyOpt(nb.Sequential([Dense(2, 2)], seed=0).params)
    assert "nb.optim.MyOpt" not in str(info.value)


def test_fit_runs_a_backward_of_one_s_own_alone():
    """Mutation run: a class writing backward alone (or forward alone) held no test."""

    class Frozen(nb.Sequential):
        def backward(self, dy, input_grad=True):
            return super().backward(dy * 0, input_grad)

    X, y = moons()
    model = Frozen([Dense(2, 2)], seed=0)
    before = nb.to_numpy(model.params["0.W"]).copy()
    model.fit(X, y, loss="cross_entropy", optimizer=nb.optim.SGD(0.5), epochs=2, verbose=0)
    np.testing.assert_array_equal(nb.to_numpy(model.params["0.W"]), before)


def test_fit_runs_a_forward_of_one_s_own_alone():
    calls = []

    class Counted(nb.Sequential):
        def forward(self, x, training=True):
            calls.append(training)
            return super().forward(x, training)

    X, y = moons()
    model = Counted([Dense(2, 2)], seed=0)
    model.fit(X[:32], y[:32], loss="cross_entropy", optimizer="sgd", batch_size=8, verbose=0)
    assert calls.count(True) == 4


def test_copy_does_not_share_a_subclass_s_mutable_settings():
    class Tagged(nb.Sequential):
        pass

    model = Tagged([Dense(2, 2)], seed=0)
    model.notes = []
    model.copy().notes.append(1)
    assert model.notes == []


def test_batches_take_the_backend_named():
    X, y = np.zeros((4, 2), np.float32), np.zeros(4, np.int64)
    assert nb.data.Batches(X, y, "strict", batch_size=2).backend == nb.get_backend("strict")


def test_a_pickle_given_as_a_checkpoint_is_named_and_only_the_first_bytes_tell(tmp_path):
    import pickle

    pickled, other = tmp_path / "w.pkl", tmp_path / "w.gif"
    pickled.write_bytes(pickle.dumps({"W": np.zeros(3)}))
    other.write_bytes(b"GIF89a\x80\x00" + bytes(100))
    with pytest.raises(nb.CheckpointError, match="it is a Python pickle, not HDF5"):
        nb.load(pickled)
    with pytest.raises(nb.CheckpointError, match="not a readable HDF5 file"):
        nb.load(other)


@pytest.mark.parametrize("lr", [False, True])
def test_a_flag_for_a_rate_is_refused_not_taken_for_a_spent_one(lr):
    with pytest.raises(ValueError, match="learning rate must be a real number"):
        nb.optim.SGD.from_config({"type": "SGD", "lr": lr})


def test_each_class_of_one_s_own_is_warned_of_at_its_save(tmp_path):
    class One(nb.Sequential):
        pass

    class Two(nb.Sequential):
        pass

    for cls in (One, Two):
        with pytest.warns(UserWarning, match=rf"{cls.__name__} loads as a Sequential"):
            nb.save(cls([Dense(2, 2)], seed=0), tmp_path / f"{cls.__name__}.h5")


def test_a_subclass_that_changes_nothing_trains_bit_for_bit_as_the_plain_model(backend):
    """Its own passes run the same arithmetic as the layers' chain: fit's flat step and
    l2 included."""

    class Same(nb.Sequential):
        def forward(self, x, training=True):
            return super().forward(x, training)

        def backward(self, dy, input_grad=True):
            return super().backward(dy, input_grad)

    X, y = moons()
    weights = []
    for cls in (nb.Sequential, Same):
        model = cls([Dense(2, 16), "tanh", Dense(16, 2)], seed=0, backend=backend)
        model.fit(X, y, loss="cross_entropy", optimizer="adam", epochs=3, verbose=0, l2=0.01)
        weights.append(nb.to_numpy(model.params["0.W"]))
    np.testing.assert_array_equal(*weights)


class OwnLoop(nb.Sequential):
    """A backward walking the layers itself, not through Sequential.backward."""

    def backward(self, dy, input_grad=True):
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
        return dy


def hand_step(model, loss, opt, with_backward=True):
    xb, yb = next(iter(nb.data.Batches(*moons(), model.backend, batch_size=32, rng=model.rng)))
    loss.forward(model.forward(xb), yb)
    dy = loss.backward()
    if with_backward:
        model.backward(dy)
    opt.step(model.params, model.grads)


def test_after_fit_a_subclass_s_hand_loop_is_checked_as_a_plain_one_s():
    """After fit, a correct hand step of a model walking its own layers was refused for
    good, and Negated's torch-style step (no backward) was taken."""
    loss, opt = nb.losses.SoftmaxCrossEntropy(), nb.optim.SGD(0.1)
    own = OwnLoop([Dense(2, 4), "tanh", Dense(4, 2)], seed=0)
    own.fit(*moons(), loss=loss, optimizer=opt, epochs=1, verbose=0)
    hand_step(own, loss, opt)  # taken
    negated = Negated([Dense(2, 4), "tanh", Dense(4, 2)], seed=0)
    negated.fit(*moons(), loss=loss, optimizer=opt, epochs=1, verbose=0)
    with pytest.raises(RuntimeError, match="no model.backward"):
        hand_step(negated, loss, opt, with_backward=False)
    hand_step(negated, loss, opt)


@pytest.mark.parametrize("earlier", [False, True])
def test_a_second_optimizer_after_train_step_does_not_hang_on_an_older_forward(earlier):
    model = nb.Sequential([Dense(2, 4), "tanh", Dense(4, 2)], seed=0)
    xb, yb = next(iter(nb.data.Batches(*moons(), model.backend, batch_size=32, rng=model.rng)))
    if earlier:
        model.forward(xb)
    model.train_step(xb, yb, "cross_entropy", nb.optim.SGD(0.1))
    second = nb.optim.SGD(0.1)
    second.step(model.params, model.grads)
    assert second.iterations == 1


def test_a_copy_shares_what_cannot_be_copied_and_keeps_the_layers_held_by_name():
    import queue
    import threading

    class Held(nb.Sequential):
        def __init__(self):
            super().__init__([Dense(2, 4), "tanh", Dense(4, 2)], seed=0)
            self.l1, self.events, self.lock = self.layers[0], queue.Queue(), threading.Lock()

    model = Held()
    twin = model.copy()
    assert twin.l1 is twin.layers[0] and twin.lock is model.lock


def test_a_forward_without_training_is_told_at_the_class():
    """DeZero's forward(self, x) met Python's words at fit, predict and the checks."""
    with pytest.raises(TypeError, match=r"Net\.forward takes no training=.*forward\(self, x, trai"):

        class Net(nb.Sequential):
            def forward(self, x):
                return super().forward(x)


def test_the_betas_hint_leaves_out_what_the_optimizer_does_not_take():
    with pytest.raises(TypeError) as info:
        nb.optim.Adam(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)
    said = str(info.value)
    assert said.endswith("Adam(lr=0.01, beta1=0.8, beta2=0.99); weight_decay is fit(..., l2=0.1)")


def test_a_file_opening_with_0x80_alone_is_no_pickle(tmp_path):
    path = tmp_path / "d.h5"
    path.write_bytes(b"\x80\x00garbage" + bytes(64))
    with pytest.raises(nb.CheckpointError, match="not a readable HDF5 file"):
        nb.load(path)


def test_a_forward_taking_training_by_name_alone_trains_and_predicts():
    """fit and predict passed training by position: a keyword-only one met Python's words."""

    class KwOnly(nb.Sequential):
        def forward(self, x, *, training=True):
            return nb.Sequential.forward(self, x, training)

    X, y = moons()
    model = KwOnly([Dense(2, 4), "tanh", Dense(4, 2)], seed=0)
    model.fit(X, y, loss="cross_entropy", optimizer="sgd", verbose=0)
    assert model.predict(X).shape == (64,)


def test_a_copy_maps_the_layers_in_a_container_that_also_holds_a_lock():
    """The shallow fallback left the twin's dict naming the original model's layer."""
    import threading

    class Held(nb.Sequential):
        def __init__(self):
            super().__init__([Dense(2, 4), "tanh", Dense(4, 2)], seed=0)
            self.parts = {"l1": self.layers[0], "lock": threading.Lock()}

    model = Held()
    twin = model.copy()
    assert twin.parts["l1"] is twin.layers[0] and twin.parts["lock"] is model.parts["lock"]


def test_the_hint_for_another_library_s_name_is_a_call_that_works():
    """Following it met the next refusal (betas=, weight_decay=) before the call ran."""
    with pytest.raises(TypeError) as info:
        nb.optim.Adam(lr=0.001, betas=(0.9, 0.999), epsilon=1e-7, weight_decay=1e-4)
    call, *notes = str(info.value).rsplit(": ", 1)[1].split("; ")
    assert notes == ["weight_decay is fit(..., l2=0.0001)"]
    made = eval("nb.optim." + call)
    assert (made.beta1, made.beta2, made.eps) == (0.9, 0.999, 1e-7)


def test_the_save_warning_s_way_back_gives_the_model_its_loss(tmp_path):
    model = DyAlone([Dense(2, 4), "tanh", Dense(4, 2)], seed=0)
    model.fit(*moons(), loss="cross_entropy", optimizer="sgd", verbose=0)
    with pytest.warns(UserWarning, match=r"mine\.loss = nb\.load\(path\)\.loss"):
        nb.save(model, tmp_path / "m.h5")
    mine = DyAlone([Dense(2, 4), "tanh", Dense(4, 2)], seed=1)
    path = tmp_path / "m.h5"
    nb.restore(mine, path)
    mine.loss = nb.load(path).loss  # as told
    np.testing.assert_array_equal(mine.predict_proba(moons()[0]), model.predict_proba(moons()[0]))


def test_a_copy_rebuilds_containers_in_their_type_and_maps_the_model():
    """Rebuilt after deepcopy refused a lock: a namedtuple crashed, a defaultdict came
    back a dict, one dict held twice became two, and the model itself stayed the original."""
    import collections
    import threading

    Pair = collections.namedtuple("Pair", "lock layer")

    class Keeps(nb.Sequential):
        def __init__(self):
            super().__init__([Dense(2, 3), Dense(3, 1)], seed=0)
            self.guard = Pair(threading.Lock(), self.layers[0])
            self.locks = collections.defaultdict(threading.Lock)
            self.shared = {"lock": threading.Lock()}
            self.shared2 = self.shared
            self.watch = {"model": self, "lock": threading.Lock()}

    twin = Keeps().copy()
    assert type(twin.guard) is Pair and twin.guard.layer is twin.layers[0]
    assert type(twin.locks) is collections.defaultdict and twin.locks["new"] is not None
    assert twin.shared is twin.shared2 and twin.watch["model"] is twin


def test_positional_only_flags_are_taken_or_told():
    """fit and predict pass training and input_grad by name now: a backward taking its
    flag by position alone is called so; a forward taking it so is refused at the class."""

    class PosBack(nb.Sequential):
        def backward(self, dy, input_grad=True, /):
            return super().backward(dy, input_grad)

    model = PosBack([Dense(2, 2)], seed=0)
    model.fit(*moons(), loss="cross_entropy", optimizer="sgd", verbose=0)
    with pytest.raises(TypeError, match=r"PosFwd\.forward takes no training="):

        class PosFwd(nb.Sequential):
            def forward(self, x, training=True, /):
                return super().forward(x, training)


@pytest.mark.parametrize(("kind", "extra"), [("Momentum", {}), ("Nesterov", {"nesterov": True})])
def test_keras_sgd_with_momentum_is_told_the_class_with_it_at_once(kind, extra):
    """The learning_rate= hint kept momentum=, which SGD then refused: two steps."""
    with pytest.raises(TypeError, match=rf"nb\.optim\.{kind}\(lr=0\.1, momentum=0\.9\)"):
        nb.optim.SGD(learning_rate=0.1, momentum=0.9, **extra)

    class Heavy(nb.optim.SGD):  # one's own that takes momentum keeps it
        def __init__(self, lr=0.01, momentum=0.0):
            super().__init__(lr)
            self.momentum = momentum

    assert Heavy(0.1, momentum=0.9).momentum == 0.9


def test_the_save_warning_binds_the_model_it_names(tmp_path):
    class Bound(nb.Sequential):  # a class of its own: each is warned of once a process
        pass

    with pytest.warns(UserWarning, match=r"mine = Bound\(\.\.\.\); nb\.restore\(mine, path\)"):
        nb.save(Bound([Dense(2, 2)], seed=0), tmp_path / "m.h5")


@pytest.mark.parametrize(
    "make",
    [
        lambda: Dense(4, 4),
        lambda: nb.layers.ReLU(),
        lambda: nb.layers.BatchNorm(4),
        lambda: nb.layers.Flatten(),
    ],
)
def test_a_lone_layer_backward_before_its_forward_says_to_call_forward(backend, make):
    """DeZero's layers are used alone; here a backward with no forward before it was
    "'NoneType' object has no attribute 'xp'" (an unbuilt Dense or BatchNorm) or
    "no attribute '_x'" with no word of forward."""
    layer = make()
    dy = backend.asarray(np.ones((2, 4)))
    with pytest.raises(AttributeError, match=r"call forward\(x\) first"):
        layer.backward(dy)
    nb.Sequential([layer], backend=backend, seed=0)  # built as a model builds it
    with pytest.raises(AttributeError, match=r"call forward\(x\) first"):
        layer.backward(dy)
    layer.forward(backend.asarray(np.ones((2, 4))))  # as told: then backward runs
    assert layer.backward(dy).shape == (2, 4)
    with pytest.raises(AttributeError, match=r"has no attribute 'wieghts'$"):
        getattr(layer, "wieghts")  # noqa: B009  (a public name mistyped: the plain error)


def test_a_typo_in_a_layers_backward_keeps_pythons_error():
    """Only what the class's own code keeps is said to be forward's: a misspelt name in
    a backward is Python's plain error, not "call forward(x) first"."""

    class Double(nb.layers.Layer):
        def forward(self, x, training=True):
            self._x = x
            return 2 * x

        def backward(self, dy, input_grad=True):
            return dy * self._factr

    layer = Double()
    layer.forward(np.ones((2, 3)))
    with pytest.raises(AttributeError, match=r"has no attribute '_factr'$"):
        layer.backward(np.ones((2, 3)))


class KeepsALog(nb.Sequential):
    """A model of one's own holding one list under two names."""

    def __init__(self, layers, **kwargs):
        super().__init__(layers, **kwargs)
        self.history_log = []
        self.same_log = self.history_log


def test_a_subclass_copy_keeps_what_two_attributes_share_and_takes_the_new_dtype():
    """The copy made two lists of the one; copy(dtype=) kept the float32 backend."""
    model = KeepsALog([Dense(2, 1)], seed=0)
    twin = model.copy()
    assert twin.same_log is twin.history_log and twin.history_log is not model.history_log
    wide = model.copy(dtype="float64")
    assert wide.backend.dtype_name == "float64"
    assert wide(wide.backend.asarray(np.ones((1, 2)))).dtype == wide.params["0.W"].dtype


def test_a_layers_missing_attribute_hint_is_worked_out_only_when_read(monkeypatch):
    """Reading the class's code for the hint took 12 ms a layer: every fit's
    getattr(layer, "_owner", None) paid it (a 3-epoch fit went from 4 to 23 ms)."""
    from nnbackend.layers import base

    read = []
    real = base.sets_attribute
    monkeypatch.setattr(base, "sets_attribute", lambda *args: read.append(args) or real(*args))
    layer = Dense(2, 2)
    assert getattr(layer, "_x", None) is None and getattr(layer, "_owner", None) is None
    assert read == []
    with pytest.raises(AttributeError, match=r"call forward\(x\) first"):
        layer.backward(np.ones((1, 2)))
    assert read == [(layer, "_x")]


def test_a_missing_attribute_error_keeps_its_message_through_pickle():
    """The hint is worked out when read: a pool's worker sent "'NoneType' object has no
    attribute None", or failed to pickle a layer's, and its repr was empty."""
    import pickle

    with pytest.raises(AttributeError) as layer_error:
        nb.layers.ReLU().backward(np.ones(3))
    with pytest.raises(AttributeError) as model_error:
        nb.Sequential([Dense(2, 3)], seed=0).eval()
    for error in (layer_error.value, model_error.value):
        again = pickle.loads(pickle.dumps(error))
        assert str(again) == str(error) and "forward" in str(error) + str(model_error.value)
        assert repr(error) == f"AttributeError({str(error)!r})"
