"""Reference training loops that the library is measured against.

Three versions of the same maths, written the way the classic from-scratch tutorials
write them: a clear forward pass, the fused loss gradient, a backward pass that
updates each layer as it goes.

- ``train_xp``: plain array code. ``xp`` is ``numpy`` on a CPU, ``cupy`` on a GPU.
- ``train_torch_manual``: the same lines with torch tensors, no autograd.
- ``train_torch_autograd``: ``torch.nn`` + autograd + ``torch.optim.SGD``.

Shared conventions: rows are samples, ``z = a @ W + b`` with W of shape (n_in, n_out);
params is a list of ``(W, b)`` pairs updated in place; a softmax output is trained
with cross-entropy on integer labels, a sigmoid output with binary cross-entropy;
the loss is the mean over the batch unless ``wl.loss_sum`` (the moons tutorial's
gradient of the sum); ``wl.reg_lambda * W`` is added to each weight's gradient.
Mini-batch workloads shuffle every epoch with a permutation drawn on the host from
``numpy.random.default_rng(seed)``; full-batch workloads do not shuffle.
Every function returns the last step's loss as a 0-d array on the device (read it
with ``float()``, which waits for the device).
"""

from __future__ import annotations

import numpy as np

# --- plain array code (NumPy or CuPy) ---------------------------------------------


def batches_xp(xp, wl, X, y, rng):
    if wl.batch_size is None:
        yield X, y
        return
    perm = xp.asarray(rng.permutation(X.shape[0]))
    for i in range(0, X.shape[0], wl.batch_size):
        idx = perm[i : i + wl.batch_size]
        yield X[idx], y[idx]


def activate_xp(xp, name, z):
    if name == "tanh":
        return xp.tanh(z)
    if name == "sigmoid":
        return 1 / (1 + xp.exp(-z))
    return xp.maximum(z, 0)


def activation_grad(name, a):
    """The activation's derivative, from its output a."""
    if name == "tanh":
        return 1 - a * a
    if name == "sigmoid":
        return a * (1 - a)
    return a > 0


def forward_xp(xp, wl, params, X):
    """Every layer's output, the input first and the logits last."""
    acts = [X]
    for i, (W, b) in enumerate(params):
        z = acts[-1] @ W + b
        acts.append(activate_xp(xp, wl.hidden, z) if i < len(params) - 1 else z)
    return acts


def loss_and_delta_xp(xp, wl, params, logits, y):
    """The loss and its gradient with respect to the logits."""
    m = logits.shape[0]
    if wl.output == "softmax":
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = xp.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        rows = xp.arange(m)
        loss = (xp.log(total[:, 0]) - shifted[rows, y]).sum()
        delta = exp / total
        delta[rows, y] -= 1
    else:
        loss = (xp.maximum(logits, 0) - logits * y + xp.log1p(xp.exp(-xp.abs(logits)))).sum()
        delta = 1 / (1 + xp.exp(-logits)) - y
    if not wl.loss_sum:
        loss = loss / m
        delta /= m
    if wl.reg_lambda:
        loss = loss + wl.reg_lambda / 2 * sum((W * W).sum() for W, _ in params)
    return loss, delta


def backward_update_xp(wl, params, acts, delta):
    for i in reversed(range(len(params))):
        W, b = params[i]
        dW = acts[i].T @ delta
        db = delta.sum(axis=0)
        if i > 0:
            delta = (delta @ W.T) * activation_grad(wl.hidden, acts[i])
        if wl.reg_lambda:
            dW += wl.reg_lambda * W
        W -= wl.lr * dW
        b -= wl.lr * db


def train_xp(wl, X, y, params, xp=np, seed=0):
    rng = np.random.default_rng(seed)
    loss = None
    for _ in range(wl.epochs):
        for Xb, yb in batches_xp(xp, wl, X, y, rng):
            acts = forward_xp(xp, wl, params, Xb)
            loss, delta = loss_and_delta_xp(xp, wl, params, acts[-1], yb)
            backward_update_xp(wl, params, acts, delta)
    return loss


def loss_xp(wl, X, y, params, xp=np):
    """The loss on (X, y) without training: for checks."""
    return loss_and_delta_xp(xp, wl, params, forward_xp(xp, wl, params, X)[-1], y)[0]


# --- the same by hand with torch tensors --------------------------------------------


def batches_torch(wl, X, y, rng):
    import torch

    if wl.batch_size is None:
        yield X, y
        return
    perm = torch.as_tensor(rng.permutation(X.shape[0]), device=X.device)
    for i in range(0, X.shape[0], wl.batch_size):
        idx = perm[i : i + wl.batch_size]
        yield X[idx], y[idx]


def activate_torch(name, z):
    import torch

    if name == "tanh":
        return torch.tanh(z)
    if name == "sigmoid":
        return torch.sigmoid(z)
    return torch.relu(z)


def forward_torch(wl, params, X):
    acts = [X]
    for i, (W, b) in enumerate(params):
        z = acts[-1] @ W + b
        acts.append(activate_torch(wl.hidden, z) if i < len(params) - 1 else z)
    return acts


def loss_and_delta_torch(wl, params, logits, y):
    import torch

    m = logits.shape[0]
    if wl.output == "softmax":
        shifted = logits - logits.amax(dim=1, keepdim=True)
        exp = torch.exp(shifted)
        total = exp.sum(dim=1, keepdim=True)
        rows = torch.arange(m, device=logits.device)
        loss = (torch.log(total[:, 0]) - shifted[rows, y]).sum()
        delta = exp / total
        delta[rows, y] -= 1
    else:
        loss = (logits.clamp(min=0) - logits * y + torch.log1p(torch.exp(-logits.abs()))).sum()
        delta = torch.sigmoid(logits) - y
    if not wl.loss_sum:
        loss = loss / m
        delta /= m
    if wl.reg_lambda:
        loss = loss + wl.reg_lambda / 2 * sum((W * W).sum() for W, _ in params)
    return loss, delta


def backward_update_torch(wl, params, acts, delta):
    for i in reversed(range(len(params))):
        W, b = params[i]
        dW = acts[i].T @ delta
        db = delta.sum(dim=0)
        if i > 0:
            delta = (delta @ W.T) * activation_grad(wl.hidden, acts[i])
        if wl.reg_lambda:
            dW += wl.reg_lambda * W
        W -= wl.lr * dW
        b -= wl.lr * db


def train_torch_manual(wl, X, y, params, seed=0):
    """params: [(W, b), ...] torch tensors on X's device, updated in place."""
    rng = np.random.default_rng(seed)
    loss = None
    for _ in range(wl.epochs):
        for Xb, yb in batches_torch(wl, X, y, rng):
            acts = forward_torch(wl, params, Xb)
            loss, delta = loss_and_delta_torch(wl, params, acts[-1], yb)
            backward_update_torch(wl, params, acts, delta)
    return loss


# --- torch.nn + autograd + torch.optim.SGD ---------------------------------------------


def build_torch_model(wl, params):
    """An nn.Sequential holding params: [(W, b), ...] host arrays, W (n_in, n_out)."""
    import torch
    from torch import nn

    act = {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "relu": nn.ReLU}[wl.hidden]
    layers = []
    for i, (W, b) in enumerate(params):
        linear = nn.Linear(*W.shape, dtype=getattr(torch, wl.dtype))
        with torch.no_grad():
            linear.weight.copy_(torch.as_tensor(np.ascontiguousarray(W.T)))
            linear.bias.copy_(torch.as_tensor(b))
        layers.append(linear)
        if i < len(params) - 1:
            layers.append(act())
    return nn.Sequential(*layers)


def torch_model_params(model):
    """The model's [(W, b), ...] as host NumPy, W (n_in, n_out)."""
    linears = [m for m in model if hasattr(m, "weight")]
    return [(m.weight.detach().cpu().numpy().T, m.bias.detach().cpu().numpy()) for m in linears]


def train_torch_autograd(wl, X, y, model, seed=0):
    """model: build_torch_model's, on X's device."""
    import torch
    from torch import nn

    reduction = "sum" if wl.loss_sum else "mean"
    if wl.output == "softmax":
        loss_fn = nn.CrossEntropyLoss(reduction=reduction)
    else:
        loss_fn = nn.BCEWithLogitsLoss(reduction=reduction)
    weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
    biases = [p for name, p in model.named_parameters() if name.endswith("bias")]
    groups = [{"params": weights, "weight_decay": wl.reg_lambda}, {"params": biases}]
    optimizer = torch.optim.SGD(groups, lr=wl.lr)
    rng = np.random.default_rng(seed)
    loss = None
    for _ in range(wl.epochs):
        for Xb, yb in batches_torch(wl, X, y, rng):
            optimizer.zero_grad()
            loss = loss_fn(model(Xb), yb)
            loss.backward()
            optimizer.step()
    return loss.detach()
