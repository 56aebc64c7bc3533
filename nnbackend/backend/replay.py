"""Recording the training step once as a CUDA graph and replaying it
(``fit(..., compile=True)`` or ``compile="cuda-graph"``, torch on CUDA).

A small net's step is some thirty kernels, each a few microseconds of GPU work behind
ten or more of host time to launch it. A CUDA graph launches the recorded kernels all
at once: the host's work per step becomes two copies (the batch into the recorded
input), one launch, and the loss's copy out. torch records the eager step as it runs
it (``torch.cuda.graph``); nothing is traced or compiled.

A replay repeats the recorded kernels with the numbers they had when recorded, on the
memory they used then. So:

- the batch is copied into the recorded input, and a batch of another shape (the last,
  smaller one of an epoch) takes the eager step. Where every step gets the same arrays
  (full-batch training: the whole set), the recording reads them where they are;
- every number of the update must be the same at every step, or come from the device:
  the step count is kept there too (a 0-d array the recording adds 1 to), and Adam's
  bias correction and a schedule's rate are computed from it on the device
  (``Optimizer.count_on_device``). Every built-in optimizer qualifies, at a fixed rate
  or a built-in schedule (``Optimizer.replays``); a rate from a plain function does not;
- the random numbers too: Dropout's masks come from the model generator's counter-based
  stream, whose block counter is kept on the device while a recording draws
  (``Generator.count_on_device``), so every replay draws the next masks;
- weights, running statistics (BatchNorm's) and optimizer state must be updated in
  place, as nnbackend's are.

These are checked before any step, and after the warm-up steps (an array made anew
by a custom layer or optimizer), so a step that cannot be replayed is refused rather
than trained wrong. Between steps, a weight set by a callback is copied into the
recorded one, and an optimizer, a generator or a layer's settings changed by one are
refused. Where compile=True chose the graph, a refusal before the first step sends it
to torch.compile instead, and one after warns and takes the eager step from then on.
The loss is copied out of the graph's memory at each step (the epoch's log keeps it);
the output goes to the metrics at once.
"""

from __future__ import annotations

import contextlib

from nnbackend.backend.kernels import enabled as fused_enabled
from nnbackend.checks import declared, warn_caller

#: fit's ``compile`` value that records the step as a CUDA graph
CUDA_GRAPH = "cuda-graph"
#: eager steps before recording: torch's own set-up (cuBLAS workspaces, the optimizer's
#: state) happens outside the recording
WARM_UP_STEPS = 3


def check_replayable(model, optimizer) -> None:
    """Raise ValueError, before any step, where the step cannot be replayed."""
    if not optimizer.replays():
        raise ValueError(
            f"compile={CUDA_GRAPH!r} replays one recorded step with the numbers it was "
            f"recorded with, but {optimizer!r} changes them from step to step on the host "
            "(a learning rate from a function, or a Schedule without on_device = True, or "
            "an update that does not say it is steady): use a fixed rate or a built-in "
            "schedule, or compile=True"
        )
    for layer in model.layers:
        if layer.stochastic and not declared(type(layer), "draws_on_device", ("forward",)):
            raise ValueError(
                f"compile={CUDA_GRAPH!r} replays one recorded step, but {layer!r} draws "
                "new random numbers at every step on the host, which a replay would not "
                "(a layer says draws_on_device = True where it draws with random_bits "
                "alone): use compile=True, or leave compile off"
            )


def records_here(backend, model, optimizer) -> bool:
    """Whether ``compile=True`` takes the CUDA graph: torch on CUDA with the fused
    kernels on, and a step that can be replayed."""
    on_cuda = backend.name.split(":")[0] == "torch" and backend.device.type == "cuda"
    return on_cuda and fused_enabled() and replayable(model, optimizer)


def replayable(model, optimizer) -> bool:
    """``check_replayable``'s answer, as a bool."""
    try:
        check_replayable(model, optimizer)
    except ValueError:
        return False
    return True


def recorder_for(backend):
    """A CUDA graph on ``backend``'s device: torch on CUDA only, with the fused kernels
    on (some standard forms, ``maximum(x, 0.0)`` for one, copy their number to the
    device at every call, which a recording refuses)."""
    if backend.name.split(":")[0] != "torch" or backend.device.type != "cuda":
        raise ValueError(
            f"compile={CUDA_GRAPH!r} records the step as a CUDA graph with torch: build the "
            f"model on backend='torch:cuda', not {backend.name!r}, or use compile=True or False"
        )
    if not fused_enabled():
        raise ValueError(
            f"compile={CUDA_GRAPH!r} needs the fused kernels, which NNBACKEND_FUSED=0 or "
            "nb.backend.fused(False) turned off: some of the standard forms copy a number "
            "to the GPU at every step, which a recording cannot hold"
        )
    return CudaGraph(backend.device)


class CudaGraph:
    """torch's CUDA graph, with the side stream its warm-up and recording need."""

    def __init__(self, device):
        import torch

        self.torch, self.device = torch, device
        self.graph = torch.cuda.CUDAGraph()
        self.side = torch.cuda.Stream(device)

    def warm(self, step, xb, yb):
        """One eager step on a side stream, as torch asks before a recording."""
        cuda, side = self.torch.cuda, self.side
        side.wait_stream(cuda.current_stream(self.device))
        with cuda.stream(side):
            outputs = step(xb, yb)
        cuda.current_stream(self.device).wait_stream(side)
        return outputs

    def record(self, step, xb, yb):
        """``step`` recorded on the batch (xb, yb) and then run once, as a replay. On the
        side stream, which belongs to the model's device (torch's own capture stream
        belongs to whichever device was current when it was first made)."""
        cuda = self.torch.cuda
        with cuda.device(self.device), cuda.graph(self.graph, stream=self.side):
            outputs = step(xb, yb)
        self.replay()
        return outputs

    def replay(self) -> None:
        with self.torch.cuda.device(self.device):
            self.graph.replay()


class ReplayedStep:
    """``step(xb, yb) -> (loss, output)``, replayed from one recording for every batch
    of the recorded shapes. ``recorder``: ``warm``, ``record`` and ``replay``, as
    ``CudaGraph``. The warm-up steps run what the recording will: the step count and
    the generator's counter on the device. ``chosen``: compile=True took the graph,
    so a step that cannot be replayed warns and goes on eagerly instead of raising."""

    def __init__(self, step, model, optimizer, recorder, chosen: bool = False):
        self.step, self.model, self.optimizer, self.recorder = step, model, optimizer, recorder
        self.chosen, self.eager = chosen, False  # eager: given up, every step eager
        self.warm_up = WARM_UP_STEPS
        self.shapes = None  # (xb's, yb's): the first batch's, the ones recorded
        self.inputs = self.outputs = None  # the recorded batch, and what the step gave
        self.last = (None, None)  # the batch of the last warm-up step
        self.whole_set = False  # every step gets the same arrays: recorded where they are
        self.kept = []  # (dict, key, array) of every weight and state the steps update
        self.settings = None  # what else the recording holds fixed, as recorded
        self.count = None  # the step count on the device: steps taken
        self.draws = None  # the generator's next block on the device (Dropout's masks)
        self.counted = self.drawn = None  # what the two hold, as the host knows it
        self.blocks = 0  # the generator blocks one step draws

    def __call__(self, xb, yb):
        shapes = (tuple(xb.shape), tuple(yb.shape))
        if self.shapes is None:
            self.shapes = shapes
        if self.eager or shapes != self.shapes:  # given up; the epoch's last batch
            return self.step(xb, yb)
        if self.outputs is None:
            if self.warm_up > 0:
                return self._warm(xb, yb)
            self._record(xb, yb)
        elif self.whole_set and not (xb is self.inputs[0] and yb is self.inputs[1]):
            return self.step(xb, yb)  # the recorded arrays are the data: never written
        else:
            self._replay(xb, yb)
        if self.eager:  # refused before any update
            return self.step(xb, yb)
        value, out = self.outputs
        xp = self.model.backend.xp
        return xp.asarray(value, copy=True), out  # the next replay overwrites value

    def _warm(self, xb, yb):
        self._take_back()
        before = self._kept()
        with self._counting_on_device():
            outputs = self.recorder.warm(self._counted_step, xb, yb)
        after, first = self._kept(), self.counted is None
        self._counted()
        if not first and not _same_arrays(before, after):  # (the first makes the state)
            self._refuse(
                "the step made a weight, running state or optimizer state anew instead of "
                "updating it in place, which a recorded step cannot replay (a custom layer, "
                f"or {self.optimizer!r}?)",
                "the model has taken the eager warm-up steps. Use compile='inductor' "
                "(torch.compile), or leave compile off",
            )
        self.warm_up, self.last, self.kept = self.warm_up - 1, (xb, yb), after
        return outputs

    def _record(self, xb, yb) -> None:
        xp = self.model.backend.xp
        self.whole_set = xb is self.last[0] and yb is self.last[1]
        if self.whole_set:
            self.inputs = (xb, yb)
        else:
            self.inputs = (xp.asarray(xb, copy=True), xp.asarray(yb, copy=True))
        self._take_back()
        self.settings = self._settings()
        rng, count, block = self.model.rng, self.optimizer.iterations, self.model.rng.counter
        try:  # the recording runs the step's Python once: the step counts itself
            with self._counting_on_device():
                self.outputs = self.recorder.record(self._counted_step, *self.inputs)
        except BaseException as exc:  # the counts as they were: no update was made
            self.optimizer.iterations = count
            rng.advance(block - rng.counter)
            if not isinstance(exc, RuntimeError):
                raise
            self._refuse(
                f"the step could not be recorded ({exc})",
                "use compile='inductor' (torch.compile), or leave compile off",
                RuntimeError,
                exc,
            )
            return
        self.blocks = rng.counter - block  # what one step draws
        self._counted()

    def _replay(self, xb, yb) -> None:
        self._take_back()
        if self._settings() != self.settings:
            self._refuse(
                "the optimizer, its state, the model's generator or a layer's settings "
                "changed during the fit (a callback?), where the recorded step keeps what "
                "it was recorded with",
                "change them between fits, or leave compile off",
            )
            return
        if not self.whole_set:
            x, y = self.inputs
            x[...], y[...] = xb, yb
        count = self.optimizer.iterations
        with self._counting_on_device():
            self.recorder.replay()
        self.model.rng.advance(self.blocks)
        self.optimizer.iterations = count + 1
        self._counted()

    def _refuse(self, what: str, advice: str, error=ValueError, cause=None) -> None:
        """Raise ``error``; or, where compile=True chose the graph, warn and take the
        eager step from now on (the steps so far were eager or replayed: all kept)."""
        if not self.chosen:
            raise error(f"compile={CUDA_GRAPH!r}: {what}: {advice}") from cause
        warn_caller(
            f"compile=True chose to record the step as a CUDA graph, but {what}: the rest "
            "of this fit takes the eager step (compile='inductor' uses torch.compile)",
            RuntimeWarning,
        )
        self.eager = True

    def _counted_step(self, xb, yb):
        """The step, with the step count added to on the device first."""
        count = self.count
        count += 1
        return self.step(xb, yb)

    def _counted(self) -> None:
        """Note what the device's counts hold now: the host's, after a step."""
        self.counted, self.drawn = self.optimizer.iterations, self.model.rng.counter

    @contextlib.contextmanager
    def _counting_on_device(self):
        """The optimizer reads the step count, and the generator its next block, from
        the device: made on the first step, and written there again where eager steps
        (the last batches) moved the host's on. A replay runs no Python; a stand-in for
        the graph that reruns the step sees what the graph would."""
        backend, rng, count = self.model.backend, self.model.rng, self.optimizer.iterations
        xp = backend.xp
        if self.count is None:
            self.count = xp.asarray(float(count), dtype=xp.float64, device=backend.device)
            self.draws = xp.asarray(rng.counter, dtype=xp.int64, device=backend.device)
        else:
            if self.counted != count:
                self.count[...] = float(count)
            if self.drawn != rng.counter:
                self.draws[...] = rng.counter
        self.optimizer.count_on_device(self.count)
        rng.count_on_device(self.draws)
        try:
            yield
        finally:
            self.optimizer.count_on_device(None)
            rng.count_on_device(None)

    def _take_back(self) -> None:
        """Between steps, a callback may set a weight (``model.params[name] = W``): it
        is copied into the array the steps update, which the layer holds again."""
        for store, key, kept in self.kept:
            if store[key] is not kept:
                kept[...] = store[key]
                store[key] = kept

    def _settings(self) -> tuple:
        """What a recording holds fixed besides the weights: the optimizer's settings
        and state dicts, the generator and its key, and each layer's settings."""
        opt, rng = self.optimizer, self.model.rng
        state = (id(opt.state), *(id(slot) for slot in opt.state.values()))
        layers = [layer.config() for layer in self.model.layers]
        return opt.config(), state, id(rng), rng.key, layers

    def _kept(self) -> list[tuple[dict, str, object]]:
        """Where the weights, running state and optimizer state are: (dict, key, array)."""
        layers = self.model.layers
        stores = [layer.params for layer in layers] + [layer.state for layer in layers]
        stores += self.optimizer.state.values()
        return [(store, key, array) for store in stores for key, array in store.items()]


def _same_arrays(before, after) -> bool:
    """Whether two of ``ReplayedStep._kept``'s lists hold the same arrays."""
    return len(before) == len(after) and all(
        b[2] is a[2] for b, a in zip(before, after, strict=True)
    )
