"""The base class of every optimizer (``nnbackend.optim`` holds the built-in ones):
the step over named arrays, the per-weight state slots, the flat step over one buffer,
and saving, loading and moving the state.
"""

from __future__ import annotations

import operator
import weakref

from nnbackend.backend import backend_of, namespace_of, to_numpy
from nnbackend.backend.arrays import compact
from nnbackend.backend.kernels import table
from nnbackend.checks import check_gradients, declared, finite_float, integer
from nnbackend.registry import OPTIMIZERS, SCHEDULES, construct, type_name
from nnbackend.schedules import Schedule, device_rate, given_rate, rate
from nnbackend.spellings import OPTIMIZER_METHODS, OPTIMIZER_SETTINGS, others_told, told_ours

#: the most steps an optimizer's counter may hold (beyond it, float rates lose meaning)
MAX_ITERATIONS = 2**53
#: the name under which ``step_flat`` updates every weight as one array
EVERY = "*"
_ONE_EACH = "Give each model an optimizer of its own (a new nb.optim.{}(...))"
#: the methods whose rewriting may make an update read more than its own weight's elements
UPDATE_METHODS = frozenset({"update", "apply", "apply_many", "moments", "kernel_rates", "step"})


# torch's zero_grad(), Chainer's setup(), Keras's optimizer.learning_rate = ...: told ours
@others_told(OPTIMIZER_METHODS, OPTIMIZER_SETTINGS)
class Optimizer:
    """Base class: subclasses write ``update(params, name, grad, lr)``."""

    slots: tuple[str, ...] = ()
    """names of the per-parameter state arrays, e.g. ("m", "v") for Adam"""

    nonnegative_slots: tuple[str, ...] = ()
    """those of them that cannot be below 0 (sums of squares, as Adam's ``v``): a
    checkpoint holding a negative one is refused, as its square root would be NaN"""

    elementwise = False
    """True where an update of a weight reads that weight's own elements and scalars
    alone, so every weight may be updated as one flat array (``step_flat``). A class
    that writes ``update``, ``apply``, ``apply_many``, ``moments``, ``kernel_rates`` or
    ``step`` says it again; one that writes ``step`` writes ``step_flat`` too, else its
    ``step`` is what updates (the flat step would go around it)."""

    steady = False
    """True where an update uses the same numbers at every step (no step count, as in
    Adam's bias correction), so a recorded step may be replayed (``fit``'s
    ``compile=True`` on torch:cuda, or ``"cuda-graph"``). A class that writes one of
    those methods says it again."""

    counts_on_device = False
    """True where the update reads the step count through ``step_number()`` alone and
    takes it as a 0-d array as well (Adam), so a recorded step may count on the device
    (``nnbackend.backend.replay``). A class that writes one of those methods says it again."""

    registry = OPTIMIZERS
    _device_count = None
    """the step count on the weights' device, while a recorded step reads it from there"""

    _owner = None
    """a weak reference to the model ``fit`` last trained with this optimizer, or None"""

    def __new__(cls, *args, **kwargs):  # Keras's learning_rate=, torch's betas=: told ours
        told_ours(cls, kwargs, args)
        return super().__new__(cls)

    def __init__(self, lr=0.01):
        self.lr = lr if callable(lr) or isinstance(lr, type) else rate(lr)  # above 0
        self.iterations = 0
        self.state: dict[str, dict] = {slot: {} for slot in self.slots}

    @property
    def lr(self):
        """The learning rate: a number above 0 (set later, 0 too: a decay that has run
        out), a schedule, or a function of the step count; checked when set (a
        callback's ``model.optimizer.lr = ...`` too)."""
        return self._lr

    @lr.setter
    def lr(self, lr) -> None:
        if isinstance(lr, type):
            raise TypeError(
                f"lr={lr.__name__} is a class; give a schedule made of it, e.g. "
                f"lr={lr.__name__}(...), or a number"
            )
        self._lr = lr if callable(lr) else finite_float(lr, "learning rate", low=0)

    def __setstate__(self, state: dict) -> None:  # of old pickles: the rate as an attribute
        if "lr" in state and isinstance(getattr(type(self), "lr", None), property):
            state["_lr"] = state.pop("lr")
        self.__dict__.update(state)

    def current_lr(self, like=None) -> float:
        """The next step's learning rate: ``lr``, or what it gives for ``iterations``
        where it is a schedule or a function (checked: at least 0 and finite; 0, where a
        decay has run out, adds no more of the gradient: Momentum's velocity still moves
        the weights on, as it was made at the earlier rates). Where the step is counted on
        the device (``count_on_device``), a schedule's rate is a 0-d array worked out
        there, in the dtype of ``like`` (a weight), from arguments checked when the
        schedule was made."""
        if not callable(self.lr):
            return self.lr
        if self._device_count is not None:  # replays() let only such schedules through
            return device_rate(self.lr(self._device_count - 1), like)
        return given_rate(self.lr, self.iterations)

    def step(self, params, grads) -> None:
        """One update of every parameter that has a gradient (one of None: none, as in
        torch.optim; a step with none is not counted). Refused before any update: bad
        gradients (``check_gradients``), another model's state (``train_for``)."""
        kinds = getattr(params, "_kind", "params"), getattr(grads, "_kind", "grads")
        if kinds != ("params", "grads"):  # model.grads given first: the weights never moved
            raise TypeError(
                "step(params, grads) takes the weights first: opt.step(model.params, model.grads)"
            )
        check_gradients(params, grads)
        model = getattr(params, "_model", None)  # model.params: its optimizer's own model?
        if model is not None:  # and its layers the ones stepped, as fit's steps see to
            self.follow_layers(model)
        if any(grad is None for grad in grads.values()):
            grads = {name: grad for name, grad in grads.items() if grad is not None}
        if not grads:  # every weight frozen, or no backward yet: nothing stepped
            return
        first = next(iter(grads.values()))
        lr = self.current_lr(first)
        self._follow_gradient(first)
        kernels = table(namespace_of(first))  # the backend's fused kernels, once per step
        if not self.apply_many(kernels, params, grads, lr):
            for name, grad in grads.items():
                self.apply(kernels, params, name, grad, lr)
        self.iterations += 1

    def updates_flat(self) -> bool:
        """Whether ``step_flat`` may update every weight as one array: the class that
        last wrote one of ``UPDATE_METHODS`` set ``elementwise = True`` in its body, and
        no class wrote ``step`` after the last that wrote ``step_flat``."""
        mro = type(self).__mro__
        last = {
            m: next(i for i, k in enumerate(mro) if m in vars(k)) for m in ("step", "step_flat")
        }
        return self._declared("elementwise") and last["step_flat"] <= last["step"]

    def replays(self) -> bool:
        """Whether a step recorded once may be replayed for every step: a fixed learning
        rate or a schedule that works on the device (``Schedule.on_device``), and the
        class that last wrote one of ``UPDATE_METHODS`` set ``steady = True`` or
        ``counts_on_device = True`` in its body."""
        steady = self._declared("steady") or self._declared("counts_on_device")
        on_device = isinstance(self.lr, Schedule) and declared(
            type(self.lr), "on_device", ("__call__",)
        )
        return steady and (not callable(self.lr) or on_device)

    def step_number(self):
        """The number of the step being taken (1 for the first): ``iterations + 1``, or
        the 0-d array set by ``count_on_device``."""
        return self.iterations + 1 if self._device_count is None else self._device_count

    def count_on_device(self, count) -> None:
        """Have ``step_number()`` give ``count`` (a 0-d array, which a recorded step
        adds 1 to on the device before each update), or ``iterations + 1`` again (None)."""
        self._device_count = count

    def _declared(self, flag: str) -> bool:
        """``flag`` as the class that last wrote one of ``UPDATE_METHODS`` set it in its
        own body; False where that class did not."""
        return declared(type(self), flag, UPDATE_METHODS)

    def step_flat(self, params, grads) -> None:
        """One update of every weight at once, as one array (where ``updates_flat()``):
        ``params`` and ``grads`` are ``nnbackend.flat.FlatArrays`` of one layout. Each
        state slot is kept in FlatArrays of that layout too, whose views are the arrays
        ``state`` holds by name, so a checkpoint sees no difference."""
        self._follow_gradient(grads.buffer)
        lr = self.current_lr(grads.buffer)
        self._whole = {slot: {EVERY: self._flat_slot(slot, params)} for slot in self.slots}
        weights = {EVERY: params.buffer}
        self.apply(table(namespace_of(params.buffer)), weights, EVERY, grads.buffer, lr)
        # an update that rebinds (W = W - ...) rather than writing in place made new arrays
        if weights[EVERY] is not params.buffer:
            params.buffer[...] = weights[EVERY]
        for slot in self.slots:
            kept, new = self._flats[slot].buffer, self._whole[slot][EVERY]
            if new is not kept:
                kept[...] = new
        self.iterations += 1

    def follow_layers(self, model) -> None:
        """Drop the state of weights whose layer is not the one this optimizer last
        stepped at that index (put in by ``model.layers[i] = ...``, inserted, moved), or
        that ``model`` no longer has: their state starts at zero (the step count goes
        on, and with it Adam's bias correction and a schedule's rate). One that has not
        stepped since it was made, copied or loaded keeps what it holds. An optimizer
        that stepped for another model is refused first (``train_for``)."""
        if self._owner is None or self._owner() is not model:  # train_step's first step
            self.train_for(model)
        seen = self.__dict__.get("_layers")
        if seen is not None and [id(ref()) for ref in seen] == list(map(id, model.layers)):
            return
        if seen is not None:
            changed = tuple(
                f"{i}."
                for i, layer in enumerate(model.layers)
                if i >= len(seen) or seen[i]() is not layer
            )
            names = set(model.params)
            for arrays in self.state.values():
                for name in [n for n in arrays if n.startswith(changed) or n not in names]:
                    del arrays[name]
        self._layers = [weakref.ref(layer) for layer in model.layers]

    def _flat_slot(self, slot: str, params):
        """The one buffer of state ``slot`` laid out as ``params``, made (zeros, with what
        ``state`` held copied in) unless ``state`` still holds its views."""
        kept = self.__dict__.setdefault("_flats", {})
        flat, arrays = kept.get(slot), self.state[slot]
        if (
            flat is None
            or list(flat.shapes.items()) != list(params.shapes.items())
            or flat.front != params.front  # L2's weights lie first: another layout
            or not all(map(operator.is_, map(arrays.get, flat.views), flat.views.values()))
        ):
            flat = kept[slot] = params.like()
            for name, view in flat.views.items():
                if name in arrays:
                    self._check_shape(slot, name, arrays[name], view)
                    view[...] = arrays[name]
                arrays[name] = view
        return flat.buffer

    def update(self, params, name: str, grad, lr: float) -> None:
        """Update ``params[name]`` from ``grad`` at learning rate ``lr``: what a
        subclass writes."""
        raise NotImplementedError

    def apply(self, kernels, params, name: str, grad, lr: float) -> None:
        """``update``, with the backend's kernel table (``nnbackend.backend.kernels``)
        at hand: the built-in optimizers take their fused update from it where it has
        one, and ``update`` is then their reference."""
        self.update(params, name, grad, lr)

    def apply_many(self, kernels, params, grads, lr: float) -> bool:
        """Update every parameter of ``grads`` at once, where the kernel table has a
        multi-array update for this optimizer (torch's ``_foreach`` operators: one
        launch for all of them on a GPU); False, having done nothing, where it has none."""
        return False

    def _slot(self, slot: str, name: str, like):
        """The arrays of state ``slot``, by parameter name, with ``name``'s made (zeros)
        if new. Returned as the dict, so ``v[name] *= c`` updates in place or rebinds."""
        arrays = (self._whole if name == EVERY else self.state).get(slot)
        if arrays is None:  # EVERY: a flat step, the slot's one buffer
            raise TypeError(
                f"{type(self).__name__} keeps state {slot!r}, which its slots do not name: "
                f"add slots = {(*self.slots, slot)!r} to the class"
            )
        if name == EVERY:
            return arrays
        if name not in arrays:
            arrays[name] = namespace_of(like).zeros_like(like)
        elif arrays[name].shape != like.shape:
            self._check_shape(slot, name, arrays[name], like)
        return arrays

    def _check_shape(self, slot: str, name: str, kept, weight) -> None:
        """Refuse state kept for a weight of another shape: another model's."""
        if tuple(kept.shape) != tuple(weight.shape):
            raise ValueError(
                f"{type(self).__name__} holds state {slot!r} of weight {name!r} with shape "
                f"{tuple(kept.shape)}, but the weight has shape {tuple(weight.shape)}: this "
                f"optimizer's state is another model's. {_ONE_EACH.format(type(self).__name__)}"
            )

    def train_for(self, model, take_over: bool = False) -> None:
        """Take note that this optimizer's state is ``model``'s (before ``fit``'s first
        step, and ``train_step``'s); refuse, changing nothing, one that stepped for
        another model, where ``model`` would inherit its state or its place in a schedule
        (plain SGD at a fixed rate has neither). A fresh optimizer, or a copy, belongs to
        no model yet; ``take_over``: the state was loaded for ``model`` (``nb.restore``)."""
        owner, inherits = self._owner, bool(self.slots) or callable(self.lr)
        if take_over:  # its weights' state by name is model's, whatever layers it last saw
            self.__dict__.pop("_layers", None)
        elif owner is not None and owner() is not model and self.iterations and inherits:
            raise ValueError(
                f"{self!r} has taken {self.iterations} steps for another model, whose "
                f"state and step count this model would inherit. "
                f"{_ONE_EACH.format(type(self).__name__)}; to go on from that state on "
                "purpose, load it into a new one: new.load_state_dict(old.state_dict())"
            )
        self._follow(model.backend)
        self._owner = weakref.ref(model)

    def __getstate__(self) -> dict:
        # copies keep the state by name; a flat step lays it out again
        state = dict(vars(self))
        for laid_out in ("_flats", "_whole", "_owner", "_layers"):  # a copy is no model's
            state.pop(laid_out, None)  # until a fit takes it
        state["state"] = {
            slot: {name: compact(a) for name, a in arrays.items()}
            for slot, arrays in self.state.items()
        }  # arrays of their own, not views of a flat buffer (torch would pickle it whole)
        return state

    def config(self) -> dict:
        """JSON-ready: the type, the learning rate (a schedule's config) and the
        hyper-parameters. A plain function as the learning rate has none: an error."""
        lr = self.lr
        if isinstance(lr, Schedule):
            lr = lr.config()
        elif callable(lr):
            raise TypeError(
                f"the learning rate {lr!r} is a plain function, which a checkpoint cannot "
                "hold: use a built-in schedule (nb.schedules.StepDecay, ExponentialDecay, "
                "InverseTimeDecay) or a Schedule subclass registered with nb.register"
            )
        return {"type": type_name(self), "lr": lr, **self._hyper()}

    def _hyper(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict) -> Optimizer:
        """The optimizer that ``config()`` described; a schedule's config becomes one, and
        a rate of 0 (a decay run out, which the constructor refuses) is set after it."""
        config, spent = dict(config), type(config.get("lr")) in (int, float) and config["lr"] == 0
        if isinstance(config.get("lr"), dict):
            config["lr"] = SCHEDULES.build(config["lr"])
        made = construct(cls, {**config, "lr": 1.0} if spent else config)
        made.lr = 0.0 if spent else made.lr
        return made

    def state_dict(self) -> dict:
        """``{"type": class name, "iterations": n, "slots": {slot: {param name: array}}}``:
        the optimizer's own arrays, which its next step changes (``load_state_dict`` copies)."""
        return {"type": type_name(self), "iterations": self.iterations, "slots": self.state}

    def load_state_dict(self, state: dict) -> None:
        """Take ``state_dict()``'s output: every slot of this optimizer, no other. The
        arrays are copied, so the two optimizers then train apart."""
        name = type_name(self)
        if not isinstance(state, dict) or not {"iterations", "slots"} <= state.keys():
            given = f"a dict of {sorted(map(str, state))}" if isinstance(state, dict) else state
            raise ValueError(
                f"{name}.load_state_dict takes what another optimizer's state_dict() gives "
                f"(old.state_dict(): its type, iterations and slots), not {given}"
            )
        iterations = integer(state["iterations"], "iterations", low=0, high=MAX_ITERATIONS)
        # AdaGrad's h (a sum) is no RMSProp's h (a mean). Older states of a class
        # registered under another name hold its class's name.
        if state.get("type", name) not in (name, type(self).__name__):
            raise ValueError(f"the state is {state['type']}'s; {name} cannot take it")
        missing = set(self.slots) - set(state["slots"])
        if missing:
            raise ValueError(f"{name} state lacks the slots {sorted(missing)}")
        unknown = set(state["slots"]) - set(self.slots)
        if unknown:
            raise ValueError(f"{name} keeps no state named {sorted(unknown)} "
                             f"(its slots: {list(self.slots)})")  # fmt: skip
        self.iterations = iterations
        given = state["slots"]  # copied: the two optimizers train apart
        self.state = {slot: {n: namespace_of(a).asarray(a, copy=True)
                             for n, a in given[slot].items()} for slot in self.slots}  # fmt: skip

    def _follow(self, backend) -> None:
        """State loaded from another backend or float dtype (``load_state_dict``) moved
        to ``backend`` and its dtype, as the weights it updates are."""

        def elsewhere(a) -> bool:
            if not isinstance(a, backend.array_types) or a.device != backend.device:
                return True
            return backend.xp.isdtype(a.dtype, "real floating") and a.dtype != backend.dtype

        if any(elsewhere(a) for slot in self.state.values() for a in slot.values()):
            self.to(backend)

    def _follow_gradient(self, grad) -> None:
        """A loop written by hand may move the model (``model.to``) without its
        optimizer: the state follows the gradients' library, device and dtype (one array
        looked at)."""
        for slot in self.state.values():
            for a in slot.values():
                if type(a) is not type(grad) or (a.dtype, a.device) != (grad.dtype, grad.device):
                    self._follow(backend_of(grad))
                return

    def to(self, backend) -> Optimizer:
        """Move the state arrays to ``backend``, a Backend, in its float dtype; returns self."""
        if not hasattr(backend, "dtype_name"):
            raise TypeError(f"Optimizer.to takes a Backend, not {backend!r}: model.to("
                            f"{backend!r}, optimizer=opt) moves it with its optimizer")  # fmt: skip
        for arrays in self.state.values():
            for name, a in arrays.items():
                arrays[name] = backend.asarray(to_numpy(a))
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in {"lr": self.lr, **self._hyper()}.items())
        return f"{type(self).__name__}({args})"
