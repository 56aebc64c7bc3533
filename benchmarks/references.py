"""Reference training loops that the library is measured against.

Three versions of the same maths, written the way the classic from-scratch tutorials
write them: a clear forward pass, the fused loss gradient, a backward pass that
updates each layer as it goes.

- ``train_xp``: plain array code. ``xp`` is ``numpy`` on a CPU, ``cupy`` on a GPU.
- ``train_torch_manual``: the same lines with torch tensors, no autograd.
- ``train_torch_autograd``: ``torch.nn`` + autograd + ``torch.optim.SGD``.
- ``train_conv_xp``: the simple conv net of workload 6 by hand (im2col, one product,
  col2im), NumPy or CuPy; torch runs it through ``nn.Conv2d`` (cuDNN on a GPU).

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


# --- the simple conv net by hand (NumPy or CuPy): im2col, one product, col2im ----------
#
# Conv (F filters k x k, no padding) -> ReLU -> MaxPool p x p -> Flatten -> Dense layers.
# The same maths as nnbackend's layers: the windows gathered by slicing and stacked,
# one batched product with the kernel, max pooling over strided slices with the
# gradient sent to the first largest input of each window.


def im2col_xp(xp, x, k):
    """(n, C, H, W) -> (n, C*k*k, OH*OW), stride 1, no padding."""
    n, c, h, w = x.shape
    oh, ow = h - k + 1, w - k + 1
    cols = xp.stack([x[:, :, i : i + oh, j : j + ow] for i in range(k) for j in range(k)], axis=2)
    return cols.reshape(n, c * k * k, oh * ow)


def pool_slices(a, p):
    """The p*p strided slices of a (n, F, H, W), one per window offset."""
    oh, ow = a.shape[2] // p, a.shape[3] // p
    return [a[:, :, i : i + p * oh : p, j : j + p * ow : p] for i in range(p) for j in range(p)]


def max_pool_xp(xp, a, p):
    views = pool_slices(a, p)
    out = views[0]
    for v in views[1:]:
        out = xp.maximum(out, v)
    return out


def max_pool_backward_xp(xp, a, out, dout, p):
    """The gradient of max pooling: each window's to its first largest input."""
    da = xp.zeros_like(a)
    oh, ow = out.shape[2], out.shape[3]
    found = None
    for index, v in enumerate(pool_slices(a, p)):
        hit = v == out if found is None else (v == out) & ~found
        found = hit if found is None else found | hit
        i, j = divmod(index, p)
        da[:, :, i : i + p * oh : p, j : j + p * ow : p] = dout * hit
    return da


def conv_step_xp(xp, wl, params, Xb, yb):
    """One training step of the conv net; updates params in place, returns the loss."""
    (Wc, bc), dense = params[0], params[1:]
    filters, ck, oh, ow = wl.conv_dims()
    n, p = Xb.shape[0], wl.conv[2]
    cols = im2col_xp(xp, Xb, wl.conv[1])
    z = Wc.reshape(filters, ck) @ cols + bc[:, None]  # (n, F, OH*OW)
    a = xp.maximum(z, 0).reshape(n, filters, oh, ow)
    pooled = max_pool_xp(xp, a, p)
    acts = forward_xp(xp, wl, dense, pooled.reshape(n, -1))
    loss, delta = loss_and_delta_xp(xp, wl, dense, acts[-1], yb)
    for i in reversed(range(len(dense))):
        W, b = dense[i]
        dW, db = acts[i].T @ delta, delta.sum(axis=0)
        delta = delta @ W.T
        if i > 0:
            delta = delta * activation_grad(wl.hidden, acts[i])
        W -= wl.lr * dW
        b -= wl.lr * db
    da = max_pool_backward_xp(xp, a, pooled, delta.reshape(pooled.shape), p)
    dz = (da * (a > 0)).reshape(n, filters, oh * ow)
    dWc = (dz @ cols.transpose(0, 2, 1)).sum(axis=0)
    Wc -= wl.lr * dWc.reshape(Wc.shape)
    bc -= wl.lr * dz.sum(axis=(0, 2))
    return loss


def train_conv_xp(wl, X, y, params, xp=np, seed=0):
    """params: [(conv W, b), (W, b), ...] on X's device, updated in place."""
    rng = np.random.default_rng(seed)
    loss = None
    for _ in range(wl.epochs):
        for Xb, yb in batches_xp(xp, wl, X, y, rng):
            loss = conv_step_xp(xp, wl, params, Xb, yb)
    return loss


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
    """An nn.Sequential holding params: [(W, b), ...] host arrays, W (n_in, n_out); a
    conv workload's kernel (F, C, k, k) first, as nn.Conv2d lays it out."""
    import torch
    from torch import nn

    act = {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "relu": nn.ReLU}[wl.hidden]
    layers = []
    if wl.conv is not None:
        (W, b), params = params[0], params[1:]
        conv = nn.Conv2d(W.shape[1], W.shape[0], W.shape[2], dtype=getattr(torch, wl.dtype))
        with torch.no_grad():
            conv.weight.copy_(torch.as_tensor(W))
            conv.bias.copy_(torch.as_tensor(b))
        layers += [conv, nn.ReLU(), nn.MaxPool2d(wl.conv[2]), nn.Flatten()]
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
    """The model's [(W, b), ...] as host NumPy, W (n_in, n_out) (a kernel as it is)."""
    params = []
    for m in model:
        if hasattr(m, "weight"):
            W = m.weight.detach().cpu().numpy()
            params.append((W.T if W.ndim == 2 else W, m.bias.detach().cpu().numpy()))
    return params


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
