"""The kernel table's torch entries (``kernels.py`` lists them): torch's own operators
for what the reference writes as several, so a step dispatches fewer operators (on a
GPU, launches fewer kernels). Dense's forward is ``addmm`` (on a GPU, cuBLASLt adds
the bias in the product's epilogue where it can, as ``nn.Linear`` does), and with a
ReLU after it ``_addmm_activation`` (the epilogue clips too). ReLU's
forward is ``torch.relu``: the standard's ``maximum(x, 0.0)`` makes a device tensor of
the 0 on every call, a host-to-device copy on a GPU. The activations' backward passes
are aten's own (``tanh_backward``, ``sigmoid_backward``, ``threshold_backward``: one
kernel each, where the reference takes two or three); the losses use
``log_softmax``/``softmax`` and ``binary_cross_entropy_with_logits``; the optimizers
update in place with ``add_``/``addcmul_``/``addcdiv_``, one operator where the
reference takes two, and every parameter at once with the ``_foreach`` versions of them.

Results agree with the reference to rounding (the operators order their arithmetic
in their own way), which ``tests/test_kernels.py`` checks on every torch device here.
"""

from __future__ import annotations

import functools


@functools.cache
def kernels() -> dict:
    import torch

    aten = torch.ops.aten
    is_compiling = getattr(getattr(torch, "compiler", None), "is_compiling", lambda: False)
    binary_cross_entropy_with_logits = torch.nn.functional.binary_cross_entropy_with_logits

    def softmax_xent(z, onehot, scale):
        logp = torch.log_softmax(z, dim=1)  # a class of no weight adds nothing, also at -inf
        loss = torch.sum(onehot * torch.where(onehot != 0, logp, onehot)) * -scale
        grad = torch.softmax(z, dim=1).sub_(onehot)
        return loss, grad.mul_(scale) if scale != 1.0 else grad

    def sigmoid_bce(z, t, scale):
        loss = binary_cross_entropy_with_logits(z, t, reduction="sum") * scale
        grad = torch.sigmoid(z).sub_(t)
        return loss, grad.mul_(scale) if scale != 1.0 else grad

    def dense_act(x, W, b, name):
        if name == "relu":  # on a GPU, cuBLASLt's epilogue adds the bias and clips
            return aten._addmm_activation(b, x, W)
        y = torch.addmm(b, x, W)
        return y.sigmoid_() if name == "sigmoid" else y.tanh_()

    def matmul_into(a, b, out):
        # MKL, torch's CPU BLAS, makes a tall and narrow product (the weight gradient
        # x.T @ dy of a Dense layer with few outputs) 1.4-4x slower than its transpose
        # dy.T @ x on this project's CPUs (timeit, one thread, 784 x 10 to 12288 x 20):
        # that one then, and a copy across. A GPU takes either alike, in one launch.
        # Into the flat buffer or not, so that both paths reach the same bits; not in a
        # captured step (torch.compile), which was slower with it: 1.08x torch autograd's
        # time on workload 5 against 0.94x.
        if _tall_and_narrow(a, b) and not is_compiling():
            product = torch.mm(b.T, a.T).T
            return product.contiguous() if out is None else out.copy_(product)
        return torch.matmul(a, b, out=out)

    def sgd(p, g, lr):
        p.add_(g, alpha=-lr)

    def momentum(p, v, g, lr, mu):
        v.mul_(mu).add_(g, alpha=-lr)
        p.add_(v)

    def adam(p, m, v, g, lr_t, b1, b2, eps, root):
        m.mul_(b1).add_(g, alpha=1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        denominator = torch.sqrt(v)
        if root != 1.0:
            denominator.div_(root)
        p.addcdiv_(m, denominator.add_(eps), value=-lr_t)

    # every parameter at once: torch's _foreach operators, which torch.optim uses too (one
    # launch for a whole list on a GPU, a loop in C++ on a CPU)
    def sgd_many(ps, gs, lr):
        torch._foreach_add_(ps, gs, alpha=-lr)

    def momentum_many(ps, vs, gs, lr, mu):
        torch._foreach_mul_(vs, mu)
        torch._foreach_add_(vs, gs, alpha=-lr)
        torch._foreach_add_(ps, vs)

    def adam_many(ps, ms, vs, gs, lr_t, b1, b2, eps, root):
        torch._foreach_mul_(ms, b1)
        torch._foreach_add_(ms, gs, alpha=1 - b1)
        torch._foreach_mul_(vs, b2)
        torch._foreach_addcmul_(vs, gs, gs, value=1 - b2)
        denominators = torch._foreach_sqrt(vs)
        if root != 1.0:
            torch._foreach_div_(denominators, root)
        torch._foreach_add_(denominators, eps)
        torch._foreach_addcdiv_(ps, ms, denominators, value=-lr_t)

    return {
        "linear": lambda x, W, b: torch.addmm(b, x, W),
        "dense_act": dense_act,
        "sigmoid": torch.sigmoid,
        "relu": torch.relu,
        "tanh_backward": lambda y, dy: aten.tanh_backward(dy, y),
        "sigmoid_backward": lambda y, dy: aten.sigmoid_backward(dy, y),
        "relu_backward": lambda y, dy: aten.threshold_backward(dy, y, 0),
        "softmax_xent": softmax_xent,
        "sigmoid_bce": sigmoid_bce,
        "sgd": sgd,
        "momentum": momentum,
        "adam": adam,
        "sgd_many": sgd_many,
        "momentum_many": momentum_many,
        "adam_many": adam_many,
        "matmul_into": matmul_into,
        "sum_into": lambda x, axis, out: torch.sum(x, dim=axis, out=out),
    }


def _tall_and_narrow(a, b) -> bool:
    """Whether ``a @ b`` is a matrix product on a CPU of at least 64 rows and 2 to 32
    columns. Below those the transpose and its copy cost more than they save (timeit,
    one thread: 1.1-3.5x the plain product's time at 16 x 16 x 2, 209 x 20 x 7 or
    200 x 256 x 1; 0.26-0.7x from 128 x 200 x 10 up)."""
    return (
        a.ndim == 2 and b.ndim == 2 and a.device.type == "cpu"
        and a.shape[0] >= 64 and 2 <= b.shape[1] <= 32
    )  # fmt: skip
