"""``Sequential``: layers in a chain, with fit/predict/evaluate around them.

    model = nb.Sequential([Dense(2, 3), "tanh", Dense(3, 2)], seed=0)
    history = model.fit(X, y, loss="cross_entropy", optimizer="sgd", epochs=100)
    model.predict(X)                # class labels: host NumPy for host X

The model lives on the backend it was built on (``backend=``, else the current one), in
its float dtype (``dtype="float64"``, else the backend's); ``model.to("cupy")`` moves
it. ``forward``/``backward`` take arrays of that backend only; ``fit``/``predict``/
``evaluate`` host data too (NumPy arrays, lists), and give back what they got: host
NumPy for host data (as scikit-learn does), else the backend's arrays (no copy back).
"""

from __future__ import annotations

import inspect
import math

from nnbackend import kept, prediction, steps, training
from nnbackend import layers as layer_types
from nnbackend.backend import Generator, as_generator, get_backend
from nnbackend.backend.arrays import carried
from nnbackend.backend.core import detached
from nnbackend.backend.kernels import table
from nnbackend.checks import boolean, check_input_gradient, check_output_gradient, own_array
from nnbackend.fit_options import check_option_names, step_arguments
from nnbackend.flat import release, thaw, unbind
from nnbackend.history import History
from nnbackend.kept import fitting, forward_missed, own_attributes, own_copy, passing
from nnbackend.layers.base import (
    build_layer,
    check_all_built,
    claim,
    layer_list,
    never_built,
    unbuilt_copy,
)
from nnbackend.losses import L2, LossSlot
from nnbackend.optim_base import Optimizer
from nnbackend.registry import MODELS, register
from nnbackend.shapes import chain_shapes, check_model_input, sample_shape, summary_text
from nnbackend.spellings import MODEL_METHODS, MODEL_SETTINGS, others_told
from nnbackend.views import ArrayView


@register
@others_told(MODEL_METHODS, MODEL_SETTINGS)  # torch's zero_grad(), Keras's compile(): told ours
class Sequential:
    """Layers applied in order. Parameters are named ``"<layer index>.<name>"``.

    ``layers``: Layer objects, or the names of activations ("relu", "tanh", ...:
    ``nb.layers.get``); one at least. ``backend``: a name or a Backend (default: the
    current one); ``dtype``: "float32" or "float64" (default: the backend's); ``seed``
    draws the initial weights and, later, the shuffling order.

    Attributes: ``layers`` (the list, ``model.layers[1]``), ``backend`` (its ``xp`` and
    ``asarray``), ``rng`` (the generator of the weights and the shuffling), and, from
    the last ``fit``, ``loss``, ``optimizer`` and ``metrics``; a callback sets
    ``stop_training = True`` to end a fit after the epoch.
    """

    loss = LossSlot()  # a name set by hand becomes its Loss
    registry = MODELS

    def __init_subclass__(cls, **kwargs):  # a model of one's own: forward as fit calls it
        super().__init_subclass__(**kwargs)
        taken = inspect.signature(cls.forward).parameters
        flag, anything = taken.get("training"), any(p.kind is p.VAR_KEYWORD for p in taken.values())
        if (flag.kind is flag.POSITIONAL_ONLY) if flag is not None else not anything:
            raise TypeError(
                f"{cls.__name__}.forward takes no training=, which fit, predict, evaluate "
                "and the checks pass it (Dropout and BatchNorm act by it): write "
                "forward(self, x, training=True)"
            )

    def __init__(
        self,
        layers,
        *more_layers,
        backend=None,
        dtype: str | None = None,
        seed: int | Generator | None = None,
        input_shape: tuple[int, ...] | None = None,
        build: bool = True,
    ):
        """``build=False`` draws no weights: the layers get the backend only, and their
        ``params`` stay empty until filled (how ``nb.load`` builds a model) or drawn by
        the first fit or train_step."""
        build = boolean(build, "build")  # "no" would be true
        self.layers = layer_list(layers, more_layers)
        claim(self.layers, self)
        if not self.layers:
            raise ValueError(
                "Sequential got no layers: a model needs at least one, e.g. "
                "nb.Sequential([Dense(2, 16), 'tanh', Dense(16, 2)])"
            )
        self.backend = get_backend(backend, dtype=dtype)
        self.rng = as_generator(seed)
        self.optimizer = None
        self.metrics = None
        self.stop_training = False
        self._flat = None  # the weights' and gradients' one buffer each (nnbackend.flat)
        self._views = {kind: ArrayView(self, kind) for kind in ("params", "grads", "state")}
        self._given_shape = None if input_shape is None else sample_shape(input_shape)
        chain_shapes(self.layers, self._given_shape)  # checked before any weight is drawn
        for layer in self.layers:
            if build:
                build_layer(layer, self.backend, self.rng)
            else:
                layer.backend = self.backend

    # --- parameters -----------------------------------------------------------

    @property
    def params(self) -> ArrayView:
        """name -> weight array, assignable: ``model.params["0.W"] = new``."""
        return self._views["params"]

    @property
    def grads(self) -> ArrayView:
        """name -> gradient array, filled by ``backward``."""
        return self._views["grads"]

    @property
    def state(self) -> ArrayView:
        """name -> running-state array of layers that keep one (saved with the weights)."""
        return self._views["state"]

    def decayed_names(self) -> list[str]:
        """The names of the weights that L2 decay applies to (not biases)."""
        return [f"{i}.{k}" for i, layer in enumerate(self.layers) for k in layer.decayed]

    def copy_params(self) -> dict:
        """name -> a copy of that weight (its shape, dtype and backend), for ``set_params``."""
        xp = self.backend.xp
        return {name: xp.asarray(a, copy=True) for name, a in self.params.items()}

    def set_params(self, values) -> None:
        """``model.params[name] = array`` for each of ``values``: same shape, dtype,
        backend. All or none: a refused value leaves every weight as it was."""
        self.params.assign(values)

    def count_params(self) -> int:
        """How many weights the layers hold: the sum of every params array's size."""
        return sum(math.prod(a.shape) for a in self.params.values())

    # --- shapes ---------------------------------------------------------------

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        """The shape of one input sample: ``input_shape=`` as given, else what the first
        layer takes (a Dense: (n_in,)), else None (unknown until data comes)."""
        if self._given_shape is not None:
            return self._given_shape
        return self.layers[0].input_shape if self.layers else None

    @property
    def output_shape(self) -> tuple[int, ...] | None:
        """The shape of one output sample, where the chain's shapes are known (now)."""
        shapes = chain_shapes(self.layers, self._given_shape)
        return shapes[-1] if shapes else self.input_shape

    @property
    def n_inputs(self) -> int | None:
        """Features per sample, for models that take rows (None for images)."""
        shape = self.input_shape
        return shape[0] if shape is not None and len(shape) == 1 else None

    @property
    def n_outputs(self) -> int | None:
        """Outputs per sample, where the last layer gives rows (None for images)."""
        shape = self.output_shape
        return shape[0] if shape is not None and len(shape) == 1 else None

    # --- forward and backward -------------------------------------------------

    def forward(self, x, training: bool = True):
        """(batch, *input_shape) -> (batch, *output_shape): raw outputs (logits, if the loss
        takes them). ``training`` reaches every layer: BatchNorm and Dropout behave as in
        training only when it is True."""
        check_model_input(self.backend, self._given_shape, x)
        if training:  # a hand loop's step updates in place what torch's inference mode made
            thaw(self)
        out = self._through_layers(detached(x), training)
        self._out_like = (tuple(out.shape), out.dtype, training)  # for backward and step
        return out

    def _through_layers(self, x, training: bool):
        """``forward`` without the input check: for the steps of a ``fit``, whose
        batches were checked once, as a whole. Where the kernel table fuses a Dense layer
        with the activation after it, the two run as one call (``forward_activated``)."""
        fusing = table(self.backend.xp).dense_act is not None
        layers, i, last = self.layers, 0, len(self.layers) - 1
        self._in_shapes = shapes = []  # each layer's input's: its dL/dx's in backward
        while i <= last:
            layer = layers[i]
            shapes.append(own_array(x, layers, i, self.backend).shape)
            fuses = fusing and i < last and layer._fused_forward
            both = layer.forward_activated(x, layers[i + 1]) if fuses else None
            if both is not None:
                shapes.append(both.shape)  # the activation's input, Dense's output
                x, i = both, i + 2
            elif layer.stochastic:  # draws from the model's generator (Dropout)
                x, i = layer.forward(x, training, rng=self.rng), i + 1
            else:
                x, i = layer.forward(x, training), i + 1
        return own_array(x, layers, i, self.backend)

    def __call__(self, x):
        """Inference, ``forward(x, training=False)``; a training step calls ``forward(x)``."""
        with passing(self):  # not while another thread fits it, nor a fit meanwhile
            return self.forward(x, training=False)

    def backward(self, dy, input_grad: bool = True):
        """dL/d(output) (the last ``forward``'s output shape) -> dL/d(input), filling each
        layer's grads (None: input_grad=False)."""
        out_like = getattr(self, "_out_like", None)
        check_output_gradient(dy, out_like, self.backend)
        if len({id(layer) for layer in self.layers}) < len(self.layers):
            claim(self.layers, self)  # raises: model.layers[4] = model.layers[2], say
        self._backward_of = out_like  # the forward a step follows (checks._check_loop_order)
        return self._backward(dy, input_grad)

    def _backward(self, dy, input_grad: bool):
        """``backward`` for fit's steps, whose dy is the loss's (no forward set its shape)."""
        shapes = getattr(self, "_in_shapes", ())
        try:
            for i in range(len(self.layers) - 1, -1, -1):
                dy = self.layers[i].backward(dy, input_grad=input_grad or i > 0)
                check_input_gradient(self.layers[i], i, dy, shapes)
        except AttributeError as exc:
            forward_missed(exc)  # raises the clearer error where a forward did not run
            raise
        return dy

    def predict_proba(self, X, batch_size: int | None = None):
        """Probabilities (batch, outputs): the loss's link (softmax, sigmoid) applied to
        the outputs, or the outputs as they are where the last layer gives [0, 1] (a
        Sigmoid or a Softmax). A model that ``fit`` did not train has no loss to say
        which link its raw scores take: set ``model.loss`` to the one it was trained
        with, or this raises ValueError. Host data in, host NumPy out; the backend's
        arrays in, its arrays out. X holding NaN or inf raises ValueError: such a row has
        no meaningful answer."""
        return prediction.probabilities(self, X, batch_size)

    def predict(self, X, batch_size: int | None = None):
        """Class labels (batch,) int64: argmax of the outputs, or output > 0.5 for one
        output (for each, under binary cross-entropy: multi-label); under MSE the outputs
        unless the last layer gives [0, 1]. With no loss (a model that ``fit`` did not
        train), several outputs still give their argmax, but one raw output has no
        threshold (0 for a logit, 0.5 for a probability) and raises ValueError, as
        ``predict_proba`` does. Host data in, host NumPy out; the backend's arrays in, its
        arrays out. X with NaN or inf raises ValueError, naming one."""
        return prediction.labels(self, X, batch_size)

    def evaluate(
        self, X, y=None, loss=None, batch_size: int | None = None, metrics=None
    ) -> dict[str, float]:
        """Loss and metrics on (X, y), as Python floats (one host transfer). ``loss`` and
        ``metrics`` (names or objects) default to those of the last ``fit``."""
        check_all_built(self)
        with passing(self):  # not while another thread fits it, nor a fit meanwhile
            return training.evaluate(self, X, y, loss, batch_size, metrics)

    # --- training -------------------------------------------------------------

    def train_step(self, xb, yb, loss, optimizer, l2: L2 | float | None = None):
        """One step: forward, loss, backward, update; returns (loss value, outputs) on
        device. The gradients it leaves in ``model.grads`` may be written over by the next
        ``train_step`` or ``fit`` (views into one buffer): copy them to keep them."""
        check_model_input(self.backend, self._given_shape, xb)
        loss, l2 = step_arguments(loss, optimizer, l2)  # "cross_entropy", l2=0.01
        claim(self.layers, self, build_new=True)  # one put in by model.layers[i] = ...
        optimizer.follow_layers(self)
        try:
            return self.step_function(loss, optimizer, l2)(xb, yb)
        finally:  # a backward of the user's own makes new gradient arrays
            release(self)

    def step_function(self, loss, optimizer, l2: L2 | None = None, flat: bool = True):
        """``train_step`` as a function of (xb, yb), for one ``fit``'s steps
        (``nnbackend.steps``). A subclass's own ``forward`` and ``backward`` run there."""
        base, cls = Sequential, type(self)
        own = cls.forward is not base.forward or cls.backward is not base.backward
        return steps.step_function(self, loss, optimizer, l2, flat, own)

    def fit(self, X, y=None, *, loss, optimizer, **options) -> History:
        """Train ``epochs`` epochs, numbered from 0 at each call (with ``resume=True``, on
        from the epoch a checkpoint saved up to ``epochs``); returns their History.

        ``X``, ``y``: host data (NumPy arrays, lists) or arrays of the model's backend. ``loss``: a
        Loss or its name ("cross_entropy", "bce", "mse", ...); ``optimizer``: an Optimizer or its
        name ("sgd", "adam", ...; default learning rate). Options: ``epochs=1``; ``batch_size=32``
        (``None``: full-batch gradient descent); ``shuffle=True``; ``validation_data=(X, y)`` or
        ``validation_split``: the last fraction of (X, y) held out, scored ``validation_batch_size``
        rows at a time (default: ``batch_size``); ``l2``: adds ``l2/2 * sum(W**2)`` of the weights
        to each step's loss; ``metrics``: names or objects ("accuracy", "mse", "mae"; default:
        accuracy when the loss classifies). The history's "loss" and metrics are the steps' own (per
        sample, training mode, the penalty in), its "val_*" (and ``evaluate``) the epoch's last
        weights' (inference, no penalty); ``callbacks``; ``verbose``: 0 silent, 1 a line per logged
        epoch and, on a terminal, a progress bar, 2 the lines only; ``log_every``: metrics come to
        the host every that many epochs (default: every ceil(epochs / 20)); ``seed`` reseeds the
        shuffling generator; ``checkpoint``: a path saved to at every log and at the end, and with
        ``resume=True`` a fit starts from the epoch after the one saved there (weights, optimizer
        state and settings, shuffling order, callbacks' state; a run that EarlyStopping ended trains
        no more); ``on_device``: True, False or "auto" (keep the whole set on the device when it
        fits); ``distributed=True``: under mpiexec, the ranks train this model together, data
        parallel (``nnbackend.distributed``); ``compile=True`` (torch backends) captures the step:
        on torch:cuda it records the step once as a CUDA graph and replays it, with any built-in
        optimizer, schedule and layer (``nnbackend.backend.replay``), and elsewhere (or where the
        step is known not to replay) it uses ``torch.compile``, whose first steps take the time to
        compile; a step found not to replay after the first goes on eagerly, with a warning.
        ``compile="cuda-graph"`` asks for the graph alone, and a torch.compile backend's name
        (``"inductor"``, ``"aot_eager"``) for that one.
        """
        check_option_names(options, training.fit, optimizer)  # lr=, epoch=: Python's says less
        with fitting(self):  # from the start (training.fit's own comes after its checks)
            return training.fit(self, X, y, loss=loss, optimizer=optimizer, **options)

    # --- moving and describing ------------------------------------------------

    def to(self, backend, dtype: str | None = None, optimizer=None) -> Sequential:
        """Move the weights, state and optimizer state to ``backend`` (through the host),
        in ``dtype`` (default: a Backend's own, else this model's). Returns the model."""
        if optimizer is not None and not isinstance(optimizer, Optimizer):
            raise TypeError(f"to(optimizer=) takes the Optimizer that trains it, not {optimizer!r}")
        kept.check_not_fitting(self)
        backend = self.backend.moved_to(backend, dtype)
        unbind(self)
        for layer in self.layers:
            for store in (layer.params, layer.state):
                for name, a in store.items():
                    store[name] = carried(a, backend)
            layer.grads.clear()
            layer.backend = backend
        self.backend, self._out_like = backend, None  # the last output was the old backend's
        for opt in {id(o): o for o in (optimizer, self.optimizer) if o is not None}.values():
            opt.to(backend)
        return self

    def __getstate__(self) -> dict:
        claim(self.layers, self)  # a layer in two places would pickle, and load as an error
        return self.__dict__

    def __setstate__(self, state: dict) -> None:
        """An unpickled or deep-copied model: its layers' marks of whose they are were
        not copied with them."""
        self.__dict__.update(state)
        claim(self.layers, self)

    def copy(self, backend=None, dtype: str | None = None) -> Sequential:
        """An independent copy on ``backend`` in ``dtype`` (default: this model's; a Backend
        object brings its own dtype): the same layers (copied, so unregistered ones too) with
        copies of the weights, running state, loss and metrics (``kept.own_copy``), and a
        generator in this one's state (it shuffles and drops as this model would), of this
        model's class, with what a subclass keeps of its own. No optimizer."""
        backend = self.backend.moved_to(self.backend if backend is None else backend, dtype)
        layers = [unbuilt_copy(layer) for layer in self.layers]
        twin = Sequential(layers, backend=backend, input_shape=self._given_shape, build=False)
        for mine, theirs in zip(self.layers, layers, strict=True):
            if not never_built(mine):  # one not built is drawn at the twin's first fit, from
                build_layer(theirs, backend, twin.rng)  # its generator in this one's state
        for values, store in ((self.params, twin.params), (self.state, twin.state)):
            for name, a in values.items():
                store[name] = carried(a, backend)  # the view copies
        twin.loss, twin.metrics = own_copy(self.loss), own_copy(self.metrics)
        twin.rng.state = self.rng.state
        if type(self) is not Sequential:  # a class of one's own: its methods and settings
            twin.__class__ = type(self)
            twin.__dict__.update(own_attributes(self, twin))
        return twin

    def config(self) -> dict:
        """The architecture, JSON-ready (``input_shape`` only where it was given)."""
        config = {"type": "Sequential", "layers": [layer.config() for layer in self.layers]}
        if self._given_shape is not None:
            config["input_shape"] = list(self._given_shape)
        return config

    @classmethod
    def from_config(cls, config: dict, backend=None, seed=None, build: bool = True) -> Sequential:
        """The model ``config()`` described (with or without its "type"), weights drawn
        anew (or, with ``build=False``, none drawn)."""
        layers = config.get("layers")
        if config.get("type", "Sequential") != "Sequential" or not isinstance(layers, list):
            raise ValueError(f"not a Sequential model's config: {str(config)[:200]}")
        layers, shape = [layer_types.from_config(c) for c in layers], config.get("input_shape")
        return cls(layers, backend=backend, seed=seed, input_shape=shape, build=build)

    def summary(self) -> str:
        """A table of the layers (each with the arguments it does not leave at their
        defaults), the shape of one sample after each, and their parameter counts;
        columns widen to fit the longest entry."""
        return summary_text(self)

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"Sequential([{inner}], backend={self.backend.name!r})"
