"""The ``Layer`` base class: what every layer has and what ``Sequential`` asks of it.

    layer.params    {"W": ..., "b": ...}   the weights, on the model's backend
    layer.grads     the same keys, filled by backward
    layer.state     running state that is not trained (BatchNorm's statistics)
    y = layer.forward(x, training=True)     keeps what backward needs
    dx = layer.backward(dy)                 fills grads, returns dL/dx; never changes dy
    layer.backward(dy, input_grad=False)    the first layer's dL/dx is of no use in training:
                                            layers with weights then skip it (return None)
    layer.output_shape((1, 28, 28))         the shape of one output sample for one input
                                            sample (no batch axis), or a ValueError
    layer.grad_buffers                      while a fit trains with a flat buffer
                                            (``nnbackend.flat``): key -> the array that
                                            backward may write grads[key] into

Rows are samples: ``x`` has shape ``(batch, ...)``, images ``(batch, channels, height,
width)``. Layers that draw random numbers in training (Dropout) set ``stochastic`` and
take the model's generator: ``forward(x, training, rng=...)``.
"""

from __future__ import annotations

import copy
import gc
import weakref
from collections.abc import Mapping, Sequence
from types import MappingProxyType

from nnbackend.backend.arrays import compact
from nnbackend.checks import integer
from nnbackend.kept import check_not_fitted_elsewhere, private_arrays, sets_attribute
from nnbackend.registry import LAYERS, check_base_init, construct, type_name
from nnbackend.shapes import channels_last, channels_last_hint, rows_to_images_hint
from nnbackend.spellings import LAYER_SETTINGS, no_attribute, others_told, told_ours

#: a layer's ``grad_buffers`` where no fit has bound it: ask ``is NO_GRAD_BUFFERS``, as
#: torch.compile before 2.13 cuts the step at a mapping proxy's use once a grads dict changed
NO_GRAD_BUFFERS: Mapping = MappingProxyType({})


#: a missing private attribute of a layer, said: a backward with no forward before it
FORWARD_KEPT = "what its forward keeps for backward: call forward(x) first, then backward"


@others_told({}, LAYER_SETTINGS)  # Keras's layer.trainable = False: told how to freeze one
class Layer:
    """Base class. ``decayed`` names the params that L2 weight decay applies to;
    ``output_range`` is the (low, high) its outputs can take, None when unknown (a
    loss that wants probabilities checks the model's last layer with it, or, past
    layers that ``keeps_range`` (pooling, Flatten), the last that changes values)."""

    decayed: tuple[str, ...] = ()
    output_range: tuple[float, float] | None = None
    keeps_range: bool = False
    stochastic: bool = False
    """True for layers whose training forward draws random numbers: ``Sequential``
    then passes its generator, ``forward(x, training, rng=model.rng)``."""

    draws_on_device: bool = False
    """True for such layers that draw with the generator's ``random_bits`` alone (on the
    device, from its counter), so a recorded step draws anew at every replay. A
    subclass that rewrites ``forward`` says it again"""

    grad_buffers: Mapping = NO_GRAD_BUFFERS
    """key -> where backward may write that gradient in place, set by ``nnbackend.flat``
    while a fit binds the model; ``NO_GRAD_BUFFERS`` (empty) otherwise"""

    fused_activation: str | None = None
    """an activation's name in the kernel table's ``dense_act`` ("relu", ...): a Dense
    layer right before it then computes both in one call (``Sequential``), where the
    class that names it is the one whose ``forward`` runs (``fused_activation_of``)"""

    integer_state: frozenset[str] = frozenset()
    """running-state names kept in integers (counts); the rest of ``state`` are floats
    of the model's dtype, and a checkpoint must hold them as floats"""

    nonnegative_state: frozenset[str] = frozenset()
    """running-state names that cannot be below 0 (a variance); a checkpoint holding a
    negative one is refused, as its square root would be NaN"""

    batch_statistics: bool = False
    """True for layers whose training forward reduces over the batch's rows (BatchNorm):
    a data-parallel step then sets ``whole_batch`` for its length, and they take
    their statistics over every rank's rows (``nnbackend.distributed.whole_batch``)"""

    whole_batch = None
    """while such a step runs: ``.rows`` (the global batch's) and ``.sum(arrays)``
    (summed over the ranks); None otherwise"""

    registry = LAYERS
    _fuses: str | None = None  # what fused_activation_of gives, set once per class
    _fused_forward = True  # whether forward_activated may stand in for this forward

    def __new__(cls, *args, **kwargs):  # Keras's Dense(128, activation="relu"): told
        told_ours(cls, kwargs, args)
        return super().__new__(cls)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        runs_forward = next(c for c in cls.__mro__ if "forward" in vars(c))
        named_by = next(c for c in cls.__mro__ if "fused_activation" in vars(c))
        cls._fuses = cls.fused_activation if named_by is runs_forward else None
        # a subclass that rewrites forward (a Dense of its own) is not fused by its base
        fuses_by = next(c for c in cls.__mro__ if "forward_activated" in vars(c))
        below = runs_forward is not fuses_by and issubclass(runs_forward, fuses_by)
        cls._fused_forward = not below

    def __init__(self):
        self.params: dict = {}
        self.grads: dict = {}
        self.state: dict = {}
        self.backend = None

    def build(self, backend, rng) -> None:
        """Create the weights on ``backend``, drawing from ``rng``."""
        self.backend = backend

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """name -> shape of each weight, known from the constructor's arguments alone
        (a checkpoint's datasets are checked against these before they are read)."""
        return {}

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """name -> shape of each running-state array (BatchNorm's statistics)."""
        return {}

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        """The shape of one input sample when the constructor's arguments fix it
        (``Dense(784, 10)``: (784,)), else None."""
        return None

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape of one output sample for input samples of ``input_shape`` (no batch
        axis). Raises ValueError, naming the layer, when such input does not fit.
        The default suits elementwise layers: the shape is kept."""
        return tuple(input_shape)

    def forward(self, x, training: bool = True):
        """The output for ``x`` of shape ``(batch, *input_shape)``: ``(batch,
        *output_shape(input_shape))``. Keeps what ``backward`` needs; ``training=False``
        is evaluation mode (no state changes, no random draws). Every layer defines it."""
        raise NotImplementedError

    def backward(self, dy, input_grad: bool = True):
        """``dy``, dL/dy of the last forward's output's shape, to dL/dx of its input's
        shape; fills ``grads`` (the same keys and shapes as ``params``) and never changes
        ``dy``. ``input_grad=False`` (the first layer in training): a layer with weights
        may skip dL/dx and return None. Every layer defines it."""
        raise NotImplementedError

    def forward_activated(self, x, activation):
        """``activation.forward(self.forward(x))`` as one fused call, where this layer
        can (``Dense``, with the kernel table's ``dense_act``); None, having done
        nothing, where it cannot. ``Sequential`` asks it of each layer and the next."""
        return None

    def __getstate__(self) -> dict:
        # copies (pickle, copy.copy, deepcopy) leave behind the gradients, the model's
        # gradient buffer, the model that holds the layer, and what the last forward kept
        # for backward (private arrays: the last batch's); the weights and state are
        # arrays of their own, not views of the model's flat buffer
        left = {"grad_buffers", "_owner", *private_arrays(self)}
        state = {name: value for name, value in vars(self).items() if name not in left}
        for kind in ("params", "state"):
            if kind in state:
                state[kind] = {key: compact(a) for key, a in state[kind].items()}
        if "grads" in state:
            state["grads"] = {}
        return state

    def __getattr__(self, name: str):
        # reached only for a missing attribute: a private one the class's code sets is
        # what forward keeps (a typo in a backward keeps Python's own error)
        if not name.startswith("_") or name.startswith("__"):
            return no_attribute(self, name)
        return no_attribute(self, name, lambda: sets_attribute(self, name) and FORWARD_KEPT)

    def __call__(self, x, training: bool = False):
        """``forward`` in inference (by default), for an array of the layer's backend."""
        if self.backend is not None:  # a host array into a strict layer: said, not computed
            self.backend.check_array(x, f"{type(self).__name__}'s input")
        return self.forward(x, training=training)

    def min_batch(self, sample_shape: tuple) -> int:
        """The fewest rows a training batch may have, for input samples of
        ``sample_shape`` (no batch axis): 1, or 2 where a statistic over the batch needs
        them (BatchNorm's variance over rows alone)."""
        return 1

    def config(self) -> dict:
        """The constructor's arguments, JSON-ready, with the class name as "type" (a
        subclass adds its own: ``{**super().config(), "beta": self.beta}``)."""
        return {"type": type_name(self)}

    @classmethod
    def from_config(cls, config: dict) -> Layer:
        """The layer that ``config()`` described (less its "type")."""
        return construct(cls, config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "type")
        return f"{type(self).__name__}({args})"


def from_config(config: dict) -> Layer:
    """A layer from ``layer.config()``'s output."""
    return LAYERS.build(config)


def get(spec) -> Layer:
    """A layer from a name (the activations: "relu", "tanh", "sigmoid", "leaky_relu",
    "softmax", "linear"), a config dict, or a Layer."""
    return LAYERS.create(spec)


def fused_activation_of(layer: Layer) -> str | None:
    """``layer.fused_activation``, where the class that names it also runs the
    ``forward``: a subclass of Tanh that rewrites ``forward`` is computed as written."""
    return type(layer)._fuses


def layer_list(layers, more: tuple = ()) -> list[Layer]:
    """``layers`` as Layer objects (names, configs and classes made into layers), each
    object in one place of one model only: a layer keeps one forward's input for its
    backward, so the same object twice would hand its first place the second's
    gradients. A layer that already has weights belongs to another model, whose weights
    building it would redraw. ``more``: layers given one by one, as torch's takes them."""
    if more and isinstance(layers, list | tuple):  # Sequential([...], "strict")
        named = ", ".join(
            f"{k}={v!r}" for k, v in zip(("backend", "dtype", "seed"), more, strict=False)
        )
        raise TypeError(f"Sequential takes one list of layers, the rest by name: got {more!r} "
                        f"after it; nb.Sequential([...], {named})")  # fmt: skip
    if more:
        raise TypeError(
            f"Sequential takes the layers as one list, not {1 + len(more)} arguments: put "
            "them in [ ], nb.Sequential([Dense(2, 16), 'tanh', Dense(16, 2)], seed=0)"
        )
    if isinstance(layers, Layer | str | dict) or not hasattr(layers, "__iter__"):
        raise TypeError(
            f"the layers are a list, not {layers!r}: nb.Sequential([Dense(2, 16), "
            "'tanh', Dense(16, 2)]), a list of one for one layer"
        )
    made = [get(layer) if isinstance(layer, str | dict | type) else layer for layer in layers]
    places: dict[int, int] = {}
    for i, layer in enumerate(made):
        if not isinstance(layer, Layer):
            raise TypeError(f"layer {i} is {layer!r}, no nnbackend Layer{_not_a_layer(layer)}")
        _one_place(places, layer, i)
        check_base_init(layer, "params")
        if layer.params:
            raise ValueError(
                f"layer {i} ({layer!r}) already has weights, another model's, which "
                "building it here would redraw: make a new layer, and to start from the "
                "old weights copy them across (new.params['0.W'] = old.params['0.W'])"
            )
    return made


def _not_a_layer(thing) -> str:
    """What to give instead of ``thing`` in a list of layers."""
    if type(thing).__name__ == "Sequential":
        return ": models do not nest; list new layers in its place"
    if hasattr(thing, "forward") and hasattr(thing, "backward"):
        return ": a loss goes to fit(loss=...), not among the layers"
    if callable(thing):
        return (
            ": functions and other libraries' modules do not go in; an activation goes by "
            "name ('tanh') or as a layer (Tanh()), the rest as nnbackend.layers (Dense, ...)"
        )
    return ""


def _one_place(places: dict, layer, i: int) -> None:
    """Refuse ``layer`` at place ``i`` where it stood before (``places``: id -> place)."""
    first = places.setdefault(id(layer), i)
    if first != i:
        raise ValueError(
            f"layer {i} is layer {first} again ({layer!r}): one layer object can stand "
            "in one place only; make a new layer for each place"
        )


def claim(layers, model, build_new: bool = False) -> None:
    """Mark each of ``layers`` as ``model``'s (a weak reference), refusing one that
    another live model holds, or this one in two places: a layer keeps one batch's input
    for its backward. Sequential claims its layers when made, unpickled or copied, and at
    each fit and train_step (``model.layers[i] = ...``: ``build_new`` builds it)."""
    if build_new:  # a fit or train_step: not while another thread fits the model
        check_not_fitted_elsewhere(model)
    places: dict[int, int] = {}  # model.layers[4] = model.layers[2]: a wrong gradient
    for i, layer in enumerate(layers):
        _one_place(places, layer, i)
        if build_new and never_built(layer):  # put in place of one: built as Sequential does
            build_layer(layer, model.backend, model.rng)
        if _held_elsewhere(layer, model):
            gc.collect()  # a model let go of but not yet collected (models are cycles)
        if _held_elsewhere(layer, model):
            raise ValueError(
                f"layer {i} ({layer!r}) is in another model already: it keeps one batch's "
                "input for its backward, so two models would mix their gradients; make a "
                "new layer for each model (model.copy() copies a whole model)"
            )
        layer._owner = weakref.ref(model)


def build_layer(layer, backend, rng) -> None:
    """``layer.build``, the layer then marked as built on ``backend`` (a build of one's
    own that skips ``super().build()`` would leave it looking new)."""
    layer.build(backend, rng)
    layer.backend = backend


def unbuilt_copy(layer):
    """A shallow copy of ``layer`` with empty weight stores of its own, to be built anew."""
    twin = copy.copy(layer)
    twin.params, twin.grads, twin.state = {}, {}, {}
    return twin


def never_built(layer) -> bool:
    """Never built by a model: no weights or state, and no backend or weights it declares
    (one put in, then given a backend by ``model.to`` or ``build=False``)."""
    if layer.params or layer.state:
        return False
    declared = layer.param_shapes() or layer.state_shapes()
    return getattr(layer, "backend", None) is None or bool(declared)


def check_all_built(model) -> None:
    """Refuse, before ``predict`` or ``evaluate``, a layer with weights that no fit has
    built yet (put in by ``model.layers[i] = ...``): its own error would say to put it in
    a Sequential, where it is."""
    for i, layer in enumerate(model.layers):
        if never_built(layer) and (layer.param_shapes() or layer.state_shapes()):
            raise RuntimeError(
                f"layer {i} ({layer!r}) has no weights yet (put in after the model was built, "
                "or the model made with build=False): nb.restore(model, path) fills them, a fit "
                f"or train_step draws them (or model.layers[{i}].build(model.backend, model.rng))"
            )


def _held_elsewhere(layer, model) -> bool:
    """Whether another live model than ``model`` still has ``layer`` among its layers."""
    owner = getattr(layer, "_owner", None)
    other = None if owner is None else owner()
    return other is not None and other is not model and any(x is layer for x in other.layers)


def check_built(layer: Layer, name: str = "W") -> None:
    """A clear error for a layer with weights (``name`` among them) used before it was
    built."""
    if name not in layer.params:
        raise RuntimeError(
            f"{layer!r} has no weights yet: put it in a Sequential, which builds it, "
            "or call layer.build(backend, nb.Generator(seed))"
        )


def pair(value, what: str) -> tuple[int, int]:
    """An int or a pair of ints (kernel sizes, strides, paddings) as a pair of ints."""
    # a sequence or a 1-d array of two; not text, bytes or a range, whose items are not
    # sizes one wrote down
    two = isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray | range)
    if two or getattr(value, "ndim", None) == 1:
        values = tuple(value)
    elif hasattr(value, "__iter__") and not isinstance(value, str):
        values = ()  # a dict, a set, an iterator: refused below, as what it is
    else:
        values = (value, value)
    if len(values) != 2:
        raise TypeError(f"{what} must be an int or a pair of ints, not {value!r}")
    return tuple(integer(v, what) for v in values)


def image_shape(layer: Layer, input_shape) -> tuple[int, int, int]:
    """``input_shape`` as (channels, height, width), or a ValueError naming ``layer``."""
    if len(input_shape) != 3:
        refused = (
            f"{layer!r} takes images, samples of shape (channels, height, width), not "
            f"{tuple(input_shape)}"
        )
        error = ValueError(
            f"{refused}; {rows_to_images_hint(getattr(layer, 'in_channels', None), input_shape)}"
        )
        error.without_hint = refused  # an input_shape's error: X is not the fault
        raise error
    return tuple(int(n) for n in input_shape)


def check_images(layer: Layer, x, channels: int | None = None) -> None:
    """A clear error unless ``x`` is a (batch, channels, height, width) batch (with
    ``channels`` channels when given)."""
    if x.ndim != 4 or (channels is not None and x.shape[1] != channels):
        want = f"(batch, {channels}, height, width)" if channels else "(batch, C, H, W)"
        message = f"{layer!r} expects input of shape {want}, got {tuple(x.shape)}"
        if channels_last(tuple(x.shape), channels):
            message += f". {channels_last_hint(x)}"
        raise ValueError(message)
