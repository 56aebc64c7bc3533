"""One training step of a ``Sequential`` as a function of a batch (``fit``'s and
``train_step``'s): forward, loss, backward and the optimizer's update, with where each
weight and gradient lives looked up once."""

from __future__ import annotations

import inspect

from nnbackend.checks import STEPPED
from nnbackend.flat import FlatModel, thaw, unbind


def step_function(model, loss, optimizer, l2=None, flat: bool = True, own: bool = False):
    """``model.train_step`` as a function of (xb, yb). Unless ``flat=False``, where it
    helps the weights and gradients are views into one buffer each (``nnbackend.flat``),
    one update; else the optimizer gets dicts of the step's arrays, and a name it
    rebinds is stored back into its layer. ``own``: the model's class writes its own
    ``forward`` or ``backward`` (a model written as a chain of one's own), which the step
    then runs, checks and all, instead of the layers' chain."""
    thaw(model, optimizer)  # what torch's inference mode made, a step cannot update
    bound = FlatModel.bind(model, optimizer) if flat else unbind(model)
    slots = [  # grads read each step: a backward may give its layer a new dict
        (f"{i}.{key}", layer.params, layer, key)
        for i, layer in enumerate(model.layers)
        for key in layer.params
    ]
    decayed = model.decayed_names()
    model._out_like = None  # a hand forward before: not what a hand step after follows
    if own:  # a chain of one's own: its forward and backward, checks and all
        forward, backward = model.forward, marked_backward(model)
        model._backward_of = model._stepped_on = None
    else:
        forward, backward = model._through_layers, model._backward
        model._backward_of = model._stepped_on = STEPPED  # a hand step after: not on these

    def step(xb, yb):  # xb: checked by the caller (fit: the whole X, once)
        out = forward(xb, training=True)  # by name: a forward of one's own may take it so
        value = loss.forward(out, yb)
        backward(loss.backward(), False)
        if bound is not None and bound.gather():
            value = bound.decay(l2, value)
            optimizer.step_flat(bound.params, bound.grads)
            return value, out
        params, grads = {}, {}  # loops, not comprehensions: torch.compile traces these
        for name, store, layer, key in slots:
            params[name] = store[key]
            if key in layer.grads:
                grads[name] = layer.grads[key]
        if l2 is not None:
            weights, moving = {}, {}  # a weight with no gradient (frozen) is not moved
            for name in decayed:
                weights[name] = params[name]
                if name in grads:
                    moving[name] = params[name]
            value = value + l2.penalty(weights.values())
            l2.add_to_gradients(moving, grads)
        optimizer.step(params, grads)
        for name, store, layer, key in slots:
            if params[name] is not store[key]:  # checked and copied, as any assignment
                model.params[name] = params[name]
            if key in layer.grads and grads[name] is not layer.grads[key]:
                layer.grads[key] = grads[name]
        return value, out

    return step


def marked_backward(model):
    """``model.backward`` as a step calls it, ``(dy, input_grad)``, leaving the marks of
    a fit's step (``checks.STEPPED``) where it ran ``Sequential.backward``, which notes
    the forward it follows; one that walks the layers itself leaves none, and hand steps
    after are then not checked for order. A subclass's backward that takes dy alone
    (DeZero's ``backward(self, gy)``) is called without the flag, which only saves the
    first layer's dL/dx."""
    backward = model.backward
    flag = inspect.signature(backward).parameters.get("input_grad")
    by_name = flag is not None and flag.kind is not flag.POSITIONAL_ONLY

    def marking(dy, input_grad):
        model._backward_of = None
        if flag is None:
            dx = backward(dy)
        else:
            dx = backward(dy, input_grad=input_grad) if by_name else backward(dy, input_grad)
        if model._backward_of is not None:
            model._out_like, model._backward_of, model._stepped_on = None, STEPPED, STEPPED
        return dx

    return marking
